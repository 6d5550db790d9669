"""The pipeline's one-copy decision reaches metrics and prompt logs alike; Tempo keeps every span.

Spans are hand-built in the shapes the anthropic SDK (scope ``com.anthropic.sdk.python``) and
OpenLLMetry's anthropic instrumentation (``opentelemetry.instrumentation.anthropic``) write
(docs/reference/instrumentations.md): each call traced twice, the copies in different traces.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client import CollectorRegistry

from otlp_enricher.config import parse_config
from otlp_enricher.model import LLMCall
from otlp_enricher.pipeline import SpanBatch
from otlp_enricher.service import build_metrics, build_pipeline
from tests.doubles import InertComponent
from tests.otlp_builders import key_values, span

ANTHROPIC = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "anthropic",
    "gen_ai.request.model": "claude-sonnet-4-5",
    "gen_ai.usage.input_tokens": 1_000,
    "gen_ai.usage.output_tokens": 50,
}


class Calls(InertComponent):
    """A call exporter (the prompt log's seat) that keeps what it accepts."""

    name = "calls"

    def __init__(self) -> None:
        self.accepted: list[LLMCall] = []

    async def accept(self, calls: Sequence[LLMCall]) -> None:
        """Keep the records."""
        self.accepted.extend(calls)


class Spans(InertComponent):
    """A span exporter (Tempo's seat) that counts spans and enriched calls."""

    name = "spans"

    def __init__(self) -> None:
        self.spans = 0
        self.calls = 0

    async def accept(self, batch: SpanBatch) -> None:
        """Count."""
        self.spans += batch.span_count
        self.calls += len(batch.calls)


def two_scopes(attributes: dict[str, Any], error: bool = False) -> ExportTraceServiceRequest:
    """One request from one service: the call's SDK copy and its instrumentor copy, each in its own trace."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.extend(key_values({"service.name": "checkout"}))
    for scope in ("opentelemetry.instrumentation.anthropic", "com.anthropic.sdk.python"):
        scope_spans = resource_spans.scope_spans.add()
        scope_spans.scope.name = scope
        scope_spans.spans.append(span(attributes, error=error))
    return request


def test_a_call_traced_twice_across_traces_is_one_metric_count_and_one_prompt_log() -> None:
    """Three successful and one failed call, each traced twice: 4 requests counted, 4 prompt-log
    records, 4 duplicates, and all 8 spans (with their calls enriched) passed on."""
    config = parse_config("", "test", {})
    registry = CollectorRegistry()
    calls, spans = Calls(), Spans()
    pipeline = build_pipeline(config, build_metrics(config, registry), span_exporters=[spans], call_exporters=[calls])

    async def run() -> None:
        for _ in range(3):
            await pipeline.export(two_scopes(ANTHROPIC).SerializeToString(), "grpc")
        failed = {key: value for key, value in ANTHROPIC.items() if "usage" not in key}
        await pipeline.export(
            two_scopes({**failed, "error.type": "rate_limit_error"}, error=True).SerializeToString(), "grpc"
        )

    asyncio.run(run())
    assert len(calls.accepted) == 4 and {c.scope for c in calls.accepted} == {"com.anthropic.sdk.python"}
    assert (spans.spans, spans.calls) == (8, 8)
    ok = {"provider": "anthropic", "model": "claude-sonnet-4-5", "operation": "chat", "status": "ok"}
    assert registry.get_sample_value("llm_requests_total", ok) == 3
    assert registry.get_sample_value("llm_requests_total", {**ok, "status": "error"}) == 1
    assert registry.get_sample_value("otlp_enricher_llm_duplicate_calls_total") == 4
    tokens = {"provider": "anthropic", "model": "claude-sonnet-4-5", "type": "input"}
    assert registry.get_sample_value("llm_tokens_total", tokens) == 3 * 1_000
