"""Recognise an LLM call in a span and read it into an :class:`LLMCall`, whatever the vocabulary.

Recognition is deliberately narrow: a span counts only when it is *one model call*. Agent, chain,
workflow and the Vercel AI SDK's outer ``ai.generateText`` spans repeat the tokens of the calls
beneath them and would double every figure if they were counted too.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from otlp_enricher.model import LLMCall, SpanRejected, Tokens
from otlp_enricher.semconv import candidates, keys
from otlp_enricher.semconv.attributes import Attributes
from otlp_enricher.semconv.litellm import litellm_usage, usage_path
from otlp_enricher.semconv.providers import normalise_provider
from otlp_enricher.semconv.scopes import BUILT_IN_RULES, InputSemantics, ScopeRule

_STATUS_CODE_ERROR = 2
_MODEL_KEYS = keys.REQUEST_MODEL + keys.RESPONSE_MODEL
_TOKEN_KEYS = keys.INPUT_TOKENS + keys.OUTPUT_TOKENS
# ``<operation> <model>``: one operation word, one model id (no spaces), nothing else.
_SPAN_NAME_CALL = re.compile(r"^(?P<operation>[a-z_]+) (?P<model>[^\s]+)$")


@dataclass(frozen=True, slots=True)
class UsageSemantics:
    """How to read input token counts whose inclusivity the attributes alone do not settle.

    ``scope_rules`` (``processors.genai.usage.scopes``) say per instrumentation scope, provider and
    version whether the input count includes the cache; they are checked before the built-in table
    in :mod:`otlp_enricher.semconv.scopes`. ``input_excludes_cache_scopes`` is the older, coarser
    form: scope names whose input count leaves the cache out, for every provider and version.
    """

    input_excludes_cache_scopes: frozenset[str] = field(default_factory=frozenset)
    scope_rules: tuple[ScopeRule, ...] = ()

    def rules(self) -> tuple[ScopeRule, ...]:
        """Config rows first, then the coarse exclusion list, then the built-in table."""
        coarse = tuple(
            ScopeRule(scope, input_includes_cache=False, evidence="usage.input_excludes_cache_scopes")
            for scope in sorted(self.input_excludes_cache_scopes)
        )
        return self.scope_rules + coarse + BUILT_IN_RULES


@dataclass(frozen=True, slots=True)
class LabelSource:
    """An extra metric label and the attribute keys (span first, then resource) it is read from."""

    label: str
    attribute_keys: tuple[str, ...]


class CallExtractor:
    """Turns spans into :class:`LLMCall` records; returns ``None`` for spans that are not one."""

    def __init__(self, usage: UsageSemantics, labels: Iterable[LabelSource] = ()) -> None:
        self._inclusivity = InputSemantics(usage.rules())
        self._labels = tuple(labels)

    def extract(
        self, span: Any, resource: Attributes, scope_name: str, service: str, scope_version: str = ""
    ) -> LLMCall | None:
        """Read ``span`` into an :class:`LLMCall`; raises :class:`SpanRejected` for unusable data."""
        attrs = Attributes(span.attributes)
        recognised = _recognise(attrs, span.name)
        named_model = ""
        if recognised is None:
            recognised, named_model = _recognise_by_name(span, scope_name)
            if recognised is None:
                return None
        vocabulary, operation = recognised
        if len(span.trace_id) != 16 or len(span.span_id) != 8:
            raise SpanRejected("invalid_id", "trace id must be 16 bytes and span id 8 bytes")
        if span.end_time_unix_nano < span.start_time_unix_nano:
            raise SpanRejected("end_before_start", "span ends before it starts")

        provider = normalise_provider(_provider(attrs))
        tokens = self._tokens(attrs, provider, scope_name, scope_version)
        error_type = _error_type(attrs)
        is_error = span.status.code == _STATUS_CODE_ERROR or bool(error_type)
        request_model = attrs.first_str(keys.REQUEST_MODEL) or named_model
        response_model = attrs.first_str(keys.RESPONSE_MODEL)
        streaming = _streaming(attrs)
        span_cost, cost_reported = _span_cost(attrs)
        if not request_model:  # OpenInference names the requested model only in its parameters
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
            ttft_s=_ttft(attrs, span, streaming),
            finish_reasons=_finish_reasons(attrs),
            span_cost_usd=span_cost,
            span_cost_reported=cost_reported,
            service_tier=attrs.first_str(keys.SERVICE_TIER).lower(),
            scope=scope_name,
            response_id=attrs.first_str(keys.RESPONSE_ID),
            user_id=attrs.first_str(keys.USER_ID),
            session_id=attrs.first_str(keys.SESSION_ID),
            label_values=self._label_values(attrs, resource),
            span=span,
            attributes=attrs,
        )
        return call

    def _tokens(self, attrs: Attributes, provider: str, scope_name: str, scope_version: str) -> Tokens | None:
        found_input = attrs.first(keys.INPUT_TOKENS)
        found_output = attrs.first(keys.OUTPUT_TOKENS)
        if found_input is None and found_output is None:
            return None
        cache_read_found = attrs.first(keys.CACHE_READ_TOKENS)
        cache_write_found = attrs.first(keys.CACHE_WRITE_TOKENS)
        cache_write_1h_found = attrs.first(keys.CACHE_WRITE_1H_TOKENS)
        reasoning_found = attrs.first(keys.REASONING_TOKENS)
        if cache_read_found is None or cache_write_found is None or reasoning_found is None:
            usage_object = litellm_usage(attrs.first(keys.LITELLM_USAGE_OBJECT))
            if usage_object:
                cache_read_found = cache_read_found or usage_path(usage_object, keys.LITELLM_CACHE_READ_PATHS)
                cache_write_found = cache_write_found or usage_path(usage_object, keys.LITELLM_CACHE_WRITE_PATHS)
                cache_write_1h_found = cache_write_1h_found or usage_path(
                    usage_object, keys.LITELLM_CACHE_WRITE_1H_PATHS
                )
                reasoning_found = reasoning_found or usage_path(usage_object, keys.LITELLM_REASONING_PATHS)
        tokens = Tokens(
            input=_count(found_input),
            output=_count(found_output),
            cache_read=_count(cache_read_found),
            reasoning=_count(reasoning_found),
        )
        cache_write = _count(cache_write_found)
        cache_write_1h = min(_count(cache_write_1h_found), cache_write)
        tokens.cache_write_1h = cache_write_1h
        tokens.cache_write_5m = cache_write - cache_write_1h
        if self._input_excludes_cache(attrs, tokens, provider, scope_name, scope_version, found_input):
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
        scope_version: str,
        found_input: tuple[str, Any] | None,
    ) -> bool:
        cached = tokens.cache_read + tokens.cache_write
        if cached == 0:
            return False
        includes = self._inclusivity.includes_cache(scope_name, scope_version, provider)
        if includes is not None:
            return not includes
        if tokens.input < cached:
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


def _recognise(attrs: Attributes, span_name: str) -> tuple[str, str] | None:
    """Return (vocabulary, operation) when the span is one model call, else ``None``."""
    operation = attrs.get("gen_ai.operation.name")
    if isinstance(operation, str) and operation:
        operation = operation.lower()
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
    if has_model and any(key in attrs for key in _TOKEN_KEYS) and not _is_wrapper(attrs, span_name):
        return "gen_ai", "chat"
    return None


def _is_wrapper(attrs: Attributes, span_name: str) -> bool:
    """An agent/workflow/tool span (by name, or naming an agent) that sums its children's usage."""
    first_word = span_name.split(" ", 1)[0].lower()
    return first_word in keys.WRAPPER_OPERATIONS or "gen_ai.agent.name" in attrs


def _recognise_by_name(span: Any, scope_name: str) -> tuple[tuple[str, str] | None, str]:
    """A span with no vocabulary marker is a call when its name is ``<operation> <model>`` for a
    model-call operation and it comes from a known LLM instrumentation scope or failed (status
    ERROR): OpenLIT's error spans carry nothing else. Returns ((vocabulary, operation), model)."""
    name = span.name
    if not name.startswith(candidates.LLM_SPAN_NAME_PREFIXES):
        return None, ""  # the common case (every non-LLM span): one C-level prefix test
    match = _SPAN_NAME_CALL.match(name)
    if match is None:
        return None, ""
    operation = keys.SPAN_NAME_OPERATIONS.get(match.group("operation"))
    if operation is None:
        return None, ""  # invoke_agent, execute_tool …: wrappers repeat their children's tokens
    if span.status.code != _STATUS_CODE_ERROR and not scope_name.startswith(candidates.LLM_SCOPE_PREFIXES):
        return None, ""
    return ("span_name", operation), match.group("model")


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


def _ttft(attrs: Attributes, span: Any, streaming: bool | None) -> float | None:
    """Time to first token, for streamed calls only: a non-streamed call has no first chunk."""
    if streaming is False:
        return None
    found = attrs.first(keys.TTFT_SECONDS)
    if found is not None and found[0] in keys.TTFT_ANY_CALL_KEYS and streaming is not True:
        found = None  # set on non-streamed calls too (OpenLIT): means something only on a stream
    seconds = _non_negative_float(found)
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


def _span_cost(attrs: Attributes) -> tuple[float | None, bool]:
    """The cost a span carries in USD, and whether the provider or a gateway reported it (True) or
    an instrumentation estimated it from its own price table (False). A non-USD amount is ignored."""
    amount = _non_negative_float(attrs.first(keys.COST_AMOUNT))
    if amount is not None:
        currency = attrs.first_str(keys.COST_CURRENCY).upper()
        if currency and currency != "USD":
            return None, False
        return amount, attrs.first_str(keys.COST_SOURCE).lower() in keys.REPORTED_COST_SOURCES
    return _non_negative_float(attrs.first(keys.COST_USD)), False


def _error_type(attrs: Attributes) -> str:
    """``error.type`` as a string; the conventions allow a numeric status code ("429" or 429)."""
    found = attrs.first(keys.ERROR_TYPE)
    if found is None or isinstance(found[1], bool):
        return ""
    value = found[1]
    if isinstance(value, int):
        return str(value)
    return value if isinstance(value, str) else ""


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
    if call.error_type.isdigit():
        texts = texts[1:]  # a numeric error.type is a status code, read below
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
    if status is None and call.error_type.isdigit() and len(call.error_type) == 3:
        status = int(call.error_type)
    return texts, status
