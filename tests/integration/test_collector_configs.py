"""The Collector configs in ``collector/`` are valid for the built Collector and do their job.

Each config is checked with ``otelcol validate``, then started on free ports and fed real
traffic: OTLP/gRPC exports built from the ``opentelemetry.proto`` messages, and Loki pushes in
both encodings the push API takes (JSON and snappy-compressed protobuf).
"""

from __future__ import annotations

import json
import secrets
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import grpc
import pytest
import snappy
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from otlp_enricher._proto import loki_push_pb2
from tests.net import free_port

from .conftest import StartCollector
from .tools import COLLECTOR_DIR, RunningCollector, read_json_lines, validate_collector_config, wait_until

pytestmark = pytest.mark.collector

#: Wait bound for data to travel through a started Collector into its output file.
DELIVERY_TIMEOUT_S = 30.0


def config_env(config: str, tmp_path: Path) -> dict[str, str]:
    """The environment each config in ``collector/`` needs to run here, on free local ports."""
    gateway = {
        "GATEWAY_GRPC_ENDPOINT": f"127.0.0.1:{free_port()}",
        "GATEWAY_HTTP_ENDPOINT": f"127.0.0.1:{free_port()}",
        "GATEWAY_STORAGE_DIR": str(tmp_path / f"{config}-queue"),
        "GATEWAY_METRICS_PORT": str(free_port()),
    }
    envs: dict[str, dict[str, str]] = {
        "gateway": {**gateway, "OTLP_ENRICHER_ENDPOINT": f"127.0.0.1:{free_port()}"},
        "loadbalancing": {
            **gateway,
            "OTLP_ENRICHER_REPLICAS": f"[127.0.0.1:{free_port()}, 127.0.0.1:{free_port()}]",
        },
        "tempo-peer": {
            "TEMPO_PEER_GRPC_ENDPOINT": f"127.0.0.1:{free_port()}",
            "TEMPO_PEER_HTTP_ENDPOINT": f"127.0.0.1:{free_port()}",
            "TEMPO_PEER_FILE": str(tmp_path / f"{config}-spans.jsonl"),
        },
        "loki-check": {
            "LOKI_CHECK_HTTP_ENDPOINT": f"127.0.0.1:{free_port()}",
            "LOKI_CHECK_FILE": str(tmp_path / f"{config}-logs.jsonl"),
        },
    }
    return envs[config]


CONFIGS = sorted(path.stem for path in COLLECTOR_DIR.glob("*.yaml") if path.name != "manifest.yaml")


def endpoint(env: Mapping[str, str], name: str) -> tuple[str, int]:
    """Split the ``host:port`` in ``env[name]``."""
    host, port = env[name].rsplit(":", 1)
    return host, int(port)


# --------------------------------------------------------------------------------------------
# OTLP helpers


def make_request(trace_id: str, span_ids: list[str], service: str = "checkout") -> ExportTraceServiceRequest:
    """An export request with one resource and one span per id, all in trace ``trace_id`` (hex)."""
    now_ns = time.time_ns()
    spans = [
        Span(
            trace_id=bytes.fromhex(trace_id),
            span_id=bytes.fromhex(span_id),
            name="chat gpt-4o-mini",
            kind=Span.SPAN_KIND_CLIENT,
            start_time_unix_nano=now_ns - 1_000_000_000,
            end_time_unix_nano=now_ns,
            attributes=[
                KeyValue(key="gen_ai.operation.name", value=AnyValue(string_value="chat")),
                KeyValue(key="gen_ai.request.model", value=AnyValue(string_value="gpt-4o-mini")),
            ],
        )
        for span_id in span_ids
    ]
    resource = Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value=service))])
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=resource,
                scope_spans=[ScopeSpans(scope=InstrumentationScope(name="test"), spans=spans)],
            )
        ]
    )


def export(address: tuple[str, int], request: ExportTraceServiceRequest) -> None:
    """Send ``request`` over OTLP/gRPC and require full success."""
    with grpc.insecure_channel(f"{address[0]}:{address[1]}") as channel:
        stub = TraceServiceStub(channel)  # type: ignore[no-untyped-call]  # generated code, no stubs
        response = stub.Export(request, timeout=10)
    assert response.partial_success.rejected_spans == 0, response


def spans_in(path: Path) -> list[dict[str, Any]]:
    """All spans in a file-exporter OTLP/JSON file."""
    return [
        span
        for batch in read_json_lines(path)
        for resource_spans in batch.get("resourceSpans", [])
        for scope_spans in resource_spans.get("scopeSpans", [])
        for span in scope_spans.get("spans", [])
    ]


def wait_for_spans(path: Path, trace_id: str, count: int) -> list[dict[str, Any]]:
    """Wait until ``path`` holds ``count`` spans of ``trace_id``; return them."""

    def arrived() -> list[dict[str, Any]] | None:
        spans = [span for span in spans_in(path) if span["traceId"] == trace_id]
        return spans if len(spans) >= count else None

    return wait_until(arrived, timeout_s=DELIVERY_TIMEOUT_S, what=f"{count} span(s) of {trace_id} in {path}")


# --------------------------------------------------------------------------------------------
# Loki push helpers


def loki_push(address: tuple[str, int], body: bytes, content_type: str) -> int:
    """POST a push body to ``/loki/api/v1/push``; return the HTTP status."""
    request = urllib.request.Request(
        f"http://{address[0]}:{address[1]}/loki/api/v1/push",
        data=body,
        headers={"Content-Type": content_type},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        status: int = response.status
        return status


def log_records_in(path: Path) -> list[dict[str, Any]]:
    """All log records in a file-exporter OTLP/JSON logs file."""
    return [
        record
        for batch in read_json_lines(path)
        for resource_logs in batch.get("resourceLogs", [])
        for scope_logs in resource_logs.get("scopeLogs", [])
        for record in scope_logs.get("logRecords", [])
    ]


def wait_for_log_line(path: Path, line: str) -> dict[str, Any]:
    """Wait until a record whose body is ``line`` is in ``path``; return it."""

    def arrived() -> dict[str, Any] | None:
        for record in log_records_in(path):
            if record.get("body", {}).get("stringValue") == line:
                return record
        return None

    return wait_until(arrived, timeout_s=DELIVERY_TIMEOUT_S, what=f"log line {line!r} in {path}")


def assert_no_deprecation_warnings(collector: RunningCollector) -> None:
    """The Collector logged no deprecation (``validate`` does not report renamed component types)."""
    log = collector.process.log_path.read_text(errors="replace")
    assert "deprecated" not in log.lower(), collector.process.log_tail()


# --------------------------------------------------------------------------------------------
# Tests


def test_every_config_has_a_test_environment() -> None:
    """A new config in collector/ must get an environment above, or the next test skips it."""
    assert CONFIGS == ["gateway", "loadbalancing", "loki-check", "tempo-peer"]


@pytest.mark.parametrize("config", CONFIGS)
def test_config_validates(otelcol_binary: Path, config: str, tmp_path: Path) -> None:
    """``otelcol validate`` accepts the config with the environment it documents."""
    result = validate_collector_config(otelcol_binary, COLLECTOR_DIR / f"{config}.yaml", config_env(config, tmp_path))
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"


@pytest.fixture
def tempo_peer(start_collector: StartCollector, tmp_path: Path) -> Iterator[tuple[tuple[str, int], Path]]:
    """A running tempo-peer Collector: its OTLP/gRPC address and its output file."""
    env = config_env("tempo-peer", tmp_path)
    grpc_address = endpoint(env, "TEMPO_PEER_GRPC_ENDPOINT")
    start_collector(
        COLLECTOR_DIR / "tempo-peer.yaml",
        env,
        wait_for=[grpc_address, endpoint(env, "TEMPO_PEER_HTTP_ENDPOINT")],
    )
    yield grpc_address, Path(env["TEMPO_PEER_FILE"])


def test_tempo_peer_writes_received_spans(tempo_peer: tuple[tuple[str, int], Path]) -> None:
    """A span exported over gRPC to tempo-peer lands in its file with the same hex ids."""
    address, output = tempo_peer
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    export(address, make_request(trace_id, [span_id]))

    (span,) = wait_for_spans(output, trace_id, 1)
    assert span["spanId"] == span_id
    assert span["name"] == "chat gpt-4o-mini"
    attributes = {item["key"]: item["value"] for item in span["attributes"]}
    assert attributes["gen_ai.request.model"] == {"stringValue": "gpt-4o-mini"}


def test_gateway_forwards_once_otlp_enricher_comes_up(start_collector: StartCollector, tmp_path: Path) -> None:
    """The gateway queues spans on disk while its downstream is down and delivers them later.

    A tempo-peer Collector plays otlp-enricher; it is started only after the span was accepted.
    """
    downstream = config_env("tempo-peer", tmp_path)
    gateway = {
        **config_env("gateway", tmp_path),
        "OTLP_ENRICHER_ENDPOINT": downstream["TEMPO_PEER_GRPC_ENDPOINT"],
    }
    gateway_collector = start_collector(
        COLLECTOR_DIR / "gateway.yaml",
        gateway,
        wait_for=[endpoint(gateway, "GATEWAY_GRPC_ENDPOINT"), endpoint(gateway, "GATEWAY_HTTP_ENDPOINT")],
    )
    trace_id = secrets.token_hex(16)
    export(endpoint(gateway, "GATEWAY_GRPC_ENDPOINT"), make_request(trace_id, [secrets.token_hex(8)]))
    assert any(Path(gateway["GATEWAY_STORAGE_DIR"]).iterdir()), "persistent queue file not created"

    start_collector(
        COLLECTOR_DIR / "tempo-peer.yaml",
        downstream,
        wait_for=[endpoint(downstream, "TEMPO_PEER_GRPC_ENDPOINT")],
    )
    wait_for_spans(Path(downstream["TEMPO_PEER_FILE"]), trace_id, 1)
    assert_no_deprecation_warnings(gateway_collector)


def test_load_balancing_keeps_each_trace_on_one_replica(start_collector: StartCollector, tmp_path: Path) -> None:
    """With routing_key traceID, all spans of a trace reach the same replica."""
    replicas = [config_env("tempo-peer", tmp_path / f"replica-{index}") for index in range(2)]
    for replica in replicas:
        Path(replica["TEMPO_PEER_FILE"]).parent.mkdir(parents=True, exist_ok=True)
        start_collector(
            COLLECTOR_DIR / "tempo-peer.yaml",
            replica,
            wait_for=[endpoint(replica, "TEMPO_PEER_GRPC_ENDPOINT")],
        )
    gateway = {
        **config_env("loadbalancing", tmp_path),
        "OTLP_ENRICHER_REPLICAS": ",".join(r["TEMPO_PEER_GRPC_ENDPOINT"] for r in replicas),
    }
    balancer = start_collector(
        COLLECTOR_DIR / "loadbalancing.yaml",
        gateway,
        wait_for=[endpoint(gateway, "GATEWAY_GRPC_ENDPOINT")],
    )

    traces = {secrets.token_hex(16): [secrets.token_hex(8) for _ in range(3)] for _ in range(8)}
    for trace_id, span_ids in traces.items():
        # One export per span, so the gateway has to route each span on its own.
        for span_id in span_ids:
            export(endpoint(gateway, "GATEWAY_GRPC_ENDPOINT"), make_request(trace_id, [span_id]))

    outputs = [Path(replica["TEMPO_PEER_FILE"]) for replica in replicas]

    def all_delivered() -> bool:
        return sum(len(spans_in(output)) for output in outputs) >= 8 * 3

    wait_until(all_delivered, timeout_s=DELIVERY_TIMEOUT_S, what="24 spans on the replicas")
    per_replica = [{span["traceId"] for span in spans_in(output)} for output in outputs]
    assert per_replica[0].isdisjoint(per_replica[1]), "a trace was split across replicas"
    assert per_replica[0] | per_replica[1] == set(traces)
    assert_no_deprecation_warnings(balancer)


@pytest.fixture
def loki_check(start_collector: StartCollector, tmp_path: Path) -> Iterator[tuple[tuple[str, int], Path]]:
    """A running loki-check Collector: its push API address and its output file."""
    env = config_env("loki-check", tmp_path)
    address = endpoint(env, "LOKI_CHECK_HTTP_ENDPOINT")
    start_collector(COLLECTOR_DIR / "loki-check.yaml", env, wait_for=[address])
    yield address, Path(env["LOKI_CHECK_FILE"])


def test_loki_check_accepts_json_push(loki_check: tuple[tuple[str, int], Path]) -> None:
    """A JSON push is accepted (204) and its line and timestamp reach the output file."""
    address, output = loki_check
    timestamp_ns = time.time_ns() - 5_000_000_000
    line = json.dumps({"trace_id": secrets.token_hex(16), "model": "gpt-4o-mini"})
    body = {
        "streams": [
            {
                "stream": {"service_name": "checkout", "source": "otlp-enricher"},
                "values": [[str(timestamp_ns), line]],
            }
        ]
    }
    assert loki_push(address, json.dumps(body).encode(), "application/json") == 204

    record = wait_for_log_line(output, line)
    assert record["timeUnixNano"] == str(timestamp_ns)


def test_loki_check_accepts_snappy_protobuf_push(loki_check: tuple[tuple[str, int], Path]) -> None:
    """A snappy (block format) protobuf push, Loki's default encoding, is accepted and decoded."""
    address, output = loki_check
    timestamp_ns = time.time_ns() - 3_000_000_000
    line = json.dumps({"trace_id": secrets.token_hex(16), "model": "claude-sonnet-4-5"})
    message = loki_push_pb2.PushRequest(
        streams=[
            {
                "labels": '{service_name="checkout", source="otlp-enricher"}',
                "entries": [
                    {
                        "timestamp": {
                            "seconds": timestamp_ns // 1_000_000_000,
                            "nanos": timestamp_ns % 1_000_000_000,
                        },
                        "line": line,
                    }
                ],
            }
        ]
    )
    body = snappy.compress(message.SerializeToString())  # block format, as Loki expects
    assert loki_push(address, body, "application/x-protobuf") == 204

    record = wait_for_log_line(output, line)
    assert record["timeUnixNano"] == str(timestamp_ns)
