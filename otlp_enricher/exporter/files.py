"""Local JSON-lines output, used until ``exporters.loki`` / ``exporters.tempo`` are configured.

``spans.jsonl`` is in the Collector file exporter's OTLP/JSON form, so ``otlp-enricher replay`` and
the Collector's ``otlp_json_file`` receiver read it back; ``prompt-logs.jsonl`` holds one prompt-log
record per LLM call. A request is acknowledged only after its lines are written (and fsynced when
``storage.fsync`` is ``always`` or ``batch``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path

import orjson

from otlp_enricher.connector.promptlog import prompt_log_record
from otlp_enricher.model import LLMCall
from otlp_enricher.otlp_json import encode_json_request
from otlp_enricher.pipeline import SpanBatch


class JsonLinesFile:
    """An append-only file written off the event loop, one writer at a time."""

    def __init__(self, path: Path, fsync: bool) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fsync = fsync
        self._stream = open(path, "ab")  # noqa: SIM115 - lives as long as the exporter
        self._lock = asyncio.Lock()
        self._closed = False

    async def append(self, lines: Sequence[bytes]) -> None:
        """Write ``lines`` (each without its newline) and return once they are on disk."""
        payload = b"".join(line + b"\n" for line in lines)
        async with self._lock:
            if self._closed:
                raise RuntimeError(f"{self.path} is closed")
            await asyncio.to_thread(self._write, payload)

    def _write(self, payload: bytes) -> None:
        self._stream.write(payload)
        self._stream.flush()
        if self._fsync:
            os.fsync(self._stream.fileno())

    async def close(self) -> None:
        """Flush and close; later appends fail."""
        async with self._lock:
            if not self._closed:
                self._closed = True
                self._stream.close()


class SpanFileExporter:
    """Every received request as one OTLP/JSON line of ``spans.jsonl``."""

    name = "file_spans"

    def __init__(self, directory: Path, fsync: bool) -> None:
        self._file = JsonLinesFile(directory / "spans.jsonl", fsync)

    async def accept(self, batch: SpanBatch) -> None:
        """Append the request."""
        if batch.span_count:
            await self._file.append([encode_json_request(batch.request)])

    async def shutdown(self, deadline_s: float) -> None:
        """Close the file (writes are synchronous, so nothing is pending)."""
        await self._file.close()


class PromptLogFileExporter:
    """One prompt-log record per LLM call as a line of ``prompt-logs.jsonl``."""

    name = "file_prompt_logs"

    def __init__(self, directory: Path, fsync: bool) -> None:
        self._file = JsonLinesFile(directory / "prompt-logs.jsonl", fsync)

    async def accept(self, calls: Sequence[LLMCall]) -> None:
        """Append one line per call."""
        await self._file.append([orjson.dumps(prompt_log_record(call)) for call in calls])

    async def shutdown(self, deadline_s: float) -> None:
        """Close the file."""
        await self._file.close()
