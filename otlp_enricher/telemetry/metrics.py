"""Every metric the sidecar exposes, declared in one place on a registry passed in.

The ``llm_*`` families are the contract dashboards and alert rules query (names and labels are
fixed); ``otlp_enricher_*`` are the sidecar's own health, in the Collector's
``otelcol_receiver_accepted_spans`` style.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

BASE_LABELS = ("provider", "model")
#: OpenTelemetry GenAI semantic conventions v1.41.0 (``model/gen-ai/metrics.yaml``): metric
#: attributes as Prometheus labels and the spec's explicit bucket boundaries.
GENAI_LABELS = ("gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "gen_ai_response_model")
GENAI_TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
GENAI_DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)


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
            "LLM calls with no cost, never taken as $0, by reason: no_price (no known price for the model) "
            "or no_usage (a successful call that reported no tokens and carries no content to estimate from).",
            (*BASE_LABELS, "reason", *extra),
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
        self.budget = Gauge(
            "llm_budget_usd",
            "Amount of each budget of processors.genai.budgets in USD per period (day, month).",
            ("budget", "period"),
            registry=registry,
        )
        self.trace_cost = Histogram(
            "llm_trace_cost_usd",
            "Cost of all LLM calls of one trace (an agent run, a request), observed once its calls go quiet; "
            "only traces whose every call was priced.",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25),
            registry=registry,
        )
        self.rollups_open = Gauge(
            "otlp_enricher_trace_rollups_open",
            "Traces and conversations with LLM calls whose summary is not yet emitted.",
            registry=registry,
        )
        self.rollups_evicted = Counter(
            "otlp_enricher_trace_rollups_evicted_total",
            "Trace or conversation summaries emitted early because processors.genai.rollup.max_open was reached.",
            registry=registry,
        )
        self.rollups_dropped = Counter(
            "otlp_enricher_trace_summaries_dropped_total",
            "Trace or conversation summaries lost because the log exporter's spool was full or the file unwritable.",
            registry=registry,
        )
        # The same calls under the OpenTelemetry GenAI metric names (processors.genai.otel_metrics).
        self.genai_token_usage = Histogram(
            "gen_ai_client_token_usage",
            "Number of input and output tokens used (OTel gen_ai.client.token.usage).",
            (*GENAI_LABELS, "gen_ai_token_type"),
            buckets=GENAI_TOKEN_BUCKETS,
            registry=registry,
        )
        self.genai_duration = Histogram(
            "gen_ai_client_operation_duration_seconds",
            "GenAI operation duration (OTel gen_ai.client.operation.duration).",
            (*GENAI_LABELS, "error_type"),
            buckets=GENAI_DURATION_BUCKETS,
            registry=registry,
        )
        self.genai_ttfc = Histogram(
            "gen_ai_client_operation_time_to_first_chunk_seconds",
            "Time to the first chunk of a streamed response (OTel gen_ai.client.operation.time_to_first_chunk).",
            GENAI_LABELS,
            buckets=GENAI_DURATION_BUCKETS,
            registry=registry,
        )
        self.genai_tpoc = Histogram(
            "gen_ai_client_operation_time_per_output_chunk_seconds",
            "Mean time per output chunk after the first, one observation per call "
            "(OTel gen_ai.client.operation.time_per_output_chunk observes every chunk).",
            GENAI_LABELS,
            buckets=GENAI_DURATION_BUCKETS,
            registry=registry,
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
        self.llm_duplicates = Counter(
            "otlp_enricher_llm_duplicate_calls_total",
            "LLM calls seen again (upstream retries, double tracing): passed on, but not counted twice.",
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
        self.auth_failures = Counter(
            "otlp_enricher_auth_failures_total",
            "Requests refused for a missing or wrong credential (gRPC UNAUTHENTICATED, HTTP 401), by listener.",
            ("listener",),
            registry=registry,
        )
        self.connections_refused = Counter(
            "otlp_enricher_connections_refused_total",
            "Connections closed at once because the listener already held max_connections, by listener.",
            ("listener",),
            registry=registry,
        )
        self.labels_folded = Counter(
            "otlp_enricher_label_values_folded_total",
            "Label values replaced by 'other' because the label reached its cap of distinct values.",
            ("label",),
            registry=registry,
        )
        self.series_budget_folded = Counter(
            "otlp_enricher_series_budget_folded_total",
            "LLM calls whose label combination was folded into 'other' because the llm_* series budget "
            "(processors.genai.labels.max_series) was spent.",
            registry=registry,
        )
        self.llm_series = Gauge(
            "otlp_enricher_llm_series",
            "Series the llm_* families hold (histogram buckets counted), against processors.genai.labels.max_series.",
            registry=registry,
        )
        self.loki_stream_labels_folded = Counter(
            "otlp_enricher_loki_stream_labels_folded_total",
            "Prompt log lines whose stream labels were folded into 'other' (per-label cap or stream budget).",
            registry=registry,
        )
        self.prompt_logs = Counter(
            "otlp_enricher_prompt_logs_total",
            "Prompt log records accepted by a log exporter.",
            ("exporter",),
            registry=registry,
        )
        # Exporters (Loki, Tempo): delivery through the spool, in the Collector's exporterhelper style.
        exporter = ("exporter", "signal")
        self.exporter_sent = Counter(
            "otlp_enricher_exporter_sent_total",
            "Items (spans, log lines) the backend accepted.",
            exporter,
            registry=registry,
        )
        self.exporter_send_failed = Counter(
            "otlp_enricher_exporter_send_failed_total",
            "Items in send attempts that failed (retried or dead-lettered afterwards).",
            exporter,
            registry=registry,
        )
        self.exporter_retries = Counter(
            "otlp_enricher_exporter_retries_total",
            "Send attempts retried after a retryable failure.",
            ("exporter",),
            registry=registry,
        )
        self.exporter_dead_lettered = Counter(
            "otlp_enricher_exporter_dead_lettered_total",
            "Items refused for good by the backend, written to the dead-letter file with the reason.",
            exporter,
            registry=registry,
        )
        self.exporter_enqueue_failed = Counter(
            "otlp_enricher_exporter_enqueue_failed_total",
            "Items refused at intake because the spool was full (the sender was told to retry).",
            exporter,
            registry=registry,
        )
        self.exporter_dropped = Counter(
            "otlp_enricher_exporter_dropped_total",
            "Items dropped unsent from a spool to make room (sending_queue.on_full: drop_oldest).",
            exporter,
            registry=registry,
        )
        self.spool_items = Gauge(
            "otlp_enricher_spool_items", "Items spooled and not yet sent.", ("exporter",), registry=registry
        )
        self.spool_bytes = Gauge(
            "otlp_enricher_spool_bytes", "Bytes spooled and not yet sent.", ("exporter",), registry=registry
        )
        self.spool_oldest_unsent_age = Gauge(
            "otlp_enricher_spool_oldest_unsent_age_seconds",
            "Age of the oldest spooled item not yet sent (0 when all is sent).",
            ("exporter",),
            registry=registry,
        )
        self.spool_replayed = Counter(
            "otlp_enricher_spool_replayed_total",
            "Items found unsent in the spool at start and replayed (at most the last batch may be a duplicate).",
            exporter,
            registry=registry,
        )
        self.spool_truncated_bytes = Counter(
            "otlp_enricher_spool_truncated_bytes_total",
            "Bytes of torn or corrupt spool frames cut at start (never an acknowledged record).",
            ("exporter",),
            registry=registry,
        )
        # Storage (spool and dead-letter files): faults are states, reported here and by /readyz.
        self.storage_writable = Gauge(
            "otlp_enricher_storage_writable",
            "1 while the exporter's spool takes writes and commits, 0 while a storage fault is in force.",
            ("exporter",),
            registry=registry,
        )
        self.storage_errors = Counter(
            "otlp_enricher_storage_errors_total",
            "Failed spool or dead-letter syscalls, by exporter, operation and errno (ENOSPC, EROFS, EIO…).",
            ("exporter", "operation", "errno"),
            registry=registry,
        )
        self.dead_letter_bytes = Gauge(
            "otlp_enricher_dead_letter_bytes",
            "Bytes kept in the exporter's dead-letter files (bounded by storage.dead_letters.max_bytes).",
            ("exporter",),
            registry=registry,
        )
        self.dead_letters_dropped = Counter(
            "otlp_enricher_dead_letters_dropped_total",
            "Dead-lettered items deleted, oldest first, to keep the dead-letter files within their bound.",
            ("exporter",),
            registry=registry,
        )
        # Configuration: what is loaded, and reloads (SIGHUP).
        self.config_info = Gauge(
            "otlp_enricher_config_info",
            "1 for the loaded configuration: its file's SHA-256 prefix and the price table's version (genai-prices).",
            ("config_sha256", "prices_version"),
            registry=registry,
        )
        self.config_reloads = Counter(
            "otlp_enricher_config_reloads_total",
            "Configuration reloads, by result (ok, invalid, failed).",
            ("result",),
            registry=registry,
        )
        self.loki_lines_truncated = Counter(
            "otlp_enricher_loki_lines_truncated_total",
            "Prompt log lines over the line size limit, truncated with a marker.",
            registry=registry,
        )
        self.redactions = Counter(
            "otlp_enricher_redactions_total",
            "Values replaced by a redaction scrubber, by target (prompt_log, span) and scrubber.",
            ("target", "scrubber"),
            registry=registry,
        )
        self.redaction_failures = Counter(
            "otlp_enricher_redaction_failures_total",
            "Content dropped because a scrubber failed (fail closed), by target.",
            ("target",),
            registry=registry,
        )
