"""Span editing before re-export: the ``otlp_enricher.*`` attributes, user ids, content stripped.

Expected values are written out here (the keyed hash computed with ``hmac`` directly); the edited
bytes are read back with protobuf's parser.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otlp_enricher.connector.spans import SpanEditor
from otlp_enricher.model import LLMCall
from otlp_enricher.processor.redaction import RedactionSettings, Redactor, UserIdMode
from tests.doubles import llm_call
from tests.otlp_builders import attributes_of, decoded, request, span

KEY = "span-test-key"


def _call(attributes: dict[str, Any], **derived: Any) -> tuple[bytes, LLMCall]:
    """A one-span request and its call (ordinal 0), as the extractor and processors leave it."""
    body = request([span(attributes)])
    (proto_span,) = body.resource_spans[0].scope_spans[0].spans
    call = llm_call(
        trace_id=proto_span.trace_id,
        span_id=proto_span.span_id,
        start_ns=proto_span.start_time_unix_nano,
        end_ns=proto_span.end_time_unix_nano,
        service="checkout",
        response_model="gpt-4o-2024-08-06",
        attributes=attributes_of(proto_span.attributes),
        ordinal=0,
        **derived,
    )
    return body.SerializeToString(), call


def _edited(editor: SpanEditor, body: bytes, call: LLMCall) -> dict[str, Any]:
    payload, failed = editor.edit(body, [call], Counter())
    assert failed == 0
    (edited,) = ExportTraceServiceRequest.FromString(payload).resource_spans[0].scope_spans[0].spans
    return {kv.key: decoded(kv.value) for kv in edited.attributes}


def _editor(user_id: UserIdMode = "keep", strip_content: bool = False) -> SpanEditor:
    return SpanEditor(Redactor(RedactionSettings(user_id=user_id, hash_key=KEY)), strip_content)


@pytest.mark.parametrize("mode", ["keep", "hash", "drop"])
def test_user_ids_follow_the_user_id_mode(mode: UserIdMode) -> None:
    """keep: as sent; hash: ``h:`` + the first 16 hex digits of HMAC-SHA256 under the key; drop:
    gone. An empty user id is dropped unless ids are kept."""
    body, call = _call({"gen_ai.operation.name": "chat", "user.id": "alice@example.com", "gen_ai.request.user": ""})
    attributes = _edited(_editor(mode), body, call)
    digest = hmac.new(KEY.encode(), b"alice@example.com", hashlib.sha256).hexdigest()[:16]
    expected = {"keep": "alice@example.com", "hash": f"h:{digest}", "drop": None}[mode]
    assert attributes.get("user.id") == expected
    assert ("gen_ai.request.user" in attributes) == (mode == "keep")


def test_a_priced_call_carries_its_cost_model_error_and_slo_outcomes() -> None:
    """Every ``otlp_enricher.*`` attribute a priced, failed call gets; the span's own attributes stay."""
    body, call = _call(
        {"gen_ai.operation.name": "chat", "http.route": "/cart"},
        cost_usd=0.0125,
        cost_source="price_table",
        priced_model="gpt-4o-2024-08-06",
        error_reason="rate_limit",
        slo_outcomes={"latency": True, "ttft": False},
    )
    assert _edited(_editor(), body, call) == {
        "gen_ai.operation.name": "chat",
        "http.route": "/cart",
        "otlp_enricher.provider": "openai",
        "otlp_enricher.model": "gpt-4o-2024-08-06",
        "otlp_enricher.cost_source": "price_table",
        "otlp_enricher.unpriced": False,
        "otlp_enricher.cost_usd": 0.0125,
        "otlp_enricher.priced_model": "gpt-4o-2024-08-06",
        "otlp_enricher.error_reason": "rate_limit",
        "otlp_enricher.slo.latency": "good",
        "otlp_enricher.slo.ttft": "bad",
    }


def test_an_unpriced_call_says_so_and_carries_no_cost() -> None:
    """Unpriced is never $0: no ``cost_usd`` attribute, ``unpriced`` true."""
    body, call = _call({"gen_ai.operation.name": "chat"}, cost_source="unpriced", unpriced_reason="no_price")
    attributes = _edited(_editor(), body, call)
    assert attributes["otlp_enricher.unpriced"] is True
    assert attributes["otlp_enricher.cost_source"] == "unpriced"
    assert "otlp_enricher.cost_usd" not in attributes


def test_stripping_removes_content_and_marks_the_span() -> None:
    """``strip_content``: prompts and completions go, the span says they went, the rest stays."""
    body, call = _call(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.prompt.0.content": "my card is 4111 1111 1111 1111",
            "gen_ai.completion.0.content": "noted",
        },
        cost_source="unpriced",
    )
    attributes = _edited(_editor(strip_content=True), body, call)
    assert not any(key.startswith(("gen_ai.prompt", "gen_ai.completion")) for key in attributes)
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["otlp_enricher.content_stripped"] is True
