"""Lifecycle of the in-process exporter doubles the tests hand to a pipeline."""

from __future__ import annotations


class InertComponent:
    """``start``, ``ready`` and ``shutdown`` that do nothing (see ``otlp_enricher.lifecycle``)."""

    async def start(self) -> None:
        """Nothing to start."""

    def ready(self) -> str | None:
        """Always ready."""
        return None

    async def shutdown(self, deadline_s: float) -> None:
        """Nothing to stop."""
