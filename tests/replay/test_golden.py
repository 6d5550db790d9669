"""Golden files: the replay report (table and JSON) and the Prometheus exposition of all fixtures.

They pin the whole output format. The numbers in them are checked independently of the code by
``test_recorded_fixtures.py`` (provider logs and published prices); the golden files catch any
other change of output. Regenerate after an intended change with ``UPDATE_GOLDEN=1`` and review
the diff.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from otlp_enricher.config import parse_config
from otlp_enricher.replay import iter_requests
from otlp_enricher.service import build_metrics, build_pipeline
from otlp_enricher.telemetry.workers import openmetrics_exposition

HERE = Path(__file__).parent
RECORDED = HERE.parent / "fixtures" / "recorded"
GOLDEN = HERE / "golden"
FILES = sorted(str(path) for path in RECORDED.glob("*.jsonl"))
CONFIG = """
processors:
  genai:
    slos:
      - {name: chat-latency, objective: 0.99, latency_threshold_s: 0.05, match: {operation: [chat]}}
      - {name: stream-ttft, objective: 0.95, ttft_threshold_s: 0.05}
"""


def check_golden(name: str, actual: str) -> None:
    """Compare with golden/<name>, or rewrite it when UPDATE_GOLDEN is set."""
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(actual)
    assert path.exists(), f"missing {path}: run with UPDATE_GOLDEN=1"
    assert actual == path.read_text()


@pytest.mark.parametrize(("form", "name"), [("table", "report.txt"), ("json", "report.json")])
def test_replay_report(form: str, name: str, tmp_path: Path) -> None:
    """``otlp-enricher replay --report`` over every fixture, run as a user runs it."""
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG)
    result = subprocess.run(
        [sys.executable, "-m", "otlp_enricher", "replay", "--config", str(config), "--report", form, *FILES],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    check_golden(name, result.stdout)


def test_metric_exposition() -> None:
    """The OpenMetrics exposition after replaying every fixture (creation times and exemplar times cut)."""
    import asyncio

    config = parse_config(CONFIG, "test", {})
    registry = CollectorRegistry()
    pipeline = build_pipeline(config, build_metrics(config, registry))

    async def run() -> None:
        for request in iter_requests(FILES):
            await pipeline.export(request, "replay")

    asyncio.run(run())
    text = openmetrics_exposition(registry).decode()
    lines = [line for line in text.splitlines() if not re.match(r"^\w+_created[{ ]", line)]
    lines = [re.sub(r'(# \{trace_id="[0-9a-f]{32}"\} [0-9.e+-]+) [0-9.]+$', r"\1", line) for line in lines]
    check_golden("exposition.txt", "\n".join(lines) + "\n")
