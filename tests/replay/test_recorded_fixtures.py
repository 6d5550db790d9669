"""Spans recorded from real instrumentation libraries, replayed: tokens equal what the provider
reported, costs equal the providers' published prices.

Ground truth is ``<fixture>.provider.json``: the fake provider's own log of the usage it sent. The
provider semantics are applied here, independently of the code under test: OpenAI's prompt_tokens
already include cached tokens; Anthropic's input_tokens exclude cache reads and writes.
Where a library is known to drop data (shared/reference/instrumentations.md), the gap is named in
``GAPS`` and asserted, so a library that starts (or stops) recording it fails the test.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client import CollectorRegistry

from otlp_enricher.config import parse_config
from otlp_enricher.model import LLMCall, Tokens
from otlp_enricher.otlp_json import read_recorded
from otlp_enricher.service import build_metrics, build_pipeline

RECORDED = Path(__file__).parent.parent / "fixtures" / "recorded"
FIXTURES = {
    "otel-openai-v2": "otel-openai-v2.jsonl",
    "openinference-openai": "openinference-openai.jsonl",
    "openinference-openai-proto": "openinference-openai.binpb",
    "traceloop-openai": "traceloop-openai.jsonl",
    "openinference-anthropic": "openinference-anthropic.jsonl",
    "traceloop-anthropic": "traceloop-anthropic.jsonl",
    "anthropic-sdk": "anthropic-sdk.jsonl",
}

# Published list prices, USD per million tokens: input, cached input, 5-minute cache write,
# 1-hour cache write, output (reasoning is billed as output).
PRICES = {
    "gpt-4o-2024-08-06": (2.50, 1.25, 2.50, 2.50, 10.00),
    "gpt-4o-mini-2024-07-18": (0.15, 0.075, 0.15, 0.15, 0.60),
    "o3-mini-2025-01-31": (1.10, 0.55, 1.10, 1.10, 4.40),
    "claude-sonnet-4-5-20250929": (3.00, 0.30, 3.75, 6.00, 15.00),
    "claude-haiku-4-5-20251001": (1.00, 0.10, 1.25, 2.00, 5.00),
}

# What each library is known not to record (shared/reference/instrumentations.md).
GAPS: dict[str, set[str]] = {
    "otel-openai-v2": {"no_cache_read", "no_reasoning"},
    "traceloop-anthropic": {"no_reasoning", "no_1h_split", "stream_output_plus_one"},
    "openinference-anthropic": {"no_1h_split"},
    "traceloop-openai": set(),
    "openinference-openai": set(),
    "openinference-openai-proto": set(),
    "anthropic-sdk": {"no_error_message"},
}
RECORDS_TTFT = {"anthropic-sdk", "openinference-openai", "openinference-openai-proto", "traceloop-openai"}


def provider_tokens(entry: dict[str, Any]) -> Tokens:
    """Normalised tokens from the raw usage the provider sent."""
    usage = entry["usage"]
    if entry["provider"] == "openai":
        return Tokens(
            input=usage["prompt_tokens"],
            output=usage["completion_tokens"],
            cache_read=(usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0),
            reasoning=(usage.get("completion_tokens_details") or {}).get("reasoning_tokens", 0),
        )
    cache_read = usage.get("cache_read_input_tokens", 0)
    cache_write = usage.get("cache_creation_input_tokens", 0)
    one_hour = (usage.get("cache_creation") or {}).get("ephemeral_1h_input_tokens", 0)
    return Tokens(
        input=usage["input_tokens"] + cache_read + cache_write,
        output=usage["output_tokens"],
        cache_read=cache_read,
        cache_write_5m=cache_write - one_hour,
        cache_write_1h=one_hour,
        reasoning=(usage.get("output_tokens_details") or {}).get("thinking_tokens", 0),
    )


def with_gaps(tokens: Tokens, gaps: frozenset[str] | set[str], streaming: bool) -> Tokens:
    """The tokens a library that drops ``gaps`` can report."""
    if "no_cache_read" in gaps:
        tokens = replace(tokens, cache_read=0)
    if "no_reasoning" in gaps:
        tokens = replace(tokens, reasoning=0)
    if "no_1h_split" in gaps:
        tokens = replace(tokens, cache_write_5m=tokens.cache_write, cache_write_1h=0)
    if "stream_output_plus_one" in gaps and streaming:
        tokens = replace(tokens, output=tokens.output + 1)
    return tokens


def published_cost(model: str, tokens: Tokens) -> float:
    """USD at the published prices."""
    price_in, price_cached, price_5m, price_1h, price_out = PRICES[model]
    fresh = tokens.input - tokens.cache_read - tokens.cache_write
    return (
        fresh * price_in
        + tokens.cache_read * price_cached
        + tokens.cache_write_5m * price_5m
        + tokens.cache_write_1h * price_1h
        + tokens.output * price_out
    ) / 1e6


class Collect:
    """A sink that keeps every enriched call."""

    def __init__(self) -> None:
        self.calls: list[LLMCall] = []

    def consume(self, calls: Sequence[LLMCall]) -> None:
        """Keep the calls."""
        self.calls.extend(calls)


def replay(path: Path) -> tuple[dict[str, list[LLMCall]], int]:
    """Calls by scenario (the recorder wraps each scenario in a span naming it) and the span count."""
    config = parse_config("", "test", {})
    sink = Collect()
    pipeline = build_pipeline(config, build_metrics(config, CollectorRegistry()), [sink])
    scenario_of_trace: dict[bytes, str] = {}
    spans = 0

    async def run() -> None:
        nonlocal spans
        for request in read_recorded(path):
            message = ExportTraceServiceRequest.FromString(request)
            for resource_spans in message.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        for kv in span.attributes:
                            if kv.key == "fixture.scenario":
                                scenario_of_trace[span.trace_id] = kv.value.string_value
            outcome = await pipeline.export(request, "replay")
            assert outcome.rejected_count == 0, outcome.message()
            spans += outcome.span_count

    asyncio.run(run())
    by_scenario: dict[str, list[LLMCall]] = {}
    for call in sink.calls:
        by_scenario.setdefault(scenario_of_trace[call.trace_id], []).append(call)
    return by_scenario, spans


@pytest.mark.parametrize("fixture", sorted(FIXTURES))
def test_replayed_tokens_costs_errors_and_ttft_match_the_provider(fixture: str) -> None:
    """Every provider response appears as exactly one call, with the provider's usage and price."""
    path = RECORDED / FIXTURES[fixture]
    log_name = FIXTURES[fixture].split(".")[0] + ".provider.json"
    provider_log = json.loads((RECORDED / log_name).read_text())
    by_scenario, _ = replay(path)
    assert sorted(by_scenario) == sorted(entry["scenario"] for entry in provider_log)
    gaps = GAPS[fixture]
    for entry in provider_log:
        (call,) = by_scenario[entry["scenario"]]
        assert call.provider == entry["provider"]
        if entry["http_status"] != 200:
            assert call.status == "error"
            expected_reason = "rate_limit" if entry["http_status"] == 429 else "context_overflow"
            if entry["http_status"] == 400 and "no_error_message" in gaps:
                expected_reason = "bad_request"
            assert call.error_reason == expected_reason, entry["scenario"]
            assert call.cost_usd is None and call.cost_source == "none"
            assert call.request_model == entry["requested_model"] or call.model == entry["requested_model"]
            continue
        assert call.status == "ok"
        assert call.model == entry["response_model"]
        expected = with_gaps(provider_tokens(entry), gaps, entry["streaming"])
        assert call.tokens == expected, entry["scenario"]
        assert call.cost_source == "price_table"
        assert call.cost_usd == pytest.approx(published_cost(entry["response_model"], expected), rel=1e-9, abs=1e-12)
        if entry["streaming"] and fixture in RECORDS_TTFT:
            assert call.ttft_s is not None and 0 < call.ttft_s <= call.duration_s
        elif not entry["streaming"]:
            assert call.ttft_s is None


def test_json_and_protobuf_recordings_of_the_same_run_agree() -> None:
    """The file exporter's two formats decode to the same spans."""
    from_json = [
        ExportTraceServiceRequest.FromString(r).SerializeToString(deterministic=True)
        for r in read_recorded(RECORDED / "openinference-openai.jsonl")
    ]
    from_proto = [
        ExportTraceServiceRequest.FromString(r).SerializeToString(deterministic=True)
        for r in read_recorded(RECORDED / "openinference-openai.binpb")
    ]
    assert from_json == from_proto


def test_double_traced_calls_are_counted_once() -> None:
    """The anthropic SDK's own tracing beside Traceloop's records each call twice; the metrics count
    each call once, failed ones included (they carry no response id: the scope precedence of
    processor/dedupe.py keeps the SDK's own copy), and the copies are counted as duplicates."""
    config = parse_config("", "test", {})
    registry = CollectorRegistry()
    sink = Collect()
    pipeline = build_pipeline(config, build_metrics(config, registry), [sink])
    provider_log = json.loads((RECORDED / "traceloop-anthropic-doubled.provider.json").read_text())

    async def run() -> int:
        spans = 0
        for request in read_recorded(RECORDED / "traceloop-anthropic-doubled.jsonl"):
            spans += (await pipeline.export(request, "replay")).span_count
        return spans

    asyncio.run(run())
    successes = [entry for entry in provider_log if entry["http_status"] == 200]
    failures = len(provider_log) - len(successes)
    assert sorted(call.response_id for call in sink.calls if call.status == "ok") == sorted(
        entry["response_id"] for entry in successes
    )
    assert sum(call.status == "error" for call in sink.calls) == failures
    assert {call.scope for call in sink.calls} == {"com.anthropic.sdk.python"}
    duplicates = registry.get_sample_value("otlp_enricher_llm_duplicate_calls_total")
    assert duplicates == len(provider_log)


def test_a_retried_request_is_counted_once() -> None:
    """An upstream retry after a lost acknowledgement delivers the same spans again."""
    config = parse_config("", "test", {})
    registry = CollectorRegistry()
    pipeline = build_pipeline(config, build_metrics(config, registry))
    requests = list(read_recorded(RECORDED / "otel-openai-v2.jsonl"))

    async def run() -> None:
        for _ in range(2):
            for request in requests:
                await pipeline.export(request, "grpc")

    asyncio.run(run())
    labels = {"provider": "openai", "model": "gpt-4o-2024-08-06", "operation": "chat", "status": "ok"}
    assert registry.get_sample_value("llm_requests_total", labels) == 1
    assert registry.get_sample_value("otlp_enricher_spans_received_total", {"transport": "grpc"}) == 16
