"""The composition root: builds every component from the config and starts/stops them in order.

Start downstream first (exporters, then receivers, then the telemetry endpoint); stop upstream
first (receivers stop accepting and drain, then exporters flush), all within one shared deadline.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence

from prometheus_client import CollectorRegistry

from otlp_enricher.config import Config
from otlp_enricher.connector.metrics import MetricsConnector
from otlp_enricher.dataplane import Scanner
from otlp_enricher.exporter.files import PromptLogFileExporter, SpanFileExporter
from otlp_enricher.exporter.loki import LokiExporter
from otlp_enricher.exporter.spooled import SpooledExporter
from otlp_enricher.exporter.tempo import TempoExporter
from otlp_enricher.pipeline import CallExporter, CallSink, Enricher, Pipeline, SpanExporter
from otlp_enricher.processor.cardinality import CardinalityGuard, SeriesBudget
from otlp_enricher.processor.pricing import PriceBook
from otlp_enricher.processor.redaction import Redactor
from otlp_enricher.processor.slo import SloEvaluator
from otlp_enricher.receiver.grpc import GrpcReceiver
from otlp_enricher.receiver.http import HttpReceiver
from otlp_enricher.semconv.extract import CallExtractor, label_sources
from otlp_enricher.storage_files import make_private_dir
from otlp_enricher.telemetry.logging import get_logger
from otlp_enricher.telemetry.metrics import Metrics
from otlp_enricher.telemetry.server import TelemetryServer
from otlp_enricher.userid_key import resolve_redaction


def build_metrics(config: Config, registry: CollectorRegistry) -> Metrics:
    """Declare every metric, with SLO thresholds added to the bucket boundaries."""
    buckets = config.genai.buckets
    latency = {slo.latency_threshold_s for slo in config.genai.slos if slo.latency_threshold_s is not None}
    ttft = {slo.ttft_threshold_s for slo in config.genai.slos if slo.ttft_threshold_s is not None}
    return Metrics(
        registry,
        extra_labels=tuple(config.genai.labels.allow),
        duration_buckets=sorted(set(buckets.duration_s) | latency),
        ttft_buckets=sorted(set(buckets.time_to_first_token_s) | ttft),
        tpot_buckets=sorted(buckets.time_per_output_token_s),
    )


def build_pipeline(
    config: Config,
    metrics: Metrics,
    extra_sinks: Sequence[CallSink] = (),
    span_exporters: Sequence[SpanExporter] = (),
    call_exporters: Sequence[CallExporter] = (),
    redactor: Redactor | None = None,
) -> Pipeline:
    """The pipeline every receiver and ``replay`` share: extract → enrich → metrics (+ sinks) → exporters.

    Content is scrubbed as it is scanned when ``processors.redaction`` applies to prompt logs;
    pass the exporters' ``redactor`` so all outputs share one memory of scrub results.
    """
    genai = config.genai
    labels = genai.labels
    guard = CardinalityGuard(
        labels.max_values,
        labels.max_values_per_label,
        labels.max_value_length,
        on_fold=lambda label: metrics.labels_folded.labels(label).inc(),
    )
    extractor = CallExtractor(genai.usage, label_sources(labels.allow))
    redactor = redactor if redactor is not None else Redactor(config.redaction)
    scanner = Scanner(
        (key for attribute_keys in labels.allow.values() for key in attribute_keys),
        redactor.native if redactor.prompt_logs else None,
    )
    enricher = Enricher(PriceBook(genai.pricing), SloEvaluator(genai.slos), genai.pricing.prefer_span_cost)
    budget = SeriesBudget(labels.max_series, metrics.series_budget_folded.inc)
    connector = MetricsConnector(metrics, guard, tuple(labels.allow), genai.slos, budget)
    return Pipeline(scanner, extractor, enricher, metrics, [connector, *extra_sinks], span_exporters, call_exporters)


def build_exporters(
    config: Config, metrics: Metrics, redactor: Redactor
) -> tuple[list[SpanExporter], list[CallExporter]]:
    """Loki and Tempo when configured (each with its spool and sender; call ``start`` on them);
    otherwise local JSON-lines files under the storage directory."""
    storage = config.storage
    directory = storage.directory
    fsync = storage.fsync != "never"
    span_exporters: list[SpanExporter] = []
    call_exporters: list[CallExporter] = []
    if config.exporters.tempo is None:
        span_exporters.append(SpanFileExporter(directory, fsync, redactor, metrics))
    else:
        span_exporters.append(TempoExporter(config.exporters.tempo, storage, redactor, metrics))
    if config.exporters.loki is None:
        call_exporters.append(PromptLogFileExporter(directory, fsync, redactor, metrics))
    else:
        call_exporters.append(LokiExporter(config.exporters.loki, storage, redactor, metrics))
    return span_exporters, call_exporters


class Service:
    """One running otlp-enricher: receivers, pipeline, exporters and the telemetry endpoint."""

    def __init__(self, config: Config, registry: CollectorRegistry | None = None) -> None:
        self.config = config
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = build_metrics(config, self.registry)
        make_private_dir(config.storage.directory)
        redactor = Redactor(resolve_redaction(config.redaction, config.storage.directory))
        span_exporters, call_exporters = build_exporters(config, self.metrics, redactor)
        self.spooled = [e for e in (*span_exporters, *call_exporters) if isinstance(e, SpooledExporter)]
        self.pipeline = build_pipeline(config, self.metrics, (), span_exporters, call_exporters, redactor)
        receivers = config.receivers
        self.grpc = GrpcReceiver(receivers.grpc, self.pipeline, self.metrics) if receivers.grpc else None
        self.http = HttpReceiver(receivers.http, self.pipeline, self.metrics) if receivers.http else None
        self.telemetry = TelemetryServer(config.exporters.prometheus, self.registry, self.ready, self.metrics)
        self._started = False
        self._stopping = False
        self._stopped = asyncio.Event()
        self._log = get_logger("service")

    def ready(self) -> tuple[bool, str]:
        """Ready when the receivers are bound and the storage directory is writable."""
        if not self._started:
            return False, "starting"
        if not os.access(self.config.storage.directory, os.W_OK):
            return False, f"storage directory {self.config.storage.directory} is not writable"
        for exporter in self.spooled:
            if not exporter.writable or not os.access(exporter.spool.directory, os.W_OK):
                return False, f"spool of {exporter.name} is not writable"
        return True, "ready"

    async def start(self) -> None:
        """Start exporters (recovering their spools, whose contents are sent first), receivers, telemetry."""
        started: list[GrpcReceiver | HttpReceiver] = []
        try:
            for exporter in self.spooled:
                await exporter.start()
            for receiver in (self.grpc, self.http):
                if receiver is not None:
                    await receiver.start()
                    started.append(receiver)
            self.telemetry.start()
        except BaseException:
            for receiver in started:
                await receiver.shutdown(0)
            await self.pipeline.shutdown(1.0)
            raise
        self._started = True
        for warning in self.config.warnings:
            self._log.warning("insecure_credentials", detail=warning)
        self._log.info(
            "service_started",
            config=self.config.source,
            grpc_port=self.grpc.port if self.grpc else None,
            http_port=self.http.port if self.http else None,
            metrics_port=self.telemetry.port,
            storage=str(self.config.storage.directory),
        )

    async def shutdown(self) -> None:
        """Stop accepting, finish in-flight calls, flush exporters; all within ``shutdown_timeout_s``."""
        if self._stopping:
            await self._stopped.wait()
            return
        self._stopping = True
        deadline = time.monotonic() + self.config.service.shutdown_timeout_s
        receivers = [r for r in (self.grpc, self.http) if r is not None]
        for receiver in receivers:
            await receiver.stop_accepting()
        grace = max(0.0, (deadline - time.monotonic()) / 2)
        await asyncio.gather(*(receiver.shutdown(grace) for receiver in receivers))
        await self.pipeline.shutdown(max(0.0, deadline - time.monotonic()))
        self.telemetry.shutdown()
        self._stopped.set()
        self._log.info("service_stopped")

    async def wait_stopped(self) -> None:
        """Return once :meth:`shutdown` has finished."""
        await self._stopped.wait()
