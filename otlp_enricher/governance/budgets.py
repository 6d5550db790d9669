"""Budgets → the ``llm_budget_usd{budget, period}`` gauge, set once at start.

What was spent is not counted here: the generated recording rules (:mod:`.rules`) sum
``llm_cost_usd_total`` over the budget's window and labels, so the spend survives restarts and adds
up across replicas.
"""

from __future__ import annotations

from collections.abc import Sequence

from otlp_enricher.governance.settings import BudgetSpec
from otlp_enricher.telemetry.metrics import Metrics


def export_budgets(metrics: Metrics, budgets: Sequence[BudgetSpec]) -> None:
    """Set ``llm_budget_usd`` for every budget."""
    for budget in budgets:
        metrics.budget.labels(budget.name, budget.period).set(budget.amount_usd)
