"""Token rates: time per output token and output tokens per second.

Follows the OTel definition of ``gen_ai.server.time_per_output_token``, (duration − TTFT) /
(output tokens − 1), when the time to first token is known. Without it (a call that did not stream)
the whole duration is spread over the output tokens, which still ranks models by generation speed.
"""

from __future__ import annotations


def time_per_output_token(duration_s: float, ttft_s: float | None, output_tokens: int) -> float | None:
    """Seconds per generated token, or ``None`` when there is nothing to divide."""
    if ttft_s is not None and output_tokens > 1 and duration_s >= ttft_s:
        return (duration_s - ttft_s) / (output_tokens - 1)
    if ttft_s is None and output_tokens > 0 and duration_s > 0:
        return duration_s / output_tokens
    return None


def output_tokens_per_second(duration_s: float, ttft_s: float | None, output_tokens: int) -> float | None:
    """Generation speed: output tokens over the time spent generating them (after the first token
    when that time is known, else over the whole call); ``None`` when there is nothing to divide."""
    generating_s = duration_s - ttft_s if ttft_s is not None else duration_s
    if output_tokens <= 0 or generating_s <= 0:
        return None
    return output_tokens / generating_s
