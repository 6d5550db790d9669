"""Render the generated Grafana dashboard as a picture, from data a real Prometheus scraped.

    .venv/bin/python -m pip install matplotlib   # a development tool only, not a dependency
    .venv/bin/python scripts/render_dashboard.py [--seconds 90] [--output docs/dashboard.png]

Starts the real sidecar with the shipped config's processors (SLOs, labels, budgets; trace
summaries after 1 s of quiet) and a fake Loki, a real Prometheus (Debian's) loading the generated
rules, replays the recorded fixtures with fresh ids (plus a rate-limited call, an unpriced model and
a rejected span) once a second, then draws every panel of ``otlp-enricher dashboard`` with
matplotlib from range queries over that time, laid out by the panels' ``gridPos``. Logs panels show
the lines the fake Loki received. Grafana's look is not imitated; what is shown is what each
query returns.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import re
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402
import matplotlib  # noqa: E402
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.gridspec import GridSpec  # noqa: E402

from otlp_enricher.config import load_config  # noqa: E402
from otlp_enricher.governance.dashboard import build_dashboard  # noqa: E402
from otlp_enricher.governance.rules import render_rules  # noqa: E402
from otlp_enricher.otlp_json import read_recorded  # noqa: E402
from otlp_enricher.replay import send_requests  # noqa: E402
from tests.integration.sidecar import run_sidecar  # noqa: E402
from tests.integration.test_governance import FIXTURES, RECORDED, governance_calls, sidecar_config  # noqa: E402
from tests.integration.tools import start_prometheus  # noqa: E402
from tests.peers.fake_loki import FakeLoki  # noqa: E402

DEPLOY_CONFIG = ROOT / "deploy" / "otlp-enricher" / "config.yaml"
RATE = "15s"


def query_range(url: str, expr: str, start: float, end: float) -> list[dict[str, Any]]:
    """``/api/v1/query_range`` at a 1 s step; the result list."""
    params = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": "1"})
    with urllib.request.urlopen(f"{url}/api/v1/query_range?{params}", timeout=30) as response:
        body = json.load(response)
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def fresh(requests: list[bytes]) -> list[bytes]:
    """Copies of ``requests`` with new trace and span ids (the sidecar counts a repeated span once)."""
    copies = []
    for raw in requests:
        copy = ExportTraceServiceRequest.FromString(raw)
        trace = os.urandom(16)
        for resource_spans in copy.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    span.trace_id, span.span_id = trace, os.urandom(8)
        copies.append(copy.SerializeToString())
    return copies


def substitute(expr: str, variables: list[str]) -> str:
    """Grafana variables set to "all" and its interval macros to fixed windows."""
    expr = expr.replace("$__rate_interval", RATE).replace("$__range", "5m")
    for name in sorted(variables, key=len, reverse=True):
        expr = expr.replace(f"${name}", ".*")
    return expr


def legend(template: str, labels: dict[str, str]) -> str:
    """A legendFormat with ``{{label}}`` filled in."""
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template) or "value"


def draw(
    dashboard: dict[str, Any], data: dict[int, list[tuple[str, list[dict[str, Any]]]]], logs: list[str], path: Path
) -> None:
    """One figure: every panel at its gridPos (24 columns), rows as headings."""
    panels = dashboard["panels"]
    height = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
    figure = plt.figure(figsize=(24, height * 0.55), dpi=72)
    grid = GridSpec(height, 24, figure=figure, hspace=2.4, wspace=1.6)
    for panel in panels:
        pos = panel["gridPos"]
        axes = figure.add_subplot(grid[pos["y"] : pos["y"] + pos["h"], pos["x"] : pos["x"] + pos["w"]])
        if panel["type"] == "row":
            axes.axis("off")
            axes.text(0, 0.5, panel["title"], fontsize=20, weight="bold", va="center")
            continue
        axes.set_title(panel["title"], fontsize=11, loc="left")
        series = data.get(panel["id"], [])
        if panel["type"] == "timeseries":
            _timeseries(axes, series)
        elif panel["type"] == "stat":
            _stat(axes, series, panel["fieldConfig"]["defaults"].get("unit", ""))
        elif panel["type"] == "heatmap":
            _heatmap(axes, series)
        elif panel["type"] == "logs":
            _logs(axes, [line for line in logs if ("trace_summary" in line) == ("summaries" in panel["title"])])
    figure.savefig(path, bbox_inches="tight", facecolor="white")


def _timeseries(axes: Any, series: list[tuple[str, list[dict[str, Any]]]]) -> None:
    start = min((float(r["values"][0][0]) for _, results in series for r in results), default=0.0)
    for name, results in series:
        for result in results[:8]:
            xs = [float(t) - start for t, _ in result["values"]]
            ys = [float(v) for _, v in result["values"]]
            axes.plot(xs, ys, label=legend(name, result["metric"])[:40], linewidth=1.2)
    if axes.lines:
        axes.legend(fontsize=7, loc="upper left")
    axes.tick_params(labelsize=7)
    axes.set_xlabel("seconds", fontsize=7)


def _stat(axes: Any, series: list[tuple[str, list[dict[str, Any]]]], unit: str) -> None:
    axes.axis("off")
    values = [
        (legend(name, r["metric"]) if name else "", float(r["values"][-1][1]))
        for name, results in series
        for r in results
    ]
    text = "\n".join(f"{label}  {_format(value, unit)}" for label, value in values[:4]) or "no data"
    axes.text(0.5, 0.45, text, ha="center", va="center", fontsize=16 if len(values) <= 1 else 10, weight="bold")


def _format(value: float, unit: str) -> str:
    if value != value:  # NaN
        return "NaN"
    if unit == "percentunit":
        return f"{value * 100:.1f} %"
    if unit == "currencyUSD":
        return f"${value:.4f}" if abs(value) < 1 else f"${value:,.2f}"
    if unit == "s":
        return f"{value:.3f} s"
    return f"{value:.3g}"


def _heatmap(axes: Any, series: list[tuple[str, list[dict[str, Any]]]]) -> None:
    results = [r for _, rs in series for r in rs]
    if not results:
        axes.text(0.5, 0.5, "no data", ha="center")
        return
    results.sort(key=lambda r: float(r["metric"]["le"]))
    matrix = [[float(v) for _, v in r["values"]] for r in results]
    width = min(len(row) for row in matrix)
    cells = [[matrix[i][t] - (matrix[i - 1][t] if i else 0.0) for t in range(width)] for i in range(len(matrix))]
    axes.imshow(cells, aspect="auto", origin="lower", cmap="viridis")
    labels = [r["metric"]["le"] for r in results]
    step = max(1, len(labels) // 6)
    axes.set_yticks(range(0, len(labels), step), labels[::step], fontsize=7)
    axes.set_ylabel("le (s)", fontsize=7)
    axes.tick_params(labelsize=7)


def _logs(axes: Any, lines: list[str]) -> None:
    axes.axis("off")
    shown = [line[:150] for line in lines[-10:]] or ["no lines"]
    axes.text(0, 1, "\n".join(shown), va="top", family="monospace", fontsize=7)


def main() -> int:
    """Collect for ``--seconds``, then draw to ``--output``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=90.0)
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "dashboard.png")
    args = parser.parse_args()
    config = load_config(DEPLOY_CONFIG, environ={})
    dashboard = build_dashboard(config)
    variables = [v["name"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    recorded = [r for name in FIXTURES for r in read_recorded(RECORDED / name)]
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        rules = work / "rules.yml"
        rules.write_text(render_rules(config))
        loki = FakeLoki().start()
        stack.callback(loki.stop)
        extra = sidecar_config(loki)
        extra["processors"]["genai"]["rollup"] = {"idle_s": 1.0}
        sidecar = stack.enter_context(run_sidecar(work / "sidecar", extra))
        prometheus = stack.enter_context(
            start_prometheus(Path("/usr/bin/prometheus"), [sidecar.metrics], work / "prometheus", rule_files=[rules])
        )
        start = time.time()
        rng = random.Random(11)
        with grpc.insecure_channel(sidecar.grpc) as channel:
            while time.time() - start < args.seconds:
                batch = fresh(rng.sample(recorded, k=rng.randint(2, len(recorded))))
                send_requests(channel, batch + governance_calls(), progress=io.StringIO())
                time.sleep(rng.uniform(0.3, 1.5))
        time.sleep(3)
        end = time.time()
        data: dict[int, list[tuple[str, list[dict[str, Any]]]]] = {}
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                if target["datasource"]["type"] != "prometheus":
                    continue
                result = query_range(prometheus.url, substitute(target["expr"], variables), start + 20, end)
                data.setdefault(panel["id"], []).append((target.get("legendFormat", ""), result))
        logs = [entry.line for entry in loki.entries.values()]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    draw(dashboard, data, logs, args.output)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
