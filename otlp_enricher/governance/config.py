"""``processors.genai.budgets``, ``.alerts`` and ``.rollup``: what the generated rules and the
cost rollup are configured with."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from otlp_enricher.confignode import ConfigNode, join_path
from otlp_enricher.governance.settings import PERIOD_SECONDS, AlertsConfig, BudgetSpec, BurnRateAlert, RollupConfig

if TYPE_CHECKING:
    from otlp_enricher.processor.config import LabelsConfig


_DURATION = re.compile(r"^[1-9][0-9]*(ms|s|m|h|d|w|y)$")


def budget_config(node: ConfigNode, labels: LabelsConfig) -> BudgetSpec:
    """One ``processors.genai.budgets`` entry; ``match`` may use provider, model and allow-listed labels."""
    name = node.required_string("name")
    if name and not re.fullmatch(r"[A-Za-z0-9_.:-]+", name):
        node.error(join_path(node.path, "name"), f"expected letters, digits and _ . : -, got {name!r}")
    if not node.has("amount_usd"):
        node.error(join_path(node.path, "amount_usd"), "is required (US dollars per period)")
    match = node.string_map("match")
    for label in match:
        if label not in labels.allow and label not in ("provider", "model"):
            node.error(
                join_path(node.path, f"match.{label}"),
                "expected provider, model or a label of processors.genai.labels.allow",
            )
    fractions = node.raw("alert_at")
    alert_at: tuple[float, ...] = (0.5, 0.8, 1.0)
    if fractions is not None:
        if (
            isinstance(fractions, list)
            and fractions
            and all(isinstance(f, int | float) and not isinstance(f, bool) and 0 < f <= 10 for f in fractions)
        ):
            alert_at = tuple(sorted({float(f) for f in fractions}))
        else:
            expected = f"expected a list of fractions such as [0.5, 0.8, 1], got {fractions!r}"
            node.error(join_path(node.path, "alert_at"), expected)
    budget = BudgetSpec(
        name=name,
        amount_usd=node.number("amount_usd", 1.0, 1e-6),
        period=node.string("period", "month", tuple(PERIOD_SECONDS)),
        match=match,
        alert_at=alert_at,
        projection=node.boolean("projection", True),
    )
    node.done()
    return budget


def alerts_config(node: ConfigNode) -> AlertsConfig:
    """``processors.genai.alerts``: thresholds of the rules ``otlp-enricher rules`` generates."""
    default = AlertsConfig()
    burn_rates = default.burn_rates
    if node.has("burn_rates"):
        burn_rates = tuple(_burn_rate(item) for item in node.list_of_nodes("burn_rates"))
    alerts = AlertsConfig(
        job=node.string("job", default.job) or default.job,
        runbook_url=node.string("runbook_url", default.runbook_url) or default.runbook_url,
        burn_rates=burn_rates,
        error_ratio=node.number("error_ratio", default.error_ratio, 0.0, 1.0),
        rate_limit_ratio=node.number("rate_limit_ratio", default.rate_limit_ratio, 0.0, 1.0),
        ttft_regression_factor=node.number("ttft_regression_factor", default.ttft_regression_factor, 1.0),
        cost_anomaly_factor=node.number("cost_anomaly_factor", default.cost_anomaly_factor, 1.0),
        cost_anomaly_min_usd_per_hour=node.number(
            "cost_anomaly_min_usd_per_hour", default.cost_anomaly_min_usd_per_hour
        ),
        spool_full_ratio=node.number("spool_full_ratio", default.spool_full_ratio, 0.01, 1.0),
        oldest_unsent_age_s=node.number("oldest_unsent_age_s", default.oldest_unsent_age_s, 1.0),
    )
    node.done()
    return alerts


def rollup_config(node: ConfigNode) -> RollupConfig:
    """``processors.genai.rollup``: per-trace and per-conversation cost summaries."""
    rollup = RollupConfig(
        enabled=node.boolean("enabled", True),
        idle_s=node.number("idle_s", 30.0, 0.1),
        max_open=node.integer("max_open", 10_000, 1),
    )
    node.done()
    return rollup


def _burn_rate(node: ConfigNode) -> BurnRateAlert:
    def duration(key: str, default: str) -> str:
        value = node.string(key, default)
        if not _DURATION.match(value):
            node.error(join_path(node.path, key), f"expected a Prometheus duration such as 5m or 1h, got {value!r}")
            return default
        return value

    alert = BurnRateAlert(
        severity=node.string("severity", "page", ("page", "ticket")),
        factor=node.number("factor", 14.4, 1.0),
        long_window=duration("long_window", "1h"),
        short_window=duration("short_window", "5m"),
        for_=duration("for", "2m"),
    )
    node.done()
    return alert
