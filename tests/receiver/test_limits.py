"""Limits that answer correctly: strict HTTP framing, whole-gzip validation, concurrency caps on
both transports, idle and stalled connections closed, a connection cap that keeps probes alive."""

from __future__ import annotations

import asyncio
import gzip
import http.client
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2
from grpc_status import rpc_status
from prometheus_client import CollectorRegistry

from otlp_enricher.config import parse_config
from otlp_enricher.pipeline import SpanBatch
from otlp_enricher.receiver import http as http_receiver
from otlp_enricher.receiver.grpc import GrpcReceiver
from otlp_enricher.service import build_metrics, build_pipeline
from tests.net import raw_export
from tests.otlp_builders import openai_chat, request, span
from tests.receiver.conftest import RecordingExporter, spans_in
from tests.receiver.secured import Secured, secured

LIMITS = """
receivers:
  otlp:
    protocols:
      grpc: {endpoint: 127.0.0.1:0, max_concurrent_requests: 1}
      http:
        endpoint: 127.0.0.1:0
        max_request_body_size_mib: 1
        max_concurrent_requests: 1
        max_connections: 4
        read_header_timeout: 300ms
        read_timeout: 2s
        idle_timeout: 300ms
exporters: {prometheus: {endpoint: 127.0.0.1:0, max_connections: 4}}
"""


def body() -> bytes:
    """One LLM span."""
    return request([span(openai_chat(input_tokens=3, output_tokens=1))]).SerializeToString()


class GateExporter(RecordingExporter):
    """Holds every batch until :meth:`open` is called, so a request stays in flight."""

    def __init__(self) -> None:
        super().__init__()
        self._entries = 0
        self._entered = threading.Condition()
        self._gate: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def accept(self, batch: SpanBatch) -> None:
        """Wait for the gate, then keep the batch."""
        self._loop = asyncio.get_running_loop()
        self._gate = self._gate or asyncio.Event()
        with self._entered:
            self._entries += 1
            self._entered.notify_all()
        await self._gate.wait()
        await super().accept(batch)

    def wait_entries(self, count: int, timeout_s: float = 10) -> bool:
        """Wait until ``count`` batches are being held."""
        with self._entered:
            return self._entered.wait_for(lambda: self._entries >= count, timeout_s)

    def open(self) -> None:
        """Let held and later batches through."""
        if self._loop is not None and self._gate is not None:
            self._loop.call_soon_threadsafe(self._gate.set)


@pytest.fixture
def limited() -> Iterator[Secured]:
    """Receivers with small limits."""
    with secured(LIMITS) as running:
        yield running


def raw_exchange(port: int, data: bytes, shut_write: bool = False, timeout_s: float = 10) -> bytes:
    """Send raw bytes, read the answer until the server closes (or ``timeout_s``)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        sock.sendall(data)
        if shut_write:
            sock.shutdown(socket.SHUT_WR)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except (ConnectionResetError, TimeoutError):
            pass
        return answer


def post_head(extra: str) -> bytes:
    """A POST /v1/traces request head with ``extra`` header lines."""
    return f"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n{extra}\r\n".encode()


def status_of(answer: bytes) -> int:
    """The status code of a raw HTTP answer."""
    assert answer.startswith(b"HTTP/1."), answer[:80]
    return int(answer.split(b" ", 2)[1])


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ("Content-Length: -1\r\n", 400),
        ("Content-Length: 1e3\r\n", 400),
        ("Content-Length: 5\r\nContent-Length: 6\r\n", 400),
        ("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", 400),
        ("Transfer-Encoding: gzip, chunked\r\n", 400),
        ("", 411),
    ],
    ids=["negative", "not-decimal", "two-lengths", "length-and-chunked", "other-coding", "no-length"],
)
def test_bad_framing_is_refused(limited: Secured, headers: str, expected: int) -> None:
    """Each malformed framing gets its 4xx at once and the connection is closed; nothing is processed."""
    answer = raw_exchange(limited.http_port, post_head(headers) + b"hello")
    assert status_of(answer) == expected
    assert spans_in(limited.exporter.batches) == 0


def test_body_shorter_than_its_length_is_400(limited: Secured) -> None:
    """The client ends the body early (EOF): 400, not a hang and not a partial accept."""
    answer = raw_exchange(limited.http_port, post_head("Content-Length: 1000\r\n") + body(), shut_write=True)
    assert status_of(answer) == 400 and b"ended" in answer


def test_a_lying_content_length_times_out_with_408(limited: Secured) -> None:
    """The client claims more than it sends and keeps the socket open: 408 after the read timeout."""
    started = time.monotonic()
    answer = raw_exchange(limited.http_port, post_head("Content-Length: 1000\r\n") + body())
    assert status_of(answer) == 408 and time.monotonic() - started < 5


@pytest.mark.parametrize(
    "chunks",
    [b"-1\r\nabc\r\n0\r\n\r\n", b"f" * 5000, b"zz\r\n", b"3\r\nabcdef\r\n0\r\n\r\n"],
    ids=["negative-size", "size-line-without-crlf", "not-hex", "chunk-longer-than-size"],
)
def test_malformed_chunked_bodies_are_400(limited: Secured, chunks: bytes) -> None:
    """Chunk sizes must be hex digits on a short CRLF-terminated line, and chunks as long as said."""
    answer = raw_exchange(limited.http_port, post_head("Transfer-Encoding: chunked\r\n") + chunks, shut_write=True)
    assert status_of(answer) == 400


def test_chunked_bodies_count_against_the_limit(limited: Secured) -> None:
    """Many small chunks adding up past 1 MiB: 413 (the declared sizes are summed before reading)."""
    piece = b"x" * 65536
    chunks = b"".join(b"10000\r\n" + piece + b"\r\n" for _ in range(17)) + b"0\r\n\r\n"
    answer = raw_exchange(limited.http_port, post_head("Transfer-Encoding: chunked\r\n") + chunks)
    assert status_of(answer) == 413


def test_a_good_chunked_body_is_accepted(limited: Secured) -> None:
    """The same framing done right is processed (so the refusals above are not blanket ones)."""
    payload = body()
    half = len(payload) // 2
    chunks = b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in (payload[:half], payload[half:]))
    answer = raw_exchange(limited.http_port, post_head("Transfer-Encoding: chunked\r\n") + chunks + b"0\r\n\r\n")
    assert status_of(answer) == 200 and spans_in(limited.exporter.batches) == 1


@pytest.mark.parametrize(
    "compressed",
    [gzip.compress(body())[:-9], gzip.compress(body()) + gzip.compress(body()), gzip.compress(body()) + b"junk"],
    ids=["truncated", "two-members", "trailing-junk"],
)
def test_gzip_must_be_one_complete_member(limited: Secured, compressed: bytes) -> None:
    """Never a silent partial accept: a truncated stream or anything after the member is 400."""
    head = post_head(f"Content-Encoding: gzip\r\nContent-Length: {len(compressed)}\r\nConnection: close\r\n")
    answer = raw_exchange(limited.http_port, head + compressed)
    assert status_of(answer) == 400 and spans_in(limited.exporter.batches) == 0
    assert limited.value("otlp_enricher_export_requests_total", transport="http", result="invalid") == 1


def test_idle_connections_are_closed(limited: Secured) -> None:
    """A connection that sends nothing is closed after idle_timeout (300 ms here)."""
    started = time.monotonic()
    assert raw_exchange(limited.http_port, b"") == b""
    assert time.monotonic() - started < 5


def test_connection_cap_keeps_the_health_port_alive(limited: Secured) -> None:
    """Past max_connections the HTTP receiver answers 503 at once; /healthz (its own cap) still answers."""
    held = [socket.create_connection(("127.0.0.1", limited.http_port), timeout=10) for _ in range(4)]
    try:
        deadline = time.monotonic() + 5
        answer = b""
        while time.monotonic() < deadline:
            answer = raw_exchange(limited.http_port, b"", timeout_s=2)
            if answer:
                break
        assert status_of(answer) == 503 and b"Retry-After: 1" in answer
        assert limited.value("otlp_enricher_connections_refused_total", listener="http") >= 1
        connection = http.client.HTTPConnection("127.0.0.1", limited.metrics_port, timeout=5)
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        response.read()
        assert response.status == 200
        connection.close()
    finally:
        for sock in held:
            sock.close()


def _retry_info(error: grpc.RpcError) -> error_details_pb2.RetryInfo | None:
    status = rpc_status.from_call(error)
    if status is None or status.code != code_pb2.UNAVAILABLE:
        return None
    for detail in status.details:
        info = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            return info
    return None


def test_concurrency_caps_answer_retry_later_on_both_transports() -> None:
    """One request held in the pipeline: the next gets UNAVAILABLE + RetryInfo / 503 + Retry-After."""
    gate = GateExporter()
    with secured(LIMITS, exporter=gate) as running:
        results: dict[str, Any] = {}

        def first() -> None:
            with grpc.insecure_channel(f"127.0.0.1:{running.grpc_port}") as channel:
                results["first"] = raw_export(channel)(body(), timeout=20)

        holder = threading.Thread(target=first)
        holder.start()
        assert gate.wait_entries(1)
        with grpc.insecure_channel(f"127.0.0.1:{running.grpc_port}") as channel, pytest.raises(grpc.RpcError) as error:
            raw_export(channel)(body(), timeout=10)
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE and _retry_info(error.value) is not None

        def http_first() -> None:
            connection = http.client.HTTPConnection("127.0.0.1", running.http_port, timeout=20)
            connection.request("POST", "/v1/traces", body(), {"Content-Type": "application/x-protobuf"})
            response = connection.getresponse()
            response.read()
            results["http_first"] = response.status
            connection.close()

        http_holder = threading.Thread(target=http_first)
        http_holder.start()
        assert gate.wait_entries(2)  # the first HTTP request holds the only HTTP slot
        connection = http.client.HTTPConnection("127.0.0.1", running.http_port, timeout=10)
        connection.request("POST", "/v1/traces", body(), {"Content-Type": "application/x-protobuf"})
        response = connection.getresponse()
        response.read()
        assert response.status == 503 and response.getheader("Retry-After") == "1"
        connection.close()
        gate.open()
        holder.join(20)
        http_holder.join(20)
        assert "first" in results and results["http_first"] == 200
        assert running.value("otlp_enricher_export_requests_total", transport="grpc", result="busy") == 1
        assert running.value("otlp_enricher_export_requests_total", transport="http", result="busy") == 1


class _ExpiredContext:
    """A gRPC servicer context whose deadline has already passed."""

    def __init__(self) -> None:
        self.aborted: tuple[grpc.StatusCode, str] | None = None

    def time_remaining(self) -> float:
        return -0.5

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.aborted = (code, details)
        raise grpc.aio.AbortError()

    async def abort_with_status(self, status: Any) -> None:
        raise grpc.aio.AbortError()


def test_a_call_past_its_deadline_is_not_processed() -> None:
    """When the caller's deadline has passed by the time the call is served, nothing is written."""
    config = parse_config(LIMITS, "test.yaml", {})
    metrics = build_metrics(config, CollectorRegistry())
    exporter = RecordingExporter()
    assert config.receivers.grpc is not None
    receiver = GrpcReceiver(config.receivers.grpc, build_pipeline(config, metrics, (), [exporter], ()), metrics)
    receiver._accepting = True  # as after start(), without binding a port
    context = _ExpiredContext()
    with pytest.raises(grpc.aio.AbortError):
        asyncio.run(receiver._export(body(), context))
    assert context.aborted is not None and context.aborted[0] == grpc.StatusCode.DEADLINE_EXCEEDED
    assert exporter.batches == []


def _post(port: int) -> tuple[int, str | None]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        connection.request("POST", "/v1/traces", body(), {"Content-Type": "application/x-protobuf"})
        response = connection.getresponse()
        response.read()
        return response.status, response.getheader("Retry-After")
    finally:
        connection.close()


def test_an_http_request_whose_turn_comes_past_its_deadline_is_not_processed(monkeypatch: pytest.MonkeyPatch) -> None:
    """OTLP/HTTP sends no deadline: past the client's default timeout the request is answered 503
    with Retry-After and nothing is written (the sender's retry is then no duplicate)."""
    monkeypatch.setattr(http_receiver, "CLIENT_TIMEOUT_S", 0.0)
    with secured(LIMITS) as running:
        assert _post(running.http_port) == (503, "1")
        assert running.exporter.batches == []
        assert running.value("otlp_enricher_export_requests_total", transport="http", result="deadline_exceeded") == 1


def test_an_http_request_begun_in_time_is_answered_with_its_outcome(monkeypatch: pytest.MonkeyPatch) -> None:
    """Work that started before the deadline is never answered "failed" while it goes on to write:
    the answer waits for the outcome (it used to be 503 after 30 s, with the spans written anyway)."""
    monkeypatch.setattr(http_receiver, "CLIENT_TIMEOUT_S", 0.2)
    gate = GateExporter()
    with secured(LIMITS, exporter=gate) as running:
        answers: list[tuple[int, str | None]] = []
        sender = threading.Thread(target=lambda: answers.append(_post(running.http_port)))
        started = time.monotonic()
        sender.start()
        assert gate.wait_entries(1)
        waited = threading.Event()
        while time.monotonic() < started + 0.5 and not waited.wait(0.05):
            pass  # let the deadline pass while the batch is held
        assert not answers
        gate.open()
        sender.join(20)
        assert answers == [(200, None)] and spans_in(gate.batches) == 1
