"""The write-ahead spool of one exporter: append-only segment files of CRC-framed records.

``storage.directory/spool/<exporter>/`` holds ``<id>.wal`` segments and ``committed``, the position
up to which the exporter has delivered (or dead-lettered) everything. The receiver's request is
acknowledged once :meth:`Spool.append` returns: the records are written, and fsynced per
``storage.fsync`` (``always`` per append, ``batch`` one fsync shared by the appends that wait for
it — group commit —, ``never`` left to the kernel). The sender reads forward from the delivered
position and commits after each settled batch, so a crash at any moment replays at most the
batches in flight: at-least-once, with duplicates bounded by one batch per exporter.

The frame and ``committed`` formats are in :mod:`.spoolformat`. On open the spool is scanned from
the committed position; a torn or corrupt frame ends its segment there (the file is truncated to the
last good frame). Full policy: the spool counts against a
:class:`~otlp_enricher.exporter.budget.StorageBudget` (its own ``max_bytes`` unless it shares one
with the other exporters); an append that does not fit raises :class:`SpoolFull` and writes nothing,
so the receiver can answer "retry later" instead of anyone dropping data — unless the budget makes
room with :meth:`Spool.drop_oldest` of a spool configured to yield (``drop_oldest``): whole unread
segments, oldest first, never the one being read or written.

Every syscall goes through a :class:`~otlp_enricher.exporter.fileops.FileOps`, and every failure
leaves a state the next call can work from (tested by injecting EBADF/ENOSPC/EIO/EROFS at each):

- a failed write is cut back (``ftruncate``); if even that fails the segment is *tainted* and the
  next append starts a new one, so a torn frame is never followed by good ones in the same file;
- a failed ``fsync`` refuses every append written before it (their durability is unknown: Linux
  may report a lost write-back once and then succeed), taints the segment, and the group-commit
  task is replaced by the next waiter, never awaited again;
- ``committed`` is two fixed 32-byte slots written in place (``pwrite`` + ``fsync``, alternating,
  each with a CRC), so writing it needs no new disk blocks — it works on a full disk — and a torn
  write leaves the other slot good. The durable committed position advances only once its slot
  is on disk; until then the sender goes on from the in-memory *delivered* position and the next
  commit writes the newer position. Segments wholly before the delivered position are deleted
  even if the record is stale: :meth:`open` starts from the oldest segment left when the one the
  record names is gone, so an early delete can cause duplicates, never loss, and frees the disk.

:attr:`Spool.problem` names the storage fault in force (``None`` when healthy); appends refused by
it raise :class:`SpoolUnavailable` (a :class:`SpoolFull`); the first successful append or commit
clears it. ``on_error`` / ``on_change`` callbacks let the owner count errors and log transitions.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

from otlp_enricher.exporter.budget import StorageBudget, StoreFull
from otlp_enricher.exporter.fileops import (
    REAL_FILE_OPS,
    FileOps,
    StorageError,
    fsync_directory,
    read_all,
    write_all,
)
from otlp_enricher.exporter.spoolformat import (
    HEADER,
    HEADER_BYTES,
    MAX_RECORD_BYTES,
    SLOT,
    Position,
    ReadBatch,
    Record,
    Recovery,
    decode_committed,
    encode_frame,
    encode_slot,
    write_all_at,
)

_SUFFIX = ".wal"
_COMMITTED = "committed"

ErrorListener = Callable[[StorageError], None]
"""Called with every storage error (from the loop or a worker thread; must be thread-safe)."""
ChangeListener = Callable[["str | None"], None]
"""Called when :attr:`Spool.problem` changes (``None``: healthy again)."""


class SpoolFull(Exception):
    """The spool has no room for this append (or the disk refused it); nothing was acknowledged."""


class SpoolUnavailable(SpoolFull):
    """The storage refused the append (disk full, read-only, I/O error); ``error`` says which call."""

    def __init__(self, error: StorageError) -> None:
        super().__init__(f"spool storage failed: {error}")
        self.error = error


class Spool:
    """One exporter's spool; appends and the reader both run on the event loop, I/O in threads."""

    def __init__(
        self,
        directory: Path,
        max_bytes: int,
        fsync: str,
        segment_bytes: int = 0,
        ops: FileOps = REAL_FILE_OPS,
        budget: StorageBudget | None = None,
    ) -> None:
        """``budget``: shared with other spools (the caller joins this spool to it); by default
        one of ``max_bytes`` for this spool alone, which refuses when full."""
        self.directory = directory
        self.max_bytes = max_bytes
        if budget is None:
            budget = StorageBudget(max_bytes)
            budget.join(self)
        self.budget = budget
        self._fsync = fsync
        self._segment_bytes = segment_bytes or min(max(max_bytes // 16, 64 << 10), 16 << 20)
        self._ops = ops
        self._sizes: dict[int, int] = {}
        self._segment_items: dict[int, int] = {}  # items written to each segment (unsent ones, after open)
        self._read_lock = threading.Lock()  # read() and drop_oldest() never run at once
        self._fd = -1
        self._commit_fd = -1
        self._segment = 0
        self._tainted = False  # the open segment must take no more writes: the next append rotates
        self._committed = Position(0, 0)  # durable: what ``committed`` on disk says
        self._delivered = Position(0, 0)  # settled by the sender (>= committed)
        self._commit_seq = 0
        self._doomed: set[int] = set()  # delivered segments whose unlink failed, retried per commit
        self._read = Position(0, 0)
        self.items = 0
        self.bytes = 0
        self._write_lock = asyncio.Lock()
        self._written_seq = 0
        self._synced_seq = 0
        self._lost_seq = 0  # appends up to here were written before a failed fsync: never acknowledged
        self._sync_task: asyncio.Future[None] | None = None
        self._data = asyncio.Event()
        self._oldest_ns: int | None = None
        self._closed = False
        self._write_problem: str | None = None
        self._commit_problem: str | None = None
        self.on_error: ErrorListener | None = None
        self.on_change: ChangeListener | None = None

    # -- state ---------------------------------------------------------------------------------

    @property
    def problem(self) -> str | None:
        """The storage fault in force (intake or commit side), or ``None`` when the spool is healthy."""
        return self._write_problem or self._commit_problem

    def _failed(self, op: str, error: OSError, side: str) -> StorageError:
        failure = error if isinstance(error, StorageError) else StorageError(op, error)
        if self.on_error is not None:
            self.on_error(failure)
        before = self.problem
        if side == "write":
            self._write_problem = str(failure)
        else:
            self._commit_problem = str(failure)
        if self.problem != before and before is None and self.on_change is not None:
            self.on_change(self.problem)
        return failure

    def _healed(self, side: str) -> None:
        before = self.problem
        if side == "write":
            self._write_problem = None
        else:
            self._commit_problem = None
        if before is not None and self.problem is None and self.on_change is not None:
            self.on_change(None)

    # -- opening and recovery ------------------------------------------------------------------

    def open(self) -> Recovery:
        """Create or recover the spool; returns what the last run left unsent."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._open_commit_record()
        for path in sorted(self.directory.glob("*" + _SUFFIX)):
            segment = int(path.stem)
            if segment < self._committed.segment:
                self._ops.unlink(str(path))
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
                fd = self._ops.open(str(self._path(segment)), os.O_WRONLY)
                try:
                    self._ops.ftruncate(fd, good_end)
                    self._ops.fsync(fd)
                finally:
                    self._ops.close(fd)
                self._sizes[segment] = good_end
            records += seg_records
            self.items += seg_items
            self._segment_items[segment] = seg_items
            self.bytes += good_end - start
        self._segment = max(self._sizes, default=self._committed.segment)
        self._fd = self._open_segment(self._segment)
        self._sizes.setdefault(self._segment, 0)
        self._read = self._delivered = self._committed
        if self.items:
            self._data.set()
        return Recovery(self.items, records, truncated)

    def _open_commit_record(self) -> None:
        path = str(self.directory / _COMMITTED)
        fd = self._ops.open(path, os.O_RDWR | os.O_CREAT)
        try:
            data = read_all(self._ops, path)
            self._commit_seq, self._committed = decode_committed(data)
            if len(data) != 2 * SLOT.size:  # new, or the legacy text form: write both slots now
                self._commit_seq += 1
                slots = encode_slot(self._commit_seq, self._committed) + bytes(SLOT.size)
                write_all_at(self._ops, fd, slots, 0)
                self._ops.ftruncate(fd, len(slots))
                self._ops.fsync(fd)
        except BaseException:
            self._ops.close(fd)
            raise
        self._commit_fd = fd

    def _scan(self, segment: int, start: int) -> tuple[int, int, int]:
        """(end of the last good frame, records, items) of ``segment`` from ``start``."""
        data = read_all(self._ops, str(self._path(segment)))
        offset, records, items = start, 0, 0
        while offset + HEADER_BYTES <= len(data):
            length, crc, _appended_ns, count = HEADER.unpack_from(data, offset)
            end = offset + HEADER_BYTES + length
            if (
                end > len(data)
                or zlib.crc32(data[offset + HEADER_BYTES : end], zlib.crc32(data[offset + 8 : offset + HEADER_BYTES]))
                != crc
            ):
                break
            offset, records, items = end, records + 1, items + count
        return offset, records, items

    def _path(self, segment: int) -> Path:
        return self.directory / f"{segment:016d}{_SUFFIX}"

    def _open_segment(self, segment: int) -> int:
        """Open (creating) ``segment`` for appending and make its directory entry durable."""
        fd = self._ops.open(str(self._path(segment)), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        if self._fsync != "never":
            try:
                fsync_directory(self._ops, str(self.directory))
            except OSError:
                with contextlib.suppress(OSError):
                    self._ops.close(fd)
                raise
        return fd

    # -- appending (the receiver's path) -------------------------------------------------------

    async def append(self, payloads: Sequence[tuple[bytes, int]]) -> None:
        """Append ``(payload, items)`` records durably per the fsync policy; raise :class:`SpoolFull`
        (:class:`SpoolUnavailable` when the storage failed: nothing is acknowledged then)."""
        now = time.time_ns()
        frames = b"".join(encode_frame(payload, items, now) for payload, items in payloads)
        items = sum(count for _, count in payloads)
        if self._closed:
            raise SpoolFull(f"{self.directory} is closed")
        if any(len(payload) > MAX_RECORD_BYTES for payload, _ in payloads):
            raise ValueError(f"a record is larger than {MAX_RECORD_BYTES} bytes")
        async with self._write_lock:
            if self._closed:
                raise SpoolFull(f"{self.directory} is closed")
            try:
                await self.budget.reserve(len(frames))
            except StoreFull as full:
                raise SpoolFull(f"spool {self.directory.name} cannot take {len(frames)} bytes: {full}") from full
            # The write must finish before the lock is released, even if this request is cancelled
            # (a client deadline): two writer threads on one segment would interleave frames.
            write = asyncio.ensure_future(asyncio.to_thread(self._write, frames, items))
            cancelled = await _uninterrupted(write)
            self.budget.release(len(frames))
            error = write.exception()
            if error is None:
                self.items += items
                self.bytes += len(frames)
                self._written_seq += 1
                seq = self._written_seq
            if cancelled:
                raise asyncio.CancelledError
            if isinstance(error, OSError):
                raise SpoolUnavailable(self._failed("write", error, "write")) from error
            if error is not None:
                raise error
        self._data.set()
        try:
            if self._fsync == "always":
                await self._sync_own(seq)
            elif self._fsync == "batch":
                await self._sync_through(seq)
        except StorageError as failure:
            raise SpoolUnavailable(self._failed("fsync", failure, "write")) from failure
        self._healed("write")

    def _write(self, frames: bytes, items: int) -> None:
        """Write ``frames`` (``items`` items) at the end of the open segment (rotating first when
        due); in a thread."""
        size = self._sizes[self._segment]
        if self._tainted or (size and size + len(frames) > self._segment_bytes):
            self._rotate()
            size = 0
        fd = self._fd
        try:
            write_all(self._ops, fd, frames)
        except OSError as error:
            try:
                self._ops.ftruncate(fd, size)  # never leave a torn frame before later good ones
            except OSError:
                self._tainted = True  # … or never write to this segment again
            raise StorageError("write", error) from error
        self._sizes[self._segment] = size + len(frames)
        self._segment_items[self._segment] = self._segment_items.get(self._segment, 0) + items

    def _rotate(self) -> None:
        """Close the open segment (fsynced, unless tainted) and open the next; on failure nothing
        changes but the error (the open segment stays, tainted if it was)."""
        old = self._fd
        if not self._tainted and self._fsync != "never" and old >= 0:
            try:
                self._ops.fsync(old)
            except OSError as error:
                self._lost_seq = self._written_seq
                self._tainted = True
                raise StorageError("fsync", error) from error
        try:
            fd = self._open_segment(self._segment + 1)
        except OSError as error:
            raise StorageError("open", error) from error
        self._fd, self._segment, self._tainted = fd, self._segment + 1, False
        self._sizes[self._segment] = 0
        if old >= 0:
            with contextlib.suppress(OSError):  # an EBADF here only means the fd was already gone
                self._ops.close(old)

    async def _sync_through(self, seq: int) -> None:
        """Group commit: one fsync covers every append written before it started. A failed sync
        fails its waiters and is replaced by the next waiter's (never awaited again)."""
        while self._synced_seq < seq:
            if seq <= self._lost_seq:
                raise StorageError("fsync", OSError(errno.EIO, "an earlier fsync of this data failed"))
            task = self._sync_task
            if task is None or task.done():
                task = self._sync_task = asyncio.ensure_future(self._sync_once())
            await asyncio.shield(task)

    async def _sync_once(self) -> None:
        try:
            async with self._write_lock:  # no rotation or close while the fd is picked
                target = self._written_seq
                fd = self._dup()
            await asyncio.to_thread(self._fsync_and_close, fd, target)
            self._synced_seq = max(self._synced_seq, target)
        finally:
            self._sync_task = None

    async def _sync_own(self, seq: int) -> None:
        """``fsync: always``: this append's own fsync (concurrent ones overlap, each on its own fd)."""
        async with self._write_lock:
            fd = self._dup()
        await asyncio.to_thread(self._fsync_and_close, fd, seq)
        if seq <= self._lost_seq:
            raise StorageError("fsync", OSError(errno.EIO, "an earlier fsync of this data failed"))

    def _dup(self) -> int:
        try:
            return self._ops.dup(self._fd)
        except OSError as error:
            self._tainted = True
            raise StorageError("dup", error) from error

    def _fsync_and_close(self, fd: int, target: int) -> None:
        try:
            self._ops.fsync(fd)
        except OSError as error:
            self._lost_seq = max(self._lost_seq, target)
            self._tainted = True
            raise StorageError("fsync", error) from error
        finally:
            with contextlib.suppress(OSError):
                self._ops.close(fd)

    # -- reading and committing (the sender's path) --------------------------------------------

    async def wait_for_data(self, timeout_s: float | None = None) -> bool:
        """Return once there is something unread (``True``), or after ``timeout_s`` (``False``)."""
        while not self._has_unread():
            self._data.clear()
            if timeout_s is None:
                await self._data.wait()
            else:
                try:
                    await asyncio.wait_for(self._data.wait(), timeout_s)
                except TimeoutError:
                    return self._has_unread()
        return True

    def heal(self) -> None:
        """While :attr:`problem` is set, try again without new data (in a thread; the sender calls
        it about once a second): write the pending commit record, and probe that the directory
        takes a fsynced write — so recovery does not wait for traffic a not-ready instance never gets."""
        if self._commit_problem is not None:
            self._persist()
        if self._write_problem is None or self._closed:
            return
        probe = str(self.directory / ".probe")
        try:
            fd = self._ops.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                write_all(self._ops, fd, bytes(4096))
                self._ops.fsync(fd)
            finally:
                self._ops.close(fd)
            self._ops.unlink(probe)
        except OSError as error:
            self._failed("probe", error, "write")
            return
        self._healed("write")

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
        """Up to ``max_records`` unread records (at least one when any, even past ``max_bytes``);
        raises :class:`StorageError` when the segment cannot be read (the read position is kept)."""
        with self._read_lock:
            return self._read_locked(max_records, max_bytes)

    def _read_locked(self, max_records: int, max_bytes: int) -> ReadBatch:
        records: list[Record] = []
        position, taken = self._read, 0
        while len(records) < max_records:
            size = self._sizes.get(position.segment, 0)
            if position.offset >= size:
                if position.segment >= self._segment:
                    break
                position = Position(position.segment + 1, 0)
                continue
            try:
                consumed, taken = self._read_segment(position, size, records, max_records, max_bytes, taken)
            except OSError as error:
                raise self._failed("read", error, "commit") from error
            position = Position(position.segment, position.offset + consumed)
            if taken >= max_bytes or consumed == 0:
                break
        self._read = position
        if records and self._oldest_ns is None:
            self._oldest_ns = records[0].appended_ns
        return ReadBatch(records, position, taken)

    def _read_segment(
        self, start: Position, size: int, records: list[Record], max_records: int, max_bytes: int, taken: int
    ) -> tuple[int, int]:
        """Append records of one segment from ``start`` to ``records``; (bytes consumed, taken)."""
        ops = self._ops
        fd = ops.open(str(self._path(start.segment)), os.O_RDONLY)
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

    def commit(self, batch: ReadBatch) -> None:
        """Mark ``batch`` done: it will not be replayed; whole segments before it are deleted.
        Storage errors are not raised: they set :attr:`problem` and the next commit retries."""
        self._settle(batch)
        self._persist()

    async def commit_async(self, batch: ReadBatch) -> None:
        """:meth:`commit` with its I/O in a thread (the counters change on the calling loop)."""
        self._settle(batch)
        if await _uninterrupted(asyncio.ensure_future(asyncio.to_thread(self._persist))):
            raise asyncio.CancelledError  # only after the thread is done with the commit fd

    def _settle(self, batch: ReadBatch) -> None:
        self._delivered = max(self._delivered, batch.end)
        self.items -= batch.items
        self.bytes -= batch.frame_bytes
        self._oldest_ns = None

    def _persist(self) -> None:
        """Write the delivered position to ``committed`` and delete the segments before it."""
        target = self._delivered
        if target != self._committed and self._commit_fd >= 0:
            seq = self._commit_seq + 1
            try:
                write_all_at(self._ops, self._commit_fd, encode_slot(seq, target), (seq % 2) * SLOT.size)
                if self._fsync != "never":
                    self._ops.fsync(self._commit_fd)
            except OSError as error:
                self._failed("commit", error, "commit")
            else:
                self._commit_seq, self._committed = seq, max(self._committed, target)
                self._healed("commit")
        doomed = self._doomed | {seg for seg in list(self._sizes) if seg < target.segment}
        for segment in sorted(doomed):
            self._sizes.pop(segment, None)
            self._segment_items.pop(segment, None)
            try:
                self._ops.unlink(str(self._path(segment)))
            except FileNotFoundError:
                pass
            except OSError as error:
                self._doomed.add(segment)
                if self.on_error is not None:
                    self.on_error(StorageError("unlink", error))
                continue
            self._doomed.discard(segment)

    async def drop_oldest(self) -> tuple[int, int] | None:
        """Give up the oldest whole segment nobody reads or writes (unsent, so its items are lost,
        which the caller counts); (items, bytes) dropped, or ``None`` when no segment qualifies."""
        dropped = await asyncio.to_thread(self._drop_oldest)
        if dropped is not None:
            self.items -= dropped[0]
            self.bytes -= dropped[1]
        return dropped

    def _drop_oldest(self) -> tuple[int, int] | None:
        with self._read_lock:  # no read in progress: every segment after the read one is unread
            if self._closed:  # what a closed spool holds is the next start's to send
                return None
            open_segment = self._segment  # a writer may rotate meanwhile; older ones are closed
            closed = [seg for seg in list(self._sizes) if self._read.segment < seg < open_segment]
            if not closed:
                return None
            segment = min(closed)
            size = self._sizes.pop(segment)
            items = self._segment_items.pop(segment, 0)
        try:
            self._ops.unlink(str(self._path(segment)))
        except FileNotFoundError:
            pass
        except OSError as error:  # retried by the next commit; a restart may then replay it
            self._doomed.add(segment)
            if self.on_error is not None:
                self.on_error(StorageError("unlink", error))
        return items, size

    def rewind(self) -> None:
        """Read again from the delivered position (after a batch was abandoned at shutdown)."""
        self._read = self._delivered
        self._oldest_ns = None

    def oldest_known_ns(self) -> int | None:
        """The last known append time of the oldest unsent record, without I/O (safe from any thread)."""
        return self._oldest_ns if self.items else None

    def load_oldest_unsent(self) -> None:
        """Read the append time of the oldest undelivered record from disk when it is not known
        (after open, after a commit), so :meth:`oldest_known_ns` can report it without I/O."""
        if not self.items:
            return
        if self._oldest_ns is None:
            position = self._delivered
            if position.offset >= self._sizes.get(position.segment, 0):  # the next segment left
                later = [seg for seg in list(self._sizes) if seg > position.segment]
                position = Position(min(later, default=position.segment + 1), 0)
            try:
                fd = self._ops.open(str(self._path(position.segment)), os.O_RDONLY)
                try:
                    header = self._ops.pread(fd, HEADER_BYTES, position.offset)
                finally:
                    self._ops.close(fd)
            except OSError:
                return
            if len(header) == HEADER_BYTES:
                self._oldest_ns = HEADER.unpack(header)[2]

    async def close(self) -> None:
        """Stop appends, fsync (unless ``never``) and close; reading stops too. Never raises a
        storage error (a disk gone read-only must not stop the shutdown)."""
        async with self._write_lock:
            if self._closed:
                return
            self._closed = True
            segment_fd, fds = self._fd, [fd for fd in (self._fd, self._commit_fd) if fd >= 0]
            self._fd = self._commit_fd = -1
        if self._fsync != "never" and segment_fd >= 0:
            with contextlib.suppress(OSError):
                await asyncio.to_thread(self._ops.fsync, segment_fd)
        for fd in fds:
            with contextlib.suppress(OSError):
                self._ops.close(fd)


async def _uninterrupted(future: asyncio.Future[None]) -> bool:
    """Wait until ``future`` is done even if the caller is cancelled meanwhile; whether it was."""
    cancelled = False
    while not future.done():
        try:
            await asyncio.wait([future])
        except asyncio.CancelledError:
            cancelled = True
    return cancelled
