"""LLM call records → the ``llm_*`` Prometheus metrics.

Label values go through the cardinality guard; label children are cached per label set (calling
``labels()`` per span costs more than the rest of the update); counters are summed per request and
incremented once; histograms carry the trace id as an exemplar so Grafana can jump to the trace.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from otlp_enricher.model import LLMCall
from otlp_enricher.processor.cardinality import OTHER, CardinalityGuard, SeriesBudget
from otlp_enricher.processor.slo import SloSpec
from otlp_enricher.telemetry.metrics import Metrics
from otlp_enricher.telemetry.observations import Observations

_PRICED = frozenset({"price_table", "override"})


class MetricsConnector:
    """Updates the LLM metrics for a batch of enriched calls."""

    def __init__(
        self,
        metrics: Metrics,
        guard: CardinalityGuard,
        extra_labels: Sequence[str],
        slos: Sequence[SloSpec],
        budget: SeriesBudget | None = None,
    ) -> None:
        self._metrics = metrics
        self._guard = guard
        self._extra_labels = tuple(extra_labels)
        self._children: dict[tuple[Any, tuple[str, ...]], Any] = {}
        self._budget = budget or SeriesBudget(50_000, metrics.series_budget_folded.inc)
        self._folded = (OTHER, OTHER, *(OTHER for _ in self._extra_labels))
        for slo in slos:
            metrics.slo_objective.labels(slo.name).set(slo.objective)
            if slo.latency_threshold_s is not None:
                metrics.slo_latency_threshold.labels(slo.name).set(slo.latency_threshold_s)
            if slo.ttft_threshold_s is not None:
                metrics.slo_ttft_threshold.labels(slo.name).set(slo.ttft_threshold_s)
            for outcome in ("good", "bad"):
                metrics.slo_requests.labels(slo.name, outcome)  # expose zeros so ratios exist at once

    def _child(self, family: Any, labels: tuple[str, ...]) -> Any:
        key = (family, labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = family.labels(*labels)
            # Samples as exposed: a counter child is _total and _created; a histogram child one per
            # bucket (+Inf included), _count, _sum and _created.
            bounds = getattr(family, "_upper_bounds", None)  # set on prometheus_client histograms only
            self._budget.spent(2 if bounds is None else len(bounds) + 3)
            self._metrics.llm_series.set(self._budget.series)
        return child

    def consume(self, calls: Sequence[LLMCall]) -> None:
        """Count, sum and observe ``calls`` (already enriched by the processors)."""
        if not calls:
            return
        m = self._metrics
        guard = self._guard
        sums: defaultdict[tuple[Any, tuple[str, ...]], float] = defaultdict(float)
        observed = Observations()
        for call in calls:
            priced = call.cost_source in _PRICED
            provider = guard.value("provider", call.provider, exempt=priced)
            model = guard.value("model", call.model, exempt=priced)
            operation = guard.value("operation", call.operation)
            extra = tuple(guard.value(label, call.label_values.get(label, "")) for label in self._extra_labels)
            combination = (provider, model, *extra)
            if combination != self._folded and not self._budget.admit(combination):
                provider, model, *folded_extra = self._folded
                extra = tuple(folded_extra)
            base = (provider, model)
            sums[(m.requests, (*base, operation, call.status, *extra))] += 1
            if call.status == "error":
                sums[(m.errors, (*base, call.error_reason, *extra))] += 1
            tokens = call.tokens
            if tokens is not None:
                for kind, count in tokens.by_type():
                    if count:
                        sums[(m.tokens, (*base, kind, *extra))] += count
            if call.cost_source == "unpriced":
                sums[(m.unpriced, (*base, call.unpriced_reason or "no_price", *extra))] += 1
            elif call.cost_usd is not None:
                sums[(m.cost, (*base, *extra))] += call.cost_usd
                sums[(m.cost_source, (*base, call.cost_source, *extra))] += 1
            for slo, good in call.slo_outcomes.items():
                sums[(m.slo_requests, (slo, "good" if good else "bad"))] += 1
            trace_id = call.trace_id.hex()
            observed.add(self._child(m.duration, (*base, operation, *extra)), call.duration_s, trace_id)
            if call.ttft_s is not None:
                observed.add(self._child(m.ttft, (*base, *extra)), call.ttft_s, trace_id)
            if call.time_per_output_token_s is not None:
                observed.add(self._child(m.tpot, (*base, *extra)), call.time_per_output_token_s, trace_id)
        observed.apply()
        for (family, labels), amount in sums.items():
            if amount:
                self._child(family, labels).inc(amount)
