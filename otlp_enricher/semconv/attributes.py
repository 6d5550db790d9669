"""Key → value views of the attributes the native scanner decoded for one span or resource.

The scanner (``otlp_enricher/dataplane.py``) hands Python only the attributes listed in
``semconv/candidates.py``'s ``READ_KEYS`` / ``READ_PREFIXES``, already decoded: strings, ints, floats,
bools, bytes, lists (array values) and dicts (kvlist values).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


class Attributes:
    """Key → value access over a decoded attribute mapping."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = values

    def __contains__(self, key: str) -> bool:
        return key in self._values

    def keys(self) -> Iterable[str]:
        """All attribute keys, in arrival order."""
        return self._values.keys()

    def get(self, key: str) -> Any:
        """The value of ``key``, or ``None`` when absent."""
        return self._values.get(key)

    def first(self, keys: Iterable[str]) -> tuple[str, Any] | None:
        """The first of ``keys`` present, with its value."""
        values = self._values
        for key in keys:
            value = values.get(key)
            if value is not None:
                return key, value
        return None

    def first_str(self, keys: Iterable[str]) -> str:
        """The first of ``keys`` that holds a non-empty string, or ``""``."""
        values = self._values
        for key in keys:
            value = values.get(key)
            if isinstance(value, str) and value:
                return value
        return ""

    def with_prefix(self, prefix: str) -> dict[str, Any]:
        """Every attribute whose key starts with ``prefix``, keyed by the rest of the key."""
        cut = len(prefix)
        return {key[cut:]: value for key, value in self._values.items() if key.startswith(prefix)}
