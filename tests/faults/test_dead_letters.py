"""Loki refusing some lines (400 for the whole push) under steady load: every good line delivered,
the bad ones isolated into a dead-letter store that stays within its bound, drops counted.

Runs ``OUTAGE_S`` seconds (``OTLP_ENRICHER_OUTAGE_S``, default 5; 60 for the issue's full minute).
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

from otlp_enricher.exporter.deadletter import read_dead_letters
from tests.faults.harness import OUTAGE_S, InProcess, Load, Upstream
from tests.integration.tools import holds_within
from tests.peers.fake_loki import FakeLoki, StoredEntry
from tests.peers.fake_tempo import FakeTempo
from tests.peers.workload import make_config

LIMIT = 64 << 10


def _bad(span_id: str) -> bool:
    return span_id[0] in "01"  # one line in eight


def _poison(entry: StoredEntry) -> int:
    return 400 if _bad(entry.metadata.get("span_id", "f")) else 0


def test_refused_lines_are_isolated_and_the_dead_letter_store_stays_bounded(
    tmp_path: Path, peers: tuple[FakeLoki, FakeTempo]
) -> None:
    """One line in eight makes Loki refuse the whole push: the sender bisects, every other line
    arrives, no good line is dead-lettered, the store never passes its bound and the drops are
    counted so that kept + dropped = dead-lettered."""
    loki, tempo = peers
    loki.poison_if = _poison
    config = make_config(tmp_path, loki_url=loki.url, tempo_endpoint=tempo.endpoint)
    config = dataclasses.replace(config, storage=dataclasses.replace(config.storage, max_dead_letter_bytes=LIMIT))
    sidecar = InProcess(config)
    upstream = Upstream(sidecar.target)
    load = Load(upstream, workers=4, llm=4, plain=1).start()
    try:
        threading.Event().wait(OUTAGE_S)  # steady load for a fixed time by design
    finally:
        load.finish()
    acked = set(upstream.acked_llm_span_ids)
    good = {span_id for span_id in acked if not _bad(span_id)}
    assert good and len(good) < len(acked)
    registry = sidecar.service.registry
    assert loki.wait_until(lambda p: good <= {e.metadata["span_id"] for e in p.entries.values()}, 60)
    labels = {"exporter": "loki", "signal": "log_lines"}
    assert holds_within(lambda: registry.get_sample_value("otlp_enricher_spool_items", {"exporter": "loki"}) == 0, 60.0)
    dead = registry.get_sample_value("otlp_enricher_exporter_dead_lettered_total", labels)
    dropped = registry.get_sample_value("otlp_enricher_dead_letters_dropped_total", {"exporter": "loki"}) or 0
    sidecar.stop()
    directory = tmp_path / "deadletter"
    on_disk = sum(path.stat().st_size for path in directory.glob("loki*.jsonl"))
    letters = read_dead_letters(directory / "loki.jsonl")
    kept = [record["metadata"]["span_id"] for letter in letters for record in letter["records"]]
    assert all(_bad(span_id) for span_id in kept), "a good line was dead-lettered"
    assert sum(letter["items"] for letter in letters) + dropped == dead
    assert dead >= len(acked) - len(good)  # every acknowledged bad line was dead-lettered
    assert on_disk <= LIMIT + max(len(line) for line in _lines(directory))
    print(
        f"\n{OUTAGE_S:g}s: {len(acked)} LLM lines acked, {len(good)} good all delivered; "
        f"{int(dead)} dead-lettered, {len(kept)} kept ({on_disk} bytes), {int(dropped)} dropped; "
        f"{loki.requests} pushes"
    )


def _lines(directory: Path) -> list[bytes]:
    return [line for path in directory.glob("loki*.jsonl") for line in path.read_bytes().splitlines()]
