"""The load process: drives one system under test over OTLP/gRPC, on command from the controller.

It runs in its own process (``multiprocessing`` spawn) so its CPU is never counted as the
server's. The controller sends :class:`Phase` commands over a pipe and gets a :class:`PhaseResult`
back for each:

* ``closed``: ``concurrency`` calls always in flight for ``seconds`` — saturation;
* ``open``: calls started at a fixed ``rate_per_s`` whatever the answers — the latency a client
  sees at a given load. Latency counts from the *scheduled* start, so a server that stalls is
  charged for the calls queued behind the stall (no coordinated omission); when more than
  ``max_in_flight`` calls are pending, due calls are skipped and counted as ``late``.

Calls are spread round-robin over ``connections`` separate HTTP/2 connections, as several
upstream clients would open (a multi-process server behind ``SO_REUSEPORT`` gets connections,
not calls, spread over it). A call answered with an error status, or a success whose
``partial_success`` rejects spans, counts as refused.
"""

from __future__ import annotations

import asyncio
import resource
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from bench.workload import RequestFactory, RequestShape, load_recorded_llm_spans

METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
CALL_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Phase:
    """One load phase: ``mode`` is ``closed`` (uses ``concurrency``) or ``open`` (``rate_per_s``)."""

    mode: str
    shape: RequestShape
    seconds: float
    concurrency: int = 8
    rate_per_s: float = 0.0
    max_in_flight: int = 256


@dataclass
class PhaseResult:
    """What one phase did: calls and spans accepted or refused, latencies of accepted calls."""

    elapsed_s: float = 0.0
    calls_ok: int = 0
    spans_ok: int = 0
    refused_calls: int = 0
    rejected_spans: int = 0
    late_calls: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    latencies_s: list[float] = field(default_factory=list)
    loader_cpu_s: float = 0.0


class Driver:
    """Channels to one target and one :class:`RequestFactory` per shape."""

    def __init__(self, target: str, connections: int) -> None:
        options = [("grpc.use_local_subchannel_pool", 1), ("grpc.max_receive_message_length", 64 << 20)]
        self.channels = [grpc.aio.insecure_channel(target, options=options) for _ in range(connections)]
        self.exports: list[grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]] = [
            channel.unary_unary(METHOD) for channel in self.channels
        ]
        self.recorded = load_recorded_llm_spans()
        self.factories: dict[RequestShape, RequestFactory] = {}
        self._next = 0

    async def ready(self, timeout_s: float) -> None:
        """Wait until every connection is up."""
        await asyncio.wait_for(asyncio.gather(*(channel.channel_ready() for channel in self.channels)), timeout_s)

    def factory(self, shape: RequestShape) -> RequestFactory:
        """The (cached) factory of ``shape``."""
        if shape not in self.factories:
            self.factories[shape] = RequestFactory(shape, self.recorded)
        return self.factories[shape]

    async def call(self, body: bytes, spans: int, started: float, result: PhaseResult) -> None:
        """One Export; its outcome and latency (from ``started``, a ``perf_counter`` time) into ``result``."""
        export = self.exports[self._next % len(self.exports)]
        self._next += 1
        try:
            answer = await export(body, timeout=CALL_TIMEOUT_S)
        except grpc.aio.AioRpcError as error:
            result.refused_calls += 1
            result.errors[error.code().name] = result.errors.get(error.code().name, 0) + 1
            return
        latency = time.perf_counter() - started
        rejected = ExportTraceServiceResponse.FromString(answer).partial_success.rejected_spans if answer else 0
        if rejected:
            result.refused_calls += 1
            result.rejected_spans += rejected
            result.errors["partial_success"] = result.errors.get("partial_success", 0) + 1
        result.calls_ok += 1
        result.spans_ok += spans - rejected
        result.latencies_s.append(latency)

    async def closed(self, phase: Phase) -> PhaseResult:
        """Keep ``phase.concurrency`` calls in flight for ``phase.seconds``."""
        result, factory = PhaseResult(), self.factory(phase.shape)
        deadline = time.perf_counter() + phase.seconds

        async def worker() -> None:
            while time.perf_counter() < deadline:
                body = factory.body()
                await self.call(body, phase.shape.spans, time.perf_counter(), result)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(phase.concurrency)))
        result.elapsed_s = time.perf_counter() - started
        return result

    async def open(self, phase: Phase) -> PhaseResult:
        """Start calls at ``phase.rate_per_s`` for ``phase.seconds``, then wait for the stragglers."""
        result, factory = PhaseResult(), self.factory(phase.shape)
        interval = 1.0 / phase.rate_per_s
        pending: set[asyncio.Task[None]] = set()
        started = time.perf_counter()
        sent = 0
        while (due := started + sent * interval) < started + phase.seconds:
            now = time.perf_counter()
            if due > now:
                await asyncio.sleep(due - now)
            if len(pending) >= phase.max_in_flight:
                result.late_calls += 1
            else:
                task = asyncio.create_task(self.call(factory.body(), phase.shape.spans, due, result))
                pending.add(task)
                task.add_done_callback(pending.discard)
            sent += 1
        if pending:
            await asyncio.wait(pending, timeout=CALL_TIMEOUT_S + 5)
        result.elapsed_s = time.perf_counter() - started
        return result

    async def close(self) -> None:
        """Close every channel."""
        for channel in self.channels:
            await channel.close()


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def serve_commands(conn: Connection, target: str, connections: int) -> None:
    """The load process's main: connect, then run each :class:`Phase` received; ``None`` ends it."""

    async def run() -> None:
        driver = Driver(target, connections)
        try:
            await driver.ready(timeout_s=30)
            conn.send("ready")
            while (phase := await asyncio.to_thread(conn.recv)) is not None:
                before = _cpu_s()
                result = await (driver.closed(phase) if phase.mode == "closed" else driver.open(phase))
                result.loader_cpu_s = _cpu_s() - before
                conn.send(result)
        finally:
            await driver.close()

    asyncio.run(run())
