"""The ports ``serve`` listens on, with their config keys, and whether each can be bound now.

Checked before any component starts, so a taken port is one line naming it and its key (exit 3)
instead of grpc's traceback from deep inside the start.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Sequence

from otlp_enricher.config import Config
from otlp_enricher.confignode import Endpoint


def listeners_of(config: Config) -> list[tuple[str, Endpoint]]:
    """Every endpoint ``serve`` listens on, with its config key."""
    receivers = config.receivers
    listeners = []
    if receivers.grpc is not None:
        listeners.append(("receivers.otlp.protocols.grpc.endpoint", receivers.grpc.endpoint))
    if receivers.http is not None:
        listeners.append(("receivers.otlp.protocols.http.endpoint", receivers.http.endpoint))
    listeners.append(("exporters.prometheus.endpoint", config.exporters.prometheus.endpoint))
    return listeners


def port_problem(listeners: Sequence[tuple[str, Endpoint]]) -> str | None:
    """One line naming the first port that cannot be listened on, and its key; ``None`` if all can.

    Probes with a socket bound the way the servers bind (``SO_REUSEADDR``, no ``SO_REUSEPORT``), so
    a port held by another process fails here, before any component starts, with a message instead
    of grpc's traceback. Port 0 (any free port) is never probed.
    """
    seen: dict[int, str] = {}
    for key, endpoint in listeners:
        if endpoint.port and endpoint.port in seen:
            return f"otlp-enricher: port {endpoint.port} is configured twice: {seen[endpoint.port]} and {key}"
        seen[endpoint.port] = key
        reason = bind_refused(endpoint)
        if reason is not None:
            return (
                f"otlp-enricher: cannot listen on {endpoint} ({key}): {reason};"
                f" stop what holds port {endpoint.port} or set another port in {key}"
            )
    return None


def bind_refused(endpoint: Endpoint) -> str | None:
    """Why binding ``endpoint`` is refused (in use, not permitted), or ``None``."""
    if endpoint.port == 0:
        return None
    try:
        addresses = socket.getaddrinfo(endpoint.host or None, endpoint.port, type=socket.SOCK_STREAM)
    except OSError:
        return None  # an unresolvable host is the server's to report
    for family, kind, proto, _, address in addresses:
        try:
            with socket.socket(family, kind, proto) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind(address)
        except OSError as error:
            if error.errno in (errno.EADDRINUSE, errno.EACCES):
                return error.strerror or str(error)
    return None
