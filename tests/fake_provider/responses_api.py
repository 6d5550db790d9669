"""OpenAI ``POST /v1/responses``: the Responses API replies of the fake provider, shaped like the real API's.

Non-streaming replies are one ``response`` object whose ``output`` holds a ``reasoning`` item (when
the scenario reasons), a ``message`` with ``output_text`` and/or a ``function_call``. Streaming
replies are the named events the real API sends, each with its ``type`` and ``sequence_number``:
``response.created`` / ``response.in_progress`` (no usage yet), per output item
``response.output_item.added`` … ``response.output_item.done`` (text as ``response.output_text.delta``
events, arguments as ``response.function_call_arguments.delta``), and ``response.completed`` with the
whole response and its ``usage``. Usage: ``input_tokens`` *includes*
``input_tokens_details.cached_tokens``, ``output_tokens`` *includes*
``output_tokens_details.reasoning_tokens``. Errors and headers are the chat API's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

from .openai_api import error_reply, reply_headers
from .scenarios import JsonObject, Scenario, response_model
from .wire import Reply, SseEvent, split_text


def build_reply(scenario: Scenario, request: JsonObject, seq: int) -> Reply:
    """The reply to ``request`` (a decoded responses body) under ``scenario``; ``seq`` makes ids."""
    headers = reply_headers(seq)
    if scenario.error is not None:
        return error_reply(scenario.error, headers)
    model = response_model(str(request.get("model", "")))
    response_id = f"resp_fake{seq:06d}"
    items = _output_items(scenario, seq)
    completed = _response(response_id, model, request, items, dict(scenario.usage))
    if request.get("stream") is True:
        events = _stream_events(completed, items)
        return Reply(status=200, headers=headers, response_model=model, response_id=response_id, events=events)
    return Reply(status=200, headers=headers, response_model=model, response_id=response_id, body=completed)


def usage_as_sent(sent: JsonObject | Sequence[JsonObject | str]) -> tuple[object, list[object] | None]:
    """The ``usage`` of a sent response (or of the streamed responses) and, for a stream, every usage
    sent: only ``response.completed`` carries one."""
    if isinstance(sent, dict):
        return sent.get("usage"), None
    carried = [
        response["usage"]
        for event in sent
        if isinstance(event, dict)
        and isinstance(response := event.get("response"), dict)
        and response.get("usage") is not None
    ]
    return (carried[-1] if carried else None), carried


def _output_items(scenario: Scenario, seq: int) -> list[JsonObject]:
    items: list[JsonObject] = []
    if scenario.thinking is not None:
        items.append({"id": f"rs_fake{seq:06d}", "type": "reasoning", "summary": []})
    if scenario.text:
        text: JsonObject = {"type": "output_text", "text": scenario.text, "annotations": [], "logprobs": []}
        items.append(
            {
                "id": f"msg_fake{seq:06d}",
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [text],
            }
        )
    if (call := scenario.tool_call) is not None:
        items.append(
            {
                "id": f"fc_fake{seq:06d}",
                "type": "function_call",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": json.dumps(dict(call.arguments), separators=(",", ":")),
                "status": "completed",
            }
        )
    return items


def _response(
    response_id: str, model: str, request: JsonObject, output: list[JsonObject], usage: JsonObject | None
) -> JsonObject:
    now = int(time.time())
    return {
        "id": response_id,
        "object": "response",
        "created_at": now,
        "completed_at": now if usage is not None else None,
        "status": "completed" if usage is not None else "in_progress",
        "error": None,
        "incomplete_details": None,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": request.get("reasoning") or {"effort": None, "summary": None},
        "service_tier": "default",
        "store": True,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": request.get("tools") or [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": usage,
        "metadata": {},
    }


def _output_text(message: JsonObject) -> JsonObject:
    content = message["content"]
    assert isinstance(content, list) and isinstance(content[0], dict)
    return content[0]


def _stream_events(completed: JsonObject, items: list[JsonObject]) -> list[SseEvent]:
    events: list[SseEvent] = []

    def emit(kind: str, **fields: object) -> None:
        events.append(SseEvent({"type": kind, "sequence_number": len(events), **fields}, event=kind))

    pending = {**completed, "status": "in_progress", "completed_at": None, "output": [], "usage": None}
    emit("response.created", response=pending)
    emit("response.in_progress", response=pending)
    for index, item in enumerate(items):
        item_id = item["id"]
        if item["type"] == "message":
            emit(
                "response.output_item.added", output_index=index, item={**item, "status": "in_progress", "content": []}
            )
            part = _output_text(item)
            empty = {**part, "text": ""}
            emit("response.content_part.added", item_id=item_id, output_index=index, content_index=0, part=empty)
            for piece in split_text(str(part["text"])):
                emit(
                    "response.output_text.delta",
                    item_id=item_id,
                    output_index=index,
                    content_index=0,
                    delta=piece,
                    logprobs=[],
                )
            emit(
                "response.output_text.done",
                item_id=item_id,
                output_index=index,
                content_index=0,
                text=part["text"],
                logprobs=[],
            )
            emit("response.content_part.done", item_id=item_id, output_index=index, content_index=0, part=part)
        elif item["type"] == "function_call":
            emit(
                "response.output_item.added",
                output_index=index,
                item={**item, "status": "in_progress", "arguments": ""},
            )
            emit("response.function_call_arguments.delta", item_id=item_id, output_index=index, delta=item["arguments"])
            emit(
                "response.function_call_arguments.done",
                item_id=item_id,
                output_index=index,
                arguments=item["arguments"],
            )
        else:
            emit("response.output_item.added", output_index=index, item=item)
        emit("response.output_item.done", output_index=index, item=item)
    emit("response.completed", response=completed)
    return events
