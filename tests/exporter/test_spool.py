"""The write-ahead spool: append, read, commit, recover after a crash, refuse when full."""

from __future__ import annotations

import asyncio
import errno
from pathlib import Path

import pytest

from otlp_enricher.exporter.spool import Spool, SpoolFull, SpoolUnavailable
from otlp_enricher.exporter.spoolformat import HEADER_BYTES
from tests.doubles import crash
from tests.faults.fileops import FaultyOps


def _open(directory: Path, max_bytes: int = 1 << 20, fsync: str = "batch", segment_bytes: int = 0) -> Spool:
    spool = Spool(directory, max_bytes, fsync, segment_bytes)
    spool.open()
    return spool


def _read_all(spool: Spool) -> list[bytes]:
    batch = spool.read(1_000_000, 1 << 30)
    return [record.payload for record in batch.records]


@pytest.mark.parametrize("fsync", ["always", "batch", "never"])
def test_appended_records_come_back_in_order(tmp_path: Path, fsync: str) -> None:
    """Whatever the fsync policy, records are read back in append order with their item counts."""
    spool = _open(tmp_path, fsync=fsync)

    async def scenario() -> None:
        await spool.append([(b"one", 1), (b"two", 2)])
        await asyncio.gather(*(spool.append([(f"r{i}".encode(), 1)]) for i in range(20)))
        await spool.close()

    asyncio.run(scenario())
    assert spool.items == 23
    batch = spool.read(100, 1 << 20)
    assert [r.payload for r in batch.records[:2]] == [b"one", b"two"]
    assert sorted(r.payload for r in batch.records[2:]) == sorted(f"r{i}".encode() for i in range(20))
    assert batch.items == 23


def test_commit_survives_reopen_and_uncommitted_records_replay(tmp_path: Path) -> None:
    """After a restart the spool resumes at the committed position: committed records never return."""
    spool = _open(tmp_path, segment_bytes=64)

    async def fill() -> None:
        for i in range(10):
            await spool.append([(f"record-{i}".encode(), 1)])

    asyncio.run(fill())
    first = spool.read(4, 1 << 20)
    spool.commit(first)
    spool.read(3, 1 << 20)  # read but never committed: the "crash" loses this progress
    crash(spool)

    again = Spool(tmp_path, 1 << 20, "batch", 64)
    recovery = again.open()
    assert recovery.items == 6
    assert _read_all(again) == [f"record-{i}".encode() for i in range(4, 10)]
    assert len(list(tmp_path.glob("*.wal"))) <= 7  # fully committed segments were deleted


def test_torn_tail_is_cut_and_earlier_records_kept(tmp_path: Path) -> None:
    """A frame half-written when the process died is cut off at open; the records before it stay."""
    spool = _open(tmp_path)
    asyncio.run(spool.append([(b"good-1", 1), (b"good-2", 1)]))
    crash(spool)
    segment = sorted(tmp_path.glob("*.wal"))[-1]
    with open(segment, "ab") as stream:
        stream.write(b"\x40\x00\x00\x00garbage")  # a header promising 64 bytes that never came
    again = Spool(tmp_path, 1 << 20, "batch")
    recovery = again.open()
    assert recovery.truncated_bytes == 11
    assert _read_all(again) == [b"good-1", b"good-2"]


def test_corrupt_frame_is_detected_by_crc(tmp_path: Path) -> None:
    """A flipped byte fails the CRC: the segment ends at the last good frame."""
    spool = _open(tmp_path)
    asyncio.run(spool.append([(b"aaaa", 1), (b"bbbb", 1)]))
    crash(spool)
    segment = sorted(tmp_path.glob("*.wal"))[-1]
    data = bytearray(segment.read_bytes())
    data[HEADER_BYTES + 4 + HEADER_BYTES] ^= 0xFF  # first payload byte of the second frame
    segment.write_bytes(bytes(data))
    again = Spool(tmp_path, 1 << 20, "batch")
    again.open()
    assert _read_all(again) == [b"aaaa"]


def test_full_spool_refuses_without_writing(tmp_path: Path) -> None:
    """Past max_bytes an append raises SpoolFull and leaves the spool as it was; a commit makes room."""
    spool = _open(tmp_path, max_bytes=100)

    async def scenario() -> None:
        await spool.append([(b"x" * 40, 1)])
        with pytest.raises(SpoolFull):
            await spool.append([(b"y" * 40, 1)])
        assert spool.items == 1
        spool.commit(spool.read(10, 1 << 20))
        await spool.append([(b"y" * 40, 1)])

    asyncio.run(scenario())
    assert spool.items == 1 and spool.bytes == HEADER_BYTES + 40


def test_read_respects_bounds_but_always_returns_one(tmp_path: Path) -> None:
    """A batch stops at max records or max bytes, except that one oversized record still comes out."""
    spool = _open(tmp_path)
    asyncio.run(spool.append([(b"a" * 100, 1), (b"b" * 10, 1), (b"c" * 10, 1), (b"d" * 10, 1)]))
    big = spool.read(10, 50)
    assert [len(r.payload) for r in big.records] == [100]
    spool.commit(big)
    two = spool.read(2, 1 << 20)
    assert [r.payload for r in two.records] == [b"b" * 10, b"c" * 10]


def test_oldest_unsent_age_is_known_after_restart(tmp_path: Path) -> None:
    """The oldest unsent record's append time is read from its frame, also right after a restart."""
    spool = _open(tmp_path)
    asyncio.run(spool.append([(b"old", 1)]))
    crash(spool)
    again = Spool(tmp_path, 1 << 20, "never")
    again.open()
    assert again.oldest_known_ns() is None  # not read yet
    again.load_oldest_unsent()
    oldest = again.oldest_known_ns()
    assert oldest is not None and oldest > 0
    again.commit(again.read(10, 1 << 20))
    again.load_oldest_unsent()
    assert again.oldest_known_ns() is None


def test_a_legacy_text_commit_record_is_honoured_and_upgraded(tmp_path: Path) -> None:
    """A spool left by a version that wrote ``committed`` as text resumes at that position, and the
    record is rewritten as the two in-place slots (64 bytes) it is committed with from then on."""
    spool = _open(tmp_path, segment_bytes=64)
    asyncio.run(spool.append([(f"record-{i}".encode(), 1) for i in range(4)]))
    crash(spool)
    segment = sorted(tmp_path.glob("*.wal"))[0]
    offset = HEADER_BYTES + len(b"record-0")
    (tmp_path / "committed").write_text(f"{int(segment.stem)} {offset}\n", "ascii")
    again = Spool(tmp_path, 1 << 20, "batch", 64)
    assert again.open().items == 3
    assert _read_all(again) == [b"record-1", b"record-2", b"record-3"]
    assert (tmp_path / "committed").stat().st_size == 64


def test_an_append_that_succeeds_late_does_not_hide_a_newer_failure(tmp_path: Path) -> None:
    """Append A is written, then waits on its fsync; meanwhile append B hits a full disk. A's late
    success says nothing about the disk now: the spool stays unwritable until an append written
    after B's failure succeeds (the race a full-disk test under load once lost)."""
    ops = FaultyOps()
    spool = Spool(tmp_path, 1 << 20, "always", 0, ops=ops)
    spool.open()
    fsync = ops.hold("fsync")

    async def scenario() -> None:
        first = asyncio.ensure_future(spool.append([(b"a", 1)]))
        assert await asyncio.to_thread(fsync.entered.wait, 5)
        ops.arm("write", errno.ENOSPC, sticky=True)
        with pytest.raises(SpoolUnavailable):
            await spool.append([(b"b", 1)])
        fsync.released.set()
        await first
        assert spool.problem is not None and "ENOSPC" in spool.problem
        ops.clear()
        await spool.append([(b"c", 1)])
        assert spool.problem is None

    asyncio.run(scenario())
    assert _read_all(spool) == [b"a", b"c"]
