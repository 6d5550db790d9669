"""Time per output token and SLO outcomes."""

from __future__ import annotations

import pytest

from otlp_enricher.model import LLMCall
from otlp_enricher.processor.rates import output_tokens_per_second, time_per_output_token
from otlp_enricher.processor.slo import SloEvaluator, SloSpec
from tests.doubles import llm_call


def call(duration_s: float, ttft_s: float | None = None, status: str = "ok", model: str = "gpt-4o") -> LLMCall:
    """A minimal call record."""
    return llm_call(
        end_ns=int(duration_s * 1e9), request_model=model, response_model=model, status=status, ttft_s=ttft_s
    )


def test_time_per_output_token_follows_the_otel_definition_when_ttft_is_known() -> None:
    """(duration − TTFT) / (output − 1): 0.5 s first token, 101 tokens by 2.5 s → 20 ms each."""
    assert time_per_output_token(2.5, 0.5, 101) == pytest.approx(0.02)


def test_time_per_output_token_without_ttft_spreads_the_duration() -> None:
    """A call that did not stream: 2 s for 400 tokens → 5 ms each; nothing to divide → None."""
    assert time_per_output_token(2.0, None, 400) == pytest.approx(0.005)
    assert time_per_output_token(2.0, None, 0) is None
    assert time_per_output_token(2.0, 0.5, 1) is None


def test_output_tokens_per_second() -> None:
    """200 tokens generated in the 2 s after a 0.5 s first token → 100/s; without TTFT over 2.5 s → 80/s."""
    assert output_tokens_per_second(2.5, 0.5, 200) == pytest.approx(100.0)
    assert output_tokens_per_second(2.5, None, 200) == pytest.approx(80.0)
    assert output_tokens_per_second(2.5, 2.5, 200) is None
    assert output_tokens_per_second(2.5, None, 0) is None


def test_latency_slo_good_bad_and_errors_are_bad() -> None:
    """Within the threshold is good (inclusive, like the le bucket), slower or failed is bad."""
    evaluator = SloEvaluator([SloSpec("chat", 0.99, latency_threshold_s=2.0)])
    assert evaluator.evaluate(call(2.0)) == {"chat": True}
    assert evaluator.evaluate(call(2.01)) == {"chat": False}
    assert evaluator.evaluate(call(0.1, status="error")) == {"chat": False}


def test_ttft_slo_covers_only_calls_with_a_first_token_time() -> None:
    """A TTFT-only SLO ignores non-streamed calls; with both thresholds each must hold."""
    evaluator = SloEvaluator(
        [
            SloSpec("ttft", 0.95, ttft_threshold_s=0.5),
            SloSpec("both", 0.9, latency_threshold_s=5, ttft_threshold_s=0.5),
        ]
    )
    assert evaluator.evaluate(call(1.0)) == {"both": True}
    assert evaluator.evaluate(call(1.0, ttft_s=0.4)) == {"ttft": True, "both": True}
    assert evaluator.evaluate(call(1.0, ttft_s=0.6)) == {"ttft": False, "both": False}


def test_slo_match_by_glob() -> None:
    """match.model takes glob patterns; other models are not covered."""
    evaluator = SloEvaluator([SloSpec("claude", 0.99, latency_threshold_s=1, models=("claude-*",))])
    assert evaluator.evaluate(call(0.5, model="claude-sonnet-4-5")) == {"claude": True}
    assert evaluator.evaluate(call(0.5, model="gpt-4o")) == {}
