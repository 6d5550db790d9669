"""LLM call → one prompt-log record: what a person reading Loki needs about one call.

Derived deterministically from the span (timestamp = span start, fixed key order), so a retried
push produces the identical line and Loki de-duplicates it.
"""

from __future__ import annotations

from typing import Any

from otlp_enricher.model import LLMCall
from otlp_enricher.semconv.messages import input_messages, output_messages


def prompt_log_record(call: LLMCall) -> dict[str, Any]:
    """The JSON-ready record of ``call`` (content included; redaction happens in the exporter)."""
    tokens = call.tokens
    record: dict[str, Any] = {
        "timestamp_ns": call.start_ns,
        "trace_id": call.trace_id.hex(),
        "span_id": call.span_id.hex(),
        "service": call.service,
        "provider": call.provider,
        "model": call.model,
        "request_model": call.request_model,
        "operation": call.operation,
        "status": call.status,
        "error_reason": call.error_reason or None,
        "error_type": call.error_type or None,
        "tokens": None
        if tokens is None
        else {
            "input": tokens.input,
            "output": tokens.output,
            "cache_read": tokens.cache_read,
            "cache_write": tokens.cache_write,
            "cache_write_1h": tokens.cache_write_1h,
            "reasoning": tokens.reasoning,
        },
        "cost_usd": call.cost_usd,
        "cost_source": call.cost_source,
        "duration_s": round(call.duration_s, 6),
        "ttft_s": call.ttft_s,
        "output_tokens_per_second": call.output_tokens_per_second,
        "finish_reasons": list(call.finish_reasons),
        "slo": {name: "good" if good else "bad" for name, good in call.slo_outcomes.items()},
        "user_id": call.user_id or None,
        "session_id": call.session_id or None,
        "input_messages": input_messages(call.attributes) if call.attributes is not None else [],
        "output_messages": output_messages(call.attributes) if call.attributes is not None else [],
    }
    return record
