"""``/metrics`` (Prometheus text or OpenMetrics with exemplars, by the scraper's Accept header),
``/healthz`` (the process is up) and ``/readyz`` (receivers bound and storage writable).

``exporters.prometheus.tls`` and ``.auth`` apply here; ``auth`` guards ``/metrics`` only, so
liveness and readiness probes need no credential (they reveal nothing but "ok" / "starting").
"""

from __future__ import annotations

from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from otlp_enricher.exporter.config import PrometheusExporterConfig
from otlp_enricher.httpserver import AuthGuard, BackgroundHTTPServer, ConnectionLimits, GuardedHandler, connection_cap
from otlp_enricher.security.auth import build_authenticator
from otlp_enricher.security.tls import ReloadingTls
from otlp_enricher.telemetry.metrics import Metrics

ReadinessCheck = Callable[[], tuple[bool, str]]
LISTENER = "prometheus"


class TelemetryServer:
    """Serves the registry and the health endpoints in a background thread."""

    def __init__(
        self,
        config: PrometheusExporterConfig,
        registry: CollectorRegistry,
        readiness: ReadinessCheck,
        metrics: Metrics | None = None,
    ) -> None:
        authenticator = build_authenticator(config.auth)
        guard = None
        if authenticator is not None:
            on_failure = metrics.auth_failures.labels(LISTENER).inc if metrics is not None else _nothing
            guard = AuthGuard(authenticator, on_failure)
        on_refused = metrics.connections_refused.labels(LISTENER).inc if metrics is not None else _nothing
        limits = ConnectionLimits(connection_cap(config.max_connections, 0.1), on_refused=on_refused)
        tls = ReloadingTls(config.tls) if config.tls is not None else None
        self._server = BackgroundHTTPServer(config.endpoint, _handler_for(registry, readiness, guard), limits, tls)

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


def _nothing() -> None:
    pass


def _handler_for(
    registry: CollectorRegistry, readiness: ReadinessCheck, metrics_guard: AuthGuard | None
) -> type[BaseHTTPRequestHandler]:
    class Handler(GuardedHandler):
        guard = metrics_guard

        def log_message(self, format: str, *args: Any) -> None:
            """No access log: scrapes are not notable events."""

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                self._send(200, "text/plain; charset=utf-8", b"ok\n")
            elif path == "/readyz":
                ready, detail = readiness()
                self._send(200 if ready else 503, "text/plain; charset=utf-8", (detail + "\n").encode())
            elif path == "/metrics":
                if self.authorized():
                    encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
                    self._send(200, content_type, encoder(registry))
            else:
                self._send(404, "text/plain; charset=utf-8", b"try /metrics, /healthz or /readyz\n")

        def _send(self, code: int, content_type: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler
