"""The durable store's accept rule: spools share one byte budget; ``drop_oldest`` yields, counted."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from otlp_enricher.config import parse_config
from otlp_enricher.confignode import ConfigError
from otlp_enricher.exporter.budget import StorageBudget
from otlp_enricher.exporter.spool import Spool, SpoolFull
from otlp_enricher.exporter.spoolformat import HEADER_BYTES
from tests.faults.fileops import FaultyOps

PAYLOAD = 100
FRAME = HEADER_BYTES + PAYLOAD
SHARE = 10 * FRAME  # each spool's share; the store holds two shares
SEGMENT = 2 * FRAME + 10  # two frames per segment


def _spool(directory: Path, budget: StorageBudget) -> Spool:
    spool = Spool(directory, SHARE, "never", SEGMENT, budget=budget)
    spool.open()
    return spool


def _record(index: int) -> list[tuple[bytes, int]]:
    return [(f"{index:06d}".encode().ljust(PAYLOAD, b"."), 1)]


def _index(payload: bytes) -> int:
    return int(payload[:6])


def test_a_lagging_spool_borrows_the_other_share_and_then_the_store_refuses(tmp_path: Path) -> None:
    """Both ``backpressure``: one spool that is never drained takes more than its share (up to the
    whole store), then every append is refused — the healthy spool's too — until space is freed."""
    budget = StorageBudget(2 * SHARE)
    lagging, healthy = _spool(tmp_path / "tempo", budget), _spool(tmp_path / "loki", budget)
    budget.join(lagging)
    budget.join(healthy)

    async def scenario() -> tuple[int, bool, bool]:
        taken = 0
        with pytest.raises(SpoolFull):
            while True:
                await lagging.append(_record(taken))
                taken += 1
        refused = False
        try:
            await healthy.append(_record(0))
        except SpoolFull:
            refused = True
        batch = lagging.read(1, 1 << 20)
        lagging.commit(batch)
        await healthy.append(_record(0))  # the room the lagging one freed
        return taken, refused, True

    taken, refused, later = asyncio.run(scenario())
    assert taken == 2 * SHARE // FRAME  # the whole store, twice its own share
    assert refused and later
    assert lagging.bytes + healthy.bytes <= 2 * SHARE


def test_drop_oldest_keeps_the_other_spool_taking_and_counts_exactly_what_it_lost(tmp_path: Path) -> None:
    """The lagging spool is ``drop_oldest`` and its sender holds one batch in flight: the healthy
    spool never gets refused; whole unsent segments after the one being read go, oldest first; the
    records read back later are all the others, and the drops counted are exactly the missing ones."""
    budget = StorageBudget(2 * SHARE)
    lagging, healthy = _spool(tmp_path / "tempo", budget), _spool(tmp_path / "loki", budget)
    drops: list[tuple[int, int]] = []
    ended: list[bool] = []
    budget.join(lagging, "drop_oldest", lambda items, size: drops.append((items, size)), lambda: ended.append(True))
    budget.join(healthy)
    appended = 200

    async def scenario() -> list[int]:
        await lagging.append(_record(0))
        in_flight = lagging.read(1, 1 << 20)  # the hung backend's batch: its segment is never dropped
        for index in range(1, appended):
            await lagging.append(_record(index))
            await healthy.append(_record(index))
            healthy.commit(healthy.read(10, 1 << 20))  # Loki keeps up
            assert lagging.bytes + healthy.bytes <= 2 * SHARE
        lagging.commit(in_flight)
        rest = lagging.read(10_000, 1 << 30)
        return [_index(r.payload) for r in in_flight.records + rest.records]

    delivered = asyncio.run(scenario())
    dropped_items = sum(items for items, _ in drops)
    missing = sorted(set(range(appended)) - set(delivered))
    assert dropped_items == len(missing) > 0
    assert sum(size for _, size in drops) == dropped_items * FRAME
    assert delivered == sorted(delivered)  # order kept
    assert missing == list(range(missing[0], missing[-1] + 1))  # one run: the oldest after the one in flight
    assert delivered[:2] == [0, 1]  # the segment being read stayed whole
    assert not ended  # every append of the lagging spool still needed a drop

    again = Spool(tmp_path / "tempo", SHARE, "never", SEGMENT)
    again.open()
    replayed = [_index(r.payload) for r in again.read(10_000, 1 << 30).records]
    assert not set(replayed) & set(missing)  # a dropped segment never comes back after a restart


def test_drops_end_when_an_append_fits_again(tmp_path: Path) -> None:
    """Once the lagging spool drains, appends fit without dropping and the episode is reported ended."""
    budget = StorageBudget(2 * SHARE)
    lagging = _spool(tmp_path / "tempo", budget)
    ended: list[bool] = []
    budget.join(lagging, "drop_oldest", lambda items, size: None, lambda: ended.append(True))

    async def scenario() -> None:
        await lagging.append(_record(0))
        in_flight = lagging.read(1, 1 << 20)
        for index in range(1, 40):
            await lagging.append(_record(index))
        lagging.commit(in_flight)
        lagging.commit(lagging.read(10_000, 1 << 30))
        await lagging.append(_record(99))

    asyncio.run(scenario())
    assert ended == [True]


def test_on_full_is_validated_with_its_key_path(tmp_path: Path) -> None:
    """A policy the sidecar does not know is refused at start, naming the key and the choices."""
    text = f"""
exporters:
  tempo: {{endpoint: 'localhost:4317', sending_queue: {{on_full: drop_newest}}}}
  loki: {{endpoint: 'http://localhost:3100/loki/api/v1/push', sending_queue: {{size: 3}}}}
storage: {{directory: '{tmp_path}'}}
"""
    with pytest.raises(ConfigError) as raised:
        parse_config(text, "test.yaml", {})
    assert raised.value.problems == [
        "exporters.loki.sending_queue.size: unknown key",
        "exporters.tempo.sending_queue.on_full: expected one of backpressure, drop_oldest, got 'drop_newest'",
    ]
    good = parse_config(text.replace("drop_newest", "drop_oldest").replace("size: 3", ""), "test.yaml", {})
    assert good.exporters.tempo is not None and good.exporters.tempo.sending_queue.on_full == "drop_oldest"
    assert good.exporters.loki is not None and good.exporters.loki.sending_queue.on_full == "backpressure"


def test_an_append_cancelled_during_a_drop_still_counts_the_drop(tmp_path: Path) -> None:
    """A request cancelled (client deadline) while its append waits for a drop: the drop finishes,
    is counted, and the spool's byte count stays what its files hold, so the budget never leaks."""
    budget = StorageBudget(2 * SHARE)
    ops = FaultyOps()
    unlink = ops.hold("unlink")  # the drop is under way while the test cancels
    lagging = Spool(tmp_path / "tempo", SHARE, "never", SEGMENT, ops=ops, budget=budget)
    lagging.open()
    drops: list[tuple[int, int]] = []
    budget.join(lagging, "drop_oldest", lambda items, size: drops.append((items, size)))

    async def scenario() -> None:
        await lagging.append(_record(0))
        lagging.read(1, 1 << 20)
        index = 1
        while budget.used + FRAME <= budget.max_bytes:
            await lagging.append(_record(index))
            index += 1
        append = asyncio.ensure_future(lagging.append(_record(index)))
        await asyncio.to_thread(unlink.entered.wait, 10)
        append.cancel()
        unlink.released.set()
        with pytest.raises(asyncio.CancelledError):
            await append
        for _ in range(500):  # the shielded drop finishes on the loop (bounded wait)
            if drops:
                break
            await asyncio.sleep(0.01)

    asyncio.run(scenario())
    assert drops == [(2, 2 * FRAME)]
    on_disk = sum(path.stat().st_size for path in (tmp_path / "tempo").glob("*.wal"))
    assert lagging.bytes == on_disk  # unsent = what the files hold (the batch read is not committed)
    assert budget.used == lagging.bytes
