"""SLO outcome: each call is good or bad for every SLO that covers it.

A call is *good* when it succeeded and finished within the SLO's latency threshold and, for
streamed calls, produced its first token within the TTFT threshold. An SLO with only a TTFT
threshold covers only calls whose TTFT is known. Thresholds are added to the histogram bucket
boundaries (``connector.metrics``), so ``le="<threshold>"`` ratios in PromQL agree exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from otlp_enricher.model import LLMCall


@dataclass(frozen=True, slots=True)
class SloSpec:
    """One SLO from ``processors.genai.slos``; empty match lists match everything."""

    name: str
    objective: float
    latency_threshold_s: float | None = None
    ttft_threshold_s: float | None = None
    providers: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    operations: tuple[str, ...] = ()

    def covers(self, provider: str, model: str, operation: str) -> bool:
        """Whether calls with these labels fall under this SLO (glob patterns allowed)."""
        return (
            _matches(self.providers, provider) and _matches(self.models, model) and _matches(self.operations, operation)
        )


def _matches(patterns: tuple[str, ...], value: str) -> bool:
    return not patterns or any(fnmatchcase(value, pattern) for pattern in patterns)


class SloEvaluator:
    """Decides every SLO outcome of a call; which SLOs cover a label set is decided once."""

    def __init__(self, slos: Sequence[SloSpec], max_cached_label_sets: int = 10_000) -> None:
        self._slos = tuple(slos)
        self._covering: dict[tuple[str, str, str], tuple[SloSpec, ...]] = {}
        self._max_cached = max_cached_label_sets

    def evaluate(self, call: LLMCall) -> dict[str, bool]:
        """SLO name → good (``True``) or bad, for the SLOs that cover ``call``."""
        if not self._slos:
            return {}
        key = (call.provider, call.model, call.operation)
        covering = self._covering.get(key)
        if covering is None:
            covering = tuple(slo for slo in self._slos if slo.covers(*key))
            if len(self._covering) >= self._max_cached:
                self._covering.clear()
            self._covering[key] = covering
        outcomes: dict[str, bool] = {}
        for slo in covering:
            outcome = _outcome(slo, call)
            if outcome is not None:
                outcomes[slo.name] = outcome
        return outcomes


def _outcome(slo: SloSpec, call: LLMCall) -> bool | None:
    ttft = call.ttft_s if slo.ttft_threshold_s is not None else None
    if slo.latency_threshold_s is None and ttft is None:
        return None
    if call.status != "ok":
        return False
    if slo.latency_threshold_s is not None and call.duration_s > slo.latency_threshold_s:
        return False
    return ttft is None or slo.ttft_threshold_s is None or ttft <= slo.ttft_threshold_s
