"""The whole pipeline through real programs, checked at every hop against the provider's own log.

    app (OTel SDK + OpenLLMetry openai + anthropic's own tracing, real SDKs → fake provider)
      ──OTLP/gRPC──▶ Collector (collector/gateway.yaml, unchanged)
      ──OTLP/gRPC──▶ otlp-enricher serve ──OTLP/gRPC──▶ Collector (collector/tempo-peer.yaml → file)
                                          ──Loki push──▶ Collector (collector/loki-check.yaml → file)
                                          ◀──scrape──── Prometheus

The app is ``tests/fixtures/app.py`` in the recording venv (``tests/fixtures/record.py`` builds it
on first use). Ground truth: the spans the app's OTLP exporter reported as delivered (its JSON
summary) and the fake provider's log of the usage it sent. Provider semantics are applied here,
independently of the code under test (OpenAI ``prompt_tokens`` include cached tokens; Anthropic
``input_tokens`` exclude cache reads and writes), and costs use the list prices below.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ..fake_provider import FakeProvider, SentResponse
from ..fixtures.instrumentations import CLEARED_ENV_PREFIXES
from ..fixtures.record import DEFAULT_VENV, ensure_venv
from .conftest import StartCollector, StartPrometheus
from .sidecar import Sidecar, run_sidecar
from .test_collector_configs import config_env, endpoint, log_records_in, spans_in
from .tools import COLLECTOR_DIR, REPO_ROOT, PrometheusServer, unavailable, wait_until

pytestmark = [pytest.mark.collector, pytest.mark.prometheus]

APP = REPO_ROOT / "tests" / "fixtures" / "app.py"
#: Every scenario of tests/fixtures/sdk_calls.py runs this many times (8 calls per round).
ROUNDS = 2
#: Bound on the app's run (imports, 8 × ROUNDS calls, flush).
APP_TIMEOUT_S = 120.0
#: Bound on data travelling from one program to the next.
DELIVERY_TIMEOUT_S = 30.0
#: Instrumentation scopes of the app's LLM spans (the other spans are its ``scenario`` spans).
LLM_SCOPES = {"opentelemetry.instrumentation.openai.v1", "com.anthropic.sdk.python"}

# Published list prices, USD per million tokens, of the models the fake provider answers with.
# https://openai.com/api/pricing/ (gpt-4o, gpt-4o-mini, o3-mini: input, cached input, output;
# reasoning tokens are billed as output) and https://docs.claude.com/en/docs/about-claude/pricing
# (base input, 5-minute cache write = 1.25 × input, 1-hour cache write = 2 × input,
# cache read = 0.1 × input, output; thinking tokens are billed as output).
OPENAI_PRICES = {
    "gpt-4o-2024-08-06": {"input": 2.50, "cached_input": 1.25, "output": 10.00},
    "gpt-4o-mini-2024-07-18": {"input": 0.15, "cached_input": 0.075, "output": 0.60},
    "o3-mini-2025-01-31": {"input": 1.10, "cached_input": 0.55, "output": 4.40},
}
ANTHROPIC_PRICES = {
    "claude-sonnet-4-5-20250929": {
        "input": 3.00,
        "cache_write_5m": 3.75,
        "cache_write_1h": 6.00,
        "cache_read": 0.30,
        "output": 15.00,
    },
    "claude-haiku-4-5-20251001": {
        "input": 1.00,
        "cache_write_5m": 1.25,
        "cache_write_1h": 2.00,
        "cache_read": 0.10,
        "output": 5.00,
    },
}

#: Error reason per scenario. The anthropic SDK's own tracing records no error message (only
#: ``error.type=invalid_request_error`` and the status), so "prompt is too long" can only be a
#: ``bad_request``; tests/replay pins the same gap for the recorded fixture.
ERROR_REASONS = {
    "openai-rate-limit": "rate_limit",
    "anthropic-rate-limit": "rate_limit",
    "anthropic-prompt-too-long": "bad_request",
}


# --------------------------------------------------------------------------------------------
# Ground truth from the provider's log


def provider_tokens(entry: SentResponse) -> dict[str, int]:
    """Tokens by the sidecar's types from the usage the provider sent, with the provider's semantics."""
    usage: Any = entry.usage  # a JSON object for 200 answers
    if entry.provider == "openai":
        return {
            "input": usage["prompt_tokens"],  # includes cached_tokens
            "output": usage["completion_tokens"],  # includes reasoning_tokens
            "cache_read": usage["prompt_tokens_details"]["cached_tokens"],
            "cache_write": 0,
            "reasoning": usage["completion_tokens_details"]["reasoning_tokens"],
        }
    cache_read = usage["cache_read_input_tokens"]
    cache_write = usage["cache_creation_input_tokens"]
    return {
        "input": usage["input_tokens"] + cache_read + cache_write,  # input_tokens exclude the cache
        "output": usage["output_tokens"],  # includes thinking tokens
        "cache_read": cache_read,
        "cache_write": cache_write,
        "reasoning": (usage.get("output_tokens_details") or {}).get("thinking_tokens", 0),
    }


def provider_cost_usd(entry: SentResponse) -> float:
    """The list-price cost of one answered call, computed from the raw usage."""
    usage: Any = entry.usage
    model = entry.response_model or ""
    if entry.provider == "openai":
        price = OPENAI_PRICES[model]
        cached = usage["prompt_tokens_details"]["cached_tokens"]
        return (
            float(
                (usage["prompt_tokens"] - cached) * price["input"]
                + cached * price["cached_input"]
                + usage["completion_tokens"] * price["output"]
            )
            / 1e6
        )
    price = ANTHROPIC_PRICES[model]
    split = usage["cache_creation"]
    return (
        float(
            usage["input_tokens"] * price["input"]
            + split["ephemeral_5m_input_tokens"] * price["cache_write_5m"]
            + split["ephemeral_1h_input_tokens"] * price["cache_write_1h"]
            + usage["cache_read_input_tokens"] * price["cache_read"]
            + usage["output_tokens"] * price["output"]
        )
        / 1e6
    )


@dataclass(frozen=True)
class Expected:
    """What every hop must show, derived from the app's summary and the provider's log."""

    spans: Counter[tuple[str, str]]
    llm_spans: set[tuple[str, str]]
    scenario_of_trace: dict[str, str]
    sent: list[SentResponse]

    @property
    def answered(self) -> list[SentResponse]:
        """Calls the provider answered with 200."""
        return [entry for entry in self.sent if entry.http_status == 200]

    def tokens_by_model(self) -> dict[tuple[str, str], float]:
        """(model, type) → tokens, non-zero ones only (the sidecar never adds 0)."""
        totals: Counter[tuple[str, str]] = Counter()
        for entry in self.answered:
            for kind, count in provider_tokens(entry).items():
                totals[(entry.response_model or "", kind)] += count
        return {key: float(value) for key, value in totals.items() if value}

    def cost_by_model(self) -> dict[str, float]:
        """Model → list-price cost."""
        totals: dict[str, float] = {}
        for entry in self.answered:
            model = entry.response_model or ""
            totals[model] = totals.get(model, 0.0) + provider_cost_usd(entry)
        return totals

    def tokens_of_scenario(self, scenario: str) -> dict[str, int]:
        """The provider's tokens for one (successful) scenario; every round sends the same usage."""
        (tokens,) = {tuple(sorted(provider_tokens(e).items())) for e in self.answered if e.scenario == scenario}
        return dict(tokens)

    def cost_of_scenario(self, scenario: str) -> float:
        """The list-price cost of one (successful) scenario's call."""
        (cost,) = {provider_cost_usd(e) for e in self.answered if e.scenario == scenario}
        return cost


# --------------------------------------------------------------------------------------------
# The programs


@pytest.fixture(scope="session")
def app_python() -> Path:
    """The recording venv's python (tests/fixtures/record.py), installed on first use.

    Building it needs PyPI; when that fails the test is skipped, or fails under ``CI=true``.
    """
    try:
        return ensure_venv(DEFAULT_VENV, sys.executable, install=True)
    except (subprocess.CalledProcessError, OSError) as exc:
        unavailable(f"the recording venv {DEFAULT_VENV} could not be built ({exc}); run tests/fixtures/record.py")


def app_env(gateway_grpc: str, fake: FakeProvider) -> dict[str, str]:
    """The app's environment: only standard OTel and SDK variables, pointing at the gateway and the fake."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(CLEARED_ENV_PREFIXES)}
    env.update(
        {
            "OTEL_SERVICE_NAME": "e2e-app",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{gateway_grpc}",
            "OTEL_EXPORTER_OTLP_INSECURE": "true",
            "OPENAI_BASE_URL": fake.openai_base_url,
            "OPENAI_API_KEY": "sk-fake",
            "ANTHROPIC_BASE_URL": fake.base_url,
            "ANTHROPIC_API_KEY": "sk-ant-fake",
            # gRPC and httpx honour proxy variables; everything here is on loopback.
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    return env


def run_app(python: Path, env: Mapping[str, str]) -> dict[str, Any]:
    """Run the app to completion; return its JSON summary (it must have exported every span)."""
    result = subprocess.run(
        [str(python), str(APP), "--repeat", str(ROUNDS)],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=APP_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, f"app failed ({result.returncode})\n{result.stderr[-6000:]}\n{result.stdout[-2000:]}"
    summary: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return summary


@dataclass
class Pipeline:
    """The running programs and where each writes."""

    gateway_grpc: str
    gateway_metrics: str
    sidecar: Sidecar
    tempo_file: Path
    loki_file: Path
    prometheus: PrometheusServer


@pytest.fixture(params=["protobuf", "json"])
def pipeline(
    start_collector: StartCollector, start_prometheus: StartPrometheus, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Pipeline]:
    """Tempo peer and Loki check, the sidecar exporting to them, the gateway before it, Prometheus.

    Parametrised by the Loki push encoding (snappy protobuf, gzip JSON): both through the real receiver.
    """
    tempo = config_env("tempo-peer", tmp_path)
    start_collector(COLLECTOR_DIR / "tempo-peer.yaml", tempo, wait_for=[endpoint(tempo, "TEMPO_PEER_GRPC_ENDPOINT")])
    loki = config_env("loki-check", tmp_path)
    start_collector(COLLECTOR_DIR / "loki-check.yaml", loki, wait_for=[endpoint(loki, "LOKI_CHECK_HTTP_ENDPOINT")])
    exporters = {
        "exporters": {
            "tempo": {"endpoint": tempo["TEMPO_PEER_GRPC_ENDPOINT"], "tls": {"insecure": True}},
            "loki": {
                "endpoint": f"http://{loki['LOKI_CHECK_HTTP_ENDPOINT']}/loki/api/v1/push",
                "encoding": request.param,
                "batch": {"timeout": 0.2},
            },
        }
    }
    with run_sidecar(tmp_path / "sidecar", exporters) as sidecar:
        gateway = {**config_env("gateway", tmp_path), "OTLP_ENRICHER_ENDPOINT": sidecar.grpc}
        metrics_port = int(gateway["GATEWAY_METRICS_PORT"])
        start_collector(
            COLLECTOR_DIR / "gateway.yaml",
            gateway,
            wait_for=[endpoint(gateway, "GATEWAY_GRPC_ENDPOINT"), ("127.0.0.1", metrics_port)],
        )
        prometheus = start_prometheus([sidecar.metrics])
        yield Pipeline(
            gateway_grpc=gateway["GATEWAY_GRPC_ENDPOINT"],
            gateway_metrics=f"127.0.0.1:{metrics_port}",
            sidecar=sidecar,
            tempo_file=Path(tempo["TEMPO_PEER_FILE"]),
            loki_file=Path(loki["LOKI_CHECK_FILE"]),
            prometheus=prometheus,
        )


# --------------------------------------------------------------------------------------------
# Reading each hop


def exposition(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, sorted labels) → value of a Prometheus text exposition."""
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def total(samples: Mapping[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    """The sum of the samples named ``name`` whose labels include ``labels``."""
    return sum(
        value
        for (sample, sample_labels), value in samples.items()
        if sample == name and labels.items() <= dict(sample_labels).items()
    )


def span_ids(path: Path) -> Counter[tuple[str, str]]:
    """(trace id, span id) of every span in a file-exporter OTLP/JSON file, with multiplicity."""
    return Counter((span["traceId"], span["spanId"]) for span in spans_in(path))


@dataclass(frozen=True)
class LokiEntry:
    """One entry the Loki check received: the prompt-log line (decoded), labels + metadata, timestamp."""

    line: dict[str, Any]
    attributes: dict[str, str]
    time_ns: int


def loki_entries(path: Path) -> list[LokiEntry]:
    """Every entry the Loki check wrote (the loki receiver turns labels and metadata into attributes)."""
    return [
        LokiEntry(
            line=json.loads(record["body"]["stringValue"]),
            attributes={a["key"]: a["value"]["stringValue"] for a in record.get("attributes", [])},
            time_ns=int(record["timeUnixNano"]),
        )
        for record in log_records_in(path)
    ]


def by_label(result: list[dict[str, Any]], *labels: str) -> dict[Any, float]:
    """A PromQL vector result keyed by the given labels' values."""
    keyed: dict[Any, float] = {}
    for item in result:
        values = tuple(item["metric"].get(label, "") for label in labels)
        keyed[values[0] if len(values) == 1 else values] = float(item["value"][1])
    return keyed


# --------------------------------------------------------------------------------------------
# The test


def test_instrumented_app_to_tempo_loki_and_prometheus(app_python: Path, pipeline: Pipeline) -> None:
    """Every span and LLM call the app produced arrives once at every hop, with the provider's numbers.

    * gateway: accepted and sent exactly the spans the app's exporter delivered;
    * Tempo peer: the same (trace id, span id) pairs, each once; LLM spans carry ``otlp_enricher.*``
      whose costs add up to the list-price cost;
    * Loki check: one prompt-log line per LLM call, ids of the app's LLM spans, the provider's tokens;
    * Prometheus: spans received, requests by status, errors by reason, tokens by model and type,
      cost by model, TTFT observations — all equal to what the app and the provider say.
    """
    with FakeProvider(chunk_delay_s=0.005) as fake:
        summary = run_app(app_python, app_env(pipeline.gateway_grpc, fake))
        sent = fake.sent()

    assert summary["failed_spans"] == 0
    exported = [(span["trace_id"], span["span_id"]) for span in summary["exported"]]
    expected = Expected(
        spans=Counter(exported),
        llm_spans={(s["trace_id"], s["span_id"]) for s in summary["exported"] if s["scope"] in LLM_SCOPES},
        scenario_of_trace={call["trace_id"]: call["scenario"] for call in summary["calls"]},
        sent=sent,
    )
    calls = len(summary["calls"])
    assert calls == 8 * ROUNDS
    assert len(sent) == calls, "one call, one provider response (max_retries=0)"
    assert len(expected.llm_spans) == calls, "one LLM span per call"
    assert len(exported) == 2 * calls, "an LLM span and its scenario span per call"
    assert max(expected.spans.values()) == 1

    # Hop 1: the gateway Collector's own metrics.
    gateway_url = f"http://{pipeline.gateway_metrics}/metrics"

    def gateway_sent_everything() -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
        samples = exposition(gateway_url)
        return samples if total(samples, "otelcol_exporter_sent_spans_total") >= len(exported) else None

    gateway = wait_until(
        gateway_sent_everything,
        timeout_s=DELIVERY_TIMEOUT_S,
        what="the gateway to send every span on",
        on_timeout=lambda: str(exposition(gateway_url)),
    )
    assert total(gateway, "otelcol_receiver_accepted_spans_total") == len(exported)
    assert total(gateway, "otelcol_receiver_refused_spans_total") == 0
    assert total(gateway, "otelcol_exporter_sent_spans_total") == len(exported)
    assert total(gateway, "otelcol_exporter_send_failed_spans_total") == 0

    # Hop 2: otlp-enricher → Tempo peer. Every span once, same ids.
    def tempo_has_everything() -> Counter[tuple[str, str]] | None:
        ids = span_ids(pipeline.tempo_file)
        return ids if ids.total() >= len(exported) else None

    tempo = wait_until(
        tempo_has_everything,
        timeout_s=DELIVERY_TIMEOUT_S,
        what=f"{len(exported)} spans in the Tempo peer's file",
        on_timeout=lambda: f"{span_ids(pipeline.tempo_file).total()} arrived",
    )
    assert tempo == expected.spans
    enriched = [
        span for span in spans_in(pipeline.tempo_file) if (span["traceId"], span["spanId"]) in expected.llm_spans
    ]
    attributes = [{a["key"]: a["value"] for a in span["attributes"]} for span in enriched]
    assert all("otlp_enricher.cost_source" in a for a in attributes), "an LLM span was not enriched"
    tempo_cost = sum(a["otlp_enricher.cost_usd"]["doubleValue"] for a in attributes if "otlp_enricher.cost_usd" in a)
    assert tempo_cost == pytest.approx(sum(expected.cost_by_model().values()), rel=1e-9)

    # Hop 3: otlp-enricher → Loki check. One line per LLM call, with the provider's tokens.
    def loki_has_everything() -> list[LokiEntry] | None:
        found = loki_entries(pipeline.loki_file)
        return found if len(found) >= calls else None

    entries = wait_until(
        loki_has_everything,
        timeout_s=DELIVERY_TIMEOUT_S,
        what=f"{calls} prompt-log lines at the Loki check",
        on_timeout=lambda: f"{len(loki_entries(pipeline.loki_file))} arrived",
    )
    for entry in entries:
        line = entry.line
        assert entry.time_ns == line["timestamp_ns"], "the entry's timestamp is the span start"
        assert entry.attributes == {
            "service": line["service"],
            "provider": line["provider"],
            "model": line["model"],
            "trace_id": line["trace_id"],
            "span_id": line["span_id"],
        }
    lines = [entry.line for entry in entries]
    assert len(lines) == calls
    assert {(line["trace_id"], line["span_id"]) for line in lines} == expected.llm_spans
    for line in lines:
        scenario = expected.scenario_of_trace[line["trace_id"]]
        if scenario in ERROR_REASONS:
            assert (line["status"], line["error_reason"]) == ("error", ERROR_REASONS[scenario]), line
            continue
        assert line["status"] == "ok", line
        tokens = {kind: line["tokens"][kind] for kind in ("input", "output", "cache_read", "cache_write", "reasoning")}
        assert tokens == expected.tokens_of_scenario(scenario), scenario
        assert line["cost_usd"] == pytest.approx(expected.cost_of_scenario(scenario), rel=1e-9), scenario
    assert {line["service"] for line in lines} == {"e2e-app"}

    # Hop 4: Prometheus scraping otlp-enricher.
    prometheus = pipeline.prometheus
    prometheus.wait_for_query("sum(llm_requests_total)", predicate=lambda v: v == calls, timeout_s=DELIVERY_TIMEOUT_S)
    at = time.time()

    def query(promql: str, *labels: str) -> dict[Any, float]:
        return by_label(prometheus.query(promql, at=at), *labels)

    assert query("sum(otlp_enricher_spans_received_total)") == {(): len(exported)}
    answered = len(expected.answered)
    assert query("sum by (status) (llm_requests_total)", "status") == {"ok": answered, "error": calls - answered}
    reasons = Counter(ERROR_REASONS[entry.scenario] for entry in sent if entry.http_status != 200)
    assert query("sum by (reason) (llm_errors_total)", "reason") == dict(reasons)
    assert query("sum by (model, type) (llm_tokens_total)", "model", "type") == expected.tokens_by_model()
    cost = query("sum by (model) (llm_cost_usd_total)", "model")
    assert cost == pytest.approx(expected.cost_by_model(), rel=1e-9)
    streamed = sum(1 for entry in expected.answered if entry.streaming)
    assert query("sum(llm_time_to_first_token_seconds_count)") == {(): streamed}
    assert query("sum(llm_request_duration_seconds_count)") == {(): calls}
