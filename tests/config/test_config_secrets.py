"""Secrets of a config never reach a problem message, check-config's output or the sidecar's logs.

Every test config here carries the same recognisable secrets; each error path is provoked and
its whole output searched for them.
"""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from otlp_enricher.cli import main
from otlp_enricher.config import parse_config
from otlp_enricher.confignode import ConfigError

PASSWORD = "Pw-9f3k2-LOKI"
TOKEN = "Tk-77aa1-OTLP"
HEADER = "Hd-0b0b-TEMPO"
SECRETS = (PASSWORD, TOKEN, HEADER, "userinfo-pw")


def problems_of(text: str, environ: dict[str, str] | None = None) -> str:
    """Every problem message of an invalid config, joined."""
    with pytest.raises(ConfigError) as error:
        parse_config(text, "t.yaml", environ or {})
    return str(error.value)


def assert_no_secret(output: str) -> None:
    """None of the test secrets, not even the start of one, is in ``output``."""
    for secret in SECRETS:
        assert secret not in output and secret[:8] not in output, output


@pytest.mark.parametrize("prefix", ["@", "%", "{", "*", "[", "!", "&", "|", ">", "'", '"', "#"])
def test_env_values_are_text_never_yaml(prefix: str) -> None:
    """A password starting with a YAML indicator is taken verbatim; no scanner error, no echo."""
    text = "exporters: {loki: {endpoint: 'https://loki', auth: {basic: {username: u, password: '${env:P}'}}}}"
    config = parse_config(text, "t.yaml", {"P": prefix + PASSWORD})
    assert config.exporters.loki is not None and config.exporters.loki.basic_password == prefix + PASSWORD


def test_null_and_empty_env_values_are_not_silently_empty() -> None:
    """``null`` is the four letters, not an empty password; numbers still type as numbers."""
    text = """
exporters:
  loki: {endpoint: 'https://loki', auth: {basic: {username: u, password: '${env:P}'}}, batch: {max_lines: '${env:N}'}}
"""
    config = parse_config(text, "t.yaml", {"P": "null", "N": "250"})
    assert config.exporters.loki is not None
    assert config.exporters.loki.basic_password == "null" and config.exporters.loki.batch.max_lines == 250


def test_wrong_typed_header_names_the_key_not_the_map() -> None:
    """A wrong-typed header value is reported by key; no other header value is printed."""
    text = f"""
exporters:
  tempo: {{endpoint: 'tempo:4317', headers: {{authorization: "Bearer {HEADER}", x-retries: 3}}}}
"""
    output = problems_of(text)
    assert "exporters.tempo.headers.x-retries: expected a string" in output
    assert_no_secret(output)


def test_malformed_url_with_credentials_is_not_echoed() -> None:
    """A Loki URL that is not http(s) is reported with its userinfo hidden."""
    output = problems_of("exporters: {loki: {endpoint: 'ftp://admin:userinfo-pw@loki:3100'}}")
    assert "exporters.loki.endpoint: expected an http:// or https:// URL" in output
    assert "ftp://***@loki:3100" in output
    assert_no_secret(output)


def test_wrong_typed_secrets_are_described_by_kind() -> None:
    """Token, password and header values of the wrong type: key path and kind, never the value."""
    text = f"""
receivers:
  otlp:
    protocols:
      grpc: {{endpoint: '127.0.0.1:0', auth: {{bearer_token: {{token: [{TOKEN}]}}}}}}
exporters:
  loki:
    endpoint: 'http://loki'
    auth: {{basic: {{username: u, password: [{PASSWORD}]}}, bearer_token: {{x: {TOKEN}}}}}
"""
    output = problems_of(text)
    assert "receivers.otlp.protocols.grpc.auth.bearer_token.token: expected a string, got a list" in output
    assert "exporters.loki.auth.basic.password: expected a string, got a list" in output
    assert_no_secret(output)


def test_yaml_errors_do_not_quote_the_line() -> None:
    """A syntax error is located by line and column, without PyYAML's copy of the line."""
    output = problems_of(f"exporters:\n  loki: {{endpoint: 'http://l', password: {PASSWORD}: x}}\n")
    assert "not valid YAML" in output and "line 2" in output
    assert_no_secret(output)


def test_credentials_over_plain_http_are_warned_about(tmp_path: Path) -> None:
    """Basic auth to an http:// Loki is accepted with a warning naming the key, not the password."""
    config_file = tmp_path / "c.yaml"
    config_file.write_text(
        f"exporters: {{loki: {{endpoint: 'http://loki:3100', auth: {{basic: {{username: u, password: {PASSWORD}}}}}}}}}"
    )
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        assert main(["check-config", str(config_file)]) == 0
    assert "exporters.loki: auth.basic sent in clear text over http://" in err.getvalue()
    assert_no_secret(out.getvalue() + err.getvalue())
    https = parse_config(config_file.read_text().replace("http://", "https://"), "t", {})
    assert https.warnings == ()


def test_check_config_output_never_holds_a_secret(tmp_path: Path) -> None:
    """Every failing shape at once through the real command: exit 2, no secret in its output."""
    config_file = tmp_path / "bad.yaml"
    config_file.write_text(
        f"""
receivers:
  otlp:
    protocols:
      http: {{endpoint: '127.0.0.1:0', auth: {{bearer_token: {{token: {TOKEN}, filename: /nonexistent}}}}}}
exporters:
  loki:
    endpoint: 'loki://u:userinfo-pw@loki'
    headers: {{Authorization: 'Basic {PASSWORD}', X-N: 1}}
    auth: {{basic: {{username: u, password: {{nested: {PASSWORD}}}}}}}
  tempo: {{endpoint: 'tempo:4317', headers: {{x-api-key: [{HEADER}]}}}}
"""
    )
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        assert main(["check-config", str(config_file)]) == 2
    output = out.getvalue() + err.getvalue()
    assert "exporters.loki.headers.X-N: expected a string" in output
    assert "exactly one of token, filename" in output
    assert_no_secret(output)
