"""Bedrock (boto3 + opentelemetry-instrumentation-botocore), Gemini (google-genai + its OTel
instrumentation) and Vercel AI SDK (Node, ``ai`` with @ai-sdk/openai and @ai-sdk/anthropic) recordings,
replayed: each call counted once in the metrics and the prompt log, each error in its reason, tokens by
type as the provider sent them, cost at the published list price.

Ground truth is ``<fixture>.provider.json`` (what the fake provider answered), read here with each
provider's documented semantics, independently of the code under test:

* Bedrock Converse ``usage``: ``inputTokens`` *excludes* ``cacheReadInputTokens`` and
  ``cacheWriteInputTokens`` (``totalTokens`` sums all four); a cache point is written at the
  5-minute rate. InvokeModel with an Anthropic model returns Anthropic's own usage (input excludes
  cache). https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_TokenUsage.html
* Gemini ``usageMetadata``: ``promptTokenCount`` *includes* ``cachedContentTokenCount``;
  ``thoughtsTokenCount`` is beside ``candidatesTokenCount`` and billed as output; a prompt over
  200k tokens bills every token of the call at the higher tier.
  https://ai.google.dev/api/generate-content#UsageMetadata
* OpenAI and Anthropic (the Vercel AI SDK's providers): as in ``test_recorded_fixtures.py``, whose
  ``provider_tokens`` and ``published_cost`` are reused. The SDK's wrapper span (``ai.generateText``,
  ``ai.streamText``) repeats its provider call's usage; only the call may count.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client import CollectorRegistry

from otlp_enricher.config import parse_config
from otlp_enricher.connector.promptlog import prompt_log_record
from otlp_enricher.model import LLMCall, Tokens
from otlp_enricher.otlp_json import read_recorded
from otlp_enricher.service import build_metrics, build_pipeline
from tests.doubles import InertComponent
from tests.replay import test_recorded_fixtures as openai_anthropic

RECORDED = Path(__file__).parent.parent / "fixtures" / "recorded"

# Published list prices, USD per million tokens: input, cached input (read), cache write, output.
# Bedrock: aws.amazon.com/bedrock/pricing, Anthropic on-demand — for Claude Sonnet/Haiku 4.5 the
# geo and in-region endpoints (``us.…``) cost 10 % more than the global cross-region profile (``global.…``).
# Gemini: ai.google.dev/gemini-api/docs/pricing (paid tier; output includes thinking tokens).
BEDROCK_PRICES = {
    "us.anthropic.claude-sonnet-4-5-20250929-v1:0": (3.30, 0.33, 4.125, 16.50),
    "us.anthropic.claude-haiku-4-5-20251001-v1:0": (1.10, 0.11, 1.375, 5.50),
    "global.anthropic.claude-sonnet-4-5-20250929-v1:0": (3.00, 0.30, 3.75, 15.00),
}
GEMINI_PRICES = {  # (prompt ≤ 200k tokens, prompt > 200k tokens); no cache writes on implicit caching
    "gemini-2.5-flash": ((0.30, 0.03, 0.0, 2.50), (0.30, 0.03, 0.0, 2.50)),
    "gemini-2.5-pro": ((1.25, 0.125, 0.0, 10.00), (2.50, 0.25, 0.0, 15.00)),
}
GEMINI_LONG_CONTEXT = 200_000

FIXTURES = ("otel-botocore-bedrock", "otel-google-genai", "vercel-ai")
# What each library is known not to record (asserted, so a library that starts recording it fails).
GAPS: dict[str, set[str]] = {
    # botocore: Converse answers no id and no model; the span has neither, nor a time to first token.
    # On InvokeModel it sets only the Anthropic body's input_tokens (cache excluded) and output_tokens:
    # the cache reads and writes are lost, so such a call is under-counted and under-priced.
    "otel-botocore-bedrock": {"no_response_id", "no_response_model", "no_ttft", "invoke_model_no_cache"},
    "otel-google-genai": set(),
    # ai 6.x: ai.usage.inputTokenDetails.cacheWriteTokens has no TTL split (all priced as 5-minute writes).
    "vercel-ai": {"no_1h_split"},
}
# The error scenarios' reasons, from the provider's answer: 429 is a rate limit; the only 400 is
# Anthropic's "prompt is too long".
REASONS = {429: "rate_limit", 400: "context_overflow"}


def provider_tokens(entry: dict[str, Any], gaps: frozenset[str] | set[str] = frozenset()) -> Tokens:
    """Normalised tokens (input with the cache, output with reasoning) from the usage as sent, as far
    as a library with ``gaps`` can report them."""
    usage = entry["usage"]
    if entry["provider"] in ("openai", "anthropic"):
        return openai_anthropic.with_gaps(openai_anthropic.provider_tokens(entry), gaps, entry["streaming"])
    if "promptTokenCount" in usage:  # Gemini
        thoughts = usage.get("thoughtsTokenCount", 0)
        return Tokens(
            input=usage["promptTokenCount"],
            output=usage["candidatesTokenCount"] + thoughts,
            cache_read=usage.get("cachedContentTokenCount", 0),
            reasoning=thoughts,
        )
    if "inputTokens" in usage:  # Bedrock Converse
        cache_read = usage.get("cacheReadInputTokens", 0)
        cache_write = usage.get("cacheWriteInputTokens", 0)
        return Tokens(
            input=usage["inputTokens"] + cache_read + cache_write,
            output=usage["outputTokens"],
            cache_read=cache_read,
            cache_write_5m=cache_write,
        )
    # InvokeModel, Anthropic body: input_tokens without the cache.
    if "invoke_model_no_cache" in gaps:
        return Tokens(input=usage["input_tokens"], output=usage["output_tokens"])
    cache_read, cache_write = usage["cache_read_input_tokens"], usage["cache_creation_input_tokens"]
    return Tokens(
        input=usage["input_tokens"] + cache_read + cache_write,
        output=usage["output_tokens"],
        cache_read=cache_read,
        cache_write_5m=cache_write,
    )


def list_price(entry: dict[str, Any], tokens: Tokens) -> float:
    """USD at the published prices, the long-context tier chosen by the prompt's size."""
    model = entry["requested_model"]
    if entry["provider"] in ("openai", "anthropic"):
        return openai_anthropic.published_cost(entry["response_model"], tokens)
    if model in BEDROCK_PRICES:
        price_in, price_read, price_write, price_out = BEDROCK_PRICES[model]
    else:
        short, long = GEMINI_PRICES[model]
        price_in, price_read, price_write, price_out = long if tokens.input > GEMINI_LONG_CONTEXT else short
    fresh = tokens.input - tokens.cache_read - tokens.cache_write
    return (
        fresh * price_in + tokens.cache_read * price_read + tokens.cache_write * price_write + tokens.output * price_out
    ) / 1e6


class PromptLog(InertComponent):
    """A call exporter in the prompt log's seat: keeps every record it is given."""

    name = "prompt-log"

    def __init__(self) -> None:
        self.calls: list[LLMCall] = []

    async def accept(self, calls: Sequence[LLMCall]) -> None:
        """Keep the records."""
        self.calls.extend(calls)


@dataclass
class Replayed:
    """What one replay produced: prompt-log records by scenario, and the metrics registry."""

    by_scenario: dict[str, list[LLMCall]]
    registry: CollectorRegistry


def replay(path: Path) -> Replayed:
    """Replay a recording through the default pipeline; prompt-log records grouped by scenario."""
    config = parse_config("", "test", {})
    registry = CollectorRegistry()
    log = PromptLog()
    pipeline = build_pipeline(config, build_metrics(config, registry), call_exporters=[log])
    scenario_of_trace: dict[bytes, str] = {}

    async def run() -> None:
        for request in read_recorded(path):
            scenario_of_trace.update(openai_anthropic.scenarios_by_trace(request))
            outcome = await pipeline.export(request, "replay")
            assert outcome.rejected_count == 0, outcome.message()

    asyncio.run(run())
    by_scenario: dict[str, list[LLMCall]] = {}
    for call in log.calls:
        by_scenario.setdefault(scenario_of_trace[call.trace_id], []).append(call)
    return Replayed(by_scenario, registry)


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    """The sum of ``name`` over every series whose labels include ``labels``."""
    return sum(
        s.value
        for family in registry.collect()
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


@pytest.mark.parametrize("fixture", FIXTURES)
def test_cloud_recordings_replay_to_the_providers_truth(fixture: str) -> None:
    """One prompt-log record and one metric count per provider response; tokens, reasons, list prices."""
    provider_log = json.loads((RECORDED / f"{fixture}.provider.json").read_text())
    replayed = replay(RECORDED / f"{fixture}.jsonl")
    registry, gaps = replayed.registry, GAPS[fixture]
    assert sorted(replayed.by_scenario) == sorted(entry["scenario"] for entry in provider_log)
    expected_cost = 0.0
    for entry in provider_log:
        (call,) = replayed.by_scenario[entry["scenario"]]
        record = prompt_log_record(call)
        assert call.request_model == entry["requested_model"]
        if entry["http_status"] != 200:
            assert (call.status, call.error_reason) == ("error", REASONS[entry["http_status"]]), entry["scenario"]
            assert call.cost_usd is None and record["status"] == "error"
            continue
        assert call.status == "ok"
        assert call.response_id == ("" if "no_response_id" in gaps else entry["response_id"])
        assert call.response_model == ("" if "no_response_model" in gaps else entry["response_model"])
        tokens = provider_tokens(entry, gaps)
        assert call.tokens == tokens, entry["scenario"]
        price = list_price(entry, tokens)
        assert call.cost_source == "price_table"
        assert call.cost_usd == pytest.approx(price, rel=0.005), entry["scenario"]
        expected_cost += price
        if entry["streaming"]:
            assert (call.ttft_s is None) == ("no_ttft" in gaps)
        else:
            assert call.ttft_s is None
    successes = [entry for entry in provider_log if entry["http_status"] == 200]
    assert sample(registry, "llm_requests_total", status="ok") == len(successes)
    assert sample(registry, "llm_requests_total", status="error") == len(provider_log) - len(successes)
    for status, reason in REASONS.items():
        failed = sum(entry["http_status"] == status for entry in provider_log)
        assert sample(registry, "llm_errors_total", reason=reason) == failed, reason
    assert sample(registry, "llm_cost_usd_total") == pytest.approx(expected_cost, rel=0.005)
    for kind in ("input", "output", "cache_read", "cache_write", "reasoning"):
        expected = sum(getattr(provider_tokens(entry, gaps), kind) for entry in successes)
        assert sample(registry, "llm_tokens_total", type=kind) == expected, kind


def test_the_long_context_prompt_is_priced_at_the_higher_tier() -> None:
    """gemini-2.5-pro with 250 000 prompt tokens: every token at the >200k rates, not the base ones."""
    (call,) = replay(RECORDED / "otel-google-genai.jsonl").by_scenario["gemini-long-context"]
    assert call.tokens is not None and call.tokens.input > GEMINI_LONG_CONTEXT
    base, long = GEMINI_PRICES["gemini-2.5-pro"]
    at_long = (call.tokens.input * long[0] + call.tokens.output * long[3]) / 1e6
    assert call.cost_usd is not None and call.cost_usd == pytest.approx(at_long, rel=0.005)
    assert call.cost_usd > (call.tokens.input * base[0] + call.tokens.output * base[3]) / 1e6 * 1.4


def test_vercel_wrapper_spans_repeat_the_usage_and_are_not_counted() -> None:
    """Every provider call sits under an ``ai.generateText`` / ``ai.streamText`` span that repeats its
    ``ai.usage.*``; the prompt log and metrics hold one record per provider response all the same."""
    usage_of: dict[str, list[tuple[bytes, str]]] = {}
    for request in read_recorded(RECORDED / "vercel-ai.jsonl"):
        for resource_spans in ExportTraceServiceRequest.FromString(request).resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    inputs = [kv.value.int_value for kv in span.attributes if kv.key == "ai.usage.inputTokens"]
                    usage_of.setdefault(span.name, []).extend((span.trace_id, str(n)) for n in inputs)
    wrappers = usage_of["ai.generateText"] + usage_of["ai.streamText"]
    calls = usage_of["ai.generateText.doGenerate"] + usage_of["ai.streamText.doStream"]
    assert sorted(wrappers) == sorted(calls) and len(calls) == 4
    provider_log = json.loads((RECORDED / "vercel-ai.provider.json").read_text())
    replayed = replay(RECORDED / "vercel-ai.jsonl")
    assert sum(len(calls) for calls in replayed.by_scenario.values()) == len(provider_log)
    assert sample(replayed.registry, "llm_requests_total") == len(provider_log)


def test_invoke_model_loses_the_anthropic_cache_counts() -> None:
    """The gap, in figures: the cached InvokeModel call's truth has 3 072 cache reads the span never saw."""
    provider_log = json.loads((RECORDED / "otel-botocore-bedrock.provider.json").read_text())
    (entry,) = [e for e in provider_log if e["scenario"] == "bedrock-invoke-model-cached"]
    truth = provider_tokens(entry)
    (call,) = replay(RECORDED / "otel-botocore-bedrock.jsonl").by_scenario["bedrock-invoke-model-cached"]
    assert truth.cache_read > 0 and call.tokens is not None
    assert (call.tokens.input, call.tokens.cache_read) == (truth.input - truth.cache_read, 0)
    assert call.cost_usd is not None and call.cost_usd < list_price(entry, truth)
