"""Small builders for OTLP requests in tests: spans from plain dicts of attributes."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from otlp_enricher._native import Span as NativeSpan
from otlp_enricher.dataplane import Scanner
from otlp_enricher.semconv.attributes import Attributes

START_NS = 1_790_000_000_000_000_000


def any_value(value: Any) -> AnyValue:
    """Python value → AnyValue (lists become arrays, dicts kvlists)."""
    result = AnyValue()
    if isinstance(value, bool):
        result.bool_value = value
    elif isinstance(value, int):
        result.int_value = value
    elif isinstance(value, float):
        result.double_value = value
    elif isinstance(value, str):
        result.string_value = value
    elif isinstance(value, bytes):
        result.bytes_value = value
    elif isinstance(value, list):
        result.array_value.values.extend(any_value(item) for item in value)
    elif isinstance(value, dict):
        result.kvlist_value.values.extend(KeyValue(key=k, value=any_value(v)) for k, v in value.items())
    return result


def key_values(attributes: Mapping[str, Any]) -> list[KeyValue]:
    """A dict → repeated KeyValue."""
    return [KeyValue(key=key, value=any_value(value)) for key, value in attributes.items()]


def span(
    attributes: Mapping[str, Any],
    duration_s: float = 1.0,
    start_ns: int = START_NS,
    error: bool = False,
    status_message: str = "",
    events: Sequence[tuple[str, float, Mapping[str, Any]]] = (),
    trace_id: bytes | None = None,
) -> Span:
    """A span with ``attributes``; ``events`` are (name, seconds after start, attributes)."""
    result = Span(
        trace_id=trace_id if trace_id is not None else os.urandom(16),
        span_id=os.urandom(8),
        name="test",
        kind=Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=start_ns,
        end_time_unix_nano=start_ns + int(duration_s * 1e9),
    )
    result.attributes.extend(key_values(attributes))
    if error:
        result.status.code = Status.STATUS_CODE_ERROR
        result.status.message = status_message
    for name, offset_s, event_attributes in events:
        event = result.events.add(name=name, time_unix_nano=start_ns + int(offset_s * 1e9))
        event.attributes.extend(key_values(event_attributes))
    return result


def request(
    spans: Sequence[Span],
    service: str = "checkout",
    scope: str = "test",
    resource: Mapping[str, Any] | None = None,
) -> ExportTraceServiceRequest:
    """One resource, one scope, the given spans."""
    result = ExportTraceServiceRequest()
    resource_spans = result.resource_spans.add()
    resource_spans.resource.attributes.extend(key_values({"service.name": service, **(resource or {})}))
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = scope
    scope_spans.spans.extend(spans)
    return result


def openai_chat(model: str = "gpt-4o", response_model: str = "gpt-4o-2024-08-06", **usage: int) -> dict[str, Any]:
    """Attributes of an OTel gen_ai chat span against OpenAI."""
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": model,
        "gen_ai.response.model": response_model,
    }
    attributes.update({f"gen_ai.usage.{key}": value for key, value in usage.items()})
    return attributes


def scanned(
    message: Span,
    resource: Mapping[str, Any] | None = None,
    scope: str = "test",
    extra_keys: Sequence[str] = (),
    scope_version: str = "",
) -> tuple[NativeSpan | None, Attributes]:
    """``message`` as the extractor sees it: through the native scanner, as the pipeline does.

    Returns ``None`` for a span the scanner does not hand over (not a candidate LLM call).
    """
    body = request([message], service=(resource or {}).get("service.name", "checkout"), scope=scope, resource=resource)
    body.resource_spans[0].scope_spans[0].scope.version = scope_version
    scan = Scanner(extra_keys).scan(body.SerializeToString())
    return (scan.spans[0] if scan.spans else None), Attributes(scan.resources[0])


def decoded(value: AnyValue) -> Any:
    """The Python value of a protobuf ``AnyValue`` (lists and dicts for array/kvlist), for assertions."""
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [decoded(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: decoded(kv.value) for kv in value.kvlist_value.values}
    return None if kind is None else getattr(value, kind)


def attributes_of(key_values: Sequence[KeyValue]) -> Attributes:
    """A protobuf attribute list as the rules' :class:`Attributes` view, for assertions."""
    return Attributes({kv.key: decoded(kv.value) for kv in key_values})
