"""Observations applied per request give the exposition that observing one by one gives."""

from __future__ import annotations

import math

from prometheus_client import CollectorRegistry, Histogram

from otlp_enricher.telemetry.observations import Observations

VALUES = [0.0, 0.1, 0.5, 0.5, 1.0, 2.5, 7.0, 100.0, math.inf, float("nan"), -1.0]


def _histogram(registry: CollectorRegistry) -> Histogram:
    return Histogram("d_seconds", "D.", ("model",), buckets=(0.1, 0.5, 1, 5), registry=registry)


def _samples(registry: CollectorRegistry) -> list[tuple[str, dict[str, str], float, str | None]]:
    return [
        (
            s.name,
            s.labels,
            s.value if not math.isnan(s.value) else -999.0,
            s.exemplar.labels["trace_id"] if s.exemplar else None,
        )
        for family in registry.collect()
        for s in family.samples
        if not s.name.endswith("_created")
    ]


def test_batched_observations_equal_observing_one_by_one() -> None:
    """Bucket counts, sum (NaN included), count, and each bucket's newest exemplar are identical."""
    one_by_one, batched = CollectorRegistry(), CollectorRegistry()
    direct = _histogram(one_by_one).labels("m")
    later = _histogram(batched).labels("m")
    observed = Observations()
    for index, value in enumerate(VALUES):
        direct.observe(value, {"trace_id": f"t{index}"})
        observed.add(later, value, f"t{index}")
    observed.apply()
    assert _samples(batched) == _samples(one_by_one)
    observed.apply()  # applying again adds nothing: the observations were consumed
    assert _samples(batched) == _samples(one_by_one)
