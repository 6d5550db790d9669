"""Seed inputs from what the repo keeps: the recorded fixtures, the example, the shipped configs."""

from __future__ import annotations

from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RECORDED = ROOT / "tests" / "fixtures" / "recorded"


def recorded_files() -> list[Path]:
    """The recorded OTLP files (JSON lines and length-prefixed protobuf) and the README example."""
    files = sorted(RECORDED.glob("*.jsonl")) + sorted(RECORDED.glob("*.binpb"))
    return [*files, ROOT / "examples" / "first-call.jsonl"]


def json_lines() -> list[bytes]:
    """Every OTLP/JSON request line of the recorded files."""
    return [line for path in recorded_files() if path.suffix == ".jsonl" for line in path.read_bytes().splitlines()]


@cache
def protobuf_requests() -> tuple[bytes, ...]:
    """Every recorded request as protobuf bytes (what both receivers hand the scanner)."""
    from otlp_enricher.otlp_json import read_recorded

    return tuple(request for path in recorded_files() for request in read_recorded(path))


def config_files() -> list[Path]:
    """The embedded default config and the shipped deployment config."""
    return [ROOT / "otlp_enricher" / "default-config.yaml", ROOT / "deploy" / "otlp-enricher" / "config.yaml"]
