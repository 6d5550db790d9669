"""The enrich step: every pure processor applied to one recognised call, in order.

Error reason (:mod:`.errors`), cost (:mod:`.cost`, over the price table of :mod:`.pricing`), token
rates (:mod:`.rates`) and SLO outcomes (:mod:`.slo`). The pipeline calls :meth:`Enricher.enrich`
once per call, before dedupe, metrics and the exporters read the derived fields.
"""

from __future__ import annotations

from otlp_enricher.model import LLMCall
from otlp_enricher.processor.cost import CostPolicy
from otlp_enricher.processor.errors import classify_error
from otlp_enricher.processor.pricing import PriceBook
from otlp_enricher.processor.rates import output_tokens_per_second, time_per_output_token
from otlp_enricher.processor.slo import SloEvaluator
from otlp_enricher.semconv.extract import error_evidence


class Enricher:
    """Runs the pure processors over one call; everything configurable was decided in ``__init__``."""

    def __init__(self, prices: PriceBook, slos: SloEvaluator, prefer_span_cost: bool) -> None:
        self._cost = CostPolicy(prices, prefer_span_cost)
        self._slos = slos

    def enrich(self, call: LLMCall) -> None:
        """Fill in the derived fields of ``call``."""
        if call.status == "error":
            texts, http_status = error_evidence(call)
            call.error_reason = classify_error(texts, http_status)
        self._cost.apply(call)
        tokens = call.tokens
        if tokens is not None:
            call.time_per_output_token_s = time_per_output_token(call.duration_s, call.ttft_s, tokens.output)
            call.output_tokens_per_second = output_tokens_per_second(call.duration_s, call.ttft_s, tokens.output)
        call.slo_outcomes = self._slos.evaluate(call)
