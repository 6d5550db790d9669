"""CPU time and memory of a process and all its descendants, read from Linux ``/proc``.

CPU is ``utime + stime + cutime + cstime`` of ``/proc/<pid>/stat`` summed over the live process
tree: a worker that is still running counts through its own fields, one that has exited and
been reaped through its parent's ``cutime``/``cstime`` (proc(5)), so a multi-process server
counts right either way. Memory is ``VmRSS`` summed over the tree (pages shared between
processes count once per process) and the largest ``VmHWM`` in it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class TreeSample:
    """One reading of a process tree."""

    cpu_s: float
    rss_bytes: int
    peak_rss_bytes: int
    processes: int


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (field 3 onwards); None if gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name is in parentheses and may itself contain spaces or parentheses.
    return text[text.rindex(")") + 2 :].split()


def process_cpu_s(pid: int) -> float:
    """utime + stime + cutime + cstime of one process, in seconds (0 if it has gone)."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    # proc(5): utime (14), stime (15), cutime (16), cstime (17); fields[0] is field 3 (state).
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / CLOCK_TICKS_PER_S


def descendants(root: int) -> list[int]:
    """``root`` and every live process below it (found by parent pid; order: root first)."""
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, ()))
    return tree


def _status_kib(pid: int, field: str) -> int:
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def sample_tree(root: int) -> TreeSample:
    """CPU seconds and memory of ``root`` and its descendants now."""
    tree = descendants(root)
    return TreeSample(
        cpu_s=sum(process_cpu_s(pid) for pid in tree),
        rss_bytes=sum(_status_kib(pid, "VmRSS") for pid in tree) * 1024,
        peak_rss_bytes=max((_status_kib(pid, "VmHWM") for pid in tree), default=0) * 1024,
        processes=len(tree),
    )
