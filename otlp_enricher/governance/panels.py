"""Grafana panel builders over the dashboard's Prometheus and Loki data-source variables.

Generic pieces, built with grafana-foundation-sdk, that know no metric of ours: a time series,
stat or heatmap panel from PromQL :class:`Query` targets, a logs panel from a LogQL query, and
the ``histogram_quantile`` expression the latency panels plot. Every panel reads the data source
chosen in the ``datasource`` (Prometheus) or ``loki`` template variable, so the JSON imports into
any Grafana. :mod:`otlp_enricher.governance.dashboard` says what the panels show.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from grafana_foundation_sdk.builders import heatmap, logs, loki, prometheus, stat, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models.dashboard import DataSourceRef
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

PROMETHEUS = DataSourceRef(type_val="prometheus", uid="${datasource}")
LOKI = DataSourceRef(type_val="loki", uid="${loki}")
RATE = "$__rate_interval"
Panel = cogbuilder.Builder[model.Panel]


@dataclass(frozen=True, slots=True)
class Query:
    """One PromQL target: its expression and legend."""

    expr: str
    legend: str = ""
    exemplar: bool = False


def series_panel(
    title: str, unit: str, queries: Sequence[Query], width: int = 12, description: str = ""
) -> timeseries.Panel:
    """A time series panel, 8 rows high and ``width`` of 24 columns wide, plotting ``queries``."""
    panel = timeseries.Panel().title(title).datasource(PROMETHEUS).unit(unit).height(8).span(width)
    if description:
        panel = panel.description(description)
    result: timeseries.Panel = _targets(panel, queries)  # type: ignore[assignment]
    return result


def stat_panel(title: str, unit: str, queries: Sequence[Query], width: int = 4, time_from: str = "") -> stat.Panel:
    """A stat panel, 5 rows high, showing ``queries``; ``time_from`` overrides the dashboard's range."""
    panel = stat.Panel().title(title).datasource(PROMETHEUS).unit(unit).height(5).span(width)
    if time_from:
        panel = panel.time_from(time_from)
    result: stat.Panel = _targets(panel, queries)  # type: ignore[assignment]
    return result


def heatmap_panel(title: str, metric: str, sel: str) -> heatmap.Panel:
    """A heatmap (seconds) of the histogram ``metric``'s buckets matching the selector ``sel``."""
    panel = heatmap.Panel().title(title).datasource(PROMETHEUS).unit("s").height(8).span(8).calculate(False)
    query = Query(f"sum by (le) (increase({metric}_bucket{sel}[{RATE}]))", "{{le}}")
    result: heatmap.Panel = _targets(panel, [query], PromQueryFormat.HEATMAP)  # type: ignore[assignment]
    return result


def histogram_quantile(q: float, metric: str, sel: str, by: str = "") -> str:
    """PromQL for the ``q`` quantile of the histogram ``metric`` matching ``sel``, per ``by`` labels."""
    group = f"{by}, le" if by else "le"
    return f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket{sel}[{RATE}])))"


def logs_panel(title: str, query: str, width: int) -> logs.Panel:
    """A logs panel, 12 rows high, of the LogQL ``query`` with details and wrapped lines."""
    target = loki.Dataquery().expr(query).ref_id("A").datasource(LOKI)
    return (
        logs.Panel()
        .title(title)
        .datasource(LOKI)
        .height(12)
        .span(width)
        .show_time(True)
        .enable_log_details(True)
        .wrap_log_message(True)
        .with_target(target)
    )


def _targets(panel: object, queries: Sequence[Query], fmt: PromQueryFormat | None = None) -> object:
    for index, query in enumerate(queries):
        target = prometheus.Dataquery().expr(query.expr).ref_id(chr(ord("A") + index)).datasource(PROMETHEUS)
        if query.legend:
            target = target.legend_format(query.legend)
        if query.exemplar:
            target = target.exemplar(True)
        if fmt is not None:
            target = target.format(fmt)
        panel = panel.with_target(target)  # type: ignore[attr-defined]
    return panel
