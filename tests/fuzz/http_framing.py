"""HTTP request framing of the OTLP/HTTP receiver (``receiver/http.py`` on ``httpserver.py``).

Each input is sent as raw bytes on a new connection to a real receiver on 127.0.0.1 (the write
side is then closed, so a short body ends instead of stalling), and the answer is read to the end.
Properties: every answer is a documented status; no request handler raises (the server's error hook
is watched: it would close the connection silently); no request is answered "internal error"; and
the receiver still answers a well-formed request 200 afterwards, so malformed input never kills it.
"""

from __future__ import annotations

import contextlib
import gzip
import re
import socket
from typing import Any

from otlp_enricher import httpserver
from tests.fuzz.seeds import json_lines, protobuf_requests
from tests.receiver.conftest import Running, start_receivers

MAX_LEN = 1 << 16
ANSWERS = frozenset({200, 400, 401, 404, 405, 408, 411, 413, 414, 415, 431, 501, 503, 505})
_STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3}) ")
_PROBE_EVERY = 32
_raised: list[BaseException] = []


def _watch_errors(self: Any, request: Any, client_address: Any) -> None:
    error = __import__("sys").exc_info()[1]
    if error is not None and not isinstance(error, OSError):
        _raised.append(error)


httpserver._Server.handle_error = _watch_errors  # type: ignore[method-assign]
_RECEIVERS = contextlib.contextmanager(start_receivers)(max_body_mib=1)  # kept: collected, it would stop them
_RUNNING: Running = _RECEIVERS.__enter__()
_HOST, _PORT = "127.0.0.1", int(_RUNNING.http_url.rsplit(":", 1)[1].split("/", 1)[0])
_inputs = 0


def post(body: bytes, content_type: str = "application/x-protobuf", headers: str = "", chunked: bool = False) -> bytes:
    """A raw ``POST /v1/traces`` request."""
    head = f"POST /v1/traces HTTP/1.1\r\nHost: fuzz\r\nContent-Type: {content_type}\r\n{headers}"
    if not chunked:
        return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:100], body[100:]) if part)
    return f"{head}Transfer-Encoding: chunked\r\n\r\n".encode() + chunks + b"0\r\n\r\n"


def seeds() -> list[bytes]:
    """Well-formed requests of every framing: protobuf, JSON, gzip, chunked, several on one connection."""
    proto = min(protobuf_requests(), key=len)
    line = min(json_lines(), key=len)
    return [
        post(proto),
        post(line, "application/json"),
        post(gzip.compress(proto), headers="Content-Encoding: gzip\r\n"),
        post(proto, chunked=True),
        post(gzip.compress(line), "application/json", "Content-Encoding: gzip\r\n", chunked=True),
        post(proto) + post(line, "application/json"),
        b"GET /v1/traces HTTP/1.1\r\nHost: fuzz\r\n\r\n",
    ]


def exchange(data: bytes) -> bytes:
    """Send ``data`` on a fresh connection, close the write side, and read the answer to the end."""
    with socket.create_connection((_HOST, _PORT), timeout=30) as connection:
        with contextlib.suppress(OSError):  # the server may answer and close before reading it all
            connection.sendall(data)
            connection.shutdown(socket.SHUT_WR)
        answer = bytearray()
        with contextlib.suppress(ConnectionResetError):
            while chunk := connection.recv(1 << 16):
                answer += chunk
    return bytes(answer)


def _alive() -> None:
    answer = exchange(post(min(protobuf_requests(), key=len)))
    assert answer.startswith(b"HTTP/1.1 200 "), f"the receiver no longer answers: {answer[:200]!r}"


def check(data: bytes) -> bool:
    """Send ``data``; raise when an answer is undocumented, a handler raised, or the receiver died."""
    global _inputs
    answer = exchange(data)
    assert not _raised, f"a request handler raised: {_raised.pop()!r}"
    codes = [int(code) for code in _STATUS_LINE.findall(answer)]
    assert set(codes) <= ANSWERS, f"undocumented answer {codes}: {answer[:300]!r}"
    assert _RUNNING.value("otlp_enricher_export_requests_total", transport="http", result="internal") == 0
    _inputs += 1
    if _inputs % _PROBE_EVERY == 0:
        _alive()
    return 200 in codes
