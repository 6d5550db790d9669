"""OTLP/HTTP receiver: ``POST /v1/traces`` in protobuf or JSON, gzip accepted.

The answer uses the request's content type: ``ExportTraceServiceResponse`` on success, a
``google.rpc.Status`` on failure. 400 for an undecodable body, 413 past the size limit (after
decompression), 415 for other content types, 503 with ``Retry-After`` when the exporters are full.
"""

from __future__ import annotations

import asyncio
import zlib
from http.server import BaseHTTPRequestHandler
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import Message

from otlp_enricher.config import HttpReceiverConfig
from otlp_enricher.httpserver import BackgroundHTTPServer
from otlp_enricher.otlp_json import OtlpDecodeError, decode_json_request
from otlp_enricher.pipeline import Backpressure, ExportOutcome, Pipeline
from otlp_enricher.receiver.answers import (
    INTERNAL_RETRY_S,
    SHUTTING_DOWN_RETRY_S,
    bad_request_status,
    export_response,
    retry_after_header,
    retry_status,
)
from otlp_enricher.telemetry.logging import get_logger
from otlp_enricher.telemetry.metrics import Metrics

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_PIPELINE_TIMEOUT_S = 30.0


class _TooLarge(Exception):
    pass


class HttpReceiver:
    """Serves OTLP/HTTP traces into a :class:`Pipeline` running on ``loop``."""

    def __init__(self, config: HttpReceiverConfig, pipeline: Pipeline, metrics: Metrics) -> None:
        self._config = config
        self._pipeline = pipeline
        self._metrics = metrics
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: BackgroundHTTPServer | None = None
        self.accepting = False
        self.max_body_bytes = config.max_request_body_size_mib * 1024 * 1024
        self.log = get_logger("receiver.http")
        self.port = 0

    async def start(self) -> int:
        """Bind and start serving; returns the bound port."""
        self._loop = asyncio.get_running_loop()
        self._server = BackgroundHTTPServer(self._config.endpoint, _handler_for(self))
        self._server.start("otlp-http")
        self.accepting = True
        self.port = self._server.port
        self.log.info("receiver_started", endpoint=str(self._config.endpoint), port=self.port)
        return self.port

    async def stop_accepting(self) -> None:
        """Answer new requests 503 with Retry-After; in-flight ones finish."""
        self.accepting = False

    async def shutdown(self, grace_s: float) -> None:
        """Stop serving."""
        self.accepting = False
        if self._server is not None:
            await asyncio.to_thread(self._server.shutdown)
            self._server = None
            self.log.info("receiver_stopped")

    def export(self, raw: bytes) -> ExportOutcome:
        """Run the pipeline on the event loop from a handler thread."""
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(self._pipeline.export(raw, "http"), self._loop)
        return future.result(_PIPELINE_TIMEOUT_S)

    def count(self, result: str) -> None:
        """Count one answered request."""
        self._metrics.export_requests.labels("http", result).inc()


def _handler_for(receiver: HttpReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(_OtlpHandler):
        owner = receiver

    return Handler


class _OtlpHandler(BaseHTTPRequestHandler):
    owner: HttpReceiver
    protocol_version = "HTTP/1.1"
    server_version = "otlp-enricher"

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request access logs (one event per notable thing, never per request)."""

    def do_GET(self) -> None:
        self._plain(405, "use POST /v1/traces")

    def do_POST(self) -> None:
        if self.path.split("?", 1)[0] != "/v1/traces":
            self._drain()
            self._plain(404, "only /v1/traces is served here")
            return
        content_type = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        answer_type = JSON if content_type == JSON else PROTOBUF
        owner = self.owner
        try:
            body = self._read_body()
        except _TooLarge:
            owner.count("too_large")
            self._send(413, answer_type, bad_request_status(f"body exceeds {owner.max_body_bytes} bytes"))
            self.close_connection = True
            return
        except (ValueError, OSError, zlib.error) as error:
            owner.count("invalid")
            self._send(400, answer_type, bad_request_status(f"unreadable body: {error}"))
            self.close_connection = True
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
            outcome = owner.export(raw)
        except OtlpDecodeError as error:
            owner.count("invalid")
            self._send(400, answer_type, bad_request_status(str(error)))
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
        if (self.headers.get("Transfer-Encoding") or "").lower() == "chunked":
            body = self._read_chunked(limit)
        else:
            length = int(self.headers.get("Content-Length") or 0)
            if length > limit:
                self._drain()
                raise _TooLarge
            body = self.rfile.read(length)
        encoding = (self.headers.get("Content-Encoding") or "identity").lower()
        if encoding == "gzip":
            inflater = zlib.decompressobj(wbits=31)
            body = inflater.decompress(body, limit + 1)
            if len(body) > limit or inflater.unconsumed_tail:
                raise _TooLarge
        elif encoding != "identity":
            raise ValueError(f"unsupported Content-Encoding {encoding!r}; use gzip or none")
        return body

    def _read_chunked(self, limit: int) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                self.rfile.readline()
                return b"".join(parts)
            total += size
            if total > limit:
                raise _TooLarge
            parts.append(self.rfile.read(size))
            self.rfile.readline()

    def _drain(self) -> None:
        """Read and discard a body we will not use, so the sender gets our answer instead of a
        broken pipe; a body far past the limit is not read, the connection is closed instead."""
        length = int(self.headers.get("Content-Length") or 0)
        if 0 < length <= 4 * self.owner.max_body_bytes:
            while length > 0:
                chunk = self.rfile.read(min(length, 1 << 16))
                if not chunk:
                    break
                length -= len(chunk)
        elif length:
            self.close_connection = True

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
