"""LLM call records → a per-model replay report (what ``otlp-enricher replay --report`` prints).

Percentiles are exact (nearest rank over every value), unlike the histogram estimates Prometheus
gives, so a report is a reference to check dashboards against.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from otlp_enricher.model import TOKEN_TYPES, LLMCall


@dataclass(slots=True)
class _ModelRow:
    requests: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    tokens: Counter[str] = field(default_factory=Counter)
    cost_usd: float = 0.0
    unpriced: int = 0
    durations: list[float] = field(default_factory=list)
    ttfts: list[float] = field(default_factory=list)
    slo_good: int = 0
    slo_total: int = 0


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..1) of ``values``; ``None`` when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


class ReportSink:
    """Collects enriched calls per (provider, model) and renders them as a table or JSON."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], _ModelRow] = {}
        self.spans_rejected = 0

    def consume(self, calls: Sequence[LLMCall]) -> None:
        """Add the calls of one request."""
        for call in calls:
            row = self._rows.setdefault((call.provider, call.model), _ModelRow())
            row.requests += 1
            if call.status == "error":
                row.errors[call.error_reason] += 1
            tokens = call.tokens
            if tokens is not None:
                for kind, count in tokens.by_type():
                    row.tokens[kind] += count
            if call.cost_source == "unpriced":
                row.unpriced += 1
            elif call.cost_usd is not None:
                row.cost_usd += call.cost_usd
            row.durations.append(call.duration_s)
            if call.ttft_s is not None:
                row.ttfts.append(call.ttft_s)
            row.slo_total += len(call.slo_outcomes)
            row.slo_good += sum(call.slo_outcomes.values())

    def as_dict(self) -> dict[str, Any]:
        """The report as plain data: one entry per model, sorted by provider then model."""
        models = []
        for (provider, model), row in sorted(self._rows.items()):
            models.append(
                {
                    "provider": provider,
                    "model": model,
                    "requests": row.requests,
                    "errors": dict(sorted(row.errors.items())),
                    "tokens": {kind: row.tokens[kind] for kind in TOKEN_TYPES},
                    "cost_usd": round(row.cost_usd, 10),
                    "unpriced_requests": row.unpriced,
                    "duration_p50_s": percentile(row.durations, 0.50),
                    "duration_p95_s": percentile(row.durations, 0.95),
                    "ttft_p50_s": percentile(row.ttfts, 0.50),
                    "ttft_p95_s": percentile(row.ttfts, 0.95),
                    "slo_good_ratio": row.slo_good / row.slo_total if row.slo_total else None,
                }
            )
        return {"models": models, "spans_rejected": self.spans_rejected}

    def as_table(self) -> str:
        """The report as an aligned text table, one line per model."""
        header = (
            "provider", "model", "requests", "errors", "input", "output", "cache_read", "cache_write",
            "reasoning", "cost_usd", "unpriced", "p50_s", "p95_s", "ttft_p50_s", "ttft_p95_s", "slo_good",
        )  # fmt: skip
        rows = [header]
        for entry in self.as_dict()["models"]:
            errors = ",".join(f"{reason}:{count}" for reason, count in entry["errors"].items()) or "-"
            tokens = entry["tokens"]
            rows.append(
                (
                    entry["provider"],
                    entry["model"],
                    str(entry["requests"]),
                    errors,
                    *(str(tokens[kind]) for kind in TOKEN_TYPES),
                    f"{entry['cost_usd']:.6f}",
                    str(entry["unpriced_requests"]),
                    *(_seconds(entry[key]) for key in ("duration_p50_s", "duration_p95_s", "ttft_p50_s", "ttft_p95_s")),
                    "-" if entry["slo_good_ratio"] is None else f"{entry['slo_good_ratio']:.3f}",
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
        if self.spans_rejected:
            lines.append(f"spans rejected: {self.spans_rejected}")
        return "\n".join(lines)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
