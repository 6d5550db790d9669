"""A fake Tempo: an OTLP/gRPC ``TraceService/Export`` server on 127.0.0.1 with scriptable faults.

Keeps every span received keyed by (trace id, span id), counting duplicates. Faults: a persistent
``refuse`` status (UNAVAILABLE with optional RetryInfo, INVALID_ARGUMENT, …), a queue of one-shot
faults, delays, and partial-success answers. ``stop()`` then ``start(port)`` plays a Tempo that
goes down and comes back on the same port.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"


@dataclass(frozen=True)
class GrpcFault:
    """An answer to impose: a status code (with RetryInfo seconds), a delay, or a partial success."""

    code: grpc.StatusCode | None = None
    retry_after_s: float | None = None
    delay_s: float = 0.0
    rejected_spans: int = 0
    message: str = "fault injected"


@dataclass
class FakeTempo:
    """The peer; inspect ``spans`` (de-duplicated), ``duplicates``, ``requests``, ``metadata``."""

    refuse: GrpcFault | None = None
    faults: deque[GrpcFault] = field(default_factory=deque)
    spans: dict[tuple[bytes, bytes], Any] = field(default_factory=dict)
    duplicates: int = 0
    requests: int = 0
    metadata: list[dict[str, str]] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)
    port: int = 0

    def start(self, port: int = 0) -> FakeTempo:
        """Bind 127.0.0.1 (``port`` 0 picks one) and serve."""
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        handler: grpc.RpcMethodHandler[bytes, bytes] = grpc.unary_unary_rpc_method_handler(self._export)
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Export": handler}),))
        self.port = self._server.add_insecure_port(f"127.0.0.1:{port or self.port}")
        self._server.start()
        return self

    @property
    def endpoint(self) -> str:
        """``host:port`` to configure as the Tempo endpoint."""
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Stop at once (connections are cut)."""
        self._server.stop(0).wait()

    def wait_until(self, predicate: Callable[[FakeTempo], bool], timeout_s: float = 20.0) -> bool:
        """Block until ``predicate(self)`` holds; False on timeout."""
        with self.changed:
            return self.changed.wait_for(lambda: predicate(self), timeout_s)

    def _export(self, raw: bytes, context: grpc.ServicerContext) -> bytes:
        with self.changed:
            self.requests += 1
            self.bodies.append(raw)
            self.metadata.append({key: str(value) for key, value in context.invocation_metadata()})
            fault = self.faults.popleft() if self.faults else self.refuse
            self.changed.notify_all()
        if fault is not None and fault.delay_s:
            threading.Event().wait(fault.delay_s)
        if fault is not None and fault.code is not None:
            status = status_pb2.Status(code=fault.code.value[0], message=fault.message)
            if fault.retry_after_s is not None:
                delay = duration_pb2.Duration()
                delay.FromNanoseconds(int(fault.retry_after_s * 1e9))
                status.details.add().Pack(error_details_pb2.RetryInfo(retry_delay=delay))
            context.abort_with_status(rpc_status.to_status(status))
        request = ExportTraceServiceRequest.FromString(raw)
        with self.changed:
            for resource_spans in request.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        key = (bytes(span.trace_id), bytes(span.span_id))
                        if key in self.spans:
                            self.duplicates += 1
                        else:
                            self.spans[key] = span
            self.changed.notify_all()
        response = ExportTraceServiceResponse()
        if fault is not None and fault.rejected_spans:
            response.partial_success.rejected_spans = fault.rejected_spans
            response.partial_success.error_message = fault.message
        return bytes(response.SerializeToString())
