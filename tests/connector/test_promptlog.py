"""The prompt-log line: one redacted JSON record per call, within the line limit, fail-closed."""

from __future__ import annotations

import hashlib
import hmac
import json

from prometheus_client import CollectorRegistry

from otlp_enricher.config import parse_config
from otlp_enricher.connector.promptlog import PromptLogLines
from otlp_enricher.model import LLMCall
from otlp_enricher.processor.redaction import Redactor
from otlp_enricher.service import build_metrics, build_pipeline
from otlp_enricher.telemetry.metrics import Metrics
from tests.otlp_builders import openai_chat, request, span

KEY = "prompt-log-test-key"
CONFIG = f"processors: {{redaction: {{user_id: hash, hash_key: {KEY}}}}}\n"
PROMPT = "Summarise the attached contract. " * 400  # ~13 kB of content
SECRET = "sk-proj-" + "A1b2C3d4E5f6G7h8I9j0" * 2


def recognised(**attributes: object) -> tuple[LLMCall, Redactor, Metrics]:
    config = parse_config(CONFIG, "test", {})
    metrics = build_metrics(config, CollectorRegistry())
    redactor = Redactor(config.redaction)
    pipeline = build_pipeline(config, metrics, redactor=redactor)
    message = request([span({**openai_chat(input_tokens=3000, output_tokens=20), **attributes})])
    calls, _ = pipeline.recognise(message.SerializeToString())
    assert len(calls) == 1
    return calls[0], redactor, metrics


def messages(text: str) -> str:
    return json.dumps([{"role": "user", "parts": [{"type": "text", "content": text}]}])


def test_the_user_id_is_a_keyed_hash_and_content_secrets_are_scrubbed() -> None:
    call, redactor, metrics = recognised(**{"user.id": "ada@example.com", "gen_ai.input.messages": messages(SECRET)})
    record = json.loads(PromptLogLines(redactor, metrics).line(call))
    expected = "h:" + hmac.new(KEY.encode(), b"ada@example.com", hashlib.sha256).hexdigest()[:16]
    assert record["user_id"] == expected
    text = json.dumps(record["input_messages"])
    assert SECRET not in text and "ada@example.com" not in json.dumps(record)


def test_a_line_over_the_limit_keeps_its_figures_and_a_content_preview_within_the_limit() -> None:
    call, redactor, metrics = recognised(**{"gen_ai.input.messages": messages(PROMPT)})
    whole = PromptLogLines(redactor, metrics).line(call)
    limit = 4096
    assert len(whole) > limit
    line = PromptLogLines(redactor, metrics, max_line_bytes=limit).line(call)
    assert len(line) <= limit
    record = json.loads(line)
    assert record["truncated"] == {"original_bytes": len(whole), "limit_bytes": limit}
    assert record["tokens"]["input"] == 3000 and record["tokens"]["output"] == 20
    assert "input_messages" not in record
    assert record["content_preview"].startswith('{"input_messages":[{"role":"user"')
    assert record["content_preview"].endswith("bytes]")


def test_a_cost_the_span_carried_is_shown_beside_ours_with_whose_it_is() -> None:
    """A gateway-reported cost (the bill) and an instrumentation's estimate are told apart; a span
    with neither says so with nulls."""
    reported, redactor, metrics = recognised(
        **{
            "gen_ai.usage.cost.amount": 0.0123,
            "gen_ai.usage.cost.currency": "USD",
            "gen_ai.usage.cost.source": "gateway",
        }
    )
    record = json.loads(PromptLogLines(redactor, metrics).line(reported))
    assert (record["span_cost_usd"], record["span_cost_reported"]) == (0.0123, True)
    estimated, redactor, metrics = recognised(**{"gen_ai.usage.cost": 0.02})
    record = json.loads(PromptLogLines(redactor, metrics).line(estimated))
    assert (record["span_cost_usd"], record["span_cost_reported"]) == (0.02, False)
    none, redactor, metrics = recognised()
    record = json.loads(PromptLogLines(redactor, metrics).line(none))
    assert (record["span_cost_usd"], record["span_cost_reported"]) == (None, None)
