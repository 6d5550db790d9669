"""Config: Collector-style YAML, every problem reported at once with its key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from otlp_enricher.config import load_config, parse_config
from otlp_enricher.confignode import ConfigError


def problems(text: str, environ: dict[str, str] | None = None) -> list[str]:
    """The problems ``text`` is rejected with."""
    with pytest.raises(ConfigError) as raised:
        parse_config(text, "test.yaml", environ or {})
    return raised.value.problems


def test_embedded_default_needs_nothing_else() -> None:
    """No file: OTLP on 4317/4318, metrics on 9464, local files under ./otlp-enricher-data."""
    config = load_config(None)
    assert config.receivers.grpc is not None and config.receivers.grpc.endpoint.port == 4317
    assert config.receivers.http is not None and config.receivers.http.endpoint.port == 4318
    assert config.exporters.prometheus.endpoint.port == 9464
    assert config.exporters.loki is None and config.exporters.tempo is None
    assert config.storage.directory == Path("otlp-enricher-data")


def test_every_problem_is_reported_with_its_key_path() -> None:
    """Several mistakes in one file come back together, each naming its key and what was expected."""
    found = problems(
        """
receivers: {otlp: {protocols: {grpc: {endpoint: "4317x"}, htttp: {}}}}
processors:
  genai:
    slos: [{name: fast, latency_threshold_s: -1}]
    pricing: {models: {my-model: {input_mtok: cheap}}}
exporters: {prometheus: {endpoint: 9464}, lokki: {}}
storage: {fsync: sometimes}
"""
    )
    assert "receivers.otlp.protocols.grpc.endpoint: expected host:port, got '4317x'" in found
    assert "receivers.otlp.protocols.htttp: unknown key" in found
    assert any(p.startswith("processors.genai.slos[0].latency_threshold_s: expected a number") for p in found)
    assert "processors.genai.slos[0].objective: is required (a ratio such as 0.99)" in found
    assert "processors.genai.pricing.models.my-model.input_mtok: expected a number from 0 up, got 'cheap'" in found
    assert "exporters.prometheus.endpoint: expected host:port, got 9464" in found
    assert "exporters.lokki: unknown key" in found
    assert "storage.fsync: expected one of always, batch, never, got 'sometimes'" in found


def test_identifiers_can_never_become_labels() -> None:
    """user.id, session ids and content keys are refused whatever the allow-list says."""
    found = problems("processors: {genai: {labels: {allow: {who: user.id, conv: gen_ai.conversation.id}}}}")
    assert any("labels.allow.who: user.id identifies a request" in p for p in found)
    assert any("labels.allow.conv: gen_ai.conversation.id" in p for p in found)


def test_env_expansion_with_default_and_missing_variable() -> None:
    """${env:NAME} and ${env:NAME:-default}; a missing variable without default names its key."""
    config = parse_config(
        'exporters: {prometheus: {endpoint: "${env:METRICS:-127.0.0.1:9999}"}}\n'
        'storage: {directory: "${env:DATA_DIR}"}',
        "test.yaml",
        {"DATA_DIR": "/tmp/x"},
    )
    assert str(config.exporters.prometheus.endpoint) == "127.0.0.1:9999"
    assert config.storage.directory == Path("/tmp/x")
    assert problems('storage: {directory: "${env:NOPE}"}') == [
        "storage.directory: environment variable NOPE is not set and has no default"
    ]


def test_slo_thresholds_and_duplicate_names() -> None:
    """An SLO needs a threshold; names are unique."""
    found = problems(
        "processors: {genai: {slos: [{name: a, objective: 0.9}, {name: b, objective: 0.9, latency_threshold_s: 1},"
        " {name: b, objective: 0.9, ttft_threshold_s: 1}]}}"
    )
    assert "processors.genai.slos[0]: expected latency_threshold_s, ttft_threshold_s or both" in found
    assert "processors.genai.slos: SLO name 'b' is used more than once" in found


def test_unreadable_and_non_yaml_files(tmp_path: Path) -> None:
    """A missing file and broken YAML are errors that say so."""
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_config(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("receivers: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)


def test_usage_scope_rows_are_parsed_and_validated() -> None:
    """``usage.scopes`` rows add input-inclusivity knowledge; a bad row names each mistake."""
    config = parse_config(
        "processors: {genai: {usage: {input_excludes_cache_scopes: [old.lib], scopes: ["
        "{scope: acme.llm, provider: anthropic, input: excludes_cache, min_version: '1.2', below_version: '2.0'}]}}}",
        "test.yaml",
        {},
    )
    usage = config.genai.usage
    assert usage.input_excludes_cache_scopes == frozenset({"old.lib"})
    (row,) = usage.scope_rules
    assert (row.scope, row.provider, row.input_includes_cache, row.min_version, row.below_version) == (
        "acme.llm",
        "anthropic",
        False,
        "1.2",
        "2.0",
    )
    found = problems(
        "processors: {genai: {usage: {scopes: ["
        "{provider: openai}, {scope: x, input: maybe, below_version: abc, y: 1}]}}}"
    )
    assert "processors.genai.usage.scopes[0].scope: is required" in found
    assert "processors.genai.usage.scopes[0].input: is required (includes_cache or excludes_cache)" in found
    assert (
        "processors.genai.usage.scopes[1].input: expected one of includes_cache, excludes_cache, got 'maybe'" in found
    )
    assert any(p.startswith("processors.genai.usage.scopes[1].below_version: expected a dotted version") for p in found)
    assert "processors.genai.usage.scopes[1].y: unknown key" in found


def test_tempo_compression_level_is_checked_and_defaults_to_fastest() -> None:
    """gzip level 1 by default (the Tempo client's CPU is the sidecar's); outside 1–9 is an error naming the key."""
    ok = parse_config("exporters: {tempo: {endpoint: 'tempo:4317'}}", "t", {})
    assert ok.exporters.tempo is not None and ok.exporters.tempo.compression_level == 1
    with pytest.raises(ConfigError) as raised:
        parse_config("exporters: {tempo: {endpoint: 'tempo:4317', compression_level: 12}}", "t", {})
    assert "exporters.tempo.compression_level: expected a whole number 1–9" in str(raised.value)
