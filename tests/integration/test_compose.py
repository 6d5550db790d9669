"""compose.yaml and the files it mounts under deploy/ are consistent, pinned and valid.

There is no Docker engine in CI, so the stack is checked statically: the wiring between services
(names, ports, mounted files) is compared with the configs that use it, and every config that a
real tool can check is checked by that tool — ``promtool`` for Prometheus rules and config,
a real Prometheus for the dashboard's PromQL, the built Collector for the gateway config, and
``otlp-enricher check-config`` for the sidecar's config. The demo traffic generator is run
against a real Collector.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.net import free_port

from .conftest import StartCollector, StartPrometheus
from .tools import REPO_ROOT, read_json_lines, validate_collector_config, wait_until

COMPOSE_FILE = REPO_ROOT / "compose.yaml"
DEPLOY = REPO_ROOT / "deploy"
GATEWAY_CONFIG = REPO_ROOT / "collector" / "gateway.yaml"
ENRICHER_CONFIG = DEPLOY / "otlp-enricher" / "config.yaml"
PROMETHEUS_DIR = DEPLOY / "prometheus"
DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))

#: Metric names otlp-enricher exports that rules and dashboards may use.
ENRICHER_METRICS = {
    "llm_requests_total",
    "llm_errors_total",
    "llm_tokens_total",
    "llm_cost_usd_total",
    "llm_unpriced_requests_total",
    "llm_slo_requests_total",
    "llm_slo_objective_ratio",
    "otlp_enricher_spans_received_total",
    "otlp_enricher_spans_rejected_total",
    "llm_cost_source_requests_total",
    "llm_budget_usd",
    "otlp_enricher_llm_spans_total",
    "otlp_enricher_exporter_sent_total",
    "otlp_enricher_exporter_send_failed_total",
    "otlp_enricher_exporter_dead_lettered_total",
    "otlp_enricher_exporter_enqueue_failed_total",
    "otlp_enricher_exporter_dropped_total",
    "otlp_enricher_spool_bytes",
    "otlp_enricher_spool_oldest_unsent_age_seconds",
    "otlp_enricher_label_values_folded_total",
    "otlp_enricher_redaction_failures_total",
    "otlp_enricher_trace_rollups_evicted_total",
    "otlp_enricher_trace_summaries_dropped_total",
}
ENRICHER_HISTOGRAMS = {
    "llm_request_duration_seconds",
    "llm_time_to_first_token_seconds",
    "llm_time_per_output_token_seconds",
    "llm_trace_cost_usd",
}
STANDARD_METRICS = {"up"}

_ENV_REFERENCE = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def load_yaml(path: Path) -> Any:
    """Parse one YAML file."""
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """compose.yaml, parsed."""
    data: dict[str, Any] = load_yaml(COMPOSE_FILE)
    return data


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services of compose.yaml by name."""
    result: dict[str, dict[str, Any]] = compose["services"]
    return result


def bind_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """``(host path, container path)`` of a service's bind mounts (short syntax, ``./`` paths)."""
    mounts = []
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            mounts.append((source, target))
    return mounts


def container_ports(service: dict[str, Any]) -> set[int]:
    """The container-side ports a service declares in ``ports`` and ``expose``."""
    ports = {int(str(item).split(":")[-1].split("/")[0]) for item in service.get("ports", [])}
    return ports | {int(str(item)) for item in service.get("expose", [])}


def resolve_env(value: str, environment: dict[str, str]) -> str:
    """Expand Collector-style ``${env:NAME:-default}`` references with ``environment``."""
    return _ENV_REFERENCE.sub(lambda m: environment.get(m.group(1), m.group(2) or ""), value)


def split_host_port(address: str) -> tuple[str, int]:
    """``host:port`` (optionally with a URL scheme and path) into its parts."""
    address = re.sub(r"^[a-z]+://", "", address).split("/")[0]
    host, port = address.rsplit(":", 1)
    return host, int(port)


def assert_service_port(compose: dict[str, Any], address: str, what: str) -> None:
    """``address`` names a compose service and a port that service declares."""
    host, port = split_host_port(address)
    assert host in services(compose), f"{what}: {address} names no service in compose.yaml"
    assert port in container_ports(services(compose)[host]), (
        f"{what}: {address}, but service {host} declares ports {sorted(container_ports(services(compose)[host]))}"
    )


def recording_rule_names() -> set[str]:
    """Names recorded by deploy/prometheus/rules/*.yml."""
    return {
        rule["record"]
        for path in sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))
        for group in load_yaml(path)["groups"]
        for rule in group["rules"]
        if "record" in rule
    }


def known_metric_names() -> set[str]:
    """Every metric name a rule or dashboard may select."""
    histogram_series = {f"{name}_{suffix}" for name in ENRICHER_HISTOGRAMS for suffix in ("bucket", "sum", "count")}
    return ENRICHER_METRICS | histogram_series | STANDARD_METRICS | recording_rule_names()


_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset", "bool"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (identifiers that are not functions/keywords)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range selectors
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.$:])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])(?!\s*\()", text):
        name = match.group(1)
        if name.lower() not in _KEYWORDS | {"inf", "nan"}:
            names.add(name)
    return names


def dashboard_exprs(path: Path) -> list[str]:
    """Every Prometheus ``expr`` of a dashboard's panels (rows included)."""
    dashboard = json.loads(path.read_text())

    def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for panel in items:
            yield panel
            yield from panels(panel.get("panels", []))

    return [
        target["expr"]
        for panel in panels(dashboard["panels"])
        for target in panel.get("targets", [])
        if target.get("datasource", {}).get("type") != "loki"  # LogQL, not PromQL
    ]


def rule_exprs() -> list[str]:
    """Every ``expr`` of deploy/prometheus/rules/*.yml."""
    return [
        rule["expr"]
        for path in sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))
        for group in load_yaml(path)["groups"]
        for rule in group["rules"]
    ]


# --------------------------------------------------------------------------------------------
# compose.yaml structure


def test_compose_has_the_whole_pipeline(compose: dict[str, Any]) -> None:
    """Every stage of the pipeline is a service."""
    expected = {"traffic", "otelcol", "otlp-enricher", "prometheus", "alertmanager", "loki", "tempo", "grafana"}
    assert expected <= set(services(compose))


def test_bind_mounted_paths_exist(compose: dict[str, Any]) -> None:
    """Every host path mounted into a container exists in the repository."""
    for name, service in services(compose).items():
        for source, _ in bind_mounts(service):
            assert (REPO_ROOT / source).exists(), f"{name} mounts {source}, which does not exist"
        if "build" in service:
            assert (REPO_ROOT / service["build"] / "Dockerfile").is_file(), f"{name}: no Dockerfile"


def test_images_are_pinned_to_exact_versions(compose: dict[str, Any]) -> None:
    """No ``latest``, no floating major/minor tags: every image names an x.y.z version."""
    for name, service in services(compose).items():
        if "image" not in service:
            assert "build" in service, f"{name} has neither image nor build"
            continue
        image = service["image"]
        assert ":" in image.rsplit("/", 1)[-1], f"{name}: {image} has no tag"
        tag = image.rsplit(":", 1)[1]
        assert tag != "latest" and re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{name}: {image} is not an exact version"


def test_dependencies_refer_to_existing_services(compose: dict[str, Any]) -> None:
    """depends_on names existing services; service_healthy targets have a healthcheck; no cycles."""
    all_services = services(compose)
    dockerfile_has_healthcheck = "HEALTHCHECK" in (REPO_ROOT / "Dockerfile").read_text()
    for name, service in all_services.items():
        for dependency, spec in service.get("depends_on", {}).items():
            assert dependency in all_services, f"{name} depends on unknown service {dependency}"
            condition = spec["condition"]
            assert condition in {"service_started", "service_healthy", "service_completed_successfully"}
            if condition == "service_healthy":
                target = all_services[dependency]
                has_check = "healthcheck" in target and not target["healthcheck"].get("disable", False)
                built_with_check = "build" in target and dockerfile_has_healthcheck
                assert has_check or built_with_check, (
                    f"{name} waits for {dependency} to be healthy; it has no healthcheck"
                )

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"depends_on cycle: {' -> '.join((*path, name))}"
        for dependency in all_services[name].get("depends_on", {}):
            visit(dependency, (*path, name))

    for name in all_services:
        visit(name, ())


# --------------------------------------------------------------------------------------------
# Wiring between services


def test_collector_runs_the_tested_gateway_config(compose: dict[str, Any]) -> None:
    """The Collector mounts collector/gateway.yaml itself and runs it."""
    otelcol = services(compose)["otelcol"]
    mounts = dict(bind_mounts(otelcol))
    assert "./collector/gateway.yaml" in mounts, "otelcol must mount collector/gateway.yaml, the tested file"
    assert f"--config={mounts['./collector/gateway.yaml']}" in otelcol["command"]
    assert otelcol["image"].startswith("otel/opentelemetry-collector-contrib:")


def test_collector_exports_to_the_otlp_enricher_grpc_port(compose: dict[str, Any]) -> None:
    """The gateway's exporter endpoint (as compose sets it, and by default) is otlp-enricher's gRPC port."""
    gateway = load_yaml(GATEWAY_CONFIG)
    exporter_endpoint = gateway["exporters"]["otlp_grpc"]["endpoint"]
    enricher_grpc = load_yaml(ENRICHER_CONFIG)["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
    _, grpc_port = split_host_port(enricher_grpc)

    environment = {key: str(value) for key, value in services(compose)["otelcol"].get("environment", {}).items()}
    for env in (environment, {}):  # as compose runs it, and as users copy it unchanged
        host, port = split_host_port(resolve_env(exporter_endpoint, env))
        assert host == "otlp-enricher" and host in services(compose)
        assert port == grpc_port
        assert port in container_ports(services(compose)["otlp-enricher"])


def test_otlp_enricher_mounts_its_config_and_reaches_loki_and_tempo(compose: dict[str, Any]) -> None:
    """otlp-enricher runs the mounted deploy config; its Loki and Tempo endpoints match those services."""
    enricher = services(compose)["otlp-enricher"]
    mounts = dict(bind_mounts(enricher))
    target = mounts["./deploy/otlp-enricher/config.yaml"]
    command = enricher["command"]
    assert command[command.index("--config") + 1] == target

    config = load_yaml(ENRICHER_CONFIG)
    loki_port = load_yaml(DEPLOY / "loki" / "loki.yaml")["server"]["http_listen_port"]
    loki_host, port = split_host_port(config["exporters"]["loki"]["endpoint"])
    assert (loki_host, port) == ("loki", loki_port)
    assert_service_port(compose, config["exporters"]["loki"]["endpoint"], "otlp-enricher loki exporter")

    tempo_receivers = load_yaml(DEPLOY / "tempo" / "tempo.yaml")["distributor"]["receivers"]["otlp"]["protocols"]
    _, tempo_grpc_port = split_host_port(tempo_receivers["grpc"]["endpoint"])
    tempo_host, port = split_host_port(config["exporters"]["tempo"]["endpoint"])
    assert (tempo_host, port) == ("tempo", tempo_grpc_port)
    assert_service_port(compose, config["exporters"]["tempo"]["endpoint"], "otlp-enricher tempo exporter")

    _, metrics_port = split_host_port(config["exporters"]["prometheus"]["endpoint"])
    assert metrics_port == 9464, "the Dockerfile HEALTHCHECK and the scrape config use 9464"


def test_otlp_enricher_config_is_accepted_by_otlp_enricher() -> None:
    """``otlp-enricher check-config`` accepts deploy/otlp-enricher/config.yaml."""
    result = subprocess.run(
        [sys.executable, "-m", "otlp_enricher", "check-config", str(ENRICHER_CONFIG)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"


def test_prometheus_scrapes_existing_services(compose: dict[str, Any]) -> None:
    """Every scrape target and Alertmanager address is a service port; rules are mounted with the config."""
    prometheus = services(compose)["prometheus"]
    assert dict(bind_mounts(prometheus))["./deploy/prometheus"] == "/etc/prometheus"
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    assert "--enable-feature=exemplar-storage" in prometheus["command"]

    config = load_yaml(PROMETHEUS_DIR / "prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert "otlp-enricher" in jobs
    for job in jobs.values():
        for static in job["static_configs"]:
            for target in static["targets"]:
                assert_service_port(compose, target, f"scrape job {job['job_name']}")
    for alertmanager in config["alerting"]["alertmanagers"]:
        for static in alertmanager["static_configs"]:
            for target in static["targets"]:
                assert_service_port(compose, target, "alertmanager target")


def test_grafana_datasources_point_at_services(compose: dict[str, Any]) -> None:
    """Data source URLs name services and ports; exemplar, trace→logs links use existing uids."""
    grafana = services(compose)["grafana"]
    assert dict(bind_mounts(grafana))["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    datasources = load_yaml(DEPLOY / "grafana" / "provisioning" / "datasources" / "datasources.yaml")["datasources"]
    by_uid = {source["uid"]: source for source in datasources}
    assert {"prometheus", "loki", "tempo"} <= set(by_uid)
    for source in datasources:
        assert_service_port(compose, source["url"], f"grafana datasource {source['name']}")
    assert by_uid["prometheus"]["type"] == "prometheus"
    assert by_uid["tempo"]["type"] == "tempo"
    assert by_uid["loki"]["type"] == "loki"

    destinations = by_uid["prometheus"]["jsonData"]["exemplarTraceIdDestinations"]
    assert {"name": "trace_id", "datasourceUid": "tempo"} in destinations
    traces_to_logs = by_uid["tempo"]["jsonData"]["tracesToLogsV2"]
    assert traces_to_logs["datasourceUid"] == "loki"
    assert traces_to_logs["filterByTraceID"] is True

    providers = load_yaml(DEPLOY / "grafana" / "provisioning" / "dashboards" / "dashboards.yaml")["providers"]
    dashboards_dir = dict(bind_mounts(grafana))["./deploy/grafana/dashboards"]
    assert [provider["options"]["path"] for provider in providers] == [dashboards_dir]


def test_dockerfile_runs_the_sidecar_as_non_root() -> None:
    """The image: a python:3.11-slim runtime stage (the native core built in a Rust stage), non-root,
    otlp-enricher entrypoint, /healthz healthcheck."""
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert re.findall(r"^FROM (\S+)", dockerfile, re.M)[-1] == "python:3.11-slim-bookworm"
    assert "COPY native /src/native" in dockerfile and "pip wheel" in dockerfile
    user = re.findall(r"^USER (\S+)$", dockerfile, re.M)
    assert user and user[-1].split(":")[0] not in {"0", "root"}
    assert 'ENTRYPOINT ["otlp-enricher"]' in dockerfile
    assert 'CMD ["serve", "--config", "/etc/otlp-enricher/config.yaml"]' in dockerfile
    assert re.search(r"^HEALTHCHECK .*\n.*http://127\.0\.0\.1:9464/healthz", dockerfile, re.M)
    assert "MALLOC_MMAP_THRESHOLD_=131072" in dockerfile and "MALLOC_TRIM_THRESHOLD_=131072" in dockerfile
    for sources in re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile, re.M):
        for source in sources.split():
            assert (REPO_ROOT / source).exists(), f"Dockerfile copies {source}, which does not exist"


# --------------------------------------------------------------------------------------------
# Rules and dashboards


def test_dashboards_parse_and_use_known_metrics() -> None:
    """Each dashboard is JSON with a uid and panels; its PromQL selects only known metric names."""
    assert DASHBOARDS, "no dashboard under deploy/grafana/dashboards"
    known = known_metric_names()
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        assert dashboard["uid"] and dashboard["panels"]
        exprs = dashboard_exprs(path)
        assert exprs, f"{path.name} has no PromQL"
        for expr in exprs:
            unknown = metric_names(expr) - known
            assert not unknown, f"{path.name}: {expr!r} uses unknown metrics {sorted(unknown)}"


def test_rules_use_known_metrics() -> None:
    """Recording and alerting rules select only otlp-enricher's metrics, standard ones and recorded ones."""
    known = known_metric_names()
    for expr in rule_exprs():
        unknown = metric_names(expr) - known
        assert not unknown, f"{expr!r} uses unknown metrics {sorted(unknown)}"


def test_metric_name_extraction() -> None:
    """The PromQL scan used above finds metric names and skips functions, labels and keywords."""
    expr = (
        'histogram_quantile(0.95, sum by (model, le) (rate(llm_request_duration_seconds_bucket{model=~"a.+"}'
        "[$__rate_interval]))) / on (slo) group_left slo:x:ratio > 1e3 and up"
    )
    assert metric_names(expr) == {"llm_request_duration_seconds_bucket", "slo:x:ratio", "up"}


@pytest.mark.prometheus
def test_promtool_checks_rules_and_config(promtool_binary: Path) -> None:
    """``promtool check rules``, ``check config`` and the rule unit tests pass."""
    rules = sorted(str(path) for path in (PROMETHEUS_DIR / "rules").glob("*.yml"))
    commands = [
        [str(promtool_binary), "check", "rules", *rules],
        [str(promtool_binary), "check", "config", str(PROMETHEUS_DIR / "prometheus.yml")],
        [str(promtool_binary), "test", "rules", *map(str, sorted((PROMETHEUS_DIR / "tests").glob("*.yml")))],
    ]
    for command in commands:
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 0, f"{' '.join(command)}\n{result.stdout}\n{result.stderr}"


@pytest.mark.prometheus
def test_dashboard_queries_run_in_prometheus(start_prometheus: StartPrometheus) -> None:
    """A real Prometheus parses and evaluates every dashboard query (Grafana variables substituted)."""
    prometheus = start_prometheus([])
    for path in DASHBOARDS:
        for expr in dashboard_exprs(path):
            query = expr.replace("$__rate_interval", "1m").replace("$__range", "1h").replace("$__interval", "15s")
            prometheus.query(query)  # raises on a parse or evaluation error


# --------------------------------------------------------------------------------------------
# Things that run


@pytest.mark.collector
def test_gateway_config_validates_with_compose_environment(otelcol_binary: Path, compose: dict[str, Any]) -> None:
    """The built Collector accepts gateway.yaml with the environment compose.yaml gives it."""
    environment = {key: str(value) for key, value in services(compose)["otelcol"].get("environment", {}).items()}
    result = validate_collector_config(otelcol_binary, GATEWAY_CONFIG, environment)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"


@pytest.mark.collector
def test_demo_traffic_sends_llm_spans(start_collector: StartCollector, tmp_path: Path) -> None:
    """deploy/demo/traffic.py sends gen_ai.* client spans that a Collector accepts."""
    grpc_endpoint = f"127.0.0.1:{free_port()}"
    output = tmp_path / "spans.jsonl"
    env = {
        "TEMPO_PEER_GRPC_ENDPOINT": grpc_endpoint,
        "TEMPO_PEER_HTTP_ENDPOINT": f"127.0.0.1:{free_port()}",
        "TEMPO_PEER_FILE": str(output),
    }
    host, port = grpc_endpoint.split(":")
    start_collector(REPO_ROOT / "collector" / "tempo-peer.yaml", env, wait_for=[(host, int(port))])

    result = subprocess.run(
        [
            *(sys.executable, str(DEPLOY / "demo" / "traffic.py"), "--endpoint", grpc_endpoint),
            *("--count", "3", "--interval-s", "0.05", "--seed", "7"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr

    def llm_spans() -> list[dict[str, Any]] | None:
        spans = [
            span
            for batch in read_json_lines(output)
            for resource_spans in batch["resourceSpans"]
            for scope_spans in resource_spans["scopeSpans"]
            for span in scope_spans["spans"]
            if any(item["key"] == "gen_ai.provider.name" for item in span.get("attributes", []))
        ]
        return spans or None

    spans = wait_until(llm_spans, timeout_s=30, what="demo LLM spans in the tempo-peer file")
    for span in spans:
        attributes = {item["key"]: item["value"] for item in span["attributes"]}
        assert attributes["gen_ai.request.model"]["stringValue"] in {"gpt-4o-mini", "claude-sonnet-4-5"}
        assert span["parentSpanId"], "the LLM call is a child of the request span"
