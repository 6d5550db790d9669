"""Dead letters: batches a backend refused for good, kept with the reason instead of dropped.

``storage.directory/deadletter/<exporter>.jsonl``, one JSON line per refused batch:
``{"time_unix_ns", "exporter", "reason", "items", "records"}`` where ``records`` is what the
exporter's transport makes of the batch (Loki entries as JSON, OTLP requests as base64). Each
line is fsynced before the spool commits past the batch, so a dead letter is never lost to a crash.

Bounded by bytes (``storage.dead_letters.max_bytes`` per exporter): the current file is rotated to
``<exporter>.<n>.jsonl`` once it holds a quarter of the bound, and the oldest rotated files are
deleted while the total is over it — their items counted in
``otlp_enricher_dead_letters_dropped_total`` and logged, because a backend refusing everything
under load must not fill the disk the spool needs. Files are private (0600, directory 0700):
they hold prompt-log lines and spans.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from otlp_enricher.exporter.fileops import REAL_FILE_OPS, FileOps, write_all

_ROTATED = re.compile(r"\.(\d+)\.jsonl$")
DEFAULT_MAX_BYTES = 64 << 20

DropListener = Callable[[int, int], None]
"""Called with (items, bytes) of a dead-letter file deleted to stay within the bound."""


class DeadLetterFile:
    """Append-only JSON lines of refused batches, fsynced per line, rotated and bounded by bytes."""

    def __init__(self, path: Path, max_bytes: int = DEFAULT_MAX_BYTES, ops: FileOps = REAL_FILE_OPS) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._ops = ops
        self._lock = asyncio.Lock()
        self.on_drop: DropListener | None = None
        self.stored_bytes = 0
        self._scanned = False

    def use_file_ops(self, ops: FileOps) -> None:
        """Route every syscall through ``ops`` (the fault tests inject failures)."""
        self._ops = ops

    async def write(self, exporter: str, reason: str, items: int, records: list[Any]) -> None:
        """Append one refused batch; returns once it is on disk (raises ``OSError`` if it cannot be)."""
        line = orjson.dumps(
            {
                "time_unix_ns": time.time_ns(),
                "exporter": exporter,
                "reason": reason,
                "items": items,
                "records": records,
            }
        )
        async with self._lock:
            await asyncio.to_thread(self._append, line + b"\n")

    def _append(self, line: bytes) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not self._scanned:
            self.stored_bytes = sum(size for _, size in _files(self.path))
            self._scanned = True
        current = _size(self.path)
        if current and current + len(line) > max(self.max_bytes // 4, 1):
            self._rotate()
        fd = self._ops.open(str(self.path), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            size = self._ops.size(fd)
            try:
                write_all(self._ops, fd, line)
                self._ops.fsync(fd)
            except OSError:
                with contextlib.suppress(OSError):
                    self._ops.ftruncate(fd, size)  # no torn line before the retried one
                raise
        finally:
            self._ops.close(fd)
        self.stored_bytes += len(line)
        self._trim()

    def _rotate(self) -> None:
        numbers = [_number(path) for path, _ in _files(self.path) if path != self.path]
        os.replace(self.path, self.path.with_name(f"{self.path.stem}.{max(numbers, default=0) + 1}.jsonl"))

    def _trim(self) -> None:
        """Delete the oldest rotated files while the total is over the bound."""
        for path, size in _files(self.path):
            if self.stored_bytes <= self.max_bytes or path == self.path:
                break
            items = sum(int(letter.get("items", 0)) for letter in _letters(path))
            try:
                self._ops.unlink(str(path))
            except FileNotFoundError:
                pass
            except OSError:
                return  # the line is written; trimming is retried after the next one
            self.stored_bytes -= size
            if self.on_drop is not None:
                self.on_drop(items, size)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _number(path: Path) -> int:
    match = _ROTATED.search(path.name)
    return int(match.group(1)) if match else 0


def _files(path: Path) -> list[tuple[Path, int]]:
    """Every dead-letter file of ``path``, oldest first (rotated by number, then the current one)."""
    rotated = [p for p in path.parent.glob(f"{path.stem}.*.jsonl") if _ROTATED.search(p.name)]
    ordered = sorted(rotated, key=_number) + ([path] if path.exists() else [])
    return [(p, _size(p)) for p in ordered]


def _letters(path: Path) -> list[dict[str, Any]]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    letters = []
    for line in data.splitlines():
        with contextlib.suppress(orjson.JSONDecodeError):
            if line.strip():
                letters.append(orjson.loads(line))
    return letters


def read_dead_letters(path: Path) -> list[dict[str, Any]]:
    """Every dead letter kept for ``path``, rotated files included, oldest first; none → ``[]``."""
    return [letter for file, _ in _files(path) for letter in _letters(file)]


def dead_letter_files(path: Path) -> list[tuple[Path, int]]:
    """(file, bytes) of every dead-letter file kept for ``path``, oldest first."""
    return _files(path)


def read_letters(path: Path) -> list[dict[str, Any]]:
    """The dead letters of one file (a torn last line is skipped)."""
    return _letters(path)


def set_aside(path: Path) -> None:
    """Rotate the current file (so a running sidecar starts a new one while its letters are handled)."""
    if path.exists():
        numbers = [_number(file) for file, _ in _files(path) if file != path]
        os.replace(path, path.with_name(f"{path.stem}.{max(numbers, default=0) + 1}.jsonl"))
