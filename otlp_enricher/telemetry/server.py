"""``/metrics`` (Prometheus text or OpenMetrics with exemplars, by the scraper's Accept header),
``/healthz`` (the process is up) and ``/readyz`` (receivers bound and storage writable).
"""

from __future__ import annotations

from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from otlp_enricher.config import Endpoint
from otlp_enricher.httpserver import BackgroundHTTPServer

ReadinessCheck = Callable[[], tuple[bool, str]]


class TelemetryServer:
    """Serves the registry and the health endpoints in a background thread."""

    def __init__(self, endpoint: Endpoint, registry: CollectorRegistry, readiness: ReadinessCheck) -> None:
        self._server = BackgroundHTTPServer(endpoint, _handler_for(registry, readiness))

    @property
    def port(self) -> int:
        """The bound port."""
        return self._server.port

    def start(self) -> None:
        """Start serving."""
        self._server.start("telemetry-http")

    def shutdown(self) -> None:
        """Stop serving."""
        self._server.shutdown()


def _handler_for(registry: CollectorRegistry, readiness: ReadinessCheck) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            """No access log: scrapes are not notable events."""

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
                self._send(200, content_type, encoder(registry))
            elif path == "/healthz":
                self._send(200, "text/plain; charset=utf-8", b"ok\n")
            elif path == "/readyz":
                ready, detail = readiness()
                self._send(200 if ready else 503, "text/plain; charset=utf-8", (detail + "\n").encode())
            else:
                self._send(404, "text/plain; charset=utf-8", b"try /metrics, /healthz or /readyz\n")

        def _send(self, code: int, content_type: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler
