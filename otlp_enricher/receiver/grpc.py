"""OTLP/gRPC receiver: ``TraceService/Export`` on ``grpc.aio``.

The request is taken as raw bytes (no generated deserializer) so that an undecodable body gets
INVALID_ARGUMENT rather than gRPC's INTERNAL, and so the bytes can be forwarded unchanged.
Admission control is ours: past ``max_inflight`` concurrent calls the answer is UNAVAILABLE with
RetryInfo, never gRPC's own RESOURCE_EXHAUSTED (which carries no RetryInfo).
"""

from __future__ import annotations

from typing import Any

import grpc
from grpc_status import rpc_status

from otlp_enricher.config import GrpcReceiverConfig
from otlp_enricher.otlp_json import OtlpDecodeError
from otlp_enricher.pipeline import Backpressure, Pipeline
from otlp_enricher.receiver.answers import (
    INTERNAL_RETRY_S,
    SHUTTING_DOWN_RETRY_S,
    bad_request_status,
    export_response,
    retry_status,
)
from otlp_enricher.telemetry.logging import get_logger
from otlp_enricher.telemetry.metrics import Metrics

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"


class GrpcReceiver:
    """Serves OTLP/gRPC traces into a :class:`Pipeline`."""

    def __init__(
        self, config: GrpcReceiverConfig, pipeline: Pipeline, metrics: Metrics, max_inflight: int = 64
    ) -> None:
        self._config = config
        self._pipeline = pipeline
        self._metrics = metrics
        self._max_inflight = max_inflight
        self._inflight = 0
        self._accepting = False
        self._server: grpc.aio.Server | None = None
        self._log = get_logger("receiver.grpc")
        self.port = 0

    async def start(self) -> int:
        """Bind and start serving; returns the bound port (useful with port 0)."""
        limit = self._config.max_recv_msg_size_mib * 1024 * 1024
        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", limit),
                ("grpc.so_reuseport", 0),  # a stale process must not silently share the port
            ]
        )
        handler: grpc.RpcMethodHandler[bytes, bytes] = grpc.unary_unary_rpc_method_handler(self._export)
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Export": handler}),))
        address = str(self._config.endpoint)
        self.port = server.add_insecure_port(address)
        await server.start()
        self._server = server
        self._accepting = True
        self._log.info("receiver_started", endpoint=address, port=self.port)
        return self.port

    async def stop_accepting(self) -> None:
        """Answer new calls UNAVAILABLE (so senders retry elsewhere or later); in-flight ones finish."""
        self._accepting = False

    async def shutdown(self, grace_s: float) -> None:
        """Stop the server, letting in-flight calls finish within ``grace_s``."""
        self._accepting = False
        if self._server is not None:
            await self._server.stop(grace_s)
            self._server = None
            self._log.info("receiver_stopped")

    async def _export(self, raw: bytes, context: Any) -> bytes:
        if not self._accepting:
            return await self._refuse(context, "shutting down", SHUTTING_DOWN_RETRY_S, "shutting_down")
        if self._inflight >= self._max_inflight:
            return await self._refuse(context, "too many concurrent exports", 1.0, "busy")
        self._inflight += 1
        try:
            try:
                outcome = await self._pipeline.export(raw, "grpc")
            except OtlpDecodeError as error:
                self._metrics.export_requests.labels("grpc", "invalid").inc()
                await context.abort_with_status(rpc_status.to_status(bad_request_status(str(error))))
                raise AssertionError("abort_with_status returns only by raising") from error
            except Backpressure as full:
                return await self._refuse(context, str(full), full.retry_after_s, "backpressure")
            except Exception:
                self._log.exception("export_failed", transport="grpc")
                return await self._refuse(context, "internal error; retry later", INTERNAL_RETRY_S, "internal")
            self._metrics.export_requests.labels("grpc", "partial" if outcome.rejected else "ok").inc()
            return bytes(export_response(outcome).SerializeToString())
        finally:
            self._inflight -= 1

    async def _refuse(self, context: Any, message: str, retry_after_s: float, result: str) -> bytes:
        self._metrics.export_requests.labels("grpc", result).inc()
        await context.abort_with_status(rpc_status.to_status(retry_status(message, retry_after_s)))
        raise AssertionError("abort_with_status returns only by raising")
