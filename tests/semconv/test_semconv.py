"""One normalised call from every vocabulary, with provider usage semantics applied once.

Attribute names come from docs/reference/genai-attributes.md §1 (each row cites its source).
"""

from __future__ import annotations

from typing import Any

import pytest

from otlp_enricher.model import LLMCall, SpanRejected, Tokens
from otlp_enricher.semconv.extract import CallExtractor, LabelSource, UsageSemantics
from tests.otlp_builders import scanned, span


def extract(
    attributes: dict[str, Any], scope: str = "test", excluding: frozenset[str] = frozenset(), **kw: Any
) -> LLMCall | None:
    """Run the extractor over one span."""
    extractor = CallExtractor(UsageSemantics(excluding), [LabelSource("environment", ("deployment.environment",))])
    native, resource = scanned(
        span(attributes, **kw),
        {"service.name": "svc", "deployment.environment": "prod"},
        scope,
        ["deployment.environment"],
    )
    return None if native is None else extractor.extract(native, resource, scope, "svc")


def test_otel_current_names() -> None:
    """gen_ai.* v1.40+: provider.name, cache_read/cache_creation subsets, reasoning subset."""
    call = extract(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.response.model": "gpt-4o-2024-08-06",
            "gen_ai.usage.input_tokens": 1200,
            "gen_ai.usage.output_tokens": 300,
            "gen_ai.usage.cache_read.input_tokens": 1000,
            "gen_ai.usage.reasoning.output_tokens": 100,
            "gen_ai.response.finish_reasons": ["stop"],
            "gen_ai.response.time_to_first_chunk": 0.25,
        }
    )
    assert call is not None
    assert (call.provider, call.model, call.request_model, call.operation) == (
        "openai",
        "gpt-4o-2024-08-06",
        "gpt-4o",
        "chat",
    )
    assert call.tokens == Tokens(input=1200, output=300, cache_read=1000, reasoning=100)
    assert call.ttft_s == 0.25
    assert call.finish_reasons == ("stop",)
    assert call.label_values == {"environment": "prod"}


def test_otel_renamed_cache_write_and_deprecated_names() -> None:
    """gen_ai.system, prompt_tokens/completion_tokens and the renamed cache_write key."""
    call = extract(
        {
            "gen_ai.system": "az.ai.openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.prompt_tokens": 50,
            "gen_ai.usage.completion_tokens": 7,
            "gen_ai.usage.cache_write.input_tokens": 20,
        }
    )
    assert call is not None
    assert call.provider == "azure.ai.openai"
    assert call.tokens == Tokens(input=50, output=7, cache_write_5m=20)


def test_openinference() -> None:
    """llm.* token counts, llm.provider over llm.system, span kind LLM."""
    call = extract(
        {
            "openinference.span.kind": "LLM",
            "llm.system": "anthropic",
            "llm.provider": "anthropic",
            "llm.model_name": "claude-sonnet-4-5-20250929",
            "llm.token_count.prompt": 900,
            "llm.token_count.completion": 40,
            "llm.token_count.prompt_details.cache_read": 500,
            "llm.token_count.prompt_details.cache_write": 300,
        }
    )
    assert call is not None
    assert (call.provider, call.model, call.vocabulary) == (
        "anthropic",
        "claude-sonnet-4-5-20250929",
        "openinference",
    )
    assert call.tokens == Tokens(input=900, output=40, cache_read=500, cache_write_5m=300)


def test_openinference_chain_and_agent_spans_are_not_calls() -> None:
    """Only LLM/EMBEDDING kinds are one model call; CHAIN would double-count its children."""
    assert extract({"openinference.span.kind": "CHAIN", "llm.token_count.prompt": 5}) is None


def test_openllmetry_old_flat_names() -> None:
    """semconv-ai ≤ 0.4: llm.request.type, capitalised system, underscore cache keys."""
    call = extract(
        {
            "llm.request.type": "chat",
            "gen_ai.system": "Anthropic",
            "gen_ai.request.model": "claude-3-5-sonnet-20241022",
            "gen_ai.usage.prompt_tokens": 1500,
            "gen_ai.usage.completion_tokens": 60,
            "gen_ai.usage.cache_read_input_tokens": 1000,
            "gen_ai.usage.cache_creation_input_tokens": 200,
            "llm.usage.reasoning_tokens": 0,
        }
    )
    assert call is not None
    assert call.provider == "anthropic"
    assert call.tokens == Tokens(input=1500, output=60, cache_read=1000, cache_write_5m=200)


def test_anthropic_raw_input_excluding_cache_is_made_inclusive() -> None:
    """An input count smaller than its own cache subsets must be Anthropic's raw, cache-excluding one."""
    call = extract(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": "claude-sonnet-4-5",
            "gen_ai.usage.input_tokens": 25,
            "gen_ai.usage.output_tokens": 10,
            "gen_ai.usage.cache_read.input_tokens": 4000,
            "gen_ai.usage.cache_creation.input_tokens": 1000,
        }
    )
    assert call is not None and call.tokens is not None
    assert call.tokens.input == 25 + 4000 + 1000


def test_scope_configured_as_cache_excluding() -> None:
    """An instrumentation known to forward raw Anthropic input is corrected even when input ≥ cache."""
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-sonnet-4-5",
        "gen_ai.usage.input_tokens": 5000,
        "gen_ai.usage.output_tokens": 10,
        "gen_ai.usage.cache_read.input_tokens": 3000,
    }
    inclusive = extract(attributes)
    exclusive = extract(attributes, scope="raw.instr", excluding=frozenset({"raw.instr"}))
    assert inclusive is not None and inclusive.tokens is not None and inclusive.tokens.input == 5000
    assert exclusive is not None and exclusive.tokens is not None and exclusive.tokens.input == 8000


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        # v4: promptTokens is Anthropic's raw input_tokens; cache read comes separately (v5 key).
        ({"ai.usage.promptTokens": 100, "ai.usage.completionTokens": 20}, Tokens(input=100, output=20)),
        (
            {"ai.usage.inputTokens": 100, "ai.usage.outputTokens": 20, "ai.usage.cachedInputTokens": 50},
            Tokens(input=150, output=20, cache_read=50),
        ),
        # v6+: inputTokens is the total and input token details are present.
        (
            {
                "ai.usage.inputTokens": 150,
                "ai.usage.outputTokens": 20,
                "ai.usage.inputTokenDetails.cacheReadTokens": 50,
                "ai.usage.inputTokenDetails.noCacheTokens": 100,
                "ai.usage.outputTokenDetails.reasoningTokens": 5,
            },
            Tokens(input=150, output=20, cache_read=50, reasoning=5),
        ),
    ],
)
def test_vercel_ai_sdk_legacy_versions(usage: dict[str, int], expected: Tokens) -> None:
    """ai.usage.* across v4–v6 against Anthropic; only the inner doGenerate span is a call."""
    call = extract(
        {
            "ai.operationId": "ai.generateText.doGenerate",
            "ai.model.provider": "anthropic.messages",
            "ai.model.id": "claude-sonnet-4-5",
            **usage,
        }
    )
    assert call is not None
    assert call.provider == "anthropic"
    assert call.tokens == expected
    outer = extract({"ai.operationId": "ai.generateText", "ai.model.id": "claude-sonnet-4-5", **usage})
    assert outer is None


def test_vercel_v7_and_ms_ttft() -> None:
    """v7 writes gen_ai.* names; legacy TTFT comes in milliseconds."""
    call = extract(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": 3,
            "gen_ai.usage.output_tokens": 4,
            "gen_ai.client.operation.time_to_first_chunk": 0.125,
        }
    )
    assert call is not None and call.ttft_s == 0.125
    legacy = extract(
        {
            "ai.operationId": "ai.streamText.doStream",
            "ai.model.id": "gpt-4o",
            "ai.usage.inputTokens": 1,
            "ai.usage.outputTokens": 1,
            "ai.response.msToFirstChunk": 340.0,
        }
    )
    assert legacy is not None and legacy.ttft_s == pytest.approx(0.34)


def test_openlit_span_attributes() -> None:
    """OpenLIT: gen_ai.* tokens, reasoning_tokens, cost and a TTFT attribute named like a metric,
    which OpenLIT also sets on calls that did not stream: read only with its stream flag true."""
    call = extract(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": 10,
            "gen_ai.usage.output_tokens": 20,
            "gen_ai.usage.reasoning_tokens": 5,
            "gen_ai.usage.cost": 0.0123,
            "gen_ai.server.time_to_first_token": 0.2,
            "gen_ai.request.is_stream": True,
        }
    )
    assert call is not None
    assert call.tokens == Tokens(input=10, output=20, reasoning=5)
    assert call.span_cost_usd == 0.0123 and call.ttft_s == 0.2
    assert not call.span_cost_reported  # OpenLIT prices from its own table


def test_first_chunk_event_gives_ttft() -> None:
    """OpenInference's "First Token Stream Event" marks the first chunk."""
    call = extract(
        {
            "openinference.span.kind": "LLM",
            "llm.model_name": "gpt-4o",
            "llm.token_count.prompt": 1,
            "llm.token_count.completion": 2,
        },
        events=[("First Token Stream Event", 0.3, {})],
    )
    assert call is not None and call.ttft_s == pytest.approx(0.3)


def test_non_llm_spans_pass_untouched() -> None:
    """HTTP, DB, tool and agent spans are not calls."""
    assert extract({"http.request.method": "GET", "url.full": "https://x"}) is None
    assert extract({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"}) is None
    assert extract({"gen_ai.operation.name": "invoke_agent", "gen_ai.usage.input_tokens": 5000}) is None


@pytest.mark.parametrize(
    ("attributes", "reason"),
    [
        ({"gen_ai.usage.input_tokens": -1}, "invalid_token_count"),
        ({"gen_ai.usage.input_tokens": "12"}, "invalid_token_count"),
        ({"gen_ai.usage.output_tokens": 1.5}, "invalid_token_count"),
        ({"gen_ai.usage.output_tokens": True}, "invalid_token_count"),
    ],
)
def test_nonsense_is_rejected_with_a_reason(attributes: dict[str, Any], reason: str) -> None:
    """Negative, fractional or non-numeric token counts are rejected, never crash."""
    with pytest.raises(SpanRejected) as raised:
        extract({"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o", **attributes})
    assert raised.value.reason == reason


def test_end_before_start_is_rejected() -> None:
    """A span that ends before it starts cannot be timed."""
    with pytest.raises(SpanRejected) as raised:
        extract({"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"}, duration_s=-1.0)
    assert raised.value.reason == "end_before_start"


def test_failed_openinference_call_does_not_report_the_requested_model_as_the_response() -> None:
    """OpenInference writes the requested model into llm.model_name on failure."""
    call = extract(
        {"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o", "llm.token_count.prompt": 0},
        error=True,
        status_message="RateLimitError",
    )
    assert call is not None and call.status == "error" and call.response_model == "" and call.model == "gpt-4o"
