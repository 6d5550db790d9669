"""Private files under ``storage.directory``: 0600 files, 0700 directories, whatever the umask.

Everything the sidecar writes there (prompt logs, spans, spools, dead letters, the user-id hash
key) can hold prompt text or secrets, so nothing is created group- or world-readable, and files
or directories left by an older version with wider modes are narrowed when they are opened.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import BinaryIO, cast

FILE_MODE = 0o600
DIRECTORY_MODE = 0o700


def make_private_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` and any missing parents with mode 0700 (``path`` itself narrowed if wider)."""
    directory = Path(path)
    missing: list[Path] = []
    probe = directory
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for created in reversed(missing):
        with contextlib.suppress(FileExistsError):
            created.mkdir(mode=DIRECTORY_MODE)
        os.chmod(created, DIRECTORY_MODE)  # mkdir's mode is masked by the umask
    _narrow(directory, DIRECTORY_MODE)
    return directory


def open_private(path: str | os.PathLike[str], mode: str = "ab") -> BinaryIO:
    """Open ``path`` for binary writing (``"ab"``, ``"wb"`` or ``"r+b"``) as a 0600 file."""
    flags = {
        "ab": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
        "wb": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
        "r+b": os.O_RDWR,
    }.get(mode)
    if flags is None:
        raise ValueError(f"open_private supports ab, wb and r+b, not {mode!r}")
    fd = open_private_fd(path, flags)
    try:
        return cast(BinaryIO, os.fdopen(fd, mode))
    except BaseException:
        os.close(fd)
        raise


def open_private_fd(path: str | os.PathLike[str], flags: int) -> int:
    """``os.open(path, flags, 0o600)``, then narrow a pre-existing file that was wider."""
    fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0), FILE_MODE)
    try:
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_private(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to a new 0600 file atomically (a temporary file renamed over ``path``)."""
    target = Path(path)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with open_private(temporary, "wb") as stream:
        stream.write(data)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(temporary, target)


def _narrow(path: Path, mode: int) -> None:
    if path.stat().st_mode & 0o777 & ~mode:
        os.chmod(path, mode)
