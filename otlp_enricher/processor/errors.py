"""Error reason: any instrumentation's error description → one of a closed set of reasons.

Inputs are ``error.type`` (an exception class like ``RateLimitError``, a provider code like
``rate_limit_error``, a google.rpc status name like ``RESOURCE_EXHAUSTED`` or a numeric status
code, which the conventions allow), the span status message, the HTTP status and exception events.
Specific wording wins over the HTTP status, because a context overflow arrives as a plain 400, and
the status wins over generic wording. Evidence kinds, each with its source:

* SDK exception classes: openai/anthropic Python (``RateLimitError``, ``InternalServerError``),
  Vercel AI SDK (``AI_APICallError`` — classified by its message), pydantic-ai
  (``ModelRateLimitError``), ``*ContextOverflowError`` classes, botocore error codes
  (``ThrottlingException``, ``ValidationException``, ``ServiceUnavailableException``);
* provider wording: Gemini "The input token count … exceeds the maximum number of tokens allowed",
  Bedrock "Input is too long for requested model", Anthropic "prompt is too long", OpenAI "The
  server had an error while processing your request";
* google.rpc codes (https://github.com/googleapis/googleapis/blob/master/google/rpc/code.proto).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from otlp_enricher.model import ErrorReason

# Checked in order against the lower-cased text of error.type, status message and exceptions.
_SPECIFIC_PATTERNS: tuple[tuple[ErrorReason, tuple[str, ...]], ...] = (
    (
        "rate_limit",
        ("ratelimit", "rate_limit", "rate limit", "too many requests", "quota", "throttl", "resource_exhausted"),
    ),
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
            "contextoverflow",
            "input is too long",
            "exceeds the maximum number of tokens",
            "input token count",
            "too long for requested model",
            "maximum prompt length",
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
    (
        "auth",
        (
            "authentication",
            "unauthorized",
            "permission",
            "forbidden",
            "api key",
            "apikey",
            "auth",
            "accessdenied",
            "access denied",
        ),
    ),
)
_GENERIC_PATTERNS: tuple[tuple[ErrorReason, tuple[str, ...]], ...] = (
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
            "server had an error",
            "internalfailure",
            "modelnotready",
        ),
    ),
    (
        "bad_request",
        ("badrequest", "bad request", "invalid_request", "invalid request", "unprocessable", "notfound"),
    ),
)
# google.rpc status names matched as whole words (upper-case in error.type or a status message);
# those without a more specific meaning are generic, so an HTTP status beside them still decides.
_RPC_GENERIC: dict[str, ErrorReason] = {
    "invalid_argument": "bad_request",
    "failed_precondition": "bad_request",
    "out_of_range": "bad_request",
    "not_found": "bad_request",
    "internal": "provider_5xx",
    "unavailable": "provider_5xx",
    "unknown": "provider_5xx",
    "data_loss": "provider_5xx",
}
_RPC_SPECIFIC: dict[str, ErrorReason] = {
    "resource_exhausted": "rate_limit",
    "deadline_exceeded": "timeout",
    "unauthenticated": "auth",
    "permission_denied": "auth",
    "cancelled": "cancelled",
}
_RPC_NAME = re.compile(r"\b[A-Z][A-Z_]{3,}\b")
# openai/anthropic SDK exception messages start "Error code: 429 - {...}".
_ERROR_CODE = re.compile(r"error code: (\d{3})\b")


def _from_http_status(status: int) -> ErrorReason | None:
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
    return None


def classify_error(texts: Iterable[str], http_status: int | None) -> ErrorReason:
    """The reason for a failed call, from its error descriptions and HTTP status; ``other`` if unsure."""
    joined = " ".join(texts)
    text = joined.lower()
    for reason, patterns in _SPECIFIC_PATTERNS:
        if any(pattern in text for pattern in patterns):
            return reason
    rpc_words = {word.lower() for word in _RPC_NAME.findall(joined)}
    for word, reason in _RPC_SPECIFIC.items():
        if word in rpc_words:
            return reason
    if not http_status:
        code = _ERROR_CODE.search(text)
        http_status = int(code.group(1)) if code else None
    if http_status:
        by_status = _from_http_status(http_status)
        if by_status:
            return by_status
    for reason, patterns in _GENERIC_PATTERNS:
        if any(pattern in text for pattern in patterns):
            return reason
    for word, reason in _RPC_GENERIC.items():
        if word in rpc_words:
            return reason
    return "other"
