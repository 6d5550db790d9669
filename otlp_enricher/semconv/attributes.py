"""Thin, lazy views of OTLP attribute lists.

Decoding every ``AnyValue`` of every span is the largest per-span cost in a Python sidecar
(``shared/reference/performance-facts.md``), so a view indexes the attributes by key once and
decodes a value only when it is asked for.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def decode_any_value(value: Any) -> Any:
    """Return the Python value of an OTLP ``AnyValue`` (lists and dicts for array/kvlist)."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        return value.double_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "array_value":
        return [decode_any_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: decode_any_value(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return value.bytes_value
    return None


class Attributes:
    """Key → value access over a repeated ``KeyValue`` field, decoding on demand."""

    __slots__ = ("_raw",)

    def __init__(self, key_values: Iterable[Any]) -> None:
        self._raw: dict[str, Any] = {kv.key: kv.value for kv in key_values}

    def __contains__(self, key: str) -> bool:
        return key in self._raw

    def keys(self) -> Iterable[str]:
        """All attribute keys, in arrival order."""
        return self._raw.keys()

    def get(self, key: str) -> Any:
        """The decoded value of ``key``, or ``None`` when absent."""
        raw = self._raw.get(key)
        return None if raw is None else decode_any_value(raw)

    def first(self, keys: Iterable[str]) -> tuple[str, Any] | None:
        """The first of ``keys`` present, with its decoded value."""
        raw = self._raw
        for key in keys:
            value = raw.get(key)
            if value is not None:
                return key, decode_any_value(value)
        return None

    def first_str(self, keys: Iterable[str]) -> str:
        """The first of ``keys`` that holds a non-empty string, or ``""``."""
        raw = self._raw
        for key in keys:
            value = raw.get(key)
            if value is not None and value.WhichOneof("value") == "string_value" and value.string_value:
                return str(value.string_value)
        return ""

    def with_prefix(self, prefix: str) -> dict[str, Any]:
        """Every attribute whose key starts with ``prefix``, decoded, keyed by the rest of the key."""
        cut = len(prefix)
        return {key[cut:]: decode_any_value(v) for key, v in self._raw.items() if key.startswith(prefix)}
