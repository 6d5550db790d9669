"""``exporters`` and ``storage``: the Prometheus endpoint, Loki and Tempo clients, spools."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

from otlp_enricher.confignode import LABEL_NAME, ConfigNode, Endpoint, describe, join_path
from otlp_enricher.security.auth import ServerAuthConfig
from otlp_enricher.security.config import server_auth_config, server_tls_config
from otlp_enricher.security.tls import ServerTlsConfig

LokiEncoding = Literal["protobuf", "json"]
TempoProtocol = Literal["grpc", "http"]
Compression = Literal["gzip", "none"]
FsyncMode = Literal["always", "batch", "never"]
OnFull = Literal["backpressure", "drop_oldest"]
"""``sending_queue.on_full``: refuse intake (the upstream retries), or drop this exporter's oldest data."""


@dataclass(frozen=True, slots=True)
class PrometheusExporterConfig:
    """``exporters.prometheus``: where ``/metrics``, ``/healthz`` and ``/readyz`` are served;
    ``auth`` guards ``/metrics`` and ``/-/reload`` (probes stay open). ``enable_lifecycle`` turns
    on ``POST /-/reload``, as Prometheus' ``--web.enable-lifecycle`` does."""

    endpoint: Endpoint
    tls: ServerTlsConfig | None = None
    auth: ServerAuthConfig | None = None
    max_connections: int = 0
    enable_lifecycle: bool = False


@dataclass(frozen=True, slots=True)
class RetryConfig:
    """``retry_on_failure`` of an exporter, in the Collector's keys (``initial_interval``,
    ``max_interval``, ``max_elapsed_time``: durations); ``max_elapsed_time`` 0 retries for as long as
    the spool has room."""

    initial_interval_s: float = 1.0
    max_interval_s: float = 30.0
    multiplier: float = 1.5
    randomization_factor: float = 0.5
    max_elapsed_s: float = 0.0


@dataclass(frozen=True, slots=True)
class SendingQueueConfig:
    """``sending_queue`` of an exporter (its spool): what to do when the durable store is full.

    ``backpressure`` refuses intake (UNAVAILABLE + RetryInfo: the upstream keeps and retries the
    data; both backends wait); ``drop_oldest`` drops this exporter's oldest unsent data instead
    (counted in ``otlp_enricher_exporter_dropped_total``, logged), so the other backend keeps
    receiving. See ``exporter/budget.py``."""

    on_full: OnFull = "backpressure"


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """``tls`` of an exporter."""

    insecure: bool = False
    insecure_skip_verify: bool = False
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""


@dataclass(frozen=True, slots=True)
class BatchConfig:
    """``batch`` of the Loki exporter: a push is sent when any bound is reached."""

    max_lines: int = 1000
    max_bytes: int = 1_048_576
    timeout_s: float = 1.0


@dataclass(frozen=True, slots=True)
class LokiExporterConfig:
    """``exporters.loki``: one JSON prompt log line per LLM call, pushed to Loki."""

    endpoint: str
    encoding: LokiEncoding = "protobuf"
    tenant_id: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    basic_username: str = ""
    basic_password: str = ""
    bearer_token: str = ""
    tls: TlsConfig = field(default_factory=TlsConfig)
    timeout_s: float = 10.0
    max_line_bytes: int = 256_000
    labels: Mapping[str, str] = field(default_factory=dict)
    max_model_values: int = 100
    max_streams: int = 1000
    batch: BatchConfig = field(default_factory=BatchConfig)
    retry: RetryConfig = field(default_factory=RetryConfig)
    sending_queue: SendingQueueConfig = field(default_factory=SendingQueueConfig)


@dataclass(frozen=True, slots=True)
class TempoExporterConfig:
    """``exporters.tempo``: every span re-exported over OTLP, LLM spans enriched."""

    endpoint: str
    protocol: TempoProtocol = "grpc"
    compression: Compression = "gzip"
    # zlib level of the OTLP/HTTP body (1 fastest … 9 smallest); gRPC compresses in grpc core,
    # whose zlib level Python cannot set.
    compression_level: int = 1
    headers: Mapping[str, str] = field(default_factory=dict)
    tls: TlsConfig = field(default_factory=TlsConfig)
    timeout_s: float = 5.0
    strip_content: bool = False
    retry: RetryConfig = field(default_factory=RetryConfig)
    sending_queue: SendingQueueConfig = field(default_factory=SendingQueueConfig)


@dataclass(frozen=True, slots=True)
class ExportersConfig:
    """``exporters``: Prometheus always; Loki and Tempo when configured, else local JSON-lines files."""

    prometheus: PrometheusExporterConfig
    loki: LokiExporterConfig | None
    tempo: TempoExporterConfig | None


DEFAULT_STORAGE_DIRECTORY = Path("./otlp-enricher-data")


@dataclass(frozen=True, slots=True)
class StorageConfig:
    """``storage``: the directory for spools and, without Loki/Tempo, the local output files."""

    directory: Path
    fsync: FsyncMode = "batch"
    max_spool_bytes: int = 1 << 30
    max_dead_letter_bytes: int = 64 << 20
    """``storage.dead_letters.max_bytes``: per exporter; past it the oldest file is dropped (counted)."""


DEFAULT_PROMETHEUS = PrometheusExporterConfig(Endpoint("0.0.0.0", 9464))


def exporters_config(node: ConfigNode) -> ExportersConfig:
    """``exporters``: ``prometheus`` (always on), ``loki`` and ``tempo`` when present."""
    prometheus, d = node.child("prometheus"), DEFAULT_PROMETHEUS
    prometheus_config = PrometheusExporterConfig(
        prometheus.endpoint("endpoint", str(d.endpoint)),
        tls=server_tls_config(prometheus),
        auth=server_auth_config(prometheus),
        max_connections=prometheus.integer("max_connections", d.max_connections, 0),
        enable_lifecycle=prometheus.boolean("enable_lifecycle", d.enable_lifecycle),
    )
    prometheus.done()
    loki = _loki(node.child("loki")) if node.has("loki") else None
    tempo = _tempo(node.child("tempo")) if node.has("tempo") else None
    node.done()
    return ExportersConfig(prometheus_config, loki, tempo)


def _retry(node: ConfigNode) -> RetryConfig:
    d = RetryConfig()
    retry = RetryConfig(
        initial_interval_s=node.duration("initial_interval", d.initial_interval_s, 0.001),
        max_interval_s=node.duration("max_interval", d.max_interval_s, 0.001),
        multiplier=node.number("multiplier", d.multiplier, 1.0),
        randomization_factor=node.number("randomization_factor", d.randomization_factor, 0.0, 1.0),
        max_elapsed_s=node.duration("max_elapsed_time", d.max_elapsed_s),
    )
    node.done()
    return retry


def _sending_queue(node: ConfigNode) -> SendingQueueConfig:
    queue = SendingQueueConfig(on_full=node.choice("on_full", SendingQueueConfig().on_full, get_args(OnFull)))
    node.done()
    return queue


def _tls(node: ConfigNode) -> TlsConfig:
    d = TlsConfig()
    tls = TlsConfig(
        insecure=node.boolean("insecure", d.insecure),
        insecure_skip_verify=node.boolean("insecure_skip_verify", d.insecure_skip_verify),
        ca_file=node.string("ca_file"),
        cert_file=node.string("cert_file"),
        key_file=node.string("key_file"),
    )
    node.done()
    return tls


def _loki(node: ConfigNode) -> LokiExporterConfig:
    endpoint = node.required_string("endpoint")
    if endpoint and not re.match(r"^https?://[^/\s]", endpoint):
        path = join_path(node.path, "endpoint")
        node.error(path, f"expected an http:// or https:// URL, got {describe(path, endpoint)}")
    auth = node.child("auth")
    basic = auth.child("basic")
    batch, d, b = node.child("batch"), LokiExporterConfig(endpoint=""), BatchConfig()
    config = LokiExporterConfig(
        endpoint=endpoint,
        encoding=node.choice("encoding", d.encoding, get_args(LokiEncoding)),
        tenant_id=node.string("tenant_id"),
        headers=node.string_map("headers"),
        basic_username=basic.string("username"),
        basic_password=basic.string("password"),
        bearer_token=auth.string("bearer_token"),
        tls=_tls(node.child("tls")),
        timeout_s=node.duration("timeout", d.timeout_s, 0.001),
        max_line_bytes=node.integer("max_line_bytes", d.max_line_bytes, 1024),
        labels=_loki_labels(node),
        max_model_values=node.integer("max_model_values", d.max_model_values, 1),
        max_streams=node.integer("max_streams", d.max_streams, 1),
        batch=BatchConfig(
            max_lines=batch.integer("max_lines", b.max_lines, 1),
            max_bytes=batch.integer("max_bytes", b.max_bytes, 1024),
            timeout_s=batch.duration("timeout", b.timeout_s, 0.001),
        ),
        retry=_retry(node.child("retry_on_failure")),
        sending_queue=_sending_queue(node.child("sending_queue")),
    )
    basic.done()
    auth.done()
    batch.done()
    node.done()
    return config


def _tempo(node: ConfigNode) -> TempoExporterConfig:
    d = TempoExporterConfig(endpoint="")
    config = TempoExporterConfig(
        endpoint=node.required_string("endpoint"),
        protocol=node.choice("protocol", d.protocol, get_args(TempoProtocol)),
        compression=node.choice("compression", d.compression, get_args(Compression)),
        compression_level=node.integer("compression_level", d.compression_level, 1, 9),
        headers=node.string_map("headers"),
        tls=_tls(node.child("tls")),
        timeout_s=node.duration("timeout", d.timeout_s, 0.001),
        strip_content=node.boolean("strip_content", d.strip_content),
        retry=_retry(node.child("retry_on_failure")),
        sending_queue=_sending_queue(node.child("sending_queue")),
    )
    node.done()
    return config


def storage_config(node: ConfigNode) -> StorageConfig:
    """``storage``."""
    dead_letters, d = node.child("dead_letters"), StorageConfig(directory=DEFAULT_STORAGE_DIRECTORY)
    storage = StorageConfig(
        directory=Path(node.string("directory", str(d.directory)) or d.directory),
        fsync=node.choice("fsync", d.fsync, get_args(FsyncMode)),
        max_spool_bytes=node.integer("max_spool_bytes", d.max_spool_bytes, 1 << 20),
        max_dead_letter_bytes=dead_letters.integer("max_bytes", d.max_dead_letter_bytes, 64 << 10),
    )
    dead_letters.done()
    node.done()
    return storage


_LOKI_OWN_LABELS = frozenset({"service", "provider", "model"})


def _loki_labels(node: ConfigNode) -> dict[str, str]:
    """``exporters.loki.labels``: static stream labels such as ``environment``; few, never identifiers."""
    labels = node.string_map("labels")
    for name in labels:
        if not LABEL_NAME.match(name) or name.startswith("__") or name in _LOKI_OWN_LABELS:
            path = join_path(node.path, f"labels.{name}")
            node.error(path, "expected a label name other than service, provider, model")
    if len(labels) > 8:
        node.error(join_path(node.path, "labels"), f"expected at most 8 static labels, got {len(labels)}")
    return labels
