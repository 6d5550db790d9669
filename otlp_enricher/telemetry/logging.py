"""Own logs with structlog: JSON lines by default, readable console output on a terminal.

One event per notable thing (start, stop, a failed export, a bad config), never one per span and
never prompt text.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO, cast

import structlog

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at the time of each event, not the object it was at
    configuration (a caller that swaps or closes stderr later, as a test runner does around each
    test, must not leave the process logging into a closed file)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(level: str = "info", encoding: str = "auto", stream: Any = None) -> None:
    """Set up structlog for the process (the CLI calls this once, before anything logs)."""
    terminal = stream if stream is not None else sys.stderr
    console = encoding == "console" or (encoding == "auto" and hasattr(terminal, "isatty") and terminal.isatty())
    out = stream if stream is not None else cast(TextIO, _CurrentStderr())
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
