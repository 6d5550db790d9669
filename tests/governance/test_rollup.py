"""Cost per trace and per conversation: sums, the quiet period, bounded memory, and the Loki stream."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc
import orjson
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client import CollectorRegistry

from otlp_enricher.config import load_config, parse_config
from otlp_enricher.governance.rollup import TraceRollup
from otlp_enricher.governance.settings import RollupConfig
from otlp_enricher.model import LLMCall, Tokens
from otlp_enricher.otlp_json import read_recorded
from otlp_enricher.replay import send_requests
from otlp_enricher.service import build_metrics, build_pipeline
from otlp_enricher.telemetry.metrics import Metrics
from tests.doubles import llm_call
from tests.faults.harness import InProcess
from tests.peers.fake_loki import FakeLoki

RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "recorded"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Collect:
    """A sink that keeps every call it is given."""

    def __init__(self) -> None:
        self.calls: list[LLMCall] = []

    def consume(self, calls: Sequence[LLMCall]) -> None:
        self.calls.extend(calls)


def metrics() -> tuple[Metrics, CollectorRegistry]:
    """Fresh metrics on a fresh registry."""
    registry = CollectorRegistry()
    return build_metrics(load_config(None, environ={}), registry), registry


def call(trace: bytes, cost: float | None, session: str = "", start_s: float = 0.0, **kw: Any) -> LLMCall:
    """A priced (or unpriced, cost None) call of ``trace``."""
    result = llm_call(
        trace_id=trace,
        span_id=os.urandom(8),
        start_ns=int(start_s * 1e9),
        end_ns=int((start_s + 2) * 1e9),
        service="agent",
        request_model=kw.get("model", "gpt-4o"),
        status=kw.get("status", "ok"),
        vocabulary="otel",
        tokens=Tokens(input=100, output=10),
        session_id=session,
    )
    result.cost_usd = cost
    result.cost_source = "price_table" if cost is not None else "unpriced"
    return result


def test_a_trace_is_summed_and_emitted_once_quiet_for_idle_s() -> None:
    """Nothing before idle_s of quiet; then one record with the sums; the histogram gets the total."""
    clock, (m, registry) = Clock(), metrics()
    rollup = TraceRollup(RollupConfig(idle_s=30), m, clock)
    trace = bytes(range(16))
    rollup.consume([call(trace, 0.01, start_s=0), call(trace, 0.02, start_s=5, model="gpt-4o-mini")])
    clock.now += 20
    rollup.consume([call(trace, 0.005, start_s=30)])
    clock.now += 29
    assert rollup.due() == []
    clock.now += 2
    (summary,) = rollup.due()
    assert summary["trace_id"] == trace.hex() and summary["calls"] == 3
    assert abs(summary["cost_usd"] - 0.035) < 1e-12
    assert summary["tokens"]["input"] == 300 and summary["tokens"]["output"] == 30
    assert summary["models"] == ["gpt-4o", "gpt-4o-mini"] and summary["duration_s"] == 32.0
    assert registry.get_sample_value("llm_trace_cost_usd_count") == 1
    assert registry.get_sample_value("llm_trace_cost_usd_bucket", {"le": "0.05"}) == 1
    assert registry.get_sample_value("llm_trace_cost_usd_bucket", {"le": "0.025"}) == 0
    assert rollup.due() == []


def test_conversations_span_traces_and_unpriced_traces_stay_out_of_the_histogram() -> None:
    """A session id sums across traces; a trace with an unpriced call says so and is not observed."""
    clock, (m, registry) = Clock(), metrics()
    rollup = TraceRollup(RollupConfig(idle_s=1), m, clock)
    a, b = b"a" * 16, b"b" * 16
    rollup.consume([call(a, 0.01, "conv-1"), call(b, 0.02, "conv-1"), call(b, None, "conv-1")])
    clock.now += 5
    records = {(r["kind"], r.get("trace_id") or r["conversation_id"]): r for r in rollup.due()}
    conversation = records[("conversation_summary", "conv-1")]
    assert conversation["calls"] == 3 and conversation["traces"] == 2 and conversation["unpriced_calls"] == 1
    assert abs(conversation["cost_usd"] - 0.03) < 1e-12
    assert records[("trace_summary", b.hex())]["unpriced_calls"] == 1
    assert registry.get_sample_value("llm_trace_cost_usd_count") == 1  # only trace a


def test_open_keys_are_bounded_and_evictions_counted() -> None:
    """Past max_open the least recently active trace is emitted early, marked evicted."""
    clock, (m, registry) = Clock(), metrics()
    rollup = TraceRollup(RollupConfig(idle_s=60, max_open=2), m, clock)
    traces = [bytes([i]) * 16 for i in range(4)]
    for trace in traces:
        rollup.consume([call(trace, 0.01)])
        clock.now += 1
    early = rollup.due()
    assert [r["trace_id"] for r in early] == [traces[0].hex(), traces[1].hex()]
    assert all(r["evicted"] for r in early)
    assert registry.get_sample_value("otlp_enricher_trace_rollups_evicted_total") == 2
    assert registry.get_sample_value("otlp_enricher_trace_rollups_open") == 2
    assert [r["trace_id"] for r in rollup.due(everything=True)] == [traces[2].hex(), traces[3].hex()]


def agent_run() -> tuple[bytes, list[bytes]]:
    """The recorded calls of otel-openai-v2 (real instrumentation), re-parented into one trace: one agent run."""
    trace = bytes.fromhex("4bf92f3577b34da6a3ce929d0e0e4736")
    requests = []
    for raw in read_recorded(RECORDED / "otel-openai-v2.jsonl"):
        request = ExportTraceServiceRequest.FromString(raw)
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    span.trace_id = trace
        requests.append(request.SerializeToString())
    return trace, requests


def test_the_summary_of_a_recorded_agent_run_carries_the_sum_of_its_calls_costs() -> None:
    """Through the real pipeline: the summary's cost is the sum of what each call was priced at."""
    config = load_config(None, environ={})
    registry = CollectorRegistry()
    m = build_metrics(config, registry)
    clock, seen = Clock(), Collect()
    rollup = TraceRollup(RollupConfig(idle_s=5), m, clock)
    pipeline = build_pipeline(config, m, (seen, rollup))
    trace, requests = agent_run()

    async def replay() -> None:
        for request in requests:
            await pipeline.export(request, "grpc")

    asyncio.run(replay())
    clock.now += 10
    (summary,) = [r for r in rollup.due() if r["kind"] == "trace_summary"]
    priced = [c.cost_usd for c in seen.calls if c.cost_usd is not None]
    assert len(seen.calls) >= 3 and len(priced) >= 3
    assert summary["unpriced_calls"] == sum(c.cost_source == "unpriced" for c in seen.calls)
    assert summary["errors"] == sum(c.status == "error" for c in seen.calls)
    assert summary["trace_id"] == trace.hex() and summary["calls"] == len(seen.calls)
    assert abs(summary["cost_usd"] - sum(priced)) < 1e-9
    exported = sum(s.value for f in registry.collect() for s in f.samples if s.name == "llm_cost_usd_total")
    assert abs(summary["cost_usd"] - exported) < 1e-9, "the summary disagrees with llm_cost_usd_total"
    assert summary["tokens"]["input"] == sum(c.tokens.input for c in seen.calls if c.tokens)


def test_the_service_pushes_trace_summaries_to_the_loki_stream(tmp_path: Path) -> None:
    """A running sidecar sends the agent run's summary to Loki as a kind=trace_summary stream."""
    loki = FakeLoki().start()
    text = f"""
receivers: {{otlp: {{protocols: {{grpc: {{endpoint: "127.0.0.1:0"}}}}}}}}
processors: {{genai: {{rollup: {{idle_s: 0.2}}}}}}
exporters:
  prometheus: {{endpoint: "127.0.0.1:0"}}
  loki: {{endpoint: "{loki.url}/loki/api/v1/push", batch: {{timeout: 0.05}}}}
storage: {{directory: "{tmp_path}"}}
"""
    sidecar = InProcess(parse_config(text, "t.yaml", {}))
    try:
        trace, requests = agent_run()
        with grpc.insecure_channel(sidecar.target) as channel:
            send_requests(channel, requests)

        def summaries(peer: FakeLoki) -> bool:
            return any('"kind":"trace_summary"' in entry.line for entry in peer.entries.values())

        assert loki.wait_until(summaries, timeout_s=20), "no trace summary reached Loki"
    finally:
        sidecar.stop()
        loki.stop()
    (entry,) = [e for e in loki.entries.values() if '"kind":"trace_summary"' in e.line]
    assert 'kind="trace_summary"' in entry.labels and 'service="' in entry.labels
    record = orjson.loads(entry.line)
    assert record["trace_id"] == trace.hex() and record["calls"] >= 3
