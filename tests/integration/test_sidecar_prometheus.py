"""The sidecar's exposition as a real Prometheus reads it: rates, quantiles, SLO ratios, exemplars.

Recorded real-instrumentation fixtures are sent over gRPC to the real ``otlp-enricher serve``;
Debian's Prometheus scrapes it with exemplar storage on.
"""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client.parser import text_string_to_metric_families

from otlp_enricher.otlp_json import read_recorded
from otlp_enricher.replay import send_requests

from .conftest import StartPrometheus
from .sidecar import run_sidecar

pytestmark = pytest.mark.prometheus
RECORDED = Path(__file__).parent.parent / "fixtures" / "recorded"
FIXTURES = ["otel-openai-v2.jsonl", "openinference-anthropic.jsonl", "anthropic-sdk.jsonl", "traceloop-openai.jsonl"]
SLOS = {
    "processors": {
        "genai": {
            "slos": [
                {
                    "name": "chat-latency",
                    "objective": 0.99,
                    "latency_threshold_s": 0.05,
                    "match": {"operation": ["chat"]},
                }
            ]
        }
    }
}


def test_prometheus_reads_tokens_quantiles_slo_ratio_and_exemplars(
    start_prometheus: StartPrometheus, tmp_path: Path
) -> None:
    """Every figure Prometheus returns equals the sidecar's own exposition; exemplars link to traces."""
    requests = [
        ExportTraceServiceRequest.FromString(request) for name in FIXTURES for request in read_recorded(RECORDED / name)
    ]
    trace_ids = {
        span.trace_id.hex() for r in requests for rs in r.resource_spans for ss in rs.scope_spans for span in ss.spans
    }
    with run_sidecar(tmp_path / "sidecar", SLOS) as sidecar:
        prometheus = start_prometheus([sidecar.metrics])
        started = time.time()
        half = len(requests) // 2
        with grpc.insecure_channel(sidecar.grpc) as channel:
            send_requests(channel, [request.SerializeToString() for request in requests[:half]])
            prometheus.wait_for_query("sum(llm_requests_total)", predicate=lambda v: v > 0)
            time.sleep(2.5)  # let at least two scrapes see the first half, so rate() has an increase
            send_requests(channel, [request.SerializeToString() for request in requests[half:]])

        exposed = {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(sidecar.metrics_text())
            for sample in family.samples
        }
        expected_input = {
            dict(labels)["model"]: value
            for (name, labels), value in exposed.items()
            if name == "llm_tokens_total" and dict(labels)["type"] == "input"
        }
        assert expected_input, "the sidecar exposed no token counts"
        result = prometheus.wait_for_query(
            'sum by (model) (llm_tokens_total{type="input"})',
            predicate=lambda v: v == max(expected_input.values()),
        )
        assert {item["metric"]["model"]: float(item["value"][1]) for item in result} == expected_input

        rates = prometheus.wait_for_query(
            'sum by (model) (rate(llm_tokens_total{type="output"}[1m]))', predicate=lambda v: v > 0
        )
        assert all(float(item["value"][1]) >= 0 for item in rates)

        p95 = prometheus.query("histogram_quantile(0.95, sum by (le, model) (llm_request_duration_seconds_bucket))")
        assert p95 and all(0 < float(item["value"][1]) <= 300 for item in p95)

        good = exposed[("llm_slo_requests_total", (("outcome", "good"), ("slo", "chat-latency")))]
        bad = exposed[("llm_slo_requests_total", (("outcome", "bad"), ("slo", "chat-latency")))]
        slo = 'llm_slo_requests_total{slo="chat-latency"'
        ratio = prometheus.query(f'sum({slo},outcome="good"}}) / sum({slo}}})')
        assert float(ratio[0]["value"][1]) == pytest.approx(good / (good + bad))
        threshold_bucket = prometheus.query('count(llm_request_duration_seconds_bucket{le="0.05"})')
        assert float(threshold_bucket[0]["value"][1]) > 0, "the SLO threshold is not a bucket boundary"

        exemplars = prometheus.query_exemplars("llm_request_duration_seconds_bucket", started - 60, time.time() + 60)
        linked = {e["labels"]["trace_id"] for series in exemplars for e in series["exemplars"]}
        assert linked and linked <= trace_ids
