"""The write-ahead spool of one exporter: append-only segment files of CRC-framed records.

``storage.directory/spool/<exporter>/`` holds ``<id>.wal`` segments (:mod:`.spoolsegments`) and
``committed`` (:mod:`.spoolcommit`), the position up to which the exporter has delivered (or
dead-lettered) everything. The receiver's request is acknowledged once :meth:`Spool.append` returns:
the records are written, and fsynced per ``storage.fsync`` (:mod:`.spoolwriter`). The sender reads
forward from the delivered position and commits after each settled batch, so a crash at any moment
replays at most the batches in flight: at-least-once, with duplicates bounded by one batch per exporter.

On open the spool is scanned from the committed position; a torn or corrupt frame ends its segment
there (the file is truncated to the last good frame). Full policy: the spool counts against a
:class:`~otlp_enricher.exporter.budget.StorageBudget` (its own ``max_bytes`` unless it shares one
with the other exporters); an append that does not fit raises :class:`SpoolFull` and writes nothing,
so the receiver can answer "retry later" instead of anyone dropping data — unless the budget makes
room with :meth:`Spool.drop_oldest` of a spool configured to yield (``drop_oldest``): whole unread
segments, oldest first, never the one being read or written.

Every syscall goes through a :class:`~otlp_enricher.exporter.fileops.FileOps`, and every failure
leaves a state the next call can work from (tested by injecting EBADF/ENOSPC/EIO/EROFS at each).
The durable committed position advances only once its slot is on disk; until then the sender goes on
from the in-memory *delivered* position and the next commit writes the newer position. Segments
wholly before the delivered position are deleted even if the record is stale: :meth:`Spool.open`
starts from the oldest segment left when the one the record names is gone, so an early delete can
cause duplicates, never loss, and frees the disk.

:attr:`Spool.problem` names the storage fault in force (``None`` when healthy); appends refused by
it raise :class:`SpoolUnavailable` (a :class:`SpoolFull`); the first successful append or commit
clears it. ``on_error`` / ``on_change`` callbacks let the owner count errors and log transitions.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from otlp_enricher.exporter.budget import StorageBudget, StoreFull
from otlp_enricher.exporter.fileops import REAL_FILE_OPS, FileOps, StorageError, write_all
from otlp_enricher.exporter.spoolcommit import CommitRecord
from otlp_enricher.exporter.spoolformat import MAX_RECORD_BYTES, Position, ReadBatch, Record, Recovery, encode_frame
from otlp_enricher.exporter.spoolsegments import ErrorListener, SegmentFiles
from otlp_enricher.exporter.spoolwriter import SegmentWriter

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
        self._files = SegmentFiles(directory, ops, sync_directory=fsync != "never")
        self._commit = CommitRecord(str(directory / "committed"), ops, fsync=fsync != "never")
        self._write_lock = asyncio.Lock()
        segment_bytes = segment_bytes or min(max(max_bytes // 16, 64 << 10), 16 << 20)
        self._writer = SegmentWriter(self._files, fsync, segment_bytes, self._write_lock)
        self._read_lock = threading.Lock()  # read() and drop_oldest() never run at once
        self._delivered = Position(0, 0)  # settled by the sender (>= the committed position)
        self._read = Position(0, 0)
        self.items = 0
        self.bytes = 0
        self._data = asyncio.Event()
        self._oldest_ns: int | None = None
        self._closed = False
        self._write_problem: str | None = None
        self._write_failures = 0  # how many intake-side failures so far: a stale success must not heal a newer one
        self._commit_problem: str | None = None
        self.on_error: ErrorListener | None = None
        self.on_change: ChangeListener | None = None

    def use_file_ops(self, ops: FileOps) -> None:
        """Route every syscall through ``ops`` (before :meth:`open`; the fault tests inject failures)."""
        self._files.ops = self._commit.ops = ops

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
            self._write_failures += 1
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

    def open(self) -> Recovery:
        """Create or recover the spool; returns what the last run left unsent."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        start, recovery, self.bytes = self._files.recover(self._commit.open())
        self.items = recovery.items
        self._writer.open(max(self._files.sizes, default=start.segment))
        self._read = self._delivered = start
        if self.items:
            self._data.set()
        return recovery

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
            write = asyncio.ensure_future(asyncio.to_thread(self._writer.write, frames, items))
            cancelled = await _uninterrupted(write)
            self.budget.release(len(frames))
            error = write.exception()
            if error is None:
                self.items += items
                self.bytes += len(frames)
                seq = self._writer.written()
                failures = self._write_failures
            if cancelled:
                raise asyncio.CancelledError
            if isinstance(error, OSError):
                raise SpoolUnavailable(self._failed("write", error, "write")) from error
            if error is not None:
                raise error
        self._data.set()
        try:
            await self._writer.sync(seq)
        except StorageError as failure:
            raise SpoolUnavailable(self._failed("fsync", failure, "write")) from failure
        if self._write_failures == failures:  # no append failed since this one's write
            self._healed("write")

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
        failures = self._write_failures
        try:
            ops = self._files.ops
            fd = ops.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                write_all(ops, fd, bytes(4096))
                ops.fsync(fd)
            finally:
                ops.close(fd)
            ops.unlink(probe)
        except OSError as error:
            self._failed("probe", error, "write")
            return
        if self._write_failures == failures:  # no append failed while the probe ran
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
        return read.offset < self._files.sizes.get(read.segment, 0) or read.segment < self._writer.segment

    def unread_bytes(self) -> int:
        """Bytes written but not yet read (an estimate for batching decisions)."""
        sizes = list(self._files.sizes.items())  # one atomic copy: a writer thread may add a segment
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
            if position.offset >= self._files.sizes.get(position.segment, 0):
                if position.segment >= self._writer.segment:
                    break
                position = Position(position.segment + 1, 0)
                continue
            try:
                consumed, taken = self._files.read_frames(position, records, max_records, max_bytes, taken)
            except OSError as error:
                raise self._failed("read", error, "commit") from error
            position = Position(position.segment, position.offset + consumed)
            if taken >= max_bytes or consumed == 0:
                break
        self._read = position
        if records and self._oldest_ns is None:
            self._oldest_ns = records[0].appended_ns
        return ReadBatch(records, position, taken)

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
        if target != self._commit.position and self._commit.fd >= 0:
            try:
                self._commit.write(target)
            except OSError as error:
                self._failed("commit", error, "commit")
            else:
                self._healed("commit")
        self._files.delete([seg for seg in list(self._files.sizes) if seg < target.segment], self.on_error)

    async def drop_oldest(self) -> tuple[int, int] | None:
        """Give up the oldest whole segment nobody reads or writes (unsent, so its items are lost,
        which the caller counts); (items, bytes) dropped, or ``None`` when no segment qualifies."""
        dropped = await asyncio.to_thread(self._drop_oldest)
        if dropped is not None:
            self.items -= dropped[0]
            self.bytes -= dropped[1]
        return dropped

    def _drop_oldest(self) -> tuple[int, int] | None:
        files = self._files
        with self._read_lock:  # no read in progress: every segment after the read one is unread
            if self._closed:  # what a closed spool holds is the next start's to send
                return None
            open_segment = self._writer.segment  # a writer may rotate meanwhile; older ones are closed
            closed = [seg for seg in list(files.sizes) if self._read.segment < seg < open_segment]
            if not closed:
                return None
            segment = min(closed)
            size, items = files.sizes.pop(segment), files.items.pop(segment, 0)
        files.delete([segment], self.on_error)
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
            self._oldest_ns = self._files.appended_ns_at(self._delivered)

    async def close(self) -> None:
        """Stop appends, fsync (unless ``never``) and close; reading stops too. Never raises a
        storage error (a disk gone read-only must not stop the shutdown)."""
        async with self._write_lock:
            if self._closed:
                return
            self._closed = True
            segment_fd, commit_fd = self._writer.detach(), self._commit.detach()
        ops = self._files.ops
        if self._writer.fsync != "never" and segment_fd >= 0:
            with contextlib.suppress(OSError):
                await asyncio.to_thread(ops.fsync, segment_fd)
        for fd in (segment_fd, commit_fd):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    ops.close(fd)


async def _uninterrupted(future: asyncio.Future[None]) -> bool:
    """Wait until ``future`` is done even if the caller is cancelled meanwhile; whether it was."""
    cancelled = False
    while not future.done():
        try:
            await asyncio.wait([future])
        except asyncio.CancelledError:
            cancelled = True
    return cancelled
