"""A large request is processed in parts: every span passes once, memory stays bounded, and a
malformed byte anywhere refuses the whole request before anything is handed to an exporter."""

from __future__ import annotations

import asyncio

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client import CollectorRegistry

from otlp_enricher.config import parse_config
from otlp_enricher.otlp_json import OtlpDecodeError
from otlp_enricher.pipeline import PART_BYTES, PART_SPANS
from otlp_enricher.service import build_metrics, build_pipeline
from tests.peers.workload import mixed_request
from tests.test_pipeline_dedupe import Calls, Spans


def _large() -> bytes:
    """Over PART_BYTES and PART_SPANS: 80 requests of 80 LLM + 20 plain spans, concatenated."""
    body = b"".join(mixed_request(80, 20, seed=i * 100).SerializeToString() for i in range(80))
    assert len(body) > PART_BYTES
    return body


def test_a_large_request_passes_every_span_and_call_once_in_parts() -> None:
    """8 000 spans (6 400 calls) arrive in more than one part and are all accounted for."""
    config = parse_config("", "test", {})
    registry = CollectorRegistry()
    spans, calls = Spans(), Calls()
    pipeline = build_pipeline(config, build_metrics(config, registry), span_exporters=[spans], call_exporters=[calls])
    outcome = asyncio.run(pipeline.export(_large(), "grpc"))
    assert outcome.span_count == spans.spans == 8_000 and spans.calls == len(calls.accepted) == 6_400
    assert PART_SPANS < 6_000  # so it went in parts
    assert registry.get_sample_value("otlp_enricher_spans_received_total", {"transport": "grpc"}) == 8_000


def test_a_malformed_large_request_hands_nothing_to_the_exporters() -> None:
    """A bad byte near the end: refused as a whole (INVALID_ARGUMENT upstream), nothing written."""
    config = parse_config("", "test", {})
    spans, calls = Spans(), Calls()
    pipeline = build_pipeline(
        config, build_metrics(config, CollectorRegistry()), span_exporters=[spans], call_exporters=[calls]
    )
    tail = ExportTraceServiceRequest.FromString(mixed_request(1, 0).SerializeToString()).SerializeToString()
    broken = _large() + tail[:-3]
    with pytest.raises(OtlpDecodeError):
        asyncio.run(pipeline.export(broken, "grpc"))
    assert spans.spans == 0 and calls.accepted == []
