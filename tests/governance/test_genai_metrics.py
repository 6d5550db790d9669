"""The OpenTelemetry GenAI metric names (semconv v1.41.0) beside the llm_* ones, from the same calls."""

from __future__ import annotations

import asyncio
from pathlib import Path

from prometheus_client import CollectorRegistry

from otlp_enricher.config import parse_config
from otlp_enricher.otlp_json import read_recorded
from otlp_enricher.service import build_metrics, build_pipeline

RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "recorded"
#: gen_ai.client.token.usage and gen_ai.client.operation.duration boundaries, from the spec's table.
SPEC_TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864]
SPEC_DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92]


def replay(text: str) -> CollectorRegistry:
    """Recorded OpenAI and Anthropic traffic through the pipeline of the config ``text``."""
    config = parse_config(text, "t.yaml", {})
    registry = CollectorRegistry()
    pipeline = build_pipeline(config, build_metrics(config, registry))

    async def run() -> None:
        for name in ("otel-openai-v2.jsonl", "anthropic-sdk.jsonl"):
            for request in read_recorded(RECORDED / name):
                await pipeline.export(request, "grpc")

    asyncio.run(run())
    return registry


def total(registry: CollectorRegistry, sample_name: str, **labels: str) -> float:
    """Sum of the samples called ``sample_name`` whose labels include ``labels``."""
    return sum(
        sample.value
        for family in registry.collect()
        for sample in family.samples
        if sample.name == sample_name and labels.items() <= sample.labels.items()
    )


def test_genai_metrics_agree_with_the_llm_metrics_and_use_the_spec_buckets() -> None:
    """Token sums, call counts and first-chunk counts match llm_*; buckets are the spec's."""
    registry = replay("")
    for kind in ("input", "output"):
        expected = total(registry, "llm_tokens_total", type=kind)
        assert expected > 0
        assert total(registry, "gen_ai_client_token_usage_sum", gen_ai_token_type=kind) == expected
    calls = total(registry, "llm_requests_total")
    assert total(registry, "gen_ai_client_operation_duration_seconds_count") == calls
    errors = total(registry, "llm_requests_total", status="error")
    failed = [
        s.labels["error_type"]
        for f in registry.collect()
        for s in f.samples
        if s.name == "gen_ai_client_operation_duration_seconds_count" and s.labels["error_type"]
    ]
    assert (errors > 0) == bool(failed)
    assert total(registry, "gen_ai_client_operation_time_to_first_chunk_seconds_count") == total(
        registry, "llm_time_to_first_token_seconds_count"
    )
    names = {s.labels.get("gen_ai_provider_name") for f in registry.collect() for s in f.samples if "gen_ai" in s.name}
    assert {"openai", "anthropic"} <= names
    bounds = {
        family.name: sorted({float(s.labels["le"]) for s in family.samples if s.name.endswith("_bucket")})
        for family in registry.collect()
        if family.name.startswith("gen_ai_client")
    }
    assert bounds["gen_ai_client_token_usage"] == [*map(float, SPEC_TOKEN_BUCKETS), float("inf")]
    assert bounds["gen_ai_client_operation_duration_seconds"] == [*SPEC_DURATION_BUCKETS, float("inf")]


def test_otel_metrics_can_be_switched_off() -> None:
    """processors.genai.otel_metrics: false exports none of them."""
    registry = replay("processors: {genai: {otel_metrics: false}}")
    assert total(registry, "gen_ai_client_operation_duration_seconds_count") == 0
    assert total(registry, "llm_requests_total") > 0
