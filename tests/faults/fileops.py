"""A fault-injecting :class:`~otlp_enricher.exporter.fileops.FileOps` for the storage fault tests.

``FaultyOps`` does the real syscall unless armed: ``arm("fsync", errno.EIO, nth=3)`` makes the
third ``fsync`` from now raise ``OSError(EIO)`` — once (``sticky=False``: a transient error), or
from then on until :meth:`FaultyOps.clear` (``sticky=True``: a disk that stays full or read-only).
It counts every call per operation, so a fault-free run tells the walk which calls exist.
``hold("unlink")`` makes every later call of one operation wait until the test releases it (a slow
disk), so a test can act while a spool's thread is inside that call.
``fsync`` is counted and can fail but does not reach the disk: the walk checks the spool's logic
(a simulated crash keeps the page cache), and a real fsync per call would make it slow.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from dataclasses import dataclass, field

from otlp_enricher.exporter.fileops import OsFileOps

OPERATIONS = ("open", "write", "pwrite", "pread", "fsync", "ftruncate", "dup", "close", "unlink", "size")


@dataclass
class Hold:
    """Calls of one operation wait here: :attr:`entered` is set by the first, :attr:`released` lets them on."""

    entered: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    def wait(self) -> None:
        """Block the calling thread until the test releases the hold (bounded: a test that forgets fails)."""
        self.entered.set()
        assert self.released.wait(10), "the test never released the held operation"


class FaultyOps(OsFileOps):
    """Real file operations, with one armed fault at the Nth call of one operation."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._op = ""
        self._errno = 0
        self._at = 0
        self._sticky = False
        self._held: dict[str, Hold] = {}

    def arm(self, op: str, error: int, nth: int = 1, sticky: bool = False) -> None:
        """Fail the ``nth`` call of ``op`` from now with ``error`` (and every later one if ``sticky``);
        ``op`` ``"*"`` counts calls of every operation (a whole disk failing, e.g. remounted read-only)."""
        with self._lock:
            self._op, self._errno, self._at, self._sticky = op, error, self.calls[op] + nth, sticky

    def hold(self, op: str) -> Hold:
        """From now on, calls of ``op`` wait until the returned hold is released."""
        hold = self._held[op] = Hold()
        return hold

    def clear(self) -> None:
        """No more faults: the disk has space again, or was remounted read-write."""
        with self._lock:
            self._op = ""

    def _due(self, op: str) -> int:
        """The errno to raise for this call of ``op``, or 0 (after waiting, if ``op`` is held)."""
        if (hold := self._held.get(op)) is not None:
            hold.wait()
        with self._lock:
            self.calls[op] += 1
            self.calls["*"] += 1
            armed = self._op if self._op == "*" else op
            count = self.calls[armed]
            if armed != self._op or count < self._at or (count > self._at and not self._sticky):
                return 0
            self.injected[op] += 1
            return self._errno

    def _check(self, op: str) -> None:
        if error := self._due(op):
            raise OSError(error, os.strerror(error))

    def open(self, path: str, flags: int, mode: int = 0o600) -> int:
        """``os.open``, or the armed fault."""
        self._check("open")
        return super().open(path, flags, mode)

    def write(self, fd: int, data: memoryview) -> int:
        """``os.write``, or the armed fault — after writing half the bytes, as a filling disk does."""
        if error := self._due("write"):
            if len(data) > 1:
                super().write(fd, data[: len(data) // 2])
            raise OSError(error, os.strerror(error))
        return super().write(fd, data)

    def pwrite(self, fd: int, data: bytes, offset: int) -> int:
        """``os.pwrite``, or the armed fault."""
        self._check("pwrite")
        return super().pwrite(fd, data, offset)

    def pread(self, fd: int, size: int, offset: int) -> bytes:
        """``os.pread``, or the armed fault."""
        self._check("pread")
        return super().pread(fd, size, offset)

    def fsync(self, fd: int) -> None:
        """The armed fault, or nothing (but ``EBADF`` for a closed fd, as ``os.fsync`` would)."""
        self._check("fsync")
        os.fstat(fd)

    def ftruncate(self, fd: int, size: int) -> None:
        """``os.ftruncate``, or the armed fault."""
        self._check("ftruncate")
        super().ftruncate(fd, size)

    def dup(self, fd: int) -> int:
        """``os.dup``, or the armed fault."""
        self._check("dup")
        return super().dup(fd)

    def close(self, fd: int) -> None:
        """``os.close``, or the armed fault (after closing: Linux frees the fd even when close fails)."""
        super().close(fd)
        self._check("close")

    def unlink(self, path: str) -> None:
        """``os.unlink``, or the armed fault."""
        self._check("unlink")
        super().unlink(path)

    def size(self, fd: int) -> int:
        """``os.fstat().st_size``, or the armed fault."""
        self._check("size")
        return super().size(fd)
