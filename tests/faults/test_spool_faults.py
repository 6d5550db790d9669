"""Every spool syscall × EBADF/ENOSPC/EIO/EROFS: the spool keeps working or refuses cleanly, recovers
once the fault clears, and loses nothing it acknowledged — also across a crash and restart.

A fault-free run of the workload counts the calls of each operation; the walk then arms a fault at
a spread of those calls (first, second, middle, last…), transient (one call fails) or sticky (every
call fails until cleared, like a full disk), or on every operation at once from the Nth call on
(``*``: a disk remounted read-only, where a failed write cannot be cut back either). Each run: the
workload under the fault, then the fault cleared, then more appends that must all succeed, a
drain, a simulated crash and a reopen; every acknowledged payload must be delivered or come back.
"""

from __future__ import annotations

import asyncio
import errno
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from otlp_enricher.exporter.fileops import REAL_FILE_OPS, FileOps
from otlp_enricher.exporter.spool import Spool, SpoolFull, SpoolUnavailable
from tests.doubles import crash
from tests.faults.fileops import FaultyOps

ERRNOS = (errno.EBADF, errno.ENOSPC, errno.EIO, errno.EROFS)
SEGMENT_BYTES = 200  # a rotation every few records
RUN_TIMEOUT_S = 5.0  # a wedged spool (an await that never ends) fails here instead of hanging


@dataclass
class Ledger:
    """What the upstream was told and what the backend got."""

    acked: set[bytes] = field(default_factory=set)
    delivered: set[bytes] = field(default_factory=set)
    refused: int = 0
    seen: set[bytes] = field(default_factory=set)  # every payload ever offered


async def _round(spool: Spool, ledger: Ledger, tag: str, index: int, expect_ok: bool) -> None:
    """Three concurrent appends (a group commit), then every other round a read + commit."""
    payloads = [f"{tag}-{index}-{n}".encode() * 2 for n in range(3)]
    ledger.seen.update(payloads)
    results = await asyncio.gather(*(spool.append([(p, 1)]) for p in payloads), return_exceptions=True)
    for payload, result in zip(payloads, results, strict=True):
        if result is None:
            ledger.acked.add(payload)
        elif isinstance(result, SpoolFull):  # the only refusal the receiver may see
            assert not expect_ok, f"append refused after the fault cleared: {result}"
            ledger.refused += 1
        else:
            raise AssertionError(f"append raised {type(result).__name__}: {result}") from result
    if index % 2:
        await _deliver(spool, ledger, max_records=4, expect_ok=expect_ok)


async def _deliver(spool: Spool, ledger: Ledger, max_records: int, expect_ok: bool) -> None:
    try:
        batch = await asyncio.to_thread(spool.read, max_records, 1 << 20)
    except OSError:
        assert not expect_ok
        spool.rewind()  # what the sender does
        return
    payloads = [record.payload for record in batch.records]
    assert set(payloads) <= ledger.seen, "read returned bytes nobody appended"
    ledger.delivered.update(payloads)
    await spool.commit_async(batch)  # never raises: a failed commit record is a state


async def _scenario(directory: Path, ops: FileOps, fsync: str, fault: tuple[str, int, int, bool] | None) -> Ledger:
    spool = Spool(directory, 1 << 20, fsync, SEGMENT_BYTES, ops=ops)
    spool.open()
    ledger = Ledger()
    for index in range(3):
        await _round(spool, ledger, "before", index, expect_ok=True)
    if fault is not None:
        assert isinstance(ops, FaultyOps)
        op, error, nth, sticky = fault
        ops.arm(op, error, nth, sticky)
    for index in range(8):
        await _round(spool, ledger, "during", index, expect_ok=False)
    if isinstance(ops, FaultyOps):
        ops.clear()
    await asyncio.to_thread(spool.heal)  # what the sender does once a second while a problem is set
    for index in range(4):
        await _round(spool, ledger, "after", index, expect_ok=True)
    assert spool.problem is None, spool.problem
    while spool.items:
        before = len(ledger.delivered)
        await _deliver(spool, ledger, max_records=5, expect_ok=True)
        assert len(ledger.delivered) > before or not spool.items, "drain made no progress"
    assert spool.items == 0 and spool.bytes == 0
    for index in range(2):  # left unsent at the crash
        await _round(spool, ledger, "crash", index * 2, expect_ok=True)
    crash(spool)
    return ledger


def _run(directory: Path, ops: FileOps, fsync: str, fault: tuple[str, int, int, bool] | None) -> Ledger:
    async def bounded() -> Ledger:
        return await asyncio.wait_for(_scenario(directory, ops, fsync, fault), RUN_TIMEOUT_S)

    ledger = asyncio.run(bounded())
    again = Spool(directory, 1 << 20, fsync, SEGMENT_BYTES, ops=FaultyOps())  # never armed
    again.open()
    replayed = {record.payload for record in again.read(1_000_000, 1 << 30).records}
    crash(again)
    lost = ledger.acked - ledger.delivered - replayed
    assert not lost, f"acknowledged and lost: {sorted(lost)[:5]}"
    assert replayed <= ledger.seen
    return ledger


def _baseline(tmp_path: Path, fsync: str) -> dict[str, int]:
    ops = FaultyOps()
    _run(tmp_path / f"baseline-{fsync}", ops, fsync, None)
    return dict(ops.calls)


def _positions(count: int) -> list[int]:
    """Which calls of an operation to fail: the first few, the middle, the last."""
    return sorted({1, 2, 3, count // 4, count // 2, count} & set(range(1, count + 1)))


# ``fsync: always`` takes other paths only around fsync: a transient EIO and a sticky ENOSPC there
# cover them; ``batch`` (the default) gets the whole product.
FAULT_KINDS = {
    "batch": [(error, sticky) for error in ERRNOS for sticky in (False, True)],
    "always": [(errno.EIO, False), (errno.ENOSPC, True)],
}


@pytest.mark.parametrize("fsync", ["batch", "always"])
def test_every_spool_syscall_and_errno(tmp_path: Path, fsync: str) -> None:
    """For each syscall the workload makes and each errno, transient and sticky: no wedge, only
    ``SpoolFull`` refusals, appends succeed again once the fault clears, nothing acknowledged lost."""
    calls = _baseline(tmp_path, fsync)
    # the "during" phase makes about the same calls as the whole baseline: spread the faults over it
    runs = injected = refused = 0
    for op in sorted(calls):
        for nth in _positions(calls[op]):
            for error, sticky in FAULT_KINDS[fsync] if op != "*" else [(e, True) for e in ERRNOS]:
                ops = FaultyOps()
                directory = tmp_path / f"{op}-{nth}-{errno.errorcode[error]}-{sticky}"
                ledger = _run(directory, ops, fsync, (op, error, nth, sticky))
                runs += 1
                injected += sum(ops.injected.values())
                refused += ledger.refused
    assert {"open", "write", "fsync", "pwrite", "pread", "dup", "close", "unlink"} <= set(calls)
    assert injected >= runs // 2  # most armed faults were actually hit (the rest fell past the run)
    assert refused > 0
    print(f"\n{fsync}: {runs} fault runs over {len(calls)} operations, {injected} faults hit, {refused} refused")


def test_a_failed_group_commit_is_replaced_not_awaited_forever(tmp_path: Path) -> None:
    """The wedge of issue 10: a sync task that fails (EBADF from dup) fails its waiters once; the next
    append starts a new one and is acknowledged."""
    ops = FaultyOps()
    spool = Spool(tmp_path, 1 << 20, "batch", ops=ops)
    spool.open()

    async def scenario() -> None:
        ops.arm("dup", errno.EBADF)
        with pytest.raises(SpoolUnavailable) as refused:
            await spool.append([(b"first", 1)])
        assert refused.value.error.errno_name == "EBADF" and spool.problem is not None
        await asyncio.wait_for(spool.append([(b"second", 1)]), 2.0)
        assert spool.problem is None
        await spool.close()

    asyncio.run(scenario())
    assert [r.payload for r in Spool(tmp_path, 1 << 20, "batch").read(10, 1 << 20).records] == []
    again = Spool(tmp_path, 1 << 20, "batch")
    again.open()
    assert b"second" in {r.payload for r in again.read(10, 1 << 20).records}


def test_the_commit_record_is_written_in_place_on_a_full_disk(tmp_path: Path) -> None:
    """Committing needs no new blocks: with every open (hence every new file) failing ENOSPC, commits
    still reach the disk, and the committed position moves only when its record is durable."""
    ops = FaultyOps()
    spool = Spool(tmp_path, 1 << 20, "batch", ops=ops)
    spool.open()

    async def scenario() -> None:
        await spool.append([(b"one", 1), (b"two", 1)])
        first, second = spool.read(1, 1 << 20), spool.read(1, 1 << 20)
        ops.arm("open", errno.ENOSPC, sticky=True)
        await spool.commit_async(first)
        assert spool.problem is None
        ops.arm("fsync", errno.ENOSPC, sticky=True)
        await spool.commit_async(second)
        assert spool.problem is not None and "commit" in spool.problem
        ops.clear()
        await asyncio.to_thread(spool.heal)
        assert spool.problem is None

    asyncio.run(scenario())
    crash(spool)
    again = Spool(tmp_path, 1 << 20, "batch", ops=REAL_FILE_OPS)
    assert again.open().items == 0  # both commits durable: nothing to replay
