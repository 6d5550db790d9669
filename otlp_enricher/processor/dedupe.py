"""Duplicate calls: the same LLM call seen twice must be counted once, in metrics and prompt logs.

Three sources of duplicates reach a sidecar:

* an upstream retry after a lost acknowledgement (the same span again, OTLP's "duplicate data");
* double tracing in one trace, copies sharing the provider response id;
* double tracing across traces: the anthropic SDK's own tracing beside OpenLLMetry, or LangChain
  under OpenInference beside OpenInference's OpenAI instrumentor, often put the two copies of a
  call in *different* traces, with no response id on either.

:class:`RecentCalls` handles the first two: a call is known by its trace id and provider response
id when it has one, else by its trace and span id, in a bounded memory (a duplicate older than
``max_remembered`` calls is counted again). :class:`ScopePrecedence` handles the third without
pairing copies at all, so it also holds behind the Collector's ``load_balancing`` exporter where
the copies land on different replicas: per (service, provider) it learns which instrumentation
scopes the service emits and counts only the calls of the most preferred one — the provider SDK's
own tracing, then client-library instrumentors, then frameworks (which wrap the client call);
two scopes of one rank (two instrumentors of the same SDK, both active) are ordered by name.
Every replica sees the service's scopes, so each reaches the same decision from its own share of
the traffic. Until the preferred scope has been seen once, the other copies count (a start-up
window of the first batch or two), and a preferred scope unseen for ``forget_after_s`` of span time
stops shadowing the others (tracing turned off in the service).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from otlp_enricher.model import LLMCall

# Lower is preferred. Scope names as the libraries set them (instrumentations.md; the
# recorded fixtures under tests/fixtures/recorded name each one).
PROVIDER_SDK = 0
CLIENT_INSTRUMENTOR = 1
FRAMEWORK = 2
SCOPE_PRECEDENCE: tuple[tuple[str, int], ...] = (
    ("com.anthropic.sdk", PROVIDER_SDK),
    ("opentelemetry.instrumentation.openai", CLIENT_INSTRUMENTOR),
    ("opentelemetry.instrumentation.anthropic", CLIENT_INSTRUMENTOR),
    ("opentelemetry.instrumentation.bedrock", CLIENT_INSTRUMENTOR),
    ("opentelemetry.instrumentation.botocore", CLIENT_INSTRUMENTOR),
    ("opentelemetry.instrumentation.google_genai", CLIENT_INSTRUMENTOR),
    ("opentelemetry.instrumentation.vertexai", CLIENT_INSTRUMENTOR),
    ("opentelemetry.instrumentation.genai", CLIENT_INSTRUMENTOR),
    ("opentelemetry.util.genai", CLIENT_INSTRUMENTOR),  # otel openai-v2 2.4b0 writes through util-genai
    ("openinference.instrumentation.openai", CLIENT_INSTRUMENTOR),
    ("openinference.instrumentation.anthropic", CLIENT_INSTRUMENTOR),
    ("openinference.instrumentation.bedrock", CLIENT_INSTRUMENTOR),
    ("openinference.instrumentation.google_genai", CLIENT_INSTRUMENTOR),
    ("openinference.instrumentation.vertexai", CLIENT_INSTRUMENTOR),
    ("openinference.instrumentation.mistralai", CLIENT_INSTRUMENTOR),
    ("openinference.instrumentation.groq", CLIENT_INSTRUMENTOR),
    ("openlit.instrumentation.openai", CLIENT_INSTRUMENTOR),  # OpenLIT 1.40+
    ("openlit.instrumentation.anthropic", CLIENT_INSTRUMENTOR),
    ("openlit.otel.tracing", CLIENT_INSTRUMENTOR),  # OpenLIT before 1.40
    ("openinference.instrumentation.langchain", FRAMEWORK),
    ("openinference.instrumentation.llama_index", FRAMEWORK),
    ("openinference.instrumentation.litellm", FRAMEWORK),
    ("openinference.instrumentation.dspy", FRAMEWORK),
    ("openinference.instrumentation.crewai", FRAMEWORK),
    ("openinference.instrumentation.pydantic_ai", FRAMEWORK),
    ("opentelemetry.instrumentation.langchain", FRAMEWORK),
    ("opentelemetry.instrumentation.llamaindex", FRAMEWORK),
    ("opentelemetry.instrumentation.crewai", FRAMEWORK),
    ("litellm", FRAMEWORK),
    ("pydantic-ai", FRAMEWORK),
)


class RecentCalls:
    """Remembers the last ``max_remembered`` calls; O(1) per call, also once full."""

    def __init__(self, max_remembered: int = 100_000) -> None:
        self._max = max_remembered
        # An OrderedDict, not a dict: deleting a plain dict's oldest key leaves a hole its
        # iterator must skip next time, so eviction degraded to ~20 µs/call once full (issue 7).
        self._seen: OrderedDict[tuple[bytes, bytes | str], None] = OrderedDict()

    @staticmethod
    def _key(call: LLMCall) -> tuple[bytes, bytes | str]:
        return (call.trace_id, call.response_id) if call.response_id else (call.trace_id, call.span_id)

    def first_time(self, call: LLMCall) -> bool:
        """Whether ``call`` has not been seen among the remembered ones (and remember it)."""
        key = self._key(call)
        seen = self._seen
        if key in seen:
            return False
        seen[key] = None
        if len(seen) > self._max:
            seen.popitem(last=False)
        return True

    def fresh(self, calls: Sequence[LLMCall]) -> list[LLMCall]:
        """The calls not seen before and not repeated earlier in ``calls``; remembers nothing, so a
        batch an exporter refused can be offered again (call :meth:`remember` once it is accepted)."""
        seen = self._seen
        batch: set[tuple[bytes, bytes | str]] = set()
        result = []
        for call in calls:
            key = self._key(call)
            if key not in seen and key not in batch:
                batch.add(key)
                result.append(call)
        return result

    def remember(self, calls: Sequence[LLMCall]) -> None:
        """Remember ``calls`` as seen."""
        for call in calls:
            self.first_time(call)


def scope_rank(scope: str) -> int | None:
    """The precedence rank of an instrumentation scope (lower wins), or None for a scope we do not know."""
    for prefix, rank in SCOPE_PRECEDENCE:
        if scope.startswith(prefix):
            return rank
    return None


class ScopePrecedence:
    """Per (service, provider): count only the calls of the most preferred scope the service emits."""

    def __init__(self, forget_after_s: float = 900.0, max_entries: int = 10_000) -> None:
        self._forget_after_ns = int(forget_after_s * 1e9)
        self._max_entries = max_entries
        self._ranks: dict[str, int | None] = {}
        # (service, provider) → (preferred (rank, scope), end time of its last call in ns)
        self._best: dict[tuple[str, str], tuple[tuple[int, str], int]] = {}

    def _rank(self, scope: str) -> int | None:
        rank = self._ranks.get(scope, -1)
        if rank == -1:
            rank = scope_rank(scope)
            if len(self._ranks) < self._max_entries:
                self._ranks[scope] = rank
        return rank

    def select(self, calls: Sequence[LLMCall]) -> list[LLMCall]:
        """Learn from ``calls`` which scopes each (service, provider) emits, then return the calls
        that count: those from the preferred scope, or from a scope we do not rank."""
        best = self._best
        ranked: list[tuple[LLMCall, tuple[int, str] | None]] = []
        for call in calls:
            rank = self._rank(call.scope)
            if rank is None:
                ranked.append((call, None))
                continue
            order = (rank, call.scope)
            key = (call.service, call.provider)
            current = best.get(key)
            if current is None:
                if len(best) >= self._max_entries:
                    best.clear()  # (service, provider) pairs are few; this bounds a pathological sender
                best[key] = (order, call.end_ns)
            elif order == current[0]:
                best[key] = (order, max(call.end_ns, current[1]))
            elif order < current[0] or call.end_ns - current[1] > self._forget_after_ns:
                best[key] = (order, call.end_ns)  # a more preferred scope, or the preferred one went quiet
            ranked.append((call, order))
        return [
            call
            for call, order in ranked
            if order is None or order <= best.get((call.service, call.provider), (order, 0))[0]
        ]
