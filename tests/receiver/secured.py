"""Receivers and the metrics endpoint started from a YAML config (TLS, auth, limits as written)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from prometheus_client import CollectorRegistry

from otlp_enricher.config import Config, parse_config
from otlp_enricher.receiver.grpc import GrpcReceiver
from otlp_enricher.receiver.http import HttpReceiver
from otlp_enricher.service import build_metrics, build_pipeline
from otlp_enricher.telemetry.server import TelemetryServer
from tests.receiver.conftest import LoopThread, RecordingExporter


@dataclass
class Secured:
    """Ports of the running listeners and the registry they count into."""

    config: Config
    grpc_port: int
    http_port: int
    metrics_port: int
    registry: CollectorRegistry
    exporter: RecordingExporter

    def value(self, name: str, **labels: str) -> float:
        """A sample value (0 when absent)."""
        return self.registry.get_sample_value(name, labels) or 0.0


@contextmanager
def secured(
    config_text: str, environ: dict[str, str] | None = None, exporter: RecordingExporter | None = None
) -> Iterator[Secured]:
    """Start gRPC, HTTP and the telemetry server of ``config_text`` (endpoints should use port 0)."""
    config = parse_config(config_text, "test.yaml", environ or {})
    registry = CollectorRegistry()
    metrics = build_metrics(config, registry)
    exporter = exporter or RecordingExporter()
    pipeline = build_pipeline(config, metrics, (), [exporter], ())
    assert config.receivers.grpc is not None and config.receivers.http is not None
    loop = LoopThread()
    grpc_receiver = GrpcReceiver(config.receivers.grpc, pipeline, metrics)
    http_receiver = HttpReceiver(config.receivers.http, pipeline, metrics)
    telemetry = TelemetryServer(config.exporters.prometheus, registry, lambda: (True, "ready"), metrics)

    async def start() -> tuple[int, int]:
        await grpc_receiver.start()
        await http_receiver.start()
        return grpc_receiver.port, http_receiver.port

    grpc_port, http_port = loop.run(start())
    loop.run(telemetry.start())
    try:
        yield Secured(config, grpc_port, http_port, telemetry.port, registry, exporter)
    finally:
        loop.run(telemetry.shutdown(1.0))

        async def stop() -> None:
            await grpc_receiver.shutdown(1)
            await http_receiver.shutdown(1)

        loop.run(stop())
        loop.stop()
