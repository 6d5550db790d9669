"""What every fake HTTP backend shares: serve on 127.0.0.1:0 in a thread, stop, wait for a state."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


class HttpPeer:
    """Base of the fake HTTP peers; subclasses provide ``changed`` (notified on every request)
    and ``handler_class()``."""

    changed: threading.Condition

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        """The request handler bound to this peer."""
        raise NotImplementedError

    def start(self) -> Self:
        """Bind 127.0.0.1:0 and serve in a daemon thread."""
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self.handler_class())
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    @property
    def url(self) -> str:
        """Base URL of the peer."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()

    def wait_until(self, predicate: Callable[[Self], bool], timeout_s: float = 20.0) -> bool:
        """Block until ``predicate(self)`` holds (re-checked on every request); False on timeout."""
        with self.changed:
            return self.changed.wait_for(lambda: predicate(self), timeout_s)
