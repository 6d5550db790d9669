"""The accept rule of the durable store: one byte budget shared by every exporter's spool.

Each exporter (Loki, Tempo) has its own spool and sender, so each drains at its backend's pace.
What they share is the disk: ``storage.max_spool_bytes`` is each exporter's share, the store as a
whole holds at most the sum of the shares, and a spool may borrow what the others do not use. So
a backend that is down or hanging fills its own spool — up to the whole store — while the other
keeps taking and delivering data; intake is refused only when the store as a whole is full.

When an append does not fit, exporters whose ``sending_queue.on_full`` is ``drop_oldest`` give up
their oldest unsent segments — the spool holding the most bytes first, never the segments its
sender is reading (a batch in flight is kept to an eighth of the store) — until it fits; each drop
is reported to the spool's owner (counted in ``otlp_enricher_exporter_dropped_total``, logged once
per episode: an episode ends when an append finds the store at most half full). If nothing may be
dropped (every exporter is ``backpressure``, the default), the append is refused with
:class:`~otlp_enricher.exporter.spool.SpoolFull`: the request is answered UNAVAILABLE + RetryInfo
and nothing acknowledged is lost.

Appends reserve their bytes before writing (:meth:`StorageBudget.reserve`, then
:meth:`~StorageBudget.release` once the spool counts them), so concurrent appends to different
spools cannot overshoot the budget together.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from otlp_enricher.exporter.config import OnFull
    from otlp_enricher.exporter.spool import Spool


DropListener = Callable[[int, int], None]
"""Called with (items, bytes) of each segment a ``drop_oldest`` spool gave up to make room."""
EndListener = Callable[[], None]
"""Called when the store is at most half full again after drops (the end of a dropping episode)."""


class StoreFull(Exception):
    """The store has no room for an append and nothing may be dropped to make some."""


@dataclass(slots=True)
class _Member:
    spool: Spool
    drop_oldest: bool
    on_drop: DropListener
    on_end: EndListener
    dropping: bool = False


class StorageBudget:
    """The bytes every spool of one process may hold together, and who yields when they are spent."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._members: list[_Member] = []
        self._reserved = 0
        self._dropping = False  # some spool dropped since the store was last at most half full

    def join(
        self,
        spool: Spool,
        on_full: OnFull = "backpressure",
        on_drop: DropListener = lambda items, size: None,
        on_end: EndListener = lambda: None,
    ) -> None:
        """Count ``spool`` against the budget; ``on_full`` says whether it yields data when full."""
        self._members.append(_Member(spool, on_full == "drop_oldest", on_drop, on_end))

    @property
    def used(self) -> int:
        """Unsent bytes of every spool, plus the bytes of appends being written."""
        return self._reserved + sum(member.spool.bytes for member in self._members)

    async def reserve(self, size: int) -> None:
        """Take ``size`` bytes for one append, dropping from ``drop_oldest`` spools if need be;
        raises :class:`StoreFull` when they cannot be had."""
        dropped = False
        spent: set[int] = set()  # members with nothing left to drop
        while self.used + size > self.max_bytes:
            victim = self._victim(spent)
            if victim is None:
                raise StoreFull(f"the spools hold {self.used} of {self.max_bytes} bytes; {size} more do not fit")
            # a drop once begun is finished and counted even if this append is cancelled meanwhile
            drop = asyncio.ensure_future(victim.spool.drop_oldest())
            drop.add_done_callback(functools.partial(self._dropped, victim))
            if await asyncio.shield(drop) is None:
                spent.add(id(victim))
                continue
            dropped = True
        self._reserved += size
        if self._dropping and not dropped and self.used <= self.max_bytes // 2:
            self._dropping = False
            for member in self._members:
                if member.dropping:
                    member.dropping = False
                    member.on_end()

    def _dropped(self, member: _Member, drop: asyncio.Future[tuple[int, int] | None]) -> None:
        if drop.cancelled() or drop.exception() is not None:
            return
        freed = drop.result()
        if freed is not None:
            member.dropping = self._dropping = True
            member.on_drop(*freed)

    def release(self, size: int) -> None:
        """Give back a reservation (the append was written and is counted by its spool, or failed)."""
        self._reserved -= size

    def _victim(self, spent: set[int]) -> _Member | None:
        candidates = [m for m in self._members if m.drop_oldest and id(m) not in spent and m.spool.bytes]
        return max(candidates, key=lambda m: m.spool.bytes, default=None)
