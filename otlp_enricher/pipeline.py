"""The per-request path: recognise LLM calls, derive cost/rates/SLOs/errors, hand off to exporters.

``Pipeline.export`` is what every receiver (and ``replay``) calls with one decoded OTLP request.
Exporters accept a batch *durably* (delivered or spooled) before the request is acknowledged, and
refuse with :class:`Backpressure` when they cannot take more; metrics are updated only once the
batch is accepted, and only for calls not seen before, so neither a retried request nor a call
traced twice is counted twice.
"""

from __future__ import annotations

import asyncio
from collections import Counter as Tally
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from otlp_enricher.dataplane import Scanner, split, validate
from otlp_enricher.lifecycle import Component
from otlp_enricher.model import LLMCall, SpanRejected
from otlp_enricher.processor.dedupe import RecentCalls, ScopePrecedence
from otlp_enricher.processor.enricher import Enricher
from otlp_enricher.semconv.attributes import Attributes
from otlp_enricher.semconv.extract import CallExtractor, service_name
from otlp_enricher.telemetry.metrics import Metrics

PART_BYTES = 4 << 20
"""Requests larger than this are processed in parts (see :meth:`Pipeline.export`)."""
PART_SPANS = 2_000


class Backpressure(Exception):
    """An exporter cannot accept more now; the sender should retry after ``retry_after_s``."""

    def __init__(self, exporter: str, retry_after_s: float) -> None:
        super().__init__(f"{exporter} is full; retry after {retry_after_s:g}s")
        self.exporter = exporter
        self.retry_after_s = retry_after_s


@dataclass(slots=True)
class SpanBatch:
    """One received request: its protobuf bytes (``ExportTraceServiceRequest``) and its LLM calls."""

    raw: bytes
    calls: list[LLMCall]
    span_count: int


class SpanExporter(Component, Protocol):
    """Takes every span of every request (Tempo, or local files); on shutdown, flushes what it can
    before the deadline and keeps the rest."""

    async def accept(self, batch: SpanBatch) -> None:
        """Return once the batch is delivered or durably queued; raise :class:`Backpressure` if full."""


class CallExporter(Component, Protocol):
    """Takes every LLM call record (Loki prompt logs, or local files); on shutdown, flushes what it
    can before the deadline and keeps the rest."""

    async def accept(self, calls: Sequence[LLMCall]) -> None:
        """Return once the records are delivered or durably queued; raise :class:`Backpressure` if full."""


class CallSink(Protocol):
    """An in-process consumer of enriched calls (metrics, replay reports); never blocks, never fails."""

    def consume(self, calls: Sequence[LLMCall]) -> None:
        """Take the calls of one accepted request."""


@dataclass(slots=True)
class ExportOutcome:
    """What to answer the sender: spans whose LLM data could not be used, and why."""

    span_count: int
    rejected: Tally[str] = field(default_factory=Tally)
    first_problem: str = ""
    redactions: dict[str, int] = field(default_factory=dict)  # scrubbed as scanned, per scrubber
    redaction_failures: int = 0

    @property
    def rejected_count(self) -> int:
        """How many spans to report in ``partial_success.rejected_spans``."""
        return sum(self.rejected.values())

    def add(self, other: ExportOutcome) -> None:
        """Fold in the outcome of another part of the same request."""
        self.span_count += other.span_count
        self.rejected.update(other.rejected)
        self.first_problem = self.first_problem or other.first_problem
        for scrubber, count in other.redactions.items():
            self.redactions[scrubber] = self.redactions.get(scrubber, 0) + count
        self.redaction_failures += other.redaction_failures

    def message(self) -> str:
        """The ``partial_success.error_message``: counts by reason and the first problem seen."""
        if not self.rejected:
            return ""
        reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(self.rejected.items()))
        return f"LLM data of {self.rejected_count} span(s) unusable ({reasons}); first: {self.first_problem}"


class Pipeline:
    """Receiver-facing entry point shared by gRPC, HTTP and replay."""

    def __init__(
        self,
        scanner: Scanner,
        extractor: CallExtractor,
        enricher: Enricher,
        metrics: Metrics,
        sinks: Sequence[CallSink],
        span_exporters: Sequence[SpanExporter],
        call_exporters: Sequence[CallExporter],
    ) -> None:
        self._scanner = scanner
        self._extractor = extractor
        self._enricher = enricher
        self._metrics = metrics
        self._sinks = tuple(sinks)
        self._span_exporters = tuple(span_exporters)
        self._call_exporters = tuple(call_exporters)
        self._recent = RecentCalls()
        self._precedence = ScopePrecedence()

    def recognise(self, raw: bytes) -> tuple[list[LLMCall], ExportOutcome]:
        """Scan ``raw`` (raises :class:`OtlpDecodeError`), extract and enrich every LLM call; no I/O,
        no metrics."""
        scan = self._scanner.scan(raw)
        calls: list[LLMCall] = []
        outcome = ExportOutcome(scan.span_count, redactions=scan.redactions, redaction_failures=scan.redaction_failures)
        extract = self._extractor.extract
        enrich = self._enricher.enrich
        resources: dict[int, tuple[Attributes, str]] = {}
        for span in scan.spans:
            found = resources.get(span.resource)
            if found is None:
                attributes = Attributes(scan.resources[span.resource])
                found = resources[span.resource] = (attributes, service_name(attributes))
            resource, service = found
            try:
                call = extract(span, resource, span.scope_name, service, span.scope_version)
            except SpanRejected as rejected:
                outcome.rejected[rejected.reason] += 1
                if not outcome.first_problem:
                    outcome.first_problem = f"span {span.span_id.hex()}: {rejected.detail}"
                continue
            if call is not None:
                call.ordinal = span.ordinal
                enrich(call)
                calls.append(call)
        return calls, outcome

    async def export(self, raw: bytes, transport: str) -> ExportOutcome:
        """Process one serialised request; raises :class:`OtlpDecodeError` for malformed bytes and
        :class:`Backpressure` when an exporter cannot take it now.

        A large request is validated whole, then processed in parts of at most ``PART_SPANS``
        spans, yielding to the event loop between parts: memory stays a few times the request's
        size and other requests are not stalled behind it. If a later part meets backpressure the
        sender retries the whole request; the parts already taken are then duplicates, which
        at-least-once delivery allows and the de-duplication of calls absorbs.
        """
        if len(raw) <= PART_BYTES:
            return await self._export_part(raw, transport)
        validate(raw)
        outcome = ExportOutcome(0)
        for part, _ in split(raw, PART_SPANS, PART_BYTES):
            outcome.add(await self._export_part(part, transport))
            await asyncio.sleep(0)
        return outcome

    async def _export_part(self, raw: bytes, transport: str) -> ExportOutcome:
        calls, outcome = self.recognise(raw)
        # Metrics and prompt logs take one copy of each call; Tempo keeps (and enriches) every span.
        fresh = self._recent.fresh(self._precedence.select(calls))
        batch = SpanBatch(raw, calls, outcome.span_count)
        accepts = [exporter.accept(batch) for exporter in self._span_exporters]
        if fresh:
            accepts.extend(exporter.accept(fresh) for exporter in self._call_exporters)
        if accepts:
            results = await asyncio.gather(*accepts, return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException):
                    raise result
        self._recent.remember(fresh)
        if len(fresh) < len(calls):
            self._metrics.llm_duplicates.inc(len(calls) - len(fresh))
        self._count(fresh, outcome, transport)
        for sink in self._sinks:
            sink.consume(fresh)
        return outcome

    def count_redactions(self, outcome: ExportOutcome) -> None:
        """Count what scrubbing the content of one scanned request found (and failed on)."""
        m = self._metrics
        for scrubber, count in outcome.redactions.items():
            m.redactions.labels("prompt_log", scrubber).inc(count)
        if outcome.redaction_failures:
            m.redaction_failures.labels("prompt_log").inc(outcome.redaction_failures)

    def _count(self, calls: Sequence[LLMCall], outcome: ExportOutcome, transport: str) -> None:
        m = self._metrics
        m.spans_received.labels(transport).inc(outcome.span_count)
        self.count_redactions(outcome)
        for reason, count in outcome.rejected.items():
            m.spans_rejected.labels(reason).inc(count)
        for span_exporter in self._span_exporters:
            m.spans_passed_on.labels(span_exporter.name).inc(outcome.span_count)
        if calls:
            for call_exporter in self._call_exporters:
                m.prompt_logs.labels(call_exporter.name).inc(len(calls))
            for vocabulary, count in Tally(call.vocabulary for call in calls).items():
                m.llm_spans.labels(vocabulary).inc(count)
