"""Several receiver processes on one host (``service.workers``), one ``/metrics``.

With ``workers: N > 1`` the ``serve`` process is a supervisor: it starts N worker processes that
share the OTLP ports through ``SO_REUSEPORT`` (the kernel spreads connections across them), each
with its own spool and files under ``storage.directory/worker-<i>``. A worker serves no metrics
port: every second (and at shutdown) it writes its OpenMetrics exposition and readiness to its
directory (private files, nothing on the network). The supervisor serves the configured
``exporters.prometheus`` endpoint from those files: counters and histograms are the exact sum
of the workers' last expositions, trace-id exemplars kept; gauges are summed except those that
hold configuration or a worst case (see ``_GAUGE_MAX`` / ``_GAUGE_MIN``). It forwards SIGTERM,
SIGINT and SIGHUP, restarts a worker that dies, and is ready when every worker is.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.exposition import generate_latest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from otlp_enricher.config import load_config
from otlp_enricher.confignode import ConfigError
from otlp_enricher.storage_files import make_private_dir, write_private
from otlp_enricher.telemetry.logging import get_logger
from otlp_enricher.telemetry.server import ReloadOutcome

EXPOSITION_FILE = "metrics.om"
READY_FILE = "ready"
WRITE_INTERVAL_S = 1.0
STALE_AFTER_S = 5.0
# Gauges that every worker sets to the same configured value, or whose worst case is what matters.
_GAUGE_MAX = frozenset(
    {
        "llm_slo_objective_ratio",
        "llm_slo_latency_threshold_seconds",
        "llm_slo_ttft_threshold_seconds",
        "llm_budget_usd",
        "otlp_enricher_config_info",
        "otlp_enricher_spool_oldest_unsent_age_seconds",
    }
)
_GAUGE_MIN = frozenset({"otlp_enricher_storage_writable"})

ReadinessCheck = Callable[[], tuple[bool, str]]
# prometheus_client's OpenMetrics functions are untyped; their shapes, named once.
openmetrics_exposition: Callable[[CollectorRegistry], bytes] = generate_latest
"""The OpenMetrics text of a registry (exemplars included), typed."""
_parse: Callable[[str], Iterator[Metric]] = text_string_to_metric_families


def worker_directory(storage: Path, index: int) -> Path:
    """Where worker ``index`` keeps its spool, files and exposition."""
    return storage / f"worker-{index}"


class ExpositionFile:
    """A worker's telemetry: its registry and readiness written to files, not served."""

    port = 0

    def __init__(self, registry: CollectorRegistry, directory: Path, readiness: ReadinessCheck) -> None:
        self._registry = registry
        self._directory = directory
        self._readiness = readiness
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    name = "telemetry"

    async def start(self) -> None:
        """Write now and then every second, in a daemon thread."""
        self.write()
        self._thread = threading.Thread(target=self._run, name="exposition-file", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(WRITE_INTERVAL_S):
            self.write()

    def write(self) -> None:
        """Write the exposition and readiness (each atomically: temporary file, then rename)."""
        ready, reason = self._readiness()
        with contextlib.suppress(OSError):  # a full disk is reported by readiness, not by a crash
            _replace(self._directory / EXPOSITION_FILE, openmetrics_exposition(self._registry))
            _replace(self._directory / READY_FILE, f"{int(ready)} {reason}\n".encode())

    def ready(self) -> str | None:
        """Always ready: a write that fails is retried a second later."""
        return None

    async def shutdown(self, deadline_s: float) -> None:
        """Stop writing, after a last exposition with everything counted; idempotent."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            await asyncio.to_thread(thread.join, 5)
            self.write()


_replace = write_private


class WorkerMetrics:
    """A registry collector that merges the workers' expositions (see the module docstring)."""

    def __init__(self, directories: Sequence[Path]) -> None:
        self._files = [directory / EXPOSITION_FILE for directory in directories]

    def collect(self) -> Iterator[Metric]:
        """One family per name: summed samples, the newest exemplar of each."""
        families: dict[str, Metric] = {}
        merged: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], list[Any]]] = {}
        for path in self._files:
            try:
                text = path.read_text()
            except OSError:
                continue  # a worker not started yet (or restarting) has no exposition
            for family in _parse(text):
                if family.name not in families:
                    families[family.name] = Metric(family.name, family.documentation, family.type, family.unit)
                    merged[family.name] = {}
                samples = merged[family.name]
                combine = _combiner(family.name, family.type)
                for sample in family.samples:
                    key = (sample.name, tuple(sorted(sample.labels.items())))
                    found = samples.get(key)
                    if found is None:
                        samples[key] = [sample.value, sample.exemplar]
                        continue
                    found[0] = combine(found[0], sample.value)
                    if sample.exemplar is not None and (found[1] is None or _newer(sample.exemplar, found[1])):
                        found[1] = sample.exemplar
        for name, family in families.items():
            for (sample_name, labels), (value, exemplar) in merged[name].items():
                family.add_sample(sample_name, dict(labels), value, exemplar=exemplar)
            yield family


def _newer(exemplar: Any, than: Any) -> bool:
    return float(exemplar.timestamp or 0) > float(than.timestamp or 0)


def _combiner(name: str, kind: str) -> Callable[[float, float], float]:
    if kind in ("gauge", "info", "stateset"):
        if name in _GAUGE_MAX:
            return max
        if name in _GAUGE_MIN:
            return min
    return lambda a, b: a + b


class Supervisor:
    """Starts, watches and stops the worker processes of one ``serve``."""

    def __init__(self, count: int, config_path: str | None, storage: Path, shutdown_timeout_s: float) -> None:
        self._count = count
        self._config_path = config_path
        self._storage = storage
        self._shutdown_timeout_s = shutdown_timeout_s
        self._workers: list[subprocess.Popen[bytes] | None] = [None] * count
        self._stopping = False
        self._log = get_logger("supervisor")
        self.directories = [worker_directory(storage, index) for index in range(count)]

    def _command(self, index: int) -> list[str]:
        config = ["--config", self._config_path] if self._config_path else []
        return [sys.executable, "-m", "otlp_enricher", "serve", *config, "--worker", str(index)]

    def start(self) -> None:
        """Start every worker."""
        for index, directory in enumerate(self.directories):
            make_private_dir(directory)
            with contextlib.suppress(FileNotFoundError):
                (directory / READY_FILE).unlink()  # a previous run's word does not count
            self._spawn(index)

    def _spawn(self, index: int) -> None:
        worker = subprocess.Popen(self._command(index))
        self._workers[index] = worker
        self._log.info("worker_started", worker=index, pid=worker.pid)

    async def watch(self) -> None:
        """Restart a worker that exits while the supervisor is not stopping."""
        while not self._stopping:
            for index, worker in enumerate(self._workers):
                if worker is not None and worker.poll() is not None and not self._stopping:
                    self._log.error("worker_exited", worker=index, pid=worker.pid, code=worker.returncode)
                    self._spawn(index)
            await asyncio.sleep(0.5)

    def signal(self, signum: int) -> None:
        """Pass ``signum`` on to every running worker."""
        for worker in self._workers:
            if worker is not None and worker.poll() is None:
                worker.send_signal(signum)

    def reload(self) -> ReloadOutcome:
        """``POST /-/reload``: validate the config file here, then SIGHUP every worker (each reloads
        it as on SIGHUP and logs the result); an invalid file is answered with its problems."""
        try:
            load_config(self._config_path)
        except ConfigError as error:
            self._log.error("config_reload_rejected", config=self._config_path, errors=error.problems)
            return ReloadOutcome(errors=tuple(error.problems))
        self.signal(signal.SIGHUP)
        return ReloadOutcome()

    async def stop(self) -> None:
        """SIGTERM every worker; one that is still running past its own deadline is killed."""
        self._stopping = True
        self.signal(signal.SIGTERM)
        deadline = time.monotonic() + self._shutdown_timeout_s + 3.0
        for index, worker in enumerate(self._workers):
            if worker is None:
                continue
            while worker.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if worker.poll() is None:
                self._log.error("worker_killed", worker=index, pid=worker.pid)
                worker.kill()
                worker.wait(5)

    def ready(self) -> tuple[bool, str]:
        """Ready when every worker runs, says it is ready and wrote within the last few seconds."""
        now = time.time()
        for index, (worker, directory) in enumerate(zip(self._workers, self.directories, strict=True)):
            if worker is None or worker.poll() is not None:
                return False, f"worker {index} is not running"
            try:
                stamp = (directory / READY_FILE).stat().st_mtime
                word = (directory / READY_FILE).read_text().strip()
            except OSError:
                return False, f"worker {index} is starting"
            if now - stamp > STALE_AFTER_S:
                return False, f"worker {index} has not reported for {now - stamp:.0f}s"
            ready, _, reason = word.partition(" ")
            if ready != "1":
                return False, f"worker {index}: {reason}"
        return True, "ready"
