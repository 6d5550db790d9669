"""Recorded OTLP files → the same pipeline, in-process (``--report``) or to an OTLP endpoint (``--to``).

Reads what the Collector's file exporter writes: OTLP/JSON lines or length-prefixed protobuf.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

import grpc
from prometheus_client import CollectorRegistry

from otlp_enricher.config import Config
from otlp_enricher.connector.report import ReportSink
from otlp_enricher.dataplane import Scanner
from otlp_enricher.otlp_json import read_recorded
from otlp_enricher.service import build_metrics, build_pipeline

_EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


class _Progress:
    """A one-line progress counter on a terminal; silent when output is not a TTY."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._on = stream.isatty()
        self._last = 0.0
        self.requests = 0
        self.spans = 0

    def add(self, spans: int) -> None:
        self.requests += 1
        self.spans += spans
        now = time.monotonic()
        if self._on and now - self._last > 0.2:
            self._last = now
            self._stream.write(f"\rreplayed {self.requests} requests, {self.spans} spans")
            self._stream.flush()

    def done(self) -> None:
        if self._on:
            self._stream.write(f"\rreplayed {self.requests} requests, {self.spans} spans\n")


def iter_requests(paths: Iterable[str | Path]) -> Iterator[bytes]:
    """Every request of every file, in order, serialised as protobuf."""
    for path in paths:
        yield from read_recorded(path)


def replay_report(config: Config, paths: Iterable[str | Path], progress: TextIO = sys.stderr) -> ReportSink:
    """Run every recorded request through the pipeline in-process and return the per-model report."""
    report = ReportSink()
    pipeline = build_pipeline(config, build_metrics(config, CollectorRegistry()), [report])
    counter = _Progress(progress)

    async def run() -> None:
        for request in iter_requests(paths):
            outcome = await pipeline.export(request, "replay")
            report.spans_rejected += outcome.rejected_count
            counter.add(outcome.span_count)

    asyncio.run(run())
    counter.done()
    return report


def replay_to(target: str, paths: Iterable[str | Path], progress: TextIO = sys.stderr) -> int:
    """Send every recorded request to an OTLP/gRPC endpoint; returns the number of spans sent."""
    options = [("grpc.max_send_message_length", 64 * 1024 * 1024)]
    with grpc.insecure_channel(target, options=options) as channel:
        return send_requests(channel, iter_requests(paths), progress)


def send_requests(
    channel: grpc.Channel, requests: Iterable[bytes], progress: TextIO = sys.stderr, timeout_s: float = 30.0
) -> int:
    """Export each request over ``channel``; returns the number of spans sent.

    UNAVAILABLE answers are retried after a second, up to 30 times; other errors stop the replay.
    """
    counter = _Progress(progress)
    counter_scan = Scanner()
    export: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(_EXPORT_METHOD)
    for body in requests:
        spans = counter_scan.scan(body).span_count  # validates before sending, too
        for attempt in range(30):
            try:
                export(body, timeout=timeout_s)
                break
            except grpc.RpcError as error:
                if error.code() != grpc.StatusCode.UNAVAILABLE or attempt == 29:
                    raise
                time.sleep(1.0)
        counter.add(spans)
    counter.done()
    return counter.spans
