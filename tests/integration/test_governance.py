"""The generated rules and dashboard against the real tools: promtool, and a Prometheus scraping the sidecar.

* ``promtool check rules`` accepts the rules generated for the shipped config and for a config that
  uses every generator branch (several SLOs, globs, TTFT-only SLO, day and month budgets, custom
  burn-rate pairs).
* Every PromQL expression of the generated dashboard (template variables set to "all") is
  evaluated by a real Prometheus that loaded the generated rules and scraped the real sidecar
  after a replay of recorded fixtures plus the calls that make the rarer panels non-empty: a
  rate-limited call, an unpriced model, a rejected span, a label value folded past its cap; trace
  summaries are emitted after 0.5 s of quiet so the cost-per-run histogram has data.
  Each query must parse and return at least one finite sample.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml

from otlp_enricher.otlp_json import read_recorded
from otlp_enricher.replay import send_requests
from tests.otlp_builders import openai_chat, request, span
from tests.peers.fake_loki import FakeLoki

from .conftest import StartPrometheus
from .sidecar import run_sidecar
from .tools import REPO_ROOT, wait_until

pytestmark = pytest.mark.prometheus
DEPLOY_CONFIG = REPO_ROOT / "deploy" / "otlp-enricher" / "config.yaml"
RECORDED = REPO_ROOT / "tests" / "fixtures" / "recorded"
FIXTURES = ["otel-openai-v2.jsonl", "openinference-anthropic.jsonl", "anthropic-sdk.jsonl", "traceloop-openai.jsonl"]

WIDE_CONFIG = """
processors:
  genai:
    labels:
      allow: {team: team.id, service: service.name}
    slos:
      - {name: chat, objective: 0.995, latency_threshold_s: 7.5, match: {model: ["gpt-4.1*", "claude-?-*"]}}
      - {name: stream, objective: 0.99, ttft_threshold_s: 0.8}
      - {name: perfect, objective: 1.0, latency_threshold_s: 30}
    budgets:
      - {name: team-a-day, amount_usd: 20, period: day, match: {team: a, provider: openai}}
      - {name: all-month, amount_usd: 1000, period: month, alert_at: [0.25, 0.5, 0.75, 1, 1.2], projection: false}
    alerts:
      runbook_url: https://runbooks.example/otlp-enricher.md
      burn_rates:
        - {severity: page, factor: 14.4, long_window: 1h, short_window: 5m, for: 2m}
        - {severity: page, factor: 6, long_window: 6h, short_window: 30m, for: 15m}
        - {severity: ticket, factor: 1, long_window: 3d, short_window: 6h, for: 1h}
"""


def generate(what: str, config: Path) -> str:
    """``otlp-enricher <what> --config <config>`` run as a program; its output."""
    result = subprocess.run(
        [sys.executable, "-m", "otlp_enricher", what, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("config_name", ["shipped", "wide"])
def test_promtool_accepts_generated_rules(promtool_binary: Path, tmp_path: Path, config_name: str) -> None:
    """Generated rule files pass ``promtool check rules`` (syntax, PromQL, templates, duplicate names)."""
    config = DEPLOY_CONFIG
    if config_name == "wide":
        config = tmp_path / "wide.yaml"
        config.write_text(WIDE_CONFIG)
    rules = tmp_path / "rules.yml"
    rules.write_text(generate("rules", config))
    result = subprocess.run(
        [str(promtool_binary), "check", "rules", str(rules)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    assert "SUCCESS" in result.stdout


def governance_calls() -> list[bytes]:
    """Calls that make the rarer panels show data: rate limit, unpriced model, rejected span, folded label."""
    demo = {"deployment.environment": "demo"}
    streamed = {**openai_chat("gpt-4o-mini", "gpt-4o-mini", input_tokens=1200, output_tokens=300)}
    streamed["gen_ai.response.time_to_first_chunk"] = 0.35
    limited = {**openai_chat("gpt-4o-mini", "gpt-4o-mini"), "error.type": "RateLimitError"}
    unpriced = openai_chat("acme-unpriced-model", "acme-unpriced-model", input_tokens=10, output_tokens=5)
    backwards = span(openai_chat("gpt-4o-mini", "gpt-4o-mini", input_tokens=1, output_tokens=1))
    backwards.end_time_unix_nano = backwards.start_time_unix_nano - 1
    now = time.time_ns()
    requests = [
        request([span(streamed, 2.0, now) for _ in range(3)], "demo-chat", resource={**demo, "tenant.id": "t-1"}),
        request([span(streamed, 1.5, now)], "demo-chat", resource={**demo, "tenant.id": "t-2"}),  # folded
        request([span(limited, 0.3, now, error=True, status_message="429 Too Many Requests")], "demo-chat"),
        request([span(unpriced, 0.8, now)], "demo-chat"),
        request([backwards], "demo-chat"),
    ]
    return [item.SerializeToString() for item in requests]


def sidecar_config(loki: FakeLoki) -> dict[str, Any]:
    """The shipped config's processors (SLOs, labels, budgets), Loki on the fake, tenant_id capped at 1 value."""
    processors = yaml.safe_load(DEPLOY_CONFIG.read_text())["processors"]
    processors["genai"]["labels"]["max_values"] = {"tenant_id": 1}
    processors["genai"]["rollup"] = {"idle_s": 0.5}  # trace summaries (llm_trace_cost_usd) within the test
    return {"processors": processors, "exporters": {"loki": {"endpoint": f"{loki.url}/loki/api/v1/push"}}}


def dashboard_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """``(panel title, PromQL)`` of every Prometheus target, template variables set to "all"."""
    variables = [v["name"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    queries = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            if target["datasource"]["type"] != "prometheus":
                continue
            expr = target["expr"].replace("$__rate_interval", "1m").replace("$__range", "1h")
            for name in sorted(variables, key=len, reverse=True):
                expr = expr.replace(f"${name}", ".*")
            assert "$" not in expr, f"unsubstituted variable in {expr!r}"
            queries.append((panel["title"], expr))
    return queries


def finite(result: list[dict[str, Any]]) -> bool:
    """Whether an instant-query result holds at least one finite sample."""
    return any(math.isfinite(float(item["value"][1])) for item in result)


def test_every_dashboard_query_returns_data_from_prometheus_scraping_the_sidecar(
    start_prometheus: StartPrometheus, tmp_path: Path
) -> None:
    """The shipped dashboard against the shipped rules and a sidecar that saw recorded traffic."""
    rules = tmp_path / "rules.yml"
    rules.write_text(generate("rules", DEPLOY_CONFIG))
    dashboard = json.loads(generate("dashboard", DEPLOY_CONFIG))
    queries = dashboard_queries(dashboard)
    assert len(queries) >= 30
    recorded = [r for name in FIXTURES for r in read_recorded(RECORDED / name)]
    loki = FakeLoki().start()
    try:
        with run_sidecar(tmp_path / "sidecar", sidecar_config(loki)) as sidecar:
            prometheus = start_prometheus([sidecar.metrics], rule_files=[rules])
            with grpc.insecure_channel(sidecar.grpc) as channel:
                send_requests(channel, recorded[: len(recorded) // 2] + governance_calls())
                prometheus.wait_for_query("sum(llm_requests_total)", predicate=lambda v: v > 0)
                time.sleep(2.5)  # at least two scrapes of the first half, so the second is an increase
                send_requests(channel, recorded[len(recorded) // 2 :] + governance_calls())
            missing: list[tuple[str, str]] = []

            def all_return_data() -> bool:
                missing[:] = [(title, expr) for title, expr in queries if not finite(prometheus.query(expr))]
                return not missing

            wait_until(
                all_return_data,
                timeout_s=60,
                what="every dashboard query to return a finite sample",
                on_timeout=lambda: "\n".join(f"{title}: {expr}" for title, expr in missing),
            )
    finally:
        loki.stop()
