"""OTLP/gRPC receiver on a real loopback socket: answers per the OTLP spec, keeps serving."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2
from grpc_status import rpc_status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from otlp_enricher.otlp_protocol import EXPORT_METHOD
from tests.otlp_builders import openai_chat, request, span
from tests.receiver.conftest import Running, spans_in, start_receivers


def export(
    target: str, body: bytes, compression: grpc.Compression = grpc.Compression.NoCompression
) -> ExportTraceServiceResponse:
    """One raw Export call."""
    with grpc.insecure_channel(target, options=[("grpc.max_send_message_length", 200 * 1024 * 1024)]) as channel:
        call: grpc.UnaryUnaryMultiCallable[bytes, ExportTraceServiceResponse] = channel.unary_unary(
            EXPORT_METHOD, response_deserializer=ExportTraceServiceResponse.FromString
        )
        return call(body, timeout=10, compression=compression)


def good_request() -> bytes:
    """Two LLM spans and one HTTP span."""
    spans = [span(openai_chat(input_tokens=100, output_tokens=20)) for _ in range(2)]
    spans.append(span({"http.request.method": "GET"}))
    return request(spans).SerializeToString()


def test_full_success_counts_and_passes_every_span_on(running: Running) -> None:
    """A good request: empty partial_success, all three spans passed on, two LLM calls counted."""
    response = export(running.grpc_target, good_request(), grpc.Compression.Gzip)
    assert not response.HasField("partial_success")
    assert spans_in(running.exporter.batches) == 3
    assert (
        running.value("llm_requests_total", provider="openai", model="gpt-4o-2024-08-06", operation="chat", status="ok")
        == 2
    )
    assert running.value("llm_tokens_total", provider="openai", model="gpt-4o-2024-08-06", type="input") == 200


def test_partial_success_names_unusable_spans(running: Running) -> None:
    """A span with a negative token count is reported in partial_success, the rest go through."""
    body = request([span(openai_chat(input_tokens=-3)), span(openai_chat(input_tokens=1, output_tokens=1))])
    response = export(running.grpc_target, body.SerializeToString())
    assert response.partial_success.rejected_spans == 1
    assert "invalid_token_count" in response.partial_success.error_message
    assert running.value("otlp_enricher_spans_rejected_total", reason="invalid_token_count") == 1


@pytest.mark.parametrize("body", [b"\xff\xff\xff\xff", b"\x0a\x10\x0a\x05", b"\x0a\xff\xff\xff\xff\x0f"])
def test_undecodable_body_is_invalid_argument_and_server_keeps_serving(running: Running, body: bytes) -> None:
    """Truncated or corrupt protobuf → INVALID_ARGUMENT (permanent); the next good call succeeds."""
    with pytest.raises(grpc.RpcError) as raised:
        export(running.grpc_target, body)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "invalid OTLP protobuf" in (raised.value.details() or "")
    assert not export(running.grpc_target, good_request()).HasField("partial_success")


def test_backpressure_is_unavailable_with_retry_info(running: Running) -> None:
    """A full exporter → UNAVAILABLE carrying RetryInfo, the form the Collector retries."""
    running.exporter.refuse_for_s = 3.0
    with pytest.raises(grpc.RpcError) as raised:
        export(running.grpc_target, good_request())
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    status = rpc_status.from_call(raised.value)
    assert status is not None and status.code == code_pb2.UNAVAILABLE
    info = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(info)
    assert info.retry_delay.seconds == 3
    assert (
        running.value("llm_requests_total", provider="openai", model="gpt-4o-2024-08-06", operation="chat", status="ok")
        == 0
    )
    running.exporter.refuse_for_s = None
    export(running.grpc_target, good_request())
    assert (
        running.value("llm_requests_total", provider="openai", model="gpt-4o-2024-08-06", operation="chat", status="ok")
        == 2
    )


def test_messages_above_the_grpc_default_4_mib_are_accepted(running: Running) -> None:
    """The receive limit is raised to OTLP's recommended 64 MiB: a 6 MiB prompt goes through."""
    body = request([span({**openai_chat(input_tokens=1, output_tokens=1), "gen_ai.input.messages": "x" * (6 << 20)})])
    assert not export(running.grpc_target, body.SerializeToString()).HasField("partial_success")


def test_message_over_the_configured_limit_is_refused_and_server_keeps_serving() -> None:
    """Over max_recv_msg_size_mib → RESOURCE_EXHAUSTED (permanent per OTLP); serving continues."""
    for running in start_receivers(max_recv_mib=1):
        with pytest.raises(grpc.RpcError) as raised:
            export(running.grpc_target, request([span({"big": "x" * (2 << 20)})]).SerializeToString())
        assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert not export(running.grpc_target, good_request()).HasField("partial_success")


def test_hostile_attributes(running: Running) -> None:
    """10 000 attributes, wrong value types and a 1 MiB model name never crash the receiver."""
    many = {f"attr.{index}": index for index in range(10_000)}
    wrong_types = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": 42,
        "gen_ai.provider.name": ["x"],
        "gen_ai.usage.input_tokens": 5,
        "gen_ai.usage.output_tokens": 1,
    }
    huge_model = openai_chat(response_model="m" * (1 << 20), input_tokens=1, output_tokens=1)
    body = request(
        [span({**many, **openai_chat(input_tokens=1, output_tokens=1)}), span(wrong_types), span(huge_model)]
    )
    response = export(running.grpc_target, body.SerializeToString())
    assert not response.HasField("partial_success")
    assert spans_in(running.exporter.batches) == 3
