"""OTLP/JSON ↔ protobuf, and the Collector file exporter's recorded formats.

OTLP/JSON is not protobuf's JSON mapping: trace and span ids are hex, not base64
(``shared/reference/protocols.md`` §2). ``json_format.ParseDict`` would silently base64-decode a hex
id into a 24-byte garbage id, so ids are converted by hand on the way in and out.
"""

from __future__ import annotations

import base64
import binascii
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


def _base64_to_hex(value: str, key: str) -> str:
    return base64.b64decode(value).hex()


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
    """Serialise as OTLP/JSON the way the Collector's file exporter writes it (one line, no newline)."""
    document = json_format.MessageToDict(request, use_integers_for_enums=True)
    _convert_ids(document, _base64_to_hex)
    return orjson.dumps(document)


def decode_protobuf_request(body: bytes) -> ExportTraceServiceRequest:
    """Parse a binary OTLP traces body."""
    try:
        return ExportTraceServiceRequest.FromString(body)
    except DecodeError as error:
        raise OtlpDecodeError(f"invalid OTLP protobuf: {error}") from error


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
            raise OtlpDecodeError(
                f"{path}: message at byte {offset} is truncated ({len(body)} of {size} bytes)"
            )
        try:
            yield decode_protobuf_request(body)
        except OtlpDecodeError as error:
            raise OtlpDecodeError(f"{path}: message at byte {offset}: {error}") from error
        offset += 4 + size


def hex_id(raw: bytes) -> str:
    """Lower-case hex of a trace or span id (empty for an unset id)."""
    return binascii.hexlify(raw).decode("ascii")
