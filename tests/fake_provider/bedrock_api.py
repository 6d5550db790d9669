"""Bedrock runtime ``POST /model/{modelId}/converse``, ``/converse-stream`` and ``/invoke``, as boto3 calls them.

Converse replies ``{"output": {"message"}, "stopReason", "usage", "metrics"}`` — no id, no model name.
ConverseStream replies in the AWS event-stream framing (``eventstream``): ``messageStart``,
``contentBlockDelta`` per word, ``contentBlockStop``, ``messageStop``, then ``metadata`` with the usage.
InvokeModel with an Anthropic model answers the Anthropic Messages body (model named without the
Bedrock prefix and version suffix). Errors: the code in ``x-amzn-ErrorType``, ``{"message"}`` as body.
SigV4 signatures are not checked.
"""

from __future__ import annotations

import re
import urllib.parse
import uuid
from collections.abc import Sequence

from . import anthropic_api
from .eventstream import EventStreamEvent
from .scenarios import JsonObject, Scenario
from .wire import PathCall, Reply, split_text

_PATH = re.compile(r"^/model/(?P<model>[^/]+)/(?P<operation>converse|converse-stream|invoke)$")
_ERROR_NAMESPACE = "http://internal.amazon.com/coral/com.amazon.bedrock/"
_LATENCY_MS = 412


def match(path: str) -> PathCall | None:
    """The model and operation of a Bedrock runtime path, or None."""
    found = _PATH.match(path.split("?", 1)[0])
    if found is None:
        return None
    operation = found["operation"]
    return PathCall(urllib.parse.unquote(found["model"]), operation, streaming=operation == "converse-stream")


def build_reply(scenario: Scenario, call: PathCall, request: JsonObject, seq: int) -> Reply:
    """The reply to ``call`` under ``scenario``; ``seq`` makes the request id unique."""
    request_id = str(uuid.UUID(int=seq))
    headers = {"x-amzn-RequestId": request_id}
    if scenario.error is not None:
        error = scenario.error
        headers["x-amzn-ErrorType"] = f"{error.error_type}:{_ERROR_NAMESPACE}"
        return Reply(status=error.status, headers=headers, response_model=None, body={"message": error.message})
    if call.operation == "invoke":
        anthropic_model = re.sub(r"^(?:[a-z-]+\.)?anthropic\.", "", call.model).rsplit("-v", 1)[0]
        reply = anthropic_api.build_reply(scenario, {"model": anthropic_model}, seq)
        return Reply(
            status=200, headers=headers, response_model=anthropic_model, response_id=reply.response_id, body=reply.body
        )
    if call.streaming:
        return Reply(
            status=200,
            headers=headers,
            response_model=None,
            events=_stream_events(scenario),
            stream_content_type="application/vnd.amazon.eventstream",
        )
    body: JsonObject = {
        "output": {"message": {"role": "assistant", "content": [{"text": scenario.text}]}},
        "stopReason": "end_turn",
        "usage": dict(scenario.usage),
        "metrics": {"latencyMs": _LATENCY_MS},
    }
    return Reply(status=200, headers=headers, response_model=None, body=body)


def usage_as_sent(sent: JsonObject | Sequence[JsonObject | str]) -> tuple[object, list[object] | None]:
    """The ``usage`` of a sent body, or of a stream's ``metadata`` event (with every usage it carried)."""
    if isinstance(sent, dict):
        return sent.get("usage"), None
    carried: list[object] = []
    for event in sent:
        metadata = event.get("metadata") if isinstance(event, dict) else None
        if isinstance(metadata, dict) and "usage" in metadata:
            carried.append(metadata["usage"])
    return (carried[-1] if carried else None), carried


def _stream_events(scenario: Scenario) -> list[EventStreamEvent]:
    events = [EventStreamEvent("messageStart", {"role": "assistant"})]
    events += [
        EventStreamEvent("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": piece}})
        for piece in split_text(scenario.text)
    ]
    events.append(EventStreamEvent("contentBlockStop", {"contentBlockIndex": 0}))
    events.append(EventStreamEvent("messageStop", {"stopReason": "end_turn"}))
    events.append(EventStreamEvent("metadata", {"usage": dict(scenario.usage), "metrics": {"latencyMs": _LATENCY_MS}}))
    return events
