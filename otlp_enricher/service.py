"""The composition root: builds every component from the config and starts/stops them in order.

Start downstream first (exporters, then receivers, then the telemetry endpoint); stop upstream
first (receivers stop accepting and drain, then exporters flush), all within one shared deadline
that no step can overrun (a step that fails or hangs — a disk gone read-only — is logged and left).

:meth:`Service.reload` (SIGHUP, or ``POST /-/reload`` with ``exporters.prometheus.enable_lifecycle``)
re-reads the config file and the price table, validates them fully, and swaps the pricing in one
assignment (:class:`ReloadableEnricher`): no request is priced by a half-built table and none at
$0 meanwhile. Only ``processors.genai.pricing`` is reloaded; other changed sections are named in
the log (and the HTTP answer) as needing a restart. An invalid file is rejected with its errors
and the running config kept. ``otlp_enricher_config_info`` carries the loaded file's hash and the
price table's version.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import importlib.metadata
import os
import time
from collections.abc import Awaitable, Sequence
from importlib import resources
from pathlib import Path

from prometheus_client import CollectorRegistry

from otlp_enricher.config import DEFAULT_CONFIG_RESOURCE, Config, load_config
from otlp_enricher.confignode import ConfigError, Endpoint
from otlp_enricher.connector.genai_metrics import GenaiMetricsConnector
from otlp_enricher.connector.metrics import MetricsConnector
from otlp_enricher.dataplane import Scanner
from otlp_enricher.exporter.budget import StorageBudget
from otlp_enricher.exporter.files import PromptLogFileExporter, SpanFileExporter
from otlp_enricher.exporter.loki import LokiExporter
from otlp_enricher.exporter.tempo import TempoExporter
from otlp_enricher.governance.budgets import export_budgets
from otlp_enricher.governance.rollup import (
    SUMMARY_FILE,
    FileSummaries,
    LokiSummaries,
    RollupEmitter,
    SummarySink,
    TraceRollup,
)
from otlp_enricher.lifecycle import Component
from otlp_enricher.model import LLMCall
from otlp_enricher.pipeline import CallExporter, CallSink, Pipeline, SpanExporter
from otlp_enricher.processor.cardinality import CardinalityGuard, SeriesBudget
from otlp_enricher.processor.enricher import Enricher
from otlp_enricher.processor.pricing import PriceBook
from otlp_enricher.processor.redaction import Redactor
from otlp_enricher.processor.slo import SloEvaluator
from otlp_enricher.receiver.config import ReceiversConfig
from otlp_enricher.receiver.grpc import GrpcReceiver
from otlp_enricher.receiver.http import HttpReceiver
from otlp_enricher.semconv.extract import CallExtractor, label_sources
from otlp_enricher.storage_files import make_private_dir
from otlp_enricher.telemetry.logging import get_logger
from otlp_enricher.telemetry.metrics import Metrics
from otlp_enricher.telemetry.server import ReloadOutcome, TelemetryServer
from otlp_enricher.telemetry.workers import ExpositionFile, worker_directory
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
    enricher: Enricher | None = None,
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
    enricher = enricher or build_enricher(config)
    budget = SeriesBudget(labels.max_series, metrics.series_budget_folded.inc)
    connectors: list[CallSink] = [MetricsConnector(metrics, guard, tuple(labels.allow), genai.slos, budget)]
    if genai.otel_metrics:
        # Its own guard, same caps: the llm_* guard already counts folds, once per call.
        quiet = CardinalityGuard(
            labels.max_values, labels.max_values_per_label, labels.max_value_length, on_fold=lambda label: None
        )
        connectors.append(GenaiMetricsConnector(metrics, quiet))
    return Pipeline(scanner, extractor, enricher, metrics, [*connectors, *extra_sinks], span_exporters, call_exporters)


def build_enricher(config: Config) -> Enricher:
    """The pricing and SLO enricher of ``config`` (price table loaded, every override resolved)."""
    genai = config.genai
    return Enricher(PriceBook(genai.pricing), SloEvaluator(genai.slos), genai.pricing.prefer_span_cost)


class ReloadableEnricher(Enricher):
    """An :class:`Enricher` whose implementation is replaced whole by :meth:`swap` (one assignment,
    atomic for every call after it; a call in progress finishes with the one it started with)."""

    def __init__(self, current: Enricher) -> None:
        self.current = current

    def enrich(self, call: LLMCall) -> None:
        """Enrich with the current implementation."""
        self.current.enrich(call)

    def swap(self, new: Enricher) -> None:
        """Use ``new`` from the next call on."""
        self.current = new


RESTART_SECTIONS = ("receivers", "exporters", "storage", "service", "redaction")


def config_digest(source: str) -> str:
    """SHA-256 prefix (12 hex digits) of the config file (or the embedded default) ``source`` names."""
    if source == DEFAULT_CONFIG_RESOURCE:
        data = resources.files("otlp_enricher").joinpath(DEFAULT_CONFIG_RESOURCE).read_bytes()
    else:
        data = Path(source).read_bytes()
    return hashlib.sha256(data).hexdigest()[:12]


def prices_version() -> str:
    """The version of the bundled price table (the ``genai-prices`` package)."""
    try:
        return importlib.metadata.version("genai-prices")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def build_exporters(
    config: Config, metrics: Metrics, redactor: Redactor
) -> tuple[list[SpanExporter], list[CallExporter]]:
    """Loki and Tempo when configured (each with its spool and sender; call ``start`` on them),
    their spools sharing one byte budget of ``storage.max_spool_bytes`` per exporter
    (``exporter/budget.py``); otherwise local JSON-lines files under the storage directory."""
    storage = config.storage
    directory = storage.directory
    fsync = storage.fsync != "never"
    exporters = config.exporters
    spooled = (exporters.tempo is not None) + (exporters.loki is not None)
    budget = StorageBudget(storage.max_spool_bytes * spooled)
    span_exporters: list[SpanExporter] = []
    call_exporters: list[CallExporter] = []
    if exporters.tempo is None:
        span_exporters.append(SpanFileExporter(directory, fsync, redactor, metrics))
    else:
        span_exporters.append(TempoExporter(exporters.tempo, storage, redactor, metrics, budget=budget))
    if exporters.loki is None:
        call_exporters.append(PromptLogFileExporter(directory, fsync, redactor, metrics))
    else:
        call_exporters.append(LokiExporter(exporters.loki, storage, redactor, metrics, budget=budget))
    return span_exporters, call_exporters


def build_rollup(config: Config, metrics: Metrics, call_exporters: Sequence[CallExporter]) -> RollupEmitter | None:
    """Per-trace and per-conversation summaries to the Loki stream, else to a local file (or off)."""
    settings = config.genai.rollup
    if not settings.enabled:
        return None
    loki = next((e for e in call_exporters if isinstance(e, LokiExporter)), None)
    sink: SummarySink
    if loki is not None and config.exporters.loki is not None:
        sink = LokiSummaries(loki, dict(config.exporters.loki.labels))
    else:
        sink = FileSummaries(config.storage.directory / SUMMARY_FILE)
    return RollupEmitter(TraceRollup(settings, metrics), sink, settings.idle_s, metrics)


def worker_receivers(config: Config, worker: int) -> ReceiversConfig:
    """The receivers of worker ``worker``: the configured ports, or offset by ``worker_port_step``."""
    offset = worker * config.service.worker_port_step
    receivers = config.receivers
    if offset == 0:
        return receivers

    def moved(endpoint: Endpoint) -> Endpoint:
        return dataclasses.replace(endpoint, port=endpoint.port + offset)

    grpc = receivers.grpc and dataclasses.replace(receivers.grpc, endpoint=moved(receivers.grpc.endpoint))
    http = receivers.http and dataclasses.replace(receivers.http, endpoint=moved(receivers.http.endpoint))
    return dataclasses.replace(receivers, grpc=grpc, http=http)


class Service:
    """One running otlp-enricher: receivers, pipeline, exporters and the telemetry endpoint."""

    def __init__(self, config: Config, registry: CollectorRegistry | None = None, worker: int | None = None) -> None:
        """``worker``: run as worker ``worker`` of a supervisor (``service.workers``): files under
        ``storage.directory/worker-<i>``, receiver ports shared, metrics written to a file."""
        root = config.storage.directory
        if worker is not None:
            storage = dataclasses.replace(config.storage, directory=worker_directory(root, worker))
            config = dataclasses.replace(config, storage=storage, receivers=worker_receivers(config, worker))
        self.config = config
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = build_metrics(config, self.registry)
        export_budgets(self.metrics, config.genai.budgets)
        make_private_dir(config.storage.directory)
        redactor = Redactor(resolve_redaction(config.redaction, root))  # one user-id key for all workers
        span_exporters, call_exporters = build_exporters(config, self.metrics, redactor)
        self.exporters: tuple[SpanExporter | CallExporter, ...] = (*span_exporters, *call_exporters)
        self.enricher = ReloadableEnricher(build_enricher(config))
        self.rollup = build_rollup(config, self.metrics, call_exporters)
        sinks = (self.rollup.rollup,) if self.rollup is not None else ()
        self.pipeline = build_pipeline(
            config, self.metrics, sinks, span_exporters, call_exporters, redactor, self.enricher
        )
        self._config_labels = self._set_config_info(config)
        receivers = config.receivers
        shared = worker is not None and config.service.worker_port_step == 0
        self.grpc = GrpcReceiver(receivers.grpc, self.pipeline, self.metrics, shared) if receivers.grpc else None
        self.http = HttpReceiver(receivers.http, self.pipeline, self.metrics, shared) if receivers.http else None
        self.telemetry: TelemetryServer | ExpositionFile = (
            ExpositionFile(self.registry, config.storage.directory, self.ready)
            if worker is not None
            else TelemetryServer(config.exporters.prometheus, self.registry, self.ready, self.metrics, self._reload_now)
        )
        # Started in this order, stopped in the reverse one; telemetry comes up last and goes down
        # last, so /metrics and /readyz answer throughout the drain.
        self._stages: list[list[Component]] = [
            list(self.exporters),
            [self.rollup] if self.rollup is not None else [],
            [receiver for receiver in (self.grpc, self.http) if receiver is not None],
            [self.telemetry],
        ]
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reloading = asyncio.Lock()
        self._started = False
        self._stopping = False
        self._stopped = asyncio.Event()
        self._log = get_logger("service")

    def ready(self) -> tuple[bool, str]:
        """Ready when the receivers are bound and every spool takes durable writes (no storage fault)."""
        if not self._started:
            return False, "starting"
        if self._stopping:
            return False, "shutting down"
        if not os.access(self.config.storage.directory, os.W_OK):
            return False, f"storage directory {self.config.storage.directory} is not writable"
        for stage in self._stages:
            for component in stage:
                if (problem := component.ready()) is not None:
                    return False, problem
        return True, "ready"

    def _set_config_info(self, config: Config) -> tuple[str, str]:
        try:
            digest = config_digest(config.source)
        except OSError:
            digest = "unreadable"
        labels = (digest, prices_version())
        self.metrics.config_info.labels(*labels).set(1)
        return labels

    def _reload_now(self, timeout_s: float = 60.0) -> ReloadOutcome:
        """:meth:`reload` from another thread (``POST /-/reload``), blocking until it is done."""
        loop = self._loop
        if loop is None or self._stopping:
            return ReloadOutcome(errors=("the service is not running",))
        return asyncio.run_coroutine_threadsafe(self.reload("POST /-/reload"), loop).result(timeout_s)

    async def reload(self, trigger: str = "SIGHUP") -> ReloadOutcome:
        """Re-read the config file and the price table; swap the pricing if valid (see the module
        doc). One reload at a time; ``trigger`` is logged."""
        async with self._reloading:
            return await self._reload(trigger)

    async def _reload(self, trigger: str) -> ReloadOutcome:
        source = self.config.source
        try:
            new = await asyncio.to_thread(load_config, None if source == DEFAULT_CONFIG_RESOURCE else source)
            # the running config with the new pricing: SLOs stay as the metrics were built for them
            genai = dataclasses.replace(self.config.genai, pricing=new.genai.pricing)
            merged = dataclasses.replace(self.config, genai=genai)
            enricher = await asyncio.to_thread(build_enricher, merged)
        except ConfigError as error:
            self.metrics.config_reloads.labels("invalid").inc()
            self._log.error("config_reload_rejected", config=source, trigger=trigger, errors=error.problems)
            return ReloadOutcome(errors=tuple(error.problems))
        except Exception as error:  # an unreadable file or price table: keep what runs
            problem = f"{type(error).__name__}: {error}"
            self.metrics.config_reloads.labels("failed").inc()
            self._log.error("config_reload_failed", config=source, trigger=trigger, error=problem)
            return ReloadOutcome(errors=(problem,))
        restart = [name for name in RESTART_SECTIONS if getattr(new, name) != getattr(self.config, name)]
        if dataclasses.replace(new.genai, pricing=self.config.genai.pricing) != self.config.genai:
            restart.append("processors.genai (other than pricing)")
        self.enricher.swap(enricher)
        self.config = merged
        self.metrics.config_info.remove(*self._config_labels)
        self._config_labels = self._set_config_info(self.config)
        self.metrics.config_reloads.labels("ok").inc()
        self._log.info(
            "config_reloaded",
            config=source,
            trigger=trigger,
            config_sha256=self._config_labels[0],
            prices_version=self._config_labels[1],
            restart_required_for=restart,
        )
        return ReloadOutcome(restart_required_for=tuple(restart))

    async def start(self) -> None:
        """Start every component downstream first: exporters (recovering their spools, whose
        contents are sent first), the rollup, receivers, telemetry. If one fails, every component
        is shut down again (a no-op for those not started; it also frees what a constructor bound,
        such as the telemetry port) and the error raised."""
        self._loop = asyncio.get_running_loop()
        try:
            for stage in self._stages:
                for component in stage:
                    await component.start()
        except BaseException:
            for stage in reversed(self._stages):
                for component in reversed(stage):
                    await component.shutdown(0.0)
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
        """Stop upstream first within ``shutdown_timeout_s``: receivers (intake refused at once,
        in-flight calls finish), the rollup (its last summaries go to an exporter), exporters
        (flush, keep the rest spooled), telemetry last. Each stage gets half the time left, the
        exporters all of it; a stage that overruns is logged and left behind."""
        if self._stopping:
            await self._stopped.wait()
            return
        self._stopping = True
        deadline = time.monotonic() + self.config.service.shutdown_timeout_s
        *pipeline_stages, telemetry = self._stages
        try:
            for index, stage in reversed(list(enumerate(pipeline_stages))):
                if not stage:
                    continue
                left = max(0.0, deadline - time.monotonic())
                share = left if index == 0 else left / 2
                names = "+".join(component.name for component in stage)
                await self._step(names, asyncio.gather(*(c.shutdown(share) for c in stage)), deadline)
            for component in telemetry:
                await self._step(component.name, component.shutdown(max(0.0, deadline - time.monotonic())), deadline)
        finally:
            self._stopped.set()
        self._log.info("service_stopped")

    async def _step(self, name: str, work: Awaitable[object], deadline: float) -> None:
        """Run one shutdown step until ``deadline`` (plus a little for the step's own last act);
        a step that fails or overruns is logged and left behind, never waited for."""
        task = asyncio.ensure_future(work)
        done, _ = await asyncio.wait({task}, timeout=max(0.0, deadline - time.monotonic()) + 0.5)
        if not done:
            task.cancel()
            self._log.error("shutdown_step_overran", step=name)
        elif not task.cancelled() and task.exception() is not None:
            error = task.exception()
            self._log.error("shutdown_step_failed", step=name, error=f"{type(error).__name__}: {error}")

    async def wait_stopped(self) -> None:
        """Return once :meth:`shutdown` has finished."""
        await self._stopped.wait()
