"""The config loader (``config.parse_config``) and what ``serve`` builds from a config it accepted.

Property: any text is a :class:`Config` or a ``ConfigError`` (never a traceback); a config that
loads also builds its metrics and pipeline (everything is validated at load, nothing fails later).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from otlp_enricher.config import credential_warnings, parse_config
from otlp_enricher.confignode import ConfigError
from otlp_enricher.service import build_metrics, build_pipeline
from tests.fuzz.seeds import config_files

MAX_LEN = 1 << 14
ENVIRON = {"LOKI_PASSWORD": "@pw{*%", "OTLP_TOKEN": "null", "EMPTY": "", "PORT": "4317"}


def seeds() -> list[bytes]:
    """The shipped configs and a few sections they leave out."""
    return [
        *(path.read_bytes() for path in config_files()),
        b"",
        b"exporters:\n  loki:\n    endpoint: http://u:${env:LOKI_PASSWORD}@loki:3100\n"
        b"    auth: {basic: {username: u, password: ${env:LOKI_PASSWORD}}}\n",
        b"receivers:\n  otlp:\n    protocols:\n      grpc: {endpoint: 127.0.0.1:${env:PORT}, "
        b"auth: {bearer_token: {token: '${env:OTLP_TOKEN}'}}}\n      http: {endpoint: 127.0.0.1:0}\n",
        b"processors:\n  genai:\n    slos: [{name: s, objective: 0.9, latency_threshold_s: 2}]\n"
        b"    pricing: {aliases: {a: openai/gpt-4o}, overrides: {m: {input_mtok: 1, output_mtok: 2}}}\n"
        b"  redaction: {user_id: hash, scrubbers: [{name: x, pattern: 'a+'}]}\n",
    ]


def check(data: bytes) -> bool:
    """Load ``data`` as a config file; raise when anything but ``ConfigError`` escapes."""
    try:
        config = parse_config(data.decode("utf-8", "replace"), "fuzz.yaml", ENVIRON)
    except ConfigError:
        return False
    credential_warnings(config)
    build_pipeline(config, build_metrics(config, CollectorRegistry()))
    return True
