"""The scenarios the fake provider can play, each with its own deterministic token usage.

A request picks its scenario with the ``x-fake-scenario`` header; without one the provider plays the
default scenario for its API and for whether it streams (:func:`default_scenario`). Every scenario has
different token numbers, so a total in a test can only match when the right calls were counted.

Usage objects are written here exactly as the real APIs send them:

* OpenAI chat completions: ``prompt_tokens`` *includes* ``prompt_tokens_details.cached_tokens`` and
  ``completion_tokens`` *includes* ``completion_tokens_details.reasoning_tokens``.
* OpenAI responses (the ``openai-responses-*`` scenarios, played on ``/v1/responses``): ``input_tokens``
  *includes* ``input_tokens_details.cached_tokens``, ``output_tokens`` *includes*
  ``output_tokens_details.reasoning_tokens``.
* Anthropic messages: ``input_tokens`` *excludes* both ``cache_read_input_tokens`` and
  ``cache_creation_input_tokens``; ``cache_creation`` splits the cache writes by TTL;
  ``output_tokens`` includes ``output_tokens_details.thinking_tokens``.
* Bedrock Converse: ``usage.inputTokens`` *excludes* ``cacheReadInputTokens`` and
  ``cacheWriteInputTokens``; ``totalTokens`` is the sum of all four. InvokeModel with an Anthropic
  model answers Anthropic's own body and usage.
* Gemini ``usageMetadata``: ``promptTokenCount`` *includes* ``cachedContentTokenCount``;
  ``candidatesTokenCount`` *excludes* ``thoughtsTokenCount`` (both billed as output);
  ``totalTokenCount`` is prompt + candidates + thoughts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

Provider = Literal["openai", "anthropic", "bedrock", "gemini"]
"""Which provider API a scenario belongs to."""

JsonObject = dict[str, object]
"""A decoded JSON object."""

SCENARIO_HEADER: Final = "x-fake-scenario"
"""The request header that names the scenario to play."""

RESPONSE_MODELS: Final[Mapping[str, str]] = {
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4.1": "gpt-4.1-2025-04-14",
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "o3-mini": "o3-mini-2025-01-31",
    "o4-mini": "o4-mini-2025-04-16",
    "claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
    "claude-haiku-4-5": "claude-haiku-4-5-20251001",
    "claude-opus-4-1": "claude-opus-4-1-20250805",
    "claude-sonnet-4-0": "claude-sonnet-4-20250514",
}
"""Requested model alias → the dated snapshot the real APIs name in their responses."""


def response_model(requested_model: str) -> str:
    """The model name a response carries for ``requested_model``: its dated snapshot, else unchanged."""
    return RESPONSE_MODELS.get(requested_model, requested_model)


def openai_usage(*, prompt: int, completion: int, cached: int = 0, reasoning: int = 0) -> JsonObject:
    """An OpenAI ``usage`` object; ``prompt`` includes ``cached``, ``completion`` includes ``reasoning``."""
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def anthropic_usage(
    *,
    uncached_input: int,
    output: int,
    cache_read: int = 0,
    cache_write_5m: int = 0,
    cache_write_1h: int = 0,
    thinking: int | None = None,
) -> JsonObject:
    """An Anthropic ``usage`` object; ``input_tokens`` is ``uncached_input`` only, as the real API has it."""
    usage: JsonObject = {
        "input_tokens": uncached_input,
        "cache_creation_input_tokens": cache_write_5m + cache_write_1h,
        "cache_read_input_tokens": cache_read,
        "cache_creation": {
            "ephemeral_5m_input_tokens": cache_write_5m,
            "ephemeral_1h_input_tokens": cache_write_1h,
        },
        "output_tokens": output,
        "service_tier": "standard",
    }
    if thinking is not None:
        usage["output_tokens_details"] = {"thinking_tokens": thinking}
    return usage


def bedrock_usage(*, uncached_input: int, output: int, cache_read: int = 0, cache_write: int = 0) -> JsonObject:
    """A Bedrock Converse ``usage`` object; ``inputTokens`` is ``uncached_input`` only, as Bedrock has it."""
    usage: JsonObject = {
        "inputTokens": uncached_input,
        "outputTokens": output,
        "totalTokens": uncached_input + output + cache_read + cache_write,
    }
    if cache_read:
        usage["cacheReadInputTokens"] = cache_read
    if cache_write:
        usage["cacheWriteInputTokens"] = cache_write
    return usage


def gemini_usage(*, prompt: int, candidates: int, cached: int = 0, thoughts: int = 0) -> JsonObject:
    """A Gemini ``usageMetadata``; ``prompt`` includes ``cached``, ``candidates`` excludes ``thoughts``."""
    usage: JsonObject = {
        "promptTokenCount": prompt,
        "candidatesTokenCount": candidates,
        "totalTokenCount": prompt + candidates + thoughts,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
    }
    if cached:
        usage["cachedContentTokenCount"] = cached
        usage["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": cached}]
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    return usage


def responses_usage(*, input: int, output: int, cached: int = 0, reasoning: int = 0) -> JsonObject:
    """An OpenAI Responses API ``usage`` object; ``input`` includes ``cached``, ``output`` includes ``reasoning``."""
    return {
        "input_tokens": input,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": input + output,
    }


@dataclass(frozen=True)
class ToolCall:
    """A tool call the model makes: OpenAI ``tool_calls[]`` or an Anthropic ``tool_use`` block."""

    call_id: str
    name: str
    arguments: Mapping[str, object]


@dataclass(frozen=True)
class ErrorReply:
    """An error response; ``error_type`` and ``code`` go into the provider's own error JSON."""

    status: int
    error_type: str
    message: str
    code: str | None = None
    retry_after_s: int | None = None


@dataclass(frozen=True)
class Scenario:
    """One deterministic response: text (maybe thinking, a tool call) with its usage, or an error."""

    name: str
    provider: Provider
    text: str = ""
    usage: Mapping[str, object] = field(default_factory=dict)
    tool_call: ToolCall | None = None
    thinking: str | None = None
    error: ErrorReply | None = None


_WEATHER_ARGS: Final[Mapping[str, object]] = {"city": "Paris", "unit": "celsius"}

SCENARIOS: Final[Mapping[str, Scenario]] = {
    s.name: s
    for s in (
        Scenario(
            name="openai-chat-cached-tool",
            provider="openai",
            tool_call=ToolCall("call_fake_weather_01", "get_weather", _WEATHER_ARGS),
            usage=openai_usage(prompt=2317, completion=41, cached=1792),
        ),
        Scenario(
            name="openai-reasoning",
            provider="openai",
            text="The answer is 42: 6 times 7.",
            usage=openai_usage(prompt=187, completion=1264, reasoning=1088),
        ),
        Scenario(
            name="openai-stream",
            provider="openai",
            text="Paris is the capital of France, known for the Eiffel Tower.",
            usage=openai_usage(prompt=603, completion=57, cached=384),
        ),
        Scenario(
            name="openai-rate-limit",
            provider="openai",
            error=ErrorReply(
                status=429,
                error_type="tokens",
                code="rate_limit_exceeded",
                message=(
                    "Rate limit reached for gpt-4o in organization org-fake on tokens per min (TPM): "
                    "Limit 30000, Used 29854, Requested 1023. Please try again in 1.754s. "
                    "Visit https://platform.openai.com/account/rate-limits to learn more."
                ),
                retry_after_s=2,
            ),
        ),
        Scenario(
            name="anthropic-cache-write-tool",
            provider="anthropic",
            text="I'll look up the current weather in Paris.",
            tool_call=ToolCall("toolu_fake_weather_01", "get_weather", _WEATHER_ARGS),
            usage=anthropic_usage(
                uncached_input=213, output=87, cache_read=4096, cache_write_5m=1536, cache_write_1h=2048
            ),
        ),
        Scenario(
            name="anthropic-stream-thinking",
            provider="anthropic",
            thinking="The user asks for the capital of France. That is Paris.",
            text="The capital of France is Paris.",
            usage=anthropic_usage(uncached_input=29, output=143, cache_read=2731, thinking=96),
        ),
        Scenario(
            name="anthropic-rate-limit",
            provider="anthropic",
            error=ErrorReply(
                status=429,
                error_type="rate_limit_error",
                message=(
                    "This request would exceed the rate limit for your organization of 30,000 input tokens "
                    "per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits."
                ),
                retry_after_s=12,
            ),
        ),
        Scenario(
            name="anthropic-prompt-too-long",
            provider="anthropic",
            error=ErrorReply(
                status=400,
                error_type="invalid_request_error",
                message="prompt is too long: 215873 tokens > 200000 maximum",
            ),
        ),
        # Bedrock runtime (boto3) and Gemini (google-genai): tests/fixtures/cloud_calls.py.
        Scenario(
            name="bedrock-converse-cached",
            provider="bedrock",
            text="Paris is sunny today, 21 degrees.",
            usage=bedrock_usage(uncached_input=6000, output=120, cache_read=1024, cache_write=512),
        ),
        Scenario(
            name="bedrock-converse-stream",
            provider="bedrock",
            text="The capital of France is Paris.",
            usage=bedrock_usage(uncached_input=420, output=77, cache_read=2368),
        ),
        Scenario(
            name="bedrock-invoke-model",
            provider="bedrock",
            text="Bonjour! How can I help with your trip?",
            usage=anthropic_usage(uncached_input=1500, output=210),
        ),
        Scenario(
            name="bedrock-invoke-model-cached",
            provider="bedrock",
            text="Bonjour! Your booking is confirmed.",
            usage=anthropic_usage(uncached_input=930, output=64, cache_read=3072),
        ),
        Scenario(
            name="bedrock-throttled",
            provider="bedrock",
            error=ErrorReply(
                status=429,
                error_type="ThrottlingException",
                message="Too many requests, please wait before trying again.",
            ),
        ),
        Scenario(
            name="gemini-cached-thinking",
            provider="gemini",
            text="Pack layers: Paris in spring ranges from 8 to 18 degrees.",
            usage=gemini_usage(prompt=5210, candidates=212, cached=3968, thoughts=640),
        ),
        Scenario(
            name="gemini-long-context",
            provider="gemini",
            text="The contract's termination clause is in section 14.2.",
            usage=gemini_usage(prompt=250_000, candidates=830, thoughts=1530),
        ),
        Scenario(
            name="gemini-stream",
            provider="gemini",
            text="Paris is the capital of France, on the Seine.",
            usage=gemini_usage(prompt=812, candidates=95, thoughts=264),
        ),
        Scenario(
            name="gemini-rate-limit",
            provider="gemini",
            error=ErrorReply(
                status=429,
                error_type="RESOURCE_EXHAUSTED",
                message="Resource has been exhausted (e.g. check quota).",
            ),
        ),
        # --- issue 8: OpenAI Responses API (usage in its own shape: see responses_usage) ---
        Scenario(
            name="openai-responses-cached-tool",
            provider="openai",
            tool_call=ToolCall("call_fake_weather_02", "get_weather", _WEATHER_ARGS),
            usage=responses_usage(input=3105, output=38, cached=2304),
        ),
        Scenario(
            name="openai-responses-reasoning-stream",
            provider="openai",
            thinking="Six times seven is forty-two.",
            text="Six times seven is 42.",
            usage=responses_usage(input=245, output=932, reasoning=768),
        ),
        Scenario(
            name="openai-responses-rate-limit",
            provider="openai",
            error=ErrorReply(
                status=429,
                error_type="requests",
                code="rate_limit_exceeded",
                message="Rate limit reached for o4-mini in organization org-fake on requests per min (RPM): "
                "Limit 500, Used 500, Requested 1. Please try again in 120ms.",
                retry_after_s=1,
            ),
        ),
        # --- issue 8: agent runs (pydantic-ai): a tool call, then the answer after the tool result ---
        Scenario(
            name="openai-agent-tool-call",
            provider="openai",
            tool_call=ToolCall("call_fake_weather_03", "get_weather", {"city": "Paris"}),
            usage=openai_usage(prompt=1310, completion=352, cached=1152, reasoning=320),
        ),
        Scenario(
            name="openai-agent-answer",
            provider="openai",
            text="It is 18 degrees and sunny in Paris.",
            usage=openai_usage(prompt=1377, completion=171, cached=1280, reasoning=128),
        ),
        Scenario(
            name="anthropic-agent-tool-call",
            provider="anthropic",
            tool_call=ToolCall("toolu_fake_weather_02", "get_weather", {"city": "Paris"}),
            usage=anthropic_usage(uncached_input=59, output=66, cache_write_5m=112, cache_write_1h=1664),
        ),
        Scenario(
            name="anthropic-agent-answer",
            provider="anthropic",
            text="It is 18 degrees and sunny in Paris.",
            usage=anthropic_usage(uncached_input=43, output=31, cache_read=1671),
        ),
        # --- issue 8: a dated model requested by name (OpenLIT's price table lacks it) ---
        Scenario(
            name="anthropic-dated-model",
            provider="anthropic",
            text="Paris has about two million inhabitants.",
            usage=anthropic_usage(uncached_input=731, output=44),
        ),
    )
}
"""Every scenario, by name."""

_DEFAULTS: Final[Mapping[tuple[Provider, bool], str]] = {
    ("openai", False): "openai-chat-cached-tool",
    ("openai", True): "openai-stream",
    ("anthropic", False): "anthropic-cache-write-tool",
    ("anthropic", True): "anthropic-stream-thinking",
    ("bedrock", False): "bedrock-converse-cached",
    ("bedrock", True): "bedrock-converse-stream",
    ("gemini", False): "gemini-cached-thinking",
    ("gemini", True): "gemini-stream",
}


def default_scenario(provider: Provider, *, streaming: bool) -> Scenario:
    """The scenario played for a request that names none."""
    return SCENARIOS[_DEFAULTS[(provider, streaming)]]
