"""One count per call: retries and same-trace copies (RecentCalls), copies across traces and
replicas (ScopePrecedence). Scope names are the ones the libraries set (tests/fixtures/recorded)."""

from __future__ import annotations

import os
import zlib

from otlp_enricher.model import LLMCall
from otlp_enricher.processor.dedupe import RecentCalls, ScopePrecedence, scope_rank
from tests.doubles import llm_call

SDK = "com.anthropic.sdk.python"
TRACELOOP = "opentelemetry.instrumentation.anthropic"
OI_OPENAI = "openinference.instrumentation.openai"
OI_LANGCHAIN = "openinference.instrumentation.langchain"
SECOND_NS = 1_000_000_000


def call(scope: str, provider: str = "anthropic", service: str = "svc", at_s: float = 0.0, **kw: object) -> LLMCall:
    """A call from ``scope`` in its own trace, ending ``at_s`` seconds into the run."""
    end_ns = int(at_s * SECOND_NS) + SECOND_NS
    return llm_call(
        **{
            "trace_id": os.urandom(16),
            "span_id": os.urandom(8),
            "start_ns": end_ns - SECOND_NS,
            "end_ns": end_ns,
            "service": service,
            "provider": provider,
            "request_model": "m",
            "scope": scope,
            **kw,
        }
    )


def test_recent_calls_forget_the_oldest_first() -> None:
    """Bounded memory: the oldest call is forgotten first, a remembered one stays a repeat."""
    recent = RecentCalls(max_remembered=3)
    calls = [call(SDK) for _ in range(4)]
    assert all(recent.first_time(c) for c in calls)
    assert recent.first_time(calls[0])  # evicted by the fourth, so it counts again
    assert not recent.first_time(calls[3])
    assert len(recent._seen) == 3


def test_fresh_does_not_remember_until_told() -> None:
    """A batch an exporter refused is offered again: fresh() alone remembers nothing."""
    recent = RecentCalls()
    first, copy = call(SDK, response_id="msg_1"), call(SDK, response_id="msg_1")
    copy.trace_id = first.trace_id
    assert recent.fresh([first, copy]) == [first]  # the same-trace copy goes within one batch
    assert recent.fresh([first]) == [first]
    recent.remember([first])
    assert recent.fresh([first]) == []


def test_sdk_tracing_beside_an_instrumentor_counts_the_sdk_copy_across_traces() -> None:
    """anthropic SDK + Traceloop: two copies of each call in different traces, no shared id."""
    precedence = ScopePrecedence()
    batch = [copy for index in range(12) for copy in (call(TRACELOOP, at_s=index), call(SDK, at_s=index))]
    counted = precedence.select(batch)
    assert len(counted) == 12 and {c.scope for c in counted} == {SDK}


def test_framework_copy_gives_way_to_the_client_instrumentor() -> None:
    """LangChain under OpenInference + OpenInference's OpenAI instrumentor: the client span counts."""
    precedence = ScopePrecedence()
    batch = [copy for index in range(13) for copy in (call(OI_LANGCHAIN, "openai"), call(OI_OPENAI, "openai"))]
    counted = precedence.select(batch)
    assert len(counted) == 13 and {c.scope for c in counted} == {OI_OPENAI}


def test_an_instrumentor_alone_counts_and_other_services_are_separate() -> None:
    """Precedence is per (service, provider): a service without SDK tracing keeps its copies."""
    precedence = ScopePrecedence()
    precedence.select([call(SDK, service="a")])
    assert len(precedence.select([call(TRACELOOP, service="b") for _ in range(3)])) == 3
    assert len(precedence.select([call(TRACELOOP, service="a", provider="openai")])) == 1
    assert precedence.select([call(TRACELOOP, service="a")]) == []


def test_openlit_scopes_of_every_version_rank_as_client_instrumentors() -> None:
    """OpenLIT 1.40+ names a scope per library (recorded: openlit-*.jsonl), older ones one for all;
    either gives way to the anthropic SDK's own tracing."""
    for scope in ("openlit.instrumentation.anthropic", "openlit.otel.tracing"):
        assert scope_rank(scope) == scope_rank(TRACELOOP)
        counted = ScopePrecedence().select([call(scope), call(SDK)])
        assert [c.scope for c in counted] == [SDK]


def test_unknown_scopes_are_never_shadowed() -> None:
    """A scope we do not rank might be anything: it always counts."""
    precedence = ScopePrecedence()
    precedence.select([call(SDK)])
    assert scope_rank("my.company.llm") is None
    assert len(precedence.select([call("my.company.llm")])) == 1


def test_a_preferred_scope_that_goes_quiet_stops_shadowing() -> None:
    """The service turned its SDK tracing off: after forget_after_s of span time the instrumentor counts."""
    precedence = ScopePrecedence(forget_after_s=60)
    precedence.select([call(SDK, at_s=0)])
    assert precedence.select([call(TRACELOOP, at_s=30)]) == []
    assert len(precedence.select([call(TRACELOOP, at_s=90)])) == 1
    assert precedence.select([call(SDK, at_s=91), call(TRACELOOP, at_s=91)])[0].scope == SDK


def test_three_replicas_behind_trace_id_load_balancing_agree() -> None:
    """Copies of one call sit in two traces, so load_balancing (by trace id) sends them to different
    replicas; each replica decides from its own share. After each has seen both scopes once (the
    warm-up), every call is counted exactly once in all."""
    replicas = [ScopePrecedence() for _ in range(3)]

    def route(traced: LLMCall) -> int:
        return zlib.crc32(traced.trace_id) % 3

    def run(calls_per_copy: int, start_s: float) -> int:
        counted = 0
        for index in range(calls_per_copy):
            for copy in (call(TRACELOOP, at_s=start_s + index), call(SDK, at_s=start_s + index)):
                counted += len(replicas[route(copy)].select([copy]))  # one trace per request
        return counted

    warm_up = run(30, 0)
    assert 30 <= warm_up < 60  # only Traceloop copies a replica saw before its first SDK copy
    assert all(replica._best for replica in replicas)
    assert run(100, 100) == 100


def test_two_instrumentors_of_one_sdk_count_once_in_name_order() -> None:
    """OpenLLMetry's and OpenInference's OpenAI instrumentors both active: one copy, deterministically."""
    precedence = ScopePrecedence()
    traceloop = "opentelemetry.instrumentation.openai.v1"
    counted = precedence.select([call(traceloop, "openai"), call(OI_OPENAI, "openai")] * 5)
    assert len(counted) == 5 and {c.scope for c in counted} == {min(traceloop, OI_OPENAI)}
