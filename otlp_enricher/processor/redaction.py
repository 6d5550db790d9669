"""Redaction: scrub secrets and personal data from content before anything leaves the process.

Config key ``processors.redaction``. Built-in scrubbers (all on by default), applied in this
order so a card number is not mistaken for a phone number: ``private_key``, ``api_key`` (OpenAI,
Anthropic, AWS, GitHub, GitLab, Slack, Google, Stripe, Hugging Face keys and JWTs),
``bearer_token`` (``Bearer …``/``Basic …`` credentials), ``email``, ``card`` (13–19 digits, Luhn
checked), ``ip`` (IPv4 and IPv6, parsed), ``phone`` (9–15 digits with separators or a ``+``), then
the user's ``patterns``. A match becomes ``[REDACTED:<name>]``; a pattern with a ``secret`` group
replaces only that group. User ids are kept, dropped, or replaced by a keyed hash
(HMAC-SHA256, ``hash_key``) so one user's calls still group together.

Fail closed: a scrubber that raises makes :meth:`Redactor.scrub` raise :class:`RedactionFailed`,
and the caller drops the content instead of sending it raw. Pure: no I/O, no metrics; match
counts are returned for the caller to count.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal, get_args

from otlp_enricher import _native

BUILTIN_SCRUBBERS = ("private_key", "api_key", "bearer_token", "email", "card", "ip", "phone")
UserIdMode = Literal["keep", "hash", "drop"]
USER_ID_MODES: tuple[UserIdMode, ...] = get_args(UserIdMode)
TARGETS = ("prompt_log", "spans")


@dataclass(frozen=True, slots=True)
class UserPattern:
    """A user-supplied scrubber: ``name`` (used in the marker and metrics) and a regular expression."""

    name: str
    regex: str
    replacement: str = ""


@dataclass(frozen=True, slots=True)
class RedactionSettings:
    """``processors.redaction``. Built without a config (tests, benchmarks) it keeps user ids; the
    config's default is ``hash`` (:func:`otlp_enricher.processor.config.redaction_config`)."""

    enabled: bool = True
    scrubbers: tuple[str, ...] = BUILTIN_SCRUBBERS
    patterns: tuple[UserPattern, ...] = ()
    user_id: UserIdMode = "keep"
    hash_key: str = ""
    apply_to: tuple[str, ...] = TARGETS


class RedactionFailed(Exception):
    """A scrubber failed; the content it was scrubbing must be dropped, not sent."""


_API_KEYS = "|".join(
    (
        r"sk-(?:ant-|proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}",
        r"(?:AKIA|ASIA)[0-9A-Z]{16}",
        r"gh[pousr]_[A-Za-z0-9]{30,}",
        r"github_pat_[A-Za-z0-9_]{22,}",
        r"glpat-[0-9A-Za-z_-]{20,}",
        r"xox[abprs]-[A-Za-z0-9-]{10,}",
        r"AIza[0-9A-Za-z_-]{35}",
        r"[rs]k_(?:live|test)_[0-9A-Za-z]{16,}",
        r"hf_[A-Za-z0-9]{30,}",
        r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
    )
)
# name → (pattern, validator run on each match: "" none, "luhn", "ip" (parses), "phone" (9–15 digits)).
# The native core runs them (``native/src/redact.rs``): one RegexSet pass over relaxations of all
# patterns (look-around and word boundaries dropped) picks the scrubbers that can match, and only
# those run.
BUILTIN_PATTERNS: dict[str, tuple[str, str]] = {
    "private_key": (r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----", ""),
    "api_key": (rf"(?<![A-Za-z0-9_-])(?:{_API_KEYS})", ""),
    "bearer_token": (r"(?i)\b(?:bearer|basic|token)\s+(?P<secret>[A-Za-z0-9._~+/-]{16,}=*)", ""),
    # The look-behind makes a match start only where a local part can start, so a long run of
    # letters with no "@" is scanned once, not once per position (quadratic on big prompts).
    "email": (r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}", ""),
    "card": (r"\d(?<![\d-]\d)(?:[ -]?\d){12,18}(?!\d)", "luhn"),
    "ip": (
        r"(?=[0-9A-Fa-f:])(?<![\w.:])(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7})(?![\w:]|\.\d)",
        "ip",
    ),
    "phone": (
        r"(?<![\w+])(?:\+\d{9,15}|(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,5}(?:[ .-]\d{2,5}){1,4})(?!\w)",
        "phone",
    ),
}
MEMO_BYTES = 32 << 20
"""Scrub results remembered (text and result), so the Loki line and the span share one pass."""


class Redactor:
    """Scrubs strings and nested JSON-like values with the native scrubbers built in ``__init__``."""

    def __init__(self, settings: RedactionSettings) -> None:
        self.settings = settings
        scrubbers: list[tuple[str, str, str, str]] = []
        if settings.enabled:
            for name in settings.scrubbers:
                regex, validator = BUILTIN_PATTERNS[name]
                scrubbers.append((name, regex, validator, f"[REDACTED:{name}]"))
            for user in settings.patterns:
                scrubbers.append((user.name, user.regex, "", user.replacement or f"[REDACTED:{user.name}]"))
        self.native = _native.Redactor(scrubbers, MEMO_BYTES)
        self._hash_key = settings.hash_key.encode()
        # The same user's id is hashed for the prompt log and the span, call after call.
        self._hashed = functools.lru_cache(maxsize=4096)(self._hash)
        self.prompt_logs = settings.enabled and "prompt_log" in settings.apply_to
        self.spans = settings.enabled and "spans" in settings.apply_to

    def scrub(self, text: str, counts: Counter[str]) -> str:
        """``text`` with every match replaced; raises :class:`RedactionFailed` if a scrubber fails."""
        try:
            scrubbed, found = self.native.scrub(text)
        except _native.ScrubFailed as error:  # fail closed: the raw text must not leave
            raise RedactionFailed(f"scrubber failed: {error}") from error
        if found:
            counts.update(found)
        return scrubbed

    def scrub_value(self, value: Any, counts: Counter[str]) -> Any:
        """Scrub every string inside ``value`` (dicts and lists walked, keys left alone)."""
        if isinstance(value, str):
            return self.scrub(value, counts)
        if isinstance(value, dict):
            return {key: self.scrub_value(item, counts) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.scrub_value(item, counts) for item in value]
        return value

    def user_id(self, value: str) -> str | None:
        """The user id to send: as is, a keyed hash (``h:`` + 16 hex digits), or ``None`` to drop it."""
        mode = self.settings.user_id
        if not value or mode == "keep" or not self.settings.enabled:
            return value or None
        if mode == "drop":
            return None
        return self._hashed(value)

    def _hash(self, value: str) -> str:
        return "h:" + hmac.new(self._hash_key, value.encode(), hashlib.sha256).hexdigest()[:16]


def validate_pattern(regex: str) -> str | None:
    """Why a user pattern cannot be used (it does not compile, or matches the empty string), or ``None``."""
    return _native.pattern_problem(regex)
