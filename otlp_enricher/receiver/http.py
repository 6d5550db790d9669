"""OTLP/HTTP receiver: ``POST /v1/traces`` in protobuf or JSON, gzip accepted.

The answer uses the request's content type: ``ExportTraceServiceResponse`` on success, a
``google.rpc.Status`` on failure. 400 for an undecodable body, 413 past the size limit (after
decompression), 415 for other content types, 503 with ``Retry-After`` when the exporters are full
or ``max_concurrent_requests`` are already being served, 401 with ``WWW-Authenticate`` without the
configured credential (checked before the body is read).

Framing is strict (RFC 9112 §6–7): a Content-Length that is not one decimal number, or together
with Transfer-Encoding, is 400; a POST with neither is 411; chunk sizes are hex digits on a line
ending in CRLF, bounded in length, and count against the limit; a body that ends early is 400, one
that stalls past ``read_timeout`` is 408. A gzip body must be exactly one complete member: a
truncated stream or trailing data (a second member) is 400, never a silent partial accept.

OTLP/HTTP sends no deadline, so a request is given the Collector exporter's default timeout
(:data:`CLIENT_TIMEOUT_S`) from the moment its headers are read: one whose turn on the pipeline
comes later is answered 503 with ``Retry-After`` unprocessed, and one whose processing began is
answered with its outcome however long it takes, so nothing is written that is answered as failed.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import Message

from otlp_enricher.httpserver import AuthGuard, BackgroundHTTPServer, ConnectionLimits, GuardedHandler, connection_cap
from otlp_enricher.otlp_json import OtlpDecodeError, decode_json_request
from otlp_enricher.otlp_protocol import JSON, PROTOBUF, TRACES_PATH
from otlp_enricher.pipeline import Backpressure, ExportOutcome, Pipeline
from otlp_enricher.receiver.answers import (
    INTERNAL_RETRY_S,
    SHUTTING_DOWN_RETRY_S,
    bad_request_status,
    export_response,
    retry_after_header,
    retry_status,
)
from otlp_enricher.receiver.config import HttpReceiverConfig
from otlp_enricher.security.auth import build_authenticator
from otlp_enricher.security.tls import ReloadingTls
from otlp_enricher.telemetry.logging import get_logger
from otlp_enricher.telemetry.metrics import Metrics

CLIENT_TIMEOUT_S = 30.0
"""OTLP/HTTP carries no deadline; the Collector's otlphttp exporter gives up after 30 s by default."""
_READ_CHUNK = 1 << 16
_MAX_CHUNK_LINE = 1024
_MAX_TRAILER_LINES = 64
_CONTENT_LENGTH = re.compile(r"[0-9]{1,19}")
_CHUNK_SIZE = re.compile(rb"([0-9a-fA-F]{1,15})(;[^\r\n]*)?\r\n")


class _TooLarge(Exception):
    pass


class DeadlinePassed(Exception):
    """The client would have given up before the request's turn came; it was not processed."""


class _BadFraming(Exception):
    """The request's framing is wrong; ``status`` is the answer (400, 408 or 411)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class HttpReceiver:
    """Serves OTLP/HTTP traces into a :class:`Pipeline` running on ``loop``."""

    def __init__(
        self, config: HttpReceiverConfig, pipeline: Pipeline, metrics: Metrics, reuse_port: bool = False
    ) -> None:
        """``reuse_port``: share the port with sibling workers (``service.workers``)."""
        self._reuse_port = reuse_port
        self._config = config
        self._pipeline = pipeline
        self._metrics = metrics
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: BackgroundHTTPServer | None = None
        self.accepting = False
        self.max_body_bytes = config.max_request_body_size_mib * 1024 * 1024
        self.read_timeout_s = config.read_timeout_s
        self.deadline_s = CLIENT_TIMEOUT_S
        self.slots = threading.BoundedSemaphore(config.max_concurrent_requests)
        authenticator = build_authenticator(config.auth)
        self.guard = AuthGuard(authenticator, metrics.auth_failures.labels("http").inc) if authenticator else None
        self._tls = ReloadingTls(config.tls) if config.tls is not None else None
        self.log = get_logger("receiver.http")
        self.port = 0

    name = "receiver.http"

    async def start(self) -> None:
        """Bind and start serving; :attr:`port` is the bound port."""
        self._loop = asyncio.get_running_loop()
        config = self._config
        limits = ConnectionLimits(
            connection_cap(config.max_connections, 0.4),
            handshake_timeout_s=config.read_header_timeout_s,
            on_refused=self._metrics.connections_refused.labels("http").inc,
        )
        self._server = BackgroundHTTPServer(config.endpoint, _handler_for(self), limits, self._tls, self._reuse_port)
        self._server.start("otlp-http")
        self.accepting = True
        self.port = self._server.port
        self.log.info("receiver_started", endpoint=str(config.endpoint), port=self.port, tls=self._tls is not None)

    def ready(self) -> str | None:
        """Ready once listening."""
        return None if self._server is not None else "the OTLP/HTTP receiver is not listening"

    async def shutdown(self, deadline_s: float) -> None:
        """Answer new requests 503 with Retry-After at once, then stop serving (requests in
        progress finish: each is bounded by the read timeout and the client's deadline)."""
        self.accepting = False
        server, self._server = self._server, None
        if server is not None:
            await asyncio.to_thread(server.shutdown)
            self.log.info("receiver_stopped")

    def export(self, raw: bytes, deadline: float) -> ExportOutcome:
        """Run the pipeline on the event loop from a handler thread, if it gets its turn before
        ``deadline`` (``time.monotonic``; else :class:`DeadlinePassed`, nothing done), and wait
        for it to end: work once begun is answered with its outcome, never abandoned half-way."""
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(self._export_before(raw, deadline), self._loop)
        return future.result()

    async def _export_before(self, raw: bytes, deadline: float) -> ExportOutcome:
        if time.monotonic() >= deadline:
            raise DeadlinePassed
        return await self._pipeline.export(raw, "http")

    def count(self, result: str) -> None:
        """Count one answered request."""
        self._metrics.export_requests.labels("http", result).inc()


def _handler_for(receiver: HttpReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(_OtlpHandler):
        owner = receiver
        guard = receiver.guard
        idle_timeout_s = receiver._config.idle_timeout_s
        timeout = receiver._config.read_header_timeout_s

    return Handler


class _OtlpHandler(GuardedHandler):
    owner: HttpReceiver
    server_version = "otlp-enricher"

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request access logs (one event per notable thing, never per request)."""

    def do_GET(self) -> None:
        self._plain(405, "use POST /v1/traces")

    def do_POST(self) -> None:
        if self.path.split("?", 1)[0] != TRACES_PATH:
            self.discard_small_body()
            self._plain(404, "only /v1/traces is served here")
            return
        if not self.authorized():
            return
        owner = self.owner
        if not owner.slots.acquire(blocking=False):
            content_type = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
            self.discard_small_body()
            self._retry(JSON if content_type == JSON else PROTOBUF, "too many concurrent exports", 1.0, "busy")
            return
        try:
            self._export()
        finally:
            owner.slots.release()

    def _export(self) -> None:
        content_type = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        answer_type = JSON if content_type == JSON else PROTOBUF
        owner = self.owner
        deadline = time.monotonic() + owner.deadline_s  # the client's clock started before ours
        try:
            body = self._read_body()
        except _TooLarge:
            owner.count("too_large")
            self._send(413, answer_type, bad_request_status(f"body exceeds {owner.max_body_bytes} bytes"))
            self.close_connection = True
            return
        except _BadFraming as error:
            owner.count("timeout" if error.status == 408 else "invalid")
            self.close_connection = True
            self._send(error.status, answer_type, bad_request_status(str(error)))
            return
        except (ValueError, OSError, zlib.error) as error:
            owner.count("invalid")
            self.close_connection = True
            self._send(400, answer_type, bad_request_status(f"unreadable body: {error}"))
            return
        if content_type not in (PROTOBUF, JSON):
            owner.count("unsupported_media_type")
            message = f"unsupported Content-Type {content_type!r}; use {PROTOBUF} or {JSON}"
            self._send(415, PROTOBUF, bad_request_status(message))
            return
        if not owner.accepting:
            self._retry(answer_type, "shutting down", SHUTTING_DOWN_RETRY_S, "shutting_down")
            return
        try:
            raw = decode_json_request(body).SerializeToString() if content_type == JSON else body
            outcome = owner.export(raw, deadline)
        except OtlpDecodeError as error:
            owner.count("invalid")
            self._send(400, answer_type, bad_request_status(str(error)))
            return
        except DeadlinePassed:
            self._retry(answer_type, "not processed: the request waited past its deadline", 1.0, "deadline_exceeded")
            return
        except Backpressure as full:
            self._retry(answer_type, str(full), full.retry_after_s, "backpressure")
            return
        except Exception:
            owner.log.exception("export_failed", transport="http")
            self._retry(answer_type, "internal error; retry later", INTERNAL_RETRY_S, "internal")
            return
        owner.count("partial" if outcome.rejected else "ok")
        self._send(200, answer_type, export_response(outcome))

    def _read_body(self) -> bytes:
        limit = self.owner.max_body_bytes
        deadline = time.monotonic() + self.owner.read_timeout_s
        transfer = [v.strip().lower() for v in ",".join(self.headers.get_all("Transfer-Encoding") or ()).split(",")]
        lengths = self.headers.get_all("Content-Length") or []
        if transfer != [""]:
            if transfer != ["chunked"]:
                raise _BadFraming(400, "only Transfer-Encoding: chunked is supported")
            if lengths:
                raise _BadFraming(400, "Content-Length and Transfer-Encoding together")
            body = self._read_chunked(limit, deadline)
        else:
            if not lengths:
                raise _BadFraming(411, "a Content-Length (or chunked transfer encoding) is required")
            if len(set(lengths)) != 1 or not _CONTENT_LENGTH.fullmatch(lengths[0].strip()):
                raise _BadFraming(400, "Content-Length must be one non-negative decimal number")
            length = int(lengths[0])
            if length > limit:
                # A client that writes its whole body before reading would otherwise meet a reset
                # instead of the 413; a body far past the limit is not worth reading for that.
                if length <= 2 * limit:
                    self._read_exactly(length, deadline, keep=False)
                raise _TooLarge
            body = self._read_exactly(length, deadline)
        encoding = (self.headers.get("Content-Encoding") or "identity").strip().lower()
        if encoding == "gzip":
            return _gunzip(body, limit)
        if encoding != "identity":
            raise ValueError(f"unsupported Content-Encoding {encoding!r}; use gzip or none")
        return body

    def _read_exactly(self, length: int, deadline: float, keep: bool = True) -> bytes:
        """``length`` bytes of body by ``deadline`` (only read and dropped unless ``keep``)."""
        parts: list[bytes] = []
        remaining = length
        while remaining > 0:
            if time.monotonic() > deadline:
                raise _BadFraming(408, "the body was not received within read_timeout")
            try:
                chunk = self.rfile.read1(min(remaining, _READ_CHUNK))
            except TimeoutError:
                raise _BadFraming(408, "the body stalled (read timeout)") from None
            if not chunk:
                raise _BadFraming(400, f"the body ended {remaining} bytes before its Content-Length")
            if keep:
                parts.append(chunk)
            remaining -= len(chunk)
        return b"".join(parts)

    def _read_line(self, deadline: float) -> bytes:
        if time.monotonic() > deadline:
            raise _BadFraming(408, "the body was not received within read_timeout")
        try:
            line: bytes = self.rfile.readline(_MAX_CHUNK_LINE + 1)
        except TimeoutError:
            raise _BadFraming(408, "the body stalled (read timeout)") from None
        if len(line) > _MAX_CHUNK_LINE or not line.endswith(b"\r\n"):
            raise _BadFraming(400, "malformed chunked encoding (line too long or not ended by CRLF)")
        return line

    def _read_chunked(self, limit: int, deadline: float) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            match = _CHUNK_SIZE.fullmatch(self._read_line(deadline))
            if match is None:
                raise _BadFraming(400, "malformed chunk size (expected hex digits)")
            size = int(match.group(1), 16)
            if size == 0:
                break
            total += size
            if total > limit:
                raise _TooLarge
            parts.append(self._read_exactly(size, deadline))
            if self._read_line(deadline) != b"\r\n":
                raise _BadFraming(400, "malformed chunked encoding (chunk longer than its size)")
        for _ in range(_MAX_TRAILER_LINES):
            if self._read_line(deadline) == b"\r\n":
                return b"".join(parts)
        raise _BadFraming(400, "too many trailer lines")

    def _retry(self, answer_type: str, message: str, retry_after_s: float, result: str) -> None:
        self.owner.count(result)
        headers = {"Retry-After": retry_after_header(retry_after_s)}
        self._send(503, answer_type, retry_status(message, retry_after_s), headers)

    def _send(self, code: int, answer_type: str, message: Message, headers: dict[str, str] | None = None) -> None:
        json_answer = answer_type == JSON
        body = orjson.dumps(json_format.MessageToDict(message)) if json_answer else message.SerializeToString()
        self.send_response(code)
        self.send_header("Content-Type", answer_type)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _plain(self, code: int, text: str) -> None:
        body = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _gunzip(body: bytes, limit: int) -> bytes:
    """Exactly one complete gzip member, inflated to at most ``limit`` bytes."""
    inflater = zlib.decompressobj(wbits=31)
    inflated = inflater.decompress(body, limit + 1)
    if len(inflated) > limit or inflater.unconsumed_tail:
        raise _TooLarge
    if not inflater.eof:
        raise _BadFraming(400, "truncated gzip body")
    if inflater.unused_data:
        raise _BadFraming(400, "data after the gzip member (several members are not accepted)")
    return inflated
