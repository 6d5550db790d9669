"""A fake Tempo speaking OTLP/HTTP (``POST /v1/traces``, protobuf, gzip or not) with queued faults."""

from __future__ import annotations

import gzip
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.peers.http_peer import HttpPeer


@dataclass
class FakeOtlpHttp(HttpPeer):
    """The peer; ``faults`` holds (status, Retry-After) answers consumed one per request."""

    faults: deque[tuple[int, str | None]] = field(default_factory=deque)
    spans: dict[tuple[bytes, bytes], Any] = field(default_factory=dict)
    requests: int = 0
    encodings: list[str] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        """The request handler bound to this peer."""
        return _handler(self)


def _handler(peer: FakeOtlpHttp) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with peer.changed:
                peer.requests += 1
                peer.encodings.append(self.headers.get("Content-Encoding", ""))
                fault = peer.faults.popleft() if peer.faults else None
                peer.changed.notify_all()
            if fault is not None:
                self._reply(fault[0], b"fault injected", fault[1])
                return
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            request = ExportTraceServiceRequest.FromString(body)
            with peer.changed:
                for resource_spans in request.resource_spans:
                    for scope_spans in resource_spans.scope_spans:
                        for span in scope_spans.spans:
                            peer.spans[(bytes(span.trace_id), bytes(span.span_id))] = span
                peer.changed.notify_all()
            self._reply(200, ExportTraceServiceResponse().SerializeToString())

        def _reply(self, status: int, body: bytes, retry_after: str | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/x-protobuf")
            if retry_after is not None:
                self.send_header("Retry-After", retry_after)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler
