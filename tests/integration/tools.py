"""Harness for integration tests against real programs: an OpenTelemetry Collector and Prometheus.

What it gives the tests (fixtures are in ``conftest.py``, built on the helpers here):

* :func:`build_collector` runs ``collector/build.sh`` (cached binary, keyed by the manifest hash).
* :func:`start_collector` starts a Collector from a config file and an environment, waits until
  its listening ports accept TCP connections, and stops it (SIGTERM, then SIGKILL).
* :func:`start_prometheus` starts a real Prometheus scraping given ``host:port`` targets every
  second with exemplar storage on, waits for ``/-/ready`` and for a first successful scrape of
  every target; :class:`PrometheusServer` queries it over the HTTP API with ``urllib``.
* :func:`free_port`, :func:`wait_until`: ports chosen by binding port 0; bounded polling waits.

Every wait has a deadline; nothing uses a fixed port. When a tool is missing, :func:`unavailable`
skips the test loudly on a developer machine and fails it under ``CI=true``, where everything is
installed and a skip would hide a broken setup.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import pytest
import yaml

from tests.net import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
COLLECTOR_DIR = REPO_ROOT / "collector"
BUILD_SCRIPT = COLLECTOR_DIR / "build.sh"

#: The first Collector build downloads hundreds of modules and compiles for minutes on 2 cores.
BUILD_TIMEOUT_S = 1800.0
#: How long a started program gets to open its ports / report ready.
STARTUP_TIMEOUT_S = 60.0
#: How long a program gets to exit after SIGTERM before it is killed.
STOP_TIMEOUT_S = 10.0
#: Poll interval of bounded waits (they synchronise on a condition, the interval only paces it).
POLL_INTERVAL_S = 0.05

T = TypeVar("T")


def in_ci() -> bool:
    """Whether this run is CI (``CI=true``), where every tool must be present."""
    return os.environ.get("CI", "").lower() == "true"


def unavailable(reason: str) -> NoReturn:
    """Skip the test because a tool is missing, or fail it when running in CI.

    Args:
        reason: what is missing and how to install it; shown in the skip/fail message.
    """
    message = f"UNAVAILABLE: {reason}"
    if in_ci():
        pytest.fail(f"{message} (CI=true: every integration tool must be installed)", pytrace=False)
    pytest.skip(message)


def holds_within(predicate: Callable[[], object], timeout_s: float) -> bool:
    """Poll ``predicate`` every 20 ms until it is truthy (True) or ``timeout_s`` passes (False), for
    ``assert holds_within(...), "what did not happen"``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def wait_until(
    condition: Callable[[], T | None],
    *,
    timeout_s: float,
    what: str,
    on_timeout: Callable[[], str] | None = None,
) -> T:
    """Poll ``condition`` until it returns something other than ``None``/``False``; return it.

    Args:
        condition: called repeatedly; a truthy result ends the wait. It may raise
            :class:`AssertionError` to abort the wait at once (e.g. the process died).
        timeout_s: deadline for the whole wait.
        what: what is awaited, for the timeout message.
        on_timeout: extra diagnostics (e.g. a log tail) appended to the timeout message.

    Raises:
        TimeoutError: the condition did not hold within ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if result is not None and result is not False:
            return result
        if time.monotonic() >= deadline:
            extra = f"\n{on_timeout()}" if on_timeout is not None else ""
            raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}{extra}")
        time.sleep(POLL_INTERVAL_S)


def port_accepts(host: str, port: int) -> bool:
    """Whether a TCP connection to ``host:port`` succeeds right now."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class ManagedProcess:
    """A child program whose stdout and stderr go to a log file, stopped at the end of a test."""

    name: str
    args: Sequence[str]
    log_path: Path
    env: Mapping[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the program with ``env`` added to this process's environment."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                list(self.args),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
                cwd=self.log_path.parent,
            )

    def check_running(self) -> None:
        """Raise :class:`AssertionError` with the log tail if the program has exited."""
        if self.process is None or self.process.poll() is not None:
            code = None if self.process is None else self.process.returncode
            raise AssertionError(f"{self.name} exited (code {code})\n{self.log_tail()}")

    def stop(self) -> None:
        """Stop the program: SIGTERM, then SIGKILL after :data:`STOP_TIMEOUT_S`. Idempotent."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=STOP_TIMEOUT_S)

    def log_tail(self, max_chars: int = 8000) -> str:
        """The end of the program's log, framed with its path, for failure messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as exc:
            text = f"(no log: {exc})"
        return f"----- {self.name} log {self.log_path} -----\n{text[-max_chars:]}\n-----"


# --------------------------------------------------------------------------------------------
# OpenTelemetry Collector


def build_collector() -> Path:
    """Build (or reuse) the Collector of ``collector/manifest.yaml`` and return the binary path.

    Skips/fails through :func:`unavailable` when neither a cached binary nor Go is at hand.

    Raises:
        AssertionError: the build script failed (its output is in the message).
    """
    if shutil.which("bash") is None:
        unavailable("bash is needed to run collector/build.sh")
    try:
        result = subprocess.run(
            ["bash", str(BUILD_SCRIPT)],
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"collector/build.sh took longer than {BUILD_TIMEOUT_S:.0f} s") from exc
    if result.returncode == 3:
        unavailable(
            "Go is not installed, so the OpenTelemetry Collector cannot be built; "
            "install Go >= 1.25 (https://go.dev/doc/install) and rerun"
        )
    if result.returncode != 0:
        raise AssertionError(
            f"collector/build.sh failed with code {result.returncode}\n{result.stderr[-8000:]}\n{result.stdout[-2000:]}"
        )
    binary = Path(result.stdout.strip().splitlines()[-1])
    assert binary.is_file(), f"collector/build.sh printed {binary}, which does not exist"
    return binary


def validate_collector_config(binary: Path, config: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``<binary> validate --config <config>`` with ``env`` added; return the finished run."""
    return subprocess.run(
        [str(binary), "validate", f"--config={config}"],
        capture_output=True,
        text=True,
        timeout=STARTUP_TIMEOUT_S,
        env={**os.environ, **env},
        check=False,
    )


@dataclass
class RunningCollector:
    """A started Collector: its process (with log) and the environment it was given."""

    process: ManagedProcess
    env: Mapping[str, str]


@contextlib.contextmanager
def start_collector(
    binary: Path,
    config: Path,
    env: Mapping[str, str],
    *,
    wait_for: Sequence[tuple[str, int]],
    log_path: Path,
    timeout_s: float = STARTUP_TIMEOUT_S,
) -> Iterator[RunningCollector]:
    """Run a Collector with ``config`` and ``env``; yield once all ``wait_for`` ports accept.

    Args:
        binary: the Collector binary (see :func:`build_collector`).
        config: its config file, e.g. ``collector/tempo-peer.yaml``.
        env: variables the config reads (endpoints on free ports, output paths).
        wait_for: ``(host, port)`` pairs the Collector listens on once started.
        log_path: where its stdout/stderr go.
        timeout_s: bound on the startup wait.

    The Collector is stopped (SIGTERM, then kill) when the block exits, also on errors.
    """
    process = ManagedProcess(
        name=f"otelcol[{config.name}]",
        args=[str(binary), f"--config={config}"],
        log_path=log_path,
        env=env,
    )
    process.start()
    try:
        for host, port in wait_for:

            def accepts(host: str = host, port: int = port) -> bool:
                process.check_running()
                return port_accepts(host, port)

            wait_until(
                accepts,
                timeout_s=timeout_s,
                what=f"{process.name} to listen on {host}:{port}",
                on_timeout=process.log_tail,
            )
        yield RunningCollector(process=process, env=env)
    finally:
        process.stop()


def read_json_lines(path: Path) -> list[dict[str, Any]]:
    """Parse a file-exporter output file (OTLP/JSON, one batch per line); complete lines only."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines(keepends=True) if line.endswith("\n")]


# --------------------------------------------------------------------------------------------
# Prometheus


class PrometheusServer:
    """A small client for a running Prometheus' HTTP API (``/api/v1``) over ``urllib``."""

    def __init__(self, url: str, process: ManagedProcess | None = None) -> None:
        """Create a client for ``url`` (e.g. ``http://127.0.0.1:9090``), optionally its process."""
        self.url = url.rstrip("/")
        self.process = process

    def _get(self, path: str, params: Mapping[str, str]) -> Any:
        query = urllib.parse.urlencode(params)
        url = f"{self.url}{path}?{query}" if query else f"{self.url}{path}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                body = json.load(response)
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            exc.close()
            raise AssertionError(f"GET {url} -> {exc.code}: {detail}") from exc
        if body.get("status") != "success":
            raise AssertionError(f"GET {url} -> {body}")
        return body["data"]

    def ready(self) -> bool:
        """Whether ``/-/ready`` answers 200."""
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        """Evaluate an instant query; return the result list (``[{"metric":…, "value":[t, "v"]}]``).

        Args:
            promql: the expression.
            at: evaluation time as Unix seconds; now by default.
        """
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self._get("/api/v1/query", params)
        if data["resultType"] not in ("vector", "matrix"):
            return [{"metric": {}, "value": data["result"]}]
        result: list[dict[str, Any]] = data["result"]
        return result

    def query_exemplars(self, promql: str, start: float, end: float) -> list[dict[str, Any]]:
        """Return exemplars of the series selected by ``promql`` between Unix times start and end.

        Each item is ``{"seriesLabels": {...}, "exemplars": [{"labels": {...}, "value": "…",
        "timestamp": …}]}``.
        """
        params = {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}"}
        result: list[dict[str, Any]] = self._get("/api/v1/query_exemplars", params)
        return result

    def wait_for_query(
        self, promql: str, *, timeout_s: float = 30.0, predicate: Callable[[float], bool] | None = None
    ) -> list[dict[str, Any]]:
        """Poll until ``promql`` returns at least one sample (whose value satisfies ``predicate``).

        Returns the result list of the first query that qualified.
        """

        def attempt() -> list[dict[str, Any]] | None:
            if self.process is not None:
                self.process.check_running()
            result = self.query(promql)
            values = [float(item["value"][1]) for item in result]
            if values and (predicate is None or any(predicate(value) for value in values)):
                return result
            return None

        return wait_until(
            attempt,
            timeout_s=timeout_s,
            what=f"PromQL {promql!r} to return a sample",
            on_timeout=lambda: f"last result: {self.query(promql)}",
        )

    def wait_for_targets_up(self, targets: Sequence[str], *, timeout_s: float = 30.0) -> None:
        """Wait until each ``host:port`` target has been scraped successfully (``up == 1``)."""
        for target in targets:
            self.wait_for_query(f'up{{instance="{target}"}}', timeout_s=timeout_s, predicate=lambda v: v == 1.0)


def prometheus_config(targets: Sequence[str], *, job: str = "test", rule_files: Sequence[Path] = ()) -> dict[str, Any]:
    """A Prometheus config scraping ``targets`` every second (evaluating rules every second)."""
    return {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [{"job_name": job, "static_configs": [{"targets": list(targets)}]}],
    }


@contextlib.contextmanager
def start_prometheus(
    binary: Path,
    targets: Sequence[str],
    workdir: Path,
    *,
    rule_files: Sequence[Path] = (),
    timeout_s: float = STARTUP_TIMEOUT_S,
) -> Iterator[PrometheusServer]:
    """Run Prometheus scraping ``targets``; yield a client once ready and every target is up.

    Args:
        binary: the ``prometheus`` executable.
        targets: ``host:port`` addresses serving ``/metrics``.
        workdir: a fresh directory for its config, TSDB and log (``prometheus.log``).
        rule_files: recording/alerting rule files to load.
        timeout_s: bound on each startup wait.

    Exemplar storage is enabled (``--enable-feature=exemplar-storage``) so OpenMetrics exemplars
    can be read back with :meth:`PrometheusServer.query_exemplars`.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(prometheus_config(targets, rule_files=rule_files)))
    port = free_port()
    process = ManagedProcess(
        name="prometheus",
        args=[
            str(binary),
            f"--config.file={config_path}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--enable-feature=exemplar-storage",
            "--log.level=info",
        ],
        log_path=workdir / "prometheus.log",
    )
    process.start()
    server = PrometheusServer(f"http://127.0.0.1:{port}", process)
    try:

        def ready() -> bool:
            process.check_running()
            return server.ready()

        wait_until(ready, timeout_s=timeout_s, what="Prometheus /-/ready", on_timeout=process.log_tail)
        server.wait_for_targets_up(targets, timeout_s=timeout_s)
        yield server
    finally:
        process.stop()
