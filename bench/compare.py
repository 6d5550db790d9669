"""otlp-enricher and the real OpenTelemetry Collector side by side, on one machine, in one command.

    .venv/bin/python -m bench.compare            # full run (~25 min on 2 cores)
    .venv/bin/python -m bench.compare --quick    # smoke run (< 2 min)

Each system under test (``bench/systems.py``) runs as its own process; a separate load process
(``bench/load.py``) drives it over OTLP/gRPC with requests built from recorded instrumentation
spans (``bench/workload.py``): 100 and 1 000 spans per request, 80 % and 20 % LLM calls, every
trace id and prompt unique. Systems alternate over rounds (the order rotates each round), and
per system and request shape the run measures:

* CPU-seconds per 10 000 spans of the process under test — ``/proc`` utime + stime summed over
  its process tree, from the start of a saturation phase until the process is idle again, so
  work it does after answering (exports, spools) is counted;
* spans/s at saturation (``--concurrency`` calls always in flight) and how many were refused;
* Export p50/p99 at 50 % and 80 % of that saturation, open-loop at a fixed rate;
* RSS when steady and after an overload phase at ``--overload-factor`` × saturation
  (``--overload-s`` long, once per system, in the last round).

The table is printed and written to ``bench/results/latest.md`` (raw figures in ``latest.json``).
The Collector is the one ``collector/build.sh`` builds; the benchmark never builds it unless
``--build`` is given.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import report
from bench.load import Phase, PhaseResult, serve_commands
from bench.procstat import sample_tree
from bench.systems import BY_KEY, SYSTEMS, Running, Sink, System, collector_binary, remove, start, start_sink
from bench.workload import RequestShape

RESULTS_DIR = Path(__file__).resolve().parent / "results"
IDLE_CORES = 0.05  # a process using less than this share of a core is idle
IDLE_WINDOW_S = 0.25
SHAPES = (RequestShape(100, 0.8), RequestShape(1000, 0.8), RequestShape(100, 0.2), RequestShape(1000, 0.2))
QUICK_SHAPES = (RequestShape(100, 0.8), RequestShape(1000, 0.2))


@dataclass
class Settings:
    """Durations and sizes of one run (``--quick`` shortens them all)."""

    rounds: int
    shapes: tuple[RequestShape, ...]
    warmup_s: float
    saturation_s: float
    latency_s: float
    overload_s: float
    overload_factor: float
    concurrency: int
    connections: int
    idle_timeout_s: float


@dataclass
class ShapeMeasure:
    """One system, one round, one request shape."""

    system: str
    round: int
    shape: str
    spans_per_s: float
    cpu_s_per_10k: float
    refused_calls: int
    calls: int
    errors: dict[str, int]
    loader_cores: float
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass
class MemoryMeasure:
    """One system's memory: steady, and after the overload phase."""

    system: str
    rss_steady_mib: float
    rss_after_overload_mib: float
    peak_rss_mib: float
    overload_offered_spans_per_s: float
    overload_spans_per_s: float
    overload_refused_calls: int
    overload_late_calls: int
    overload_errors: dict[str, int] = field(default_factory=dict)


class Loader:
    """The load process for one running system."""

    def __init__(self, target: str, connections: int) -> None:
        context = multiprocessing.get_context("spawn")  # no fork() under a running gRPC
        self._conn, child = context.Pipe()
        self._process = context.Process(target=serve_commands, args=(child, target, connections), daemon=True)
        self._process.start()
        if not self._conn.poll(60) or self._conn.recv() != "ready":
            self.close()
            raise RuntimeError(f"the load process could not connect to {target}")

    def run(self, phase: Phase) -> PhaseResult:
        """Run one phase and return its result."""
        self._conn.send(phase)
        if not self._conn.poll(phase.seconds + 120):
            raise RuntimeError("the load process did not answer")
        result: PhaseResult = self._conn.recv()
        return result

    def close(self) -> None:
        """End the load process."""
        if self._process.is_alive():
            self._conn.send(None)
            self._process.join(30)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()


def wait_idle(pid: int, timeout_s: float) -> None:
    """Return once the process tree uses under :data:`IDLE_CORES` of a core (or at ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    before = sample_tree(pid).cpu_s
    while time.monotonic() < deadline:
        time.sleep(IDLE_WINDOW_S)
        now = sample_tree(pid).cpu_s
        if now - before < IDLE_CORES * IDLE_WINDOW_S:
            return
        before = now


def percentile_ms(values: list[float], q: float) -> float:
    """Nearest-rank percentile of seconds, in milliseconds (NaN when empty)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return 1000 * ordered[max(0, min(len(ordered) - 1, int(q * len(ordered) + 0.999999) - 1))]


def sink_counts(sink: Sink) -> dict[str, int]:
    """The sink's counters."""
    with urllib.request.urlopen(f"{sink.http_url}/counts", timeout=5) as answer:
        counts: dict[str, int] = json.load(answer)
        return counts


def measure_shape(
    running: Running, loader: Loader, shape: RequestShape, settings: Settings, round_number: int
) -> tuple[ShapeMeasure, int]:
    """Warm up, saturate (CPU, spans/s), then open-loop at 50 % and 80 %; returns spans accepted too."""
    pid = running.process.pid
    accepted = loader.run(Phase("closed", shape, settings.warmup_s, settings.concurrency)).spans_ok
    wait_idle(pid, settings.idle_timeout_s)
    before = sample_tree(pid)
    saturation = loader.run(Phase("closed", shape, settings.saturation_s, settings.concurrency))
    wait_idle(pid, settings.idle_timeout_s)
    after = sample_tree(pid)
    accepted += saturation.spans_ok
    spans_per_s = saturation.spans_ok / saturation.elapsed_s
    measure = ShapeMeasure(
        system=running.system.key,
        round=round_number,
        shape=shape.label,
        spans_per_s=spans_per_s,
        cpu_s_per_10k=(after.cpu_s - before.cpu_s) / max(saturation.spans_ok, 1) * 10_000,
        refused_calls=saturation.refused_calls,
        calls=saturation.calls_ok,
        errors=saturation.errors,
        loader_cores=saturation.loader_cpu_s / saturation.elapsed_s,
    )
    for share in (0.5, 0.8):
        rate = share * spans_per_s / shape.spans
        result = loader.run(Phase("open", shape, settings.latency_s, rate_per_s=rate))
        accepted += result.spans_ok
        measure.latency_ms[f"{round(share * 100)}%"] = {
            "p50": percentile_ms(result.latencies_s, 0.50),
            "p99": percentile_ms(result.latencies_s, 0.99),
            "calls": result.calls_ok,
            "refused": result.refused_calls,
            "late": result.late_calls,
        }
        wait_idle(pid, settings.idle_timeout_s)
    return measure, accepted


def measure_overload(running: Running, loader: Loader, settings: Settings, saturation: float) -> MemoryMeasure:
    """RSS when steady, then ``overload_factor`` × saturation for ``overload_s``, then RSS again."""
    pid = running.process.pid
    shape = settings.shapes[0]
    steady = sample_tree(pid)
    offered = settings.overload_factor * saturation
    result = loader.run(Phase("open", shape, settings.overload_s, rate_per_s=offered / shape.spans, max_in_flight=1024))
    after = sample_tree(pid)
    return MemoryMeasure(
        system=running.system.key,
        rss_steady_mib=steady.rss_bytes / 2**20,
        rss_after_overload_mib=after.rss_bytes / 2**20,
        peak_rss_mib=after.peak_rss_bytes / 2**20,
        overload_offered_spans_per_s=offered,
        overload_spans_per_s=result.spans_ok / result.elapsed_s,
        overload_refused_calls=result.refused_calls,
        overload_late_calls=result.late_calls,
        overload_errors=result.errors,
    )


def metrics_size(url: str) -> int:
    """Bytes served on the system's /metrics (0 when it answers nothing): a sanity check."""
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return len(answer.read())
    except OSError:
        return 0


def run_system(
    system: System, round_number: int, overload: bool, settings: Settings, context: dict[str, Any]
) -> tuple[list[ShapeMeasure], MemoryMeasure | None, list[str]]:
    """Start ``system``, measure every shape (and the overload when asked), stop it."""
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-{system.key}-", dir=context["workdir"]))
    sink: Sink = context["sink"]
    notes: list[str] = []
    running = start(system, workdir, sink, context["collector"], context["enricher_set"])
    delivered_before = sink_counts(sink)["otlp_spans"]
    loader = Loader(running.target, settings.connections)
    measures: list[ShapeMeasure] = []
    memory = None
    accepted = 0
    try:
        for shape in settings.shapes:
            measure, spans = measure_shape(running, loader, shape, settings, round_number)
            accepted += spans
            measures.append(measure)
            print(f"  {system.key:20} {shape.label:22} {report.shape_line(measure)}", flush=True)
        if overload:
            memory = measure_overload(running, loader, settings, measures[0].spans_per_s)
            print(f"  {system.key:20} {'overload':22} {report.memory_line(memory)}", flush=True)
        if not metrics_size(running.metrics_url) and system.kind != "floor":
            notes.append(f"{system.key}: /metrics answered nothing in round {round_number + 1}")
        if system.delivers:
            wait_idle(running.process.pid, settings.idle_timeout_s)
            delivered = sink_counts(sink)["otlp_spans"] - delivered_before
            if overload is False and delivered < accepted:
                notes.append(
                    f"{system.key}, round {round_number + 1}: {delivered} of {accepted} spans delivered by the end"
                )
    finally:
        loader.close()
        code = running.stop()
        if code not in (0, -15):
            notes.append(f"{system.key}: exited with {code} in round {round_number + 1}: {running.log_tail(5)}")
        remove(workdir)
    return measures, memory, notes


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    commit = subprocess.run(
        ["git", "-C", str(RESULTS_DIR.parent.parent), "describe", "--always", "--dirty", "--abbrev=12"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "kernel": os.uname().release,
        "python": sys.version.split()[0],
        "commit": commit or "unknown",
        "load_average_start": os.getloadavg(),
    }


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, Settings]:
    """The command line; ``--quick`` replaces the durations with short ones."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 round, 2 shapes, short phases (< 2 min)")
    parser.add_argument("--systems", default=",".join(system.key for system in SYSTEMS), help="comma-separated keys")
    parser.add_argument("--rounds", type=int, help="rounds, systems alternating (default 3, quick 1)")
    parser.add_argument("--saturation-s", type=float, help="closed-loop phase (default 6, quick 2)")
    parser.add_argument("--latency-s", type=float, help="each open-loop phase (default 5, quick 1.5)")
    parser.add_argument("--overload-s", type=float, help="overload phase, once per system (default 60, quick 3)")
    parser.add_argument("--overload-factor", type=float, default=2.0, help="overload rate ÷ saturation")
    parser.add_argument("--concurrency", type=int, default=8, help="calls in flight at saturation")
    parser.add_argument("--connections", type=int, default=4, help="client connections")
    parser.add_argument("--enricher-set", action="append", default=[], metavar="KEY.PATH=VALUE")
    parser.add_argument("--build", action="store_true", help="build the Collector if it is not cached (~5 min)")
    parser.add_argument("--collector", type=Path, help="use this Collector binary instead of collector/build.sh's")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "latest.md")
    args = parser.parse_args(argv)
    unknown = [key for key in args.systems.split(",") if key not in BY_KEY]
    if unknown:
        parser.error(f"unknown systems {unknown}; choose from {', '.join(BY_KEY)}")
    quick = args.quick
    settings = Settings(
        rounds=args.rounds or (1 if quick else 3),
        shapes=QUICK_SHAPES if quick else SHAPES,
        warmup_s=0.5 if quick else 2.0,
        saturation_s=args.saturation_s or (2.0 if quick else 6.0),
        latency_s=args.latency_s or (1.5 if quick else 5.0),
        overload_s=args.overload_s or (3.0 if quick else 60.0),
        overload_factor=args.overload_factor,
        concurrency=args.concurrency,
        connections=args.connections,
        idle_timeout_s=10.0 if quick else 30.0,
    )
    return args, settings


def main(argv: list[str] | None = None) -> None:
    """Run every selected system over the rounds; print and write the tables."""
    args, settings = parse_args(argv)
    systems = [BY_KEY[key] for key in args.systems.split(",")]
    collector = None
    if any(system.kind == "collector" for system in systems):
        collector = args.collector or collector_binary(args.build)
    info = machine()
    info["command"] = " ".join(["python -m bench.compare", *(argv if argv is not None else sys.argv[1:])])
    info["collector"] = str(collector) if collector else None
    info["settings"] = {**asdict(settings), "shapes": [shape.label for shape in settings.shapes]}
    info["enricher_set"] = args.enricher_set
    started = time.time()
    measures: list[ShapeMeasure] = []
    memories: list[MemoryMeasure] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="otlp-enricher-bench-") as workdir:
        sink_process, sink = start_sink(Path(workdir))
        context = {"workdir": workdir, "sink": sink, "collector": collector, "enricher_set": args.enricher_set}
        try:
            for round_number in range(settings.rounds):
                order = systems[round_number % len(systems) :] + systems[: round_number % len(systems)]
                print(f"round {round_number + 1} of {settings.rounds}", flush=True)
                for system in order:
                    overload = round_number == settings.rounds - 1
                    shape_measures, memory, system_notes = run_system(system, round_number, overload, settings, context)
                    measures.extend(shape_measures)
                    memories.extend([memory] if memory else [])
                    notes.extend(system_notes)
        finally:
            sink_process.terminate()
            sink_process.wait(10)
    info["load_average_end"] = os.getloadavg()
    info["duration_s"] = time.time() - started
    info["finished_utc"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    text = report.render(info, systems, settings.shapes, measures, memories, notes)
    print()
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    raw = {"machine": info, "shapes": [asdict(m) for m in measures], "memory": [asdict(m) for m in memories]}
    args.output.with_suffix(".json").write_text(json.dumps(raw, indent=1, default=str))
    print(f"written to {args.output} (raw figures in {args.output.with_suffix('.json')})")


if __name__ == "__main__":
    main()
