"""The seam between the rules of meaning and the native scanner: every key a rule reads is scanned."""

from __future__ import annotations

from otlp_enricher.semconv import candidates, keys

# Tables in keys.py of values or of keys that are never read from spans (labels refused, content stripped).
_NOT_READ = {
    "LLM_OPERATIONS",
    "FIRST_CHUNK_EVENTS",
    "FORBIDDEN_LABEL_KEYS",
    "FORBIDDEN_LABEL_PREFIXES",
    "CONTENT_PREFIXES",
    "CONTENT_EVENTS",
    "CONTENT_EVENT_PREFIXES",
    "REPORTED_COST_SOURCES",
    "WRAPPER_OPERATIONS",
}


def _covered(key: str) -> bool:
    return key in candidates.READ_KEYS or key.startswith(candidates.READ_PREFIXES)


def _key_tables() -> dict[str, tuple[str, ...] | frozenset[str]]:
    return {
        name: table
        for name, table in vars(keys).items()
        if name.isupper() and isinstance(table, tuple | frozenset) and all(isinstance(key, str) for key in table)
    }


def test_every_key_table_is_scanned() -> None:
    """A key tuple added to keys.py without adding it to candidates.READ_KEYS would be invisible to the rules."""
    missing = {
        name: [key for key in table if not _covered(key)]
        for name, table in _key_tables().items()
        if name not in _NOT_READ
    }
    assert {name: found for name, found in missing.items() if found} == {}


def test_exemptions_name_key_tables_of_keys_py() -> None:
    """An exemption left behind by a renamed or moved table would silently exempt a future one."""
    assert set(_key_tables()) >= _NOT_READ


def test_marker_keys_are_read() -> None:
    """A marker key's value is needed to decide, so it must be decoded too."""
    assert candidates.MARKER_KEYS <= candidates.READ_KEYS


def test_span_name_candidates_match_the_operations_recognised_by_name() -> None:
    """The scanner hands over ``<operation> <model>`` spans for exactly the operations the name rule accepts."""
    assert set(candidates.LLM_SPAN_NAME_PREFIXES) == {f"{operation} " for operation in keys.SPAN_NAME_OPERATIONS}
