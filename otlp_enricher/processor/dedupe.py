"""Duplicate calls: the same LLM call seen twice must be counted once.

Two sources of duplicates reach a sidecar: an upstream retry after a lost acknowledgement (the same
span again, OTLP's "duplicate data") and double tracing (the anthropic SDK's own tracing beside a
third-party instrumentor records every call twice in one trace, with the same provider response
id). A call is known by its trace id and provider response id when it has one, else by its trace
and span id. The memory of recent calls is bounded: a duplicate older than ``max_remembered``
calls is counted again.
"""

from __future__ import annotations

from otlp_enricher.model import LLMCall


class RecentCalls:
    """Remembers the last ``max_remembered`` calls; ``first_time`` is False for a repeat."""

    def __init__(self, max_remembered: int = 100_000) -> None:
        self._max = max_remembered
        self._seen: dict[tuple[bytes, bytes | str], None] = {}

    def first_time(self, call: LLMCall) -> bool:
        """Whether ``call`` has not been seen among the remembered ones (and remember it)."""
        key = (call.trace_id, call.response_id) if call.response_id else (call.trace_id, call.span_id)
        seen = self._seen
        if key in seen:
            return False
        seen[key] = None
        if len(seen) > self._max:
            del seen[next(iter(seen))]
        return True
