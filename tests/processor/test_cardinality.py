"""Series stay bounded whatever arrives: capped label values, an ``other`` bucket, no identifiers."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from prometheus_client import CollectorRegistry

from otlp_enricher.config import parse_config
from otlp_enricher.processor.cardinality import CardinalityGuard
from otlp_enricher.service import build_metrics, build_pipeline
from tests.otlp_builders import request, span


def test_guard_caps_a_million_distinct_values() -> None:
    """One million model names: the first 100 stay, the rest fold into ``other`` and are counted."""
    folded: Counter[str] = Counter()
    guard = CardinalityGuard({}, 100, 64, on_fold=lambda label: folded.update([label]))
    values = {guard.value("model", f"model-{index}") for index in range(1_000_000)}
    assert len(values) == 101
    assert "other" in values
    assert folded["model"] == 1_000_000 - 100
    assert guard.distinct_values("model") == 100


def test_guard_keeps_priced_models_exact_up_to_a_ceiling() -> None:
    """Known priced models bypass the cap (the price table bounds them), up to a hard ceiling."""
    guard = CardinalityGuard({"model": 2}, 2, 64, on_fold=lambda label: None, exempt_ceiling=3)
    assert [guard.value("model", name, exempt=True) for name in ("a", "b", "c")] == ["a", "b", "c"]
    # Past the ceiling, priced models share the ordinary cap of 2 with everything else.
    assert [guard.value("model", name, exempt=True) for name in ("d", "e", "f")] == ["d", "e", "other"]
    assert guard.value("model", "unpriced-x") == "other"
    assert guard.value("model", "a", exempt=True) == "a"
    assert guard.distinct_values("model") == 5


def test_guard_truncates_long_values_and_names_empty_ones() -> None:
    """Huge strings are cut; an absent value is ``unknown``."""
    guard = CardinalityGuard({}, 10, 16, on_fold=lambda label: None)
    assert guard.value("model", "x" * 10_000) == "x" * 16
    assert guard.value("provider", "") == "unknown"


def series_count(registry: CollectorRegistry) -> int:
    """Number of exposed samples whose metric name starts with llm_."""
    return sum(len(family.samples) for family in registry.collect() if family.name.startswith("llm_"))


def test_pipeline_series_stay_bounded_with_distinct_models_and_user_ids() -> None:
    """50 000 calls, each with a new model name and user id: the llm_* series count stops growing."""
    config = parse_config(
        "processors: {genai: {labels: {max_values_per_label: 20, allow: {environment: deployment.environment}}}}",
        "test",
        {},
    )
    registry = CollectorRegistry()
    pipeline = build_pipeline(config, build_metrics(config, registry))

    async def send(start: int, count: int) -> None:
        for batch in range(start, start + count, 500):
            spans = [
                span(
                    {
                        "gen_ai.operation.name": "chat",
                        "gen_ai.provider.name": "openai",
                        "gen_ai.request.model": f"finetune-{index}",
                        "gen_ai.usage.input_tokens": 10,
                        "gen_ai.usage.output_tokens": 5,
                        "user.id": f"user-{index}",
                        "deployment.environment": f"env-{index}",
                    }
                )
                for index in range(batch, batch + 500)
            ]
            await pipeline.export(request(spans).SerializeToString(), "test")

    asyncio.run(send(0, 5_000))
    after_first = series_count(registry)
    asyncio.run(send(5_000, 15_000))
    assert series_count(registry) == after_first
    exposed = b"".join(family.name.encode() + repr(family.samples).encode() for family in registry.collect())
    assert b"user-" not in exposed
    assert registry.get_sample_value("otlp_enricher_label_values_folded_total", {"label": "model"}) == 20_000 - 20
    unpriced = registry.get_sample_value(
        "llm_unpriced_requests_total",
        {"provider": "openai", "model": "other", "reason": "no_price", "environment": "other"},
    )
    assert unpriced == 20_000 - 20


def test_series_budget_bounds_the_product_of_labels_priced_models_included() -> None:
    """Priced model names × providers × services: the llm_* series stop near max_series, the
    newest combinations fold whole into ``other``, and each folded call is counted."""
    config = parse_config(
        "processors: {genai: {labels: {max_series: 2000, max_values_per_label: 1000, allow: {service: service.name}}}}",
        "test",
        {},
    )
    registry = CollectorRegistry()
    pipeline = build_pipeline(config, build_metrics(config, registry))
    priced = ["gpt-4o-2024-08-06", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "o3-mini", "gpt-3.5-turbo"]

    async def send() -> None:
        for service in range(60):
            spans = [
                span(
                    {
                        "gen_ai.operation.name": "chat",
                        "gen_ai.provider.name": provider,
                        "gen_ai.request.model": model,
                        "gen_ai.usage.input_tokens": 10,
                        "gen_ai.usage.output_tokens": 5,
                        "service.name": f"svc-{service}",
                    }
                )
                for provider in ("openai", "azure.ai.openai")
                for model in priced
            ]
            await pipeline.export(request(spans).SerializeToString(), "test")

    asyncio.run(send())
    series = series_count(registry)
    # Without the budget this is 60 services × 2 providers × 6 models = 720 combinations, each with
    # dozens of series; with it the total stays within one combination's worth of the budget.
    assert 2000 <= series <= 2000 + 200, series
    folded = registry.get_sample_value("otlp_enricher_series_budget_folded_total") or 0
    assert folded > 0
    other = registry.get_sample_value(
        "llm_requests_total",
        {"provider": "other", "model": "other", "operation": "chat", "status": "ok", "service": "other"},
    )
    assert other == folded
    assert registry.get_sample_value("otlp_enricher_llm_series") == pytest.approx(series, rel=0.2)


def test_stream_budget_caps_loki_stream_labels() -> None:
    """Distinct services × providers × models: at most max_streams label sets, then ``other``."""
    from otlp_enricher.processor.cardinality import StreamBudget

    folded = []
    streams = StreamBudget(("service", "provider", "model"), 50, 1000, on_fold=lambda: folded.append(1))
    results = {streams.labels((f"svc-{i}", f"p-{i % 3}", f"m-{i % 7}")) for i in range(10_000)}
    assert len(results) <= 51 and ("other", "other", "other") in results
    assert streams.streams <= 50 and len(folded) > 0
    assert {labels[0] for labels in results} == {f"svc-{i}" for i in range(50)} | {"other"}
    capped = StreamBudget(("service",), 1000, 20, on_fold=lambda: None)  # and the per-label cap
    assert len({capped.labels((f"svc-{i}",)) for i in range(1000)}) == 21
