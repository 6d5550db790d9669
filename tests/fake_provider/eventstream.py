"""The AWS event-stream binary framing (``application/vnd.amazon.eventstream``) of Bedrock streams.

Each message: a 12-byte prelude — total length and headers length (big-endian uint32 each), then the
CRC32 of those 8 bytes — the headers, the payload, and the CRC32 of everything before it. A header is
its name's length (1 byte), the name, a value type (7 = string), the value's length (2 bytes) and the
value. Bedrock's ConverseStream sends each event as ``:message-type: event``, ``:event-type: <name>``,
``:content-type: application/json`` with the event's JSON as payload; an error mid-stream is
``:message-type: exception``.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass

from .scenarios import JsonObject

_STRING = 7
_PRELUDE = struct.Struct(">II")


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message with string ``headers`` and ``payload``, CRCs included."""
    encoded_headers = b"".join(
        struct.pack(">B", len(name.encode()))
        + name.encode()
        + struct.pack(">BH", _STRING, len(value.encode()))
        + value.encode()
        for name, value in headers.items()
    )
    total = _PRELUDE.size + 4 + len(encoded_headers) + len(payload) + 4
    prelude = _PRELUDE.pack(total, len(encoded_headers))
    head = prelude + struct.pack(">I", zlib.crc32(prelude)) + encoded_headers + payload
    return head + struct.pack(">I", zlib.crc32(head))


@dataclass(frozen=True)
class EventStreamEvent:
    """One Bedrock stream event: its name (``messageStart``, ``metadata``, …) and its JSON payload."""

    event_type: str
    payload: JsonObject

    def data_text(self) -> str:
        """The event as boto3 hands it to the caller, ``{"<event type>": payload}``, as compact JSON."""
        return json.dumps({self.event_type: self.payload}, separators=(",", ":"))

    def encode(self) -> bytes:
        """The event as it goes on the wire."""
        headers = {":event-type": self.event_type, ":content-type": "application/json", ":message-type": "event"}
        return encode_message(headers, json.dumps(self.payload, separators=(",", ":")).encode())
