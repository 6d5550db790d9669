"""The attribute normaliser: scan → recognise → read → enrich (price, rates, SLOs) → metrics, per span.

The input is a small program that builds one span (see :func:`build`): which instrumentation scope,
status, times, name, and attributes drawn from the keys the rules read (``semconv/candidates.py``) with
values of any OTLP type, nested, empty or very long. Seeds are the recorded LLM spans written in
that form (:func:`encode`). Property: ``Pipeline.export`` of a well-formed request never raises;
unusable LLM data is a rejected span (``partial_success``), not an error.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import struct
from collections.abc import Sequence
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from prometheus_client import CollectorRegistry

from otlp_enricher.config import parse_config
from otlp_enricher.model import LLMCall
from otlp_enricher.semconv import candidates, keys
from otlp_enricher.service import build_metrics, build_pipeline
from tests.fuzz.seeds import protobuf_requests

MAX_LEN = 1 << 13
SCOPES = (*candidates.LLM_SCOPE_PREFIXES, "test")
KEYS = tuple(sorted(candidates.READ_KEYS | {"service.name"}))
EVENTS = tuple(sorted(keys.FIRST_CHUNK_EVENTS | keys.CONTENT_EVENTS | {"exception"}))
_EVENT = 254  # key byte: an event follows instead of an attribute
_RAW_KEY = 255  # key byte: the key is a text that follows
_DEPTH = 4
_CONFIG = parse_config(
    "processors: {genai: {slos: [{name: s, objective: 0.9, latency_threshold_s: 2, ttft_threshold_s: 0.5}]}}",
    "fuzz",
    {},
)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def more(self) -> bool:
        return self.at < len(self.data)

    def take(self, size: int) -> bytes:
        chunk = self.data[self.at : self.at + size]
        self.at += size
        return chunk.ljust(size, b"\0")

    def byte(self) -> int:
        return self.take(1)[0]

    def text(self) -> str:
        return self.take(self.byte()).decode("utf-8", "replace")


def _value(reader: _Reader, depth: int) -> AnyValue:
    kind = reader.byte() % 9
    value = AnyValue()
    if kind == 0 or (kind in (5, 6) and depth >= _DEPTH):
        value.string_value = reader.text()
    elif kind == 1:
        value.int_value = struct.unpack("<q", reader.take(8))[0]
    elif kind == 2:
        value.double_value = struct.unpack("<d", reader.take(8))[0]
    elif kind == 3:
        value.bool_value = bool(reader.byte() & 1)
    elif kind == 4:
        value.bytes_value = reader.take(reader.byte())
    elif kind == 5:
        value.array_value.values.extend(_value(reader, depth + 1) for _ in range(reader.byte() % 5))
    elif kind == 6:
        for _ in range(reader.byte() % 5):
            value.kvlist_value.values.add(key=reader.text()).value.CopyFrom(_value(reader, depth + 1))
    elif kind == 7:
        value.string_value = reader.text() * (reader.byte() * 8)  # long values, cheaply
    return value  # kind 8: an empty AnyValue


def _key(reader: _Reader, index: int) -> str:
    return reader.text() if index == _RAW_KEY else KEYS[index % len(KEYS)]


def build(data: bytes, span_number: int = 1) -> ExportTraceServiceRequest:
    """The request ``data`` describes: scope, status, start, end, name, then attributes and events;
    ``span_number`` makes the span id (de-duplication would hide a span seen before)."""
    reader = _Reader(data)
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.add(key="service.name").value.string_value = "fuzz"
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = SCOPES[reader.byte() % len(SCOPES)]
    span = scope_spans.spans.add(
        trace_id=b"\x01" * 16, span_id=span_number.to_bytes(8, "big"), kind=Span.SPAN_KIND_CLIENT
    )
    span.status.code = Status.StatusCode.ValueType(reader.byte() % 3)
    span.start_time_unix_nano, span.end_time_unix_nano = struct.unpack("<QQ", reader.take(16))
    span.name = reader.text()
    while reader.more():
        index = reader.byte()
        if index == _EVENT:
            event = span.events.add(name=EVENTS[reader.byte() % len(EVENTS)])
            event.time_unix_nano = struct.unpack("<Q", reader.take(8))[0]
            event.attributes.add(key=_key(reader, reader.byte())).value.CopyFrom(_value(reader, 0))
        else:
            span.attributes.add(key=_key(reader, index)).value.CopyFrom(_value(reader, 0))
    return request


def _text(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return bytes([min(len(raw), 255)]) + raw[:255]


def _encode_value(value: AnyValue, depth: int = 0) -> bytes:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return b"\0" + _text(value.string_value)
    if kind == "int_value":
        return b"\1" + struct.pack("<q", value.int_value)
    if kind == "double_value":
        return b"\2" + struct.pack("<d", value.double_value)
    if kind == "bool_value":
        return b"\3" + bytes([value.bool_value])
    if kind == "bytes_value":
        return b"\4" + _text(value.bytes_value)
    if kind == "array_value" and depth < _DEPTH:
        items = value.array_value.values[:4]
        return b"\5" + bytes([len(items)]) + b"".join(_encode_value(item, depth + 1) for item in items)
    if kind == "kvlist_value" and depth < _DEPTH:
        pairs = value.kvlist_value.values[:4]
        return b"\6" + bytes([len(pairs)]) + b"".join(_text(p.key) + _encode_value(p.value, depth + 1) for p in pairs)
    return b"\x08"


def _encode_attribute(attribute: KeyValue) -> bytes:
    key = attribute.key
    head = bytes([KEYS.index(key)]) if key in KEYS else bytes([_RAW_KEY]) + _text(key)
    return head + _encode_value(attribute.value)


def encode(span: Span, scope: str) -> bytes:
    """``span`` written in :func:`build`'s form (values cut to what the form holds)."""
    scope_index = next((i for i, prefix in enumerate(SCOPES) if scope.startswith(prefix)), len(SCOPES) - 1)
    out = [
        bytes([scope_index, span.status.code]),
        struct.pack("<QQ", span.start_time_unix_nano, span.end_time_unix_nano),
    ]
    out.append(_text(span.name))
    out.extend(_encode_attribute(attribute) for attribute in span.attributes)
    for event in span.events:
        if event.name in EVENTS:
            out.append(bytes([_EVENT, EVENTS.index(event.name)]) + struct.pack("<Q", event.time_unix_nano))
            out.append(_encode_attribute(event.attributes[0]) if event.attributes else bytes([0, 8]))
    return b"".join(out)


def seeds() -> list[bytes]:
    """Every recorded span that carries an LLM marker key, in :func:`build`'s form."""
    found = []
    for raw in protobuf_requests():
        for resource_spans in ExportTraceServiceRequest.FromString(raw).resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    if any(attribute.key in candidates.MARKER_KEYS for attribute in span.attributes):
                        found.append(encode(span, scope_spans.scope.name))
    return found


class _Calls:
    def __init__(self) -> None:
        self.seen = 0

    def consume(self, calls: Sequence[LLMCall]) -> None:
        self.seen += len(calls)
        for call in calls:
            for number in (call.cost_usd, call.time_per_output_token_s, call.output_tokens_per_second):
                assert number is None or not math.isnan(number), f"NaN derived for {call!r}"


_SINK = _Calls()
_PIPELINE = build_pipeline(_CONFIG, build_metrics(_CONFIG, CollectorRegistry()), [_SINK])
_LOOP = asyncio.new_event_loop()
_SPAN_NUMBERS = itertools.count(1)


def check(data: bytes) -> bool:
    """Run the span ``data`` describes through the pipeline; raise on any error."""
    before = _SINK.seen
    raw: Any = build(data, next(_SPAN_NUMBERS)).SerializeToString()
    _LOOP.run_until_complete(_PIPELINE.export(raw, "fuzz"))
    return _SINK.seen > before
