"""Which cost a call gets, and where it came from (``LLMCall.cost_source``).

Config: ``processors.genai.pricing.prefer_span_cost``. In order:

1. ``span``: a cost the provider or a gateway reported on the span (``gen_ai.usage.cost.source``
   says so) wins when ``prefer_span_cost`` is on, and always when the span has no token counts.
2. ``price_table`` / ``override``: our own price for the call's tokens. An instrumentation's own
   estimate (OpenLIT's ``gen_ai.usage.cost``: $0 for models it does not know, 1-hour cache writes
   at the 5-minute price) never wins over it; it stays on the call (``span_cost_usd``) for comparison.
3. ``span_estimate``: that estimate, when we cannot price the call — but a $0 estimate for a call
   with tokens is no price at all.
4. ``estimated``: the call reported no usage (an OpenAI stream without ``include_usage``) but its
   content is on the span; tokens are estimated at a documented characters-per-token ratio and
   priced, and ``LLMCall.tokens_estimated`` is set.
5. ``unpriced`` with ``unpriced_reason``: ``no_price`` (tokens, but no price anywhere) or
   ``no_usage`` (a successful call that reported no tokens and carries no content to estimate from).

A failed call without tokens has no cost (``none``). Whatever priced the call, its provider label
follows the price when the span named no provider (``openai/gpt-4o``, a bare Bedrock id).
"""

from __future__ import annotations

import math
from typing import Any

from otlp_enricher.model import LLMCall, Tokens
from otlp_enricher.processor.pricing import PriceBook, PriceCard
from otlp_enricher.semconv.messages import input_messages, output_messages

# Characters per token for estimating a call that reported no usage. OpenAI: "one token generally
# corresponds to ~4 characters of text for common English text" (help.openai.com, "What are tokens
# and how to count them?"); Gemini: "a token is equivalent to about 4 characters"
# (ai.google.dev/gemini-api/docs/tokens). Other providers publish no ratio; 4 is used for them too.
CHARS_PER_TOKEN: dict[str, float] = {"openai": 4.0, "gcp.gemini": 4.0, "gcp.vertex_ai": 4.0}
DEFAULT_CHARS_PER_TOKEN = 4.0


class CostPolicy:
    """Sets ``cost_usd``, ``cost_source``, ``priced_model`` and ``unpriced_reason`` of a call."""

    def __init__(self, prices: PriceBook, prefer_span_cost: bool) -> None:
        self._prices = prices
        self._prefer_reported = prefer_span_cost

    def apply(self, call: LLMCall) -> None:
        """Decide the cost of ``call`` (see the module docstring for the order)."""
        tokens = call.tokens
        reported = call.span_cost_usd if call.span_cost_reported else None
        if reported is not None and (self._prefer_reported or tokens is None):
            call.cost_usd, call.cost_source = reported, "span"
            self._follow_provider(call, None)
            return
        if tokens is None and call.status == "ok":
            tokens = estimate_tokens(call)
            if tokens is None:
                call.cost_source, call.unpriced_reason = "unpriced", "no_usage"
                self._follow_provider(call, None)
                return
            call.tokens, call.tokens_estimated = tokens, True
        if tokens is None or tokens.total == 0:
            self._follow_provider(call, None)
            return
        card = self._card(call)
        if card is not None:
            call.cost_usd = card.cost(tokens)
            call.cost_source = "estimated" if call.tokens_estimated else card.source
            call.priced_model = card.model_id
            self._follow_provider(call, card)
            return
        estimate = call.span_cost_usd
        if reported is not None:
            call.cost_usd, call.cost_source = reported, "span"
        elif estimate is not None and estimate > 0 and not call.tokens_estimated:
            call.cost_usd, call.cost_source = estimate, "span_estimate"
        else:
            call.cost_source, call.unpriced_reason = "unpriced", "no_price"

    def _card(self, call: LLMCall) -> PriceCard | None:
        prices = self._prices
        card = prices.card(call.provider, call.model, call.start_ns, call.service_tier)
        if card is None and call.request_model and call.request_model != call.model:
            card = prices.card(call.provider, call.request_model, call.start_ns, call.service_tier)
        return card

    def _follow_provider(self, call: LLMCall, card: PriceCard | None) -> None:
        """A call whose span named no provider takes the provider its model's price is filed under."""
        if call.provider != "unknown" or not call.model:
            return
        if card is None:
            card = self._card(call)
        if card is not None and card.provider:
            call.provider = card.provider


def estimate_tokens(call: LLMCall) -> Tokens | None:
    """Input and output tokens from the characters of the content on the span, or None without content."""
    attributes: Any = call.attributes
    if attributes is None:
        return None
    input_chars = _text_chars(input_messages(attributes))
    output_chars = _text_chars(output_messages(attributes))
    if input_chars == 0 and output_chars == 0:
        return None
    ratio = CHARS_PER_TOKEN.get(call.provider, DEFAULT_CHARS_PER_TOKEN)
    return Tokens(input=math.ceil(input_chars / ratio), output=math.ceil(output_chars / ratio))


def _text_chars(messages: list[dict[str, Any]]) -> int:
    total = 0
    for message in messages:
        for part in message.get("parts") or ():
            if not isinstance(part, dict):
                continue
            for field in ("content", "arguments", "response"):
                value = part.get(field)
                if isinstance(value, str):
                    total += len(value)
    return total
