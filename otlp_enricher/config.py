"""The whole configuration: YAML in the Collector's vocabulary, loaded and validated once at start.

Every problem is reported together, each as ``key.path: expected …, got …``; unknown keys are
errors; ``${env:NAME}`` and ``${env:NAME:-default}`` are expanded in every string value after the
YAML is parsed, as plain text (a value that is wholly one variable becomes a number or boolean only
when it is spelled as one; it is never parsed as YAML, so ``@``, ``{`` or ``null`` stay text). No
problem message echoes a value under a secret-bearing key (``password``, ``token``, ``auth``,
``headers``, ``hash_key`` …) or the userinfo of a URL: those are described by kind only. With no
file at all the embedded ``default-config.yaml`` runs the sidecar with no other service: OTLP on
4317/4318, metrics on 9464, prompt logs and spans written as JSON lines under ``storage.directory``.
This is the only module that reads the environment.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml

from otlp_enricher.exporter.budget import ON_FULL_POLICIES
from otlp_enricher.governance.settings import (
    PERIOD_SECONDS,
    AlertsConfig,
    BudgetSpec,
    BurnRateAlert,
    RollupConfig,
)
from otlp_enricher.processor.pricing import PriceOverride, PricingSettings
from otlp_enricher.processor.redaction import (
    BUILTIN_SCRUBBERS,
    TARGETS,
    USER_ID_MODES,
    RedactionSettings,
    UserPattern,
    validate_pattern,
)
from otlp_enricher.processor.slo import SloSpec
from otlp_enricher.security.auth import BearerTokenConfig, ServerAuthConfig
from otlp_enricher.security.tls import TLS_VERSIONS, ServerTlsConfig
from otlp_enricher.semconv.extract import UsageSemantics
from otlp_enricher.semconv.keys import is_forbidden_label_key
from otlp_enricher.semconv.scopes import ScopeRule, version_key

DEFAULT_CONFIG_RESOURCE = "default-config.yaml"
_ENV_PATTERN = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_RESERVED_LABELS = frozenset(
    {"provider", "model", "operation", "status", "reason", "type", "slo", "outcome", "le", "budget", "period"}
)
#: Identifier keys that name a tenant or a team, not a person or a request: allowed as labels when
#: listed explicitly in ``labels.allow`` (the cardinality guard still caps their values). Every
#: other ``*.id`` key (user, session, conversation, request) stays refused.
TENANT_LABEL_KEYS = frozenset(
    {"tenant.id", "tenant_id", "team.id", "team_id", "organization.id", "org.id", "organization_id", "org_id"}
)
_DURATION = re.compile(r"^[1-9][0-9]*(ms|s|m|h|d|w|y)$")

# Buckets fit for LLM calls: 10 ms to ~5.5 min for whole calls, 1 ms to 60 s for first tokens.
DEFAULT_DURATION_BUCKETS = (
    0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300,
)  # fmt: skip
DEFAULT_TTFT_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 7.5, 10, 20, 30, 60)
DEFAULT_TPOT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.2, 0.5, 1)


class ConfigError(ValueError):
    """The configuration is invalid; ``problems`` lists every problem with its key path."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A ``host:port`` to listen on or connect to."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class GrpcReceiverConfig:
    """``receivers.otlp.protocols.grpc``; ``max_connections`` 0 = a share of the fd limit."""

    endpoint: Endpoint
    max_recv_msg_size_mib: int = 64
    tls: ServerTlsConfig | None = None
    auth: ServerAuthConfig | None = None
    max_concurrent_requests: int = 16
    max_connections: int = 0
    idle_timeout_s: float = 60.0


@dataclass(frozen=True, slots=True)
class HttpReceiverConfig:
    """``receivers.otlp.protocols.http``; ``max_connections`` 0 = a share of the fd limit."""

    endpoint: Endpoint
    max_request_body_size_mib: int = 64
    tls: ServerTlsConfig | None = None
    auth: ServerAuthConfig | None = None
    max_concurrent_requests: int = 8
    max_connections: int = 0
    read_header_timeout_s: float = 10.0
    read_timeout_s: float = 30.0
    idle_timeout_s: float = 60.0


@dataclass(frozen=True, slots=True)
class ReceiversConfig:
    """``receivers.otlp``: each protocol is on when its key is present."""

    grpc: GrpcReceiverConfig | None
    http: HttpReceiverConfig | None


@dataclass(frozen=True, slots=True)
class LabelsConfig:
    """``processors.genai.labels``: extra labels (label → attribute keys) and their caps."""

    allow: Mapping[str, tuple[str, ...]]
    max_values_per_label: int = 100
    max_values: Mapping[str, int] = field(default_factory=dict)
    max_value_length: int = 128
    max_series: int = 50_000


@dataclass(frozen=True, slots=True)
class BucketsConfig:
    """``processors.genai.buckets``: histogram boundaries in seconds (SLO thresholds are added)."""

    duration_s: tuple[float, ...] = DEFAULT_DURATION_BUCKETS
    time_to_first_token_s: tuple[float, ...] = DEFAULT_TTFT_BUCKETS
    time_per_output_token_s: tuple[float, ...] = DEFAULT_TPOT_BUCKETS


@dataclass(frozen=True, slots=True)
class GenaiProcessorConfig:
    """``processors.genai``."""

    pricing: PricingSettings
    usage: UsageSemantics
    slos: tuple[SloSpec, ...]
    labels: LabelsConfig
    buckets: BucketsConfig
    budgets: tuple[BudgetSpec, ...] = ()
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    rollup: RollupConfig = field(default_factory=RollupConfig)
    otel_metrics: bool = True


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
    """``retry_on_failure`` of an exporter; ``max_elapsed_s`` 0 retries for as long as the spool has room."""

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

    on_full: str = "backpressure"


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
    encoding: str = "protobuf"
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
    protocol: str = "grpc"
    compression: str = "gzip"
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


@dataclass(frozen=True, slots=True)
class StorageConfig:
    """``storage``: the directory for spools and, without Loki/Tempo, the local output files."""

    directory: Path
    fsync: str = "batch"
    max_spool_bytes: int = 1 << 30
    max_dead_letter_bytes: int = 64 << 20
    """``storage.dead_letters.max_bytes``: per exporter; past it the oldest file is dropped (counted)."""


@dataclass(frozen=True, slots=True)
class LogsConfig:
    """``service.telemetry.logs``: the sidecar's own log events."""

    level: str = "info"
    encoding: str = "auto"


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
        raise ConfigError([f"{source}: not valid YAML ({_yaml_problem(error)})"]) from None
    if raw is None:
        raw = {}
    errors: list[str] = []
    if not isinstance(raw, dict):
        raise ConfigError([f"{source}: expected a mapping at the top level, got {_kind(raw)}"])
    expanded = _expand_env(raw, "", environ, errors)
    root = _Node(expanded, "", errors)
    processors = root.child("processors")
    redaction = _redaction(processors.child("redaction"))  # before _genai, which rejects unknown keys
    config = Config(
        receivers=_receivers(root.child("receivers")) if root.has("receivers") else _DEFAULT_RECEIVERS,
        genai=_genai(processors),
        exporters=_exporters(root.child("exporters")),
        storage=_storage(root.child("storage")),
        service=_service(root.child("service")),
        source=source,
        redaction=redaction,
    )
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


def _expand_env(value: Any, path: str, environ: Mapping[str, str], errors: list[str]) -> Any:
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in environ:
                return environ[name]
            if default is not None:
                return default
            errors.append(f"{path or '<root>'}: environment variable {name} is not set and has no default")
            return ""

        expanded = _ENV_PATTERN.sub(substitute, value)
        if expanded != value and _ENV_PATTERN.fullmatch(value):
            return _scalar(expanded)
        return expanded
    if isinstance(value, dict):
        return {key: _expand_env(item, _join(path, str(key)), environ, errors) for key, item in value.items()}
    if isinstance(value, list):
        return [_expand_env(item, f"{path}[{index}]", environ, errors) for index, item in enumerate(value)]
    return value


_INTEGER = re.compile(r"[-+]?[0-9]+")
_FLOAT = re.compile(r"[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)(?:[eE][-+]?[0-9]+)?")
_SECRET_KEY = re.compile(r"password|passwd|token|secret|auth|headers|hash_key|api[_-]?key|credential|cookie", re.I)
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s'\"]+@")


def _scalar(text: str) -> Any:
    """An environment value that is a whole config value: a number or boolean when spelled as one
    (so ``max_lines: ${env:N}`` works), otherwise the text itself, never YAML-parsed."""
    if _INTEGER.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    return {"true": True, "false": False}.get(text, text)


def _yaml_problem(error: yaml.YAMLError) -> str:
    """The problem and its line/column, without PyYAML's snippet of the line (it may hold a secret)."""
    problem = getattr(error, "problem", None) or type(error).__name__
    mark = getattr(error, "problem_mark", None)
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else str(problem)


def is_secret_path(path: str) -> bool:
    """Whether a config key path names a value that must never be echoed (credentials, headers)."""
    return bool(_SECRET_KEY.search(path))


def describe(path: str, value: Any) -> str:
    """``value`` for a problem message: its kind only under a secret-bearing key, URL userinfo hidden."""
    if is_secret_path(path):
        return f"{_kind(value)} (value not shown)"
    return _USERINFO.sub(r"\1***@", repr(value))


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


T = TypeVar("T")


class _Node:
    """A mapping being validated: typed getters that record problems instead of raising."""

    def __init__(self, data: Any, path: str, errors: list[str]) -> None:
        self.path = path
        self._errors = errors
        self._used: set[str] = set()
        if data is None:
            data = {}
        if not isinstance(data, dict):
            self.error(path, f"expected a mapping, got {_kind(data)}")
            data = {}
        self._data: dict[str, Any] = data

    def error(self, path: str, message: str) -> None:
        self._errors.append(f"{path or '<root>'}: {message}")

    def has(self, key: str) -> bool:
        return key in self._data

    def names(self) -> list[str]:
        return [str(key) for key in self._data]

    def raw(self, key: str) -> Any:
        self._used.add(key)
        return self._data.get(key)

    def child(self, key: str) -> _Node:
        return _Node(self.raw(key), _join(self.path, key), self._errors)

    def _typed(self, key: str, default: T, check: Callable[[Any], T | None], expected: str) -> T:
        value = self.raw(key)
        if value is None:
            return default
        checked = check(value)
        if checked is None:
            path = _join(self.path, key)
            self.error(path, f"expected {expected}, got {describe(path, value)}")
            return default
        return checked

    def string(self, key: str, default: str = "", choices: tuple[str, ...] = ()) -> str:
        def check(value: Any) -> str | None:
            if not isinstance(value, str) or (choices and value not in choices):
                return None
            return value

        expected = "one of " + ", ".join(choices) if choices else "a string"
        return self._typed(key, default, check, expected)

    def required_string(self, key: str) -> str:
        if self.raw(key) is None:
            self.error(_join(self.path, key), "is required")
            return ""
        return self.string(key)

    def number(self, key: str, default: float, minimum: float = 0.0, maximum: float = math.inf) -> float:
        def check(value: Any) -> float | None:
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                return None
            return float(value) if minimum <= value <= maximum else None

        bounds = f"a number from {minimum:g}" + (f" to {maximum:g}" if math.isfinite(maximum) else " up")
        return self._typed(key, default, check, bounds)

    def optional_number(self, key: str, minimum: float = 0.0, maximum: float = math.inf) -> float | None:
        return None if self.raw(key) is None else self.number(key, 0.0, minimum, maximum)

    def integer(self, key: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
        def check(value: Any) -> int | None:
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                return None
            return None if maximum is not None and value > maximum else value

        expected = f"a whole number from {minimum} up" if maximum is None else f"a whole number {minimum}–{maximum}"
        return self._typed(key, default, check, expected)

    def duration(self, key: str, default_s: float, minimum_s: float = 0.0) -> float:
        """A Collector duration (``"30s"``, ``"1m30s"``, ``"500ms"``) or a number of seconds."""

        def check(value: Any) -> float | None:
            seconds = parse_duration(value)
            return seconds if seconds is not None and seconds >= minimum_s else None

        return self._typed(key, default_s, check, f"a duration such as 30s or 1m, from {minimum_s:g}s up")

    def boolean(self, key: str, default: bool) -> bool:
        return self._typed(key, default, lambda v: v if isinstance(v, bool) else None, "true or false")

    def endpoint(self, key: str, default: str) -> Endpoint:
        raw = self.raw(key)
        value = default if raw is None else raw
        parsed = parse_endpoint(value) if isinstance(value, str) else None
        if parsed is None:
            path = _join(self.path, key)
            self.error(path, f"expected host:port, got {describe(path, value)}")
            return parse_endpoint(default) or Endpoint("127.0.0.1", 0)
        return parsed

    def string_list(self, key: str) -> tuple[str, ...]:
        value = self.raw(key)
        if value is None:
            return ()
        if isinstance(value, str):
            return (value,)
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return tuple(value)
        path = _join(self.path, key)
        self.error(path, f"expected a string or a list of strings, got {describe(path, value)}")
        return ()

    def string_map(self, key: str) -> dict[str, str]:
        value = self.raw(key)
        if value is None:
            return {}
        path = _join(self.path, key)
        if isinstance(value, dict):
            wrong = [str(k) for k, v in value.items() if not isinstance(v, str)]
            if not wrong:
                return {str(k): v for k, v in value.items()}
            for name in wrong:
                self.error(f"{path}.{name}", f"expected a string, got {describe(path, value[name])}")
            return {}
        self.error(path, f"expected a mapping of strings to strings, got {describe(path, value)}")
        return {}

    def list_of_nodes(self, key: str) -> list[_Node]:
        value = self.raw(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.error(_join(self.path, key), f"expected a list, got {_kind(value)}")
            return []
        return [_Node(item, f"{_join(self.path, key)}[{i}]", self._errors) for i, item in enumerate(value)]

    def done(self, *nested: str) -> None:
        """Report keys nobody asked for; ``nested`` are keys whose children were checked elsewhere."""
        for key in self._data:
            if key not in self._used and key not in nested:
                self.error(_join(self.path, str(key)), "unknown key")


_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def parse_duration(value: Any) -> float | None:
    """Seconds of a Go-style duration string or a plain number; ``None`` when malformed."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) and value >= 0 else None
    if not isinstance(value, str) or not value:
        return None
    text, total, position = value.strip(), 0.0, 0
    if text == "0":
        return 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != position:
            return None
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        position = match.end()
    return total if position == len(text) and position else None


def parse_endpoint(value: str) -> Endpoint | None:
    """``host:port`` or ``[v6]:port`` → :class:`Endpoint`; ``None`` when malformed."""
    match = re.fullmatch(r"\[([0-9a-fA-F:.]+)\]:(\d{1,5})|([^:\s\[\]]*):(\d{1,5})", value.strip())
    if not match:
        return None
    host = match.group(1) or match.group(3) or "0.0.0.0"
    port = int(match.group(2) or match.group(4))
    return Endpoint(host, port) if port <= 65535 else None


_DEFAULT_RECEIVERS = ReceiversConfig(
    GrpcReceiverConfig(Endpoint("0.0.0.0", 4317)), HttpReceiverConfig(Endpoint("0.0.0.0", 4318))
)


def _receivers(node: _Node) -> ReceiversConfig:
    otlp = node.child("otlp")
    protocols = otlp.child("protocols")
    grpc = http = None
    if protocols.has("grpc"):
        g = protocols.child("grpc")
        grpc = GrpcReceiverConfig(
            g.endpoint("endpoint", "0.0.0.0:4317"),
            g.integer("max_recv_msg_size_mib", 64, 1),
            tls=_server_tls(g, grpc=True),
            auth=_server_auth(g),
            max_concurrent_requests=g.integer("max_concurrent_requests", 16, 1),
            max_connections=g.integer("max_connections", 0, 0),
            idle_timeout_s=g.duration("idle_timeout", 60.0, 0.1),
        )
        g.done()
    if protocols.has("http"):
        h = protocols.child("http")
        http = HttpReceiverConfig(
            h.endpoint("endpoint", "0.0.0.0:4318"),
            h.integer("max_request_body_size_mib", 64, 1),
            tls=_server_tls(h),
            auth=_server_auth(h),
            max_concurrent_requests=h.integer("max_concurrent_requests", 8, 1),
            max_connections=h.integer("max_connections", 0, 0),
            read_header_timeout_s=h.duration("read_header_timeout", 10.0, 0.1),
            read_timeout_s=h.duration("read_timeout", 30.0, 0.1),
            idle_timeout_s=h.duration("idle_timeout", 60.0, 0.1),
        )
        h.done()
    if grpc is None and http is None:
        protocols.error(protocols.path, "expected at least one of grpc, http")
    protocols.done()
    otlp.done()
    node.done()
    return ReceiversConfig(grpc, http)


def _server_tls(listener: _Node, grpc: bool = False) -> ServerTlsConfig | None:
    """``tls`` of a listener (configtls): cert and key required, TLS 1.2 or 1.3."""
    if not listener.has("tls"):
        return None
    node = listener.child("tls")
    versions = ("1.2",) if grpc else tuple(TLS_VERSIONS)
    tls = ServerTlsConfig(
        cert_file=node.required_string("cert_file"),
        key_file=node.required_string("key_file"),
        client_ca_file=node.string("client_ca_file"),
        min_version=node.string("min_version", "1.2", versions),  # grpcio exposes no minimum version
        reload_interval_s=node.duration("reload_interval", 0.0, 0.0),
    )
    for key in ("cert_file", "key_file", "client_ca_file"):
        value = getattr(tls, key)
        if value and not os.path.isfile(value):
            node.error(_join(node.path, key), "expected a readable file, which this path is not")
    node.done()
    return tls


def _server_auth(listener: _Node) -> ServerAuthConfig | None:
    """``auth`` of a listener: ``bearer_token: {token | filename, scheme}`` or ``basic: {htpasswd_file}``."""
    if not listener.has("auth"):
        return None
    node = listener.child("auth")
    config: ServerAuthConfig | None = None
    if node.has("bearer_token"):
        bearer = node.child("bearer_token")
        token_config = BearerTokenConfig(
            token=bearer.string("token"), filename=bearer.string("filename"), scheme=bearer.string("scheme", "Bearer")
        )
        if bool(token_config.token) == bool(token_config.filename):
            bearer.error(bearer.path, "expected exactly one of token, filename")
        elif token_config.filename and not os.path.isfile(token_config.filename):
            bearer.error(_join(bearer.path, "filename"), "expected a readable file, which this path is not")
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9._~+/-]*", token_config.scheme):
            bearer.error(_join(bearer.path, "scheme"), "expected an HTTP auth scheme name such as Bearer")
        bearer.done()
        config = ServerAuthConfig(bearer_token=token_config)
    if node.has("basic"):
        basic = node.child("basic")
        htpasswd = basic.required_string("htpasswd_file")
        if htpasswd and not os.path.isfile(htpasswd):
            basic.error(_join(basic.path, "htpasswd_file"), "expected a readable file, which this path is not")
        basic.done()
        if config is not None:
            node.error(node.path, "expected one of bearer_token, basic, not both")
        config = ServerAuthConfig(htpasswd_file=htpasswd)
    if config is None:
        node.error(node.path, "expected bearer_token or basic")
    node.done()
    return config


def _genai(processors: _Node) -> GenaiProcessorConfig:
    node = processors.child("genai")
    labels = _labels(node.child("labels"))
    config = GenaiProcessorConfig(
        pricing=_pricing(node.child("pricing")),
        usage=_usage(node.child("usage")),
        slos=tuple(_slo(item) for item in node.list_of_nodes("slos")),
        labels=labels,
        buckets=_buckets(node.child("buckets")),
        budgets=tuple(_budget(item, labels) for item in node.list_of_nodes("budgets")),
        alerts=_alerts(node.child("alerts")),
        rollup=_rollup(node.child("rollup")),
        otel_metrics=node.boolean("otel_metrics", True),
    )
    names = [slo.name for slo in config.slos]
    for name in {name for name in names if names.count(name) > 1}:
        node.error(_join(node.path, "slos"), f"SLO name {name!r} is used more than once")
    budget_names = [budget.name for budget in config.budgets]
    for name in {name for name in budget_names if budget_names.count(name) > 1}:
        node.error(_join(node.path, "budgets"), f"budget name {name!r} is used more than once")
    node.done()
    processors.done()
    return config


def _pricing(node: _Node) -> PricingSettings:
    overrides: dict[str, PriceOverride] = {}
    models = node.child("models")
    for model in models.names():
        entry = models.child(model)
        overrides[model] = PriceOverride(
            input_mtok=entry.optional_number("input_mtok"),
            output_mtok=entry.optional_number("output_mtok"),
            cache_read_mtok=entry.optional_number("cache_read_mtok"),
            cache_write_mtok=entry.optional_number("cache_write_mtok"),
            cache_write_1h_mtok=entry.optional_number("cache_write_1h_mtok"),
            output_reasoning_mtok=entry.optional_number("output_reasoning_mtok"),
            request_usd=entry.optional_number("request_usd"),
        )
        entry.done()
    discounts_node = node.child("discounts")
    discounts = {key: discounts_node.number(key, 0.0, 0.0, 1.0) for key in discounts_node.names()}
    settings = PricingSettings(
        aliases=node.string_map("aliases"),
        overrides=overrides,
        discounts=discounts,
        prefer_span_cost=node.boolean("prefer_span_cost", True),
    )
    node.done()
    return settings


def _usage(node: _Node) -> UsageSemantics:
    usage = UsageSemantics(
        frozenset(node.string_list("input_excludes_cache_scopes")),
        tuple(_scope_rule(item) for item in node.list_of_nodes("scopes")),
    )
    node.done()
    return usage


_INPUT_SEMANTICS = {"includes_cache": True, "excludes_cache": False}


def _scope_rule(node: _Node) -> ScopeRule:
    """One ``usage.scopes`` row: ``{scope, input: includes_cache|excludes_cache, provider?,
    min_version?, below_version?}``."""
    scope = node.required_string("scope")
    if not node.has("input"):
        node.error(_join(node.path, "input"), "is required (includes_cache or excludes_cache)")
    semantics = node.string("input", "includes_cache", tuple(_INPUT_SEMANTICS))
    rule = ScopeRule(
        scope=scope,
        input_includes_cache=_INPUT_SEMANTICS[semantics],
        provider=node.string("provider"),
        min_version=node.string("min_version"),
        below_version=node.string("below_version"),
        evidence=f"config {node.path}",
    )
    for key in ("min_version", "below_version"):
        value = getattr(rule, key)
        if value and not version_key(value):
            node.error(_join(node.path, key), f"expected a dotted version such as 1.36.9, got {value!r}")
    node.done()
    return rule


def _slo(node: _Node) -> SloSpec:
    name = node.required_string("name")
    if name and not re.fullmatch(r"[A-Za-z0-9_.:-]+", name):
        node.error(_join(node.path, "name"), f"expected letters, digits and _ . : -, got {name!r}")
    match = node.child("match")
    spec = SloSpec(
        name=name,
        objective=node.number("objective", 0.99, 0.0, 1.0),
        latency_threshold_s=node.optional_number("latency_threshold_s", 1e-6),
        ttft_threshold_s=node.optional_number("ttft_threshold_s", 1e-6),
        providers=match.string_list("provider"),
        models=match.string_list("model"),
        operations=match.string_list("operation"),
    )
    if spec.latency_threshold_s is None and spec.ttft_threshold_s is None:
        node.error(node.path, "expected latency_threshold_s, ttft_threshold_s or both")
    if not node.has("objective"):
        node.error(_join(node.path, "objective"), "is required (a ratio such as 0.99)")
    match.done()
    node.done()
    return spec


def _labels(node: _Node) -> LabelsConfig:
    allow: dict[str, tuple[str, ...]] = {}
    raw = node.raw("allow")
    path = _join(node.path, "allow")
    if isinstance(raw, list):
        entries = {re.sub(r"[^a-zA-Z0-9_]", "_", str(key)): (str(key),) for key in raw}
    elif isinstance(raw, dict):
        entries = {}
        for label, keys in raw.items():
            if isinstance(keys, str):
                entries[str(label)] = (keys,)
            elif isinstance(keys, list) and keys and all(isinstance(k, str) for k in keys):
                entries[str(label)] = tuple(keys)
            else:
                node.error(f"{path}.{label}", f"expected an attribute key or a list of them, got {keys!r}")
    elif raw is None:
        entries = {}
    else:
        node.error(path, f"expected a list of attribute keys or a mapping label → keys, got {raw!r}")
        entries = {}
    for label, keys in entries.items():
        if not _LABEL_NAME.match(label) or label.startswith("__") or label in _RESERVED_LABELS:
            node.error(f"{path}.{label}", "expected a Prometheus label name not used by the metrics themselves")
        elif forbidden := [key for key in keys if is_forbidden_label_key(key) and key not in TENANT_LABEL_KEYS]:
            node.error(
                f"{path}.{label}",
                f"{', '.join(forbidden)} identifies a request or carries content and can never be a label",
            )
        else:
            allow[label] = keys
    max_values_node = node.child("max_values")
    max_values = {key: max_values_node.integer(key, 100, 1) for key in max_values_node.names()}
    labels = LabelsConfig(
        allow=allow,
        max_values_per_label=node.integer("max_values_per_label", 100, 1),
        max_values=max_values,
        max_value_length=node.integer("max_value_length", 128, 8),
        max_series=node.integer("max_series", 50_000, 1000),
    )
    node.done()
    return labels


def _budget(node: _Node, labels: LabelsConfig) -> BudgetSpec:
    """One ``processors.genai.budgets`` entry; ``match`` may use provider, model and allow-listed labels."""
    name = node.required_string("name")
    if name and not re.fullmatch(r"[A-Za-z0-9_.:-]+", name):
        node.error(_join(node.path, "name"), f"expected letters, digits and _ . : -, got {name!r}")
    if not node.has("amount_usd"):
        node.error(_join(node.path, "amount_usd"), "is required (US dollars per period)")
    match = node.string_map("match")
    for label in match:
        if label not in labels.allow and label not in ("provider", "model"):
            node.error(
                _join(node.path, f"match.{label}"),
                "expected provider, model or a label of processors.genai.labels.allow",
            )
    fractions = node.raw("alert_at")
    alert_at: tuple[float, ...] = (0.5, 0.8, 1.0)
    if fractions is not None:
        if (
            isinstance(fractions, list)
            and fractions
            and all(isinstance(f, int | float) and not isinstance(f, bool) and 0 < f <= 10 for f in fractions)
        ):
            alert_at = tuple(sorted({float(f) for f in fractions}))
        else:
            node.error(
                _join(node.path, "alert_at"), f"expected a list of fractions such as [0.5, 0.8, 1], got {fractions!r}"
            )
    budget = BudgetSpec(
        name=name,
        amount_usd=node.number("amount_usd", 1.0, 1e-6),
        period=node.string("period", "month", tuple(PERIOD_SECONDS)),
        match=match,
        alert_at=alert_at,
        projection=node.boolean("projection", True),
    )
    node.done()
    return budget


def _alerts(node: _Node) -> AlertsConfig:
    """``processors.genai.alerts``: thresholds of the rules ``otlp-enricher rules`` generates."""
    default = AlertsConfig()
    burn_rates = default.burn_rates
    if node.has("burn_rates"):
        burn_rates = tuple(_burn_rate(item) for item in node.list_of_nodes("burn_rates"))
    alerts = AlertsConfig(
        job=node.string("job", default.job) or default.job,
        runbook_url=node.string("runbook_url", default.runbook_url) or default.runbook_url,
        burn_rates=burn_rates,
        error_ratio=node.number("error_ratio", default.error_ratio, 0.0, 1.0),
        rate_limit_ratio=node.number("rate_limit_ratio", default.rate_limit_ratio, 0.0, 1.0),
        ttft_regression_factor=node.number("ttft_regression_factor", default.ttft_regression_factor, 1.0),
        cost_anomaly_factor=node.number("cost_anomaly_factor", default.cost_anomaly_factor, 1.0),
        cost_anomaly_min_usd_per_hour=node.number(
            "cost_anomaly_min_usd_per_hour", default.cost_anomaly_min_usd_per_hour
        ),
        spool_full_ratio=node.number("spool_full_ratio", default.spool_full_ratio, 0.01, 1.0),
        oldest_unsent_age_s=node.number("oldest_unsent_age_s", default.oldest_unsent_age_s, 1.0),
    )
    node.done()
    return alerts


def _rollup(node: _Node) -> RollupConfig:
    """``processors.genai.rollup``: per-trace and per-conversation cost summaries."""
    rollup = RollupConfig(
        enabled=node.boolean("enabled", True),
        idle_s=node.number("idle_s", 30.0, 0.1),
        max_open=node.integer("max_open", 10_000, 1),
    )
    node.done()
    return rollup


def _burn_rate(node: _Node) -> BurnRateAlert:
    def duration(key: str, default: str) -> str:
        value = node.string(key, default)
        if not _DURATION.match(value):
            node.error(_join(node.path, key), f"expected a Prometheus duration such as 5m or 1h, got {value!r}")
            return default
        return value

    alert = BurnRateAlert(
        severity=node.string("severity", "page", ("page", "ticket")),
        factor=node.number("factor", 14.4, 1.0),
        long_window=duration("long_window", "1h"),
        short_window=duration("short_window", "5m"),
        for_=duration("for", "2m"),
    )
    node.done()
    return alert


def _buckets(node: _Node) -> BucketsConfig:
    def boundaries(key: str, default: tuple[float, ...]) -> tuple[float, ...]:
        value = node.raw(key)
        if value is None:
            return default
        if (
            isinstance(value, list)
            and value
            and all(isinstance(v, int | float) and not isinstance(v, bool) and v > 0 for v in value)
            and list(value) == sorted(set(value))
        ):
            return tuple(float(v) for v in value)
        node.error(_join(node.path, key), f"expected increasing positive numbers, got {value!r}")
        return default

    buckets = BucketsConfig(
        duration_s=boundaries("duration_s", DEFAULT_DURATION_BUCKETS),
        time_to_first_token_s=boundaries("time_to_first_token_s", DEFAULT_TTFT_BUCKETS),
        time_per_output_token_s=boundaries("time_per_output_token_s", DEFAULT_TPOT_BUCKETS),
    )
    node.done()
    return buckets


def _exporters(node: _Node) -> ExportersConfig:
    prometheus = node.child("prometheus")
    prometheus_config = PrometheusExporterConfig(
        prometheus.endpoint("endpoint", "0.0.0.0:9464"),
        tls=_server_tls(prometheus),
        auth=_server_auth(prometheus),
        max_connections=prometheus.integer("max_connections", 0, 0),
        enable_lifecycle=prometheus.boolean("enable_lifecycle", False),
    )
    prometheus.done()
    loki = _loki(node.child("loki")) if node.has("loki") else None
    tempo = _tempo(node.child("tempo")) if node.has("tempo") else None
    node.done()
    return ExportersConfig(prometheus_config, loki, tempo)


def _retry(node: _Node) -> RetryConfig:
    retry = RetryConfig(
        initial_interval_s=node.number("initial_interval_s", 1.0, 0.001),
        max_interval_s=node.number("max_interval_s", 30.0, 0.001),
        multiplier=node.number("multiplier", 1.5, 1.0),
        randomization_factor=node.number("randomization_factor", 0.5, 0.0, 1.0),
        max_elapsed_s=node.number("max_elapsed_s", 0.0),
    )
    node.done()
    return retry


def _sending_queue(node: _Node) -> SendingQueueConfig:
    queue = SendingQueueConfig(on_full=node.string("on_full", "backpressure", ON_FULL_POLICIES))
    node.done()
    return queue


def _tls(node: _Node) -> TlsConfig:
    tls = TlsConfig(
        insecure=node.boolean("insecure", False),
        insecure_skip_verify=node.boolean("insecure_skip_verify", False),
        ca_file=node.string("ca_file"),
        cert_file=node.string("cert_file"),
        key_file=node.string("key_file"),
    )
    node.done()
    return tls


def _loki(node: _Node) -> LokiExporterConfig:
    endpoint = node.required_string("endpoint")
    if endpoint and not re.match(r"^https?://[^/\s]", endpoint):
        path = _join(node.path, "endpoint")
        node.error(path, f"expected an http:// or https:// URL, got {describe(path, endpoint)}")
    auth = node.child("auth")
    basic = auth.child("basic")
    batch = node.child("batch")
    config = LokiExporterConfig(
        endpoint=endpoint,
        encoding=node.string("encoding", "protobuf", ("protobuf", "json")),
        tenant_id=node.string("tenant_id"),
        headers=node.string_map("headers"),
        basic_username=basic.string("username"),
        basic_password=basic.string("password"),
        bearer_token=auth.string("bearer_token"),
        tls=_tls(node.child("tls")),
        timeout_s=node.number("timeout_s", 10.0, 0.001),
        max_line_bytes=node.integer("max_line_bytes", 256_000, 1024),
        labels=_loki_labels(node),
        max_model_values=node.integer("max_model_values", 100, 1),
        max_streams=node.integer("max_streams", 1000, 1),
        batch=BatchConfig(
            max_lines=batch.integer("max_lines", 1000, 1),
            max_bytes=batch.integer("max_bytes", 1_048_576, 1024),
            timeout_s=batch.number("timeout_s", 1.0, 0.001),
        ),
        retry=_retry(node.child("retry_on_failure")),
        sending_queue=_sending_queue(node.child("sending_queue")),
    )
    basic.done()
    auth.done()
    batch.done()
    node.done()
    return config


def _tempo(node: _Node) -> TempoExporterConfig:
    config = TempoExporterConfig(
        endpoint=node.required_string("endpoint"),
        protocol=node.string("protocol", "grpc", ("grpc", "http")),
        compression=node.string("compression", "gzip", ("gzip", "none")),
        compression_level=node.integer("compression_level", 1, 1, 9),
        headers=node.string_map("headers"),
        tls=_tls(node.child("tls")),
        timeout_s=node.number("timeout_s", 5.0, 0.001),
        strip_content=node.boolean("strip_content", False),
        retry=_retry(node.child("retry_on_failure")),
        sending_queue=_sending_queue(node.child("sending_queue")),
    )
    node.done()
    return config


def _storage(node: _Node) -> StorageConfig:
    dead_letters = node.child("dead_letters")
    storage = StorageConfig(
        directory=Path(node.string("directory", "./otlp-enricher-data") or "./otlp-enricher-data"),
        fsync=node.string("fsync", "batch", ("always", "batch", "never")),
        max_spool_bytes=node.integer("max_spool_bytes", 1 << 30, 1 << 20),
        max_dead_letter_bytes=dead_letters.integer("max_bytes", 64 << 20, 64 << 10),
    )
    dead_letters.done()
    node.done()
    return storage


def _service(node: _Node) -> ServiceConfig:
    telemetry = node.child("telemetry")
    logs = telemetry.child("logs")
    service = ServiceConfig(
        logs=LogsConfig(
            level=logs.string("level", "info", ("debug", "info", "warning", "error")),
            encoding=logs.string("encoding", "auto", ("auto", "json", "console")),
        ),
        shutdown_timeout_s=node.number("shutdown_timeout_s", 10.0, 0.1),
        workers=node.integer("workers", 1, 1, 64),
        worker_port_step=node.integer("worker_port_step", 0, 0, 1000),
    )
    logs.done()
    telemetry.done()
    node.done()
    return service


_LOKI_OWN_LABELS = frozenset({"service", "provider", "model"})


def _loki_labels(node: _Node) -> dict[str, str]:
    """``exporters.loki.labels``: static stream labels such as ``environment``; few, never identifiers."""
    labels = node.string_map("labels")
    for name in labels:
        if not _LABEL_NAME.match(name) or name.startswith("__") or name in _LOKI_OWN_LABELS:
            node.error(_join(node.path, f"labels.{name}"), "expected a label name other than service, provider, model")
    if len(labels) > 8:
        node.error(_join(node.path, "labels"), f"expected at most 8 static labels, got {len(labels)}")
    return labels


def _redaction(node: _Node) -> RedactionSettings:
    """``processors.redaction``: scrubbers for prompt logs and re-exported span content."""
    scrubbers = node.string_list("scrubbers") if node.has("scrubbers") else BUILTIN_SCRUBBERS
    for name in scrubbers:
        if name not in BUILTIN_SCRUBBERS:
            node.error(
                _join(node.path, "scrubbers"), f"expected names from {', '.join(BUILTIN_SCRUBBERS)}, got {name!r}"
            )
    patterns = []
    for item in node.list_of_nodes("patterns"):
        pattern = UserPattern(item.required_string("name"), item.required_string("regex"), item.string("replacement"))
        if pattern.regex and (problem := validate_pattern(pattern.regex)):
            item.error(_join(item.path, "regex"), f"expected a usable regular expression: {problem}")
        item.done()
        patterns.append(pattern)
    apply_to = node.string_list("apply_to") if node.has("apply_to") else TARGETS
    for target in apply_to:
        if target not in TARGETS:
            node.error(_join(node.path, "apply_to"), f"expected names from {', '.join(TARGETS)}, got {target!r}")
    settings = RedactionSettings(
        enabled=node.boolean("enabled", True),
        scrubbers=tuple(name for name in scrubbers if name in BUILTIN_SCRUBBERS),
        patterns=tuple(patterns),
        user_id=node.string("user_id", "hash", USER_ID_MODES),
        hash_key=node.string("hash_key"),
        apply_to=tuple(apply_to),
    )
    node.done()
    return settings
