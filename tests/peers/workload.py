"""Requests, configs and pipelines for exporter and fault tests: LLM spans carrying secrets."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client import CollectorRegistry

from otlp_enricher.config import Config, parse_config
from otlp_enricher.model import LLMCall
from otlp_enricher.pipeline import Pipeline, SpanBatch
from otlp_enricher.service import build_metrics, build_pipeline
from otlp_enricher.telemetry.metrics import Metrics
from tests.otlp_builders import START_NS, openai_chat, request, span

SECRET_EMAIL = "jane.roe@example.com"
SECRET_KEY = "sk-proj-" + "Q7x" * 12
SECRET_CARD = "4111-1111-1111-1111"
SECRETS = (SECRET_EMAIL, SECRET_KEY, SECRET_CARD, "Bearer abcdefghijklmnopqrstuv0123")


def config_text(
    storage: Path,
    loki_url: str = "",
    tempo_endpoint: str = "",
    extra_loki: str = "",
    extra_tempo: str = "",
    extra: str = "",
    fsync: str = "batch",
    max_spool_bytes: int = 64 << 20,
    grpc_port: int = 0,
) -> str:
    """A YAML config on 127.0.0.1 ports (0 unless given) with fast retries, pointing at the peers."""
    retry = "retry_on_failure: {initial_interval: 0.05, max_interval: 0.5, randomization_factor: 0.2}"
    exporters = ["  prometheus: {endpoint: '127.0.0.1:0'}"]
    if loki_url:
        exporters.append(
            f"  loki: {{endpoint: '{loki_url}', tenant_id: team-a, {retry}, "
            f"batch: {{max_lines: 200, timeout: 0.05}}, labels: {{environment: test}}{extra_loki}}}"
        )
    if tempo_endpoint:
        exporters.append(f"  tempo: {{endpoint: '{tempo_endpoint}', tls: {{insecure: true}}, {retry}{extra_tempo}}}")
    exporter_lines = "\n".join(exporters)
    return f"""
receivers:
  otlp:
    protocols:
      grpc: {{endpoint: '127.0.0.1:{grpc_port}'}}
processors:
  genai:
    slos: [{{name: fast, objective: 0.9, latency_threshold_s: 2}}]
  redaction:
    user_id: hash
    hash_key: test-key
exporters:
{exporter_lines}
storage: {{directory: '{storage}', fsync: {fsync}, max_spool_bytes: {max_spool_bytes}}}
service: {{shutdown_timeout_s: 5, telemetry: {{logs: {{level: info, encoding: json}}}}}}
{extra}
"""


def make_config(storage: Path, **kwargs: Any) -> Config:
    """Parsed :func:`config_text`."""
    return parse_config(config_text(storage, **kwargs), "test", {})


def make_pipeline(config: Config) -> tuple[Pipeline, Metrics, CollectorRegistry]:
    """A pipeline without exporters (for ``recognise``), on a fresh registry."""
    registry = CollectorRegistry()
    metrics = build_metrics(config, registry)
    return build_pipeline(config, metrics), metrics, registry


def llm_attributes(index: int, with_secrets: bool = True) -> dict[str, Any]:
    """An OpenAI chat span's attributes, content in OTel message form, secrets in the prompt."""
    prompt = f"call {index}: mail {SECRET_EMAIL}, key {SECRET_KEY}, card {SECRET_CARD}" if with_secrets else "hi"
    messages = [{"role": "user", "parts": [{"type": "text", "content": prompt}]}]
    answer = [{"role": "assistant", "parts": [{"type": "text", "content": f"ok {index}"}], "finish_reason": "stop"}]
    return {
        **openai_chat(input_tokens=100 + index, output_tokens=20),
        "gen_ai.input.messages": orjson.dumps(messages).decode(),
        "gen_ai.output.messages": orjson.dumps(answer).decode(),
        "gen_ai.response.finish_reasons": ["stop"],
        "user.id": f"user-{index % 3}",
        "session.id": f"session-{index % 2}",
    }


def mixed_request(llm: int, plain: int, seed: int = 0) -> ExportTraceServiceRequest:
    """``llm`` LLM spans and ``plain`` ordinary spans, all with fresh ids, in one request."""
    spans = [span(llm_attributes(seed + i), start_ns=START_NS + (seed + i) * 1000) for i in range(llm)]
    spans += [span({"http.route": "/cart"}, trace_id=os.urandom(16)) for _ in range(plain)]
    return request(spans)


def batch_of(pipeline: Pipeline, message: ExportTraceServiceRequest) -> tuple[SpanBatch, list[LLMCall]]:
    """What the pipeline hands span exporters for ``message``."""
    data = message.SerializeToString()
    calls, outcome = pipeline.recognise(data)
    return SpanBatch(data, calls, outcome.span_count), calls


def span_keys(message: ExportTraceServiceRequest) -> set[tuple[bytes, bytes]]:
    """(trace id, span id) of every span in ``message``."""
    return {
        (bytes(s.trace_id), bytes(s.span_id))
        for rs in message.resource_spans
        for ss in rs.scope_spans
        for s in ss.spans
    }
