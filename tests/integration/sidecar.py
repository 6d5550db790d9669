"""Run the real ``otlp-enricher serve`` process on free loopback ports, for integration tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.net import free_port

from .tools import wait_until


@dataclass
class Sidecar:
    """Addresses of a running sidecar."""

    grpc: str
    http: str
    metrics: str
    storage: Path
    process: subprocess.Popen[bytes]

    def metrics_text(self) -> str:
        """The Prometheus text exposition it serves now."""
        with urllib.request.urlopen(f"http://{self.metrics}/metrics", timeout=5) as response:
            return str(response.read().decode())


def _ready(metrics: str, process: subprocess.Popen[bytes]) -> bool:
    if process.poll() is not None:
        raise AssertionError(f"otlp-enricher exited with {process.returncode}")
    try:
        with urllib.request.urlopen(f"http://{metrics}/readyz", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


@contextlib.contextmanager
def run_sidecar(workdir: Path, extra_config: Mapping[str, Any] | None = None) -> Iterator[Sidecar]:
    """Start ``otlp-enricher serve`` with receivers and metrics on free ports; SIGTERM at exit.

    ``extra_config`` is merged into the generated config (e.g. ``{"exporters": {"tempo": ...}}``).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    grpc, http, metrics = (f"127.0.0.1:{free_port()}" for _ in range(3))
    storage = workdir / "data"
    config: dict[str, Any] = {
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": grpc}, "http": {"endpoint": http}}}},
        "exporters": {"prometheus": {"endpoint": metrics}},
        "storage": {"directory": str(storage)},
    }
    config_path = workdir / "otlp-enricher.yaml"
    config_path.write_text(yaml.safe_dump(_merge(config, extra_config or {})))
    log_path = workdir / "otlp-enricher.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "otlp_enricher", "serve", "--config", str(config_path)], stdout=log, stderr=log
    )
    try:
        wait_until(
            lambda: _ready(metrics, process),
            timeout_s=30,
            what="otlp-enricher /readyz",
            on_timeout=log_path.read_text,
        )
        yield Sidecar(grpc, http, metrics, storage, process)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        log.close()
