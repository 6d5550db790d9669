"""One lifecycle for every component a service runs, as the Collector's ``component.Component``.

Receivers, exporters, the cost rollup and the telemetry endpoint all implement :class:`Component`;
:class:`~otlp_enricher.service.Service` starts them downstream first and stops them upstream first,
walking one ordered list. Every component accepts ``shutdown`` before ``start`` and ``shutdown``
twice (both no-ops), so a start that fails half-way can stop whatever it began.
"""

from __future__ import annotations

from typing import Protocol


class Component(Protocol):
    """Something the service starts, asks about readiness, and stops within a deadline."""

    name: str

    async def start(self) -> None:
        """Begin work (bind, recover, spawn tasks); raise to fail the service's start."""

    async def shutdown(self, deadline_s: float) -> None:
        """Stop taking work and finish or keep what is pending within ``deadline_s`` seconds;
        a no-op before :meth:`start` and when already stopped."""

    def ready(self) -> str | None:
        """``None`` when ready for work, else why not (shown by ``/readyz``)."""
