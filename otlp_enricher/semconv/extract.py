"""Recognise an LLM call in a span and read it into an :class:`LLMCall`, whatever the vocabulary.

Recognition is deliberately narrow: a span counts only when it is *one model call*. Agent, chain,
workflow and the Vercel AI SDK's outer ``ai.generateText`` spans repeat the tokens of the calls
beneath them and would double every figure if they were counted too.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from otlp_enricher.model import LLMCall, SpanRejected, Tokens
from otlp_enricher.semconv import keys
from otlp_enricher.semconv.attributes import Attributes
from otlp_enricher.semconv.providers import normalise_provider

_STATUS_CODE_ERROR = 2
_MODEL_KEYS = keys.REQUEST_MODEL + keys.RESPONSE_MODEL
_TOKEN_KEYS = keys.INPUT_TOKENS + keys.OUTPUT_TOKENS


@dataclass(frozen=True, slots=True)
class UsageSemantics:
    """How to read input token counts whose inclusivity the attributes alone do not settle.

    ``input_excludes_cache_scopes`` lists instrumentation scope names that forward a provider's raw
    input count without cache tokens (Anthropic's ``usage.input_tokens``); their cache reads and
    writes are added to the input total.
    """

    input_excludes_cache_scopes: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True)
class LabelSource:
    """An extra metric label and the attribute keys (span first, then resource) it is read from."""

    label: str
    attribute_keys: tuple[str, ...]


class CallExtractor:
    """Turns spans into :class:`LLMCall` records; returns ``None`` for spans that are not one."""

    def __init__(self, usage: UsageSemantics, labels: Iterable[LabelSource] = ()) -> None:
        self._excluding_scopes = usage.input_excludes_cache_scopes
        self._labels = tuple(labels)

    def extract(self, span: Any, resource: Attributes, scope_name: str, service: str) -> LLMCall | None:
        """Read ``span`` into an :class:`LLMCall`; raises :class:`SpanRejected` for unusable data."""
        attrs = Attributes(span.attributes)
        recognised = _recognise(attrs)
        if recognised is None:
            return None
        vocabulary, operation = recognised
        if len(span.trace_id) != 16 or len(span.span_id) != 8:
            raise SpanRejected("invalid_id", "trace id must be 16 bytes and span id 8 bytes")
        if span.end_time_unix_nano < span.start_time_unix_nano:
            raise SpanRejected("end_before_start", "span ends before it starts")

        provider = normalise_provider(_provider(attrs))
        tokens = self._tokens(attrs, provider, scope_name)
        error_type = attrs.first_str(keys.ERROR_TYPE)
        is_error = span.status.code == _STATUS_CODE_ERROR or bool(error_type)
        request_model = attrs.first_str(keys.REQUEST_MODEL)
        response_model = attrs.first_str(keys.RESPONSE_MODEL)
        if not request_model and not response_model:
            request_model = _invocation_model(attrs)
        if is_error and response_model and not _names_response_model(attrs):
            # OpenInference writes the *requested* model into llm.model_name when the call failed.
            request_model, response_model = request_model or response_model, ""
        call = LLMCall(
            trace_id=span.trace_id,
            span_id=span.span_id,
            start_ns=span.start_time_unix_nano,
            end_ns=span.end_time_unix_nano,
            service=service,
            provider=provider or "unknown",
            request_model=request_model,
            response_model=response_model,
            operation=operation,
            status="error" if is_error else "ok",
            vocabulary=vocabulary,
            tokens=tokens,
            error_type=error_type,
            ttft_s=_ttft(attrs, span),
            finish_reasons=_finish_reasons(attrs),
            span_cost_usd=_span_cost(attrs),
            streaming=_streaming(attrs),
            response_id=attrs.first_str(keys.RESPONSE_ID),
            user_id=attrs.first_str(keys.USER_ID),
            session_id=attrs.first_str(keys.SESSION_ID),
            label_values=self._label_values(attrs, resource),
            span=span,
            attributes=attrs,
        )
        return call

    def _tokens(self, attrs: Attributes, provider: str, scope_name: str) -> Tokens | None:
        found_input = attrs.first(keys.INPUT_TOKENS)
        found_output = attrs.first(keys.OUTPUT_TOKENS)
        if found_input is None and found_output is None:
            return None
        tokens = Tokens(
            input=_count(found_input),
            output=_count(found_output),
            cache_read=_count(attrs.first(keys.CACHE_READ_TOKENS)),
            reasoning=_count(attrs.first(keys.REASONING_TOKENS)),
        )
        cache_write = _count(attrs.first(keys.CACHE_WRITE_TOKENS))
        cache_write_1h = min(_count(attrs.first(keys.CACHE_WRITE_1H_TOKENS)), cache_write)
        tokens.cache_write_1h = cache_write_1h
        tokens.cache_write_5m = cache_write - cache_write_1h
        if self._input_excludes_cache(attrs, tokens, provider, scope_name, found_input):
            tokens.input += tokens.cache_read + tokens.cache_write
        if tokens.output < tokens.reasoning:
            # Reasoning reported beside, not inside, the output count (Gemini's thoughtsTokenCount).
            tokens.output += tokens.reasoning
        return tokens

    def _input_excludes_cache(
        self,
        attrs: Attributes,
        tokens: Tokens,
        provider: str,
        scope_name: str,
        found_input: tuple[str, Any] | None,
    ) -> bool:
        cached = tokens.cache_read + tokens.cache_write
        if cached == 0:
            return False
        if tokens.input < cached or scope_name in self._excluding_scopes:
            return True  # an input total that includes the cache cannot be smaller than it
        # Vercel AI SDK ≤ v5 forwarded Anthropic's raw input_tokens; v6+ adds input token details.
        return (
            found_input is not None
            and found_input[0] in keys.VERCEL_LEGACY_INPUT
            and provider == "anthropic"
            and attrs.first(keys.VERCEL_INPUT_DETAIL) is None
        )

    def _label_values(self, attrs: Attributes, resource: Attributes) -> dict[str, str]:
        values: dict[str, str] = {}
        for source in self._labels:
            value = attrs.first_str(source.attribute_keys) or resource.first_str(source.attribute_keys)
            values[source.label] = value
        return values


def _recognise(attrs: Attributes) -> tuple[str, str] | None:
    """Return (vocabulary, operation) when the span is one model call, else ``None``."""
    operation = attrs.get("gen_ai.operation.name")
    if isinstance(operation, str) and operation:
        if operation not in keys.LLM_OPERATIONS:
            return None
        return "gen_ai", keys.OPERATION_ALIASES.get(operation, operation)
    kind = attrs.get("openinference.span.kind")
    if isinstance(kind, str) and kind:
        found = keys.OPENINFERENCE_LLM_KINDS.get(kind.upper())
        if found is None:
            return None
        if found == "chat" and "llm.prompts.0.prompt.text" in attrs:
            found = "text_completion"
        return "openinference", found
    request_type = attrs.get("llm.request.type")
    if isinstance(request_type, str) and request_type:
        mapped = keys.OPENLLMETRY_REQUEST_TYPES.get(request_type)
        return ("openllmetry", mapped) if mapped else None
    operation_id = attrs.get("ai.operationId")
    if isinstance(operation_id, str) and operation_id:
        vercel = keys.VERCEL_CALL_OPERATIONS.get(operation_id)
        return ("vercel_ai", vercel) if vercel else None
    has_model = any(key in attrs for key in _MODEL_KEYS)
    if has_model and any(key in attrs for key in _TOKEN_KEYS):
        return "gen_ai", "chat"
    return None


def _provider(attrs: Attributes) -> str:
    # OpenInference: llm.provider is the host (azure, aws) and wins over the product (llm.system).
    return attrs.first_str(keys.PROVIDER)


def _invocation_model(attrs: Attributes) -> str:
    parameters = attrs.get(keys.INVOCATION_PARAMETERS)
    if not isinstance(parameters, str) or '"model"' not in parameters:
        return ""
    try:
        model = orjson.loads(parameters).get("model")
    except (orjson.JSONDecodeError, AttributeError):
        return ""
    return model if isinstance(model, str) else ""


def _names_response_model(attrs: Attributes) -> bool:
    return "gen_ai.response.model" in attrs or "llm.response.model_name" in attrs or "ai.response.model" in attrs


def _count(found: tuple[str, Any] | None) -> int:
    """A token count from an attribute; rejects negatives, fractions and non-numbers."""
    if found is None:
        return 0
    key, value = found
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SpanRejected("invalid_token_count", f"{key} is not a number")
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise SpanRejected("invalid_token_count", f"{key} is not a whole number")
        value = int(value)
    if value < 0:
        raise SpanRejected("invalid_token_count", f"{key} is negative")
    return value


def _non_negative_float(found: tuple[str, Any] | None) -> float | None:
    if found is None:
        return None
    value = found[1]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value) if value >= 0 else None


def _ttft(attrs: Attributes, span: Any) -> float | None:
    seconds = _non_negative_float(attrs.first(keys.TTFT_SECONDS))
    if seconds is not None:
        return seconds
    milliseconds = _non_negative_float(attrs.first(keys.TTFT_MILLISECONDS))
    if milliseconds is not None:
        return milliseconds / 1000.0
    for event in span.events:
        if event.name in keys.FIRST_CHUNK_EVENTS and event.time_unix_nano >= span.start_time_unix_nano:
            return float(event.time_unix_nano - span.start_time_unix_nano) / 1e9
    return None


def _finish_reasons(attrs: Attributes) -> tuple[str, ...]:
    found = attrs.first(keys.FINISH_REASONS)
    if found is None:
        return ()
    value = found[1]
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(str(item) for item in value)
    return ()


def _span_cost(attrs: Attributes) -> float | None:
    return _non_negative_float(attrs.first(keys.COST_USD))


def _streaming(attrs: Attributes) -> bool | None:
    found = attrs.first(keys.STREAMING)
    if found is None or not isinstance(found[1], bool):
        return None
    return bool(found[1])


def service_name(resource: Attributes) -> str:
    """The ``service.name`` of a resource, or ``unknown_service`` as the SDKs default it."""
    return resource.first_str(("service.name",)) or "unknown_service"


def label_sources(allow: Mapping[str, tuple[str, ...]]) -> list[LabelSource]:
    """Build the extra label sources from the validated ``labels.allow`` config."""
    return [LabelSource(label, attribute_keys) for label, attribute_keys in allow.items()]


def error_evidence(call: LLMCall) -> tuple[list[str], int | None]:
    """What a failed call says about its failure: texts to classify, and the HTTP status if any."""
    span = call.span
    texts = [call.error_type, span.status.message] if span is not None else [call.error_type]
    if span is not None:
        for event in span.events:
            if event.name == "exception" or event.name.endswith(".exception"):
                exception = Attributes(event.attributes)
                texts.append(exception.first_str(("exception.type",)))
                texts.append(exception.first_str(("exception.message",))[:500])
    status: int | None = None
    if call.attributes is not None:
        found = call.attributes.first(keys.HTTP_STATUS)
        if found is not None and isinstance(found[1], int) and not isinstance(found[1], bool):
            status = found[1]
        elif found is not None and isinstance(found[1], str) and found[1].isdigit():
            status = int(found[1])
    return texts, status
