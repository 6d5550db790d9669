"""``processors.genai.budgets`` and ``processors.genai.alerts``: what the rule generator needs.

Pure data: the config loader validates and builds these; :mod:`.rules` and :mod:`.dashboard`
read them. Durations are Prometheus duration strings (``5m``, ``1h``, ``7d``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

#: Seconds of each budget period. A budget's window is rolling (the last 24 h, the last 30 d):
#: a Prometheus rule cannot select "since midnight" or "since the 1st" (range durations are literals).
PERIOD_SECONDS = {"day": 86_400, "month": 30 * 86_400}
PERIOD_WINDOWS = {"day": "1d", "month": "30d"}
#: The window whose spending rate is projected over a whole period, and how long it must hold.
PROJECTION_WINDOWS = {"day": ("1h", "30m"), "month": ("1d", "3h")}


@dataclass(frozen=True, slots=True)
class BudgetSpec:
    """One budget: ``amount_usd`` per ``period`` for the calls whose labels equal ``match``."""

    name: str
    amount_usd: float
    period: str = "month"
    match: Mapping[str, str] = field(default_factory=dict)
    alert_at: tuple[float, ...] = (0.5, 0.8, 1.0)
    projection: bool = True


@dataclass(frozen=True, slots=True)
class BurnRateAlert:
    """One multiwindow burn-rate alert: fires when both windows burn ``factor`` × the budget rate."""

    severity: str
    factor: float
    long_window: str
    short_window: str
    for_: str


#: The SRE workbook's pairs ("Alerting on SLOs", table 5-8): 2 % of a 30-day budget in 1 h pages,
#: 5 % in 6 h opens a ticket.
DEFAULT_BURN_RATES = (
    BurnRateAlert("page", 14.4, "1h", "5m", "2m"),
    BurnRateAlert("ticket", 6.0, "6h", "30m", "15m"),
)


@dataclass(frozen=True, slots=True)
class AlertsConfig:
    """``processors.genai.alerts``: thresholds of the generated alert rules."""

    job: str = "otlp-enricher"
    runbook_url: str = "docs/runbook.md"
    burn_rates: tuple[BurnRateAlert, ...] = DEFAULT_BURN_RATES
    error_ratio: float = 0.05
    rate_limit_ratio: float = 0.02
    ttft_regression_factor: float = 1.5
    cost_anomaly_factor: float = 2.0
    cost_anomaly_min_usd_per_hour: float = 0.5
    spool_full_ratio: float = 0.8
    oldest_unsent_age_s: float = 300.0


@dataclass(frozen=True, slots=True)
class RollupConfig:
    """``processors.genai.rollup``: one summary per trace (and per conversation) once its calls go quiet."""

    enabled: bool = True
    idle_s: float = 30.0
    max_open: int = 10_000
