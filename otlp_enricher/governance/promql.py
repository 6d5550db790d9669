"""Small PromQL and rule builders shared by the rule and dashboard generators (strings, no I/O)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client.utils import floatToGoString

if TYPE_CHECKING:
    from otlp_enricher.config import Config

Rule = dict[str, Any]
"""One recording or alerting rule, as it goes into the YAML rule file."""
Group = dict[str, Any]
"""A rule group."""

_REGEX_SPECIAL = frozenset(".^$*+?()[]{}|\\")
_float_to_go: Callable[[float], str] = floatToGoString  # untyped in prometheus_client


def quote(value: str) -> str:
    """A PromQL string literal: backslashes and double quotes escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def selector(equal: Mapping[str, str] | None = None, regex: Mapping[str, str] | None = None) -> str:
    """``{a="x",b=~"y"}`` from label → value (``=``) and label → regular expression (``=~``); ``""`` if none."""
    parts = [f"{label}={quote(value)}" for label, value in (equal or {}).items()]
    parts += [f"{label}=~{quote(pattern)}" for label, pattern in (regex or {}).items()]
    return "{" + ",".join(parts) + "}" if parts else ""


def glob_regex(patterns: Sequence[str]) -> str:
    """The RE2 alternation that matches what the SLO's fnmatch-style globs match (``*``, ``?``)."""
    alternatives = []
    for pattern in patterns:
        pieces = [
            ".*" if ch == "*" else "." if ch == "?" else "\\" + ch if ch in _REGEX_SPECIAL else ch for ch in pattern
        ]
        alternatives.append("".join(pieces))
    return "|".join(alternatives)


def le_value(bound: float) -> str:
    """A histogram bound as prometheus_client writes it in ``le`` (``10`` → ``10.0``)."""
    return _float_to_go(bound)


def number(value: float) -> str:
    """A float written short and exactly enough for a rule (``0.144``, ``5``, ``86400``)."""
    return f"{value:.10g}"


def alert_rule(
    config: Config,
    name: str,
    expr: str,
    severity: str,
    summary: str,
    description: str,
    for_: str = "",
    labels: dict[str, str] | None = None,
) -> Rule:
    """An alerting rule with ``severity``, summary, description and the runbook section named after it."""
    rule: Rule = {"alert": name, "expr": expr}
    if for_:
        rule["for"] = for_
    rule["labels"] = {"severity": severity, **(labels or {})}
    rule["annotations"] = {
        "summary": summary,
        "description": description,
        "runbook_url": f"{config.genai.alerts.runbook_url}#{name.lower()}",
    }
    return rule
