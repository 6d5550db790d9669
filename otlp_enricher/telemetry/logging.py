"""Own logs with structlog: JSON lines by default, readable console output on a terminal.

One event per notable thing (start, stop, a failed export, a bad config), never one per span and
never prompt text.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def configure_logging(level: str = "info", encoding: str = "auto", stream: Any = None) -> None:
    """Set up structlog for the process (the CLI calls this once, before anything logs)."""
    out = stream if stream is not None else sys.stderr
    console = encoding == "console" or (encoding == "auto" and hasattr(out, "isatty") and out.isatty())
    renderer: Any = structlog.dev.ConsoleRenderer(colors=False) if console else structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )


def get_logger(component: str) -> Any:
    """A logger bound to ``component`` (``receiver.grpc``, ``exporter.loki`` …)."""
    return structlog.get_logger().bind(component=component)
