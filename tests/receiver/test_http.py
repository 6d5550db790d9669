"""OTLP/HTTP receiver on a real loopback socket: protobuf and JSON, gzip, and every error answer."""

from __future__ import annotations

import gzip
import http.client
import urllib.parse

import orjson
import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.otlp_builders import openai_chat, request, span
from tests.receiver.conftest import Running, spans_in, start_receivers

PROTOBUF = "application/x-protobuf"


def post(
    url: str, body: bytes, content_type: str = PROTOBUF, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """POST and return status, headers, body."""
    parsed = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port, timeout=10)
    try:
        connection.request("POST", parsed.path, body, {"Content-Type": content_type, **(headers or {})})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def llm_request() -> bytes:
    """One LLM span."""
    return request([span(openai_chat(input_tokens=10, output_tokens=2))]).SerializeToString()


def test_protobuf_and_gzip(running: Running) -> None:
    """http/protobuf with and without gzip → 200 with an ExportTraceServiceResponse."""
    for headers, body in (({}, llm_request()), ({"Content-Encoding": "gzip"}, gzip.compress(llm_request()))):
        status, answer_headers, answer = post(running.http_url, body, headers=headers)
        assert status == 200 and answer_headers["Content-Type"] == PROTOBUF
        assert not ExportTraceServiceResponse.FromString(answer).HasField("partial_success")
    assert (
        running.value("llm_requests_total", provider="openai", model="gpt-4o-2024-08-06", operation="chat", status="ok")
        == 2
    )


def test_json_with_hex_ids_as_the_collector_writes_them(running: Running) -> None:
    """OTLP/JSON: hex ids (not base64), integer enums, string int64s; the ids survive intact."""
    document = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]},
                "scopeSpans": [
                    {
                        "scope": {"name": "s"},
                        "spans": [
                            {
                                "traceId": "5B8EFFF798038103D269B633813FC60C",
                                "spanId": "eee19b7ec3c1b174",
                                "name": "chat gpt-4o",
                                "kind": 3,
                                "startTimeUnixNano": "1544712660000000000",
                                "endTimeUnixNano": 1544712661000000000,
                                "unknownField": True,
                                "attributes": [
                                    {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                                    {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
                                    {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "7"}},
                                    {"key": "gen_ai.usage.output_tokens", "value": {"intValue": 3}},
                                ],
                            }
                        ],
                    }
                ],
            }
        ]
    }
    status, headers, answer = post(running.http_url, orjson.dumps(document), "application/json")
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert orjson.loads(answer) == {}
    received = (
        ExportTraceServiceRequest.FromString(running.exporter.batches[0].raw).resource_spans[0].scope_spans[0].spans[0]
    )
    assert received.trace_id.hex() == "5b8efff798038103d269b633813fc60c"
    assert received.span_id.hex() == "eee19b7ec3c1b174"
    assert running.exporter.batches[0].calls[0].tokens.input == 7  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"\xff\xff\xff", PROTOBUF),
        (b'{"resourceSpans": [', "application/json"),
        (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}', "application/json"),
        (b'{"resourceSpans": "nope"}', "application/json"),
    ],
)
def test_undecodable_body_is_400_with_a_status_and_serving_continues(
    running: Running, body: bytes, content_type: str
) -> None:
    """400 carries a google.rpc.Status saying what was wrong; the next request succeeds."""
    status, _, answer = post(running.http_url, body, content_type)
    assert status == 400
    if content_type == PROTOBUF:
        assert status_pb2.Status.FromString(answer).message
    else:
        assert orjson.loads(answer)["message"]
    assert post(running.http_url, llm_request())[0] == 200


def test_unsupported_content_type_path_and_method(running: Running) -> None:
    """415 for other media types, 404 for other paths."""
    assert post(running.http_url, b"x", "text/plain")[0] == 415
    assert post(running.http_url.replace("/v1/traces", "/v1/logs"), llm_request())[0] == 404


def test_body_over_the_limit_is_413_also_after_decompression() -> None:
    """The cap applies to the decompressed size: a small gzip bomb is refused."""
    for running in start_receivers(max_body_mib=1):
        assert post(running.http_url, b"\0" * (2 << 20))[0] == 413
        bomb = gzip.compress(b"\0" * (8 << 20))
        assert len(bomb) < (1 << 20)
        assert post(running.http_url, bomb, headers={"Content-Encoding": "gzip"})[0] == 413
        assert post(running.http_url, llm_request())[0] == 200


def test_backpressure_is_503_with_retry_after(running: Running) -> None:
    """A full exporter → 503 and Retry-After in whole seconds, rounded up."""
    running.exporter.refuse_for_s = 2.5
    status, headers, _ = post(running.http_url, llm_request())
    assert status == 503 and headers["Retry-After"] == "3"
    assert spans_in(running.exporter.batches) == 0
