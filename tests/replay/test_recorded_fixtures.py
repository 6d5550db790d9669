"""Spans recorded from real instrumentation libraries, replayed: each provider response is one call,
one prompt-log line and one count in the metrics, with the tokens the provider reported and the
providers' published prices.

Ground truth is ``<fixture>.provider.json``: the fake provider's own log of the usage it sent. The
provider semantics are applied here, independently of the code under test: OpenAI's prompt_tokens
(and the Responses API's input_tokens) already include cached tokens, completion/output tokens
include reasoning; Anthropic's input_tokens exclude cache reads and writes.
Where a library is known to drop data (docs/reference/instrumentations.md), the gap is named in
``GAPS`` and asserted, so a library that starts (or stops) recording it fails the test.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client import CollectorRegistry

from otlp_enricher.config import parse_config
from otlp_enricher.exporter.files import PromptLogFileExporter
from otlp_enricher.model import LLMCall, Tokens
from otlp_enricher.otlp_json import read_recorded
from otlp_enricher.processor.redaction import Redactor
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
    "openlit-openai": "openlit-openai.jsonl",
    "openlit-anthropic": "openlit-anthropic.jsonl",
    "openinference-openai-responses": "openinference-openai-responses.jsonl",
    "traceloop-openai-responses": "traceloop-openai-responses.jsonl",
    "litellm": "litellm.jsonl",
    "openinference-langchain": "openinference-langchain.jsonl",
}

# Published list prices, USD per million tokens: input, cached input, 5-minute cache write,
# 1-hour cache write, output (reasoning is billed as output).
PRICES = {
    "gpt-4o-2024-08-06": (2.50, 1.25, 2.50, 2.50, 10.00),
    "gpt-4o-mini-2024-07-18": (0.15, 0.075, 0.15, 0.15, 0.60),
    "o3-mini-2025-01-31": (1.10, 0.55, 1.10, 1.10, 4.40),
    "claude-sonnet-4-5-20250929": (3.00, 0.30, 3.75, 6.00, 15.00),
    "claude-haiku-4-5-20251001": (1.00, 0.10, 1.25, 2.00, 5.00),
    "gpt-4.1-2025-04-14": (2.00, 0.50, 2.00, 2.00, 8.00),
    "o4-mini-2025-04-16": (1.10, 0.275, 1.10, 1.10, 4.40),
    "gpt-4o-mini": (0.15, 0.075, 0.15, 0.15, 0.60),  # the alias, as LiteLLM's streams name it
}

# What each library is known not to record (docs/reference/instrumentations.md).
GAPS: dict[str, set[str]] = {
    "otel-openai-v2": {"no_cache_read", "no_reasoning"},
    "traceloop-anthropic": {"no_reasoning", "no_1h_split", "stream_output_plus_one"},
    "openinference-anthropic": {"no_1h_split"},
    "traceloop-openai": set(),
    "openinference-openai": set(),
    "openinference-openai-proto": set(),
    "anthropic-sdk": {"no_error_message"},
    "openlit-openai": {"no_reasoning"},
    "openlit-anthropic": {"no_reasoning", "no_1h_split"},
    "openinference-openai-responses": set(),
    "traceloop-openai-responses": set(),
    "litellm": {"stream_model_undated"},
    "pydantic-ai": set(),
    "openinference-langchain": {"stream_model_undated"},
}
# Set-ups that trace every call twice: the scope whose copy counts, its gaps, whether it records TTFT.
DOUBLED: dict[str, tuple[str, set[str], bool]] = {
    "traceloop-anthropic-doubled": ("com.anthropic.sdk.python", GAPS["anthropic-sdk"], True),
    "openinference-langchain-doubled": ("openinference.instrumentation.openai", set(), True),
}
RECORDS_TTFT = {
    "anthropic-sdk",
    "openinference-openai",
    "openinference-openai-proto",
    "traceloop-openai",
    "openlit-openai",
    "openlit-anthropic",
    "openinference-openai-responses",
}


def provider_tokens(entry: dict[str, Any]) -> Tokens:
    """Normalised tokens from the raw usage the provider sent."""
    usage = entry["usage"]
    if entry["path"] == "/v1/responses":  # input includes cached, output includes reasoning
        return Tokens(
            input=usage["input_tokens"],
            output=usage["output_tokens"],
            cache_read=usage["input_tokens_details"]["cached_tokens"],
            reasoning=usage["output_tokens_details"]["reasoning_tokens"],
        )
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


def expected_model(entry: dict[str, Any], gaps: set[str]) -> str:
    """The response model a library that drops ``gaps`` names: LiteLLM's streams keep the requested alias."""
    if "stream_model_undated" in gaps and entry["streaming"]:
        return str(entry["requested_model"])
    return str(entry["response_model"])


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


@dataclass(frozen=True)
class Replayed:
    """What one recorded file became: calls, prompt-log lines (both by scenario) and the metrics."""

    calls: dict[str, list[LLMCall]]
    lines: dict[str, list[dict[str, Any]]]
    registry: CollectorRegistry

    def metric(self, name: str, **labels: str) -> float:
        """The sum of the samples ``name`` whose labels include ``labels``."""
        return sum(
            sample.value
            for family in self.registry.collect()
            for sample in family.samples
            if sample.name == name and labels.items() <= sample.labels.items()
        )


def scenarios_by_trace(request: bytes) -> dict[bytes, str]:
    """Trace id → scenario name, from the span the recorder wraps each scenario in
    (``fixture.scenario``, ``tests/fixtures/app.py``)."""
    return {
        span.trace_id: kv.value.string_value
        for resource_spans in ExportTraceServiceRequest.FromString(request).resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
        for kv in span.attributes
        if kv.key == "fixture.scenario"
    }


def replay(path: Path, directory: Path) -> Replayed:
    """Replay ``path`` through the pipeline with the local prompt-log file exporter in ``directory``;
    calls and lines are sorted by scenario (the recorder wraps each scenario in a span naming it)."""
    config = parse_config("", "test", {})
    registry = CollectorRegistry()
    metrics = build_metrics(config, registry)
    redactor = Redactor(config.redaction)
    sink = Collect()
    prompt_logs = PromptLogFileExporter(directory, False, redactor, metrics)
    pipeline = build_pipeline(config, metrics, [sink], call_exporters=[prompt_logs], redactor=redactor)
    scenario_of_trace: dict[bytes, str] = {}

    async def run() -> None:
        for request in read_recorded(path):
            scenario_of_trace.update(scenarios_by_trace(request))
            outcome = await pipeline.export(request, "replay")
            assert outcome.rejected_count == 0, outcome.message()
        await prompt_logs.shutdown(5.0)

    asyncio.run(run())
    calls: dict[str, list[LLMCall]] = {}
    for call in sink.calls:
        calls.setdefault(scenario_of_trace[call.trace_id], []).append(call)
    lines: dict[str, list[dict[str, Any]]] = {}
    for text in (directory / "prompt-logs.jsonl").read_text().splitlines():
        line = json.loads(text)
        lines.setdefault(scenario_of_trace[bytes.fromhex(line["trace_id"])], []).append(line)
    return Replayed(calls, lines, registry)


def expected_reason(entry: dict[str, Any], gaps: set[str]) -> str:
    """The error reason the provider's answer means (429: rate limit; the 400s here: prompt too long)."""
    if entry["http_status"] == 429:
        return "rate_limit"
    return "bad_request" if "no_error_message" in gaps else "context_overflow"


def assert_counted_once(
    replayed: Replayed, provider_log: list[dict[str, Any]], gaps: set[str], *, records_ttft: bool
) -> None:
    """Metrics and prompt-log lines hold each provider response once, with its outcome, tokens by
    type and list-price cost; the TTFT histogram holds streamed calls only."""
    tokens: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    cost = 0.0
    for entry in provider_log:
        (line,) = replayed.lines[entry["scenario"]]
        if entry["http_status"] != 200:
            reasons[expected_reason(entry, gaps)] += 1
            assert (line["status"], line["error_reason"], line["cost_usd"]) == (
                "error",
                expected_reason(entry, gaps),
                None,
            ), entry["scenario"]
            continue
        expected = with_gaps(provider_tokens(entry), gaps, entry["streaming"])
        expected_cost = published_cost(expected_model(entry, gaps), expected)
        by_type = {
            "input": expected.input,
            "output": expected.output,
            "cache_read": expected.cache_read,
            "cache_write": expected.cache_write,
            "reasoning": expected.reasoning,
        }
        tokens.update(by_type)
        cost += expected_cost
        assert line["status"] == "ok" and line["model"] == expected_model(entry, gaps), entry["scenario"]
        assert line["tokens"] == {**by_type, "cache_write_1h": expected.cache_write_1h}, entry["scenario"]
        assert line["cost_usd"] == pytest.approx(expected_cost, rel=1e-9, abs=1e-12), entry["scenario"]
        if not entry["streaming"]:
            assert line["ttft_s"] is None, entry["scenario"]
    successes = sum(entry["http_status"] == 200 for entry in provider_log)
    assert sum(len(lines) for lines in replayed.lines.values()) == len(provider_log)
    assert replayed.metric("llm_requests_total", status="ok") == successes
    assert replayed.metric("llm_requests_total", status="error") == len(provider_log) - successes
    for reason in ("rate_limit", "context_overflow", "bad_request", "other"):
        assert replayed.metric("llm_errors_total", reason=reason) == reasons[reason], reason
    for kind in ("input", "output", "cache_read", "cache_write", "reasoning"):
        assert replayed.metric("llm_tokens_total", type=kind) == tokens[kind], kind
    assert replayed.metric("llm_cost_usd_total") == pytest.approx(cost, rel=1e-9)
    streamed = sum(entry["streaming"] for entry in provider_log if entry["http_status"] == 200)
    assert replayed.metric("llm_time_to_first_token_seconds_count") == (streamed if records_ttft else 0)


@pytest.mark.parametrize("fixture", sorted(FIXTURES))
def test_replayed_tokens_costs_errors_and_ttft_match_the_provider(fixture: str, tmp_path: Path) -> None:
    """Every provider response appears as exactly one call, with the provider's usage and price,
    and once in the metrics and the prompt log."""
    path = RECORDED / FIXTURES[fixture]
    log_name = FIXTURES[fixture].split(".")[0] + ".provider.json"
    provider_log = json.loads((RECORDED / log_name).read_text())
    replayed = replay(path, tmp_path)
    by_scenario = replayed.calls
    assert sorted(by_scenario) == sorted(entry["scenario"] for entry in provider_log)
    gaps = GAPS[fixture]
    assert_counted_once(replayed, provider_log, gaps, records_ttft=fixture in RECORDS_TTFT)
    for entry in provider_log:
        (call,) = by_scenario[entry["scenario"]]
        assert call.provider == entry["provider"]
        if entry["http_status"] != 200:
            assert call.status == "error"
            assert call.error_reason == expected_reason(entry, gaps), entry["scenario"]
            assert call.cost_usd is None and call.cost_source == "none"
            assert call.request_model == entry["requested_model"] or call.model == entry["requested_model"]
            continue
        assert call.status == "ok"
        assert call.model == expected_model(entry, gaps)
        assert call.request_model == entry["requested_model"], entry["scenario"]
        expected = with_gaps(provider_tokens(entry), gaps, entry["streaming"])
        assert call.tokens == expected, entry["scenario"]
        assert call.cost_source == "price_table"
        expected_cost = published_cost(expected_model(entry, gaps), expected)
        assert call.cost_usd == pytest.approx(expected_cost, rel=1e-9, abs=1e-12)
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


@pytest.mark.parametrize("fixture", sorted(DOUBLED))
def test_double_traced_calls_are_counted_once(fixture: str, tmp_path: Path) -> None:
    """Two instrumentations of one call each record it, in the same trace or not, with or without a
    shared response id; metrics and prompt logs count each call once, failed ones included (the
    scope precedence of processor/dedupe.py keeps the preferred copy), and the other copies are
    counted as duplicates."""
    counted_scope, gaps, records_ttft = DOUBLED[fixture]
    provider_log = json.loads((RECORDED / f"{fixture}.provider.json").read_text())
    replayed = replay(RECORDED / f"{fixture}.jsonl", tmp_path)
    assert_counted_once(replayed, provider_log, gaps, records_ttft=records_ttft)
    calls = [call for calls in replayed.calls.values() for call in calls]
    assert {call.scope for call in calls} == {counted_scope}
    for entry in provider_log:
        (call,) = replayed.calls[entry["scenario"]]
        if entry["http_status"] == 200 and call.response_id:
            assert call.response_id == entry["response_id"], entry["scenario"]
    assert replayed.metric("otlp_enricher_llm_duplicate_calls_total") == len(provider_log)


def test_langchain_and_openai_copies_share_no_response_id() -> None:
    """LangChain under OpenInference plus OpenInference's OpenAI instrumentor: two LLM spans per call
    and neither names the provider's response id, so only the scope precedence can pair them."""
    path = RECORDED / "openinference-langchain-doubled.jsonl"
    provider_log = json.loads((RECORDED / "openinference-langchain-doubled.provider.json").read_text())
    copies = span_attributes(path, "openinference.instrumentation.")
    assert len(copies) == 2 * len(provider_log)
    assert not any(
        key in attributes for attributes in copies.values() for key in ("gen_ai.response.id", "ai.response.id")
    )


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


def span_attributes(path: Path, scope_prefix: str) -> dict[str, dict[str, Any]]:
    """Attributes (key → the OTLP/JSON value's one field, decoded) of the spans of scopes starting with
    ``scope_prefix`` in an OTLP/JSON recording, by hex span id."""
    found: dict[str, dict[str, Any]] = {}
    for text in path.read_text().splitlines():
        for resource_spans in json.loads(text)["resourceSpans"]:
            for scope_spans in resource_spans["scopeSpans"]:
                if scope_spans["scope"].get("name", "").startswith(scope_prefix):
                    for span in scope_spans["spans"]:
                        attributes = span.get("attributes", [])
                        found[span["spanId"]] = {a["key"]: _json_value(a["value"]) for a in attributes}
    return found


def _json_value(value: dict[str, Any]) -> Any:
    """An OTLP/JSON AnyValue's one field (64-bit integers are decimal strings there)."""
    (kind, decoded), *_ = value.items()
    return int(decoded) if kind == "intValue" else decoded


@pytest.mark.parametrize("fixture", ["openlit-openai", "openlit-anthropic"])
def test_openlit_cost_estimate_is_kept_but_never_wins_and_its_ttft_counts_only_on_streams(
    fixture: str, tmp_path: Path
) -> None:
    """OpenLIT prices every call from its own table (``gen_ai.usage.cost``) and writes
    ``gen_ai.server.time_to_first_token`` on every call, streamed or not (issue 8, items 6 and 7).
    The estimate is shown beside our price in the prompt log, marked as not the provider's."""
    path = RECORDED / FIXTURES[fixture]
    spans = span_attributes(path, "openlit.instrumentation.")
    replayed = replay(path, tmp_path)
    calls = [call for calls in replayed.calls.values() for call in calls if call.status == "ok"]
    lines = {line["span_id"]: line for lines in replayed.lines.values() for line in lines}
    assert calls
    for call in calls:
        attributes = spans[call.span_id.hex()]
        assert call.span_cost_usd == attributes["gen_ai.usage.cost"] and not call.span_cost_reported
        line = lines[call.span_id.hex()]  # the reader of the log sees both figures, and whose each is
        assert (line["span_cost_usd"], line["span_cost_reported"]) == (attributes["gen_ai.usage.cost"], False)
        assert line["cost_source"] == "price_table"
        assert call.cost_source == "price_table"
        assert "gen_ai.server.time_to_first_token" in attributes
        assert (call.ttft_s is not None) == attributes["gen_ai.request.stream"]
    # OpenLIT's table lacks the dated claude-sonnet-4-5-20250929 (anthropic-dated-model): a $0 estimate.
    assert (0.0 in {call.span_cost_usd for call in calls}) == (fixture == "openlit-anthropic")


def test_litellm_async_call_type_is_a_chat_call(tmp_path: Path) -> None:
    """LiteLLM writes its call type, ``acompletion``, as ``gen_ai.operation.name`` on async calls
    (issue 8, item 1): they are chat calls like the sync ones."""
    path = RECORDED / FIXTURES["litellm"]
    spans = span_attributes(path, "litellm").values()
    written = {attributes["gen_ai.operation.name"] for attributes in spans if "gen_ai.operation.name" in attributes}
    assert written == {"chat", "acompletion"}
    calls = [call for calls in replay(path, tmp_path).calls.values() for call in calls]
    assert {call.operation for call in calls} == {"chat"}


# Agent frameworks: per recorded run (scenario span), the provider scenarios its model requests
# played, as the recorder's manifest lists them.
AGENT_RUNS: dict[str, dict[str, list[str]]] = {
    entry["instrumentation"]: entry["runs"]
    for entry in json.loads((RECORDED / "MANIFEST.json").read_text())["fixtures"]
    if "runs" in entry
}


def by_provider_scenario(replayed: Replayed, provider_log: list[dict[str, Any]]) -> Replayed:
    """``replayed`` with calls and lines keyed by the provider scenario each answered (matched on the
    provider's response id), for runs that make several model requests."""
    scenario_of_response = {entry["response_id"]: entry["scenario"] for entry in provider_log}
    calls = [call for calls in replayed.calls.values() for call in calls]
    scenario_of_span = {call.span_id.hex(): scenario_of_response[call.response_id] for call in calls}
    rekeyed_calls: dict[str, list[LLMCall]] = {}
    for call in calls:
        rekeyed_calls.setdefault(scenario_of_span[call.span_id.hex()], []).append(call)
    rekeyed_lines: dict[str, list[dict[str, Any]]] = {}
    for line in (line for lines in replayed.lines.values() for line in lines):
        rekeyed_lines.setdefault(scenario_of_span[line["span_id"]], []).append(line)
    return Replayed(rekeyed_calls, rekeyed_lines, replayed.registry)


@pytest.mark.parametrize("fixture", sorted(AGENT_RUNS))
def test_agent_runs_count_each_model_request_once(fixture: str, tmp_path: Path) -> None:
    """An agent run with one tool call is two model requests, each one call with the provider's
    usage and price; the agent-run span (which sums their usage) and the tool span are no calls."""
    provider_log = json.loads((RECORDED / f"{fixture}.provider.json").read_text())
    replayed = replay(RECORDED / f"{fixture}.jsonl", tmp_path)
    entry_of = {entry["scenario"]: entry for entry in provider_log}
    assert {run: sorted(call.response_id for call in calls) for run, calls in replayed.calls.items()} == {
        run: sorted(entry_of[scenario]["response_id"] for scenario in scenarios)
        for run, scenarios in AGENT_RUNS[fixture].items()
    }
    per_request = by_provider_scenario(replayed, provider_log)
    gaps = GAPS[fixture]
    assert_counted_once(per_request, provider_log, gaps, records_ttft=False)
    for entry in provider_log:
        (call,) = per_request.calls[entry["scenario"]]
        expected = with_gaps(provider_tokens(entry), gaps, entry["streaming"])
        assert (call.status, call.operation, call.tokens) == ("ok", "chat", expected), entry["scenario"]
        assert call.cost_source == "price_table"
        assert call.cost_usd == pytest.approx(published_cost(entry["response_model"], expected), rel=1e-9)
