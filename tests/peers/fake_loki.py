"""A fake Loki push endpoint on 127.0.0.1 with scriptable faults, for exporter and fault tests.

Decodes both push encodings (snappy *block* protobuf, rejecting the framed form as Loki does; and
JSON, gzip or not), keeps entries de-duplicated on (stream, timestamp, line) like Loki, rejects
lines over ``max_line_bytes`` with 400, and checks the tenant header when ``tenant`` is set.
Faults: a persistent ``refuse`` status (or ``"cut"`` to close the connection without answering),
a queue of one-shot faults consumed request by request, or ``poison`` / ``poison_if``: span ids
(or a predicate) whose line makes the whole push fail with the given status (400, 413), nothing
of it stored.
"""

from __future__ import annotations

import gzip
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import orjson
import snappy

from otlp_enricher._proto import loki_push_pb2
from tests.peers.http_peer import HttpPeer


@dataclass(frozen=True)
class Fault:
    """One answer to impose: an HTTP status (with Retry-After), ``cut`` the connection, or a delay."""

    status: int = 0
    retry_after: str | None = None
    cut: bool = False
    delay_s: float = 0.0
    body: bytes = b"fault injected"


@dataclass
class StoredEntry:
    """One entry as Loki would store it."""

    labels: str
    ts_ns: int
    line: str
    metadata: dict[str, str]


@dataclass
class FakeLoki(HttpPeer):
    """The peer; start() binds, stop() closes; inspect ``entries`` (de-duplicated) and counters."""

    tenant: str = ""
    max_line_bytes: int = 256 * 1024
    refuse: Fault | None = None
    faults: deque[Fault] = field(default_factory=deque)
    poison: dict[str, int] = field(default_factory=dict)
    poison_if: Callable[[StoredEntry], int] | None = None
    entries: dict[tuple[str, int, str], StoredEntry] = field(default_factory=dict)
    duplicates: int = 0
    requests: int = 0
    answers: list[int] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        """The request handler bound to this peer."""
        return _handler(self)

    def lines(self) -> list[dict[str, Any]]:
        """Every stored line, parsed as JSON."""
        with self.changed:
            return [orjson.loads(entry.line) for entry in self.entries.values()]

    def _next_fault(self) -> Fault | None:
        with self.changed:
            if self.faults:
                return self.faults.popleft()
            return self.refuse

    def poisoned(self, entry: StoredEntry) -> int:
        """The status this entry makes its whole push fail with (0: none)."""
        status = self.poison.get(entry.metadata.get("span_id", ""), 0)
        if not status and self.poison_if is not None:
            status = self.poison_if(entry)
        return status

    def _store(self, entries: list[StoredEntry]) -> int:
        status = 204
        with self.changed:
            for entry in entries:
                if len(entry.line.encode()) > self.max_line_bytes:
                    status = 400  # Loki writes the valid entries and then answers 400 line_too_long
                    continue
                key = (entry.labels, entry.ts_ns, entry.line)
                if key in self.entries:
                    self.duplicates += 1
                else:
                    self.entries[key] = entry
            self.answers.append(status)
            self.changed.notify_all()
        return status

    def _answered(self, status: int) -> None:
        with self.changed:
            self.answers.append(status)
            self.changed.notify_all()


def decode_push(content_type: str, encoding: str, body: bytes) -> list[StoredEntry]:
    """A push body → entries; raises ValueError for what Loki would answer 400 to."""
    if content_type.startswith("application/json"):
        if encoding == "gzip":
            body = gzip.decompress(body)
        document = orjson.loads(body)
        entries = []
        for stream in document["streams"]:
            labels = "{" + ",".join(f'{k}="{v}"' for k, v in stream["stream"].items()) + "}"
            for value in stream["values"]:
                if not isinstance(value[0], str):
                    raise ValueError("timestamps must be strings")
                metadata = value[2] if len(value) > 2 else {}
                entries.append(StoredEntry(labels, int(value[0]), value[1], metadata))
        return entries
    if body.startswith(b"\xff\x06\x00\x00sNaPpY"):
        raise ValueError("snappy: corrupt input (framed format is not accepted)")
    request = loki_push_pb2.PushRequest.FromString(snappy.uncompress(body))
    return [
        StoredEntry(
            stream.labels,
            entry.timestamp.seconds * 1_000_000_000 + entry.timestamp.nanos,
            entry.line,
            {pair.name: pair.value for pair in entry.structuredMetadata},
        )
        for stream in request.streams
        for entry in stream.entries
    ]


def _handler(peer: FakeLoki) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # as Loki (Go) does: no 40 ms delayed-ACK stall per answer

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with peer.changed:
                peer.requests += 1
                peer.headers.append(dict(self.headers.items()))
            fault = peer._next_fault()
            if fault is not None and fault.delay_s:
                threading.Event().wait(fault.delay_s)
            if fault is not None and fault.cut:
                self.close_connection = True
                self.connection.shutdown(2)
                peer._answered(0)
                return
            if fault is not None and fault.status:
                self._reply(fault.status, fault.body, fault.retry_after)
                peer._answered(fault.status)
                return
            if self.path != "/loki/api/v1/push":
                self._reply(404, b"404 page not found")
                peer._answered(404)
                return
            if peer.tenant and self.headers.get("X-Scope-OrgID") != peer.tenant:
                self._reply(401, b"no org id")
                peer._answered(401)
                return
            try:
                entries = decode_push(
                    self.headers.get("Content-Type", ""), self.headers.get("Content-Encoding", ""), body
                )
            except Exception as error:
                self._reply(400, str(error).encode())
                peer._answered(400)
                return
            poisoned = [s for e in entries if (s := peer.poisoned(e))]
            if poisoned:
                self._reply(poisoned[0], b"poisoned line in the push")
                peer._answered(poisoned[0])
                return
            status = peer._store(entries)
            self._reply(status, b"" if status == 204 else b"line_too_long")

        def _reply(self, status: int, body: bytes, retry_after: str | None = None) -> None:
            self.send_response(status)
            if retry_after is not None:
                self.send_header("Retry-After", retry_after)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler
