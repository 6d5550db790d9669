"""A stdlib threaded HTTP server run beside the event loop, shared by the OTLP/HTTP receiver and
the /metrics + health endpoint. Handlers that need the pipeline hop onto the loop with
``asyncio.run_coroutine_threadsafe``, so the pipeline itself stays single-threaded.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from otlp_enricher.config import Endpoint


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class BackgroundHTTPServer:
    """Binds at construction (so a port conflict fails start-up), serves in a thread once started."""

    def __init__(self, endpoint: Endpoint, handler: type[BaseHTTPRequestHandler]) -> None:
        self._server = _Server((endpoint.host, endpoint.port), handler)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self._server.server_address[1])

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
