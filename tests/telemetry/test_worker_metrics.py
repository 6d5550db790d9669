"""The supervisor's /metrics: the exact sum of the workers' expositions, exemplars kept."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from otlp_enricher.config import parse_config
from otlp_enricher.confignode import ConfigError
from otlp_enricher.telemetry.workers import EXPOSITION_FILE, WorkerMetrics, openmetrics_exposition


def _worker(directory: Path, requests: int, durations: list[float], writable: int, objective: float) -> None:
    registry = CollectorRegistry()
    counter = Counter("llm_requests", "Calls.", ("model",), registry=registry)
    counter.labels("gpt-4o").inc(requests)
    histogram = Histogram("llm_request_duration_seconds", "Duration.", ("model",), buckets=(1, 5), registry=registry)
    for index, duration in enumerate(durations):
        histogram.labels("gpt-4o").observe(duration, {"trace_id": f"{directory.name}{index}"})
    Gauge("otlp_enricher_storage_writable", "Writable.", registry=registry).set(writable)
    Gauge("llm_slo_objective_ratio", "Objective.", ("slo",), registry=registry).labels("fast").set(objective)
    Gauge("otlp_enricher_spool_items", "Items.", registry=registry).set(requests)
    directory.mkdir()
    (directory / EXPOSITION_FILE).write_bytes(openmetrics_exposition(registry))


def test_counters_and_histograms_sum_gauges_follow_their_meaning(tmp_path: Path) -> None:
    """3 + 4 requests = 7; bucket counts add; one worker not writable → not writable; the SLO
    objective is the configured one (not doubled); queue sizes add; each bucket keeps an exemplar."""
    _worker(tmp_path / "w0", 3, [0.5, 2.0], 1, 0.99)
    _worker(tmp_path / "w1", 4, [0.7, 0.8, 9.0], 0, 0.99)
    registry = CollectorRegistry()
    registry.register(WorkerMetrics([tmp_path / "w0", tmp_path / "w1", tmp_path / "missing"]))
    value = registry.get_sample_value
    assert value("llm_requests_total", {"model": "gpt-4o"}) == 7
    assert value("llm_request_duration_seconds_bucket", {"model": "gpt-4o", "le": "1.0"}) == 3
    assert value("llm_request_duration_seconds_bucket", {"model": "gpt-4o", "le": "+Inf"}) == 5
    assert value("llm_request_duration_seconds_sum", {"model": "gpt-4o"}) == 13.0
    assert value("otlp_enricher_storage_writable", {}) == 0
    assert value("llm_slo_objective_ratio", {"slo": "fast"}) == 0.99
    assert value("otlp_enricher_spool_items", {}) == 7
    exposition = openmetrics_exposition(registry).decode()
    assert '# {trace_id="w' in exposition


def test_more_than_one_worker_needs_fixed_receiver_ports() -> None:
    """Port 0 would give each worker a different port: refused, naming the keys."""
    with pytest.raises(ConfigError) as raised:
        parse_config(
            "service: {workers: 2}\nreceivers: {otlp: {protocols: {grpc: {endpoint: '127.0.0.1:0'}}}}", "t", {}
        )
    assert "receivers.otlp.protocols.grpc.endpoint needs a fixed port" in str(raised.value)
