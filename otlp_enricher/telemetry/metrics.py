"""Every metric the sidecar exposes, declared in one place on a registry passed in.

The ``llm_*`` families are the contract dashboards and alert rules query (names and labels are
fixed); ``otlp_enricher_*`` are the sidecar's own health, in the Collector's
``otelcol_receiver_accepted_spans`` style.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

BASE_LABELS = ("provider", "model")


class Metrics:
    """All metric families; ``extra_labels`` are the allow-listed labels appended to LLM metrics."""

    def __init__(
        self,
        registry: CollectorRegistry,
        extra_labels: Sequence[str],
        duration_buckets: Sequence[float],
        ttft_buckets: Sequence[float],
        tpot_buckets: Sequence[float],
    ) -> None:
        extra = tuple(extra_labels)
        model_labels = (*BASE_LABELS, *extra)
        self.requests = Counter(
            "llm_requests_total",
            "LLM calls by outcome.",
            (*BASE_LABELS, "operation", "status", *extra),
            registry=registry,
        )
        self.errors = Counter(
            "llm_errors_total",
            "Failed LLM calls by reason.",
            (*BASE_LABELS, "reason", *extra),
            registry=registry,
        )
        self.tokens = Counter(
            "llm_tokens_total",
            "Tokens by type: input (cached included), output (reasoning included), cache_read, cache_write, reasoning.",
            (*BASE_LABELS, "type", *extra),
            registry=registry,
        )
        self.cost = Counter("llm_cost_usd_total", "Cost of LLM calls in USD.", model_labels, registry=registry)
        self.cost_source = Counter(
            "llm_cost_source_requests_total",
            "LLM calls by where their cost came from: span (reported by the instrumentation or gateway), "
            "price_table (genai-prices), override (operator prices).",
            (*BASE_LABELS, "source", *extra),
            registry=registry,
        )
        self.unpriced = Counter(
            "llm_unpriced_requests_total",
            "LLM calls with tokens but no known price (their cost is not counted, never taken as $0).",
            model_labels,
            registry=registry,
        )
        self.duration = Histogram(
            "llm_request_duration_seconds",
            "Duration of LLM calls.",
            (*BASE_LABELS, "operation", *extra),
            buckets=duration_buckets,
            registry=registry,
        )
        self.ttft = Histogram(
            "llm_time_to_first_token_seconds",
            "Time to the first streamed token.",
            model_labels,
            buckets=ttft_buckets,
            registry=registry,
        )
        self.tpot = Histogram(
            "llm_time_per_output_token_seconds",
            "Time per generated token after the first.",
            model_labels,
            buckets=tpot_buckets,
            registry=registry,
        )
        self.slo_requests = Counter(
            "llm_slo_requests_total",
            "LLM calls covered by an SLO, good or bad.",
            ("slo", "outcome"),
            registry=registry,
        )
        self.slo_objective = Gauge(
            "llm_slo_objective_ratio", "Target ratio of good calls for each SLO.", ("slo",), registry=registry
        )
        self.slo_latency_threshold = Gauge(
            "llm_slo_latency_threshold_seconds", "Latency threshold of each SLO.", ("slo",), registry=registry
        )
        self.slo_ttft_threshold = Gauge(
            "llm_slo_ttft_threshold_seconds", "TTFT threshold of each SLO.", ("slo",), registry=registry
        )
        # The sidecar's own health.
        self.spans_received = Counter(
            "otlp_enricher_spans_received_total", "Spans received.", ("transport",), registry=registry
        )
        self.spans_rejected = Counter(
            "otlp_enricher_spans_rejected_total",
            "Spans whose LLM data could not be used, by reason (reported to the sender as partial success).",
            ("reason",),
            registry=registry,
        )
        self.llm_spans = Counter(
            "otlp_enricher_llm_spans_total",
            "Spans recognised as LLM calls, by vocabulary.",
            ("vocabulary",),
            registry=registry,
        )
        self.spans_passed_on = Counter(
            "otlp_enricher_spans_passed_on_total",
            "Spans accepted by a span exporter (delivered or durably queued).",
            ("exporter",),
            registry=registry,
        )
        self.export_requests = Counter(
            "otlp_enricher_export_requests_total",
            "OTLP Export requests answered, by transport and result.",
            ("transport", "result"),
            registry=registry,
        )
        self.labels_folded = Counter(
            "otlp_enricher_label_values_folded_total",
            "Label values replaced by 'other' because the label reached its cap of distinct values.",
            ("label",),
            registry=registry,
        )
        self.prompt_logs = Counter(
            "otlp_enricher_prompt_logs_total",
            "Prompt log records accepted by a log exporter.",
            ("exporter",),
            registry=registry,
        )
