"""LLM call → one prompt-log line: what a person reading Loki (or the local file) needs about one call.

Derived deterministically from the span (timestamp = span start, fixed key order), so a retried
push produces the identical line and Loki de-duplicates it. :class:`PromptLogLines` is the one
place a line is rendered, for Loki and the local ``prompt-logs.jsonl`` alike: user id per policy,
content redacted (fail closed: a scrubber failure drops the content and marks the line), and,
for Loki, truncated to the line limit with a visible marker.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson

from otlp_enricher.model import LLMCall
from otlp_enricher.processor.redaction import RedactionFailed, Redactor
from otlp_enricher.semconv.messages import input_messages, output_messages
from otlp_enricher.telemetry.metrics import Metrics

_CONTENT_KEYS = ("input_messages", "output_messages")


def prompt_log_record(call: LLMCall) -> dict[str, Any]:
    """The JSON-ready record of ``call`` (content included; :class:`PromptLogLines` redacts it)."""
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
        "unpriced_reason": call.unpriced_reason or None,
        "span_cost_usd": call.span_cost_usd,
        "span_cost_reported": call.span_cost_reported if call.span_cost_usd is not None else None,
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


class PromptLogLines:
    """Renders the redacted JSON line of a call; ``max_line_bytes`` 0 means no limit."""

    def __init__(self, redactor: Redactor, metrics: Metrics, max_line_bytes: int = 0) -> None:
        self._redactor = redactor
        self._metrics = metrics
        self._max_line_bytes = max_line_bytes

    def line(self, call: LLMCall) -> bytes:
        """The JSON line: the prompt-log record, redacted, truncated to the line limit."""
        record = prompt_log_record(call)
        redactor = self._redactor
        record["user_id"] = redactor.user_id(record.get("user_id") or "")
        if redactor.prompt_logs:
            # Content was scrubbed as it was scanned (and counted then); the error text was not.
            failed = call.span is not None and call.span.redaction_failed
            counts: Counter[str] = Counter()
            try:
                record["error_type"] = redactor.scrub_value(record["error_type"], counts)
            except RedactionFailed:
                self._metrics.redaction_failures.labels("prompt_log").inc()
                record["error_type"] = None
                failed = True
            if failed:  # fail closed: content dropped, not sent raw
                for key in _CONTENT_KEYS:
                    record[key] = []
                record["redaction_failed"] = True
            for scrubber, count in counts.items():
                self._metrics.redactions.labels("prompt_log", scrubber).inc(count)
        line = orjson.dumps(record)
        if self._max_line_bytes and len(line) > self._max_line_bytes:
            line = self._truncate(record, len(line))
            self._metrics.loki_lines_truncated.inc()
        return line

    def _truncate(self, record: dict[str, Any], original: int) -> bytes:
        """Replace the message content by a preview so the line fits, keeping it valid JSON."""
        content = orjson.dumps({key: record.pop(key) for key in _CONTENT_KEYS}).decode()
        record["truncated"] = {"original_bytes": original, "limit_bytes": self._max_line_bytes}
        room = self._max_line_bytes - len(orjson.dumps(record)) - 96
        keep = content.encode()[: max(room, 0)].decode("utf-8", "ignore")
        record["content_preview"] = f"{keep}…[TRUNCATED {len(content.encode()) - len(keep.encode())} bytes]"
        line = orjson.dumps(record)
        if len(line) > self._max_line_bytes:  # even without content the record is too long
            marker = b"...[TRUNCATED]"
            line = line[: self._max_line_bytes - len(marker)] + marker
        return line
