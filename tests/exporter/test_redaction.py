"""Redaction scrubbers: what each catches, what it leaves alone, keyed user-id hashing, fail closed."""

from __future__ import annotations

from collections import Counter

import pytest

from otlp_enricher.processor.redaction import (
    RedactionFailed,
    RedactionSettings,
    Redactor,
    UserPattern,
    validate_pattern,
)

SECRETS = {
    "email": ["jane.doe+llm@example.co.uk", "ops@corp.example.com"],
    # Python's \\d is every Unicode decimal digit: Arabic-Indic, Persian and Devanagari numbers too.
    "card": ["4111 1111 1111 1111", "5500-0000-0000-0004", "378282246310005", "٤١١١ ١١١١ ١١١١ ١١١١"],
    "phone": ["+44 20 7946 0958", "(555) 123-4567", "555-123-4567", "+14155552671", "+٩٧١٥٠١٢٣٤٥٦٧", "۰۹۱۲ ۳۴۵ ۶۷۸۹"],
    "api_key": [
        "sk-proj-" + "a1B2" * 10,
        "sk-ant-api03-" + "Zz9_" * 8,
        "AKIAIOSFODNN7EXAMPLE",
        "ghp_" + "x" * 36,
        "xoxb-1234567890-abcdefghij",
        "AIza" + "S" * 35,
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    ],
    "ip": ["10.1.2.3", "192.168.100.200", "2001:db8::8a2e:370:7334"],
}
HARMLESS = [
    "version 1.2.3 released on 2024-01-15 at 12:30:45",
    "tokens 1234, cost 0.0034 USD, id 123456789",
    "4111 1111 1111 1112 fails the Luhn check",
    "٤١١١ ١١١١ ١١١١ ١١١٢ fails it in Arabic-Indic digits too",
    "skeleton keys are not sk- keys",
]


@pytest.mark.parametrize(("kind", "secret"), [(k, s) for k, values in SECRETS.items() for s in values])
def test_each_secret_is_replaced_by_its_marker(kind: str, secret: str) -> None:
    """Every sample secret disappears and leaves its scrubber's marker."""
    counts: Counter[str] = Counter()
    text = Redactor(RedactionSettings()).scrub(f"before {secret} after.", counts)
    assert secret not in text
    assert f"[REDACTED:{kind}]" in text
    assert text.startswith("before ") and text.endswith(" after.")


@pytest.mark.parametrize("text", HARMLESS)
def test_ordinary_text_is_left_alone(text: str) -> None:
    """Versions, dates, times, counts and non-Luhn digit runs are not mistaken for secrets."""
    assert Redactor(RedactionSettings()).scrub(text, Counter()) == text


def test_bearer_token_keeps_the_scheme() -> None:
    """Only the credential of an Authorization value is replaced."""
    text = Redactor(RedactionSettings()).scrub("Authorization: Bearer abcdefghijklmnop123456", Counter())
    assert text == "Authorization: Bearer [REDACTED:bearer_token]"


def test_user_patterns_and_nested_values() -> None:
    """User patterns run after the built-ins; dicts and lists are walked, keys kept."""
    settings = RedactionSettings(patterns=(UserPattern("ticket", r"TICKET-\d+"),))
    counts: Counter[str] = Counter()
    value = {"parts": [{"content": "see TICKET-42 from a@b.io"}], "n": 3}
    scrubbed = Redactor(settings).scrub_value(value, counts)
    assert scrubbed == {"parts": [{"content": "see [REDACTED:ticket] from [REDACTED:email]"}], "n": 3}
    assert counts == Counter({"ticket": 1, "email": 1})


def test_user_id_modes() -> None:
    """keep, drop, and a keyed hash that is stable per key and differs across keys."""
    assert Redactor(RedactionSettings(user_id="keep")).user_id("u-1") == "u-1"
    assert Redactor(RedactionSettings(user_id="drop")).user_id("u-1") is None
    one = Redactor(RedactionSettings(user_id="hash", hash_key="k1"))
    two = Redactor(RedactionSettings(user_id="hash", hash_key="k2"))
    assert one.user_id("u-1") == one.user_id("u-1") != two.user_id("u-1")
    assert (one.user_id("u-1") or "").startswith("h:")


# Nested quantifiers before a look-ahead that never holds: on any text of ~25 characters or more
# the backtracking engine gives up past its step limit, which is a scrubber failure.
BACKTRACKING_BOMB = UserPattern("bomb", r"(?:[\s\S]+)+(?=\x00)")


def test_a_failing_scrubber_fails_closed() -> None:
    """A scrubber that fails (here: the backtracking limit) surfaces as RedactionFailed, never as the raw text."""
    redactor = Redactor(RedactionSettings(scrubbers=("email",), patterns=(BACKTRACKING_BOMB,)))
    with pytest.raises(RedactionFailed):
        redactor.scrub("secret@example.com and then some more words", Counter())


def test_pattern_validation() -> None:
    """Broken and empty-matching patterns are reported for the config loader."""
    assert validate_pattern(r"TICKET-\d+") is None
    assert validate_pattern(r"(") is not None
    assert validate_pattern(r"a*") == "matches the empty string"


def test_a_second_scrub_of_the_same_text_counts_the_same_matches() -> None:
    """The Loki line and the Tempo span scrub the same prompt; the remembered result counts again."""
    from collections import Counter

    from otlp_enricher.processor.redaction import RedactionSettings, Redactor

    redactor = Redactor(RedactionSettings())
    text = "mail ann@example.com, card 4111 1111 1111 1111"
    first: Counter[str] = Counter()
    second: Counter[str] = Counter()
    assert redactor.scrub(text, first) == redactor.scrub(text, second)
    assert first == second == Counter({"email": 1, "card": 1})


def test_scrubbers_skipped_by_their_prefilter_still_catch_what_they_should() -> None:
    """Text without digits or "@" skips those scrubbers; text with them is still scrubbed."""
    from collections import Counter

    from otlp_enricher.processor.redaction import RedactionSettings, Redactor

    redactor = Redactor(RedactionSettings())
    plain = "p" * 5000
    assert redactor.scrub(plain, Counter()) == plain
    long_local_part = "x" * 200 + " reach me: bob.smith@corp.example.org"
    assert "bob.smith" not in redactor.scrub(long_local_part, Counter())
