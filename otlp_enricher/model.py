"""The internal record of one LLM call, as every vocabulary is normalised into it.

Token semantics are fixed here once, so nothing downstream has to know which instrumentation
produced the span:

* ``input`` counts every input token, cached reads and cache writes included (OTel semantics);
* ``output`` counts every output token, reasoning included;
* ``cache_read``, ``cache_write_5m``, ``cache_write_1h`` and ``reasoning`` are subsets of those.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, get_args

if TYPE_CHECKING:
    from otlp_enricher._native import Span as NativeSpan
    from otlp_enricher.semconv.attributes import Attributes

Status = Literal["ok", "error"]
# "span": a cost the provider or a gateway reported on the span; "span_estimate": an
# instrumentation's own estimate, used only when we cannot price the call; "estimated": our price
# applied to token counts estimated from the content (the span reported no usage).
CostSource = Literal["span", "span_estimate", "price_table", "override", "estimated", "unpriced", "none"]
UnpricedReason = Literal["no_price", "no_usage"]
"""Why a call that should have a cost has none."""
UNPRICED_REASONS: tuple[UnpricedReason, ...] = get_args(UnpricedReason)

ErrorReason = Literal[
    "rate_limit",
    "context_overflow",
    "timeout",
    "safety_block",
    "auth",
    "bad_request",
    "provider_5xx",
    "cancelled",
    "other",
]
"""The closed set of reasons a call failed (the ``reason`` label of ``llm_errors_total``)."""
ERROR_REASONS: tuple[ErrorReason, ...] = get_args(ErrorReason)

RejectReason = Literal["invalid_id", "end_before_start", "invalid_token_count"]
"""Why a span that claims to be an LLM call is rejected (``partial_success``, a self-metric label)."""


TokenType = Literal["input", "output", "cache_read", "cache_write", "reasoning"]
"""The token types every output reports (the ``type`` label of ``llm_tokens_total``)."""
TOKEN_TYPES: tuple[TokenType, ...] = get_args(TokenType)


@dataclass(slots=True)
class Tokens:
    """Token counts of one call; see the module docstring for what includes what."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write_5m: int = 0
    cache_write_1h: int = 0
    reasoning: int = 0

    @property
    def cache_write(self) -> int:
        """All cache-write tokens, whatever their time to live."""
        return self.cache_write_5m + self.cache_write_1h

    @property
    def total(self) -> int:
        """Input plus output tokens."""
        return self.input + self.output

    def by_type(self) -> tuple[tuple[TokenType, int], ...]:
        """``(type, count)`` for each of :data:`TOKEN_TYPES`, in that order."""
        return (
            ("input", self.input),
            ("output", self.output),
            ("cache_read", self.cache_read),
            ("cache_write", self.cache_write),
            ("reasoning", self.reasoning),
        )


@dataclass(slots=True)
class LLMCall:
    """One LLM call recognised in a span, plus what the processors derive from it.

    The fields up to ``attributes`` are read from the span by ``semconv``; the ones after are
    filled in by the processors. ``span`` is the native scanner's view of the span (what the rules
    read); ``attributes`` its attribute view, kept so the prompt-log builder can read content.
    """

    trace_id: bytes
    span_id: bytes
    start_ns: int
    end_ns: int
    service: str
    provider: str
    request_model: str
    response_model: str
    operation: str
    status: Status
    vocabulary: str
    tokens: Tokens | None = None
    error_type: str = ""
    error_reason: ErrorReason | Literal[""] = ""
    ttft_s: float | None = None
    finish_reasons: tuple[str, ...] = ()
    span_cost_usd: float | None = None
    span_cost_reported: bool = False
    service_tier: str = ""
    scope: str = ""
    response_id: str = ""
    user_id: str = ""
    session_id: str = ""
    label_values: dict[str, str] = field(default_factory=dict)
    span: NativeSpan | None = None
    attributes: Attributes | None = None
    ordinal: int = -1  # position of the span in its request: where the exporters write the enrichment
    # Derived by the processors.
    cost_usd: float | None = None
    cost_source: CostSource = "none"
    unpriced_reason: UnpricedReason | Literal[""] = ""
    tokens_estimated: bool = False
    priced_model: str = ""
    time_per_output_token_s: float | None = None
    output_tokens_per_second: float | None = None
    slo_outcomes: dict[str, bool] = field(default_factory=dict)

    @property
    def model(self) -> str:
        """The model the provider answered with, or the requested one when it did not say."""
        return self.response_model or self.request_model

    @property
    def duration_s(self) -> float:
        """Wall-clock duration of the call in seconds."""
        return (self.end_ns - self.start_ns) / 1e9


class SpanRejected(ValueError):
    """A span claims to be an LLM call but carries data that cannot be used (see ``reason``)."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
