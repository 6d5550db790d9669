"""``/metrics`` (Prometheus text or OpenMetrics with exemplars, by the scraper's Accept header),
``/healthz`` (the process is up), ``/readyz`` (receivers bound and storage writable) and, with
``exporters.prometheus.enable_lifecycle``, ``POST /-/reload`` (Prometheus' lifecycle endpoint).

``exporters.prometheus.tls`` and ``.auth`` apply here; ``auth`` guards ``/metrics`` and
``/-/reload``, so liveness and readiness probes need no credential (they reveal nothing but "ok" /
"starting"). ``/-/reload`` does what SIGHUP does (the same reload function) and answers 200 once
the new config is in force, or 500 with its problems (key paths, never a secret) while the old one
stays; 403 when the lifecycle endpoints are off, 405 for a method other than POST or PUT.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
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
RELOAD_PATH = "/-/reload"


@dataclass(frozen=True, slots=True)
class ReloadOutcome:
    """What a reload did: the problems that kept the running config (none: the new one is in
    force), and the changed sections that take effect only after a restart."""

    errors: tuple[str, ...] = ()
    restart_required_for: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether the new config is in force."""
        return not self.errors


Reloader = Callable[[], ReloadOutcome]
"""Re-read and apply the config, blocking until done (called from the server's thread)."""


class TelemetryServer:
    """Serves the registry and the health endpoints in a background thread."""

    def __init__(
        self,
        config: PrometheusExporterConfig,
        registry: CollectorRegistry,
        readiness: ReadinessCheck,
        metrics: Metrics | None = None,
        reload: Reloader | None = None,
    ) -> None:
        """``reload`` serves ``POST /-/reload`` when ``config.enable_lifecycle`` is set."""
        authenticator = build_authenticator(config.auth)
        guard = None
        if authenticator is not None:
            on_failure = metrics.auth_failures.labels(LISTENER).inc if metrics is not None else _nothing
            guard = AuthGuard(authenticator, on_failure)
        on_refused = metrics.connections_refused.labels(LISTENER).inc if metrics is not None else _nothing
        limits = ConnectionLimits(connection_cap(config.max_connections, 0.1), on_refused=on_refused)
        tls = ReloadingTls(config.tls) if config.tls is not None else None
        lifecycle = reload if config.enable_lifecycle else None
        handler = _handler_for(registry, readiness, guard, lifecycle)
        self._server = BackgroundHTTPServer(config.endpoint, handler, limits, tls)

    @property
    def port(self) -> int:
        """The bound port."""
        return self._server.port

    name = "telemetry"

    async def start(self) -> None:
        """Start serving."""
        self._server.start("telemetry-http")

    def ready(self) -> str | None:
        """Always ready once built (the port is bound in the constructor)."""
        return None

    async def shutdown(self, deadline_s: float) -> None:
        """Stop serving (idempotent)."""
        await asyncio.to_thread(self._server.shutdown)


def _nothing() -> None:
    pass


def _handler_for(
    registry: CollectorRegistry, readiness: ReadinessCheck, metrics_guard: AuthGuard | None, reload: Reloader | None
) -> type[BaseHTTPRequestHandler]:
    class Handler(GuardedHandler):
        guard = metrics_guard

        def log_message(self, format: str, *args: Any) -> None:
            """No access log: scrapes are not notable events."""

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                self._send(200, _TEXT, b"ok\n")
            elif path == "/readyz":
                ready, detail = readiness()
                self._send(200 if ready else 503, _TEXT, (detail + "\n").encode())
            elif path == "/metrics":
                if self.authorized():
                    encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
                    self._send(200, content_type, encoder(registry))
            elif path == RELOAD_PATH:
                self._send(405, _TEXT, b"only POST or PUT requests allowed\n", ("Allow", "POST, PUT"))
            else:
                self._send(404, _TEXT, b"try /metrics, /healthz or /readyz\n")

        def do_POST(self) -> None:
            if self.path.split("?", 1)[0] != RELOAD_PATH:
                self.discard_small_body()
                self._send(404, _TEXT, b"POST is served on /-/reload only\n")
            elif reload is None:
                self.discard_small_body()
                self._send(403, _TEXT, b"lifecycle API is not enabled (exporters.prometheus.enable_lifecycle)\n")
            elif self.authorized():
                self.discard_small_body()
                outcome = reload()
                self._send(200 if outcome.ok else 500, _TEXT, _reload_answer(outcome))

        do_PUT = do_POST

        def _send(self, code: int, content_type: str, body: bytes, *headers: tuple[str, str]) -> None:
            self.send_response(code)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


_TEXT = "text/plain; charset=utf-8"


def _reload_answer(outcome: ReloadOutcome) -> bytes:
    if not outcome.ok:
        return ("failed to reload config; the running one is kept:\n  " + "\n  ".join(outcome.errors) + "\n").encode()
    restart = outcome.restart_required_for
    return b"config reloaded\n" + (f"restart required for: {', '.join(restart)}\n".encode() if restart else b"")
