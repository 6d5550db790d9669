"""The README's first commands do what it says: the sixty-second quick start, the compose command."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.integration.sidecar import run_sidecar

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _section(title: str) -> str:
    start = README.index(f"## {title}")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def _blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, re.DOTALL)


def test_quick_start_ends_with_the_cost_line_it_shows(tmp_path: Path) -> None:
    """Run the quick start's replay against a real sidecar, filter /metrics with its grep, and find
    exactly the line the README prints: 2,000 × $0.15 + 500 × $0.60 per MTok = $0.0006."""
    quick = _section("Sixty seconds to a first cost line")
    commands = _blocks(quick, "sh")[1].strip().splitlines()
    replay = re.fullmatch(r"\.venv/bin/otlp-enricher replay --to localhost:4317 (\S+)", commands[0])
    grep = re.fullmatch(r"curl -s localhost:9464/metrics \| grep '(\S+)'", commands[1])
    assert replay and grep, commands
    shown = _blocks(quick, "text")[0].strip()
    assert shown.endswith(f" {2000 * 0.15 / 1e6 + 500 * 0.60 / 1e6:g}")

    with run_sidecar(tmp_path) as sidecar:
        # The README's command, with the sidecar's free port in place of 4317.
        sent = subprocess.run(
            [sys.executable, "-m", "otlp_enricher", "replay", "--to", sidecar.grpc, replay.group(1)],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert sent.returncode == 0, sent.stderr
        assert sent.stdout.strip() == "sent 1 spans to " + sidecar.grpc
        matching = [line for line in sidecar.metrics_text().splitlines() if re.search(grep.group(1), line)]
    assert matching == [shown]
    # "one line in prompt-logs.jsonl, and the span in spans.jsonl" (written by the time serve exits)
    assert len((sidecar.storage / "prompt-logs.jsonl").read_text().splitlines()) == 1
    trace_id = re.search(r'"traceId":"(\w+)"', (ROOT / replay.group(1)).read_text())
    assert trace_id and trace_id.group(1) in (sidecar.storage / "spans.jsonl").read_text()


def test_readme_and_compose_header_give_the_same_compose_command() -> None:
    """compose.yaml builds the sidecar from the Dockerfile: both say ``docker compose up -d --build``."""
    header = (ROOT / "compose.yaml").read_text().split("\nname:")[0]
    header_commands = set(re.findall(r"docker compose [^;\n]*?(?=;|\n|$)", header))
    readme_commands = {line.split("#")[0].strip() for block in _blocks(README, "sh") for line in block.splitlines()
                       if line.startswith("docker compose")}  # fmt: skip
    assert header_commands == readme_commands == {"docker compose up -d --build"}
