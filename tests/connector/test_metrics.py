"""The ``llm_*`` metrics connector: what one batch of enriched calls does to the exposition."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from otlp_enricher.connector.metrics import MetricsConnector
from otlp_enricher.model import LLMCall, Tokens
from otlp_enricher.processor.cardinality import CardinalityGuard
from otlp_enricher.processor.slo import SloSpec
from otlp_enricher.telemetry.metrics import Metrics
from otlp_enricher.telemetry.workers import openmetrics_exposition
from tests.doubles import llm_call

TRACE = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")


def call(**fields: Any) -> LLMCall:
    """A two-second call of ``TRACE`` answered by gpt-4o-2024-08-06; ``fields`` override."""
    base: dict[str, Any] = {
        "trace_id": TRACE,
        "span_id": b"\x01" * 8,
        "end_ns": 2_000_000_000,
        "response_model": "gpt-4o-2024-08-06",
    }
    return llm_call(**{**base, **fields})


def connector(registry: CollectorRegistry, slos: tuple[SloSpec, ...] = ()) -> MetricsConnector:
    metrics = Metrics(registry, (), duration_buckets=(1.0, 5.0), ttft_buckets=(0.5,), tpot_buckets=(0.01,))
    guard = CardinalityGuard({}, 100, 128, on_fold=lambda label: None)
    return MetricsConnector(metrics, guard, (), slos)


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


MODEL = {"provider": "openai", "model": "gpt-4o-2024-08-06"}


def test_a_batch_is_summed_per_series_tokens_by_type_and_zero_counts_make_no_series() -> None:
    registry = CollectorRegistry()
    priced = {"cost_source": "price_table"}
    connector(registry).consume(
        [
            call(tokens=Tokens(input=1000, output=50, cache_read=800), cost_usd=0.002, **priced),
            call(tokens=Tokens(input=10, output=5), cost_usd=0.0001, **priced),
        ]
    )
    assert value(registry, "llm_requests_total", **MODEL, operation="chat", status="ok") == 2
    assert value(registry, "llm_tokens_total", **MODEL, type="input") == 1010
    assert value(registry, "llm_tokens_total", **MODEL, type="output") == 55
    assert value(registry, "llm_tokens_total", **MODEL, type="cache_read") == 800
    assert value(registry, "llm_tokens_total", **MODEL, type="reasoning") is None  # no zero series
    assert value(registry, "llm_cost_usd_total", **MODEL) == pytest.approx(0.0021, rel=1e-12)
    assert value(registry, "llm_cost_source_requests_total", **MODEL, source="price_table") == 2


def test_an_unpriced_call_is_counted_as_unpriced_and_adds_no_cost() -> None:
    registry = CollectorRegistry()
    connector(registry).consume(
        [
            call(tokens=Tokens(input=5, output=5), cost_source="unpriced", unpriced_reason="no_price"),
            call(tokens=None, cost_source="unpriced", unpriced_reason="no_usage"),
        ]
    )
    assert value(registry, "llm_unpriced_requests_total", **MODEL, reason="no_price") == 1
    assert value(registry, "llm_unpriced_requests_total", **MODEL, reason="no_usage") == 1
    assert value(registry, "llm_cost_usd_total", **MODEL) is None


def test_a_failed_call_counts_its_reason_and_its_duration_carries_the_trace_id() -> None:
    registry = CollectorRegistry()
    connector(registry).consume([call(status="error", error_reason="rate_limit")])
    assert value(registry, "llm_errors_total", **MODEL, reason="rate_limit") == 1
    assert value(registry, "llm_requests_total", **MODEL, operation="chat", status="error") == 1
    exposition = openmetrics_exposition(registry).decode()
    observed = [line for line in exposition.splitlines() if line.startswith("llm_request_duration_seconds_bucket")]
    assert any(f'trace_id="{TRACE.hex()}"' in line for line in observed), observed
    assert value(registry, "llm_request_duration_seconds_sum", **MODEL, operation="chat") == 2.0


def test_slo_objectives_and_zero_outcomes_are_exposed_before_any_call() -> None:
    registry = CollectorRegistry()
    connector(registry, (SloSpec(name="chat", objective=0.99, latency_threshold_s=1.5),))
    assert value(registry, "llm_slo_objective_ratio", slo="chat") == 0.99
    assert value(registry, "llm_slo_latency_threshold_seconds", slo="chat") == 1.5
    assert value(registry, "llm_slo_requests_total", slo="chat", outcome="good") == 0
    assert value(registry, "llm_slo_requests_total", slo="chat", outcome="bad") == 0
