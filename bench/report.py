"""The benchmark's markdown: medians over rounds per system and request shape, memory, ratios."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from bench.systems import System
from bench.workload import RequestShape

if TYPE_CHECKING:
    from bench.compare import MemoryMeasure, ShapeMeasure

#: The Collector config each otlp-enricher setup is compared with (same outputs).
COUNTERPART = {"enricher-local": "collector-file", "enricher-loki-tempo": "collector-otlp"}
LOADER_BOUND_CORES = 0.9


def _median(values: Sequence[float]) -> float:
    clean = [value for value in values if not math.isnan(value)]
    return statistics.median(clean) if clean else float("nan")


def rate(spans_per_s: float) -> str:
    """E.g. ``72k``, ``9.2k``, ``850``."""
    if math.isnan(spans_per_s):
        return "–"
    if spans_per_s >= 10_000:
        return f"{spans_per_s / 1000:.0f}k"
    if spans_per_s >= 1000:
        return f"{spans_per_s / 1000:.1f}k"
    return f"{spans_per_s:.0f}"


def cpu(value: float) -> str:
    """CPU-seconds per 10k spans with three significant digits."""
    return "–" if math.isnan(value) else f"{value:.3g}"


def ms(value: float) -> str:
    """Milliseconds, one decimal below 100."""
    if math.isnan(value):
        return "–"
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _reasons(errors: dict[str, int]) -> str:
    return " (" + ", ".join(f"{count} {name}" for name, count in errors.items()) + ")" if errors else ""


def shape_line(measure: ShapeMeasure) -> str:
    """One progress line while the run goes."""
    lat = measure.latency_ms
    return (
        f"{cpu(measure.cpu_s_per_10k)} CPU-s/10k, {rate(measure.spans_per_s)} spans/s, "
        f"{measure.refused_calls} refused{_reasons(measure.errors)}; "
        f"p50/p99 @50% {ms(lat['50%']['p50'])}/{ms(lat['50%']['p99'])} ms, "
        f"@80% {ms(lat['80%']['p50'])}/{ms(lat['80%']['p99'])} ms; load process {measure.loader_cores:.2f} cores"
    )


def memory_line(memory: MemoryMeasure) -> str:
    """One progress line for the overload phase."""
    return (
        f"RSS {memory.rss_steady_mib:.0f} → {memory.rss_after_overload_mib:.0f} MiB "
        f"(peak {memory.peak_rss_mib:.0f}), {rate(memory.overload_spans_per_s)} of "
        f"{rate(memory.overload_offered_spans_per_s)} spans/s offered taken, "
        f"{memory.overload_refused_calls} refused{_reasons(memory.overload_errors)}, "
        f"{memory.overload_late_calls} not sent (client cap)"
    )


def _rows(measures: Sequence[ShapeMeasure], system: str, shape: str) -> list[ShapeMeasure]:
    return [m for m in measures if m.system == system and m.shape == shape]


def _cpu_cell(rows: Sequence[ShapeMeasure]) -> str:
    values = [row.cpu_s_per_10k for row in rows]
    if len(values) < 2:
        return cpu(_median(values))
    return f"{cpu(_median(values))} ({cpu(min(values))}–{cpu(max(values))})"


def _latency_cell(rows: Sequence[ShapeMeasure], load: str) -> str:
    p50 = _median([row.latency_ms[load]["p50"] for row in rows])
    p99 = _median([row.latency_ms[load]["p99"] for row in rows])
    refused = sum(int(row.latency_ms[load]["refused"]) for row in rows)
    return f"{ms(p50)} / {ms(p99)}" + (f" ({refused} refused)" if refused else "")


def render(
    info: dict[str, Any],
    systems: Sequence[System],
    shapes: Sequence[RequestShape],
    measures: Sequence[ShapeMeasure],
    memories: Sequence[MemoryMeasure],
    notes: Sequence[str],
) -> str:
    """The whole report as markdown."""
    settings = info["settings"]
    load_start = ", ".join(f"{value:.2f}" for value in info["load_average_start"])
    load_end = ", ".join(f"{value:.2f}" for value in info["load_average_end"])
    lines = [
        "# otlp-enricher and the OpenTelemetry Collector, side by side",
        "",
        f"Commit `{info['commit']}`, finished {info['finished_utc']}, {info['duration_s'] / 60:.1f} min. "
        f"Command: `{info['command']}`.",
        f"Machine: {info['nproc']} cores ({info['usable_cores']} usable), {info['cpu_model']}, "
        f"Linux {info['kernel']}, Python {info['python']}. Load average at start {load_start}, at end {load_end} "
        "(above ~0 means other work shared the machine).",
        f"{settings['rounds']} round(s), systems alternating; per shape: {settings['warmup_s']:g} s warm-up, "
        f"{settings['saturation_s']:g} s at saturation ({settings['concurrency']} calls in flight over "
        f"{settings['connections']} connections), {settings['latency_s']:g} s open-loop at 50 % and 80 % of it.",
    ]
    if info.get("enricher_set"):
        lines.append(f"otlp-enricher config additions: `{' '.join(info['enricher_set'])}`.")
    lines += [
        "",
        "CPU-s / 10k spans: CPU of the process tree under test per 10 000 spans accepted at saturation "
        "(median over rounds, min–max in brackets). Export p50 / p99 in ms, open-loop. "
        "Collector ÷ this: the Collector config with the same outputs, CPU per span.",
        "",
        "| system | request | CPU-s / 10k spans | spans/s at saturation | refused | "
        "p50 / p99 @ 50 % | p50 / p99 @ 80 % | Collector ÷ this |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for system in systems:
        for shape in shapes:
            rows = _rows(measures, system.key, shape.label)
            if not rows:
                continue
            ratio = ""
            if system.key in COUNTERPART:
                theirs = _median([r.cpu_s_per_10k for r in _rows(measures, COUNTERPART[system.key], shape.label)])
                ours = _median([r.cpu_s_per_10k for r in rows])
                ratio = "–" if math.isnan(theirs) or not ours else f"{theirs / ours:.2f}"
            lines.append(
                f"| {system.label} | {shape.label} | {_cpu_cell(rows)} | "
                f"{rate(_median([r.spans_per_s for r in rows]))} | {sum(r.refused_calls for r in rows)} | "
                f"{_latency_cell(rows, '50%')} | {_latency_cell(rows, '80%')} | {ratio} |"
            )
    if memories:
        lines += [
            "",
            f"Memory (VmRSS summed over the process tree): steady after the shapes above, then right after "
            f"{settings['overload_s']:g} s offered {settings['overload_factor']:g} × saturation "
            f"({shapes[0].label}), open-loop.",
            "",
            "| system | RSS steady | RSS after overload | peak RSS | taken / offered during overload | refused |",
            "|---|---|---|---|---|---|",
        ]
        by_key = {system.key: system for system in systems}
        for memory in memories:
            lines.append(
                f"| {by_key[memory.system].label} | {memory.rss_steady_mib:.0f} MiB | "
                f"{memory.rss_after_overload_mib:.0f} MiB | {memory.peak_rss_mib:.0f} MiB | "
                f"{rate(memory.overload_spans_per_s)} / {rate(memory.overload_offered_spans_per_s)} spans/s | "
                f"{memory.overload_refused_calls} |"
            )
    bound = sorted({m.system for m in measures if m.loader_cores > LOADER_BOUND_CORES})
    all_notes = list(notes)
    if bound:
        all_notes.append(
            "the load process used over 0.9 of a core at saturation for "
            + ", ".join(bound)
            + ": their spans/s may be bounded by the load process, not the server (CPU per span is not)"
        )
    if all_notes:
        lines += ["", "Notes:", *(f"- {note}" for note in all_notes)]
    return "\n".join(lines) + "\n"
