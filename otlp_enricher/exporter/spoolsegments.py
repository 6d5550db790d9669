"""The segment files of one spool directory: which exist, their sizes, and what each holds.

Segments are ``<id>.wal`` files of frames (:mod:`.spoolformat`), ids rising. :class:`SegmentFiles`
finds and repairs them on open, opens the next one for appending, reads frames from them and
deletes them; which position is read, written or committed is the :class:`~.spool.Spool`'s.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from otlp_enricher.exporter.fileops import FileOps, StorageError, fsync_directory, read_all
from otlp_enricher.exporter.spoolformat import HEADER, HEADER_BYTES, Position, Record, Recovery, scan_frames

SUFFIX = ".wal"

ErrorListener = Callable[[StorageError], None]
"""Called with every storage error (from the loop or a worker thread; must be thread-safe)."""


class SegmentFiles:
    """The segments of ``directory``: ``sizes`` (bytes written) and ``items`` (items written, unsent
    ones after :meth:`recover`) per segment id; ``sync_directory`` makes each new file's entry durable."""

    def __init__(self, directory: Path, ops: FileOps, sync_directory: bool) -> None:
        self.directory = directory
        self.ops = ops
        self.sync_directory = sync_directory
        self.sizes: dict[int, int] = {}
        self.items: dict[int, int] = {}
        self._doomed: set[int] = set()  # deleted segments whose unlink failed, retried by the next delete

    def path(self, segment: int) -> Path:
        """The file of ``segment``."""
        return self.directory / f"{segment:016d}{SUFFIX}"

    def recover(self, committed: Position) -> tuple[Position, Recovery, int]:
        """Delete the segments before ``committed`` and cut every later one at its last good frame;
        (where reading starts, what is left unsent, its frame bytes). Reading starts at the oldest
        segment left when the one ``committed`` names is gone (duplicates, never loss)."""
        for path in sorted(self.directory.glob("*" + SUFFIX)):
            segment = int(path.stem)
            if segment < committed.segment:
                self.ops.unlink(str(path))
            else:
                self.sizes[segment] = path.stat().st_size
        if committed.segment not in self.sizes:
            committed = Position(min(self.sizes, default=committed.segment), 0)
        items = records = truncated = unsent_bytes = 0
        for segment in sorted(self.sizes):
            start = committed.offset if segment == committed.segment else 0
            good_end, seg_records, seg_items = scan_frames(read_all(self.ops, str(self.path(segment))), start)
            if good_end < self.sizes[segment]:
                truncated += self.sizes[segment] - good_end
                self._truncate(segment, good_end)
            records += seg_records
            items += seg_items
            self.items[segment] = seg_items
            unsent_bytes += good_end - start
        return committed, Recovery(items, records, truncated), unsent_bytes

    def _truncate(self, segment: int, size: int) -> None:
        fd = self.ops.open(str(self.path(segment)), os.O_WRONLY)
        try:
            self.ops.ftruncate(fd, size)
            self.ops.fsync(fd)
        finally:
            self.ops.close(fd)
        self.sizes[segment] = size

    def open_for_append(self, segment: int) -> int:
        """Open (creating) ``segment`` for appending and make its directory entry durable."""
        fd = self.ops.open(str(self.path(segment)), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        if self.sync_directory:
            try:
                fsync_directory(self.ops, str(self.directory))
            except OSError:
                with contextlib.suppress(OSError):
                    self.ops.close(fd)
                raise
        self.sizes.setdefault(segment, 0)
        return fd

    def read_frames(
        self, start: Position, records: list[Record], max_records: int, max_bytes: int, taken: int
    ) -> tuple[int, int]:
        """Append the records of one segment from ``start`` to ``records``, until ``max_records`` or
        ``max_bytes`` (counting ``taken`` already; at least one record when ``records`` is empty);
        (bytes consumed, taken)."""
        ops = self.ops
        size = self.sizes.get(start.segment, 0)
        fd = ops.open(str(self.path(start.segment)), os.O_RDONLY)
        try:
            data = ops.pread(fd, min(size - start.offset, max(max_bytes - taken, 0) + HEADER_BYTES), start.offset)
            offset = 0
            while len(records) < max_records and offset + HEADER_BYTES <= len(data):
                length, _crc, appended_ns, items = HEADER.unpack_from(data, offset)
                if records and taken + HEADER_BYTES + length > max_bytes:
                    break
                end = offset + HEADER_BYTES + length
                while end > len(data):
                    more = ops.pread(fd, end - len(data), start.offset + len(data))
                    if not more:
                        raise OSError(errno.EIO, "segment shorter than its frames")
                    data += more
                records.append(Record(data[offset + HEADER_BYTES : end], items, appended_ns))
                offset, taken = end, taken + HEADER_BYTES + length
            return offset, taken
        finally:
            with contextlib.suppress(OSError):
                ops.close(fd)

    def appended_ns_at(self, position: Position) -> int | None:
        """The append time of the frame at ``position`` (or at the start of the next segment when
        ``position`` is at the end of its own); ``None`` when it cannot be read."""
        if position.offset >= self.sizes.get(position.segment, 0):
            later = [seg for seg in list(self.sizes) if seg > position.segment]
            position = Position(min(later, default=position.segment + 1), 0)
        try:
            fd = self.ops.open(str(self.path(position.segment)), os.O_RDONLY)
            try:
                header = self.ops.pread(fd, HEADER_BYTES, position.offset)
            finally:
                self.ops.close(fd)
        except OSError:
            return None
        return HEADER.unpack(header)[2] if len(header) == HEADER_BYTES else None

    def delete(self, segments: Iterable[int], on_error: ErrorListener | None) -> None:
        """Forget ``segments`` and unlink their files; a failed unlink is reported and retried by the
        next call (a restart may then replay the segment: duplicates, never loss)."""
        for segment in sorted(set(segments) | self._doomed):
            self.sizes.pop(segment, None)
            self.items.pop(segment, None)
            try:
                self.ops.unlink(str(self.path(segment)))
            except FileNotFoundError:
                pass
            except OSError as error:
                self._doomed.add(segment)
                if on_error is not None:
                    on_error(StorageError("unlink", error))
                continue
            self._doomed.discard(segment)
