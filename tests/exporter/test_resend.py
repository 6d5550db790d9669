"""``otlp-enricher dead-letters``: letters written by the exporters are listed and re-sent to the
backend they were refused by, once it takes them; a letter refused again keeps its file."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import grpc
import orjson

from otlp_enricher.config import Config
from otlp_enricher.exporter.deadletter import DeadLetterFile, read_dead_letters
from otlp_enricher.exporter.loki import LokiLines, LokiTransport
from otlp_enricher.exporter.resend import letters_path, resend, summarise
from otlp_enricher.exporter.spoolformat import Record
from otlp_enricher.exporter.tempo import TempoGrpcTransport
from otlp_enricher.processor.redaction import Redactor
from tests.peers.fake_loki import FakeLoki
from tests.peers.fake_tempo import FakeTempo, GrpcFault
from tests.peers.workload import batch_of, config_text, make_config, make_pipeline, mixed_request, span_keys


def _loki_letters(config: Config, count: int) -> list[str]:
    """Write ``count`` one-line Loki dead letters as the sender does; their span ids."""
    pipeline, metrics, _ = make_pipeline(config)
    assert config.exporters.loki is not None
    lines = LokiLines(config.exporters.loki, Redactor(config.redaction), metrics)
    transport = LokiTransport(config.exporters.loki)
    calls = batch_of(pipeline, mixed_request(count, 0, seed=7))[1]
    store = DeadLetterFile(letters_path(config, "loki"))

    async def write() -> None:
        for call in calls:
            record = Record(orjson.dumps(lines.entry(call)), 1, 0)
            await store.write("loki", "HTTP 400: test", 1, transport.describe([record]))

    asyncio.run(write())
    return [call.span_id.hex() for call in calls]


def test_resend_delivers_loki_letters_and_removes_their_files(tmp_path: Path) -> None:
    """Three letters, Loki answering again: all three lines arrive as they were, the files go."""
    loki = FakeLoki(tenant="team-a").start()
    try:
        config = make_config(tmp_path, loki_url=loki.url)
        span_ids = _loki_letters(config, 3)
        assert [s.letters for s in summarise(config)] == [3]
        result = asyncio.run(resend(config, "loki"))
        assert (result.sent, result.failed) == (3, 0)
        assert {entry.metadata["span_id"] for entry in loki.entries.values()} == set(span_ids)
        assert not read_dead_letters(letters_path(config, "loki"))
    finally:
        loki.stop()


def test_a_letter_refused_again_keeps_its_file(tmp_path: Path) -> None:
    """Tempo still refusing: nothing is deleted, the refusal is reported."""
    tempo = FakeTempo().start()
    try:
        config = make_config(tmp_path, tempo_endpoint=tempo.endpoint)
        assert config.exporters.tempo is not None
        message = mixed_request(1, 2, seed=3)
        record = Record(message.SerializeToString(), 3, 0)
        describe = TempoGrpcTransport(config.exporters.tempo).describe
        store = DeadLetterFile(letters_path(config, "tempo"))
        asyncio.run(store.write("tempo", "INVALID_ARGUMENT: x", 3, describe([record])))
        tempo.refuse = GrpcFault(grpc.StatusCode.INVALID_ARGUMENT, message="still bad")
        refused = asyncio.run(resend(config, "tempo"))
        assert (refused.sent, refused.failed) == (0, 1) and "still bad" in refused.last_failure
        assert len(read_dead_letters(letters_path(config, "tempo"))) == 1
        tempo.refuse = None
        accepted = asyncio.run(resend(config, "tempo"))
        assert (accepted.sent, accepted.failed) == (1, 0)
        assert span_keys(message) <= tempo.spans.keys()
    finally:
        tempo.stop()


def test_the_command_lists_dead_letters(tmp_path: Path) -> None:
    """``otlp-enricher dead-letters list --config …`` prints a line per exporter with letters."""
    path = tmp_path / "config.yaml"
    path.write_text(config_text(tmp_path / "data", loki_url="http://127.0.0.1:9"))
    config = make_config(tmp_path / "data", loki_url="http://127.0.0.1:9")
    _loki_letters(config, 2)
    listed = subprocess.run(
        [sys.executable, "-m", "otlp_enricher", "dead-letters", "list", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith("loki: 2 letters, 2 items")
