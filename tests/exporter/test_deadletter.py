"""The dead-letter store: bounded by bytes with rotation, the oldest dropped and counted, private."""

from __future__ import annotations

import asyncio
import errno
import stat
from pathlib import Path

import pytest

from otlp_enricher.exporter.deadletter import DeadLetterFile, read_dead_letters
from tests.faults.fileops import FaultyOps

LIMIT = 64 << 10


def _write_many(store: DeadLetterFile, count: int, items: int = 3) -> None:
    async def scenario() -> None:
        for index in range(count):
            await store.write("loki", f"HTTP 400: letter {index}", items, [{"line": "x" * 900, "n": index}])

    asyncio.run(scenario())


def test_the_store_stays_within_its_bound_dropping_the_oldest_and_counting_them(tmp_path: Path) -> None:
    """Far more dead letters than the bound holds: the files on disk stay within it (plus one line),
    the newest letters are kept in order, and every item dropped is reported."""
    path = tmp_path / "deadletter" / "loki.jsonl"
    store = DeadLetterFile(path, LIMIT)
    dropped: list[tuple[int, int]] = []
    store.on_drop = lambda items, size: dropped.append((items, size))
    _write_many(store, 400)
    on_disk = sum(p.stat().st_size for p in path.parent.iterdir())
    line_bytes = path.stat().st_size // max(1, len(path.read_bytes().splitlines()))
    assert on_disk <= LIMIT + line_bytes
    assert on_disk == store.stored_bytes
    kept = read_dead_letters(path)
    assert [letter["records"][0]["n"] for letter in kept] == list(range(400 - len(kept), 400))
    assert sum(items for items, _ in dropped) == 3 * (400 - len(kept))
    assert len(list(path.parent.glob("loki.*.jsonl"))) >= 2  # rotated, not one file cut


def test_dead_letter_files_are_private(tmp_path: Path) -> None:
    """They hold prompts and spans: the directory is 0700 and every file 0600, rotated ones too."""
    path = tmp_path / "deadletter" / "tempo.jsonl"
    _write_many(DeadLetterFile(path, LIMIT), 100)
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    files = list(path.parent.iterdir())
    assert len(files) > 1 and {stat.S_IMODE(p.stat().st_mode) for p in files} == {0o600}


def test_a_failed_write_leaves_no_torn_line(tmp_path: Path) -> None:
    """A write cut short by a full disk raises and is cut back: after a retry every line parses."""
    ops = FaultyOps()
    path = tmp_path / "loki.jsonl"
    store = DeadLetterFile(path, LIMIT, ops)
    _write_many(store, 2)
    ops.arm("write", errno.ENOSPC)
    with pytest.raises(OSError):
        _write_many(store, 1)
    _write_many(store, 1)
    assert [letter["reason"] for letter in read_dead_letters(path)] == [
        "HTTP 400: letter 0",
        "HTTP 400: letter 1",
        "HTTP 400: letter 0",
    ]
