"""What the fake provider puts on the wire: a JSON reply or a server-sent-event stream, and encodings."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from .scenarios import JsonObject

DONE: str = "[DONE]"
"""The data of OpenAI's last stream event."""


@dataclass(frozen=True)
class SseEvent:
    """One server-sent event: ``event:`` (Anthropic names its events, OpenAI does not) and ``data:``."""

    data: JsonObject | str
    event: str | None = None

    def data_text(self) -> str:
        """The ``data:`` field's text: compact JSON, or the literal string."""
        return self.data if isinstance(self.data, str) else json.dumps(self.data, separators=(",", ":"))

    def encode(self) -> bytes:
        """The event as it goes on the wire, ending with the blank line."""
        head = f"event: {self.event}\n" if self.event is not None else ""
        return f"{head}data: {self.data_text()}\n\n".encode()


class StreamEvent(Protocol):
    """One event of a streamed reply: an :class:`SseEvent`, or a Bedrock ``eventstream`` message."""

    def data_text(self) -> str:
        """The event's data as JSON text (the provider log decodes it)."""
        ...

    def encode(self) -> bytes:
        """The event's bytes on the wire."""
        ...


SSE_CONTENT_TYPE = "text/event-stream; charset=utf-8"


@dataclass(frozen=True)
class Reply:
    """A response to send: a JSON ``body``, or (when ``body`` is None) the stream of ``events``."""

    status: int
    headers: Mapping[str, str]
    response_model: str | None
    response_id: str | None = None
    body: JsonObject | None = None
    events: Sequence[StreamEvent] = field(default_factory=tuple)
    stream_content_type: str = SSE_CONTENT_TYPE

    @property
    def streaming(self) -> bool:
        """Whether the reply is an event stream."""
        return self.body is None


@dataclass(frozen=True)
class PathCall:
    """What a path-routed API (Bedrock, Gemini) reads from the request path: model, operation, streaming."""

    model: str
    operation: str
    streaming: bool


def encode_json(body: JsonObject) -> bytes:
    """A JSON body as the real APIs send it (compact, UTF-8)."""
    return json.dumps(body, separators=(",", ":")).encode()


def split_text(text: str) -> list[str]:
    """``text`` in the word-sized pieces a stream delivers it in; joined they give ``text`` back."""
    pieces: list[str] = []
    for word in text.split(" "):
        pieces.append(word if not pieces else " " + word)
    return [p for p in pieces if p]
