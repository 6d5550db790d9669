"""Gemini ``POST /v1beta/models/{model}:generateContent`` and ``:streamGenerateContent?alt=sse``.

Replies are ``GenerateContentResponse`` objects: ``candidates`` (one text part, ``finishReason``),
``usageMetadata``, ``modelVersion`` and ``responseId``. A stream sends one such object per word as
server-sent ``data:`` events; only the last carries ``finishReason`` and the ``usageMetadata``.
Errors use the google.rpc shape ``{"error": {"code", "message", "status"}}``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .scenarios import JsonObject, Scenario
from .wire import PathCall, Reply, SseEvent, split_text

_PATH = re.compile(r"^/v1beta/models/(?P<model>[^/:]+):(?P<operation>generateContent|streamGenerateContent)$")


def match(path: str) -> PathCall | None:
    """The model and method of a Gemini API path, or None."""
    found = _PATH.match(path.split("?", 1)[0])
    if found is None:
        return None
    operation = found["operation"]
    return PathCall(found["model"], operation, streaming=operation == "streamGenerateContent")


def build_reply(scenario: Scenario, call: PathCall, request: JsonObject, seq: int) -> Reply:
    """The reply to ``call`` under ``scenario``; ``seq`` makes the response id unique."""
    headers = {"x-request-id": f"req_fake{seq:06d}"}
    if scenario.error is not None:
        error = scenario.error
        body: JsonObject = {"error": {"code": error.status, "message": error.message, "status": error.error_type}}
        return Reply(status=error.status, headers=headers, response_model=None, body=body)
    response_id = f"gemresp-fake{seq:06d}"

    def response(text: str, *, last: bool) -> JsonObject:
        candidate: JsonObject = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
        chunk: JsonObject = {"candidates": [candidate], "modelVersion": call.model, "responseId": response_id}
        if last:
            candidate["finishReason"] = "STOP"
            chunk["usageMetadata"] = dict(scenario.usage)
        return chunk

    if call.streaming:
        pieces = split_text(scenario.text)
        events = [SseEvent(response(piece, last=i == len(pieces) - 1)) for i, piece in enumerate(pieces)]
        return Reply(status=200, headers=headers, response_model=call.model, response_id=response_id, events=events)
    body = response(scenario.text, last=True)
    return Reply(status=200, headers=headers, response_model=call.model, response_id=response_id, body=body)


def usage_as_sent(sent: JsonObject | Sequence[JsonObject | str]) -> tuple[object, list[object] | None]:
    """The ``usageMetadata`` of a sent body or, for a stream, of its last chunk that had one."""
    if isinstance(sent, dict):
        return sent.get("usageMetadata"), None
    carried = [chunk["usageMetadata"] for chunk in sent if isinstance(chunk, dict) and "usageMetadata" in chunk]
    return (carried[-1] if carried else None), carried
