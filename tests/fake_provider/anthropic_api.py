"""Anthropic ``POST /v1/messages``: the replies of the fake provider, shaped like the real API's.

Non-streaming replies are one ``message`` object. Streaming replies are the named events the real API
sends: ``message_start`` (with the input-side usage and ``output_tokens`` 1), ``content_block_start``,
a ``ping``, ``content_block_delta`` (``thinking_delta`` / ``signature_delta`` / ``text_delta`` /
``input_json_delta``), ``content_block_stop``, ``message_delta`` (stop reason and the cumulative usage)
and ``message_stop``. Errors use ``{"type": "error", "error": {"type", "message"}, "request_id"}``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from .scenarios import ErrorReply, JsonObject, Scenario, response_model
from .wire import Reply, SseEvent, split_text

_SIGNATURE = "ZmFrZS1zaWduYXR1cmU="


def build_reply(scenario: Scenario, request: JsonObject, seq: int) -> Reply:
    """The reply to ``request`` (a decoded messages body) under ``scenario``; ``seq`` makes ids unique."""
    request_id = f"req_fake{seq:06d}"
    headers = {"request-id": request_id, "anthropic-organization-id": "00000000-0000-4000-8000-00000000fa4e"}
    if scenario.error is not None:
        return _error_reply(scenario.error, headers, request_id)
    model = response_model(str(request.get("model", "")))
    message_id = f"msg_fake{seq:06d}"
    if request.get("stream") is True:
        events = _stream_events(scenario, message_id, model)
        return Reply(status=200, headers=headers, response_model=model, response_id=message_id, events=events)
    body: JsonObject = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": _content_blocks(scenario),
        "stop_reason": _stop_reason(scenario),
        "stop_sequence": None,
        "usage": dict(scenario.usage),
    }
    return Reply(status=200, headers=headers, response_model=model, response_id=message_id, body=body)


def usage_as_sent(sent: JsonObject | Sequence[JsonObject | str]) -> tuple[object, list[object] | None]:
    """The ``usage`` in a sent body (or in the data of the sent events) and, for a stream, every usage sent.

    A stream's usage is that of ``message_start`` with each field that ``message_delta`` sends replaced —
    ``message_delta`` counts are cumulative, and this is how the SDK's accumulated message ends up.
    """
    if isinstance(sent, dict):
        return sent.get("usage"), None
    carried: list[object] = []
    final: JsonObject = {}
    for event in sent:
        if not isinstance(event, dict):
            continue
        if event.get("type") == "message_start":
            message = event.get("message")
            usage = message.get("usage") if isinstance(message, dict) else None
        else:
            usage = event.get("usage")
        if isinstance(usage, dict):
            carried.append(usage)
            final.update(usage)
    return (final or None), carried


def error_body(error: ErrorReply, request_id: str) -> JsonObject:
    """The real API's error body."""
    return {
        "type": "error",
        "error": {"type": error.error_type, "message": error.message},
        "request_id": request_id,
    }


def _error_reply(error: ErrorReply, headers: dict[str, str], request_id: str) -> Reply:
    if error.retry_after_s is not None:
        headers = {
            **headers,
            "retry-after": str(error.retry_after_s),
            "anthropic-ratelimit-input-tokens-limit": "30000",
            "anthropic-ratelimit-input-tokens-remaining": "0",
        }
    return Reply(status=error.status, headers=headers, response_model=None, body=error_body(error, request_id))


def _content_blocks(scenario: Scenario) -> list[JsonObject]:
    blocks: list[JsonObject] = []
    if scenario.thinking is not None:
        blocks.append({"type": "thinking", "thinking": scenario.thinking, "signature": _SIGNATURE})
    if scenario.text:
        blocks.append({"type": "text", "text": scenario.text})
    if (call := scenario.tool_call) is not None:
        blocks.append({"type": "tool_use", "id": call.call_id, "name": call.name, "input": dict(call.arguments)})
    return blocks


def _stop_reason(scenario: Scenario) -> str:
    return "tool_use" if scenario.tool_call is not None else "end_turn"


def _event(name: str, data: JsonObject) -> SseEvent:
    return SseEvent({"type": name, **data}, event=name)


def _stream_events(scenario: Scenario, message_id: str, model: str) -> list[SseEvent]:
    full = dict(scenario.usage)
    start_usage = {key: value for key, value in full.items() if key != "output_tokens_details"}
    start_usage["output_tokens"] = 1
    message: JsonObject = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": start_usage,
    }
    events = [_event("message_start", {"message": message})]
    for index, block in enumerate(_content_blocks(scenario)):
        block_events = _block_events(index, block)
        if index == 0:  # the real API pings once, right after the first block starts
            block_events.insert(1, _event("ping", {}))
        events += block_events
    delta_usage = {
        key: full[key]
        for key in (
            "input_tokens",
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
            "output_tokens",
            "output_tokens_details",
        )
        if key in full
    }
    events.append(
        _event(
            "message_delta",
            {"delta": {"stop_reason": _stop_reason(scenario), "stop_sequence": None}, "usage": delta_usage},
        )
    )
    events.append(_event("message_stop", {}))
    return events


def _block_events(index: int, block: JsonObject) -> list[SseEvent]:
    kind = block["type"]
    deltas: list[JsonObject]
    if kind == "thinking":
        start: JsonObject = {"type": "thinking", "thinking": "", "signature": ""}
        deltas = [{"type": "thinking_delta", "thinking": piece} for piece in split_text(str(block["thinking"]))]
        deltas.append({"type": "signature_delta", "signature": block["signature"]})
    elif kind == "text":
        start = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": piece} for piece in split_text(str(block["text"]))]
    else:
        start = {**block, "input": {}}
        deltas = [{"type": "input_json_delta", "partial_json": json.dumps(block["input"], separators=(",", ":"))}]
    return [
        _event("content_block_start", {"index": index, "content_block": start}),
        *(_event("content_block_delta", {"index": index, "delta": delta}) for delta in deltas),
        _event("content_block_stop", {"index": index}),
    ]
