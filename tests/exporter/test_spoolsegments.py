"""Segment files: recovery cuts torn tails and drops committed segments; failed unlinks are retried."""

from __future__ import annotations

import errno
from pathlib import Path

from otlp_enricher.exporter.fileops import REAL_FILE_OPS, StorageError
from otlp_enricher.exporter.spoolformat import HEADER_BYTES, Position, Record, encode_frame
from otlp_enricher.exporter.spoolsegments import SegmentFiles
from tests.faults.fileops import FaultyOps


def _segment(files: SegmentFiles, segment: int, *payloads: bytes) -> None:
    files.path(segment).write_bytes(b"".join(encode_frame(payload, 1, 7) for payload in payloads))


def test_recovery_starts_at_the_committed_frame_and_cuts_a_torn_tail(tmp_path: Path) -> None:
    """Segments before the committed one are deleted; a half-written last frame is cut off."""
    files = SegmentFiles(tmp_path, REAL_FILE_OPS, sync_directory=False)
    _segment(files, 1, b"delivered")
    _segment(files, 2, b"delivered", b"unsent-1")
    _segment(files, 3, b"unsent-2")
    with files.path(3).open("ab") as stream:
        stream.write(encode_frame(b"torn", 1, 7)[:-2])
    committed = Position(2, HEADER_BYTES + len(b"delivered"))
    start, recovery, unsent_bytes = files.recover(committed)
    assert start == committed
    assert not files.path(1).exists()
    assert (recovery.items, recovery.records, recovery.truncated_bytes) == (2, 2, HEADER_BYTES + len(b"torn") - 2)
    assert unsent_bytes == 2 * HEADER_BYTES + len(b"unsent-1") + len(b"unsent-2")
    records: list[Record] = []
    files.read_frames(start, records, 10, 1 << 20, 0)
    files.read_frames(Position(3, 0), records, 10, 1 << 20, 0)
    assert [record.payload for record in records] == [b"unsent-1", b"unsent-2"]


def test_recovery_starts_at_the_oldest_segment_left_when_the_committed_one_is_gone(tmp_path: Path) -> None:
    """A segment deleted before its commit record was written: replay from the next (duplicates, never loss)."""
    files = SegmentFiles(tmp_path, REAL_FILE_OPS, sync_directory=False)
    _segment(files, 5, b"a")
    start, recovery, _ = files.recover(Position(4, 999))
    assert start == Position(5, 0) and recovery.items == 1


def test_a_failed_unlink_is_reported_and_retried_by_the_next_delete(tmp_path: Path) -> None:
    """The segment is forgotten at once (its disk space is what is at stake) and unlinked later."""
    ops = FaultyOps()
    files = SegmentFiles(tmp_path, ops, sync_directory=False)
    _segment(files, 1, b"a")
    _segment(files, 2, b"b")
    files.recover(Position(1, 0))
    errors: list[StorageError] = []
    ops.arm("unlink", errno.EIO)
    files.delete([1], errors.append)
    assert [error.op for error in errors] == ["unlink"] and files.path(1).exists()
    assert 1 not in files.sizes
    files.delete([2], errors.append)
    assert not files.path(1).exists() and not files.path(2).exists() and len(errors) == 1
