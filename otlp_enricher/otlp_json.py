"""OTLP/JSON → protobuf, and the Collector file exporter's recorded formats (the native core writes
OTLP/JSON: ``dataplane.to_json``).

OTLP/JSON is not protobuf's JSON mapping: trace and span ids are hex, not base64
(``docs/reference/protocols.md`` §2). ``json_format.ParseDict`` would silently base64-decode a hex
id into a 24-byte garbage id, so ids are converted by hand on the way in and out.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

_ID_KEYS = ("traceId", "spanId", "parentSpanId")
MAX_MESSAGE_BYTES = 64 << 20
"""The largest recorded request read (the receivers' default body limit)."""
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


def read_recorded(path: str | Path, max_message_bytes: int = MAX_MESSAGE_BYTES) -> Iterator[bytes]:
    """Yield each request of a recorded file, serialised as protobuf: the file exporter's JSON
    lines or length-prefixed proto (whose bytes are validated by whoever scans them).

    The file is read one request at a time: a line or message longer than ``max_message_bytes``
    is an :class:`OtlpDecodeError`, so memory stays a few times that whatever the file holds.
    """
    with open(path, "rb") as stream:
        head = stream.read(4)
        stream.seek(0)
        if head == _ZSTD_MAGIC:
            raise OtlpDecodeError(f"{path}: zstd-compressed; decompress it first (zstd -d)")
        if head.lstrip()[:1] in (b"{", b""):
            yield from _read_json_lines(stream, path, max_message_bytes)
        else:
            yield from _read_length_prefixed(stream, path, max_message_bytes)


def _read_json_lines(stream: BinaryIO, path: str | Path, limit: int) -> Iterator[bytes]:
    number = 0
    while line := stream.readline(limit + 1):
        number += 1
        if len(line) > limit:
            raise OtlpDecodeError(f"{path}:{number}: line longer than {limit} bytes")
        if not line.strip():
            continue
        try:
            yield decode_json_request(line).SerializeToString()
        except OtlpDecodeError as error:
            raise OtlpDecodeError(f"{path}:{number}: {error}") from error


def _read_length_prefixed(stream: BinaryIO, path: str | Path, limit: int) -> Iterator[bytes]:
    offset = 0
    while header := stream.read(4):
        if len(header) < 4:
            raise OtlpDecodeError(f"{path}: truncated length prefix at byte {offset}")
        size = int.from_bytes(header, "big")
        if size > limit:
            raise OtlpDecodeError(f"{path}: message at byte {offset} declares {size} bytes, more than {limit}")
        body = stream.read(size)
        if len(body) < size:
            raise OtlpDecodeError(f"{path}: message at byte {offset} is truncated ({len(body)} of {size} bytes)")
        yield body
        offset += 4 + size
