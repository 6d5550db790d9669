"""Cardinality guard: every metric label value passes through here before it reaches Prometheus.

Each label keeps at most ``max_values`` distinct values; later newcomers become ``other`` and are
counted (``otlp_enricher_label_values_folded_total``). Values are cut to ``max_value_length``
characters. Models the price table knows stay exact past the cap (they are bounded by the table),
up to a hard ceiling so that memory stays bounded whatever arrives.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

OTHER = "other"
UNKNOWN = "unknown"

FoldedHook = Callable[[str], None]


class CardinalityGuard:
    """Caps the distinct values per label; calls ``on_fold(label)`` each time a value is folded."""

    def __init__(
        self,
        max_values: Mapping[str, int],
        default_max_values: int,
        max_value_length: int,
        on_fold: FoldedHook,
        exempt_ceiling: int = 5_000,
    ) -> None:
        self._max_values = dict(max_values)
        self._default_max = default_max_values
        self._max_length = max_value_length
        self._on_fold = on_fold
        self._exempt_ceiling = exempt_ceiling
        self._seen: dict[str, set[str]] = {}
        self._exempt_seen: dict[str, set[str]] = {}

    def value(self, label: str, raw: str, exempt: bool = False) -> str:
        """The value to put on ``label``: ``raw`` itself while there is room, else ``other``."""
        if not raw:
            return UNKNOWN
        value = raw[: self._max_length]
        seen = self._seen.get(label)
        if seen is None:
            seen = self._seen[label] = set()
        if value in seen:
            return value
        if exempt:
            exempt_seen = self._exempt_seen.setdefault(label, set())
            if value in exempt_seen or len(exempt_seen) < self._exempt_ceiling:
                exempt_seen.add(value)
                return value
        if len(seen) < self._max_values.get(label, self._default_max):
            seen.add(value)
            return value
        self._on_fold(label)
        return OTHER

    def distinct_values(self, label: str) -> int:
        """How many distinct values ``label`` currently keeps (for tests and self-metrics)."""
        return len(self._seen.get(label, ())) + len(self._exempt_seen.get(label, ()))
