"""OTLP/JSON: hex ids both ways, and the native encoder agrees with protobuf's own mapping."""

from __future__ import annotations

import base64
import functools
import tracemalloc
from pathlib import Path

import orjson
import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otlp_enricher import replay
from otlp_enricher.dataplane import to_json
from otlp_enricher.otlp_json import OtlpDecodeError, decode_json_request, read_recorded
from tests.fixtures.otlp_files import json_line, proto_frame
from tests.otlp_builders import request, span


def rich_request() -> bytes:
    """Every AnyValue kind, events, links, status, parent id, flags, dropped counts."""
    first = span(
        {"s": "x", "i": -3, "d": 0.5, "b": True, "raw": b"\x00\xff", "list": [1, "a"], "map": {"k": [True]}},
        error=True,
        status_message="boom",
        events=[("exception", 0.1, {"exception.type": "E"})],
    )
    first.parent_span_id = b"\x01" * 8
    first.flags = 256
    first.trace_state = "a=b"
    first.dropped_attributes_count = 2
    link = first.links.add(trace_id=b"\x02" * 16, span_id=b"\x03" * 8, trace_state="c=d")
    link.attributes.add(key="l", value=first.attributes[0].value)
    result = request([first, span({})], resource={"host.name": "h"})
    result.resource_spans[0].scope_spans[0].scope.version = "1.0"
    result.resource_spans[0].schema_url = "https://opentelemetry.io/schemas/1.26.0"
    return result.SerializeToString()


def test_round_trip_is_lossless() -> None:
    """encode → decode gives back the identical message."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    original = ExportTraceServiceRequest.FromString(rich_request())
    assert decode_json_request(to_json(original.SerializeToString())) == original


def test_encoder_matches_protobuf_json_mapping_except_for_hex_ids() -> None:
    """Same document as MessageToDict with integer enums, once its base64 ids are made hex."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    original = ExportTraceServiceRequest.FromString(rich_request())
    reference = json_format.MessageToDict(original, use_integers_for_enums=True)
    for resource_spans in reference["resourceSpans"]:
        for scope_spans in resource_spans["scopeSpans"]:
            for item in scope_spans["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in item:
                        item[key] = base64.b64decode(item[key]).hex()
                for link in item.get("links", []):
                    for key in ("traceId", "spanId"):
                        link[key] = base64.b64decode(link[key]).hex()
    assert orjson.loads(to_json(original.SerializeToString())) == reference


@pytest.mark.parametrize(
    "body",
    [b"[]", b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"spanId": "xyz"}]}]}]}', b"not json"],
)
def test_bad_documents_raise_decode_errors(body: bytes) -> None:
    """Wrong shapes and non-hex ids are decode errors, not crashes."""
    with pytest.raises(OtlpDecodeError):
        decode_json_request(body)


@pytest.mark.parametrize("head", [b"{", b"\x01\x00\x00\x00"], ids=["json-lines", "length-prefixed"])
def test_recorded_files_are_read_one_bounded_request_at_a_time(tmp_path: Path, head: bytes) -> None:
    """A 16 MiB line (or message) past the limit is refused after reading about the limit: 1 GB of
    junk once cost 2.2 GB. The requests before it are yielded first, so replay keeps them."""
    path = tmp_path / "big"
    good = request([span({"gen_ai.operation.name": "chat"})]).SerializeToString()
    if head == b"{":
        prefix = json_line(ExportTraceServiceRequest.FromString(good))
    else:
        prefix = proto_frame(ExportTraceServiceRequest.FromString(good))
    junk_size = 16 << 20
    limit = 1 << 20
    with path.open("wb") as out:
        out.write(prefix + head)
        for _ in range(junk_size // (1 << 20)):
            out.write(b"x" * (1 << 20))
    read: list[bytes] = []
    tracemalloc.start()
    try:
        with pytest.raises(OtlpDecodeError, match=f"{path}:2: line longer|{path}: message at byte"):
            for body in read_recorded(path, max_message_bytes=limit):
                read.append(body)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert read == [good]
    assert peak < 4 * limit  # far below the 16 MiB of the file


def test_replay_passes_over_the_rest_of_a_file_after_an_oversized_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = request([span({"gen_ai.operation.name": "chat"})])
    path = tmp_path / "spans.jsonl"
    path.write_bytes(json_line(good) + b'{"resourceSpans": [' + b" " * (2 << 20) + b"]}\n" + json_line(good))
    monkeypatch.setattr(replay, "read_recorded", functools.partial(read_recorded, max_message_bytes=1 << 20))
    notes: list[str] = []
    assert list(replay.readable_requests([path], notes.append)) == [good.SerializeToString()]
    assert notes == [f"replay: skipped the rest of a file after request 1: {path}:2: line longer than 1048576 bytes"]
