"""A fake Tempo speaking OTLP/HTTP (``POST /v1/traces``, protobuf, gzip or not) with queued faults."""

from __future__ import annotations

import gzip
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


@dataclass
class FakeOtlpHttp:
    """The peer; ``faults`` holds (status, Retry-After) answers consumed one per request."""

    faults: deque[tuple[int, str | None]] = field(default_factory=deque)
    spans: dict[tuple[bytes, bytes], Any] = field(default_factory=dict)
    requests: int = 0
    encodings: list[str] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def start(self) -> FakeOtlpHttp:
        """Bind 127.0.0.1:0 and serve."""
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()

    def wait_until(self, predicate: Callable[[FakeOtlpHttp], bool], timeout_s: float = 20.0) -> bool:
        """Block until ``predicate(self)`` holds; False on timeout."""
        with self.changed:
            return self.changed.wait_for(lambda: predicate(self), timeout_s)


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
