"""Golden input → expected output for the two records a user reads: one prompt-log line and one
enriched span, as the embedded default writes them (``prompt-logs.jsonl``, ``spans.jsonl``).

The input is one recorded request (``anthropic-sdk``, scenario ``anthropic-cache-write-tool``: a
Claude call with cache reads, 5-minute and 1-hour cache writes and a tool call); redaction is on
with a fixed user-id key, so both files are reproducible. The numbers in them are checked against
the provider's log by ``test_recorded_fixtures.py``; these files pin the shape: every field name,
the enrichment attributes, what redaction leaves. After an intended change, regenerate with
``UPDATE_GOLDEN=1`` and read the diff.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from otlp_enricher.config import parse_config
from otlp_enricher.otlp_json import read_recorded
from otlp_enricher.processor.redaction import Redactor
from otlp_enricher.service import build_exporters, build_metrics, build_pipeline
from tests.replay.test_golden import check_golden

RECORDED = Path(__file__).parent.parent / "fixtures" / "recorded"
SCENARIO = "anthropic-cache-write-tool"


def _scenario_request() -> bytes:
    for raw in read_recorded(RECORDED / "anthropic-sdk.jsonl"):
        if SCENARIO.encode() in raw:
            return raw
    raise AssertionError(f"no {SCENARIO} request in anthropic-sdk.jsonl")


def _write_outputs(directory: Path) -> None:
    config = parse_config(
        f"storage: {{directory: {json.dumps(str(directory))}}}\n"
        "processors: {redaction: {hash_key: golden-file-key}}\n",
        "test",
        {},
    )
    metrics = build_metrics(config, CollectorRegistry())
    redactor = Redactor(config.redaction)
    span_exporters, call_exporters = build_exporters(config, metrics, redactor)
    pipeline = build_pipeline(config, metrics, (), span_exporters, call_exporters, redactor)

    async def run() -> None:
        await pipeline.export(_scenario_request(), "grpc")
        for exporter in (*span_exporters, *call_exporters):
            await exporter.shutdown(5.0)

    asyncio.run(run())


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_one_prompt_log_line_and_one_enriched_span(tmp_path: Path) -> None:
    _write_outputs(tmp_path)
    lines = (tmp_path / "prompt-logs.jsonl").read_text().splitlines()
    assert len(lines) == 1, lines
    check_golden("prompt-log-line.json", _pretty(json.loads(lines[0])))

    batches = [json.loads(line) for line in (tmp_path / "spans.jsonl").read_text().splitlines()]
    enriched = [
        {"resource": rs.get("resource"), "scope": ss.get("scope"), "span": span}
        for batch in batches
        for rs in batch["resourceSpans"]
        for ss in rs["scopeSpans"]
        for span in ss["spans"]
        if any(a["key"].startswith("otlp_enricher.") for a in span.get("attributes", []))
    ]
    assert len(enriched) == 1, [e["span"]["name"] for e in enriched]
    check_golden("tempo-span.json", _pretty(enriched[0]))
