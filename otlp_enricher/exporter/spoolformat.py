"""The spool's on-disk format: CRC-framed records in segment files, and the ``committed`` slots.

Frame: ``u32 length | u32 crc32(ts, items, payload) | u64 append time ns | u32 items | payload``
(little-endian). ``committed``: two fixed 32-byte slots, ``u64 seq | u64 segment | u64 offset |
u32 crc32(first 24 bytes) | 4 zero bytes``, written alternately in place; the newer valid one wins.
:mod:`.spoolsegments` and :mod:`.spoolcommit` own the files; this module only encodes and decodes.
"""

from __future__ import annotations

import contextlib
import struct
import zlib
from dataclasses import dataclass

from otlp_enricher.exporter.fileops import FileOps

HEADER = struct.Struct("<IIQI")
HEADER_BYTES = HEADER.size
SLOT = struct.Struct("<QQQI4x")  # seq, segment, offset, crc32 of the first 24 bytes
MAX_RECORD_BYTES = 256 << 20


@dataclass(frozen=True, slots=True, order=True)
class Position:
    """A place in the spool: segment id and byte offset in it."""

    segment: int
    offset: int


@dataclass(frozen=True, slots=True)
class Record:
    """One spooled record: its payload, how many items (spans, lines) it holds, when it was appended."""

    payload: bytes
    items: int
    appended_ns: int


@dataclass(frozen=True, slots=True)
class ReadBatch:
    """Records read from the spool, and the position just after the last one (what to commit)."""

    records: list[Record]
    end: Position
    frame_bytes: int

    @property
    def items(self) -> int:
        """Items over all records."""
        return sum(record.items for record in self.records)


@dataclass(frozen=True, slots=True)
class Recovery:
    """What :meth:`Spool.open` found: records left unsent by the last run, bytes cut as torn."""

    items: int
    records: int
    truncated_bytes: int


def encode_frame(payload: bytes, items: int, appended_ns: int) -> bytes:
    """One frame, header and payload."""
    tail = struct.pack("<QI", appended_ns, items)
    crc = zlib.crc32(payload, zlib.crc32(tail))
    return HEADER.pack(len(payload), crc, appended_ns, items) + payload


def scan_frames(data: bytes, start: int) -> tuple[int, int, int]:
    """(end of the last good frame, records, items) of segment bytes ``data`` from ``start``: a torn
    or corrupt frame (short, or failing its CRC) ends the segment there."""
    offset, records, items = start, 0, 0
    while offset + HEADER_BYTES <= len(data):
        length, crc, _appended_ns, count = HEADER.unpack_from(data, offset)
        end = offset + HEADER_BYTES + length
        checked = zlib.crc32(data[offset + HEADER_BYTES : end], zlib.crc32(data[offset + 8 : offset + HEADER_BYTES]))
        if end > len(data) or checked != crc:
            break
        offset, records, items = end, records + 1, items + count
    return offset, records, items


def encode_slot(seq: int, position: Position) -> bytes:
    """One 32-byte slot of the ``committed`` file."""
    head = struct.pack("<QQQ", seq, position.segment, position.offset)
    return SLOT.pack(seq, position.segment, position.offset, zlib.crc32(head))


def decode_committed(data: bytes) -> tuple[int, Position]:
    """(sequence, position) of the newest valid slot; the legacy text form ``"<segment> <offset>"``
    is read as sequence 0; nothing valid (no file, torn by a power loss) → replay all that is kept."""
    best = (0, Position(0, 0))
    if len(data) != 2 * SLOT.size:
        with contextlib.suppress(ValueError):
            segment, offset = data.decode("ascii").split()
            return 0, Position(int(segment), int(offset))
    for start in range(0, len(data) - SLOT.size + 1, SLOT.size):
        seq, segment, offset, crc = SLOT.unpack_from(data, start)
        if seq and crc == zlib.crc32(data[start : start + 24]) and seq > best[0]:
            best = (seq, Position(segment, offset))
    return best


def write_all_at(ops: FileOps, fd: int, data: bytes, offset: int) -> None:
    """``pwrite`` every byte of ``data`` at ``offset``."""
    view = memoryview(data)
    while view:
        written = ops.pwrite(fd, bytes(view), offset)
        view, offset = view[written:], offset + written
