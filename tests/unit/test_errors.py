"""Error reasons from what real instrumentations write (see shared/reference/instrumentations.md)."""

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
