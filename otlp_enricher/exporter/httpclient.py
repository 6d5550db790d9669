"""A minimal keep-alive HTTP POST client for the Loki and OTLP/HTTP transports, run in a thread.

The standard library's ``http.client`` is enough for one request in flight per exporter; it is
called through ``asyncio.to_thread`` so the event loop never blocks. Connection problems become
:class:`~otlp_enricher.exporter.sender.SendFailed` (retryable); the HTTP status is the
caller's to classify.
"""

from __future__ import annotations

import asyncio
import email.utils
import http.client
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from otlp_enricher.exporter.config import TlsConfig
from otlp_enricher.exporter.sender import SendFailed


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """Status, ``Retry-After`` in seconds when given, and the start of the body (for reasons)."""

    status: int
    retry_after_s: float | None
    body: bytes


def ssl_context(tls: TlsConfig) -> ssl.SSLContext:
    """A client TLS context from the exporter's ``tls`` settings."""
    context = ssl.create_default_context(cafile=tls.ca_file or None)
    if tls.cert_file:
        context.load_cert_chain(tls.cert_file, tls.key_file or None)
    if tls.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def parse_retry_after(value: str | None, now_s: float | None = None) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date); ``None`` when absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now_s is None else now_s))


class HttpPoster:
    """POSTs to one URL over a reused connection; one request at a time."""

    def __init__(self, url: str, tls: TlsConfig, timeout_s: float, default_path: str = "") -> None:
        parts = urlsplit(url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or "localhost"
        self._port = parts.port or (443 if self._https else 80)
        path = parts.path if parts.path not in ("", "/") else default_path or "/"
        self._path = path + (f"?{parts.query}" if parts.query else "")
        self._timeout_s = timeout_s
        self._context = ssl_context(tls) if self._https else None
        self._connection: http.client.HTTPConnection | None = None
        self._lock = asyncio.Lock()

    async def post(self, body: bytes, headers: dict[str, str]) -> HttpAnswer:
        """Send one request; raise a retryable :class:`SendFailed` when no answer came."""
        async with self._lock:
            return await asyncio.to_thread(self._post, body, headers)

    def _post(self, body: bytes, headers: dict[str, str]) -> HttpAnswer:
        for attempt in (1, 2):  # a kept-alive connection the server closed is retried once, fresh
            connection = self._connection or self._connect()
            try:
                connection.request("POST", self._path, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as error:
                self.close_now()
                if attempt == 2:
                    raise SendFailed(f"connection lost: {error}", retryable=True) from error
                continue
            except (OSError, http.client.HTTPException) as error:
                self.close_now()
                raise SendFailed(f"no answer: {type(error).__name__}: {error}", retryable=True) from error
            if response.will_close:
                self.close_now()
            return HttpAnswer(response.status, parse_retry_after(response.getheader("Retry-After")), data[:512])
        raise AssertionError("unreachable")

    def _connect(self) -> http.client.HTTPConnection:
        if self._https:
            self._connection = http.client.HTTPSConnection(
                self._host, self._port, timeout=self._timeout_s, context=self._context
            )
        else:
            self._connection = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout_s)
        return self._connection

    def close_now(self) -> None:
        """Drop the connection (the next request opens a new one)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def close(self) -> None:
        """Release the connection."""
        async with self._lock:
            self.close_now()
