"""Recorded OTLP files → the same pipeline, in-process (``--report``) or to an OTLP endpoint (``--to``).

Reads what the Collector's file exporter writes: OTLP/JSON lines or length-prefixed protobuf. A file
that is neither (a manifest beside the recordings, say) or that breaks off is named on the progress
stream and passed over, so ``replay --report dir/*`` replays what it can; :class:`NothingToReplay`
when no file held a request.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TextIO

import grpc
from prometheus_client import CollectorRegistry

from otlp_enricher.config import Config
from otlp_enricher.connector.report import ReportSink
from otlp_enricher.dataplane import validate
from otlp_enricher.otlp_json import OtlpDecodeError, read_recorded
from otlp_enricher.otlp_protocol import EXPORT_METHOD
from otlp_enricher.service import build_metrics, build_pipeline


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


def _notes(stream: TextIO) -> Callable[[str], None]:
    """Write a line of its own on ``stream``, clearing a progress counter drawn on a terminal."""
    clear = "\r\x1b[K" if stream.isatty() else ""

    def note(message: str) -> None:
        stream.write(f"{clear}{message}\n")
        stream.flush()

    return note


class NothingToReplay(Exception):
    """None of the given files held an OTLP traces request."""


def iter_requests(paths: Iterable[str | Path]) -> Iterator[bytes]:
    """Every request of every file, in order, serialised as protobuf; the first unreadable file raises."""
    for path in paths:
        yield from read_recorded(path)


def readable_requests(paths: Iterable[str | Path], skip: Callable[[str], None]) -> Iterator[bytes]:
    """Every request of every file, in order; ``skip`` gets one line for each file passed over.

    A file is passed over when its first request cannot be read (not OTLP), and the rest of a file
    after a request that cannot be read (cut off or corrupt). Raises :class:`NothingToReplay` at
    the end when no request was read at all.
    """
    read = 0
    for path in paths:
        reason = _not_length_prefixed(path)
        if reason is not None:
            skip(f"replay: skipped, not an OTLP traces file: {path}: {reason}")
            continue
        requests = read_recorded(path)
        in_file = 0
        while True:
            try:
                request = next(requests)
                validate(request)  # every byte (length-prefixed bodies are not checked on reading)
            except StopIteration:
                break
            except (OtlpDecodeError, OSError) as error:
                # Decode errors name the file (and line or byte); so do open() errors.
                if in_file:
                    skip(f"replay: skipped the rest of a file after request {in_file}: {error}")
                else:
                    skip(f"replay: skipped, not an OTLP traces file: {error}")
                break
            in_file += 1
            read += 1
            yield request
    if not read:
        raise NothingToReplay("no OTLP traces request in the given files")


def _not_length_prefixed(path: str | Path) -> str | None:
    """Why ``path``, read as length-prefixed protobuf, cannot be one; ``None`` when it may be.

    ``read_recorded`` takes any file that does not start with ``{`` for length-prefixed protobuf, so
    a text file's first four bytes become an absurd length ("truncated, 3250 of 1527390240 bytes");
    a first length longer than the file says the file is something else.
    """
    try:
        with open(path, "rb") as stream:
            head = stream.read(4)
            size = os.fstat(stream.fileno()).st_size
    except OSError:
        return None  # read_recorded reports it
    # JSON lines, or zstd (magic 28 b5 2f fd), which read_recorded names itself.
    if len(head) < 4 or head.lstrip()[:1] == b"{" or head == b"\x28\xb5\x2f\xfd":
        return None
    declared = int.from_bytes(head, "big")
    if declared <= size - 4:
        return None
    return f"neither OTLP/JSON lines nor length-prefixed protobuf (starts with {head!r})"


def replay_report(config: Config, paths: Iterable[str | Path], progress: TextIO = sys.stderr) -> ReportSink:
    """Run every recorded request through the pipeline in-process and return the per-model report.

    Files that cannot be read are named on ``progress`` and passed over (:func:`readable_requests`).
    """
    report = ReportSink()
    pipeline = build_pipeline(config, build_metrics(config, CollectorRegistry()), [report])
    counter = _Progress(progress)

    async def run() -> None:
        for request in readable_requests(paths, _notes(progress)):
            outcome = await pipeline.export(request, "replay")
            report.spans_rejected += outcome.rejected_count
            counter.add(outcome.span_count)

    asyncio.run(run())
    counter.done()
    return report


def replay_to(target: str, paths: Iterable[str | Path], progress: TextIO = sys.stderr) -> int:
    """Send every recorded request to an OTLP/gRPC endpoint; returns the number of spans sent.

    Files that cannot be read are named on ``progress`` and passed over (:func:`readable_requests`).
    """
    options = [("grpc.max_send_message_length", 64 * 1024 * 1024)]
    with grpc.insecure_channel(target, options=options) as channel:
        return send_requests(channel, readable_requests(paths, _notes(progress)), progress)


def send_requests(
    channel: grpc.Channel, requests: Iterable[bytes], progress: TextIO = sys.stderr, timeout_s: float = 30.0
) -> int:
    """Export each request over ``channel``; returns the number of spans sent.

    UNAVAILABLE answers are retried after a second, up to 30 times; other errors stop the replay.
    """
    counter = _Progress(progress)
    export: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(EXPORT_METHOD)
    for body in requests:
        spans = validate(body)  # and counts
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
