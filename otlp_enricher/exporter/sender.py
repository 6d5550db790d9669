"""The sender loop every spooling exporter shares: read a batch from the spool, deliver, commit.

One task per exporter, one request in flight, so Loki and Tempo never wait on each other. A
retryable failure waits per :class:`~otlp_enricher.exporter.retry.Backoff` (honouring the
server's retry-after) and sends the same batch again — forever by default, the spool being
bounded; a permanent failure (or a spent ``max_elapsed_s``) writes the batch to the dead-letter
file with the reason. A permanent failure the transport marks ``splittable`` (Loki's 400/413: one
bad line refuses the whole push) is bisected to isolate the refused records — within a budget of
two requests per record, or ``MAX_SPLIT_REQUESTS`` after a batch was refused whole (a backend that
refuses everything) —; the rest is delivered, what the budget could not isolate dead-lettered. A partial success
(``rejected_items``: the backend took the others) is dead-lettered with the rejected count and not
re-sent. Either way the spool is committed only after the batch is settled, so a crash replays it
(at-least-once). A dead letter that cannot be written (disk full) is retried, without re-sending,
until it is. Memory holds one batch.

Exception tree of the transports (drawn here, raised nowhere else)::

    SendFailed                 — the attempt failed; ``retryable`` and ``retry_after_s`` say what
                                 next, ``splittable`` whether halves may pass, ``rejected_items``
                                 how many of the items a partial success refused
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from otlp_enricher.exporter.config import RetryConfig
from otlp_enricher.exporter.deadletter import DeadLetterFile
from otlp_enricher.exporter.retry import Backoff
from otlp_enricher.exporter.spool import Spool
from otlp_enricher.exporter.spoolformat import Record
from otlp_enricher.telemetry.logging import get_logger
from otlp_enricher.telemetry.metrics import Metrics

_STEP_RETRY_S = 1.0
MAX_SPLIT_REQUESTS = 64
"""Extra requests a batch may spend bisecting a splittable refusal after the previous batch was
refused whole; otherwise twice its records (enough to isolate every bad one)."""


class SendFailed(Exception):
    """One delivery attempt failed: retry (after ``retry_after_s`` at least) or give up for good."""

    def __init__(
        self,
        reason: str,
        retryable: bool,
        retry_after_s: float | None = None,
        *,
        splittable: bool = False,
        rejected_items: int | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after_s = retry_after_s
        self.splittable = splittable
        self.rejected_items = rejected_items


@dataclass(slots=True)
class _Refused:
    """Records to dead-letter, why, and how many of their items the backend refused."""

    records: Sequence[Record]
    reason: str
    items: int


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
        self._all_refused = False
        self._hurry = asyncio.Event()
        self._drained = asyncio.Event()
        self._log = get_logger(f"exporter.{name}")

    def start(self) -> None:
        """Start the loop (the spool must be open); it begins with what the last run left."""
        self._task = asyncio.create_task(self._run(), name=f"sender-{self.name}")

    async def _run(self) -> None:
        storage_failing = False
        while True:
            try:
                await self._step()
            except asyncio.CancelledError:
                raise
            except OSError as error:  # the spool cannot be read: a storage state, logged once
                if not storage_failing:
                    self._log.warning("spool_read_failed", exporter=self.name, error=str(error))
                storage_failing = True
                self._spool.rewind()
                await self._pause(_STEP_RETRY_S)
                continue
            except Exception:  # a bug must not end delivery for good
                self._log.exception("sender_failed", exporter=self.name, retry_in_s=_STEP_RETRY_S)
                self._spool.rewind()
                await self._pause(_STEP_RETRY_S)
                continue
            if storage_failing:
                self._log.info("spool_read_recovered", exporter=self.name)
                storage_failing = False

    async def _step(self) -> None:
        spool = self._spool
        settings = self._settings
        if spool.problem is not None:
            await asyncio.to_thread(spool.heal)
        if not spool.items:
            self._drained.set()
        if not await spool.wait_for_data(_STEP_RETRY_S if spool.problem is not None else None):
            return
        self._drained.clear()
        await self._linger()
        batch = await asyncio.to_thread(spool.read, settings.max_records, settings.max_bytes)
        if batch.records:
            refused: list[_Refused] = []
            # enough requests to isolate every bad record, unless the last batch was refused whole
            # (a backend refusing everything must not cost two requests per record)
            budget = MAX_SPLIT_REQUESTS if self._all_refused else max(MAX_SPLIT_REQUESTS, 2 * len(batch.records))
            await self._settle(batch.records, refused, [budget])
            self._all_refused = sum(part.items for part in refused) == batch.items > 1
            if refused:
                await self._dead_letter(refused)
            await spool.commit_async(batch)
            spool.load_oldest_unsent()

    async def _linger(self) -> None:
        """Let a batch fill up to ``linger_s`` unless it is already big enough or we are draining."""
        deadline = time.monotonic() + self._settings.linger_s
        while not self._draining and self._spool.unread_bytes() < self._settings.max_bytes:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not await self._spool.wait_for_more(remaining):
                return

    async def _settle(self, records: Sequence[Record], refused: list[_Refused], budget: list[int]) -> None:
        """Deliver ``records``, or add what the backend refused for good to ``refused``; returns only
        when they need no more sending. ``budget`` (one shared counter) bounds the bisection."""
        backoff = Backoff(self._settings.retry)
        started = time.monotonic()
        items = sum(record.items for record in records)
        while True:
            try:
                await self._transport.send(records)
            except SendFailed as failure:
                self._failed.inc(items)
                if not failure.retryable:
                    if failure.splittable and len(records) > 1 and budget[0] >= 2:
                        budget[0] -= 2
                        half = len(records) // 2
                        await self._settle(records[:half], refused, budget)
                        await self._settle(records[half:], refused, budget)
                        return
                    rejected = items if failure.rejected_items is None else min(items, failure.rejected_items)
                    if rejected < items:
                        self._sent.inc(items - rejected)
                    refused.append(_Refused(records, failure.reason, rejected))
                    return
                delay = backoff.next_delay(failure.retry_after_s)
                if backoff.gives_up(time.monotonic() - started, delay):
                    refused.append(_Refused(records, f"retries exhausted; last failure: {failure.reason}", items))
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

    async def _dead_letter(self, refused: list[_Refused]) -> None:
        """Write every refused part (retrying, never re-sending, while the disk refuses); log once."""
        for part in refused:
            records = self._transport.describe(part.records)
            failing = False
            while True:
                try:
                    await self._dead_letters.write(self.name, part.reason, part.items, records)
                    break
                except OSError as error:
                    if not failing:
                        self._log.warning("dead_letter_write_failed", exporter=self.name, error=str(error))
                    failing = True
                    await self._pause(_STEP_RETRY_S)
            self._dead.inc(part.items)
        self._log.error(
            "export_dead_lettered",
            exporter=self.name,
            reason=refused[0].reason,
            items=sum(part.items for part in refused),
            parts=len(refused),
        )

    async def shutdown(self, deadline_s: float) -> None:
        """Deliver what the spool holds within ``deadline_s``; what is left stays for the next start."""
        self._draining = True
        self._hurry.set()
        task = self._task
        if task is not None:
            drained = asyncio.ensure_future(self._drained.wait())
            await asyncio.wait({drained}, timeout=max(0.0, deadline_s))
            drained.cancel()  # not left pending on a closed loop
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self._task = None
        left = self._spool.items
        if left:
            self._log.warning("export_left_in_spool", exporter=self.name, items=left)
        await self._transport.close()
