"""Error reasons from what real instrumentations write (see docs/reference/instrumentations.md)."""

from __future__ import annotations

import pytest

from otlp_enricher.processor.errors import classify_error


@pytest.mark.parametrize(
    ("texts", "http_status", "reason"),
    [
        (["RateLimitError"], None, "rate_limit"),  # Traceloop / otel-openai-v2: exception class
        (["rate_limit_error"], 429, "rate_limit"),  # anthropic SDK: provider error type
        (["", "", "openai.RateLimitError", "Error code: 429"], None, "rate_limit"),  # OpenInference event
        (["BadRequestError", "prompt is too long: 210000 tokens > 200000 maximum"], 400, "context_overflow"),
        (
            ["BadRequestError", "This model's maximum context length is 128000 tokens"],
            None,
            "context_overflow",
        ),
        (["invalid_request_error"], 400, "bad_request"),
        (["APITimeoutError"], None, "timeout"),
        (["AuthenticationError"], 401, "auth"),
        (["PermissionDeniedError"], None, "auth"),
        (["InternalServerError"], None, "provider_5xx"),
        (["overloaded_error"], 529, "provider_5xx"),
        ([""], 503, "provider_5xx"),
        (["ContentFilterFinishReasonError"], None, "safety_block"),
        (["asyncio.CancelledError"], None, "cancelled"),
        (["ValueError", "something odd"], None, "other"),
        ([], None, "other"),
    ],
)
def test_reason(texts: list[str], http_status: int | None, reason: str) -> None:
    """Each description maps to the reason an SRE would file it under."""
    assert classify_error(texts, http_status) == reason


@pytest.mark.parametrize(
    ("texts", "http_status", "reason"),
    [
        # a numeric error.type is a status code (extract.error_evidence turns it into one)
        ([""], 400, "bad_request"),
        ([""], 429, "rate_limit"),
        ([""], 503, "provider_5xx"),
        (["", "Error code: 500 - {'error': {'type': 'server_error'}}"], None, "provider_5xx"),
        (["", "Error code: 429"], None, "rate_limit"),
        # google.rpc status names (Gemini / Vertex AI)
        (["INVALID_ARGUMENT"], None, "bad_request"),
        (["RESOURCE_EXHAUSTED"], None, "rate_limit"),
        (["UNAVAILABLE"], None, "provider_5xx"),
        (["INTERNAL"], None, "provider_5xx"),
        (["DEADLINE_EXCEEDED"], None, "timeout"),
        (["PERMISSION_DENIED"], None, "auth"),
        # provider wording: context overflows arrive as plain 400s / INVALID_ARGUMENT
        (
            [
                "INVALID_ARGUMENT",
                "The input token count (1048577) exceeds the maximum number of tokens allowed (1048576).",
            ],
            400,
            "context_overflow",
        ),
        (["ValidationException", "Input is too long for requested model."], 400, "context_overflow"),
        (["400", "prompt is too long: 212000 tokens > 200000 maximum"], 400, "context_overflow"),
        (["", "The server had an error while processing your request. Sorry about that!"], None, "provider_5xx"),
        # SDK exception classes without a status
        (["AI_APICallError", "This model's maximum context length is 128000 tokens."], None, "context_overflow"),
        (["AI_APICallError", "Rate limit reached for gpt-4o"], None, "rate_limit"),
        (["ModelRateLimitError"], None, "rate_limit"),
        (["AnthropicContextOverflowError"], None, "context_overflow"),
        (["ThrottlingException", "Too many tokens, please wait before trying again."], 400, "rate_limit"),
        (["ServiceUnavailableException"], None, "provider_5xx"),
        (["AccessDeniedException"], None, "auth"),
    ],
)
def test_reason_from_every_evidence_kind(texts: list[str], http_status: int | None, reason: str) -> None:
    """Numeric codes, google.rpc names, provider wording and SDK classes each land in their reason."""
    assert classify_error(texts, http_status) == reason


def test_lower_case_words_are_not_taken_for_rpc_names() -> None:
    """ "internal" in prose is no google.rpc INTERNAL; nothing says what failed, so it is ``other``."""
    assert classify_error(["ValueError", "an internal helper returned unknown data"], None) == "other"
