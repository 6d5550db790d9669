"""The append side of a spool: the open segment, its rotation, and the fsync policy.

``fsync: always`` gives each append its own fsync (concurrent ones overlap, each on its own fd);
``batch`` shares one fsync among the appends waiting for it (group commit); ``never`` leaves it to the
kernel. Every failure leaves a state the next call can work from:

- a failed write is cut back (``ftruncate``); if even that fails the segment is *tainted* and the
  next append starts a new one, so a torn frame is never followed by good ones in the same file;
- a failed ``fsync`` refuses every append written before it (their durability is unknown: Linux may
  report a lost write-back once and then succeed), taints the segment, and the group-commit task is
  replaced by the next waiter, never awaited again.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno

from otlp_enricher.exporter.fileops import StorageError, write_all
from otlp_enricher.exporter.spoolsegments import SegmentFiles


class SegmentWriter:
    """Writes frames at the end of the open segment; ``lock`` is the spool's write lock (held by the
    caller around :meth:`write`), taken here whenever the open file descriptor is picked."""

    def __init__(self, files: SegmentFiles, fsync: str, segment_bytes: int, lock: asyncio.Lock) -> None:
        self.files = files
        self.fsync = fsync
        self.segment_bytes = segment_bytes
        self._lock = lock
        self.fd = -1
        self.segment = 0
        self.tainted = False  # the open segment must take no more writes: the next write rotates
        self.written_seq = 0  # appends written so far
        self._synced_seq = 0
        self._lost_seq = 0  # appends up to here were written before a failed fsync: never acknowledged
        self._sync_task: asyncio.Future[None] | None = None

    def open(self, segment: int) -> None:
        """Start appending to ``segment`` (the newest one after recovery)."""
        self.fd, self.segment = self.files.open_for_append(segment), segment

    def write(self, frames: bytes, items: int) -> None:
        """Write ``frames`` (``items`` items) at the end of the open segment, rotating first when
        due; in a thread. Raises :class:`StorageError`."""
        files = self.files
        size = files.sizes[self.segment]
        if self.tainted or (size and size + len(frames) > self.segment_bytes):
            self._rotate()
            size = 0
        fd = self.fd
        try:
            write_all(files.ops, fd, frames)
        except OSError as error:
            try:
                files.ops.ftruncate(fd, size)  # never leave a torn frame before later good ones
            except OSError:
                self.tainted = True  # … or never write to this segment again
            raise StorageError("write", error) from error
        files.sizes[self.segment] = size + len(frames)
        files.items[self.segment] = files.items.get(self.segment, 0) + items

    def _rotate(self) -> None:
        """Close the open segment (fsynced, unless tainted) and open the next; on failure nothing
        changes but the error (the open segment stays, tainted if it was)."""
        old = self.fd
        if not self.tainted and self.fsync != "never" and old >= 0:
            try:
                self.files.ops.fsync(old)
            except OSError as error:
                self._lost_seq = self.written_seq
                self.tainted = True
                raise StorageError("fsync", error) from error
        try:
            fd = self.files.open_for_append(self.segment + 1)
        except OSError as error:
            raise StorageError("open", error) from error
        self.fd, self.segment, self.tainted = fd, self.segment + 1, False
        if old >= 0:
            with contextlib.suppress(OSError):  # an EBADF here only means the fd was already gone
                self.files.ops.close(old)

    def written(self) -> int:
        """Count one more append as written; its sequence number, for :meth:`sync`."""
        self.written_seq += 1
        return self.written_seq

    async def sync(self, seq: int) -> None:
        """Return once append ``seq`` is durable per the policy; raises :class:`StorageError`."""
        if self.fsync == "always":
            await self._sync_own(seq)
        elif self.fsync == "batch":
            await self._sync_through(seq)

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
            async with self._lock:  # no rotation or close while the fd is picked
                target = self.written_seq
                fd = self._dup()
            await asyncio.to_thread(self._fsync_and_close, fd, target)
            self._synced_seq = max(self._synced_seq, target)
        finally:
            self._sync_task = None

    async def _sync_own(self, seq: int) -> None:
        async with self._lock:
            fd = self._dup()
        await asyncio.to_thread(self._fsync_and_close, fd, seq)
        if seq <= self._lost_seq:
            raise StorageError("fsync", OSError(errno.EIO, "an earlier fsync of this data failed"))

    def _dup(self) -> int:
        try:
            return self.files.ops.dup(self.fd)
        except OSError as error:
            self.tainted = True
            raise StorageError("dup", error) from error

    def _fsync_and_close(self, fd: int, target: int) -> None:
        try:
            self.files.ops.fsync(fd)
        except OSError as error:
            self._lost_seq = max(self._lost_seq, target)
            self.tainted = True
            raise StorageError("fsync", error) from error
        finally:
            with contextlib.suppress(OSError):
                self.files.ops.close(fd)

    def detach(self) -> int:
        """Stop writing (the caller holds the lock); the file descriptor for the caller to close."""
        fd, self.fd = self.fd, -1
        return fd
