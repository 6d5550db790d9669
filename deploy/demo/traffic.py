"""Demo traffic: synthetic LLM-call traces sent over OTLP/gRPC, as an instrumented app would.

Pipeline position: [this script] ──OTLP/gRPC──▶ Collector (collector/gateway.yaml) ──▶ otlp-enricher.

Every interval it sends a few traces, each a ``POST /chat`` server span with one OTel GenAI
client span (``gen_ai.*`` attributes, semantic conventions v1.37+): models ``gpt-4o-mini``
(openai) and ``claude-sonnet-4-5`` (anthropic), token usage with cache reads, time to first
chunk, and about 5 % failed calls (rate limits, timeouts) marked with span status ERROR and
``error.type``. Only the standard library, ``grpcio`` and ``opentelemetry-proto`` are used.

Usage: ``python traffic.py --endpoint otelcol:4317 [--interval-s 1] [--count N]``
"""

from __future__ import annotations

import argparse
import logging
import random
import secrets
import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

log = logging.getLogger("demo-traffic")


@dataclass(frozen=True)
class Model:
    """A model the demo calls, with a rough latency profile."""

    provider: str
    name: str
    response_name: str
    ttft_s: float
    per_token_s: float


MODELS = (
    Model("openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18", 0.35, 0.012),
    Model("anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5-20250929", 0.8, 0.02),
)
ERRORS = (("rate_limit_exceeded", "429"), ("timeout", "timeout"))
ERROR_PROBABILITY = 0.05


def attribute(key: str, value: str | int | float | Sequence[str]) -> KeyValue:
    """One OTLP attribute."""
    if isinstance(value, bool):
        raise TypeError(key)
    if isinstance(value, str):
        return KeyValue(key=key, value=AnyValue(string_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    array = ArrayValue(values=[AnyValue(string_value=item) for item in value])
    return KeyValue(key=key, value=AnyValue(array_value=array))


def llm_trace(rng: random.Random, now_ns: int) -> list[Span]:
    """One request trace: a server span and the LLM client call inside it."""
    model = rng.choice(MODELS)
    trace_id = secrets.token_bytes(16)
    root_id, call_id = secrets.token_bytes(8), secrets.token_bytes(8)
    input_tokens = rng.randint(200, 4000)
    cache_read = rng.choice((0, 0, input_tokens // 2))
    output_tokens = rng.randint(20, 600)
    ttft_s = model.ttft_s * rng.uniform(0.6, 2.5)
    failed = rng.random() < ERROR_PROBABILITY
    duration_s = ttft_s + output_tokens * model.per_token_s * rng.uniform(0.7, 1.5)
    if failed:
        duration_s = rng.uniform(0.05, 1.0)
    end_ns = now_ns - rng.randint(0, 50_000_000)
    start_ns = end_ns - int(duration_s * 1e9)

    attributes = [
        attribute("gen_ai.operation.name", "chat"),
        attribute("gen_ai.provider.name", model.provider),
        attribute("gen_ai.request.model", model.name),
        attribute("server.address", f"api.{model.provider}.com"),
    ]
    status = Status(code=Status.STATUS_CODE_UNSET)
    if failed:
        reason, error_type = rng.choice(ERRORS)
        attributes.append(attribute("error.type", error_type))
        status = Status(code=Status.STATUS_CODE_ERROR, message=reason)
    else:
        attributes += [
            attribute("gen_ai.response.model", model.response_name),
            attribute("gen_ai.response.id", f"resp_{secrets.token_hex(12)}"),
            attribute("gen_ai.response.finish_reasons", ["stop"]),
            attribute("gen_ai.usage.input_tokens", input_tokens),
            attribute("gen_ai.usage.output_tokens", output_tokens),
            attribute("gen_ai.usage.cache_read.input_tokens", cache_read),
            attribute("gen_ai.response.time_to_first_chunk", round(ttft_s, 4)),
        ]
    call = Span(
        trace_id=trace_id,
        span_id=call_id,
        parent_span_id=root_id,
        name=f"chat {model.name}",
        kind=Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=start_ns,
        end_time_unix_nano=end_ns,
        attributes=attributes,
        status=status,
    )
    root = Span(
        trace_id=trace_id,
        span_id=root_id,
        name="POST /chat",
        kind=Span.SPAN_KIND_SERVER,
        start_time_unix_nano=start_ns - 2_000_000,
        end_time_unix_nano=end_ns + 1_000_000,
        attributes=[
            attribute("http.request.method", "POST"),
            attribute("http.route", "/chat"),
            attribute("http.response.status_code", 500 if failed else 200),
        ],
        status=status if failed else Status(code=Status.STATUS_CODE_UNSET),
    )
    return [root, call]


def make_request(rng: random.Random, traces: int) -> ExportTraceServiceRequest:
    """One export with ``traces`` request traces from the demo service."""
    now_ns = time.time_ns()
    spans = [span for _ in range(traces) for span in llm_trace(rng, now_ns)]
    resource = Resource(
        attributes=[
            attribute("service.name", "demo-chat"),
            attribute("deployment.environment", "demo"),
        ]
    )
    scope = InstrumentationScope(name="otlp-enricher.demo.traffic", version="1")
    return ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(resource=resource, scope_spans=[ScopeSpans(scope=scope, spans=spans)])]
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Send traffic until SIGTERM/SIGINT or ``--count`` exports; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--endpoint", default="otelcol:4317", help="OTLP/gRPC host:port")
    parser.add_argument("--interval-s", type=float, default=1.0, help="seconds between exports")
    parser.add_argument("--count", type=int, default=0, help="stop after this many exports (0 = never)")
    parser.add_argument("--seed", type=int, default=None, help="random seed, for repeatable runs")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    rng = random.Random(args.seed)
    sent = failures = 0
    with grpc.insecure_channel(args.endpoint) as channel:
        stub = TraceServiceStub(channel)  # type: ignore[no-untyped-call]  # generated code, no stubs
        while not stop.is_set() and (args.count == 0 or sent + failures < args.count):
            request = make_request(rng, rng.randint(1, 3))
            try:
                stub.Export(request, timeout=10, wait_for_ready=True)
                sent += 1
            except grpc.RpcError as exc:
                failures += 1
                log.warning("export failed: %s", exc.code() if isinstance(exc, grpc.Call) else exc)
            if sent % 60 == 1:
                log.info("sent %d exports (%d failed) to %s", sent, failures, args.endpoint)
            stop.wait(args.interval_s)
    log.info("stopped after %d exports (%d failed)", sent, failures)
    return 0 if failures == 0 or sent > 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
