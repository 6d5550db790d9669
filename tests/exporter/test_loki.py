"""Loki exporter against the fake Loki: encoding, labels, redaction, truncation, retries, dead letters."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest

from otlp_enricher.config import Config
from otlp_enricher.exporter.deadletter import read_dead_letters
from otlp_enricher.exporter.loki import LokiExporter
from otlp_enricher.processor.redaction import Redactor
from tests.exporter.test_redaction import BACKTRACKING_BOMB
from tests.integration.tools import holds_within
from tests.peers.fake_loki import FakeLoki, Fault
from tests.peers.workload import SECRETS, make_config, make_pipeline, mixed_request


@pytest.fixture
def loki() -> Any:
    """A running fake Loki that wants tenant team-a."""
    peer = FakeLoki(tenant="team-a").start()
    yield peer
    peer.stop()


def _run(
    config: Config, scenario: Callable[[LokiExporter, Any], Awaitable[None]], redactor: Redactor | None = None
) -> Any:
    """Start a Loki exporter for ``config``, run ``scenario(exporter, calls_of)``, shut it down."""
    pipeline, metrics, registry = make_pipeline(config)
    assert config.exporters.loki is not None
    exporter = LokiExporter(config.exporters.loki, config.storage, redactor or Redactor(config.redaction), metrics)

    def calls_of(llm: int, seed: int = 0) -> Any:
        calls, outcome = pipeline.recognise(mixed_request(llm, 1, seed).SerializeToString())
        pipeline.count_redactions(outcome)  # content is scrubbed as it is scanned, as export() counts it
        return calls

    async def main() -> None:
        await exporter.start()
        try:
            await asyncio.wait_for(scenario(exporter, calls_of), 30)
        finally:
            await exporter.shutdown(2.0)

    asyncio.run(main())
    return registry


def _wait(peer: FakeLoki, predicate: Callable[[FakeLoki], bool]) -> Awaitable[bool]:
    return asyncio.to_thread(peer.wait_until, predicate, 15.0)


@pytest.mark.parametrize("encoding", ["protobuf", "json"])
def test_lines_arrive_with_few_labels_ids_in_metadata_and_secrets_redacted(
    tmp_path: Path, loki: FakeLoki, encoding: str
) -> None:
    """One line per call: low-cardinality labels, ids in structured metadata, tenant sent, no secret."""
    config = make_config(tmp_path, loki_url=loki.url, extra_loki=f", encoding: {encoding}")

    async def scenario(exporter: LokiExporter, calls_of: Any) -> None:
        await exporter.accept(calls_of(3))
        assert await _wait(loki, lambda p: len(p.entries) == 3)

    registry = _run(config, scenario)
    entries = list(loki.entries.values())
    assert {e.labels for e in entries} == {
        '{service="checkout",provider="openai",model="gpt-4o-2024-08-06",environment="test"}'
    }
    assert all(set(e.metadata) == {"trace_id", "span_id"} and len(e.metadata["trace_id"]) == 32 for e in entries)
    assert all(h.get("X-Scope-OrgID") == "team-a" for h in loki.headers)
    for entry in entries:
        for secret in SECRETS[:3]:
            assert secret not in entry.line
    line = orjson.loads(entries[0].line)
    assert line["tokens"]["output"] == 20 and line["cost_usd"] > 0 and line["cost_source"] == "price_table"
    assert line["finish_reasons"] == ["stop"] and line["slo"] == {"fast": "good"}
    assert line["user_id"].startswith("h:") and line["session_id"] in ("session-0", "session-1")
    assert "[REDACTED:email]" in orjson.dumps(line["input_messages"]).decode()
    assert entries[0].ts_ns == line["timestamp_ns"]
    assert (
        registry.get_sample_value("otlp_enricher_exporter_sent_total", {"exporter": "loki", "signal": "log_lines"}) == 3
    )
    assert (
        registry.get_sample_value("otlp_enricher_redactions_total", {"target": "prompt_log", "scrubber": "email"}) == 3
    )


def test_a_retried_push_is_an_exact_duplicate(tmp_path: Path, loki: FakeLoki) -> None:
    """The same span renders the same (stream, timestamp, line), so Loki keeps one copy."""
    config = make_config(tmp_path, loki_url=loki.url)

    async def scenario(exporter: LokiExporter, calls_of: Any) -> None:
        calls = calls_of(2, seed=7)
        await exporter.accept(calls)
        await exporter.accept(calls)
        assert await _wait(loki, lambda p: len(p.entries) + p.duplicates == 4)

    _run(config, scenario)
    assert len(loki.entries) == 2 and loki.duplicates == 2


def test_long_lines_are_truncated_visibly_not_rejected(tmp_path: Path, loki: FakeLoki) -> None:
    """A line over max_line_bytes keeps its metadata, loses content past a marker, stays JSON."""
    config = make_config(tmp_path, loki_url=loki.url, extra_loki=", max_line_bytes: 1024")

    async def scenario(exporter: LokiExporter, calls_of: Any) -> None:
        calls = calls_of(1)
        big = [{"role": "user", "parts": [{"type": "text", "content": "x" * 5000}]}]
        calls[0].span.attributes["gen_ai.input.messages"] = orjson.dumps(big).decode()
        await exporter.accept(calls)
        assert await _wait(loki, lambda p: len(p.entries) == 1)

    registry = _run(config, scenario)
    entry = next(iter(loki.entries.values()))
    assert len(entry.line.encode()) <= 1024
    line = orjson.loads(entry.line)
    assert line["truncated"]["original_bytes"] > 5000
    assert "[TRUNCATED" in line["content_preview"] and line["model"] == "gpt-4o-2024-08-06"
    assert registry.get_sample_value("otlp_enricher_loki_lines_truncated_total") == 1


def test_retryable_answers_are_retried_until_delivered(tmp_path: Path, loki: FakeLoki) -> None:
    """429 with Retry-After, 500, 503 and a cut connection are all retried; nothing is lost."""
    loki.faults.extend([Fault(429, retry_after="0"), Fault(500), Fault(cut=True), Fault(503)])
    config = make_config(tmp_path, loki_url=loki.url)

    async def scenario(exporter: LokiExporter, calls_of: Any) -> None:
        await exporter.accept(calls_of(2))
        assert await _wait(loki, lambda p: len(p.entries) == 2)

    registry = _run(config, scenario)
    assert registry.get_sample_value("otlp_enricher_exporter_retries_total", {"exporter": "loki"}) >= 3
    assert not (tmp_path / "deadletter" / "loki.jsonl").exists()


@pytest.mark.parametrize("status", [400, 413])
def test_a_refused_push_is_bisected_to_dead_letter_only_the_bad_line(
    tmp_path: Path, loki: FakeLoki, status: int
) -> None:
    """400 and 413 are not retried as they are: the batch is split until the one line Loki refuses is
    alone; that line is dead-lettered with Loki's answer, the other lines of the batch are delivered."""
    config = make_config(tmp_path, loki_url=loki.url)
    bad: list[str] = []

    async def scenario(exporter: LokiExporter, calls_of: Any) -> None:
        calls = calls_of(5)
        bad.append(calls[3].span_id.hex())
        loki.poison[bad[0]] = status
        await exporter.accept(calls)  # one append: one batch of five lines
        assert await _wait(loki, lambda p: len(p.entries) == 4)
        assert await asyncio.to_thread(
            lambda: holds_within(lambda: read_dead_letters(tmp_path / "deadletter" / "loki.jsonl"), 15.0)
        )

    registry = _run(config, scenario)
    letters = read_dead_letters(tmp_path / "deadletter" / "loki.jsonl")
    assert len(letters) == 1 and letters[0]["items"] == 1
    assert letters[0]["reason"] == f"HTTP {status}: poisoned line in the push"
    assert [record["metadata"]["span_id"] for record in letters[0]["records"]] == bad
    assert bad[0] not in {entry.metadata["span_id"] for entry in loki.entries.values()}
    labels = {"exporter": "loki", "signal": "log_lines"}
    assert registry.get_sample_value("otlp_enricher_exporter_dead_lettered_total", labels) == 1
    assert registry.get_sample_value("otlp_enricher_exporter_sent_total", labels) == 4
    assert loki.requests <= 1 + 2 * 3  # log2(5) rounded up levels of two halves each


def test_a_permanent_answer_for_a_single_line_dead_letters_it_and_delivery_goes_on(
    tmp_path: Path, loki: FakeLoki
) -> None:
    """A one-line batch refused with 400 cannot be split: it is dead-lettered, the next line delivered."""
    loki.faults.append(Fault(400, body=b"entry too far behind"))
    config = make_config(tmp_path, loki_url=loki.url)

    async def scenario(exporter: LokiExporter, calls_of: Any) -> None:
        await exporter.accept(calls_of(1))
        assert await _wait(loki, lambda p: p.requests == 1)
        await exporter.accept(calls_of(1, seed=50))
        assert await _wait(loki, lambda p: len(p.entries) == 1)

    registry = _run(config, scenario)
    letters = read_dead_letters(tmp_path / "deadletter" / "loki.jsonl")
    assert len(letters) == 1 and letters[0]["items"] == 1
    assert letters[0]["reason"] == "HTTP 400: entry too far behind"
    assert {"labels", "ts_ns", "line", "metadata"} <= set(letters[0]["records"][0])
    labels = {"exporter": "loki", "signal": "log_lines"}
    assert registry.get_sample_value("otlp_enricher_exporter_dead_lettered_total", labels) == 1
    assert loki.requests == 2


def test_a_failing_scrubber_drops_the_content(tmp_path: Path, loki: FakeLoki) -> None:
    """Fail closed: when redaction breaks, the line goes without its messages, never with them raw."""
    config = make_config(tmp_path, loki_url=loki.url)
    config = replace(config, redaction=replace(config.redaction, patterns=(BACKTRACKING_BOMB,)))

    async def scenario(exporter: LokiExporter, calls_of: Any) -> None:
        await exporter.accept(calls_of(1))
        assert await _wait(loki, lambda p: len(p.entries) == 1)

    registry = _run(config, scenario)
    line = orjson.loads(next(iter(loki.entries.values())).line)
    assert line["redaction_failed"] is True and line["input_messages"] == [] and line["output_messages"] == []
    # counted per content value: the span's gen_ai.input.messages and gen_ai.output.messages both fail
    assert registry.get_sample_value("otlp_enricher_redaction_failures_total", {"target": "prompt_log"}) == 2


def test_a_retry_budget_when_configured_ends_in_the_dead_letter_file(tmp_path: Path, loki: FakeLoki) -> None:
    """max_elapsed_s > 0 gives up on a batch (default 0 never does): it is dead-lettered, not dropped."""
    loki.refuse = Fault(503)
    config = make_config(
        tmp_path,
        loki_url=loki.url,
        extra_loki=", retry_on_failure: {initial_interval: 0.05, max_interval: 0.1, max_elapsed_time: 0.3}",
    )

    async def scenario(exporter: LokiExporter, calls_of: Any) -> None:
        await exporter.accept(calls_of(1))
        path = tmp_path / "deadletter" / "loki.jsonl"
        assert await asyncio.to_thread(loki.wait_until, lambda p: p.requests >= 3, 15.0)
        while not read_dead_letters(path):
            await asyncio.to_thread(loki.wait_until, lambda p: False, 0.05)

    _run(config, scenario)
    letters = read_dead_letters(tmp_path / "deadletter" / "loki.jsonl")
    assert letters[0]["reason"].startswith("retries exhausted; last failure: HTTP 503")
