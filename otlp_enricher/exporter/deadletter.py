"""Dead letters: batches a backend refused for good, kept with the reason instead of dropped.

``storage.directory/deadletter/<exporter>.jsonl``, one JSON line per refused batch:
``{"time_unix_ns", "exporter", "reason", "items", "records"}`` where ``records`` is what the
exporter's transport makes of the batch (Loki entries as JSON, OTLP requests as base64). Each
line is fsynced before the spool commits past the batch, so a dead letter is never lost either.
The file is not rotated or bounded: it grows only on permanent failures, which are counted
(``otlp_enricher_exporter_dead_lettered_total``) and logged, and are an operator's to inspect.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import orjson

from otlp_enricher.storage_files import make_private_dir, open_private


class DeadLetterFile:
    """Append-only JSON lines of refused batches, fsynced per line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = asyncio.Lock()

    async def write(self, exporter: str, reason: str, items: int, records: list[Any]) -> None:
        """Append one refused batch; returns once it is on disk."""
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
        make_private_dir(self.path.parent)
        with open_private(self.path, "ab") as stream:
            stream.write(line)
            stream.flush()
            os.fsync(stream.fileno())


def read_dead_letters(path: Path) -> list[dict[str, Any]]:
    """Every dead letter of ``path`` (for tests and tooling); missing file → none."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    return [orjson.loads(line) for line in data.splitlines() if line.strip()]
