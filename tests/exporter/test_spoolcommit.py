"""The ``committed`` record: two slots written alternately in place; a torn one leaves the other."""

from __future__ import annotations

from pathlib import Path

from otlp_enricher.exporter.fileops import REAL_FILE_OPS
from otlp_enricher.exporter.spoolcommit import CommitRecord
from otlp_enricher.exporter.spoolformat import SLOT, Position


def _record(path: Path) -> CommitRecord:
    record = CommitRecord(str(path), REAL_FILE_OPS, fsync=True)
    record.open()
    return record


def _close(record: CommitRecord) -> None:
    REAL_FILE_OPS.close(record.detach())


def test_a_new_record_starts_at_zero_and_is_two_slots_on_disk(tmp_path: Path) -> None:
    """Opening creates both slots at once, so later writes never grow the file (a full disk)."""
    record = _record(tmp_path / "committed")
    assert record.position == Position(0, 0)
    assert (tmp_path / "committed").stat().st_size == 2 * SLOT.size
    _close(record)


def test_writes_alternate_slots_and_the_newest_wins_on_open(tmp_path: Path) -> None:
    """Each write goes to the slot the previous one did not touch; reopening reads the newest."""
    path = tmp_path / "committed"
    record = _record(path)
    before = path.read_bytes()
    record.write(Position(3, 100))
    after_first = path.read_bytes()
    record.write(Position(3, 250))
    after_second = path.read_bytes()
    changed_first = [i // SLOT.size for i in range(len(before)) if before[i] != after_first[i]]
    changed_second = [i // SLOT.size for i in range(len(before)) if after_first[i] != after_second[i]]
    assert set(changed_first) != set(changed_second) and len(set(changed_first)) == 1
    _close(record)
    assert _record(path).position == Position(3, 250)


def test_a_torn_newest_slot_falls_back_to_the_other(tmp_path: Path) -> None:
    """A power loss mid-``pwrite`` garbles one slot: its CRC fails and the older position is used."""
    path = tmp_path / "committed"
    record = _record(path)
    record.write(Position(1, 10))
    record.write(Position(2, 20))
    newest = (record.seq % 2) * SLOT.size
    _close(record)
    data = bytearray(path.read_bytes())
    data[newest + 9] ^= 0xFF  # inside the segment field
    path.write_bytes(bytes(data))
    assert _record(path).position == Position(1, 10)
