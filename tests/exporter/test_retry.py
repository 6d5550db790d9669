"""The retry policy: exponential backoff with jitter, retry-after as a floor, optional give-up."""

from __future__ import annotations

import pytest

from otlp_enricher.exporter.config import RetryConfig
from otlp_enricher.exporter.retry import MAX_SERVER_DELAY_S, Backoff


def test_backoff_grows_and_is_capped() -> None:
    """Without jitter the waits are initial × multiplier^n, capped at max_interval."""
    backoff = Backoff(RetryConfig(1.0, 5.0, 2.0, 0.0), rand=lambda: 0.5)
    assert [backoff.next_delay() for _ in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_jitter_spreads_around_the_base() -> None:
    """randomization_factor 0.5 spreads a 2 s base over [1 s, 3 s)."""
    low = Backoff(RetryConfig(2.0, 30.0, 1.5, 0.5), rand=lambda: 0.0).next_delay()
    high = Backoff(RetryConfig(2.0, 30.0, 1.5, 0.5), rand=lambda: 0.999).next_delay()
    assert low == pytest.approx(1.0) and high == pytest.approx(3.0, abs=0.01)


def test_retry_after_is_a_floor_and_capped() -> None:
    """The server's delay wins when longer, never when shorter; absurd delays are capped."""
    backoff = Backoff(RetryConfig(1.0, 30.0, 1.5, 0.0), rand=lambda: 0.5)
    assert backoff.next_delay(retry_after_s=7.0) == 7.0
    assert backoff.next_delay(retry_after_s=0.1) == 1.5
    assert backoff.next_delay(retry_after_s=1e9) == MAX_SERVER_DELAY_S


def test_gives_up_only_with_a_budget() -> None:
    """max_elapsed_s 0 never gives up; otherwise the next wait may not pass the budget."""
    forever = Backoff(RetryConfig(max_elapsed_s=0.0))
    assert not forever.gives_up(elapsed_s=1e9, next_delay_s=30)
    bounded = Backoff(RetryConfig(max_elapsed_s=10.0))
    assert not bounded.gives_up(elapsed_s=5, next_delay_s=4)
    assert bounded.gives_up(elapsed_s=5, next_delay_s=6)
