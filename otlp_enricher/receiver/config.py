"""``receivers.otlp``: the OTLP/gRPC and OTLP/HTTP listeners' configuration."""

from __future__ import annotations

from dataclasses import dataclass

from otlp_enricher.confignode import ConfigNode, Endpoint
from otlp_enricher.security.auth import ServerAuthConfig
from otlp_enricher.security.config import server_auth_config, server_tls_config
from otlp_enricher.security.tls import ServerTlsConfig


@dataclass(frozen=True, slots=True)
class GrpcReceiverConfig:
    """``receivers.otlp.protocols.grpc``; ``max_connections`` 0 = a share of the fd limit."""

    endpoint: Endpoint
    max_recv_msg_size_mib: int = 64
    tls: ServerTlsConfig | None = None
    auth: ServerAuthConfig | None = None
    max_concurrent_requests: int = 16
    max_connections: int = 0
    idle_timeout_s: float = 60.0


@dataclass(frozen=True, slots=True)
class HttpReceiverConfig:
    """``receivers.otlp.protocols.http``; ``max_connections`` 0 = a share of the fd limit."""

    endpoint: Endpoint
    max_request_body_size_mib: int = 64
    tls: ServerTlsConfig | None = None
    auth: ServerAuthConfig | None = None
    max_concurrent_requests: int = 8
    max_connections: int = 0
    read_header_timeout_s: float = 10.0
    read_timeout_s: float = 30.0
    idle_timeout_s: float = 60.0


@dataclass(frozen=True, slots=True)
class ReceiversConfig:
    """``receivers.otlp``: each protocol is on when its key is present."""

    grpc: GrpcReceiverConfig | None
    http: HttpReceiverConfig | None


DEFAULT_RECEIVERS = ReceiversConfig(
    GrpcReceiverConfig(Endpoint("0.0.0.0", 4317)), HttpReceiverConfig(Endpoint("0.0.0.0", 4318))
)
"""Both protocols on their OTLP ports, as the Collector's ``otlp`` receiver; also every default below."""


def receivers_config(node: ConfigNode) -> ReceiversConfig:
    """``receivers``: only ``otlp``, with at least one protocol."""
    otlp = node.child("otlp")
    protocols = otlp.child("protocols")
    grpc = http = None
    if protocols.has("grpc"):
        g, d = protocols.child("grpc"), DEFAULT_RECEIVERS.grpc
        assert d is not None
        grpc = GrpcReceiverConfig(
            g.endpoint("endpoint", str(d.endpoint)),
            g.integer("max_recv_msg_size_mib", d.max_recv_msg_size_mib, 1),
            tls=server_tls_config(g, grpc=True),
            auth=server_auth_config(g),
            max_concurrent_requests=g.integer("max_concurrent_requests", d.max_concurrent_requests, 1),
            max_connections=g.integer("max_connections", d.max_connections, 0),
            idle_timeout_s=g.duration("idle_timeout", d.idle_timeout_s, 0.1),
        )
        g.done()
    if protocols.has("http"):
        h, e = protocols.child("http"), DEFAULT_RECEIVERS.http
        assert e is not None
        http = HttpReceiverConfig(
            h.endpoint("endpoint", str(e.endpoint)),
            h.integer("max_request_body_size_mib", e.max_request_body_size_mib, 1),
            tls=server_tls_config(h),
            auth=server_auth_config(h),
            max_concurrent_requests=h.integer("max_concurrent_requests", e.max_concurrent_requests, 1),
            max_connections=h.integer("max_connections", e.max_connections, 0),
            read_header_timeout_s=h.duration("read_header_timeout", e.read_header_timeout_s, 0.1),
            read_timeout_s=h.duration("read_timeout", e.read_timeout_s, 0.1),
            idle_timeout_s=h.duration("idle_timeout", e.idle_timeout_s, 0.1),
        )
        h.done()
    if grpc is None and http is None:
        protocols.error(protocols.path, "expected at least one of grpc, http")
    protocols.done()
    otlp.done()
    node.done()
    return ReceiversConfig(grpc, http)
