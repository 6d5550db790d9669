"""Which attribute names carry which concept, in every vocabulary we read.

Each tuple is tried in order and the first key present wins, so the newest OTel name comes first,
then older OTel names, then OpenInference, OpenLLMetry/OpenLIT extras and the Vercel AI SDK.
Sources: ``docs/reference/genai-attributes.md`` §1 (each row there cites the repository it was
read from).
"""

from __future__ import annotations

REQUEST_MODEL = ("gen_ai.request.model", "llm.request.model_name", "ai.model.id")
RESPONSE_MODEL = ("gen_ai.response.model", "llm.response.model_name", "llm.model_name", "ai.response.model")
PROVIDER = ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system", "ai.model.provider")

INPUT_TOKENS = (
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.prompt_tokens",
    "llm.token_count.prompt",
    "ai.usage.inputTokens",
    "ai.usage.promptTokens",
)
OUTPUT_TOKENS = (
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
    "llm.token_count.completion",
    "ai.usage.outputTokens",
    "ai.usage.completionTokens",
)
CACHE_READ_TOKENS = (
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_read_input_tokens",
    "llm.token_count.prompt_details.cache_read",
    "gen_ai.usage.prompt_tokens_details.cached_tokens",
    "gen_ai.usage.details.cache_read_tokens",
    "gen_ai.usage.details.cache_read_input_tokens",
    "ai.usage.inputTokenDetails.cacheReadTokens",
    "ai.usage.cachedInputTokens",
)
CACHE_WRITE_TOKENS = (
    "gen_ai.usage.cache_write.input_tokens",
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.cache_creation_input_tokens",
    "llm.token_count.prompt_details.cache_write",
    "gen_ai.usage.prompt_tokens_details.cache_creation_tokens",
    "gen_ai.usage.input_tokens.cache_write",
    "gen_ai.usage.details.cache_write_tokens",
    "gen_ai.usage.details.cache_creation_input_tokens",
    "ai.usage.inputTokenDetails.cacheWriteTokens",
)
# Anthropic splits cache writes by time to live; a one-hour write costs twice the five-minute one.
CACHE_WRITE_1H_TOKENS = (
    "anthropic.usage.cache_creation.ephemeral_1h_input_tokens",
    "gen_ai.usage.cache_write.1h.input_tokens",
    "gen_ai.usage.cache_creation.ephemeral_1h_input_tokens",
    "gen_ai.usage.cache_creation.1h.input_tokens",
    "llm.token_count.prompt_details.cache_write_1h",
    "gen_ai.usage.details.ephemeral_1h_input_tokens",  # pydantic-ai: Anthropic's usage.cache_creation
)
REASONING_TOKENS = (
    "gen_ai.usage.reasoning.output_tokens",
    "gen_ai.usage.reasoning_tokens",
    "llm.usage.reasoning_tokens",
    "llm.token_count.completion_details.reasoning",
    "gen_ai.usage.completion_tokens_details.reasoning_tokens",
    "ai.usage.outputTokenDetails.reasoningTokens",
    "ai.usage.reasoningTokens",
    "gen_ai.usage.details.reasoning_tokens",  # pydantic-ai (OpenAI's output_tokens_details)
    "gen_ai.usage.details.thinking_tokens",  # pydantic-ai (Gemini's thoughtsTokenCount)
)
# LiteLLM carries cache and reasoning counts only inside this serialised usage object (a Python
# ``str(dict)`` of OpenAI-shaped usage, or JSON); read with json / ast.literal_eval, never eval.
LITELLM_USAGE_OBJECT = ("metadata.usage_object",)
# Paths inside that usage object, tried in order (OpenAI shape first, then Anthropic's names).
LITELLM_CACHE_READ_PATHS = (("prompt_tokens_details", "cached_tokens"), ("cache_read_input_tokens",))
LITELLM_CACHE_WRITE_PATHS = (("cache_creation_input_tokens",), ("prompt_tokens_details", "cache_creation_tokens"))
LITELLM_REASONING_PATHS = (("completion_tokens_details", "reasoning_tokens"),)
# Anthropic's TTL split as LiteLLM 1.110 nests it (recorded: tests/fixtures/recorded/litellm.jsonl).
LITELLM_CACHE_WRITE_1H_PATHS = (
    ("prompt_tokens_details", "cache_creation_token_details", "ephemeral_1h_input_tokens"),
    ("cache_creation", "ephemeral_1h_input_tokens"),
)
# Present only on the Vercel AI SDK v6+ usage model, where inputTokens already counts the cache.
VERCEL_INPUT_DETAIL = (
    "ai.usage.inputTokenDetails.noCacheTokens",
    "ai.usage.inputTokenDetails.cacheReadTokens",
)
VERCEL_LEGACY_INPUT = ("ai.usage.inputTokens", "ai.usage.promptTokens")

COST_USD = ("gen_ai.usage.cost", "llm.cost.total", "operation.cost")
# The proposed structured cost (amount, ISO 4217 currency, who computed it).
COST_AMOUNT = ("gen_ai.usage.cost.amount",)
COST_CURRENCY = ("gen_ai.usage.cost.currency",)
COST_SOURCE = ("gen_ai.usage.cost.source",)
# ``gen_ai.usage.cost.source`` values that mean the provider or a gateway billed this amount; any
# other value (or none) is an instrumentation's estimate from its own price table.
REPORTED_COST_SOURCES = frozenset({"provider", "gateway", "billing", "invoice", "api", "response"})

TTFT_SECONDS = (
    "gen_ai.response.time_to_first_chunk",
    "gen_ai.client.operation.time_to_first_chunk",
    "gen_ai.server.time_to_first_token",
)
TTFT_MILLISECONDS = ("ai.response.msToFirstChunk", "ai.stream.msToFirstChunk")
# TTFT keys some instrumentations also set on calls that did not stream (OpenLIT writes
# gen_ai.server.time_to_first_token on every call): trusted only when the span says it streamed.
TTFT_ANY_CALL_KEYS = frozenset({"gen_ai.server.time_to_first_token"})
# Span events whose time marks the first streamed chunk (OpenInference, Vercel AI SDK, OpenLLMetry).
FIRST_CHUNK_EVENTS = frozenset(
    {
        "First Token Stream Event",
        "ai.stream.firstChunk",
        "llm.content.completion.chunk",
        "gen_ai.content.completion.chunk",
    }
)

STREAMING = ("gen_ai.request.stream", "gen_ai.is_streaming", "llm.is_streaming", "gen_ai.request.is_stream")
FINISH_REASONS = ("gen_ai.response.finish_reasons", "llm.finish_reason", "ai.response.finishReason")

RESPONSE_ID = ("gen_ai.response.id", "ai.response.id")
# OpenAI's service tier (v1.37+ names first); the response names the tier actually served.
SERVICE_TIER = (
    "openai.response.service_tier",
    "gen_ai.openai.response.service_tier",
    "openai.request.service_tier",
    "gen_ai.openai.request.service_tier",
)
ERROR_TYPE = ("error.type",)
HTTP_STATUS = ("http.response.status_code", "http.status_code")

USER_ID = (
    "user.id",
    "gen_ai.user.id",
    "gen_ai.request.user",
    "gen_ai.user",
    "llm.user",
    "langfuse.user.id",
    "traceloop.association.properties.user_id",
    "ai.telemetry.metadata.userId",
)
SESSION_ID = (
    "gen_ai.conversation.id",
    "session.id",
    "gen_ai.session.id",
    "langfuse.session.id",
    "traceloop.association.properties.session_id",
    "ai.telemetry.metadata.sessionId",
)

# gen_ai.operation.name values that are one model call (and so carry that call's own tokens).
LLM_OPERATIONS = frozenset(
    {
        "chat",
        "text_completion",
        "generate_content",
        "embeddings",
        "completion",
        "generate",
        "embedding",
        # LiteLLM writes its call type (async variants prefixed with "a").
        "acompletion",
        "atext_completion",
        "aembedding",
        "responses",
        "aresponses",
        "agenerate_content",
        "anthropic_messages",
    }
)
OPERATION_ALIASES = {
    "completion": "text_completion",
    "generate": "generate_content",
    "embedding": "embeddings",
    "acompletion": "chat",  # LiteLLM's (a)completion is the chat completions API
    "atext_completion": "text_completion",
    "aembedding": "embeddings",
    "responses": "chat",
    "aresponses": "chat",
    "agenerate_content": "generate_content",
    "anthropic_messages": "chat",
}
# Operations whose span wraps model calls and repeats their tokens (agent runs, workflows, tools):
# never a call themselves, whatever else the span carries.
WRAPPER_OPERATIONS = frozenset(
    {"invoke_agent", "create_agent", "invoke_workflow", "execute_tool", "agent", "workflow", "chain", "task", "tool"}
)
# Span names of the OTel form ``{gen_ai.operation.name} {gen_ai.request.model}`` that name one call.
SPAN_NAME_OPERATIONS = {
    "chat": "chat",
    "text_completion": "text_completion",
    "generate_content": "generate_content",
    "embeddings": "embeddings",
}
# OpenInference span kinds that are one model call; AGENT, CHAIN, TOOL … aggregate or wrap calls.
OPENINFERENCE_LLM_KINDS = {"LLM": "chat", "EMBEDDING": "embeddings"}
# OpenLLMetry before semconv-ai 0.5: llm.request.type.
OPENLLMETRY_REQUEST_TYPES = {"chat": "chat", "completion": "text_completion", "embedding": "embeddings"}
# OpenInference's openai instrumentation names the requested model only inside this JSON.
INVOCATION_PARAMETERS = "llm.invocation_parameters"
# Vercel AI SDK legacy spans: only the inner provider call carries its own usage; the outer
# ai.generateText / ai.streamText span repeats the sum of its steps and must not be counted again.
VERCEL_CALL_OPERATIONS = {
    "ai.generateText.doGenerate": "chat",
    "ai.streamText.doStream": "chat",
    "ai.generateObject.doGenerate": "chat",
    "ai.streamObject.doStream": "chat",
    "ai.embed.doEmbed": "embeddings",
    "ai.embedMany.doEmbed": "embeddings",
}

# Attributes that carry prompt or completion content (stripped or scrubbed before re-export).
CONTENT_KEYS = frozenset(
    {
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
        "gen_ai.tool.definitions",
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result",
        "gen_ai.prompt",
        "gen_ai.completion",
        "input.value",
        "output.value",
        "ai.prompt",
        "ai.prompt.messages",
        "ai.response.text",
        "ai.response.toolCalls",
        "ai.response.object",
        "ai.toolCall.args",
        "ai.toolCall.result",
        "traceloop.entity.input",
        "traceloop.entity.output",
    }
)
CONTENT_PREFIXES = (
    "gen_ai.prompt.",
    "gen_ai.completion.",
    "llm.input_messages.",
    "llm.output_messages.",
    "llm.prompts.",
    "llm.choices.",
    "gen_ai.content.",
)

# Span events whose every attribute is content (OTel's deprecated per-message events, and the
# inference-details event), by exact name or prefix.
CONTENT_EVENTS = frozenset({"gen_ai.choice", "gen_ai.client.inference.operation.details"})
CONTENT_EVENT_PREFIXES = ("gen_ai.content.", "gen_ai.user.", "gen_ai.system.", "gen_ai.assistant.", "gen_ai.tool.")

# Attribute keys (or prefixes) that identify a request, a person or carry content: never labels.
FORBIDDEN_LABEL_KEYS = CONTENT_KEYS | frozenset(
    {
        "gen_ai.response.id",
        "gen_ai.conversation.id",
        "gen_ai.tool.call.id",
        "gen_ai.agent.id",
        "gen_ai.data_source.id",
        "session.id",
        "user.id",
        "langfuse.session.id",
        "langfuse.user.id",
        "gen_ai.user",
        "llm.user",
        "gen_ai.request.user",
        "gen_ai.user.id",
        "gen_ai.session.id",
        "ai.response.id",
        "ai.toolCall.id",
        "tool_call.id",
        "message.tool_call_id",
        "prompt.id",
        "request.id",
        "http.request.id",
        "trace_id",
        "span_id",
        "llm.invocation_parameters",
        "exception.message",
        "exception.stacktrace",
        "request_data",
        "response_data",
        "events",
        "metadata",
        "tag.tags",
    }
)
FORBIDDEN_LABEL_PREFIXES = (
    "gen_ai.prompt.",
    "gen_ai.completion.",
    "gen_ai.usage.",
    "gen_ai.content.",
    "llm.input_messages.",
    "llm.output_messages.",
    "llm.prompts.",
    "llm.choices.",
    "llm.tools.",
    "llm.token_count.",
    "llm.prompt_template.variables",
    "traceloop.association.properties.",
    "traceloop.entity.",
    "traceloop.prompt.template_variables",
    "langfuse.",
    "ai.prompt",
    "ai.response.",
    "ai.telemetry.metadata.",
    "ai.settings.",
    "ai.request.headers.",
    "gen_ai.headers",
    "llm.headers",
)


def is_forbidden_label_key(key: str) -> bool:
    """Whether ``key`` names an identifier, content or a secret, which must never become a label."""
    if key in FORBIDDEN_LABEL_KEYS or key.endswith((".id", "_id")):
        return True
    return key.startswith(FORBIDDEN_LABEL_PREFIXES)
