"""Histogram observations of one request, applied per series at once.

``Histogram.observe`` takes a lock per bucket and sum and validates its exemplar on every call;
per request the same few series are observed dozens of times. :class:`Observations` collects a
request's values per series and applies each series' bucket counts and sum once, with the
newest exemplar of each bucket touched: the exposition is the same as observing one by one.
It reads ``prometheus_client``'s histogram internals (``_upper_bounds``, ``_buckets``, ``_sum``),
pinned by the version range in ``pyproject.toml`` and by ``tests/telemetry/test_observations.py``.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from typing import Any

from prometheus_client.samples import Exemplar


class Observations:
    """Values per histogram child; :meth:`apply` once per request."""

    __slots__ = ("_series",)

    def __init__(self) -> None:
        self._series: dict[int, tuple[Any, list[float], list[str | None]]] = {}

    def add(self, child: Any, value: float, trace_id: str | None = None) -> None:
        """Observe ``value`` on ``child`` (a labelled histogram), with a trace-id exemplar."""
        found = self._series.get(id(child))
        if found is None:
            found = self._series[id(child)] = (child, [], [])
        found[1].append(value)
        found[2].append(trace_id)

    def apply(self) -> None:
        """Add the collected observations to their histograms and forget them."""
        now = time.time()
        for child, values, trace_ids in self._series.values():
            bounds = child._upper_bounds
            buckets = child._buckets
            counts = [0] * len(bounds)
            newest: dict[int, tuple[float, str]] = {}
            for value, trace_id in zip(values, trace_ids, strict=True):
                if value != value:
                    continue  # NaN: in the sum only, as observe() does
                index = bisect_left(bounds, value)  # the first bound >= value, as observe() finds it
                counts[index] += 1
                if trace_id is not None:
                    newest[index] = (value, trace_id)
            child._sum.inc(sum(values))
            for index, count in enumerate(counts):
                if count:
                    buckets[index].inc(count)
            for index, (value, trace_id) in newest.items():
                buckets[index].set_exemplar(Exemplar({"trace_id": trace_id}, value, now))
        self._series.clear()
