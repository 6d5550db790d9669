"""``processors.genai`` and ``processors.redaction``: pricing, usage semantics, SLOs, labels,
histogram buckets and scrubbing, validated into the settings the processors take."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from otlp_enricher.confignode import LABEL_NAME, ConfigNode, join_path
from otlp_enricher.governance.config import alerts_config, budget_config, rollup_config
from otlp_enricher.governance.settings import AlertsConfig, BudgetSpec, RollupConfig
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
from otlp_enricher.semconv.extract import UsageSemantics
from otlp_enricher.semconv.keys import is_forbidden_label_key
from otlp_enricher.semconv.scopes import ScopeRule, version_key

_RESERVED_LABELS = frozenset(
    {"provider", "model", "operation", "status", "reason", "type", "slo", "outcome", "le", "budget", "period"}
)


TENANT_LABEL_KEYS = frozenset(
    {"tenant.id", "tenant_id", "team.id", "team_id", "organization.id", "org.id", "organization_id", "org_id"}
)


DEFAULT_DURATION_BUCKETS = (
    0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300,
)  # fmt: skip


DEFAULT_TTFT_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 7.5, 10, 20, 30, 60)


DEFAULT_TPOT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.2, 0.5, 1)


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


def genai_processor_config(node: ConfigNode) -> GenaiProcessorConfig:
    """``processors.genai``."""
    labels = _labels(node.child("labels"))
    config = GenaiProcessorConfig(
        pricing=_pricing(node.child("pricing")),
        usage=_usage(node.child("usage")),
        slos=tuple(_slo(item) for item in node.list_of_nodes("slos")),
        labels=labels,
        buckets=_buckets(node.child("buckets")),
        budgets=tuple(budget_config(item, labels) for item in node.list_of_nodes("budgets")),
        alerts=alerts_config(node.child("alerts")),
        rollup=rollup_config(node.child("rollup")),
        otel_metrics=node.boolean("otel_metrics", True),
    )
    names = [slo.name for slo in config.slos]
    for name in {name for name in names if names.count(name) > 1}:
        node.error(join_path(node.path, "slos"), f"SLO name {name!r} is used more than once")
    budget_names = [budget.name for budget in config.budgets]
    for name in {name for name in budget_names if budget_names.count(name) > 1}:
        node.error(join_path(node.path, "budgets"), f"budget name {name!r} is used more than once")
    node.done()
    return config


def _pricing(node: ConfigNode) -> PricingSettings:
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


def _usage(node: ConfigNode) -> UsageSemantics:
    usage = UsageSemantics(
        frozenset(node.string_list("input_excludes_cache_scopes")),
        tuple(_scope_rule(item) for item in node.list_of_nodes("scopes")),
    )
    node.done()
    return usage


_INPUT_SEMANTICS = {"includes_cache": True, "excludes_cache": False}


def _scope_rule(node: ConfigNode) -> ScopeRule:
    """One ``usage.scopes`` row: ``{scope, input: includes_cache|excludes_cache, provider?,
    min_version?, below_version?}``."""
    scope = node.required_string("scope")
    if not node.has("input"):
        node.error(join_path(node.path, "input"), "is required (includes_cache or excludes_cache)")
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
            node.error(join_path(node.path, key), f"expected a dotted version such as 1.36.9, got {value!r}")
    node.done()
    return rule


def _slo(node: ConfigNode) -> SloSpec:
    name = node.required_string("name")
    if name and not re.fullmatch(r"[A-Za-z0-9_.:-]+", name):
        node.error(join_path(node.path, "name"), f"expected letters, digits and _ . : -, got {name!r}")
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
        node.error(join_path(node.path, "objective"), "is required (a ratio such as 0.99)")
    match.done()
    node.done()
    return spec


def _labels(node: ConfigNode) -> LabelsConfig:
    allow: dict[str, tuple[str, ...]] = {}
    raw = node.raw("allow")
    path = join_path(node.path, "allow")
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
        if not LABEL_NAME.match(label) or label.startswith("__") or label in _RESERVED_LABELS:
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


def _buckets(node: ConfigNode) -> BucketsConfig:
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
        node.error(join_path(node.path, key), f"expected increasing positive numbers, got {value!r}")
        return default

    buckets = BucketsConfig(
        duration_s=boundaries("duration_s", DEFAULT_DURATION_BUCKETS),
        time_to_first_token_s=boundaries("time_to_first_token_s", DEFAULT_TTFT_BUCKETS),
        time_per_output_token_s=boundaries("time_per_output_token_s", DEFAULT_TPOT_BUCKETS),
    )
    node.done()
    return buckets


def redaction_config(node: ConfigNode) -> RedactionSettings:
    """``processors.redaction``: scrubbers for prompt logs and re-exported span content."""
    scrubbers = node.string_list("scrubbers") if node.has("scrubbers") else BUILTIN_SCRUBBERS
    for name in scrubbers:
        if name not in BUILTIN_SCRUBBERS:
            node.error(
                join_path(node.path, "scrubbers"), f"expected names from {', '.join(BUILTIN_SCRUBBERS)}, got {name!r}"
            )
    patterns = []
    for item in node.list_of_nodes("patterns"):
        pattern = UserPattern(item.required_string("name"), item.required_string("regex"), item.string("replacement"))
        if pattern.regex and (problem := validate_pattern(pattern.regex)):
            item.error(join_path(item.path, "regex"), f"expected a usable regular expression: {problem}")
        item.done()
        patterns.append(pattern)
    apply_to = node.string_list("apply_to") if node.has("apply_to") else TARGETS
    for target in apply_to:
        if target not in TARGETS:
            node.error(join_path(node.path, "apply_to"), f"expected names from {', '.join(TARGETS)}, got {target!r}")
    settings = RedactionSettings(
        enabled=node.boolean("enabled", True),
        scrubbers=tuple(name for name in scrubbers if name in BUILTIN_SCRUBBERS),
        patterns=tuple(patterns),
        user_id=node.choice("user_id", "hash", USER_ID_MODES),
        hash_key=node.string("hash_key"),
        apply_to=tuple(apply_to),
    )
    node.done()
    return settings
