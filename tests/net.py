"""Loopback networking helpers shared by the tests and the benchmark."""

from __future__ import annotations

import socket

import grpc
from google.rpc import status_pb2

from otlp_enricher.otlp_protocol import EXPORT_METHOD


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that was free on ``host`` a moment ago (bound to port 0, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def raw_export(channel: grpc.Channel) -> grpc.UnaryUnaryMultiCallable[bytes, bytes]:
    """``TraceService/Export`` on ``channel`` with serialised requests in and responses out."""
    return channel.unary_unary(EXPORT_METHOD)


def status_details(error: grpc.RpcError) -> status_pb2.Status | None:
    """The ``google.rpc.Status`` a failed call carried in ``grpc-status-details-bin``, if any."""
    if not isinstance(error, grpc.Call):
        return None
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            return status_pb2.Status.FromString(value)
    return None
