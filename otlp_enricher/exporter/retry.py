"""Retry policy shared by the Loki and Tempo senders: exponential backoff with jitter, pure.

Follows the Collector's ``retry_on_failure`` (initial interval, multiplier, randomization factor,
cap) and the OTLP rule that a server's ``RetryInfo`` / ``Retry-After`` is a floor: the wait is
``max(backoff, retry_after)``. ``max_elapsed_s`` 0 means no give-up deadline: data stays in the
spool, which is bounded, and the receiver pushes back upstream when it is full. No I/O, no clock:
the caller passes elapsed time and a random source, so the policy is testable exactly.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from otlp_enricher.exporter.config import RetryConfig

RandomSource = Callable[[], float]
"""Returns a float in [0, 1); ``random.random`` in production, a constant in tests."""

MAX_SERVER_DELAY_S = 300.0
"""A server asking for a longer pause than this is capped: the spool keeps the data meanwhile."""


@dataclass(slots=True)
class Backoff:
    """The retry state of one batch: call :meth:`next_delay` after each retryable failure."""

    config: RetryConfig
    rand: RandomSource = random.random
    attempts: int = 0

    def next_delay(self, retry_after_s: float | None = None) -> float:
        """Seconds to wait before the next attempt, honouring the server's ``retry_after_s``."""
        config = self.config
        base = min(config.initial_interval_s * config.multiplier**self.attempts, config.max_interval_s)
        self.attempts += 1
        spread = config.randomization_factor * base
        delay = base - spread + 2 * spread * self.rand()
        if retry_after_s is not None and retry_after_s > 0:
            delay = max(delay, min(retry_after_s, MAX_SERVER_DELAY_S))
        return max(0.0, delay)

    def gives_up(self, elapsed_s: float, next_delay_s: float) -> bool:
        """Whether waiting ``next_delay_s`` more would pass ``max_elapsed_s`` (never when it is 0)."""
        limit = self.config.max_elapsed_s
        return limit > 0 and elapsed_s + next_delay_s > limit
