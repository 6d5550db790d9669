"""What the Loki and Tempo exporters share: a spool per exporter, its sender, intake and lifecycle.

``start`` opens (recovers) the spool and starts the sender, which replays what the last run left
before anything new; ``_append`` is the receiver-facing intake that maps a full spool to
:class:`~otlp_enricher.pipeline.Backpressure`; ``shutdown`` stops intake, lets the sender drain
until the deadline and leaves the rest in the spool for the next start.

The spools of all exporters share one byte budget (:mod:`otlp_enricher.exporter.budget`, the
accept rule): a lagging backend's spool borrows the others' unused share, and with
``sending_queue.on_full: drop_oldest`` gives up its oldest data rather than refuse intake; each
drop is counted (``otlp_enricher_exporter_dropped_total``) and logged once per episode
(``spool_dropping_oldest``, then ``spool_dropping_ended`` with the episode's total).

A storage fault (disk full, read-only, I/O error) is a state, not a crash: intake answers
``Backpressure`` (UNAVAILABLE + RetryInfo upstream) while the sender goes on delivering and
deleting delivered segments, so space comes back by itself; :meth:`SpooledExporter.ready` feeds
``/readyz``; the fault and its end are logged once each (``storage_fault`` / ``storage_recovered``)
and reported by ``otlp_enricher_storage_writable`` and ``otlp_enricher_storage_errors_total``.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence

from otlp_enricher.exporter.budget import StorageBudget
from otlp_enricher.exporter.config import RetryConfig, SendingQueueConfig, StorageConfig
from otlp_enricher.exporter.deadletter import DeadLetterFile
from otlp_enricher.exporter.fileops import REAL_FILE_OPS, FileOps, StorageError
from otlp_enricher.exporter.sender import Sender, SenderSettings, Transport
from otlp_enricher.exporter.spool import Spool, SpoolFull, SpoolUnavailable
from otlp_enricher.pipeline import Backpressure
from otlp_enricher.telemetry.logging import get_logger
from otlp_enricher.telemetry.metrics import Metrics

FULL_RETRY_AFTER_S = 2.0
"""What the receiver tells the upstream when the spool is full: retry in this many seconds."""
STORAGE_RETRY_AFTER_S = 5.0
"""… and when the storage refused the write (disk full, read-only): space takes longer to come back."""
CLOSED_RETRY_AFTER_S = 5.0
IN_FLIGHT_SHARE = 8
"""A sender's batch holds at most 1/``IN_FLIGHT_SHARE`` of the store's budget."""


class SpooledExporter:
    """An exporter whose intake is a durable spool and whose delivery is a background sender."""

    def __init__(
        self,
        name: str,
        signal: str,
        storage: StorageConfig,
        transport: Transport,
        metrics: Metrics,
        max_records: int,
        max_bytes: int,
        linger_s: float,
        retry: RetryConfig,
        queue: SendingQueueConfig,
        budget: StorageBudget | None = None,
        ops: FileOps = REAL_FILE_OPS,
    ) -> None:
        """``budget``: the byte budget shared with the other exporters (by default one of
        ``storage.max_spool_bytes`` for this exporter alone)."""
        self.name = name
        self._signal = signal
        if budget is None:
            budget = StorageBudget(storage.max_spool_bytes)
        self.spool = Spool(
            storage.directory / "spool" / name, storage.max_spool_bytes, storage.fsync, ops=ops, budget=budget
        )
        budget.join(self.spool, queue.on_full, self._dropped, self._dropping_ended)
        self._dropped_counter = metrics.exporter_dropped.labels(name, signal)  # 0 from the start, for increase()
        self._dropped_items = 0
        self.dead_letters = DeadLetterFile(
            storage.directory / "deadletter" / f"{name}.jsonl", storage.max_dead_letter_bytes, ops
        )
        # a batch in flight cannot be dropped: keep it a small part of the store, so a drop_oldest
        # spool always has unread segments to give up (a 3 MiB Tempo batch in a 2 MiB store has not)
        settings = SenderSettings(max_records, min(max_bytes, budget.max_bytes // IN_FLIGHT_SHARE), linger_s, retry)
        self._sender = Sender(name, signal, self.spool, transport, self.dead_letters, settings, metrics)
        self._metrics = metrics
        self._open = False
        self._started = False
        self._full = False
        self._log = get_logger(f"exporter.{name}")
        self.spool.on_error = self._storage_error
        self.spool.on_change = self._storage_changed
        self.dead_letters.on_drop = self._dead_letters_dropped

    def _dropped(self, items: int, size: int) -> None:
        self._dropped_counter.inc(items)
        if not self._dropped_items:
            self._log.warning(
                "spool_dropping_oldest",
                exporter=self.name,
                items=items,
                bytes=size,
                max_bytes=self.spool.budget.max_bytes,
                counted_in="otlp_enricher_exporter_dropped_total",
            )
        self._dropped_items += items

    def _dropping_ended(self) -> None:
        self._log.info("spool_dropping_ended", exporter=self.name, dropped_items=self._dropped_items)
        self._dropped_items = 0

    def _storage_error(self, error: StorageError) -> None:
        self._metrics.storage_errors.labels(self.name, error.op, error.errno_name).inc()

    def _storage_changed(self, problem: str | None) -> None:
        if problem is None:
            self._log.info("storage_recovered", exporter=self.name)
        else:
            self._log.warning("storage_fault", exporter=self.name, problem=problem)

    def _dead_letters_dropped(self, items: int, size: int) -> None:
        self._metrics.dead_letters_dropped.labels(self.name).inc(items)
        self._log.warning(
            "dead_letters_dropped",
            exporter=self.name,
            items=items,
            bytes=size,
            max_bytes=self.dead_letters.max_bytes,
        )

    def use_file_ops(self, ops: FileOps) -> None:
        """Route the spool's and dead letters' syscalls through ``ops`` (before :meth:`start`; the
        fault tests inject a failing file layer this way)."""
        if self._started:
            raise RuntimeError("use_file_ops after start")
        self.spool.use_file_ops(ops)
        self.dead_letters.use_file_ops(ops)

    def ready(self) -> str | None:
        """Why this exporter cannot take data durably now (a storage fault, a closed or unwritable
        spool), or ``None``."""
        if (problem := self.spool.problem) is not None:
            return f"storage of {self.name}: {problem}"
        if not self._open or not os.access(self.spool.directory, os.W_OK):
            return f"spool of {self.name} is not writable"
        return None

    async def start(self) -> None:
        """Recover the spool and start delivering, oldest first."""
        recovery = await asyncio.to_thread(self.spool.open)
        metrics, name, spool = self._metrics, self.name, self.spool
        if recovery.items:
            metrics.spool_replayed.labels(name, self._signal).inc(recovery.items)
        if recovery.truncated_bytes:
            metrics.spool_truncated_bytes.labels(name).inc(recovery.truncated_bytes)
        self._log.info(
            "spool_opened",
            exporter=name,
            replaying_items=recovery.items,
            truncated_bytes=recovery.truncated_bytes,
            directory=str(spool.directory),
        )
        spool.load_oldest_unsent()
        metrics.spool_items.labels(name).set_function(lambda: spool.items)
        metrics.spool_bytes.labels(name).set_function(lambda: spool.bytes)
        metrics.spool_oldest_unsent_age.labels(name).set_function(lambda: _age_s(spool.oldest_known_ns()))
        metrics.storage_writable.labels(name).set_function(lambda: 0.0 if spool.problem else 1.0)
        dead_letters = self.dead_letters
        metrics.dead_letter_bytes.labels(name).set_function(lambda: dead_letters.stored_bytes)
        self._sender.start()
        self._open = self._started = True

    def _check_open(self) -> None:
        if not self._open:
            raise Backpressure(self.name, CLOSED_RETRY_AFTER_S)

    async def _append(self, records: Sequence[tuple[bytes, int]]) -> None:
        """Spool ``records`` durably; a full spool becomes ``Backpressure``."""
        self._check_open()
        try:
            await self.spool.append(records)
        except SpoolFull as full:
            items = sum(count for _, count in records)
            self._metrics.exporter_enqueue_failed.labels(self.name, self._signal).inc(items)
            if isinstance(full, SpoolUnavailable):  # logged once by _storage_changed
                raise Backpressure(self.name, STORAGE_RETRY_AFTER_S) from full
            if not self._full:
                self._log.warning("spool_full", exporter=self.name, detail=str(full))
                self._full = True
            raise Backpressure(self.name, FULL_RETRY_AFTER_S) from full
        self._full = False

    async def shutdown(self, deadline_s: float) -> None:
        """Stop intake, deliver until ``deadline_s``, keep the rest in the spool."""
        if not self._started:
            return
        self._open = self._started = False
        await self._sender.shutdown(deadline_s)
        await self.spool.close()


def _age_s(oldest_ns: int | None) -> float:
    return 0.0 if oldest_ns is None else max(0.0, (time.time_ns() - oldest_ns) / 1e9)
