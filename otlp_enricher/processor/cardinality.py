"""Cardinality guard: every metric label value passes through here before it reaches Prometheus.

Each label keeps at most ``max_values`` distinct values; later newcomers become ``other`` and are
counted (``otlp_enricher_label_values_folded_total``). Values are cut to ``max_value_length``
characters. Models the price table knows stay exact past the cap (they are bounded by the table),
up to a hard ceiling so that memory stays bounded whatever arrives.

Per-label caps do not bound the *product* of labels, so :class:`SeriesBudget` bounds it: once the
``llm_*`` families hold ``max_series`` series (``processors.genai.labels.max_series``, 50 000 by
default), a label combination not seen before is folded whole into ``other`` (priced models
included) and counted. :class:`StreamBudget` does the same for Loki stream labels.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

OTHER = "other"
UNKNOWN = "unknown"

FoldedHook = Callable[[str], None]
CountHook = Callable[[], None]


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


class SeriesBudget:
    """Admits label combinations while the series they created stay under ``max_series``.

    The caller reports every series it creates (:meth:`spent`); :meth:`admit` answers whether a
    combination may have series of its own. Admitted combinations stay admitted; the overshoot is
    at most the series of one combination. ``on_fold`` is called once per folded call.
    """

    def __init__(self, max_series: int, on_fold: CountHook) -> None:
        self.max_series = max_series
        self._on_fold = on_fold
        self._admitted: set[tuple[str, ...]] = set()
        self.series = 0

    def admit(self, combination: tuple[str, ...]) -> bool:
        """Whether ``combination`` keeps its own label values (else the caller uses ``other``)."""
        if combination in self._admitted:
            return True
        if self.series < self.max_series:
            self._admitted.add(combination)
            return True
        self._on_fold()
        return False

    def spent(self, series: int) -> None:
        """Record ``series`` newly created series."""
        self.series += series


class StreamBudget:
    """Loki stream labels: each label at most ``max_values_per_label`` values, and at most
    ``max_streams`` distinct label sets in all; past either, values become ``other`` (counted).

    ``labels(("svc", "openai", "gpt-4o"))`` returns the values to put on the stream.
    """

    def __init__(self, names: tuple[str, ...], max_streams: int, max_values_per_label: int, on_fold: CountHook) -> None:
        self._guard = CardinalityGuard({}, max_values_per_label, 128, on_fold=lambda label: on_fold())
        self._names = names
        self._budget = SeriesBudget(max_streams, on_fold)
        self._folded = tuple(OTHER for _ in names)
        self._seen: set[tuple[str, ...]] = set()

    def labels(self, values: tuple[str, ...]) -> tuple[str, ...]:
        """The stream label values for ``values`` (same order as ``names``)."""
        capped = tuple(self._guard.value(name, value) for name, value in zip(self._names, values, strict=True))
        if capped == self._folded:
            return capped
        if self._budget.admit(capped):
            if capped not in self._seen:
                self._seen.add(capped)
                self._budget.spent(1)
            return capped
        return self._folded

    @property
    def streams(self) -> int:
        """Distinct label sets handed out so far (the folded one excluded)."""
        return self._budget.series
