"""OTLP/JSON ↔ protobuf, and the Collector file exporter's recorded formats.

OTLP/JSON is not protobuf's JSON mapping: trace and span ids are hex, not base64
(``shared/reference/protocols.md`` §2). ``json_format.ParseDict`` would silently base64-decode a hex
id into a 24-byte garbage id, so ids are converted by hand on the way in and out.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

_ID_KEYS = ("traceId", "spanId", "parentSpanId")
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class OtlpDecodeError(ValueError):
    """A body or file could not be decoded as OTLP traces; the message says where and why."""


def _convert_ids(document: Any, convert: Any) -> None:
    if not isinstance(document, dict):
        raise OtlpDecodeError("expected a JSON object with resourceSpans")
    for resource_spans in document.get("resourceSpans") or ():
        for scope_spans in resource_spans.get("scopeSpans") or ():
            for span in scope_spans.get("spans") or ():
                for key in _ID_KEYS:
                    if span.get(key):
                        span[key] = convert(span[key], key)
                for link in span.get("links") or ():
                    for key in ("traceId", "spanId"):
                        if link.get(key):
                            link[key] = convert(link[key], key)


def _hex_to_base64(value: Any, key: str) -> str:
    try:
        return base64.b64encode(bytes.fromhex(value)).decode("ascii")
    except (TypeError, ValueError) as error:
        raise OtlpDecodeError(f"{key} must be a hex string, got {str(value)[:64]!r}") from error


def decode_json_request(body: bytes) -> ExportTraceServiceRequest:
    """Parse an OTLP/JSON traces body (hex ids, integer enums, unknown fields ignored)."""
    try:
        document = orjson.loads(body)
        _convert_ids(document, _hex_to_base64)
        request = ExportTraceServiceRequest()
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except OtlpDecodeError:
        raise
    except (orjson.JSONDecodeError, json_format.ParseError, AttributeError, TypeError, ValueError) as error:
        raise OtlpDecodeError(f"invalid OTLP/JSON: {str(error)[:300]}") from error
    return request


def encode_json_request(request: ExportTraceServiceRequest) -> bytes:
    """Serialise as OTLP/JSON the way the Collector's file exporter writes it (one line, no newline).

    Built by hand from the fields OTLP defines: ``json_format.MessageToDict`` is ~10× slower and
    would write base64 ids.
    """
    return orjson.dumps({"resourceSpans": [_resource_spans(rs) for rs in request.resource_spans]})


def _resource_spans(resource_spans: Any) -> dict[str, Any]:
    result: dict[str, Any] = {
        "resource": _with_attributes({}, resource_spans.resource),
        "scopeSpans": [_scope_spans(ss) for ss in resource_spans.scope_spans],
    }
    if resource_spans.schema_url:
        result["schemaUrl"] = resource_spans.schema_url
    return result


def _scope_spans(scope_spans: Any) -> dict[str, Any]:
    scope = scope_spans.scope
    scope_json: dict[str, Any] = {"name": scope.name}
    if scope.version:
        scope_json["version"] = scope.version
    _with_attributes(scope_json, scope)
    result: dict[str, Any] = {"scope": scope_json, "spans": [_span(span) for span in scope_spans.spans]}
    if scope_spans.schema_url:
        result["schemaUrl"] = scope_spans.schema_url
    return result


def _span(span: Any) -> dict[str, Any]:
    result: dict[str, Any] = {
        "traceId": span.trace_id.hex(),
        "spanId": span.span_id.hex(),
        "name": span.name,
        "kind": span.kind,
        "startTimeUnixNano": str(span.start_time_unix_nano),
        "endTimeUnixNano": str(span.end_time_unix_nano),
    }
    if span.parent_span_id:
        result["parentSpanId"] = span.parent_span_id.hex()
    if span.trace_state:
        result["traceState"] = span.trace_state
    if span.flags:
        result["flags"] = span.flags
    _with_attributes(result, span)
    if span.events:
        result["events"] = [
            _with_attributes({"timeUnixNano": str(event.time_unix_nano), "name": event.name}, event)
            for event in span.events
        ]
    if span.dropped_events_count:
        result["droppedEventsCount"] = span.dropped_events_count
    if span.links:
        result["links"] = [_link(link) for link in span.links]
    if span.dropped_links_count:
        result["droppedLinksCount"] = span.dropped_links_count
    status = span.status
    if status.code or status.message:
        result["status"] = {key: value for key, value in (("code", status.code), ("message", status.message)) if value}
    return result


def _link(link: Any) -> dict[str, Any]:
    result: dict[str, Any] = {"traceId": link.trace_id.hex(), "spanId": link.span_id.hex()}
    if link.trace_state:
        result["traceState"] = link.trace_state
    if link.flags:
        result["flags"] = link.flags
    return _with_attributes(result, link)


def _with_attributes(target: dict[str, Any], owner: Any) -> dict[str, Any]:
    if owner.attributes:
        target["attributes"] = [{"key": kv.key, "value": _any_value(kv.value)} for kv in owner.attributes]
    if owner.dropped_attributes_count:
        target["droppedAttributesCount"] = owner.dropped_attributes_count
    return target


def _any_value(value: Any) -> dict[str, Any]:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return {"stringValue": value.string_value}
    if kind == "int_value":
        return {"intValue": str(value.int_value)}
    if kind == "bool_value":
        return {"boolValue": value.bool_value}
    if kind == "double_value":
        return {"doubleValue": value.double_value}
    if kind == "array_value":
        return {"arrayValue": {"values": [_any_value(item) for item in value.array_value.values]}}
    if kind == "kvlist_value":
        pairs = [{"key": kv.key, "value": _any_value(kv.value)} for kv in value.kvlist_value.values]
        return {"kvlistValue": {"values": pairs}}
    if kind == "bytes_value":
        return {"bytesValue": base64.b64encode(value.bytes_value).decode("ascii")}
    return {}


def decode_protobuf_request(body: bytes) -> ExportTraceServiceRequest:
    """Parse a binary OTLP traces body."""
    try:
        request: ExportTraceServiceRequest = ExportTraceServiceRequest.FromString(body)
    except DecodeError as error:
        raise OtlpDecodeError(f"invalid OTLP protobuf: {error}") from error
    return request


def read_recorded(path: str | Path) -> Iterator[ExportTraceServiceRequest]:
    """Yield each request of a recorded file: the file exporter's JSON lines or length-prefixed proto."""
    with open(path, "rb") as stream:
        head = stream.read(4)
        stream.seek(0)
        if head == _ZSTD_MAGIC:
            raise OtlpDecodeError(f"{path}: zstd-compressed; decompress it first (zstd -d)")
        if head.lstrip()[:1] in (b"{", b""):
            yield from _read_json_lines(stream, path)
        else:
            yield from _read_length_prefixed(stream, path)


def _read_json_lines(stream: BinaryIO, path: str | Path) -> Iterator[ExportTraceServiceRequest]:
    for number, line in enumerate(stream, 1):
        if not line.strip():
            continue
        try:
            yield decode_json_request(line)
        except OtlpDecodeError as error:
            raise OtlpDecodeError(f"{path}:{number}: {error}") from error


def _read_length_prefixed(stream: BinaryIO, path: str | Path) -> Iterator[ExportTraceServiceRequest]:
    offset = 0
    while header := stream.read(4):
        if len(header) < 4:
            raise OtlpDecodeError(f"{path}: truncated length prefix at byte {offset}")
        size = int.from_bytes(header, "big")
        body = stream.read(size)
        if len(body) < size:
            raise OtlpDecodeError(f"{path}: message at byte {offset} is truncated ({len(body)} of {size} bytes)")
        try:
            yield decode_protobuf_request(body)
        except OtlpDecodeError as error:
            raise OtlpDecodeError(f"{path}: message at byte {offset}: {error}") from error
        offset += 4 + size
