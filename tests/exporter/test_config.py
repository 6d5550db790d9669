"""The config keys this work adds: processors.redaction and exporters.loki labels/max_model_values."""

from __future__ import annotations

import pytest

from otlp_enricher.config import parse_config
from otlp_enricher.confignode import ConfigError
from otlp_enricher.processor.redaction import BUILTIN_SCRUBBERS


def test_defaults_scrub_everything_and_hash_user_ids() -> None:
    """With no redaction section every built-in scrubber runs on prompt logs and spans, and user
    ids are hashed (with a key generated in the storage directory, see test_storage_files)."""
    redaction = parse_config("{}", "test", {}).redaction
    assert redaction.enabled and redaction.scrubbers == BUILTIN_SCRUBBERS
    assert redaction.apply_to == ("prompt_log", "spans") and redaction.user_id == "hash"


def test_a_full_redaction_section_parses() -> None:
    """Scrubbers, user patterns, hashing with a key from the environment, targets."""
    text = """
processors:
  redaction:
    scrubbers: [email, api_key]
    patterns: [{name: ticket, regex: 'TICKET-\\\\d+', replacement: '<ticket>'}]
    user_id: hash
    hash_key: ${env:HASH_KEY}
    apply_to: [prompt_log]
exporters:
  loki: {endpoint: 'http://loki:3100', labels: {environment: prod}, max_model_values: 20}
"""
    config = parse_config(text, "test", {"HASH_KEY": "s3cret"})
    redaction = config.redaction
    assert redaction.scrubbers == ("email", "api_key") and redaction.hash_key == "s3cret"
    assert redaction.patterns[0].name == "ticket" and redaction.patterns[0].replacement == "<ticket>"
    assert config.exporters.loki is not None
    assert config.exporters.loki.labels == {"environment": "prod"} and config.exporters.loki.max_model_values == 20


def test_every_problem_is_reported_with_its_key_path() -> None:
    """Unknown scrubbers, broken patterns, bad labels and unknown keys."""
    text = """
processors:
  redaction:
    scrubbers: [email, ssn]
    patterns: [{name: bad, regex: '('}]
    user_id: hash
    colour: red
exporters:
  loki: {endpoint: 'http://loki:3100', labels: {model: x}}
"""
    with pytest.raises(ConfigError) as error:
        parse_config(text, "test", {})
    problems = "\n".join(error.value.problems)
    assert "processors.redaction.scrubbers: expected names from" in problems and "'ssn'" in problems
    assert "processors.redaction.patterns[0].regex: expected a usable regular expression" in problems
    assert "hash_key" not in problems  # hashing without a key uses the generated one
    assert "processors.redaction.colour: unknown key" in problems
    assert "exporters.loki.labels.model: expected a label name other than" in problems
