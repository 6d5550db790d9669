"""Error reason: any instrumentation's error description → one of a closed set of reasons.

Inputs are ``error.type`` (an exception class like ``RateLimitError`` or a provider code like
``rate_limit_error``), the span status message, the HTTP status and exception events. Specific
wording wins over the HTTP status, because a context overflow arrives as a plain 400.
"""

from __future__ import annotations

from collections.abc import Iterable

from otlp_enricher.model import ERROR_REASONS

# Checked in order against the lower-cased text of error.type, status message and exceptions.
_SPECIFIC_PATTERNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("rate_limit", ("ratelimit", "rate_limit", "rate limit", "too many requests", "quota", "throttl")),
    (
        "context_overflow",
        (
            "context_length",
            "context length",
            "context window",
            "contextwindow",
            "maximum context",
            "prompt is too long",
            "too many tokens",
            "max_tokens_exceeded",
            "context_overflow",
        ),
    ),
    (
        "safety_block",
        (
            "content_filter",
            "contentfilter",
            "content filter",
            "content_policy",
            "safety",
            "moderation",
            "blocked",
        ),
    ),
    ("timeout", ("timeout", "timed out", "deadline")),
    ("cancelled", ("cancel", "aborted", "abort")),
    ("auth", ("authentication", "unauthorized", "permission", "forbidden", "api key", "apikey", "auth")),
)
_GENERIC_PATTERNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "provider_5xx",
        (
            "internalserver",
            "internal server",
            "internal_server",
            "server_error",
            "overloaded",
            "service unavailable",
            "serviceunavailable",
            "bad gateway",
            "api_error",
            "apiconnection",
            "connection error",
        ),
    ),
    (
        "bad_request",
        ("badrequest", "bad request", "invalid_request", "invalid request", "unprocessable", "notfound"),
    ),
)
assert {reason for reason, _ in _SPECIFIC_PATTERNS + _GENERIC_PATTERNS} <= set(ERROR_REASONS)


def _from_http_status(status: int) -> str:
    if status == 429:
        return "rate_limit"
    if status in (401, 403):
        return "auth"
    if status in (408, 504):
        return "timeout"
    if status == 499:
        return "cancelled"
    if status == 413:
        return "context_overflow"
    if 500 <= status <= 599:
        return "provider_5xx"
    if 400 <= status <= 499:
        return "bad_request"
    return ""


def classify_error(texts: Iterable[str], http_status: int | None) -> str:
    """The reason for a failed call, from its error descriptions and HTTP status; ``other`` if unsure."""
    text = " ".join(texts).lower()
    for reason, patterns in _SPECIFIC_PATTERNS:
        if any(pattern in text for pattern in patterns):
            return reason
    if http_status:
        by_status = _from_http_status(http_status)
        if by_status:
            return by_status
    for reason, patterns in _GENERIC_PATTERNS:
        if any(pattern in text for pattern in patterns):
            return reason
    return "other"
