"""Cost provenance (issue 8 items 6 and 9): which cost wins, and what an unpriced call says.

Expected figures from published list prices: gpt-4o $2.50 in / $10 out per million tokens;
claude-sonnet-4-5 $3 / $15. Token estimates apply OpenAI's documented ~4 characters per token.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from otlp_enricher.model import LLMCall
from otlp_enricher.processor.cost import CostPolicy
from otlp_enricher.processor.pricing import PriceBook, PricingSettings
from otlp_enricher.semconv.extract import CallExtractor, UsageSemantics
from tests.otlp_builders import scanned, span

M = 1_000_000
PRICES = PriceBook(PricingSettings(aliases={}, overrides={}, discounts={}))


def priced(attributes: dict[str, Any], prefer_span_cost: bool = True, **kw: Any) -> LLMCall:
    """Extract a call from a span and apply the cost policy."""
    extractor = CallExtractor(UsageSemantics())
    native, resource = scanned(span(attributes, **kw))
    assert native is not None
    call = extractor.extract(native, resource, "test", "svc")
    assert call is not None
    CostPolicy(PRICES, prefer_span_cost).apply(call)
    return call


GPT4O = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.usage.input_tokens": 1_000,
    "gen_ai.usage.output_tokens": 100,
}
GPT4O_COST = (1_000 * 2.50 + 100 * 10.0) / M


def test_our_price_wins_over_an_instrumentation_estimate() -> None:
    """OpenLIT's gen_ai.usage.cost comes from its own table: kept for comparison, never the cost."""
    call = priced({**GPT4O, "gen_ai.usage.cost": 0.5})
    assert (call.cost_source, call.span_cost_usd) == ("price_table", 0.5)
    assert call.cost_usd == pytest.approx(GPT4O_COST)


def test_provider_reported_cost_wins() -> None:
    """A gateway's billed amount (gen_ai.usage.cost.source = gateway) is the cost."""
    call = priced({**GPT4O, "gen_ai.usage.cost.amount": 0.0042, "gen_ai.usage.cost.source": "gateway"})
    assert (call.cost_source, call.cost_usd) == ("span", 0.0042)


def test_reported_cost_gives_way_when_the_operator_prefers_our_price() -> None:
    """prefer_span_cost: false prices every call we can price ourselves."""
    attributes = {**GPT4O, "gen_ai.usage.cost.amount": 0.0042, "gen_ai.usage.cost.source": "provider"}
    call = priced(attributes, prefer_span_cost=False)
    assert call.cost_source == "price_table" and call.cost_usd == pytest.approx(GPT4O_COST)


UNKNOWN_MODEL = {**GPT4O, "gen_ai.request.model": "acme-private-7b"}


def test_an_estimate_prices_a_call_we_cannot() -> None:
    """No price of ours: the instrumentation's non-zero estimate is used, labelled as such."""
    call = priced({**UNKNOWN_MODEL, "gen_ai.usage.cost": 0.003})
    assert (call.cost_source, call.cost_usd) == ("span_estimate", 0.003)


def test_a_zero_estimate_for_a_call_with_tokens_never_wins() -> None:
    """OpenLIT writes $0 for models it does not know: that is no price, so the call is unpriced."""
    call = priced({**UNKNOWN_MODEL, "gen_ai.usage.cost": 0.0})
    assert (call.cost_source, call.cost_usd, call.unpriced_reason) == ("unpriced", None, "no_price")


def test_a_stream_without_usage_is_counted_as_unpriced_with_a_reason() -> None:
    """An OpenAI stream without include_usage and without content: unpriced, no_usage — not $0."""
    call = priced({"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o"})
    assert (call.cost_source, call.cost_usd, call.unpriced_reason) == ("unpriced", None, "no_usage")


def test_a_stream_without_usage_but_with_content_is_estimated_and_flagged() -> None:
    """Content on the span: tokens at 4 characters each, priced, flagged ``estimated``."""
    prompt, answer = "x" * 4_001, "y" * 399
    messages = [{"role": "user", "parts": [{"type": "text", "content": prompt}]}]
    output = [{"role": "assistant", "parts": [{"type": "text", "content": answer}], "finish_reason": "stop"}]
    call = priced(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.request.stream": True,
            "gen_ai.input.messages": json.dumps(messages),
            "gen_ai.output.messages": json.dumps(output),
        }
    )
    tokens_in, tokens_out = math.ceil(4_001 / 4), math.ceil(399 / 4)
    assert call.tokens_estimated and call.cost_source == "estimated"
    assert call.tokens is not None and (call.tokens.input, call.tokens.output) == (tokens_in, tokens_out)
    assert call.cost_usd == pytest.approx((tokens_in * 2.50 + tokens_out * 10.0) / M)


def test_a_failed_call_without_tokens_has_no_cost() -> None:
    """Errors are not unpriced calls: nothing was billed that we know of."""
    call = priced({"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"}, error=True)
    assert (call.cost_source, call.cost_usd, call.unpriced_reason) == ("none", None, "")


def test_provider_label_follows_the_price_for_a_bare_bedrock_id() -> None:
    """A Bedrock id with no provider attribute is priced and labelled aws.bedrock."""
    call = priced(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "gen_ai.usage.input_tokens": 1_000,
            "gen_ai.usage.output_tokens": 100,
        }
    )
    assert call.provider == "aws.bedrock" and call.cost_source == "price_table"
    assert call.cost_usd == pytest.approx((1_000 * 3.30 + 100 * 16.50) / M)


def test_service_tier_on_the_span_is_priced() -> None:
    """openai.response.service_tier = priority: gpt-4o at $4.25 / $17 (calls after 2026-10-12)."""
    call = priced({**GPT4O, "openai.response.service_tier": "priority"}, start_ns=1_793_491_200 * 10**9)
    assert call.cost_usd == pytest.approx((1_000 * 4.25 + 100 * 17.0) / M)
