"""Loki and Tempo refusing under steady load, then recovering: every acknowledged item arrives.

The issue's acceptance scenario ("refusing for a minute") is scaled down to ``OUTAGE_S`` seconds
(environment variable ``OTLP_ENRICHER_OUTAGE_S``, default 5; set 60 for the full-length run).
The sidecar runs in-process on 127.0.0.1 port 0; the upstream is a real gRPC client that retries
like the Collector's otlp exporter.
"""

from __future__ import annotations

import statistics
import threading
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2

from otlp_enricher.exporter.deadletter import read_dead_letters
from tests.faults.harness import OUTAGE_S, InProcess, Load, Upstream
from tests.net import raw_export, status_details
from tests.peers.fake_loki import FakeLoki, Fault
from tests.peers.fake_tempo import FakeTempo, GrpcFault
from tests.peers.workload import SECRETS, make_config, mixed_request


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def test_backends_refusing_then_recovering_lose_nothing(tmp_path: Path, peers: tuple[FakeLoki, FakeTempo]) -> None:
    """Loki answers 503 and Tempo UNAVAILABLE for OUTAGE_S under load; afterwards every acknowledged
    span is in Tempo and every acknowledged LLM call's line in Loki, the upstream saw only OK, and
    acknowledgements stayed fast throughout."""
    loki, tempo = peers
    loki.refuse = Fault(503, retry_after="1")
    tempo.refuse = GrpcFault(grpc.StatusCode.UNAVAILABLE, retry_after_s=0.5)
    sidecar = InProcess(make_config(tmp_path, loki_url=loki.url, tempo_endpoint=tempo.endpoint))
    upstream = Upstream(sidecar.target)
    load = Load(upstream).start()
    try:
        assert load.wait_acked(20)
        threading.Event().wait(OUTAGE_S)  # the outage lasts a fixed time by design
        during = load.acked()
        registry = sidecar.service.registry
        for exporter in ("loki", "tempo"):
            assert registry.get_sample_value("otlp_enricher_spool_items", {"exporter": exporter}) > 0
            assert registry.get_sample_value("otlp_enricher_spool_bytes", {"exporter": exporter}) > 0
            age = registry.get_sample_value("otlp_enricher_spool_oldest_unsent_age_seconds", {"exporter": exporter})
            assert age > OUTAGE_S / 2
        loki.refuse = None
        tempo.refuse = None
        assert load.wait_acked(during + 50)
    finally:
        load.finish()
    upstream.assert_delivered(loki, tempo, 60)
    refused = sum(
        registry.get_sample_value("otlp_enricher_exporter_enqueue_failed_total", {"exporter": e, "signal": s}) or 0
        for e, s in (("loki", "log_lines"), ("tempo", "spans"))
    )
    sidecar.stop()
    # only retryable answers; UNAVAILABLE only if a long outage filled the (64 MiB) test spool
    assert set(upstream.codes) == ({"OK", "UNAVAILABLE"} if refused else {"OK"}), upstream.codes
    _assert_no_secret_left(loki, tempo)
    assert not read_dead_letters(tmp_path / "deadletter" / "loki.jsonl")
    assert not read_dead_letters(tmp_path / "deadletter" / "tempo.jsonl")
    p50, p99 = statistics.median(upstream.latencies_s), _percentile(upstream.latencies_s, 0.99)
    print(
        f"\noutage {OUTAGE_S:g}s: {load.acked()} requests ({len(upstream.acked_spans)} spans, "
        f"{len(upstream.acked_llm_span_ids)} LLM) acked; "
        f"ack p50 {p50 * 1000:.1f} ms p99 {p99 * 1000:.1f} ms max {max(upstream.latencies_s) * 1000:.1f} ms; "
        f"tempo duplicates {tempo.duplicates}, loki duplicates {loki.duplicates}"
    )
    assert p99 < 1.0  # far inside the Collector's 5 s per-attempt timeout


def test_a_full_spool_pushes_back_with_retry_info_and_loses_nothing(
    tmp_path: Path, peers: tuple[FakeLoki, FakeTempo]
) -> None:
    """With both backends down a 1 MiB spool fills: the receiver answers UNAVAILABLE with RetryInfo
    (never RESOURCE_EXHAUSTED), the upstream retries, and after recovery nothing acknowledged is lost."""
    loki, tempo = peers
    loki.refuse = Fault(503)
    tempo.refuse = GrpcFault(grpc.StatusCode.UNAVAILABLE)
    config = make_config(tmp_path, loki_url=loki.url, tempo_endpoint=tempo.endpoint, max_spool_bytes=1 << 20)
    sidecar = InProcess(config)
    upstream = Upstream(sidecar.target)
    load = Load(upstream, workers=4, llm=2, plain=40).start()
    try:
        deadline = threading.Event()
        for _ in range(600):
            with upstream.lock:
                if upstream.codes["UNAVAILABLE"]:
                    break
            deadline.wait(0.05)
        assert upstream.codes["UNAVAILABLE"], "the spool never filled"
        _assert_retry_info(sidecar.target)
        during = load.acked()
        loki.refuse = None
        tempo.refuse = None
        assert load.wait_acked(during + 30, 60)
    finally:
        load.finish()
    upstream.assert_delivered(loki, tempo, 60)
    metrics = sidecar.service.registry
    refused = metrics.get_sample_value(
        "otlp_enricher_exporter_enqueue_failed_total", {"exporter": "tempo", "signal": "spans"}
    )
    sidecar.stop()
    assert set(upstream.codes) == {"OK", "UNAVAILABLE"}
    assert refused


def _assert_retry_info(target: str) -> None:
    """One more export must be refused with UNAVAILABLE carrying a RetryInfo delay."""
    channel = grpc.insecure_channel(target)
    with channel, pytest.raises(grpc.RpcError) as refused:
        raw_export(channel)(mixed_request(2, 40, seed=999_999).SerializeToString(), timeout=5)
    error = refused.value
    assert isinstance(error, grpc.Call) and error.code() == grpc.StatusCode.UNAVAILABLE
    status = status_details(error)
    info = error_details_pb2.RetryInfo()
    assert status is not None and status.details[0].Unpack(info)
    assert info.retry_delay.ToNanoseconds() > 0


def _assert_no_secret_left(loki: FakeLoki, tempo: FakeTempo) -> None:
    """No e-mail address, API key or card number of the prompts reached either backend."""
    corpus = SECRETS[:3]
    for entry in loki.entries.values():
        assert not any(secret in entry.line for secret in corpus)
    for span in tempo.spans.values():
        text = span.SerializeToString()
        assert not any(secret.encode() in text for secret in corpus)
