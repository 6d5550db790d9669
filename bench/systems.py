"""The systems under test and how each is started as its own process.

* ``floor``: ``bench/servers.py floor``, a do-nothing ``grpc.aio`` Export server (the Python floor);
* ``collector-otlp`` / ``collector-file``: the real Collector built by ``collector/build.sh`` with
  ``bench/collector-otlp.yaml`` (span metrics + OTLP/gRPC gzip to the sink) or
  ``bench/collector-file.yaml`` (span metrics + file exporter);
* ``enricher-local``: ``otlp-enricher serve`` with the embedded default's outputs (local files);
* ``enricher-local-2w``: the embedded default with two workers sharing the port (1 → 2 scaling);
* ``enricher-loki-tempo``: the same with the Loki and Tempo exporters delivering to the sink.

otlp-enricher is started through its CLI (``otlp-enricher serve --config``), so the benchmark
measures whatever data plane is installed. ``--enricher-set key.path=value`` adds config keys to
both otlp-enricher configs (e.g. a ``workers`` setting) without a code change here.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import yaml

from tests.net import free_port

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
MANIFEST = REPO_ROOT / "collector" / "manifest.yaml"
BUILD_SCRIPT = REPO_ROOT / "collector" / "build.sh"
STARTUP_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class System:
    """One system under test: ``key`` names it on the command line, ``label`` in the table."""

    key: str
    label: str
    kind: str  # floor | collector | enricher
    delivers: bool = False  # sends spans on to the sink


SYSTEMS = (
    System("floor", "do-nothing Python `grpc.aio` Export server (parses; the Python floor)", "floor"),
    System(
        "collector-otlp",
        "Collector: otlp → span_metrics → prometheus; traces → otlp exporter (gzip) to a sink",
        "collector",
        delivers=True,
    ),
    System("collector-file", "Collector: otlp → span_metrics → prometheus; traces → file exporter", "collector"),
    System("enricher-local", "otlp-enricher, embedded default (local files)", "enricher"),
    System(
        "enricher-local-2w",
        "otlp-enricher, embedded default, `service.workers: 2` (ports shared)",
        "enricher",
    ),
    System(
        "enricher-loki-tempo",
        "otlp-enricher, Loki + Tempo to sinks (default redaction)",
        "enricher",
        delivers=True,
    ),
)
BY_KEY = {system.key: system for system in SYSTEMS}


@dataclass(frozen=True)
class Sink:
    """The running sink: OTLP/gRPC endpoint and Loki/counters HTTP base URL."""

    grpc_endpoint: str
    http_url: str


def collector_cache_path() -> Path:
    """Where ``collector/build.sh`` keeps the binary built from the current manifest (same rule)."""
    cache = Path(os.environ.get("OTLP_ENRICHER_CACHE") or Path.home() / ".cache" / "otlp-enricher")
    digest = hashlib.sha256(MANIFEST.read_bytes()).hexdigest()
    return cache / "otelcol" / digest / "otelcol-enricher"


def collector_binary(build: bool) -> Path:
    """The Collector binary; runs ``collector/build.sh`` only if cached or ``build`` is set."""
    cached = collector_cache_path()
    if not cached.is_file() and not build:
        raise SystemExit(
            f"The Collector for {MANIFEST.relative_to(REPO_ROOT)} is not built yet ({cached} is missing).\n"
            "Build it once (about 5 minutes, needs Go): bash collector/build.sh\n"
            "or pass --build, or leave the Collector out: --systems floor,enricher-local,enricher-loki-tempo"
        )
    result = subprocess.run(["bash", str(BUILD_SCRIPT)], stdout=subprocess.PIPE, text=True, check=True)
    return Path(result.stdout.strip().splitlines()[-1])


def enricher_command() -> list[str]:
    """``otlp-enricher`` beside this interpreter (the venv's console script), else ``-m otlp_enricher``."""
    script = Path(sys.executable).parent / "otlp-enricher"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "otlp_enricher"]


def set_dotted(settings: dict[str, Any], assignment: str) -> None:
    """Apply ``a.b.c=value`` (value parsed as YAML) to nested ``settings``."""
    path, _, raw = assignment.partition("=")
    if not path or not _:
        raise SystemExit(f"--enricher-set expects key.path=value, got {assignment!r}")
    node = settings
    *parents, leaf = path.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = yaml.safe_load(raw)


def enricher_config(
    system: System, workdir: Path, grpc_port: int, metrics_port: int, sink: Sink, extra: list[str]
) -> dict[str, Any]:
    """The otlp-enricher config of ``system`` on the given ports."""
    exporters: dict[str, Any] = {"prometheus": {"endpoint": f"127.0.0.1:{metrics_port}"}}
    if system.key == "enricher-loki-tempo":
        exporters["loki"] = {"endpoint": f"{sink.http_url}/loki/api/v1/push"}
        exporters["tempo"] = {"endpoint": sink.grpc_endpoint, "tls": {"insecure": True}}
    settings: dict[str, Any] = {
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": f"127.0.0.1:{grpc_port}"}}}},
        "exporters": exporters,
        "storage": {"directory": str(workdir / "data")},
        "service": {"telemetry": {"logs": {"level": "warning"}}},
    }
    if system.key == "enricher-local-2w":
        settings["service"]["workers"] = 2
    for assignment in extra:
        set_dotted(settings, assignment)
    return settings


@dataclass
class Running:
    """A started system: its process, OTLP/gRPC target and metrics URL."""

    system: System
    process: subprocess.Popen[bytes]
    target: str
    metrics_url: str
    log_path: Path
    log: IO[bytes]

    def stop(self) -> int:
        """SIGTERM, then SIGKILL after :data:`STOP_TIMEOUT_S`; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        return self.process.returncode

    def log_tail(self, lines: int = 20) -> str:
        """The last lines the process wrote to stdout/stderr."""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def start(system: System, workdir: Path, sink: Sink, collector: Path | None, enricher_extra: list[str]) -> Running:
    """Start ``system`` with its files under ``workdir``; wait until it is ready."""
    grpc_port, metrics_port = free_port(), free_port()
    env: Mapping[str, str] = dict(os.environ)
    if system.kind == "floor":
        command = [sys.executable, "-m", "bench.servers", "floor", "--port", str(grpc_port)]
        ready = f"port {grpc_port}"
    elif system.kind == "collector":
        if collector is None:
            raise ValueError("the Collector systems need the Collector binary")
        config = BENCH_DIR / f"{system.key}.yaml"
        command = [str(collector), "--config", str(config)]
        env = {
            **env,
            "BENCH_OTLP_ENDPOINT": f"127.0.0.1:{grpc_port}",
            "BENCH_PROMETHEUS_ENDPOINT": f"127.0.0.1:{metrics_port}",
            "BENCH_SINK_ENDPOINT": sink.grpc_endpoint,
            "BENCH_FILE_PATH": str(workdir / "spans.jsonl"),
        }
        ready = f"port {grpc_port}"
    else:
        config_path = workdir / "otlp-enricher.yaml"
        settings = enricher_config(system, workdir, grpc_port, metrics_port, sink, enricher_extra)
        config_path.write_text(yaml.safe_dump(settings))
        command = [*enricher_command(), "serve", "--config", str(config_path)]
        ready = f"http://127.0.0.1:{metrics_port}/readyz"
    log_path = workdir / "process.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        command, cwd=workdir if system.kind != "floor" else REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    running = Running(
        system, process, f"127.0.0.1:{grpc_port}", f"http://127.0.0.1:{metrics_port}/metrics", log_path, log
    )
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not (_http_ok(ready) if ready.startswith("http") else _accepts(grpc_port)):
        if process.poll() is not None or time.monotonic() > deadline:
            running.stop()
            raise RuntimeError(f"{system.key} did not become ready ({ready}):\n{running.log_tail()}")
        time.sleep(0.05)
    return running


def start_sink(workdir: Path) -> tuple[subprocess.Popen[bytes], Sink]:
    """Start the sink process (``bench/servers.py sink``) and wait until both its ports accept."""
    grpc_port, http_port = free_port(), free_port()
    log = (workdir / "sink.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.servers", "sink", "--grpc-port", str(grpc_port), "--http-port", str(http_port)],
        cwd=REPO_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not (_accepts(grpc_port) and _accepts(http_port)):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"the sink did not start: {(workdir / 'sink.log').read_text()[-2000:]}")
        time.sleep(0.05)
    return process, Sink(f"127.0.0.1:{grpc_port}", f"http://127.0.0.1:{http_port}")


def remove(path: Path) -> None:
    """Delete a system's working directory (its span files can be gigabytes)."""
    shutil.rmtree(path, ignore_errors=True)
