"""OpenAI ``POST /v1/chat/completions``: the replies of the fake provider, shaped like the real API's.

Non-streaming replies are one ``chat.completion`` object. Streaming replies are ``chat.completion.chunk``
events, then — only when the request set ``stream_options.include_usage`` — a last chunk with empty
``choices`` and the ``usage``, then ``data: [DONE]``. Errors use the real body
``{"error": {"message", "type", "param", "code"}}``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

from .scenarios import ErrorReply, JsonObject, Scenario, response_model
from .wire import DONE, Reply, SseEvent, split_text

_FINGERPRINT = "fp_fake0000"


def build_reply(scenario: Scenario, request: JsonObject, seq: int) -> Reply:
    """The reply to ``request`` (a decoded chat-completions body) under ``scenario``; ``seq`` makes ids."""
    headers = reply_headers(seq)
    if scenario.error is not None:
        return error_reply(scenario.error, headers)
    model = response_model(str(request.get("model", "")))
    completion_id = f"chatcmpl-fake{seq:06d}"
    if request.get("stream") is True:
        options = request.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        events = _stream_events(scenario, completion_id, model, include_usage=include_usage)
        return Reply(status=200, headers=headers, response_model=model, response_id=completion_id, events=events)
    body: JsonObject = {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": _message(scenario),
                "logprobs": None,
                "finish_reason": _finish_reason(scenario),
            }
        ],
        "usage": dict(scenario.usage),
        "service_tier": "default",
        "system_fingerprint": _FINGERPRINT,
    }
    return Reply(status=200, headers=headers, response_model=model, response_id=completion_id, body=body)


def usage_as_sent(sent: JsonObject | Sequence[JsonObject | str]) -> tuple[object, list[object] | None]:
    """The ``usage`` in a sent body (or in the data of the sent events) and, for a stream, every usage sent.

    A stream's usage is that of its last chunk with a non-null ``usage``, or None when no chunk had one.
    """
    if isinstance(sent, dict):
        return sent.get("usage"), None
    carried = [chunk["usage"] for chunk in sent if isinstance(chunk, dict) and chunk.get("usage") is not None]
    return (carried[-1] if carried else None), carried


def reply_headers(seq: int) -> dict[str, str]:
    """The headers every OpenAI reply carries (chat completions and responses alike); ``seq`` makes the id."""
    return {"x-request-id": f"req_fake{seq:06d}", "openai-processing-ms": "42", "openai-version": "2020-10-01"}


def error_body(error: ErrorReply) -> JsonObject:
    """The real API's error body."""
    return {"error": {"message": error.message, "type": error.error_type, "param": None, "code": error.code}}


def error_reply(error: ErrorReply, headers: dict[str, str]) -> Reply:
    """The real API's error reply (chat completions and responses alike); a rate limit adds its headers."""
    if error.retry_after_s is not None:
        headers = {
            **headers,
            "retry-after": str(error.retry_after_s),
            "x-ratelimit-limit-tokens": "30000",
            "x-ratelimit-remaining-tokens": "146",
            "x-ratelimit-reset-tokens": "1.754s",
        }
    return Reply(status=error.status, headers=headers, response_model=None, body=error_body(error))


def _message(scenario: Scenario) -> JsonObject:
    message: JsonObject = {
        "role": "assistant",
        "content": scenario.text or None,
        "refusal": None,
        "annotations": [],
    }
    if scenario.tool_call is not None:
        message["tool_calls"] = [
            {
                "id": scenario.tool_call.call_id,
                "type": "function",
                "function": {
                    "name": scenario.tool_call.name,
                    "arguments": json.dumps(dict(scenario.tool_call.arguments), separators=(",", ":")),
                },
            }
        ]
    return message


def _finish_reason(scenario: Scenario) -> str:
    return "tool_calls" if scenario.tool_call is not None else "stop"


def _stream_events(scenario: Scenario, completion_id: str, model: str, *, include_usage: bool) -> list[SseEvent]:
    created = int(time.time())

    def chunk(choices: list[JsonObject], usage: object = None) -> SseEvent:
        data: JsonObject = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "service_tier": "default",
            "system_fingerprint": _FINGERPRINT,
            "choices": choices,
        }
        if include_usage:
            data["usage"] = usage
        return SseEvent(data)

    def choice(delta: JsonObject, finish_reason: str | None = None) -> JsonObject:
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}

    events = [chunk([choice({"role": "assistant", "content": "", "refusal": None})])]
    events += [chunk([choice({"content": piece})]) for piece in split_text(scenario.text)]
    if (call := scenario.tool_call) is not None:
        head = {
            "index": 0,
            "id": call.call_id,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        arguments = json.dumps(dict(call.arguments), separators=(",", ":"))
        events.append(chunk([choice({"tool_calls": [head]})]))
        events.append(chunk([choice({"tool_calls": [{"index": 0, "function": {"arguments": arguments}}]})]))
    events.append(chunk([choice({}, _finish_reason(scenario))]))
    if include_usage:
        events.append(chunk([], dict(scenario.usage)))
    events.append(SseEvent(DONE))
    return events
