"""What each instrumentation scope means by its input token count: with or without the cache.

OTel (v1.40+) says ``gen_ai.usage.input_tokens`` includes cache reads and writes; some
instrumentations forward the provider's raw count instead (Anthropic's ``usage.input_tokens`` and
Bedrock Converse's ``usage.inputTokens`` both leave the cache out). A row here says which, for one
scope (exact name), optionally one provider and a version range; config rows
(``processors.genai.usage.scopes``) are checked before the built-in ones. Where no row matches,
the extractor falls back to the only safe inference: an input total smaller than its own cached
part cannot include it.

The resolution is cached per (scope, version, provider), so the hot path is one dict look-up.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_MAX_CACHED = 4_096


@dataclass(frozen=True, slots=True)
class ScopeRule:
    """One row: calls from ``scope`` (at ``provider``, versions in [min_version, below_version))
    report input tokens with (``input_includes_cache``) or without the cache; ``evidence`` cites why."""

    scope: str
    input_includes_cache: bool
    provider: str = ""
    min_version: str = ""
    below_version: str = ""
    evidence: str = ""

    def matches(self, scope: str, version: str, provider: str) -> bool:
        """Whether this row speaks for a call from ``scope`` at ``version`` served by ``provider``."""
        if scope != self.scope or (self.provider and provider != self.provider):
            return False
        if self.min_version and (not version or version_key(version) < version_key(self.min_version)):
            return False
        return not (self.below_version and (not version or version_key(version) >= version_key(self.below_version)))


# Each row names the recording or source that pins it.
BUILT_IN_RULES: tuple[ScopeRule, ...] = (
    ScopeRule(
        "openlit.instrumentation.anthropic",
        input_includes_cache=False,
        provider="anthropic",
        evidence="tests/fixtures/recorded/openlit-anthropic.jsonl (openlit 1.45.0): input 213 beside cache 4096 + 3584",
    ),
    ScopeRule(
        "openlit.otel.tracing",
        input_includes_cache=False,
        provider="anthropic",
        evidence="OpenLIT before 1.40 (one scope for every library): its anthropic/utils.py forwards input_tokens",
    ),
    ScopeRule(
        # The tracer is named per botocore service extension, not after the package.
        "opentelemetry.instrumentation.botocore.bedrock-runtime",
        input_includes_cache=False,
        provider="aws.bedrock",
        evidence=(
            "tests/fixtures/recorded/otel-botocore-bedrock.jsonl (0.66b2): Converse usage.inputTokens and "
            "InvokeModel's Anthropic usage.input_tokens, both without the cache, forwarded as they are"
        ),
    ),
    ScopeRule(
        "opentelemetry.instrumentation.google_genai",
        input_includes_cache=True,
        provider="gcp.gemini",
        evidence="tests/fixtures/recorded/otel-google-genai.jsonl (1.3b0): promptTokenCount, cache included",
    ),
    ScopeRule(
        "com.anthropic.sdk.python",
        input_includes_cache=True,
        provider="anthropic",
        evidence="tests/fixtures/recorded/anthropic-sdk.jsonl (anthropic 2.12.0)",
    ),
    ScopeRule(
        "opentelemetry.instrumentation.anthropic",
        input_includes_cache=True,
        provider="anthropic",
        evidence="tests/fixtures/recorded/traceloop-anthropic.jsonl (Traceloop 0.62.4)",
    ),
    ScopeRule(
        "openinference.instrumentation.anthropic",
        input_includes_cache=True,
        provider="anthropic",
        evidence="tests/fixtures/recorded/openinference-anthropic.jsonl (3.1.0); OI _utils.py sums the cache in",
    ),
)


def version_key(version: str) -> tuple[int, ...]:
    """Dotted version → comparable tuple of its numbers (``1.36.9`` → (1, 36, 9); ``0.4b0`` → (0, 4, 0))."""
    return tuple(int(number) for number in re.findall(r"\d+", version.split("+", 1)[0]))


class InputSemantics:
    """Answers "does this scope's input count include the cache?": True, False or None (no row)."""

    def __init__(self, rules: Iterable[ScopeRule]) -> None:
        self._rules = tuple(rules)
        self._scopes = frozenset(rule.scope for rule in self._rules)
        self._cache: dict[tuple[str, str, str], bool | None] = {}

    def includes_cache(self, scope: str, version: str, provider: str) -> bool | None:
        """The row's answer for a call from ``scope``/``version`` at ``provider``; None when no row matches."""
        if scope not in self._scopes:
            return None
        key = (scope, version, provider)
        cache = self._cache
        if key in cache:
            return cache[key]
        found = next((rule.input_includes_cache for rule in self._rules if rule.matches(*key)), None)
        if len(cache) >= _MAX_CACHED:
            cache.clear()  # scope versions are few; this only bounds a pathological sender
        cache[key] = found
        return found
