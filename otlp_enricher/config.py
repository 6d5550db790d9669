"""The whole configuration: YAML in the Collector's vocabulary, loaded and validated once at start.

Each section is validated by its component's config module (:mod:`otlp_enricher.receiver.config`,
:mod:`otlp_enricher.processor.config`, :mod:`otlp_enricher.exporter.config`, ...) through one
:class:`~otlp_enricher.confignode.ConfigNode`, so every problem is reported together with its key
path and no secret is echoed. With no file at all the embedded ``default-config.yaml`` runs the
sidecar with no other service: OTLP on 4317/4318, metrics on 9464, prompt logs and spans written as
JSON lines under ``storage.directory``. This is the only module that reads the environment.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal, get_args

import yaml

from otlp_enricher.confignode import ConfigError, ConfigNode, expand_env, is_secret_path, kind_of, yaml_problem
from otlp_enricher.exporter.config import ExportersConfig, StorageConfig, exporters_config, storage_config
from otlp_enricher.processor.config import GenaiProcessorConfig, genai_processor_config, redaction_config
from otlp_enricher.processor.redaction import RedactionSettings
from otlp_enricher.receiver.config import DEFAULT_RECEIVERS, ReceiversConfig, receivers_config

DEFAULT_CONFIG_RESOURCE = "default-config.yaml"


LogLevel = Literal["debug", "info", "warning", "error"]
LogEncoding = Literal["auto", "json", "console"]


@dataclass(frozen=True, slots=True)
class LogsConfig:
    """``service.telemetry.logs``: the sidecar's own log events (``auto``: console on a TTY, else JSON)."""

    level: LogLevel = "info"
    encoding: LogEncoding = "auto"


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """``service``: own telemetry and lifecycle."""

    logs: LogsConfig
    shutdown_timeout_s: float = 10.0
    # Receiver processes sharing the OTLP ports (SO_REUSEPORT), each with its own spool under
    # storage.directory/worker-N; one /metrics sums them. 1: a single process, no supervisor.
    workers: int = 1
    # 0: the workers share the receiver ports (SO_REUSEPORT: the kernel spreads connections).
    # N: worker i listens on each receiver port + i×N, so a Collector's load_balancing exporter can
    # route by trace id to each worker as to a replica (a single otlp connection is never spread).
    worker_port_step: int = 0


@dataclass(frozen=True, slots=True)
class Config:
    """The validated configuration of one otlp-enricher process."""

    receivers: ReceiversConfig
    genai: GenaiProcessorConfig
    exporters: ExportersConfig
    storage: StorageConfig
    service: ServiceConfig
    source: str = DEFAULT_CONFIG_RESOURCE
    redaction: RedactionSettings = field(default_factory=RedactionSettings)
    warnings: tuple[str, ...] = ()


def load_config(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Load and validate ``path`` (the embedded default when ``None``); raises :class:`ConfigError`."""
    if path is None:
        text = resources.files("otlp_enricher").joinpath(DEFAULT_CONFIG_RESOURCE).read_text("utf-8")
        source = DEFAULT_CONFIG_RESOURCE
    else:
        try:
            text = Path(path).read_text("utf-8")
        except OSError as error:
            raise ConfigError([f"{path}: cannot read the file ({error.strerror})"]) from error
        source = str(path)
    return parse_config(text, source, os.environ if environ is None else environ)


def parse_config(text: str, source: str, environ: Mapping[str, str]) -> Config:
    """Validate YAML ``text``; ``source`` names it in errors and in the result."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError([f"{source}: not valid YAML ({yaml_problem(error)})"]) from None
    if raw is None:
        raw = {}
    errors: list[str] = []
    if not isinstance(raw, dict):
        raise ConfigError([f"{source}: expected a mapping at the top level, got {kind_of(raw)}"])
    expanded = expand_env(raw, "", environ, errors)
    root = ConfigNode(expanded, "", errors)
    processors = root.child("processors")
    config = Config(
        receivers=receivers_config(root.child("receivers")) if root.has("receivers") else DEFAULT_RECEIVERS,
        genai=genai_processor_config(processors.child("genai")),
        exporters=exporters_config(root.child("exporters")),
        storage=storage_config(root.child("storage")),
        service=service_config(root.child("service")),
        source=source,
        redaction=redaction_config(processors.child("redaction")),
    )
    processors.done()
    root.done()
    errors.extend(_worker_problems(config))
    if errors:
        raise ConfigError(errors)
    return dataclasses.replace(config, warnings=tuple(credential_warnings(config)))


def _worker_problems(config: Config) -> list[str]:
    """Workers share the receiver ports, so those must be fixed: port 0 would give each its own."""
    if config.service.workers == 1:
        return []
    receivers = config.receivers
    return [
        f"service.workers: {config.service.workers} workers share the receiver ports, so "
        f"receivers.otlp.protocols.{name}.endpoint needs a fixed port, not 0"
        for name, receiver in (("grpc", receivers.grpc), ("http", receivers.http))
        if receiver is not None and receiver.endpoint.port == 0
    ]


def credential_warnings(config: Config) -> list[str]:
    """Credentials that would travel in clear text: Loki auth or auth-like headers over ``http://``,
    Tempo headers over an insecure connection. Each names the key, never the credential."""
    warnings: list[str] = []
    loki = config.exporters.loki
    if loki is not None and loki.endpoint.lower().startswith("http://"):
        sent = [
            name
            for name, present in (
                ("auth.basic", bool(loki.basic_username or loki.basic_password)),
                ("auth.bearer_token", bool(loki.bearer_token)),
                ("headers", any(is_secret_path(header) for header in loki.headers)),
            )
            if present
        ]
        if sent:
            warnings.append(f"exporters.loki: {', '.join(sent)} sent in clear text over http://; use https://")
    tempo = config.exporters.tempo
    clear = tempo is not None and (tempo.tls.insecure or tempo.endpoint.lower().startswith("http://"))
    if tempo is not None and clear and any(is_secret_path(header) for header in tempo.headers):
        warnings.append("exporters.tempo: headers with credentials sent in clear text; enable TLS")
    return warnings


def service_config(node: ConfigNode) -> ServiceConfig:
    """``service``: ``telemetry.logs``, the shutdown deadline and the workers."""
    telemetry = node.child("telemetry")
    logs, d, d_logs = telemetry.child("logs"), ServiceConfig(LogsConfig()), LogsConfig()
    service = ServiceConfig(
        logs=LogsConfig(
            level=logs.choice("level", d_logs.level, get_args(LogLevel)),
            encoding=logs.choice("encoding", d_logs.encoding, get_args(LogEncoding)),
        ),
        shutdown_timeout_s=node.number("shutdown_timeout_s", d.shutdown_timeout_s, 0.1),
        workers=node.integer("workers", d.workers, 1, 64),
        worker_port_step=node.integer("worker_port_step", d.worker_port_step, 0, 1000),
    )
    logs.done()
    telemetry.done()
    node.done()
    return service
