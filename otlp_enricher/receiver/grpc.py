"""OTLP/gRPC receiver: ``TraceService/Export`` on ``grpc.aio``.

The request is taken as raw bytes (no generated deserializer) so that an undecodable body gets
INVALID_ARGUMENT rather than gRPC's INTERNAL, and so the bytes can be forwarded unchanged.
Admission control is ours: past ``max_concurrent_requests`` concurrent calls the answer is
UNAVAILABLE with RetryInfo, never gRPC's own RESOURCE_EXHAUSTED (which carries no RetryInfo). A
call whose deadline has already passed when its turn comes is answered DEADLINE_EXCEEDED without
being processed, so nothing is written that the caller will not see acknowledged.

``tls`` (mutual when ``client_ca_file`` is set, certificates reloaded at the next handshake) and
``auth`` (``authorization`` metadata, checked by an interceptor before the call is admitted:
UNAUTHENTICATED otherwise) follow the Collector's configgrpc. Idle connections are closed after
``idle_timeout``, unfinished handshakes after 10 s, and at most ``max_connections`` are held.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from grpc_status import rpc_status

from otlp_enricher.httpserver import connection_cap
from otlp_enricher.otlp_json import OtlpDecodeError
from otlp_enricher.otlp_protocol import TRACE_SERVICE
from otlp_enricher.pipeline import Backpressure, Pipeline
from otlp_enricher.receiver.answers import (
    INTERNAL_RETRY_S,
    SHUTTING_DOWN_RETRY_S,
    bad_request_status,
    export_response,
    retry_status,
)
from otlp_enricher.receiver.config import GrpcReceiverConfig
from otlp_enricher.security.auth import Authenticator, build_authenticator
from otlp_enricher.security.tls import ReloadingTls
from otlp_enricher.telemetry.logging import get_logger
from otlp_enricher.telemetry.metrics import Metrics


class GrpcReceiver:
    """Serves OTLP/gRPC traces into a :class:`Pipeline`."""

    def __init__(
        self, config: GrpcReceiverConfig, pipeline: Pipeline, metrics: Metrics, reuse_port: bool = False
    ) -> None:
        """``reuse_port``: share the port with sibling workers (``service.workers``)."""
        self._reuse_port = reuse_port
        self._config = config
        self._pipeline = pipeline
        self._metrics = metrics
        self._max_inflight = config.max_concurrent_requests
        self._authenticator = build_authenticator(config.auth)
        self._tls = ReloadingTls(config.tls) if config.tls is not None else None
        self._inflight = 0
        self._accepting = False
        self._server: grpc.aio.Server | None = None
        self._log = get_logger("receiver.grpc")
        self.port = 0

    name = "receiver.grpc"

    async def start(self) -> None:
        """Bind and start serving; :attr:`port` is the bound port (useful with port 0)."""
        config = self._config
        limit = config.max_recv_msg_size_mib * 1024 * 1024
        interceptors = []
        if self._authenticator is not None:
            on_failure = self._metrics.auth_failures.labels("grpc").inc
            interceptors.append(_AuthInterceptor(self._authenticator, on_failure))
        server = grpc.aio.server(
            interceptors=interceptors,
            options=[
                ("grpc.max_receive_message_length", limit),
                # Only sibling workers share the port; a stale process must not silently share it.
                ("grpc.so_reuseport", int(self._reuse_port)),
                ("grpc.max_allowed_incoming_connections", connection_cap(config.max_connections, 0.4)),
                ("grpc.max_connection_idle_ms", int(config.idle_timeout_s * 1000)),
                ("grpc.server_handshake_timeout_ms", 10_000),
            ],
        )
        handler: grpc.RpcMethodHandler[bytes, bytes] = grpc.unary_unary_rpc_method_handler(self._export)
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(TRACE_SERVICE, {"Export": handler}),))
        address = str(self._config.endpoint)
        if self._tls is not None:
            self.port = server.add_secure_port(address, self._tls.grpc_credentials())
        else:
            self.port = server.add_insecure_port(address)
        await server.start()
        self._server = server
        self._accepting = True
        self._log.info("receiver_started", endpoint=address, port=self.port)

    def ready(self) -> str | None:
        """Ready once listening."""
        return None if self._server is not None else "the OTLP/gRPC receiver is not listening"

    async def shutdown(self, deadline_s: float) -> None:
        """Answer new calls UNAVAILABLE at once (senders retry elsewhere or later), let in-flight
        ones finish within ``deadline_s``, stop the server."""
        self._accepting = False
        server, self._server = self._server, None
        if server is not None:
            await server.stop(deadline_s)
            self._log.info("receiver_stopped")

    async def _export(self, raw: bytes, context: Any) -> bytes:
        if not self._accepting:
            return await self._refuse(context, "shutting down", SHUTTING_DOWN_RETRY_S, "shutting_down")
        if self._inflight >= self._max_inflight:
            return await self._refuse(context, "too many concurrent exports", 1.0, "busy")
        self._inflight += 1
        try:
            if _deadline_passed(context):
                self._metrics.export_requests.labels("grpc", "deadline_exceeded").inc()
                await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline passed before processing")
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


def _deadline_passed(context: Any) -> bool:
    remaining = context.time_remaining()
    return remaining is not None and remaining <= 0


class _AuthInterceptor(grpc.aio.ServerInterceptor):
    """Refuses, with UNAUTHENTICATED, every call whose ``authorization`` metadata is not accepted."""

    def __init__(self, authenticator: Authenticator, on_failure: Callable[[], None]) -> None:
        self._authenticator = authenticator
        self._on_failure = on_failure

        async def refuse(request: bytes, context: Any) -> bytes:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong authorization metadata")
            raise AssertionError("abort returns only by raising")

        self._refusal: grpc.RpcMethodHandler[bytes, bytes] = grpc.unary_unary_rpc_method_handler(refuse)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        authorization = None
        for key, value in handler_call_details.invocation_metadata or ():
            if key == "authorization":
                authorization = value if isinstance(value, str) else value.decode("utf-8", "replace")
                break
        if self._authenticator.check(authorization):
            return await continuation(handler_call_details)
        self._on_failure()
        return self._refusal
