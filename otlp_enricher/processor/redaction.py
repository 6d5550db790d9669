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

import hashlib
import hmac
import ipaddress
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

BUILTIN_SCRUBBERS = ("private_key", "api_key", "bearer_token", "email", "card", "ip", "phone")
USER_ID_MODES = ("keep", "hash", "drop")
TARGETS = ("prompt_log", "spans")

Validator = Callable[[str], bool]


@dataclass(frozen=True, slots=True)
class UserPattern:
    """A user-supplied scrubber: ``name`` (used in the marker and metrics) and a regular expression."""

    name: str
    regex: str
    replacement: str = ""


@dataclass(frozen=True, slots=True)
class RedactionSettings:
    """``processors.redaction``."""

    enabled: bool = True
    scrubbers: tuple[str, ...] = BUILTIN_SCRUBBERS
    patterns: tuple[UserPattern, ...] = ()
    user_id: str = "keep"
    hash_key: str = ""
    apply_to: tuple[str, ...] = TARGETS


class RedactionFailed(Exception):
    """A scrubber failed; the content it was scrubbing must be dropped, not sent."""


def _luhn(candidate: str) -> bool:
    digits = [int(c) for c in candidate if c.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for index, digit in enumerate(reversed(digits)):
        if index % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def _ip(candidate: str) -> bool:
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return True


def _phone(candidate: str) -> bool:
    return 9 <= sum(c.isdigit() for c in candidate) <= 15


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
BUILTIN_PATTERNS: dict[str, tuple[str, Validator | None]] = {
    "private_key": (r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----", None),
    "api_key": (rf"(?<![A-Za-z0-9_-])(?:{_API_KEYS})", None),
    "bearer_token": (r"(?i)\b(?:bearer|basic|token)\s+(?P<secret>[A-Za-z0-9._~+/-]{16,}=*)", None),
    # The look-behind makes a match start only where a local part can start, so a long run of
    # letters with no "@" is scanned once, not once per position (quadratic on big prompts).
    "email": (r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}", None),
    # Patterns start with a plain character class where they can: the regex engine then skips
    # impossible positions fast instead of evaluating a look-behind at every character.
    "card": (r"\d(?<![\d-]\d)(?:[ -]?\d){12,18}(?!\d)", _luhn),
    "ip": (
        r"(?=[0-9A-Fa-f:])(?<![\w.:])(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7})(?![\w:]|\.\d)",
        _ip,
    ),
    "phone": (
        r"(?<![\w+])(?:\+\d{9,15}|(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,5}(?:[ .-]\d{2,5}){1,4})(?!\w)",
        _phone,
    ),
}


_DIGIT = re.compile(r"\d")
_API_KEY_HINTS = (
    "sk-",
    "AKIA",
    "ASIA",
    "gh",
    "github_pat_",
    "glpat-",
    "xox",
    "AIza",
    "k_live_",
    "k_test_",
    "hf_",
    "eyJ",
)
_CREDENTIAL_HINT = re.compile(r"(?i)bearer|basic|token")

# A cheap test per built-in scrubber: when it fails the pattern cannot match, so the regex pass
# (the main per-call cost of redaction) is skipped.
PREFILTERS: dict[str, Validator] = {
    "private_key": lambda text: "PRIVATE KEY" in text,
    "api_key": lambda text: any(hint in text for hint in _API_KEY_HINTS),
    "bearer_token": lambda text: _CREDENTIAL_HINT.search(text) is not None,
    "email": lambda text: "@" in text,
    "card": lambda text: _DIGIT.search(text) is not None,
    "ip": lambda text: ":" in text or _DIGIT.search(text) is not None,
    "phone": lambda text: _DIGIT.search(text) is not None,
}
_MEMO_ENTRIES = 4096
_MEMO_MAX_CHARS = 65_536


@dataclass(slots=True)
class _Scrubber:
    name: str
    pattern: re.Pattern[str]
    validator: Validator | None
    marker: str
    applies: Validator | None = None

    def __call__(self, text: str, counts: Counter[str]) -> str:
        if self.applies is not None and not self.applies(text):
            return text

        def replace(match: re.Match[str]) -> str:
            if self.validator is not None and not self.validator(match.group(0)):
                return match.group(0)
            counts[self.name] += 1
            if "secret" in self.pattern.groupindex and match.group("secret") is not None:
                start, end = match.span("secret")
                whole = match.group(0)
                offset = match.start(0)
                return whole[: start - offset] + self.marker + whole[end - offset :]
            return self.marker

        return self.pattern.sub(replace, text)


class Redactor:
    """Scrubs strings and nested JSON-like values; decides everything in ``__init__``."""

    def __init__(self, settings: RedactionSettings) -> None:
        self.settings = settings
        scrubbers: list[_Scrubber] = []
        if settings.enabled:
            for name in settings.scrubbers:
                regex, validator = BUILTIN_PATTERNS[name]
                marker = f"[REDACTED:{name}]"
                scrubbers.append(_Scrubber(name, re.compile(regex), validator, marker, PREFILTERS[name]))
            for user in settings.patterns:
                marker = user.replacement or f"[REDACTED:{user.name}]"
                scrubbers.append(_Scrubber(user.name, re.compile(user.regex), None, marker))
        self._scrubbers = tuple(scrubbers)
        # The same prompt is scrubbed for the Loki line and again for the Tempo span: remember
        # recent results (with the matches they counted) so the second pass is a look-up.
        self._memo: dict[str, tuple[str, tuple[tuple[str, int], ...]]] = {}
        self._hash_key = settings.hash_key.encode()
        self.prompt_logs = settings.enabled and "prompt_log" in settings.apply_to
        self.spans = settings.enabled and "spans" in settings.apply_to

    def scrub(self, text: str, counts: Counter[str]) -> str:
        """``text`` with every match replaced; raises :class:`RedactionFailed` if a scrubber fails."""
        remembered = self._memo.get(text)
        if remembered is not None:
            scrubbed, found = remembered
            counts.update(dict(found))
            return scrubbed
        found_here: Counter[str] = Counter()
        scrubbed = text
        try:
            for scrubber in self._scrubbers:
                scrubbed = scrubber(scrubbed, found_here)
        except Exception as error:  # fail closed: whatever went wrong, the raw text must not leave
            raise RedactionFailed(f"scrubber failed: {type(error).__name__}") from error
        counts.update(found_here)
        if len(text) <= _MEMO_MAX_CHARS:
            if len(self._memo) >= _MEMO_ENTRIES:
                del self._memo[next(iter(self._memo))]
            self._memo[text] = (scrubbed, tuple(found_here.items()))
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
        digest = hmac.new(self._hash_key, value.encode(), hashlib.sha256).hexdigest()
        return "h:" + digest[:16]


def validate_pattern(regex: str) -> str | None:
    """The compile error of a user pattern, or ``None`` when it is usable."""
    try:
        compiled = re.compile(regex)
    except re.error as error:
        return str(error)
    if compiled.match(""):
        return "matches the empty string"
    return None
