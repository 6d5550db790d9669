"""The sender loop every spooling exporter shares: read a batch from the spool, deliver, commit.

One task per exporter, one request in flight, so Loki and Tempo never wait on each other. A
retryable failure waits per :class:`~otlp_enricher.exporter.retry.Backoff` (honouring the
server's retry-after) and sends the same batch again — forever by default, the spool being
bounded; a permanent failure (or a spent ``max_elapsed_s``) writes the batch to the dead-letter
file with the reason. Either way the spool is committed only after the batch is settled, so a
crash replays it (at-least-once). Memory holds one batch.

Exception tree of the transports (drawn here, raised nowhere else)::

    SendFailed                 — the attempt failed; ``retryable`` and ``retry_after_s`` say what next
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from otlp_enricher.config import RetryConfig
from otlp_enricher.exporter.deadletter import DeadLetterFile
from otlp_enricher.exporter.retry import Backoff
from otlp_enricher.exporter.spool import ReadBatch, Record, Spool
from otlp_enricher.telemetry.logging import get_logger
from otlp_enricher.telemetry.metrics import Metrics

_STEP_RETRY_S = 1.0


class SendFailed(Exception):
    """One delivery attempt failed: retry (after ``retry_after_s`` at least) or give up for good."""

    def __init__(self, reason: str, retryable: bool, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after_s = retry_after_s


class Transport(Protocol):
    """The backend side of an exporter: one batch of spooled records per call."""

    async def send(self, records: Sequence[Record]) -> None:
        """Deliver ``records``; raise :class:`SendFailed` when the backend did not take them."""

    def describe(self, records: Sequence[Record]) -> list[Any]:
        """``records`` as JSON-ready values for the dead-letter file."""

    async def close(self) -> None:
        """Release connections."""


@dataclass(frozen=True, slots=True)
class SenderSettings:
    """Batch bounds and retry policy of one sender."""

    max_records: int
    max_bytes: int
    linger_s: float
    retry: RetryConfig


class Sender:
    """Drains one spool into one transport."""

    def __init__(
        self,
        name: str,
        signal: str,
        spool: Spool,
        transport: Transport,
        dead_letters: DeadLetterFile,
        settings: SenderSettings,
        metrics: Metrics,
    ) -> None:
        self.name = name
        self._signal = signal
        self._spool = spool
        self._transport = transport
        self._dead_letters = dead_letters
        self._settings = settings
        self._sent = metrics.exporter_sent.labels(name, signal)
        self._failed = metrics.exporter_send_failed.labels(name, signal)
        self._retries = metrics.exporter_retries.labels(name)
        self._dead = metrics.exporter_dead_lettered.labels(name, signal)
        self._task: asyncio.Task[None] | None = None
        self._draining = False
        self._hurry = asyncio.Event()
        self._drained = asyncio.Event()
        self._log = get_logger(f"exporter.{name}")

    def start(self) -> None:
        """Start the loop (the spool must be open); it begins with what the last run left."""
        self._task = asyncio.create_task(self._run(), name=f"sender-{self.name}")

    async def _run(self) -> None:
        while True:
            try:
                await self._step()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug or a disk error must not end delivery for good
                self._log.exception("sender_failed", exporter=self.name, retry_in_s=_STEP_RETRY_S)
                self._spool.rewind()
                await self._pause(_STEP_RETRY_S)

    async def _step(self) -> None:
        spool = self._spool
        settings = self._settings
        if not spool.items:
            self._drained.set()
        await spool.wait_for_data()
        self._drained.clear()
        await self._linger()
        batch = await asyncio.to_thread(spool.read, settings.max_records, settings.max_bytes)
        if batch.records:
            await self._settle(batch)
            spool.commit(batch)
            spool.oldest_unsent_ns()

    async def _linger(self) -> None:
        """Let a batch fill up to ``linger_s`` unless it is already big enough or we are draining."""
        deadline = time.monotonic() + self._settings.linger_s
        while not self._draining and self._spool.unread_bytes() < self._settings.max_bytes:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not await self._spool.wait_for_more(remaining):
                return

    async def _settle(self, batch: ReadBatch) -> None:
        """Deliver ``batch`` or dead-letter it; returns only when it needs no more work."""
        backoff = Backoff(self._settings.retry)
        started = time.monotonic()
        items = batch.items
        while True:
            try:
                await self._transport.send(batch.records)
            except SendFailed as failure:
                self._failed.inc(items)
                if not failure.retryable:
                    await self._dead_letter(batch, failure.reason)
                    return
                delay = backoff.next_delay(failure.retry_after_s)
                if backoff.gives_up(time.monotonic() - started, delay):
                    await self._dead_letter(batch, f"retries exhausted; last failure: {failure.reason}")
                    return
                self._retries.inc()
                self._log.warning(
                    "export_failed",
                    exporter=self.name,
                    attempt=backoff.attempts,
                    retry_in_s=round(delay, 3),
                    reason=failure.reason,
                    items=items,
                )
                await self._pause(delay)
            else:
                self._sent.inc(items)
                if backoff.attempts:
                    self._log.info("export_recovered", exporter=self.name, attempts=backoff.attempts + 1)
                return

    async def _pause(self, delay_s: float) -> None:
        """Back off, unless shutdown asks for one prompt last attempt."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._hurry.wait(), delay_s)
        self._hurry.clear()

    async def _dead_letter(self, batch: ReadBatch, reason: str) -> None:
        records = self._transport.describe(batch.records)
        await self._dead_letters.write(self.name, reason, batch.items, records)
        self._dead.inc(batch.items)
        self._log.error("export_dead_lettered", exporter=self.name, reason=reason, items=batch.items)

    async def shutdown(self, deadline_s: float) -> None:
        """Deliver what the spool holds within ``deadline_s``; what is left stays for the next start."""
        self._draining = True
        self._hurry.set()
        task = self._task
        if task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._drained.wait()), max(0.0, deadline_s))
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self._task = None
        left = self._spool.items
        if left:
            self._log.warning("export_left_in_spool", exporter=self.name, items=left)
        await self._transport.close()
