"""The seam between the rules of meaning and the native scanner: every key a rule reads is scanned."""

from __future__ import annotations

from otlp_enricher.semconv import keys

# Tables of values or of keys that are never read from spans (labels refused, content stripped).
_NOT_READ = {
    "LLM_OPERATIONS",
    "FIRST_CHUNK_EVENTS",
    "FORBIDDEN_LABEL_KEYS",
    "FORBIDDEN_LABEL_PREFIXES",
    "LLM_SCOPE_PREFIXES",
    "LLM_SPAN_NAME_PREFIXES",
    "READ_PREFIXES",
    "CONTENT_PREFIXES",
    "CONTENT_EVENTS",
    "CONTENT_EVENT_PREFIXES",
    "REPORTED_COST_SOURCES",
    "WRAPPER_OPERATIONS",
}


def _covered(key: str) -> bool:
    return key in keys.READ_KEYS or key.startswith(keys.READ_PREFIXES)


def test_every_key_table_is_scanned() -> None:
    """A key tuple added to keys.py without adding it to READ_KEYS would be invisible to the rules."""
    missing = {
        name: [key for key in table if not _covered(key)]
        for name, table in vars(keys).items()
        if name.isupper()
        and name not in _NOT_READ
        and isinstance(table, tuple | frozenset)
        and all(isinstance(key, str) for key in table)
    }
    assert {name: found for name, found in missing.items() if found} == {}


def test_marker_keys_are_read() -> None:
    """A marker key's value is needed to decide, so it must be decoded too."""
    assert keys.MARKER_KEYS <= keys.READ_KEYS


def test_span_name_candidates_match_the_operations_recognised_by_name() -> None:
    """The scanner hands over ``<operation> <model>`` spans for exactly the operations the name rule accepts."""
    assert set(keys.LLM_SPAN_NAME_PREFIXES) == {f"{operation} " for operation in keys.SPAN_NAME_OPERATIONS}
