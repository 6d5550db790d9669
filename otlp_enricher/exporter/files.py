"""Local JSON-lines output, used until ``exporters.loki`` / ``exporters.tempo`` are configured.

``spans.jsonl`` is in the Collector file exporter's OTLP/JSON form, so ``otlp-enricher replay`` and
the Collector's ``otlp_json_file`` receiver read it back; its LLM spans carry the same enrichment
and redaction Tempo gets (written natively into the request bytes, then rendered as JSON
natively). ``prompt-logs.jsonl`` holds one redacted prompt-log line per LLM call, rendered by
the same code as Loki's. Files are private (mode 0600). A request is acknowledged only after
its lines are written (and fsynced when ``storage.fsync`` is ``always`` or ``batch``); appends
that arrive while a write is in progress are written and fsynced together (group commit).
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from otlp_enricher.connector.promptlog import PromptLogLines
from otlp_enricher.connector.spans import SpanEditor
from otlp_enricher.dataplane import to_json
from otlp_enricher.model import LLMCall
from otlp_enricher.pipeline import SpanBatch
from otlp_enricher.processor.redaction import Redactor
from otlp_enricher.storage_files import make_private_dir, open_private_fd
from otlp_enricher.telemetry.metrics import Metrics


class JsonLinesFile:
    """An append-only file; concurrent appends share one write and one fsync."""

    def __init__(self, path: Path, fsync: bool) -> None:
        make_private_dir(path.parent)
        self.path = path
        self._fsync = fsync
        self._fd = open_private_fd(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        self._pending: list[tuple[bytes, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._closed = False

    async def append(self, lines: Sequence[bytes]) -> None:
        """Write ``lines`` (each without its newline) and return once they are on disk."""
        if self._closed:
            raise RuntimeError(f"{self.path} is closed")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((b"".join(line + b"\n" for line in lines), done))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_pending())
        await done

    async def _write_pending(self) -> None:
        try:
            while self._pending:
                group, self._pending = self._pending, []
                try:
                    await asyncio.to_thread(self._write, b"".join(payload for payload, _ in group))
                except OSError as error:
                    for _, done in group:
                        done.set_exception(error)
                    continue
                for _, done in group:
                    done.set_result(None)
        finally:
            self._writer = None

    def _write(self, payload: bytes) -> None:
        view = memoryview(payload)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        if self._fsync:
            os.fsync(self._fd)

    async def close(self) -> None:
        """Finish pending writes and close; later appends fail."""
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            await asyncio.shield(self._writer)
        os.close(self._fd)


class SpanFileExporter:
    """Every received request as one OTLP/JSON line of ``spans.jsonl``, LLM spans enriched."""

    name = "file_spans"

    def __init__(self, directory: Path, fsync: bool, redactor: Redactor, metrics: Metrics) -> None:
        self._file = JsonLinesFile(directory / "spans.jsonl", fsync)
        self._editor = SpanEditor(redactor, strip_content=False)
        self._metrics = metrics

    async def accept(self, batch: SpanBatch) -> None:
        """Append the request."""
        if not batch.span_count:
            return
        payload = batch.raw
        if batch.calls:
            counts: Counter[str] = Counter()
            payload, failed = self._editor.edit(payload, batch.calls, counts)
            for scrubber, count in counts.items():
                self._metrics.redactions.labels("span", scrubber).inc(count)
            if failed:
                self._metrics.redaction_failures.labels("span").inc(failed)
        await self._file.append([to_json(payload)])

    async def start(self) -> None:
        """Nothing to start: the file opens on the first append."""

    def ready(self) -> str | None:
        """Always ready (a failed append refuses that request; the storage check is the service's)."""
        return None

    async def shutdown(self, deadline_s: float) -> None:
        """Close the file (appends are acknowledged only once written, so nothing is pending)."""
        await self._file.close()


class PromptLogFileExporter:
    """One redacted prompt-log line per LLM call in ``prompt-logs.jsonl``."""

    name = "file_prompt_logs"

    def __init__(self, directory: Path, fsync: bool, redactor: Redactor, metrics: Metrics) -> None:
        self._file = JsonLinesFile(directory / "prompt-logs.jsonl", fsync)
        self._lines = PromptLogLines(redactor, metrics)

    async def accept(self, calls: Sequence[LLMCall]) -> None:
        """Append one line per call."""
        await self._file.append([self._lines.line(call) for call in calls])

    async def start(self) -> None:
        """Nothing to start: the file opens on the first append."""

    def ready(self) -> str | None:
        """Always ready (a failed append refuses that request; the storage check is the service's)."""
        return None

    async def shutdown(self, deadline_s: float) -> None:
        """Close the file."""
        await self._file.close()
