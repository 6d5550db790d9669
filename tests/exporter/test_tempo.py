"""Tempo exporter against the fake Tempo: raw forwarding, enrichment, content policy, OTLP answers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from otlp_enricher.config import Config
from otlp_enricher.exporter.deadletter import read_dead_letters
from otlp_enricher.exporter.tempo import TempoExporter
from otlp_enricher.pipeline import Pipeline
from otlp_enricher.processor.redaction import Redactor
from tests.otlp_builders import attributes_of
from tests.peers.fake_otlp_http import FakeOtlpHttp
from tests.peers.fake_tempo import FakeTempo, GrpcFault
from tests.peers.workload import (
    SECRET_EMAIL,
    SECRET_KEY,
    batch_of,
    make_config,
    make_pipeline,
    mixed_request,
    span_keys,
)


@pytest.fixture
def tempo() -> Any:
    """A running fake Tempo."""
    peer = FakeTempo().start()
    yield peer
    peer.stop()


def _run(config: Config, scenario: Callable[[TempoExporter, Pipeline], Awaitable[None]]) -> Any:
    pipeline, metrics, registry = make_pipeline(config)
    assert config.exporters.tempo is not None
    exporter = TempoExporter(config.exporters.tempo, config.storage, Redactor(config.redaction), metrics)

    async def main() -> None:
        await exporter.start()
        try:
            await asyncio.wait_for(scenario(exporter, pipeline), 30)
        finally:
            await exporter.shutdown(2.0)

    asyncio.run(main())
    return registry, exporter


def _wait(peer: FakeTempo, predicate: Callable[[FakeTempo], bool]) -> Awaitable[bool]:
    return asyncio.to_thread(peer.wait_until, predicate, 15.0)


def test_plain_spans_are_forwarded_byte_for_byte(tmp_path: Path, tempo: FakeTempo) -> None:
    """A request without LLM spans is spooled and sent as the bytes received, not re-encoded."""
    config = make_config(tmp_path, tempo_endpoint=tempo.endpoint)
    message = mixed_request(0, 5)

    async def scenario(exporter: TempoExporter, pipeline: Pipeline) -> None:
        batch, _ = batch_of(pipeline, message)
        await exporter.accept(batch)
        assert await _wait(tempo, lambda p: len(p.spans) == 5)

    _, exporter = _run(config, scenario)
    assert exporter.forwarded_raw == 1 and exporter.reencoded == 0
    assert set(tempo.spans) == span_keys(message)
    assert tempo.bodies == [message.SerializeToString()]


def test_llm_spans_carry_the_enrichment_and_scrubbed_content(tmp_path: Path, tempo: FakeTempo) -> None:
    """LLM spans gain otlp_enricher.* attributes; their content is scrubbed; user ids hashed."""
    config = make_config(tmp_path, tempo_endpoint=tempo.endpoint)
    message = mixed_request(2, 3)

    async def scenario(exporter: TempoExporter, pipeline: Pipeline) -> None:
        batch, calls = batch_of(pipeline, message)
        assert len(calls) == 2
        await exporter.accept(batch)
        assert await _wait(tempo, lambda p: len(p.spans) == 5)

    registry, exporter = _run(config, scenario)
    assert exporter.reencoded == 1
    llm = [s for s in tempo.spans.values() if any(kv.key == "gen_ai.input.messages" for kv in s.attributes)]
    assert len(llm) == 2
    attrs = attributes_of(llm[0].attributes)
    assert attrs.get("otlp_enricher.cost_source") == "price_table" and attrs.get("otlp_enricher.cost_usd") > 0
    assert attrs.get("otlp_enricher.unpriced") is False and attrs.get("otlp_enricher.slo.fast") == "good"
    assert attrs.get("otlp_enricher.provider") == "openai"
    content = attrs.get("gen_ai.input.messages")
    assert SECRET_EMAIL not in content and SECRET_KEY not in content and "[REDACTED:api_key]" in content
    assert attrs.get("user.id").startswith("h:")
    # the request the receiver holds (read by the prompt-log exporter too) is left untouched
    assert SECRET_EMAIL in attributes_of(message.resource_spans[0].scope_spans[0].spans[0].attributes).get(
        "gen_ai.input.messages"
    )
    assert registry.get_sample_value("otlp_enricher_exporter_sent_total", {"exporter": "tempo", "signal": "spans"}) == 5


def test_strip_content_removes_prompts_and_completions(tmp_path: Path, tempo: FakeTempo) -> None:
    """With strip_content, re-exported LLM spans hold no message content at all, and say so."""
    config = make_config(tmp_path, tempo_endpoint=tempo.endpoint, extra_tempo=", strip_content: true")

    async def scenario(exporter: TempoExporter, pipeline: Pipeline) -> None:
        await exporter.accept(batch_of(pipeline, mixed_request(1, 0))[0])
        assert await _wait(tempo, lambda p: len(p.spans) == 1)

    _run(config, scenario)
    attrs = attributes_of(next(iter(tempo.spans.values())).attributes)
    assert "gen_ai.input.messages" not in attrs and "gen_ai.output.messages" not in attrs
    assert attrs.get("otlp_enricher.content_stripped") is True and attrs.get("gen_ai.request.model") == "gpt-4o"


def test_retryable_codes_are_retried_honouring_retry_info(tmp_path: Path, tempo: FakeTempo) -> None:
    """UNAVAILABLE (with RetryInfo), RESOURCE_EXHAUSTED without it (Tempo 2.x rate limit) and
    DEADLINE_EXCEEDED are retried until the spans arrive."""
    tempo.faults.extend(
        [
            GrpcFault(grpc.StatusCode.UNAVAILABLE, retry_after_s=0.3),
            GrpcFault(grpc.StatusCode.RESOURCE_EXHAUSTED, message="RATE_LIMITED: ingestion rate limit"),
            GrpcFault(grpc.StatusCode.DEADLINE_EXCEEDED),
        ]
    )
    config = make_config(tmp_path, tempo_endpoint=tempo.endpoint)

    async def scenario(exporter: TempoExporter, pipeline: Pipeline) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await exporter.accept(batch_of(pipeline, mixed_request(1, 2))[0])
        assert await _wait(tempo, lambda p: len(p.spans) == 3)
        assert loop.time() - started >= 0.3  # the RetryInfo delay was a floor

    registry, _ = _run(config, scenario)
    assert registry.get_sample_value("otlp_enricher_exporter_retries_total", {"exporter": "tempo"}) == 3


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (GrpcFault(grpc.StatusCode.INVALID_ARGUMENT, message="trace ids must be 128 bit"), "INVALID_ARGUMENT"),
        (GrpcFault(rejected_spans=1, message="trace too large"), "partial success: 1 of 2 spans rejected"),
    ],
)
def test_permanent_answers_are_dead_lettered(tmp_path: Path, tempo: FakeTempo, fault: GrpcFault, reason: str) -> None:
    """INVALID_ARGUMENT and partial success are never retried; the request is kept with the reason."""
    tempo.faults.append(fault)
    config = make_config(tmp_path, tempo_endpoint=tempo.endpoint)

    async def scenario(exporter: TempoExporter, pipeline: Pipeline) -> None:
        await exporter.accept(batch_of(pipeline, mixed_request(0, 2))[0])
        assert await _wait(tempo, lambda p: p.requests == 1)
        await exporter.accept(batch_of(pipeline, mixed_request(0, 1))[0])
        assert await _wait(tempo, lambda p: p.requests == 2)

    _run(config, scenario)
    letters = read_dead_letters(tmp_path / "deadletter" / "tempo.jsonl")
    assert len(letters) == 1 and letters[0]["reason"].startswith(reason)
    assert letters[0]["records"][0]["spans"] == 2 and letters[0]["records"][0]["otlp_protobuf_base64"]


def test_tempo_down_then_up_loses_nothing(tmp_path: Path, tempo: FakeTempo) -> None:
    """Connection refused while Tempo is down is retried; once it is back every span arrives."""
    tempo.stop()
    config = make_config(tmp_path, tempo_endpoint=tempo.endpoint)
    messages = [mixed_request(1, 3, seed=i * 10) for i in range(5)]

    async def scenario(exporter: TempoExporter, pipeline: Pipeline) -> None:
        for message in messages:
            await exporter.accept(batch_of(pipeline, message)[0])
        assert exporter.spool.items == 20
        tempo.start()
        assert await _wait(tempo, lambda p: len(p.spans) == 20)

    _run(config, scenario)
    assert set(tempo.spans) == set().union(*(span_keys(m) for m in messages))


def test_otlp_http_is_an_option_with_the_same_answers(tmp_path: Path) -> None:
    """protocol: http POSTs gzip protobuf to /v1/traces; 503 with Retry-After is retried, 400 is
    dead-lettered, and every other span arrives."""
    peer = FakeOtlpHttp().start()
    peer.faults.extend([(503, "0"), (400, None)])
    config = make_config(tmp_path, tempo_endpoint=peer.url, extra_tempo=", protocol: http")
    first, second = mixed_request(1, 2), mixed_request(0, 3)

    async def scenario(exporter: TempoExporter, pipeline: Pipeline) -> None:
        await exporter.accept(batch_of(pipeline, first)[0])
        assert await asyncio.to_thread(peer.wait_until, lambda p: p.requests == 2, 15.0)
        await exporter.accept(batch_of(pipeline, second)[0])
        assert await asyncio.to_thread(peer.wait_until, lambda p: len(p.spans) == 3, 15.0)

    try:
        _run(config, scenario)
    finally:
        peer.stop()
    assert set(peer.spans) == span_keys(second) and set(peer.encodings) == {"gzip"}
    letters = read_dead_letters(tmp_path / "deadletter" / "tempo.jsonl")
    assert [letter["reason"] for letter in letters] == ["HTTP 400"] and letters[0]["items"] == 3


def test_split_request_keeps_every_span_under_its_resource_and_scope() -> None:
    """A request over the size limit is cut into parts under it; together they hold every span once."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from otlp_enricher.dataplane import split
    from tests.otlp_builders import request, span

    big = request([span({"payload": "x" * 10_000}) for _ in range(50)], service="a")
    big.resource_spans.extend(request([span({"payload": "y" * 10_000}) for _ in range(30)], service="b").resource_spans)
    parts = split(big.SerializeToString(), 1 << 30, 100_000)
    assert len(parts) > 1
    assert all(len(payload) <= 100_000 for payload, _ in parts)
    assert sum(count for _, count in parts) == 80
    seen: dict[bytes, str] = {}
    for payload, count in parts:
        part = ExportTraceServiceRequest.FromString(payload)
        assert count == sum(len(s.spans) for r in part.resource_spans for s in r.scope_spans)
        for resource_spans in part.resource_spans:
            service = resource_spans.resource.attributes[0].value.string_value
            for scope_spans in resource_spans.scope_spans:
                assert scope_spans.scope.name == "test"
                for item in scope_spans.spans:
                    seen[item.span_id] = service
    expected = {s.span_id: r.resource.attributes[0].value.string_value
                for r in big.resource_spans for ss in r.scope_spans for s in ss.spans}  # fmt: skip
    assert seen == expected


def test_a_request_larger_than_tempo_takes_arrives_whole_in_parts(tmp_path: Path, tempo: FakeTempo) -> None:
    """A 6 MiB request (Tempo, like any grpc-go server, refuses more than 4 MiB) is cut up, not
    dead-lettered: every span arrives."""
    from tests.otlp_builders import request, span

    config = make_config(tmp_path, tempo_endpoint=tempo.endpoint)
    message = request([span({"blob": "z" * 60_000}) for _ in range(100)])
    assert message.ByteSize() > 4 << 20

    async def scenario(exporter: TempoExporter, pipeline: Pipeline) -> None:
        batch, _ = batch_of(pipeline, message)
        await exporter.accept(batch)
        assert await _wait(tempo, lambda p: len(p.spans) == 100)

    _run(config, scenario)
    assert set(tempo.spans) == span_keys(message)
    assert read_dead_letters(tmp_path / "deadletter" / "tempo.jsonl") == []
    assert len(tempo.bodies) >= 2
