"""A stdlib threaded HTTP server run beside the event loop, shared by the OTLP/HTTP receiver and
the /metrics + health endpoint. Handlers that need the pipeline hop onto the loop with
``asyncio.run_coroutine_threadsafe``, so the pipeline itself stays single-threaded.

Each accepted connection gets its own thread, bounded by ``max_connections``: past it the
connection is answered ``503`` (plain HTTP) or closed (TLS) at once, so a flood of idle sockets
costs one file descriptor each only up to the cap and the process stays under its fd limit. TLS
handshakes run in the connection's thread (never in the accept loop) under the read timeout.
"""

from __future__ import annotations

import contextlib
import resource
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

from otlp_enricher.confignode import Endpoint
from otlp_enricher.security.auth import Authenticator
from otlp_enricher.security.tls import ReloadingTls

_FD_RESERVE = 64  # spools, dead letters, outgoing connections, logs
_BUSY_ANSWER = (
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 26\r\nConnection: close\r\n\r\ntoo many open connections\n"
)


def connection_cap(configured: int, share: float) -> int:
    """``configured``, or (0) ``share`` of the soft fd limit after a reserve, at least 8."""
    if configured > 0:
        return configured
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 65_536
    return max(8, int((soft - _FD_RESERVE) * share))


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """How many connections a server holds at once and how long an idle or slow one may stay."""

    max_connections: int
    handshake_timeout_s: float = 10.0
    on_refused: Callable[[], None] = lambda: None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        limits: ConnectionLimits,
        tls: ReloadingTls | None,
        reuse_port: bool = False,
    ) -> None:
        self.allow_reuse_port = reuse_port  # socketserver sets SO_REUSEPORT before bind
        self.limits = limits
        self.tls = tls
        self._open = threading.BoundedSemaphore(limits.max_connections)
        self.refused_connections = 0
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._open.acquire(blocking=False):
            self.refused_connections += 1
            self.limits.on_refused()
            self._refuse(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._open.release()
            raise

    def _refuse(self, request: socket.socket) -> None:
        try:
            if self.tls is None:
                request.setblocking(False)
                request.send(_BUSY_ANSWER)
        except OSError:
            pass
        finally:
            self.shutdown_request(request)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._open.release()

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(self.limits.handshake_timeout_s)
        try:
            wrapped = self.tls.ssl_context().wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            return  # no certificate, wrong CA, plain HTTP on a TLS port, or too slow
        try:
            super().finish_request(wrapped, client_address)
        finally:
            with contextlib.suppress(OSError):
                wrapped.shutdown(socket.SHUT_WR)
            wrapped.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection that broke mid-request is the client's business, not a traceback."""


@dataclass(frozen=True, slots=True)
class AuthGuard:
    """The authenticator of one listener and what to do (count) when a request fails it."""

    authenticator: Authenticator
    on_failure: Callable[[], None]


class GuardedHandler(BaseHTTPRequestHandler):
    """A handler with an idle timeout between requests, a read timeout once a request has begun,
    and :meth:`authorized`, which answers 401 with ``WWW-Authenticate`` when the credential is wrong."""

    protocol_version = "HTTP/1.1"
    idle_timeout_s: ClassVar[float] = 60.0
    timeout = 10.0  # socket timeout while a request is being read (headers, then body per read)
    guard: ClassVar[AuthGuard | None] = None

    def handle_one_request(self) -> None:
        """Wait ``idle_timeout_s`` for the next request to begin, then read it under ``timeout``."""
        try:
            self.connection.settimeout(self.idle_timeout_s)
            if not self.rfile.peek(1):  # type: ignore[attr-defined]  # rfile is a BufferedReader
                self.close_connection = True
                return
            self.connection.settimeout(self.timeout)
        except (TimeoutError, OSError):
            self.close_connection = True
            return
        super().handle_one_request()

    def discard_small_body(self, limit: int = 1 << 20) -> None:
        """Read and drop a body of at most ``limit`` bytes before an early answer, so that closing
        the connection does not reset it under the client before it reads the answer."""
        length = (self.headers.get("Content-Length") or "").strip()
        remaining = int(length) if length.isdigit() and int(length) <= limit else 0
        try:
            while remaining > 0:
                chunk = self.rfile.read(min(remaining, 1 << 16))
                if not chunk:
                    break
                remaining -= len(chunk)
        except OSError:
            pass
        self.close_connection = True

    def authorized(self) -> bool:
        """Whether the request carries the listener's credential; if not, the 401 is sent."""
        guard = self.guard
        if guard is None or guard.authenticator.check(self.headers.get("Authorization")):
            return True
        guard.on_failure()
        self.discard_small_body()
        body = b"unauthenticated: send the Authorization header this endpoint expects\n"
        self.send_response(401)
        self.send_header("WWW-Authenticate", guard.authenticator.challenge)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True
        return False


class BackgroundHTTPServer:
    """Binds at construction (so a port conflict fails start-up), serves in a thread once started."""

    def __init__(
        self,
        endpoint: Endpoint,
        handler: type[BaseHTTPRequestHandler],
        limits: ConnectionLimits | None = None,
        tls: ReloadingTls | None = None,
        reuse_port: bool = False,
    ) -> None:
        limits = limits or ConnectionLimits(connection_cap(0, 0.1))
        self._server = _Server((endpoint.host, endpoint.port), handler, limits, tls, reuse_port)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self._server.server_address[1])

    @property
    def refused_connections(self) -> int:
        """Connections refused because ``max_connections`` were open."""
        return self._server.refused_connections

    def start(self, name: str) -> None:
        """Serve requests in a daemon thread."""
        self._thread = threading.Thread(target=self._server.serve_forever, name=name, daemon=True)
        self._thread.start()

    def shutdown(self) -> None:
        """Stop serving and close the socket; idempotent."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()
