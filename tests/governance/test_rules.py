"""The generated rule file: tied to the config, complete, and naming only metrics the sidecar exposes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from otlp_enricher.config import Config, load_config, parse_config
from otlp_enricher.confignode import ConfigError
from otlp_enricher.governance.budgets import export_budgets
from otlp_enricher.governance.rules import build_rules, render_rules
from otlp_enricher.service import build_metrics

REPO = Path(__file__).resolve().parents[2]
DEPLOY_CONFIG = REPO / "deploy" / "otlp-enricher" / "config.yaml"
DEPLOY_RULES = REPO / "deploy" / "prometheus" / "rules" / "otlp-enricher.yml"
RUNBOOK = REPO / "docs" / "runbook.md"

#: Every alert kind issue 11 asks for, by name.
ALERT_KINDS = {
    "LLMSloErrorBudgetBurn",
    "LLMErrorRateHigh",
    "LLMRateLimitPressure",
    "LLMTimeToFirstTokenRegression",
    "LLMCostAnomaly",
    "LLMUnpricedRequests",
    "LLMBudgetSpent",
    "LLMBudgetProjectedOverrun",
    "OtlpEnricherDown",
    "OtlpEnricherExportFailing",
    "OtlpEnricherSpoolFilling",
    "OtlpEnricherSpoolFull",
    "OtlpEnricherSpoolDropping",
    "OtlpEnricherBacklogOld",
    "OtlpEnricherDeadLetters",
    "OtlpEnricherSpansRejected",
    "OtlpEnricherLabelValuesFolded",
    "OtlpEnricherRedactionFailing",
    "OtlpEnricherTraceSummariesIncomplete",
}
_PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset", "bool",
    "sum", "max", "min", "avg", "count", "rate", "increase", "histogram_quantile", "avg_over_time", "vector",
    "inf", "nan", "le",
}  # fmt: skip


def config_from(text: str) -> Config:
    """A config parsed from YAML text with an empty environment."""
    return parse_config(text, "test.yaml", {})


def rules_of(config: Config) -> list[dict[str, Any]]:
    """Every rule of every group."""
    return [rule for group in build_rules(config)["groups"] for rule in group["rules"]]


def alerts_named(config: Config, name: str) -> list[dict[str, Any]]:
    """The alerting rules called ``name``."""
    return [rule for rule in rules_of(config) if rule.get("alert") == name]


def exposed_names(config: Config) -> set[str]:
    """Metric names the sidecar's registry exposes for ``config`` (histograms with their series)."""
    registry = CollectorRegistry()
    metrics = build_metrics(config, registry)
    export_budgets(metrics, config.genai.budgets)
    names = set()
    for family in registry.collect():
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names |= {f"{family.name}_bucket", f"{family.name}_count", f"{family.name}_sum"}
        else:
            names.add(family.name)
    return names


def selected_metrics(expr: str) -> set[str]:
    """Metric names an expression selects: identifiers not followed by ``(``, outside strings and braces."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left)\s*\([^)]*\)", " ", text)
    found = re.findall(r"(?<![\w:.])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:(])(?!\s*\()", text)
    return {name for name in found if name.lower() not in _PROMQL_WORDS}


def test_deploy_rules_are_what_the_generator_prints_for_the_shipped_config() -> None:
    """deploy/prometheus/rules/otlp-enricher.yml is fresh: regenerate it when this fails."""
    expected = render_rules(load_config(DEPLOY_CONFIG, environ={}))
    assert DEPLOY_RULES.read_text() == expected, (
        "stale: run `otlp-enricher rules --config deploy/otlp-enricher/config.yaml"
        " > deploy/prometheus/rules/otlp-enricher.yml`"
    )


def test_every_alert_kind_is_generated_with_severity_summary_value_and_runbook_section() -> None:
    """Each alert has a severity, a summary, a description quoting $value, and a runbook anchor that exists."""
    config = load_config(DEPLOY_CONFIG, environ={})
    alerts = [rule for rule in rules_of(config) if "alert" in rule]
    assert {rule["alert"] for rule in alerts} == ALERT_KINDS
    headings = {line[3:].strip().lower() for line in RUNBOOK.read_text().splitlines() if line.startswith("## ")}
    for rule in alerts:
        assert rule["labels"]["severity"] in ("page", "ticket"), rule["alert"]
        annotations = rule["annotations"]
        assert annotations["summary"], rule["alert"]
        if rule["alert"] != "OtlpEnricherDown":  # its value is always 0; the description says for how long
            assert "$value" in annotations["description"], rule["alert"]
        anchor = annotations["runbook_url"].split("#", 1)[1]
        assert anchor in headings, f"docs/runbook.md has no section for {rule['alert']}"


def test_rules_select_only_metrics_the_sidecar_exposes_or_rules_record() -> None:
    """Every metric name in every expression is in the real exposition, is recorded here, or is `up`."""
    config = load_config(DEPLOY_CONFIG, environ={})
    recorded = {rule["record"] for rule in rules_of(config) if "record" in rule}
    known = exposed_names(config) | recorded | {"up"}
    for rule in rules_of(config):
        unknown = selected_metrics(rule["expr"]) - known
        assert not unknown, f"{rule.get('alert') or rule.get('record')}: {rule['expr']} uses {sorted(unknown)}"


def test_metric_scan_finds_names_and_skips_functions_labels_and_numbers() -> None:
    """The scan above would notice a misspelt metric."""
    expr = 'sum by (model) (rate(llm_cost_usd_totl{le="1.0"}[5m])) * 3600 > 2 * avg_over_time(a:b:c[7d])'
    assert selected_metrics(expr) == {"llm_cost_usd_totl", "a:b:c"}


SLO_CONFIG = """
processors:
  genai:
    slos:
      - name: chat
        objective: 0.995
        latency_threshold_s: {threshold}
        match: {{model: ["gpt-4o*"], operation: [chat]}}
"""


def test_changing_an_slo_threshold_changes_bucket_recording_rule_and_alert_together() -> None:
    """The bound the sidecar adds to its histogram is the `le` the recording rule selects and the alert quotes."""
    for threshold, le in ((7.3, "7.3"), (12, "12.0")):
        config = config_from(SLO_CONFIG.format(threshold=threshold))
        buckets = build_metrics(config, CollectorRegistry()).duration._upper_bounds
        assert float(threshold) in buckets
        sli = [r for r in rules_of(config) if r.get("record", "").endswith("under_threshold_ratio_rate5m")]
        assert len(sli) == 1 and f'le="{le}"' in sli[0]["expr"] and 'model=~"gpt-4o.*"' in sli[0]["expr"]
        burns = alerts_named(config, "LLMSloErrorBudgetBurn")
        assert all(f"latency ≤ {threshold:g} s" in rule["annotations"]["description"] for rule in burns)
        # The budget of a 99.5 % objective is 0.5 %: 14.4 × 0.005 = 0.072 and 6 × 0.005 = 0.03.
        assert [rule["expr"].split(" > ")[1].split(" ")[0] for rule in burns] == ["0.072", "0.03"]


def test_burn_rate_pairs_come_from_the_config() -> None:
    """`alerts.burn_rates` replaces the SRE workbook defaults, windows and severities included."""
    config = config_from(
        SLO_CONFIG.format(threshold=5)
        + """
    alerts:
      burn_rates:
        - {severity: page, factor: 10, long_window: 2h, short_window: 10m, for: 5m}
"""
    )
    (burn,) = alerts_named(config, "LLMSloErrorBudgetBurn")
    assert burn["expr"] == (
        'slo:llm_slo_bad_ratio:ratio_rate2h{slo="chat"} > 0.05'
        ' and slo:llm_slo_bad_ratio:ratio_rate10m{slo="chat"} > 0.05'
    )
    assert burn["for"] == "5m" and burn["labels"]["long_window"] == "2h"
    recorded = {rule["record"] for rule in rules_of(config) if "record" in rule}
    assert {"slo:llm_slo_bad_ratio:ratio_rate2h", "slo:llm_slo_bad_ratio:ratio_rate10m"} <= recorded


BUDGET_CONFIG = """
processors:
  genai:
    labels:
      allow: {team: team.id, service: service.name}
    budgets:
      - name: team-a
        amount_usd: 250
        period: month
        match: {team: a}
        alert_at: [1, 0.9]
"""


def test_a_budget_becomes_spend_rules_fraction_alerts_a_projection_and_a_gauge() -> None:
    """Spend over 30 days of the matching labels, ratio to the amount, one alert per fraction."""
    config = config_from(BUDGET_CONFIG)
    records = {rule["record"]: rule for rule in rules_of(config) if "record" in rule and "budget" in rule["record"]}
    assert (
        records["budget:llm_cost_usd:spent"]["expr"] == 'sum(increase(llm_cost_usd_total{team="a"}[30d])) or vector(0)'
    )
    assert records["budget:llm_cost_usd:spent_ratio"]["expr"] == 'budget:llm_cost_usd:spent{budget="team-a"} / 250'
    assert records["budget:llm_cost_usd:projected"]["expr"].endswith("[1d])) * 2592000 or vector(0)")
    spent = alerts_named(config, "LLMBudgetSpent")
    assert [(r["labels"]["fraction"], r["labels"]["severity"]) for r in spent] == [("90%", "ticket"), ("100%", "page")]
    assert alerts_named(config, "LLMBudgetProjectedOverrun")[0]["for"] == "3h"
    registry = CollectorRegistry()
    export_budgets(build_metrics(config, registry), config.genai.budgets)
    assert registry.get_sample_value("llm_budget_usd", {"budget": "team-a", "period": "month"}) == 250


@pytest.mark.parametrize(
    ("budget", "problem"),
    [
        ("{name: x, amount_usd: 5, match: {region: eu}}", "budgets[0].match.region: expected provider, model"),
        ("{name: x, amount_usd: 5, period: week}", "budgets[0].period: expected one of day, month"),
        ("{name: x}", "budgets[0].amount_usd: is required"),
        ("{name: x, amount_usd: 5, alert_at: [0]}", "budgets[0].alert_at: expected a list of fractions"),
    ],
)
def test_invalid_budgets_are_reported_with_their_key_path(budget: str, problem: str) -> None:
    """Budgets are validated with the rest of the config."""
    with pytest.raises(ConfigError) as caught:
        config_from(f"processors:\n  genai:\n    budgets: [{budget}]\n")
    assert any(p.startswith(f"processors.genai.{problem}") for p in caught.value.problems), caught.value.problems


def test_a_tenant_key_may_be_a_label_but_people_and_requests_may_not() -> None:
    """tenant.id passes the allow-list when listed; user, session, conversation and request ids stay refused."""
    config = config_from("processors:\n  genai:\n    labels:\n      allow: [tenant.id, team_id]\n")
    assert dict(config.genai.labels.allow) == {"tenant_id": ("tenant.id",), "team_id": ("team_id",)}
    for key in ("user.id", "session.id", "gen_ai.conversation.id", "gen_ai.response.id", "enduser.id"):
        with pytest.raises(ConfigError, match="identifies a request"):
            config_from(f"processors:\n  genai:\n    labels:\n      allow: [{key}]\n")


def test_rendered_rules_are_yaml_with_the_generated_header() -> None:
    """The printed file says it is generated and parses back to the same rules."""
    config = load_config(DEPLOY_CONFIG, environ={})
    text = render_rules(config)
    assert text.startswith("# Generated by `otlp-enricher rules")
    assert yaml.safe_load(text) == build_rules(config)
