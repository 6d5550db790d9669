"""The benchmark's building blocks (``bench/``): its requests, its CPU reader, its load driver.

No timing is asserted: these check that the benchmark measures what it says it measures.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from bench.load import Driver, Phase
from bench.procstat import descendants, sample_tree
from bench.systems import BY_KEY, Sink, start
from bench.workload import RequestFactory, RequestShape, is_content_key, load_recorded_llm_spans, mark_content

SHAPES = [RequestShape(100, 0.8), RequestShape(1000, 0.2), RequestShape(10, 0.0)]


def spans_of(body: bytes) -> list[tuple[str, object]]:
    """(scope name, span) of every span of an Export body, which must parse."""
    request = ExportTraceServiceRequest.FromString(body)
    return [
        (scope_spans.scope.name, span)
        for resource_spans in request.resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
    ]


def is_llm_span(span: object) -> bool:
    """An LLM call in any recorded vocabulary: OTel gen_ai.*, OpenInference llm.*."""
    return any(kv.key.startswith(("gen_ai.", "llm.")) for kv in span.attributes)  # type: ignore[attr-defined]


def contents(span: object) -> list[str]:
    """The prompt and completion strings of a span."""
    return [kv.value.string_value for kv in span.attributes if is_content_key(kv.key)]  # type: ignore[attr-defined]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda shape: shape.label)
def test_request_has_the_shape_asked_for(shape: RequestShape) -> None:
    """A body is valid OTLP with ``spans`` spans, of which round(spans × share) are LLM calls."""
    spans = spans_of(RequestFactory(shape).body())
    assert len(spans) == shape.spans
    assert sum(is_llm_span(span) for _, span in spans) == round(shape.spans * shape.llm_share)


def test_llm_spans_are_the_recorded_instrumentations() -> None:
    """LLM spans come from the recorded fixtures, several instrumentations of them."""
    recorded = load_recorded_llm_spans()
    scopes = {scope for scope, span in spans_of(RequestFactory(RequestShape(100, 1.0), recorded).body())}
    assert len(scopes) >= 4
    assert scopes <= {item.scope.name for item in recorded}


def test_every_request_is_new() -> None:
    """Two bodies share no trace id and no prompt text; within one, (trace, span) ids are unique."""
    factory = RequestFactory(RequestShape(100, 0.8))
    first, second = spans_of(factory.body()), spans_of(factory.body())
    for spans in (first, second):
        keys = {(span.trace_id, span.span_id) for _, span in spans}  # type: ignore[attr-defined]
        assert len(keys) == len(spans)
    assert not {span.trace_id for _, span in first} & {span.trace_id for _, span in second}  # type: ignore[attr-defined]
    texts = [text for _, span in first + second for text in contents(span)]
    assert len(texts) > 100
    assert len(set(texts)) == len(texts)
    for text in texts:
        if text.lstrip()[:1] in ("[", "{"):
            json.loads(text)  # still what the instrumentation wrote: valid JSON


def test_mark_content_keeps_json_valid() -> None:
    """The marker goes inside the first text of JSON messages, after plain text, nowhere else."""
    messages = '[{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]'
    marked = mark_content(messages, "#42")
    assert marked is not None
    assert json.loads(marked)[0]["parts"][0]["content"] == "#42 hi"
    assert mark_content("hello", "#42") == "hello #42"
    assert mark_content('[{"type": "tool_call", "name": "f"}]', "#42") is None


def burner(cpu_s: float, reap: bool) -> str:
    """A parent process whose child burns ``cpu_s`` of CPU; ``reap``: the child exits and is waited for."""
    child = f"import time\nwhile time.process_time() < {cpu_s}: pass\n"
    child += "" if reap else "print('burnt', flush=True)\nimport sys; sys.stdin.read()\n"
    return textwrap.dedent(
        f"""
        import subprocess, sys
        child = subprocess.Popen([sys.executable, "-c", {child!r}], stdin=subprocess.PIPE if {not reap} else None,
                                 stdout=None if {reap} else subprocess.PIPE, text=True)
        if {reap}:
            child.wait()
        else:
            child.stdout.readline()
        print(child.pid, flush=True)
        sys.stdin.read()
        """
    )


@pytest.mark.parametrize("reap", [False, True], ids=["child-running", "child-reaped"])
def test_cpu_reader_counts_the_process_tree(reap: bool) -> None:
    """A child's CPU counts for its parent's tree, whether the child still runs or was reaped."""
    with subprocess.Popen(
        [sys.executable, "-c", burner(0.3, reap)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as parent:
        assert parent.stdout is not None and parent.stdin is not None
        child_pid = int(parent.stdout.readline())
        sample = sample_tree(parent.pid)
        tree = descendants(parent.pid)
        parent.stdin.close()  # the parent exits on EOF, and a running child on its own stdin's EOF
    assert sample.cpu_s >= 0.3
    assert sample.rss_bytes > 0
    assert (child_pid in tree) is not reap


def test_driver_against_the_floor_server(tmp_path: Path) -> None:
    """The load driver's closed loop gets every call accepted by the do-nothing server, none refused."""
    running = start(BY_KEY["floor"], tmp_path, Sink("", ""), None, [])
    try:

        async def drive() -> tuple[int, int, int]:
            driver = Driver(running.target, connections=2)
            try:
                await driver.ready(timeout_s=30)
                result = await driver.closed(Phase("closed", RequestShape(100, 0.8), seconds=0.3, concurrency=2))
                return result.calls_ok, result.spans_ok, result.refused_calls
            finally:
                await driver.close()

        calls, spans, refused = asyncio.run(drive())
        assert calls >= 1
        assert spans == 100 * calls
        assert refused == 0
    finally:
        running.stop()
