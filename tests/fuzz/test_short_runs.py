"""Every fuzz target, briefly, as CI runs it: a fixed seed and a fixed number of inputs each.

Each run is its own process (``python -m tests.fuzz``), so a crash of the native core fails the
test instead of the suite, with the input kept. The short runs use the runner's seeded random
mutation (the same inputs on every machine, no instrumentation to pay for at start); one more run
checks the coverage-guided path under atheris. CONTRIBUTING.md gives the longer run.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import types
from pathlib import Path

import pytest

from tests.fuzz import engine
from tests.fuzz.seeds import ROOT

# Inputs per target: a few seconds each on an idle machine (the HTTP target pays a loopback round
# trip per input; the normaliser and the config loader run a whole span or the pipeline's setup).
RUNS = {
    "protobuf": 10_000,
    "otlp_json": 10_000,
    "normaliser": 600,
    "replay_reader": 1_500,
    "config_loader": 250,
    "http_framing": 1_500,
}


def fuzz(target: str, runs: int, engine_name: str, crashes: Path) -> None:
    """Run ``target`` for ``runs`` inputs in its own process; fail with the finding's traceback."""
    command = [sys.executable, "-m", "tests.fuzz", target, "--runs", str(runs), "--seed", "1"]
    command += ["--engine", engine_name, "--crashes", str(crashes)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    findings = sorted(p.name for p in crashes.iterdir() if p.is_file() and not p.name.endswith(".last"))
    assert done.returncode == 0 and not findings, f"{findings}\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"


def test_every_target_has_a_run_count() -> None:
    assert set(RUNS) == set(engine.TARGETS)


@pytest.mark.parametrize("target", engine.TARGETS)
def test_short_fuzz_run_finds_nothing(target: str, tmp_path: Path) -> None:
    fuzz(target, RUNS[target], "random", tmp_path)


@pytest.mark.skipif(importlib.util.find_spec("atheris") is None, reason="atheris ships wheels for Linux x86-64 only")
def test_coverage_guided_run_finds_nothing(tmp_path: Path) -> None:
    fuzz("protobuf", 3_000, "atheris", tmp_path)


def _target(check: object) -> types.ModuleType:
    module = types.ModuleType("fake_target")
    module.MAX_LEN = 64  # type: ignore[attr-defined]
    module.seeds = lambda: [b"seed"]  # type: ignore[attr-defined]
    module.check = check  # type: ignore[attr-defined]
    return module


def test_the_runner_reports_a_finding_and_keeps_its_input(tmp_path: Path) -> None:
    """The runner itself can fail: a check that raises on inputs containing 0xff is caught."""

    def check(data: bytes) -> bool:
        assert b"\xff" not in data, "found it"
        return True

    assert engine.run_random(_target(check), "fake", 20_000, 0, 1, tmp_path) == 1
    (finding,) = tmp_path.glob("fake-*")
    assert b"\xff" in finding.read_bytes()


def test_the_runner_passes_a_target_without_findings(tmp_path: Path) -> None:
    seen: list[bytes] = []

    def record(data: bytes) -> bool:
        seen.append(data)
        return False

    assert engine.run_random(_target(record), "fake", 100, 0, 1, tmp_path) == 0
    assert len(seen) == 100 and seen[0] == b"seed" and all(len(data) <= 64 for data in seen)
