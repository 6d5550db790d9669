"""A real pipeline behind real receivers on 127.0.0.1 port 0, on an event loop in a thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from prometheus_client import CollectorRegistry

from otlp_enricher.config import parse_config
from otlp_enricher.confignode import Endpoint
from otlp_enricher.pipeline import Backpressure, SpanBatch
from otlp_enricher.receiver.config import GrpcReceiverConfig, HttpReceiverConfig
from otlp_enricher.receiver.grpc import GrpcReceiver
from otlp_enricher.receiver.http import HttpReceiver
from otlp_enricher.service import build_metrics, build_pipeline
from tests.doubles import InertComponent

T = TypeVar("T")


class RecordingExporter(InertComponent):
    """A span exporter that keeps what it accepts, or refuses with backpressure when told to."""

    name = "recording"

    def __init__(self) -> None:
        self.batches: list[SpanBatch] = []
        self.refuse_for_s: float | None = None

    async def accept(self, batch: SpanBatch) -> None:
        """Keep the batch, or raise Backpressure."""
        if self.refuse_for_s is not None:
            raise Backpressure(self.name, self.refuse_for_s)
        self.batches.append(batch)


@dataclass
class Running:
    """Handles on the running receivers."""

    grpc_target: str
    http_url: str
    registry: CollectorRegistry
    exporter: RecordingExporter

    def value(self, name: str, **labels: str) -> float:
        """A sample value from the registry (0 when absent)."""
        return self.registry.get_sample_value(name, labels) or 0.0


class LoopThread:
    """An asyncio loop running in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout_s: float = 30) -> T:
        """Run ``coroutine`` on the loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout_s)

    def stop(self) -> None:
        """Stop the loop and join the thread."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


def start_receivers(max_recv_mib: int = 64, max_body_mib: int = 64, config_text: str = "") -> Iterator[Running]:
    """Start both receivers around a pipeline with a recording exporter; yield; stop them."""
    config = parse_config(
        config_text or "processors: {genai: {slos: [{name: s, objective: 0.9, latency_threshold_s: 2}]}}",
        "test",
        {},
    )
    registry = CollectorRegistry()
    metrics = build_metrics(config, registry)
    exporter = RecordingExporter()
    pipeline = build_pipeline(config, metrics, (), [exporter], ())
    loop = LoopThread()
    grpc_receiver = GrpcReceiver(GrpcReceiverConfig(Endpoint("127.0.0.1", 0), max_recv_mib), pipeline, metrics)
    http_receiver = HttpReceiver(HttpReceiverConfig(Endpoint("127.0.0.1", 0), max_body_mib), pipeline, metrics)

    async def start() -> tuple[int, int]:
        await grpc_receiver.start()
        await http_receiver.start()
        return grpc_receiver.port, http_receiver.port

    grpc_port, http_port = loop.run(start())
    try:
        yield Running(f"127.0.0.1:{grpc_port}", f"http://127.0.0.1:{http_port}/v1/traces", registry, exporter)
    finally:

        async def stop() -> None:
            await grpc_receiver.shutdown(1)
            await http_receiver.shutdown(1)

        loop.run(stop())
        loop.stop()


@pytest.fixture
def running() -> Iterator[Running]:
    """Receivers with the default limits."""
    yield from start_receivers()


def spans_in(batches: Sequence[SpanBatch]) -> int:
    """Spans the exporter accepted."""
    return sum(batch.span_count for batch in batches)
