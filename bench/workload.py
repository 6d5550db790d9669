"""The benchmark's requests: OTLP Export bodies built from the spans of real instrumentations.

LLM spans are the ones recorded in ``tests/fixtures/recorded`` (OTel openai-v2, OpenInference,
OpenLLMetry, the anthropic SDK's own tracing), each with its resource and scope; the other spans
are HTTP server and database client spans shaped like the OTel HTTP and DB conventions. A
:class:`RequestShape` says how many spans a request carries and which share are LLM calls.

Every request must be new to the system under test, as real traffic is: fresh trace ids, and
every prompt and completion text unique, so no cache or de-duplication can help. Building a
request from protobuf objects each time would make the load process the bottleneck, so a
:class:`RequestFactory` serialises one template per shape with an 8-character ASCII sentinel
that starts every trace id and sits inside every content string, splits the template there once,
and joins the pieces with a per-request value of the same length (one ``bytes.join``, a memory
copy): every length prefix stays valid, every string stays valid UTF-8.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Span

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "recorded"
#: The recordings the workload is built from: fixed, so benchmark figures stay comparable as
#: recordings are added (later ones also hold HTTP-client, agent and tool spans that are no call).
BENCH_FIXTURES = (
    "anthropic-sdk",
    "openinference-anthropic",
    "openinference-openai",
    "otel-openai-v2",
    "traceloop-anthropic",
    "traceloop-anthropic-doubled",
    "traceloop-openai",
)
#: The scope of the recorder's own scenario spans, which are not part of what an app emits.
RECORDER_SCOPE = "otlp-enricher.fixture-recorder"
#: Starts every trace id and sits in every content string of a template; replaced per request.
SENTINEL = b"qZ8vKx3W"
#: Digits of the per-request value (8 base-36 characters: 2 of salt, 6 of request number).
BASE36 = b"0123456789abcdefghijklmnopqrstuvwxyz"
#: Attribute keys (substrings) whose string values are prompt or completion content.
CONTENT_KEY_PARTS = ("messages", "message.content", "message_content.text", "input.value", "output.value")
CONTENT_KEY_PARTS_EXTRA = ("system_instructions", "gen_ai.prompt", "gen_ai.completion")
#: Where a JSON-encoded content string gets its marker: at the start of the first string value of
#: a key in the first of these groups that has one (texts; else a tool call's id, unique per call in
#: real traffic, or its arguments; else any value but the ones naming roles and part types).
#: Plain ASCII inserted inside a JSON string keeps the JSON valid.
JSON_MARK_KEYS: tuple[frozenset[str] | None, ...] = (
    frozenset({"content", "text"}),
    frozenset({"id", "arguments"}),
    None,
)
JSON_KEEP_KEYS = frozenset({"role", "type", "finish_reason", "name"})
JSON_STRING_VALUE = re.compile(r'"([^"\\]+)":\s?"')
#: Spans per trace: a request holds several traces, each a handful of spans.
SPANS_PER_TRACE = 5


@dataclass(frozen=True)
class RequestShape:
    """How many spans one Export request carries and which share of them are LLM calls."""

    spans: int
    llm_share: float

    @property
    def llm_spans(self) -> int:
        """The number of LLM-call spans in one request."""
        return round(self.spans * self.llm_share)

    @property
    def label(self) -> str:
        """E.g. ``100 spans, 80 % LLM``."""
        return f"{self.spans} spans, {round(self.llm_share * 100)} % LLM"


@dataclass(frozen=True)
class RecordedSpan:
    """One LLM-call span as an instrumentation emitted it, with the resource and scope around it."""

    resource: Resource
    scope: InstrumentationScope
    span: Span
    source: str


def _hex_ids_to_base64(node: Any) -> Any:
    """OTLP/JSON writes ids as hex; protobuf's JSON mapping of ``bytes`` expects base64."""
    if isinstance(node, dict):
        result = {}
        for key, value in node.items():
            if key in ("traceId", "spanId", "parentSpanId") and isinstance(value, str):
                result[key] = base64.b64encode(bytes.fromhex(value)).decode("ascii")
            else:
                result[key] = _hex_ids_to_base64(value)
        return result
    if isinstance(node, list):
        return [_hex_ids_to_base64(item) for item in node]
    return node


def load_recorded_llm_spans(directory: Path = FIXTURES) -> list[RecordedSpan]:
    """Every instrumentation span of the ``BENCH_FIXTURES`` recordings (the recorder's own left out)."""
    found: list[RecordedSpan] = []
    for path in (directory / f"{name}.jsonl" for name in BENCH_FIXTURES):
        for line in path.read_text("utf-8").splitlines():
            if not line.strip():
                continue
            request = ExportTraceServiceRequest()
            json_format.Parse(json.dumps(_hex_ids_to_base64(json.loads(line))), request)
            for resource_spans in request.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    if scope_spans.scope.name == RECORDER_SCOPE:
                        continue
                    for span in scope_spans.spans:
                        found.append(RecordedSpan(resource_spans.resource, scope_spans.scope, span, path.stem))
    if not found:
        raise FileNotFoundError(f"no recorded LLM spans under {directory}")
    return found


def is_content_key(key: str) -> bool:
    """Whether ``key`` holds prompt or completion text (what redaction scans and Loki logs)."""
    return any(part in key for part in CONTENT_KEY_PARTS + CONTENT_KEY_PARTS_EXTRA)


def mark_content(text: str, marker: str) -> str | None:
    """``text`` with ``marker`` inside its first text; ``None`` when it holds no text to mark.

    JSON-encoded messages get the marker at the start of their first ``content``/``text`` value,
    else of a tool call's ``id``/``arguments``, else of another string value (the JSON stays valid, in the format the
    instrumentation wrote); plain text gets it appended.
    """
    stripped = text.lstrip()
    if stripped[:1] in ("[", "{"):
        values = [(match.group(1), match.end()) for match in JSON_STRING_VALUE.finditer(text)]
        for keys in JSON_MARK_KEYS:
            for key, cut in values:
                if (key in keys) if keys is not None else (key not in JSON_KEEP_KEYS):
                    return text[:cut] + marker + " " + text[cut:]
        return None
    return f"{text} {marker}"


def _set_string(attributes: Any, key: str, value: str) -> None:
    for attribute in attributes:
        if attribute.key == key:
            attribute.value.string_value = value
            return


def _uniquify(span: Span, index: int) -> int:
    """Put a per-span marker into every content string of ``span``; return how many were placed."""
    placed = 0
    for number, attribute in enumerate(span.attributes):
        key, value = attribute.key, attribute.value
        if value.WhichOneof("value") != "string_value":
            continue
        if key.endswith("response.id"):
            # De-duplication keys on (trace, response id): a template repeats fixture spans.
            _set_string(span.attributes, key, f"{value.string_value}-{index}")
        elif is_content_key(key):
            marked = mark_content(value.string_value, f"#{SENTINEL.decode()}.{index:05d}.{number:02d}")
            if marked is not None:
                value.string_value = marked
                placed += 1
    return placed


def _kv(key: str, value: str | int) -> KeyValue:
    any_value = AnyValue(int_value=value) if isinstance(value, int) else AnyValue(string_value=value)
    return KeyValue(key=key, value=any_value)


def http_server_span(index: int) -> Span:
    """A plain HTTP server span (OTel HTTP semantic conventions), the bulk of non-LLM traffic."""
    route = ("/cart", "/checkout", "/api/orders/{id}", "/healthz")[index % 4]
    span = Span(name=f"GET {route}", kind=Span.SPAN_KIND_SERVER)
    span.attributes.extend(
        [
            _kv("http.request.method", "GET"),
            _kv("http.route", route),
            _kv("url.path", route.replace("{id}", str(1000 + index))),
            _kv("url.scheme", "https"),
            _kv("http.response.status_code", 200),
            _kv("server.address", "shop.example.com"),
            _kv("server.port", 443),
            _kv("network.protocol.version", "1.1"),
            _kv("client.address", f"10.0.{index % 256}.7"),
            _kv("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0"),
        ]
    )
    return span


def db_client_span(index: int) -> Span:
    """A database client span (OTel DB semantic conventions)."""
    span = Span(name="SELECT shop.orders", kind=Span.SPAN_KIND_CLIENT)
    span.attributes.extend(
        [
            _kv("db.system.name", "postgresql"),
            _kv("db.namespace", "shop"),
            _kv("db.operation.name", "SELECT"),
            _kv("db.collection.name", "orders"),
            _kv("db.query.text", "SELECT id, total, status FROM orders WHERE customer_id = $1 LIMIT 50"),
            _kv("server.address", "db.internal"),
            _kv("server.port", 5432),
        ]
    )
    return span


def _plain_resource() -> Resource:
    resource = Resource()
    resource.attributes.extend(
        [_kv("service.name", "checkout"), _kv("telemetry.sdk.language", "python"), _kv("host.name", "web-1")]
    )
    return resource


class RequestFactory:
    """Fresh Export bodies of one :class:`RequestShape`: unique trace ids and content per call."""

    def __init__(self, shape: RequestShape, recorded: list[RecordedSpan] | None = None) -> None:
        recorded = recorded if recorded is not None else load_recorded_llm_spans()
        self.shape = shape
        self.template, self.content_markers = self._template(shape, recorded)
        self._pieces = self.template.split(SENTINEL)
        self._salt = bytes(BASE36[byte % 36] for byte in os.urandom(2))
        self._numbers: Iterator[int] = itertools.count()

    @staticmethod
    def _template(shape: RequestShape, recorded: list[RecordedSpan]) -> tuple[bytes, int]:
        now_ns = time.time_ns()
        request = ExportTraceServiceRequest()
        groups: dict[str, ResourceSpans] = {}
        markers = 0
        # Spread the LLM spans evenly among the others (Bresenham), so every trace mixes both.
        llm_slots = (
            {int(i * shape.spans / shape.llm_spans) for i in range(shape.llm_spans)} if shape.llm_spans else set()
        )
        llm_count = 0
        for index in range(shape.spans):
            if index in llm_slots:
                source = recorded[llm_count % len(recorded)]
                llm_count += 1
                span = Span()
                span.CopyFrom(source.span)
                markers += _uniquify(span, index)
                key, resource, scope = source.source + source.scope.name, source.resource, source.scope
            else:
                span = http_server_span(index) if index % 2 == 0 else db_client_span(index)
                key, resource = "plain", _plain_resource()
                scope = InstrumentationScope(name="opentelemetry.instrumentation.flask", version="0.66b2")
            trace = index // SPANS_PER_TRACE
            span.trace_id = SENTINEL + trace.to_bytes(4, "big") + b"\x00\x00\x00\x01"
            span.span_id = (index + 1).to_bytes(4, "big") + b"\x5a\x5a\x5a\x5a"
            span.ClearField("parent_span_id")
            duration_ns = max(span.end_time_unix_nano - span.start_time_unix_nano, 1_000_000)
            span.start_time_unix_nano = now_ns - duration_ns - (shape.spans - index) * 1000
            span.end_time_unix_nano = span.start_time_unix_nano + duration_ns
            if key not in groups:
                groups[key] = request.resource_spans.add()
                groups[key].resource.CopyFrom(resource)
                groups[key].scope_spans.add().scope.CopyFrom(scope)
            groups[key].scope_spans[0].spans.append(span)
        body = request.SerializeToString()
        if body.count(SENTINEL) != shape.spans + markers:
            raise AssertionError("a sentinel occurs in the template outside the places set for it")
        return body, markers

    def body(self) -> bytes:
        """The next request: the template with this call's 8-character value in every sentinel."""
        number = next(self._numbers) % 36**6
        digits = bytearray(6)
        for place in range(5, -1, -1):
            number, digit = divmod(number, 36)
            digits[place] = BASE36[digit]
        return (self._salt + digits).join(self._pieces)
