"""Cost per trace and per conversation (``processors.genai.rollup``): no new service needed.

The Collector balances by trace id, so one sidecar sees every LLM call of a trace. Calls are
summed per trace id and per conversation / session id (``gen_ai.conversation.id``,
``session.id``, …); once a key has had no new call for ``idle_s`` its summary is emitted: one
JSON record (total cost, tokens, calls, errors, models, services, duration) to the prompt-log
stream (Loki, stream label ``kind="trace_summary"`` or ``"conversation_summary"``, or
``<storage>/trace-summaries.jsonl`` without Loki), and the trace's cost into the histogram
``llm_trace_cost_usd``, so "p95 cost of an agent run" is one ``histogram_quantile``.

Memory is bounded: at most ``max_open`` keys are open; past that the least recently active one
is emitted early, marked ``"evicted": true`` and counted
(``otlp_enricher_trace_rollups_evicted_total``). A trace with an unpriced call reports
``unpriced_calls`` and stays out of the histogram (its total would be too low).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson

from otlp_enricher.governance.settings import RollupConfig
from otlp_enricher.model import TOKEN_TYPES, LLMCall
from otlp_enricher.pipeline import Backpressure
from otlp_enricher.storage_files import open_private
from otlp_enricher.telemetry.metrics import Metrics

Clock = Callable[[], float]
SUMMARY_FILE = "trace-summaries.jsonl"


@dataclass(slots=True)
class _Open:
    """What is known so far of one trace or conversation."""

    kind: str
    key: str
    first_ns: int
    last_ns: int
    last_seen_s: float
    calls: int = 0
    errors: int = 0
    unpriced_calls: int = 0
    cost_usd: float = 0.0
    tokens: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TOKEN_TYPES, 0))
    models: set[str] = field(default_factory=set)
    services: set[str] = field(default_factory=set)
    trace_ids: set[str] = field(default_factory=set)

    def add(self, call: LLMCall, now_s: float) -> None:
        self.last_seen_s = now_s
        self.first_ns = min(self.first_ns, call.start_ns)
        self.last_ns = max(self.last_ns, call.end_ns)
        self.calls += 1
        self.errors += call.status == "error"
        if call.cost_usd is not None:
            self.cost_usd += call.cost_usd
        elif call.cost_source == "unpriced":
            self.unpriced_calls += 1
        tokens = call.tokens
        if tokens is not None:
            for kind, count in tokens.by_type():
                self.tokens[kind] += count
        if call.model:
            self.models.add(call.model)
        if call.service:
            self.services.add(call.service)
        if self.kind == "conversation_summary":
            self.trace_ids.add(call.trace_id.hex())

    def record(self, evicted: bool) -> dict[str, Any]:
        id_key = "trace_id" if self.kind == "trace_summary" else "conversation_id"
        record: dict[str, Any] = {
            "kind": self.kind,
            id_key: self.key,
            "calls": self.calls,
            "errors": self.errors,
            "cost_usd": round(self.cost_usd, 9),
            "unpriced_calls": self.unpriced_calls,
            "tokens": self.tokens,
            "models": sorted(self.models),
            "services": sorted(self.services),
            "start_unix_nano": self.first_ns,
            "duration_s": round((self.last_ns - self.first_ns) / 1e9, 6),
            "evicted": evicted,
        }
        if self.kind == "conversation_summary":
            record["traces"] = len(self.trace_ids)
        return record


class TraceRollup:
    """A ``CallSink`` that sums calls per trace and conversation; :meth:`due` hands out finished summaries."""

    def __init__(self, config: RollupConfig, metrics: Metrics, clock: Clock = time.monotonic) -> None:
        self._idle_s = config.idle_s
        self._max_open = config.max_open
        self._metrics = metrics
        self._clock = clock
        self._open: OrderedDict[tuple[str, str], _Open] = OrderedDict()  # least recently active first
        self._evicted: list[dict[str, Any]] = []

    def consume(self, calls: Sequence[LLMCall]) -> None:
        """Add ``calls`` (already enriched and de-duplicated) to their trace and conversation."""
        now = self._clock()
        for call in calls:
            self._add(("trace_summary", call.trace_id.hex()), call, now)
            if call.session_id:
                self._add(("conversation_summary", call.session_id), call, now)
        self._metrics.rollups_open.set(len(self._open))

    def _add(self, key: tuple[str, str], call: LLMCall, now: float) -> None:
        entry = self._open.get(key)
        if entry is None:
            if len(self._open) >= self._max_open:
                _, oldest = self._open.popitem(last=False)
                self._evicted.append(self._finish(oldest, evicted=True))
                self._metrics.rollups_evicted.inc()
            entry = self._open[key] = _Open(key[0], key[1], call.start_ns, call.end_ns, now)
        else:
            self._open.move_to_end(key)
        entry.add(call, now)

    def due(self, everything: bool = False) -> list[dict[str, Any]]:
        """Summaries of keys quiet for ``idle_s`` (all open keys when ``everything``), and evicted ones."""
        records, self._evicted = self._evicted, []
        quiet_before = self._clock() - self._idle_s
        while self._open:
            key, entry = next(iter(self._open.items()))
            if not everything and entry.last_seen_s > quiet_before:
                break  # ordered by last activity: the rest are more recent
            del self._open[key]
            records.append(self._finish(entry, evicted=False))
        self._metrics.rollups_open.set(len(self._open))
        return records

    def _finish(self, entry: _Open, evicted: bool) -> dict[str, Any]:
        if entry.kind == "trace_summary" and entry.unpriced_calls == 0 and entry.calls > entry.errors:
            self._metrics.trace_cost.observe(entry.cost_usd, {"trace_id": entry.key})  # exemplar → Tempo
        return entry.record(evicted)


class SummarySink(Protocol):
    """Where summaries go: the Loki exporter's stream or a local JSON-lines file."""

    async def write(self, records: Sequence[dict[str, Any]]) -> None:
        """Deliver or durably queue ``records``."""
        ...


class LokiEntries(Protocol):
    """The part of ``LokiExporter`` the summaries use."""

    async def accept_entries(self, entries: Sequence[tuple[list[list[str]], int, str, list[list[str]]]]) -> None:
        """Spool ready-made Loki entries."""
        ...


class LokiSummaries:
    """Summaries as Loki entries: stream ``{service, kind}`` plus the exporter's static labels."""

    def __init__(self, exporter: LokiEntries, static_labels: dict[str, str]) -> None:
        self._exporter = exporter
        self._static = sorted(static_labels.items())

    async def write(self, records: Sequence[dict[str, Any]]) -> None:
        """Spool one line per record, timestamped at the start of its first call."""
        entries = []
        for record in records:
            services = record["services"]
            labels = [["service", services[0] if services else "unknown"], ["kind", record["kind"]]]
            labels += [[name, value] for name, value in self._static]
            metadata = [["trace_id", record["trace_id"]]] if "trace_id" in record else []
            entries.append((labels, record["start_unix_nano"], orjson.dumps(record).decode(), metadata))
        await self._exporter.accept_entries(entries)


class FileSummaries:
    """Summaries appended as JSON lines to ``<storage>/trace-summaries.jsonl`` (no Loki configured)."""

    def __init__(self, path: Path) -> None:
        self._path = path

    async def write(self, records: Sequence[dict[str, Any]]) -> None:
        """Append one line per record."""
        data = b"".join(orjson.dumps(record) + b"\n" for record in records)
        await asyncio.to_thread(self._append, data)

    def _append(self, data: bytes) -> None:
        with open_private(self._path, "ab") as file:  # 0600, like every file under storage
            file.write(data)


class RollupEmitter:
    """Emits due summaries every ``idle_s / 4`` (at most 1 s apart); emits every open one at shutdown."""

    def __init__(self, rollup: TraceRollup, sink: SummarySink, idle_s: float, metrics: Metrics) -> None:
        self.rollup = rollup
        self._sink = sink
        self._period_s = min(1.0, idle_s / 4)
        self._metrics = metrics
        self._task: asyncio.Task[None] | None = None

    name = "rollup"

    async def start(self) -> None:
        """Start the periodic emission on the running loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._period_s)
            await self._emit(everything=False)

    async def _emit(self, everything: bool) -> None:
        records = self.rollup.due(everything)
        if not records:
            return
        try:
            await self._sink.write(records)
        except (Backpressure, OSError):  # a full spool or disk loses summaries (counted), never calls
            self._metrics.rollups_dropped.inc(len(records))

    def ready(self) -> str | None:
        """Always ready: a summary that cannot be written is counted, never blocks a call."""
        return None

    async def shutdown(self, deadline_s: float) -> None:
        """Stop the loop and emit what is still open, within ``deadline_s``. Idempotent."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._emit(everything=True), max(0.0, deadline_s))
