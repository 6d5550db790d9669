"""Doubles the tests share: an inert pipeline component, and a process that dies holding a spool."""

from __future__ import annotations

import os

from otlp_enricher.exporter.spool import Spool


class InertComponent:
    """``start``, ``ready`` and ``shutdown`` that do nothing (see ``otlp_enricher.lifecycle``)."""

    async def start(self) -> None:
        """Nothing to start."""

    def ready(self) -> str | None:
        """Always ready."""
        return None

    async def shutdown(self, deadline_s: float) -> None:
        """Nothing to stop."""


def crash(spool: Spool) -> None:
    """The process owning ``spool`` dies: no ``close()``, no final fsync; only its fds go."""
    for fd in (spool._writer.fd, spool._commit.fd):
        if fd >= 0:
            os.close(fd)
