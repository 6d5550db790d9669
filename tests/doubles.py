"""Doubles the tests share: an inert pipeline component, a process that dies holding a spool, and
an LLM call record."""

from __future__ import annotations

import os
from typing import Any

from otlp_enricher.exporter.spool import Spool
from otlp_enricher.model import LLMCall


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


def llm_call(**fields: Any) -> LLMCall:
    """A successful one-second OpenAI chat call, as the extractor leaves it; ``fields`` override."""
    base: dict[str, Any] = {
        "trace_id": b"\x01" * 16,
        "span_id": b"\x02" * 8,
        "start_ns": 0,
        "end_ns": 1_000_000_000,
        "service": "svc",
        "provider": "openai",
        "request_model": "gpt-4o",
        "response_model": "",
        "operation": "chat",
        "status": "ok",
        "vocabulary": "gen_ai",
    }
    return LLMCall(**{**base, **fields})
