"""Fault-test harness: a Collector-like upstream, a steady load, the sidecar in-process or as a process.

The upstream behaves like the Collector's otlp exporter: a 5 s per-attempt timeout, and on a
retryable answer (UNAVAILABLE, with or without RetryInfo) it sends the same request again. What
it records — which spans were acknowledged, every status seen, every ack latency — is what the
tests check the peers against.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from otlp_enricher.config import Config
from otlp_enricher.exporter.fileops import FileOps
from otlp_enricher.exporter.spooled import SpooledExporter
from otlp_enricher.service import Service
from tests.net import raw_export
from tests.peers.fake_loki import FakeLoki
from tests.peers.fake_tempo import FakeTempo
from tests.peers.workload import mixed_request, span_keys

OUTAGE_S = float(os.environ.get("OTLP_ENRICHER_OUTAGE_S", "5"))
"""How long the outage tests keep a backend down (the issue's scenario is a minute: set 60)."""
RETRYABLE = {grpc.StatusCode.UNAVAILABLE}
ROOT = Path(__file__).resolve().parents[2]


def loki_span_ids(loki: FakeLoki) -> set[str]:
    """Span ids of the LLM calls whose prompt-log line Loki holds."""
    return {entry.metadata.get("span_id", "") for entry in loki.entries.values()}


@dataclass
class Upstream:
    """A Collector-like OTLP/gRPC client that retries retryable answers until acknowledged."""

    target: str
    acked_spans: set[tuple[bytes, bytes]] = field(default_factory=set)
    acked_llm_span_ids: set[str] = field(default_factory=set)
    codes: Counter[str] = field(default_factory=Counter)
    latencies_s: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._channel = grpc.insecure_channel(self.target)
        self._export = raw_export(self._channel)

    def send(self, seed: int, stop: threading.Event, llm: int = 2, plain: int = 3) -> bool:
        """Send one request (retrying) until acknowledged; False if ``stop`` came first."""
        message = mixed_request(llm, plain, seed)
        body = message.SerializeToString()
        llm_ids = {s.span_id.hex() for s in message.resource_spans[0].scope_spans[0].spans[:llm]}
        while not stop.is_set():
            started = time.monotonic()
            try:
                self._export(body, timeout=5.0, compression=grpc.Compression.Gzip)
            except grpc.RpcError as error:
                code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
                with self.lock:
                    self.codes[code.name] += 1
                    if code == grpc.StatusCode.UNAVAILABLE:
                        self.latencies_s.append(time.monotonic() - started)
                stop.wait(0.05)
                continue
            with self.lock:
                self.codes["OK"] += 1
                self.latencies_s.append(time.monotonic() - started)
                self.acked_spans |= span_keys(message)
                self.acked_llm_span_ids |= llm_ids
            return True
        return False

    def acked(self) -> tuple[set[tuple[bytes, bytes]], set[str]]:
        """A copy of what was acknowledged so far: (trace id, span id) of every span, LLM span ids."""
        with self.lock:
            return set(self.acked_spans), set(self.acked_llm_span_ids)

    def assert_delivered(self, loki: FakeLoki, tempo: FakeTempo, timeout_s: float = 60.0) -> None:
        """Wait until Tempo holds every acknowledged span and Loki every acknowledged call's line."""
        spans, llm = self.acked()
        assert tempo.wait_until(lambda peer: spans <= peer.spans.keys(), timeout_s), "spans missing in Tempo"
        assert loki.wait_until(lambda peer: llm <= loki_span_ids(peer), timeout_s), "lines missing in Loki"

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()


class Load:
    """``workers`` threads sending requests back to back through one :class:`Upstream`."""

    def __init__(self, upstream: Upstream, workers: int = 4, llm: int = 2, plain: int = 3) -> None:
        self.upstream = upstream
        self.stop = threading.Event()
        self.sent = 0
        self._next = 0
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._work, args=(llm, plain), daemon=True) for _ in range(workers)]

    def start(self) -> Load:
        """Start sending."""
        for thread in self._threads:
            thread.start()
        return self

    def _work(self, llm: int, plain: int) -> None:
        while not self.stop.is_set():
            with self._lock:
                self._next += 1
                seed = self._next * 100
            if self.upstream.send(seed, self.stop, llm, plain):
                with self._lock:
                    self.sent += 1

    def acked(self) -> int:
        """Requests acknowledged so far."""
        with self._lock:
            return self.sent

    def wait_acked(self, count: int, timeout_s: float = 30.0) -> bool:
        """Wait until ``count`` requests were acknowledged."""
        deadline = time.monotonic() + timeout_s
        while self.acked() < count:
            if time.monotonic() > deadline:
                return False
            self.stop.wait(0.01)
        return True

    def finish(self) -> None:
        """Stop and join the workers."""
        self.stop.set()
        for thread in self._threads:
            thread.join(10)


class InProcess:
    """The sidecar's Service on an event loop in a thread."""

    def __init__(self, config: Config, file_ops: FileOps | None = None) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.service = self.run(_make_service(config))
        if file_ops is not None:  # every spool and dead-letter syscall through the test's file layer
            for exporter in self.service.exporters:
                if isinstance(exporter, SpooledExporter):
                    exporter.use_file_ops(file_ops)
        self.run(self.service.start())
        assert self.service.grpc is not None
        self.target = f"127.0.0.1:{self.service.grpc.port}"

    def run(self, coroutine: Any, timeout_s: float = 30.0) -> Any:
        """Run ``coroutine`` on the service's loop."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout_s)

    def readiness(self) -> tuple[int, str]:
        """``GET /readyz``: status and body."""
        url = f"http://127.0.0.1:{self.service.telemetry.port}/readyz"
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as refused:
            return refused.code, refused.read().decode()

    def stop(self) -> float:
        """Shut the service down (within its deadline) and stop the loop; seconds the shutdown took."""
        started = time.monotonic()
        self.run(self.service.shutdown(), 60)
        took_s = time.monotonic() - started
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()
        return took_s


async def _make_service(config: Config) -> Service:
    return Service(config)


class SidecarProcess:
    """``python -m otlp_enricher serve --config …`` as a child process; logs parsed as JSON lines."""

    def __init__(self, config_path: Path) -> None:
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.log: list[dict[str, Any]] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "otlp_enricher", "serve", "--config", str(config_path)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        with self.process.stdout as stream:
            for raw in stream:
                try:
                    event = json.loads(raw)
                except ValueError:
                    event = {"event": "raw", "text": raw.decode(errors="replace")}
                self.log.append(event)
                self.events.put(event)

    def wait_event(self, name: str, timeout_s: float = 30.0) -> dict[str, Any]:
        """The next log event called ``name``."""
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (self.process.poll() is not None and self.events.empty()):
                raise AssertionError(f"no {name} event; log: {self.log[-20:]}")
            try:
                event = self.events.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            if event.get("event") == name:
                return event

    def kill(self) -> None:
        """SIGKILL, and reap."""
        self.process.kill()
        self.process.wait(10)
        self._reader.join(10)

    def terminate(self, timeout_s: float) -> float:
        """SIGTERM; returns seconds until the process exited (raises if it did not within ``timeout_s``)."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout_s)
        took_s = time.monotonic() - started
        self._reader.join(10)
        return took_s
