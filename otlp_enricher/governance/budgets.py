"""Budgets: the ``llm_budget_usd{budget, period}`` gauge, set once at start, and the rules that
track them.

What was spent is not counted in the sidecar: the recording rules written here (into the rule
file of :mod:`.rules`) sum ``llm_cost_usd_total`` over the budget's window and labels, so the spend
survives restarts and adds up across replicas; the alerts fire at each ``alert_at`` fraction and on
a projected overrun.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from otlp_enricher.governance.promql import Rule, alert_rule, number, selector
from otlp_enricher.governance.settings import PERIOD_SECONDS, PERIOD_WINDOWS, PROJECTION_WINDOWS, BudgetSpec
from otlp_enricher.telemetry.metrics import Metrics

if TYPE_CHECKING:
    from otlp_enricher.config import Config


def export_budgets(metrics: Metrics, budgets: Sequence[BudgetSpec]) -> None:
    """Set ``llm_budget_usd`` for every budget."""
    for budget in budgets:
        metrics.budget.labels(budget.name, budget.period).set(budget.amount_usd)


def budget_rules(config: Config) -> list[Rule]:
    """Per budget: its spend, ratio and projection records, and its alerts."""
    rules: list[Rule] = []
    for budget in config.genai.budgets:
        rules += _budget_records(budget) + _budget_alerts(config, budget)
    return rules


def _budget_records(budget: BudgetSpec) -> list[Rule]:
    labels = {"budget": budget.name, "period": budget.period}
    cost = f"llm_cost_usd_total{selector(dict(budget.match))}"
    window = PERIOD_WINDOWS[budget.period]
    rate_window = PROJECTION_WINDOWS[budget.period][0]
    this = selector({"budget": budget.name})
    return [
        # "or vector(0)": nothing spent yet is a spend of 0, not an absent series.
        {
            "record": "budget:llm_cost_usd:spent",
            "expr": f"sum(increase({cost}[{window}])) or vector(0)",
            "labels": labels,
        },
        {
            "record": "budget:llm_cost_usd:spent_ratio",
            "expr": f"budget:llm_cost_usd:spent{this} / {number(budget.amount_usd)}",
            "labels": labels,
        },
        {
            "record": "budget:llm_cost_usd:projected",
            "expr": f"sum(rate({cost}[{rate_window}])) * {PERIOD_SECONDS[budget.period]} or vector(0)",
            "labels": labels,
        },
    ]


def _budget_alerts(config: Config, budget: BudgetSpec) -> list[Rule]:
    this = selector({"budget": budget.name})
    amount = f"${number(budget.amount_usd)}/{budget.period}"
    window = {"day": "the last 24 h", "month": "the last 30 days"}[budget.period]
    rules = [
        alert_rule(
            config,
            "LLMBudgetSpent",
            f"budget:llm_cost_usd:spent_ratio{this} >= {number(fraction)}",
            "page" if fraction >= 1 else "ticket",
            f"Budget {budget.name} has reached {number(fraction * 100)}% of {amount}",
            f"{{{{ $value | humanizePercentage }}}} of budget {budget.name} ({amount}) was spent in {window}.",
            labels={"budget": budget.name, "fraction": f"{number(fraction * 100)}%"},
        )
        for fraction in budget.alert_at
    ]
    if budget.projection:
        rate_window, hold = PROJECTION_WINDOWS[budget.period]
        rules.append(
            alert_rule(
                config,
                "LLMBudgetProjectedOverrun",
                f"budget:llm_cost_usd:projected{this} > {number(budget.amount_usd)}",
                "ticket",
                f"Budget {budget.name} is on course to exceed {amount}",
                f"At the spending rate of the last {rate_window}, budget {budget.name} would spend"
                f' ${{{{ $value | printf "%.2f" }}}} per {budget.period}, over its {amount}.',
                hold,
                {"budget": budget.name},
            )
        )
    return rules
