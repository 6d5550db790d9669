"""The OTLP/JSON decoder (``otlp_json.decode_json_request``: the HTTP receiver's JSON path and replay's).

Property: the only error is ``OtlpDecodeError`` (HTTP 400); what it accepts serialises to a request
the native scanner accepts with the same spans, since that is what the receiver hands on.
"""

from __future__ import annotations

from otlp_enricher.dataplane import validate
from otlp_enricher.otlp_json import OtlpDecodeError, decode_json_request
from tests.fuzz.protobuf import span_count
from tests.fuzz.seeds import json_lines

MAX_LEN = 1 << 16


def seeds() -> list[bytes]:
    """Every recorded OTLP/JSON line, and a few shapes the recordings lack."""
    return [
        *json_lines(),
        b"{}",
        b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"","links":[{"spanId":"00"}]}]}]}]}',
        b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[{"key":"k","value":{"kvlistValue":'
        b'{"values":[{"key":"a","value":{"arrayValue":{"values":[{"doubleValue":"NaN"}]}}}]}}}]}]}]}]}',
    ]


def check(data: bytes) -> bool:
    """Decode ``data``; raise when anything but ``OtlpDecodeError`` escapes or the scanner disagrees."""
    try:
        request = decode_json_request(data)
    except OtlpDecodeError:
        return False
    assert validate(request.SerializeToString()) == span_count(request)
    return True
