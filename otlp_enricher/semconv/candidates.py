"""The seam between the rules of meaning and the data plane: what the native scanner hands over.

The native scanner (``otlp_enricher._native``, configured in :mod:`otlp_enricher.dataplane`) walks
OTLP bytes and hands Python only the spans that may be LLM calls, with only the attribute values
the rules read. A span is handed over when one of its attribute keys is in :data:`MARKER_KEYS`,
its scope name starts with one of :data:`LLM_SCOPE_PREFIXES`, or its name starts with one of
:data:`LLM_SPAN_NAME_PREFIXES`; every other span costs a scan and nothing more. For a handed-over
span the values of :data:`READ_KEYS` and of keys starting with one of :data:`READ_PREFIXES` are
decoded (span attributes and event attributes alike); nothing else is.

The vocabulary itself lives in :mod:`otlp_enricher.semconv.keys`; a rule that reads a new key
must add it here (``tests/semconv/test_semconv_seam.py`` fails for a key table of ``keys.py``
that is not scanned).
"""

from __future__ import annotations

from otlp_enricher.semconv import keys

# Presence of any of these attribute keys makes a span a candidate LLM call.
MARKER_KEYS = frozenset(
    {
        "gen_ai.operation.name",
        "openinference.span.kind",
        "llm.request.type",
        "ai.operationId",
        *keys.REQUEST_MODEL,
        *keys.RESPONSE_MODEL,
        *keys.INPUT_TOKENS,
        *keys.OUTPUT_TOKENS,
    }
)
# Instrumentation scopes whose spans are candidates even without a marker key (error spans of
# some instrumentations carry no gen_ai attributes at all).
# A span from one of these with an ``<operation> <model>`` name is a call even with no attributes
# (OpenLIT's Anthropic error spans: name ``chat <model>``, status ERROR, an exception event only).
LLM_SCOPE_PREFIXES: tuple[str, ...] = (
    "openlit.instrumentation.",  # OpenLIT 1.40+: one scope per library (openlit.instrumentation.anthropic)
    "openlit.otel.tracing",  # OpenLIT before 1.40: one scope for all
    "com.anthropic.sdk",
    "opentelemetry.instrumentation.openai",
    "opentelemetry.instrumentation.anthropic",
    "opentelemetry.instrumentation.bedrock",
    "opentelemetry.instrumentation.google_genai",
    "opentelemetry.instrumentation.vertexai",
    "opentelemetry.instrumentation.genai",
    "opentelemetry.util.genai",
    "openinference.instrumentation.openai",
    "openinference.instrumentation.anthropic",
    "openinference.instrumentation.bedrock",
    "openinference.instrumentation.google_genai",
    "litellm",
    "pydantic-ai",
)
# Span names (``<operation> <model>``) that make a span a candidate even without a marker key;
# outside the scopes above such a span is a call only when its status is ERROR.
LLM_SPAN_NAME_PREFIXES: tuple[str, ...] = tuple(f"{operation} " for operation in keys.SPAN_NAME_OPERATIONS)

# Every attribute key a rule reads from a candidate span, its events or its resource.
READ_KEYS = frozenset(
    {
        *MARKER_KEYS,
        *keys.PROVIDER,
        *keys.CACHE_READ_TOKENS,
        *keys.CACHE_WRITE_TOKENS,
        *keys.CACHE_WRITE_1H_TOKENS,
        *keys.REASONING_TOKENS,
        *keys.LITELLM_USAGE_OBJECT,
        *keys.COST_AMOUNT,
        *keys.COST_CURRENCY,
        *keys.COST_SOURCE,
        *keys.SERVICE_TIER,
        *keys.VERCEL_INPUT_DETAIL,
        *keys.VERCEL_LEGACY_INPUT,
        *keys.COST_USD,
        *keys.TTFT_SECONDS,
        *keys.TTFT_MILLISECONDS,
        *keys.STREAMING,
        *keys.FINISH_REASONS,
        *keys.RESPONSE_ID,
        *keys.ERROR_TYPE,
        *keys.HTTP_STATUS,
        *keys.USER_ID,
        *keys.SESSION_ID,
        keys.INVOCATION_PARAMETERS,
        "gen_ai.agent.name",
        "service.name",
        "exception.type",
        "exception.message",
        *keys.CONTENT_KEYS,
    }
)
# Key prefixes whose attributes are all read (flattened content, mostly).
READ_PREFIXES: tuple[str, ...] = keys.CONTENT_PREFIXES
