"""The OTLP protobuf decoder: the native scanner every receiver hands its bytes to.

Property: the only error is ``OtlpDecodeError`` (gRPC INVALID_ARGUMENT, HTTP 400). Atheris sees
only Python, so the Rust core is checked by outcome: a request the scanner accepts must parse with
the reference decoder (upb) to the same span count, and every other native entry point — scan with
scrubbing, OTLP/JSON, split, splice — must accept it and keep the spans.
"""

from __future__ import annotations

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otlp_enricher.config import parse_config
from otlp_enricher.dataplane import AttributeValue, Scanner, SpanWriter, split, to_json, validate
from otlp_enricher.otlp_json import OtlpDecodeError, decode_json_request
from otlp_enricher.processor.redaction import Redactor
from tests.fuzz.seeds import protobuf_requests

MAX_LEN = 1 << 16
_REDACTOR = Redactor(parse_config("", "fuzz", {}).redaction)
_SCANNER = Scanner((), _REDACTOR.native)
_WRITER = SpanWriter("scrub", _REDACTOR.native)


def seeds() -> list[bytes]:
    """The recorded requests, and the empty request."""
    return [b"", *protobuf_requests()]


def span_count(request: ExportTraceServiceRequest) -> int:
    """Spans in a decoded request."""
    return sum(len(scope.spans) for resource in request.resource_spans for scope in resource.scope_spans)


def check(data: bytes) -> bool:
    """Decode ``data``; raise when an error other than ``OtlpDecodeError`` escapes or the paths disagree."""
    try:
        count = validate(data)
    except OtlpDecodeError:
        return False
    reference = ExportTraceServiceRequest.FromString(data)
    assert span_count(reference) == count, f"scanner counted {count} spans, upb {span_count(reference)}"
    scan = _SCANNER.scan(data)
    assert scan.span_count == count
    assert span_count(decode_json_request(to_json(data))) == count, "OTLP/JSON lost or added spans"
    assert sum(spans for _, spans in split(data, 2, 256)) == count, "split lost or added spans"
    edits: dict[int, tuple[dict[str, AttributeValue | None], list[tuple[str, AttributeValue]]]] = {
        span.ordinal: ({}, [("otlp_enricher.fuzz", 1)]) for span in scan.spans
    }
    written, _, _ = _WRITER.write(data, edits)
    assert validate(written) == count, "splicing lost or added spans"
    return True
