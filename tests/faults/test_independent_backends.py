"""One backend down under steady load does not stop the other (issue 10, item 4).

Each exporter drains its own spool and the spools share one byte budget (``exporter/budget.py``):
while the store has room, a backend that refuses or hangs only fills its own spool, and the other
backend receives every acknowledged item while the outage lasts. With ``sending_queue.on_full:
drop_oldest`` the lagging exporter gives up its oldest data once the store is full, so intake and
the other backend go on for as long as the outage lasts; exactly the counted drops are missing.

Behind the real Collector (``collector/gateway.yaml``: persistent queue, retry forever), where the
answer codes matter: with ``backpressure`` a full store answers UNAVAILABLE + RetryInfo and the
Collector keeps and re-sends the data, so nothing it acknowledged is lost; with ``drop_oldest`` it
is never refused, and only the counted drops are missing.

The outage lasts ``OUTAGE_S`` seconds (``OTLP_ENRICHER_OUTAGE_S``, default 5; 60 for the
issue's minute). Each test prints the healthy backend's delivery rate before and during the
outage (figures, not asserted: tests assert no timing).
"""

from __future__ import annotations

import re
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from prometheus_client import CollectorRegistry

from tests.faults.harness import OUTAGE_S, InProcess, Load, Upstream, loki_span_ids
from tests.integration.tools import COLLECTOR_DIR, build_collector, start_collector
from tests.net import free_port
from tests.peers.fake_loki import FakeLoki, Fault
from tests.peers.fake_tempo import FakeTempo, GrpcFault
from tests.peers.workload import make_config

BASELINE_S = min(OUTAGE_S, 3.0)
TEMPO_SPANS = {"exporter": "tempo", "signal": "spans"}


def _rate(count: Callable[[], int], seconds: float) -> float:
    """Items per second ``count`` grew by over ``seconds`` (the window is the measurement)."""
    before, started = count(), time.monotonic()
    threading.Event().wait(seconds)
    return (count() - before) / (time.monotonic() - started)


def _wait_for_store_full(registry: CollectorRegistry, counter: str, not_before: float = 0.0) -> None:
    """Wait until Tempo's ``counter`` (drops or refusals) has counted, and ``not_before`` is past."""
    deadline = time.monotonic() + 120
    while time.monotonic() < not_before or not registry.get_sample_value(counter, TEMPO_SPANS):
        assert time.monotonic() < deadline, "the store never filled"
        threading.Event().wait(0.05)


def _tempo_spans(tempo: FakeTempo) -> int:
    with tempo.changed:
        return len(tempo.spans)


def _loki_lines(loki: FakeLoki) -> int:
    with loki.changed:
        return len(loki.entries)


@pytest.mark.parametrize(
    "down",
    [
        pytest.param("tempo", id="tempo-hanging"),
        pytest.param("loki", id="loki-refusing"),
    ],
)
def test_one_backend_down_the_other_receives_everything_meanwhile(
    tmp_path: Path, peers: tuple[FakeLoki, FakeTempo], down: str
) -> None:
    """Tempo hanging past the exporter's timeout (or Loki answering 503) for OUTAGE_S under load:
    intake is never refused, the other backend has every item acknowledged during the outage
    before the outage ends, and afterwards both have everything acknowledged."""
    loki, tempo = peers
    sidecar = InProcess(make_config(tmp_path, loki_url=loki.url, tempo_endpoint=tempo.endpoint))
    upstream = Upstream(sidecar.target)
    load = Load(upstream).start()
    healthy_count = (lambda: _loki_lines(loki)) if down == "tempo" else (lambda: _tempo_spans(tempo))
    try:
        assert load.wait_acked(20)
        before_rate = _rate(healthy_count, BASELINE_S)
        if down == "tempo":
            tempo.refuse = GrpcFault(delay_s=8.0)  # answers after the exporter's 5 s timeout
        else:
            loki.refuse = Fault(503, retry_after="1")
        during_rate = _rate(healthy_count, OUTAGE_S)
        acked_spans, acked_llm = upstream.acked()
        if down == "tempo":
            assert loki.wait_until(lambda p: acked_llm <= loki_span_ids(p), 30), "Loki waited for Tempo"
            assert not acked_spans <= tempo.spans.keys()  # … while Tempo really was behind
        else:
            assert tempo.wait_until(lambda p: acked_spans <= p.spans.keys(), 30), "Tempo waited for Loki"
            assert not acked_llm <= loki_span_ids(loki)
        tempo.refuse = None
        loki.refuse = None
        during = load.acked()
        assert load.wait_acked(during + 50, 60)
    finally:
        load.finish()
    upstream.assert_delivered(loki, tempo)
    sidecar.stop()
    assert set(upstream.codes) == {"OK"}, upstream.codes  # intake never refused
    unit = "lines" if down == "tempo" else "spans"
    print(
        f"\n{down} down {OUTAGE_S:g}s: {'loki' if down == 'tempo' else 'tempo'} received "
        f"{before_rate:.0f} {unit}/s before, {during_rate:.0f} {unit}/s during; "
        f"{load.acked()} requests acked, all delivered to both"
    )


def test_drop_oldest_keeps_loki_going_and_drops_exactly_what_it_counts(
    tmp_path: Path, peers: tuple[FakeLoki, FakeTempo]
) -> None:
    """Tempo refusing for OUTAGE_S with a 2 MiB store and ``on_full: drop_oldest``: the store fills,
    Tempo's oldest data goes, intake is never refused and Loki has every acknowledged call; after
    recovery Tempo has every acknowledged span but exactly the ones counted as dropped."""
    loki, tempo = peers
    config = make_config(
        tmp_path,
        loki_url=loki.url,
        tempo_endpoint=tempo.endpoint,
        max_spool_bytes=1 << 20,
        extra_tempo=", sending_queue: {on_full: drop_oldest}",
    )
    sidecar = InProcess(config)
    registry = sidecar.service.registry
    upstream = Upstream(sidecar.target)
    load = Load(upstream, workers=4, llm=2, plain=40).start()
    try:
        assert load.wait_acked(20)
        before_rate = _rate(lambda: _loki_lines(loki), BASELINE_S)
        tempo.refuse = GrpcFault(grpc.StatusCode.UNAVAILABLE, retry_after_s=0.5)
        during_rate = _rate(lambda: _loki_lines(loki), OUTAGE_S)
        _wait_for_store_full(registry, "otlp_enricher_exporter_dropped_total")
        _, acked_llm = upstream.acked()
        assert loki.wait_until(lambda p: acked_llm <= loki_span_ids(p), 30), "Loki waited for Tempo"
        tempo.refuse = None
        during = load.acked()
        assert load.wait_acked(during + 30, 60)
    finally:
        load.finish()
    acked_spans, acked_llm = upstream.acked()
    assert loki.wait_until(lambda p: acked_llm <= loki_span_ids(p), 60)
    deadline = time.monotonic() + 60
    while registry.get_sample_value("otlp_enricher_spool_items", {"exporter": "tempo"}):
        assert time.monotonic() < deadline, "Tempo's spool never drained"
        threading.Event().wait(0.05)
    dropped = registry.get_sample_value("otlp_enricher_exporter_dropped_total", TEMPO_SPANS)
    refused = registry.get_sample_value("otlp_enricher_exporter_enqueue_failed_total", TEMPO_SPANS)
    sidecar.stop()
    missing = acked_spans - tempo.spans.keys()
    assert set(upstream.codes) == {"OK"}, upstream.codes  # intake never refused: no upstream retries
    assert not refused
    assert dropped and len(missing) == dropped
    print(
        f"\ntempo down {OUTAGE_S:g}s, drop_oldest, 2 MiB store: loki received {before_rate:.0f} lines/s "
        f"before, {during_rate:.0f} lines/s during; {len(acked_spans)} spans acked, {int(dropped)} dropped "
        f"(counted) = {len(missing)} missing from Tempo"
    )


def _collector_total(port: int, name: str) -> float:
    """Sum of every series of the Collector's own metric ``name`` (any suffix such as ``_total``)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return sum(float(value) for value in re.findall(rf"^{name}(?:_total)?(?:{{[^}}]*}})? (\S+)$", text, re.M))


@pytest.mark.collector
@pytest.mark.parametrize("on_full", ["backpressure", "drop_oldest"])
def test_behind_the_real_collector_a_full_store_loses_nothing_it_did_not_count(
    tmp_path: Path, peers: tuple[FakeLoki, FakeTempo], on_full: str
) -> None:
    """Load → the real Collector (gateway.yaml) → the sidecar with a 2 MiB store; Tempo refuses for
    OUTAGE_S, until the store is full. ``backpressure``: the sidecar refuses with UNAVAILABLE +
    RetryInfo, the Collector re-sends and gives up on nothing (no send or enqueue failure); afterwards
    Tempo and Loki have everything the Collector acknowledged. ``drop_oldest``: the Collector is
    never refused, Loki has everything, Tempo everything but exactly the spans counted as dropped."""
    binary = build_collector()
    loki, tempo = peers
    extra_tempo = ", sending_queue: {on_full: drop_oldest}" if on_full == "drop_oldest" else ""
    config = make_config(
        tmp_path, loki_url=loki.url, tempo_endpoint=tempo.endpoint, max_spool_bytes=1 << 20, extra_tempo=extra_tempo
    )
    sidecar = InProcess(config)
    registry = sidecar.service.registry
    metrics_port = free_port()
    gateway = {
        "GATEWAY_GRPC_ENDPOINT": f"127.0.0.1:{free_port()}",
        "GATEWAY_HTTP_ENDPOINT": f"127.0.0.1:{free_port()}",
        "GATEWAY_STORAGE_DIR": str(tmp_path / "collector-queue"),
        "GATEWAY_METRICS_PORT": str(metrics_port),
        "OTLP_ENRICHER_ENDPOINT": sidecar.target,
    }
    grpc_port = int(gateway["GATEWAY_GRPC_ENDPOINT"].rsplit(":", 1)[1])
    wait_for = [("127.0.0.1", grpc_port), ("127.0.0.1", metrics_port)]
    log_path = tmp_path / "otelcol-gateway.log"
    with start_collector(binary, COLLECTOR_DIR / "gateway.yaml", gateway, wait_for=wait_for, log_path=log_path):
        upstream = Upstream(gateway["GATEWAY_GRPC_ENDPOINT"])
        load = Load(upstream, workers=4, llm=2, plain=40).start()
        try:
            assert load.wait_acked(20, 60)
            tempo.refuse = GrpcFault(grpc.StatusCode.UNAVAILABLE, retry_after_s=0.5)
            outage_ends = time.monotonic() + OUTAGE_S
            full = "dropped" if on_full == "drop_oldest" else "enqueue_failed"
            _wait_for_store_full(registry, f"otlp_enricher_exporter_{full}_total", not_before=outage_ends)
            tempo.refuse = None
            during = load.acked()
            assert load.wait_acked(during + 30, 120)
        finally:
            load.finish()
        acked_spans, acked_llm = upstream.acked()
        assert loki.wait_until(lambda p: acked_llm <= loki_span_ids(p), 180), "the Collector's retries never came"
        deadline = time.monotonic() + 180
        while _collector_total(metrics_port, "otelcol_exporter_queue_size") or registry.get_sample_value(
            "otlp_enricher_spool_items", {"exporter": "tempo"}
        ):
            assert time.monotonic() < deadline, "the Collector's queue or Tempo's spool never drained"
            threading.Event().wait(0.2)
        send_failed = _collector_total(metrics_port, "otelcol_exporter_send_failed_spans")
        enqueue_failed = _collector_total(metrics_port, "otelcol_exporter_enqueue_failed_spans")
    dropped = registry.get_sample_value("otlp_enricher_exporter_dropped_total", TEMPO_SPANS) or 0.0
    refusals = registry.get_sample_value(
        "otlp_enricher_export_requests_total", {"transport": "grpc", "result": "backpressure"}
    )
    sidecar.stop()
    missing = acked_spans - tempo.spans.keys()
    assert set(upstream.codes) == {"OK"}, upstream.codes  # the Collector took every request …
    assert not enqueue_failed and not send_failed  # … kept all of it and gave up on none
    if on_full == "backpressure":
        assert refusals  # the sidecar answered UNAVAILABLE + RetryInfo, and the Collector re-sent
        assert not missing and not dropped
    else:
        assert not refusals  # never refused
        assert dropped and len(missing) == dropped
    print(
        f"\nbehind the Collector, tempo down >= {OUTAGE_S:g}s, {on_full}: {len(acked_spans)} spans acked by the "
        f"Collector, {refusals or 0:.0f} Exports refused by the sidecar and re-sent, {int(dropped)} dropped "
        f"(counted) = {len(missing)} missing from Tempo, Loki complete"
    )
