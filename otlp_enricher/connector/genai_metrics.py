"""LLM call records → the OpenTelemetry GenAI client metrics (``processors.genai.otel_metrics``).

Semantic conventions v1.41.0 (``model/gen-ai/metrics.yaml``): ``gen_ai.client.token.usage``,
``gen_ai.client.operation.duration``, ``gen_ai.client.operation.time_to_first_chunk`` and
``gen_ai.client.operation.time_per_output_chunk``, named as an OTLP → Prometheus translation names
them (``gen_ai_client_token_usage``, ``gen_ai_client_operation_duration_seconds``, …), with
``gen_ai_*`` attribute labels and the spec's bucket boundaries, so dashboards written for those
conventions work unchanged. Differences: the per-chunk metric gets one observation per call (the
mean gap after the first chunk; spans do not carry every chunk's time), and label values pass
through the same cardinality guard as the ``llm_*`` metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from otlp_enricher.model import LLMCall
from otlp_enricher.processor.cardinality import CardinalityGuard
from otlp_enricher.telemetry.metrics import Metrics
from otlp_enricher.telemetry.observations import Observations

_PRICED = frozenset({"price_table", "override"})


class GenaiMetricsConnector:
    """Observes the OTel GenAI histograms for a batch of enriched calls (a ``CallSink``)."""

    def __init__(self, metrics: Metrics, guard: CardinalityGuard) -> None:
        self._metrics = metrics
        self._guard = guard
        self._children: dict[tuple[Any, tuple[str, ...]], Any] = {}

    def _child(self, family: Any, labels: tuple[str, ...]) -> Any:
        key = (family, labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = family.labels(*labels)
        return child

    def consume(self, calls: Sequence[LLMCall]) -> None:
        """Observe ``calls``: tokens by type, duration (with ``error_type`` on failures), chunk timings."""
        m, guard = self._metrics, self._guard
        observed = Observations()
        for call in calls:
            priced = call.cost_source in _PRICED
            labels = (
                guard.value("operation", call.operation),
                guard.value("provider", call.provider, exempt=priced),
                guard.value("model", call.request_model, exempt=priced),
                guard.value("model", call.response_model, exempt=priced) if call.response_model else "",
            )
            tokens = call.tokens
            if tokens is not None:
                observed.add(self._child(m.genai_token_usage, (*labels, "input")), tokens.input)
                observed.add(self._child(m.genai_token_usage, (*labels, "output")), tokens.output)
            error = guard.value("error_type", call.error_type or "_OTHER") if call.status == "error" else ""
            observed.add(self._child(m.genai_duration, (*labels, error)), call.duration_s)
            if call.ttft_s is not None:
                observed.add(self._child(m.genai_ttfc, labels), call.ttft_s)
            if call.time_per_output_token_s is not None and call.ttft_s is not None:
                observed.add(self._child(m.genai_tpoc, labels), call.time_per_output_token_s)
        observed.apply()
