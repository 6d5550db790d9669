"""The file-system seam of the spool and the dead-letter store: every syscall they make, in one place.

The spool never calls ``os`` directly; it calls a :class:`FileOps`. Production uses
:data:`REAL_FILE_OPS` (thin wrappers over ``os``); the fault tests pass an implementation that
raises ``EBADF``/``ENOSPC``/``EIO``/``EROFS`` at the Nth call of a chosen operation, so every
failure path is exercised on purpose instead of by timing luck. Operation names (the ``op`` of
:class:`StorageError` and of the ``otlp_enricher_storage_errors_total`` metric) are the method names.
"""

from __future__ import annotations

import errno
import os
from typing import Protocol


class StorageError(OSError):
    """A spool or dead-letter syscall failed; ``op`` is the operation, ``errno_name`` e.g. ``ENOSPC``."""

    def __init__(self, op: str, error: OSError) -> None:
        self.op = op
        self.errno_name = errno.errorcode.get(error.errno or 0, "EUNKNOWN")
        self.detail = f"{op}: {self.errno_name}: {error.strerror or error}"
        super().__init__(error.errno, self.detail)

    def __str__(self) -> str:
        return self.detail


class FileOps(Protocol):
    """The syscalls a spool makes; each raises ``OSError`` as ``os`` does."""

    def open(self, path: str, flags: int, mode: int = 0o600) -> int:
        """``os.open``."""

    def write(self, fd: int, data: memoryview) -> int:
        """``os.write``: bytes written (may be fewer than given)."""

    def pwrite(self, fd: int, data: bytes, offset: int) -> int:
        """``os.pwrite``."""

    def pread(self, fd: int, size: int, offset: int) -> bytes:
        """``os.pread``."""

    def fsync(self, fd: int) -> None:
        """``os.fsync`` (of a file or, opened read-only, of a directory)."""

    def ftruncate(self, fd: int, size: int) -> None:
        """``os.ftruncate``."""

    def dup(self, fd: int) -> int:
        """``os.dup``."""

    def close(self, fd: int) -> None:
        """``os.close``."""

    def unlink(self, path: str) -> None:
        """``os.unlink``."""

    def size(self, fd: int) -> int:
        """``os.fstat(fd).st_size``."""


class OsFileOps:
    """The real thing: each method is the ``os`` function of the same name."""

    def open(self, path: str, flags: int, mode: int = 0o600) -> int:
        """``os.open``."""
        return os.open(path, flags, mode)

    def write(self, fd: int, data: memoryview) -> int:
        """``os.write``."""
        return os.write(fd, data)

    def pwrite(self, fd: int, data: bytes, offset: int) -> int:
        """``os.pwrite``."""
        return os.pwrite(fd, data, offset)

    def pread(self, fd: int, size: int, offset: int) -> bytes:
        """``os.pread``."""
        return os.pread(fd, size, offset)

    def fsync(self, fd: int) -> None:
        """``os.fsync``."""
        os.fsync(fd)

    def ftruncate(self, fd: int, size: int) -> None:
        """``os.ftruncate``."""
        os.ftruncate(fd, size)

    def dup(self, fd: int) -> int:
        """``os.dup``."""
        return os.dup(fd)

    def close(self, fd: int) -> None:
        """``os.close``."""
        os.close(fd)

    def unlink(self, path: str) -> None:
        """``os.unlink``."""
        os.unlink(path)

    def size(self, fd: int) -> int:
        """``os.fstat(fd).st_size``."""
        return os.fstat(fd).st_size


REAL_FILE_OPS: FileOps = OsFileOps()


def write_all(ops: FileOps, fd: int, data: bytes) -> None:
    """Write every byte of ``data`` (``os.write`` may write fewer)."""
    view = memoryview(data)
    while view:
        view = view[ops.write(fd, view) :]


def read_all(ops: FileOps, path: str, offset: int = 0) -> bytes:
    """The bytes of ``path`` from ``offset`` to its end."""
    fd = ops.open(path, os.O_RDONLY)
    try:
        chunks, position = [], offset
        while chunk := ops.pread(fd, 1 << 20, position):
            chunks.append(chunk)
            position += len(chunk)
        return b"".join(chunks)
    finally:
        ops.close(fd)


def fsync_directory(ops: FileOps, directory: str) -> None:
    """Make a created or removed directory entry durable."""
    fd = ops.open(directory, os.O_RDONLY)
    try:
        ops.fsync(fd)
    finally:
        ops.close(fd)
