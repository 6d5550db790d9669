"""The write-ahead spool of one exporter: append-only segment files of CRC-framed records.

``storage.directory/spool/<exporter>/`` holds ``<id>.wal`` segments and ``committed``, the position
up to which the exporter has delivered (or dead-lettered) everything. The receiver's request is
acknowledged once :meth:`Spool.append` returns: the records are written, and fsynced per
``storage.fsync`` (``always`` per append, ``batch`` one fsync shared by the appends that wait for
it — group commit —, ``never`` left to the kernel). The sender reads forward from the committed
position and commits after each delivered batch, so a crash at any moment replays at most the
batches in flight: at-least-once, with duplicates bounded by one batch per exporter.

Frame: ``u32 length | u32 crc32(ts, items, payload) | u64 append time ns | u32 items | payload``
(little-endian). On open the spool is scanned from the committed position; a torn or corrupt
frame ends its segment there (the file is truncated to the last good frame). Full policy: an
append that would take the unsent bytes past ``max_bytes`` raises :class:`SpoolFull` and writes
nothing, so the receiver can answer "retry later" instead of anyone dropping data.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from otlp_enricher.storage_files import make_private_dir, open_private, open_private_fd

_HEADER = struct.Struct("<IIQI")
HEADER_BYTES = _HEADER.size
_SUFFIX = ".wal"
_COMMITTED = "committed"
_MAX_RECORD_BYTES = 256 << 20


class SpoolFull(Exception):
    """The spool has no room for this append (or the disk refused it); nothing was written."""


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
    return _HEADER.pack(len(payload), crc, appended_ns, items) + payload


class Spool:
    """One exporter's spool; appends and the reader both run on the event loop, I/O in threads."""

    def __init__(self, directory: Path, max_bytes: int, fsync: str, segment_bytes: int = 0) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._fsync = fsync
        self._segment_bytes = segment_bytes or min(max(max_bytes // 16, 64 << 10), 16 << 20)
        self._sizes: dict[int, int] = {}
        self._fd = -1
        self._segment = 0
        self._committed = Position(0, 0)
        self._read = Position(0, 0)
        self.items = 0
        self.bytes = 0
        self._write_lock = asyncio.Lock()
        self._written_seq = 0
        self._synced_seq = 0
        self._sync_task: asyncio.Future[None] | None = None
        self._data = asyncio.Event()
        self._oldest_ns: int | None = None
        self._closed = False

    # -- opening and recovery ------------------------------------------------------------------

    def open(self) -> Recovery:
        """Create or recover the spool; returns what the last run left unsent."""
        make_private_dir(self.directory)
        self._committed = self._load_committed()
        for path in sorted(self.directory.glob("*" + _SUFFIX)):
            segment = int(path.stem)
            if segment < self._committed.segment:
                path.unlink()
            else:
                self._sizes[segment] = path.stat().st_size
        if self._committed.segment not in self._sizes:
            self._committed = Position(min(self._sizes, default=self._committed.segment), 0)
        records = truncated = 0
        for segment in sorted(self._sizes):
            start = self._committed.offset if segment == self._committed.segment else 0
            good_end, seg_records, seg_items = self._scan(segment, start)
            if good_end < self._sizes[segment]:
                truncated += self._sizes[segment] - good_end
                with open(self._path(segment), "r+b") as stream:
                    stream.truncate(good_end)
                    os.fsync(stream.fileno())
                self._sizes[segment] = good_end
            records += seg_records
            self.items += seg_items
            self.bytes += good_end - start
        self._segment = max(self._sizes, default=self._committed.segment)
        self._open_segment(self._segment)
        self._read = self._committed
        if self.items:
            self._data.set()
        return Recovery(self.items, records, truncated)

    def _scan(self, segment: int, start: int) -> tuple[int, int, int]:
        """(end of the last good frame, records, items) of ``segment`` from ``start``."""
        with open(self._path(segment), "rb") as stream:
            data = stream.read()
        offset, records, items = start, 0, 0
        while offset + HEADER_BYTES <= len(data):
            length, crc, _appended_ns, count = _HEADER.unpack_from(data, offset)
            end = offset + HEADER_BYTES + length
            if (
                end > len(data)
                or zlib.crc32(data[offset + HEADER_BYTES : end], zlib.crc32(data[offset + 8 : offset + HEADER_BYTES]))
                != crc
            ):
                break
            offset, records, items = end, records + 1, items + count
        return offset, records, items

    def _load_committed(self) -> Position:
        try:
            segment, offset = (self.directory / _COMMITTED).read_text("ascii").split()
            return Position(int(segment), int(offset))
        except (OSError, ValueError):
            return Position(0, 0)  # no file, or torn by a power loss: replay all that is kept

    def _path(self, segment: int) -> Path:
        return self.directory / f"{segment:016d}{_SUFFIX}"

    def _open_segment(self, segment: int) -> None:
        self._fd = open_private_fd(self._path(segment), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        self._segment = segment
        self._sizes.setdefault(segment, 0)
        if self._fsync != "never":
            _fsync_directory(self.directory)

    # -- appending (the receiver's path) -------------------------------------------------------

    async def append(self, payloads: Sequence[tuple[bytes, int]]) -> None:
        """Append ``(payload, items)`` records durably per the fsync policy; raise :class:`SpoolFull`."""
        now = time.time_ns()
        frames = b"".join(encode_frame(payload, items, now) for payload, items in payloads)
        items = sum(count for _, count in payloads)
        if self._closed:
            raise SpoolFull(f"{self.directory} is closed")
        if any(len(payload) > _MAX_RECORD_BYTES for payload, _ in payloads):
            raise ValueError(f"a record is larger than {_MAX_RECORD_BYTES} bytes")
        async with self._write_lock:
            if self.bytes + len(frames) > self.max_bytes:
                raise SpoolFull(f"spool {self.directory.name} is full ({self.bytes} of {self.max_bytes} bytes)")
            await asyncio.to_thread(self._write, frames)
            self.items += items
            self.bytes += len(frames)
            self._written_seq += 1
            seq = self._written_seq
            own_fd = os.dup(self._fd) if self._fsync == "always" else -1
        self._data.set()
        if own_fd >= 0:
            await asyncio.to_thread(_fsync_and_close, own_fd)
        elif self._fsync == "batch":
            await self._sync_through(seq)

    def _write(self, frames: bytes) -> None:
        if self._sizes[self._segment] and self._sizes[self._segment] + len(frames) > self._segment_bytes:
            old = self._fd
            if self._fsync != "never":
                os.fsync(old)
            self._open_segment(self._segment + 1)
            os.close(old)
        size = self._sizes[self._segment]
        try:
            view = memoryview(frames)
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as error:
            os.ftruncate(self._fd, size)  # never leave a torn frame before later good ones
            raise SpoolFull(f"cannot write the spool: {error.strerror}") from error
        self._sizes[self._segment] = size + len(frames)

    async def _sync_through(self, seq: int) -> None:
        """Group commit: one fsync covers every append written before it started."""
        while self._synced_seq < seq:
            if self._sync_task is None:
                self._sync_task = asyncio.ensure_future(self._sync_once())
            await asyncio.shield(self._sync_task)

    async def _sync_once(self) -> None:
        target, fd = self._written_seq, os.dup(self._fd)
        try:
            await asyncio.to_thread(_fsync_and_close, fd)
            self._synced_seq = max(self._synced_seq, target)
        finally:
            self._sync_task = None

    # -- reading and committing (the sender's path) --------------------------------------------

    async def wait_for_data(self) -> None:
        """Return once there is something unread."""
        while not self._has_unread():
            self._data.clear()
            await self._data.wait()

    async def wait_for_more(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for another append; whether one came."""
        self._data.clear()
        try:
            await asyncio.wait_for(self._data.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    def _has_unread(self) -> bool:
        read = self._read
        return read.offset < self._sizes.get(read.segment, 0) or read.segment < self._segment

    def unread_bytes(self) -> int:
        """Bytes written but not yet read (an estimate for batching decisions)."""
        sizes = list(self._sizes.items())  # one atomic copy: a writer thread may add a segment
        return sum(size for seg, size in sizes if seg >= self._read.segment) - self._read.offset

    def read(self, max_records: int, max_bytes: int) -> ReadBatch:
        """Up to ``max_records`` unread records (at least one when any, even past ``max_bytes``)."""
        records: list[Record] = []
        position, taken = self._read, 0
        while len(records) < max_records:
            size = self._sizes.get(position.segment, 0)
            if position.offset >= size:
                if position.segment >= self._segment:
                    break
                position = Position(position.segment + 1, 0)
                continue
            with open(self._path(position.segment), "rb") as stream:
                stream.seek(position.offset)
                data = stream.read(min(size - position.offset, max(max_bytes - taken, 0) + HEADER_BYTES))
                offset = 0
                while len(records) < max_records and offset + HEADER_BYTES <= len(data):
                    length, _crc, appended_ns, items = _HEADER.unpack_from(data, offset)
                    if records and taken + HEADER_BYTES + length > max_bytes:
                        break
                    end = offset + HEADER_BYTES + length
                    if end > len(data):
                        data += stream.read(end - len(data))
                    payload = data[offset + HEADER_BYTES : end]
                    records.append(Record(payload, items, appended_ns))
                    offset, taken = end, taken + HEADER_BYTES + length
                position = Position(position.segment, position.offset + offset)
            if taken >= max_bytes or offset == 0:
                break
        self._read = position
        if records and self._oldest_ns is None:
            self._oldest_ns = records[0].appended_ns
        return ReadBatch(records, position, taken)

    def commit(self, batch: ReadBatch) -> None:
        """Mark ``batch`` done: it will not be replayed; whole segments before it are deleted."""
        self._committed = batch.end
        self.items -= batch.items
        self.bytes -= batch.frame_bytes
        self._oldest_ns = None
        tmp = self.directory / (_COMMITTED + ".tmp")
        with open_private(tmp, "wb") as stream:
            stream.write(f"{batch.end.segment} {batch.end.offset}\n".encode("ascii"))
        os.replace(tmp, self.directory / _COMMITTED)
        for segment in [seg for seg in list(self._sizes) if seg < batch.end.segment]:
            del self._sizes[segment]
            with contextlib.suppress(FileNotFoundError):
                self._path(segment).unlink()

    def rewind(self) -> None:
        """Read again from the committed position (after a batch was abandoned at shutdown)."""
        self._read = self._committed
        self._oldest_ns = None

    def oldest_known_ns(self) -> int | None:
        """The last known append time of the oldest unsent record, without I/O (safe from any thread)."""
        return self._oldest_ns if self.items else None

    def oldest_unsent_ns(self) -> int | None:
        """Append time of the oldest record not yet committed (read from disk if not known)."""
        if not self.items:
            return None
        if self._oldest_ns is None:
            position = self._committed
            if position.offset >= self._sizes.get(position.segment, 0):
                position = Position(position.segment + 1, 0)
            try:
                with open(self._path(position.segment), "rb") as stream:
                    stream.seek(position.offset)
                    header = stream.read(HEADER_BYTES)
            except OSError:
                return None
            if len(header) == HEADER_BYTES:
                self._oldest_ns = _HEADER.unpack(header)[2]
        return self._oldest_ns

    async def close(self) -> None:
        """Stop appends, fsync (unless ``never``) and close; reading stops too."""
        async with self._write_lock:
            if self._closed:
                return
            self._closed = True
            if self._fsync != "never":
                await asyncio.to_thread(os.fsync, self._fd)
            os.close(self._fd)


def _fsync_and_close(fd: int) -> None:
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
