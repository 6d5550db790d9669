"""The real ``otlp-enricher serve`` process: SIGKILL mid-stream and SIGTERM, restarted on its spool.

The peers (fake Loki, fake Tempo) live in the test process and outlive the sidecar; the upstream
is a real gRPC client that retries like the Collector. At the end every acknowledged span must be
in Tempo and every acknowledged LLM call's prompt line in Loki (or in a dead-letter file, which
these scenarios never need).
"""

from __future__ import annotations

from pathlib import Path

import grpc

from otlp_enricher.exporter.deadletter import read_dead_letters
from tests.faults.harness import Load, SidecarProcess, Upstream
from tests.net import free_port
from tests.peers.fake_loki import FakeLoki, Fault
from tests.peers.fake_tempo import FakeTempo, GrpcFault
from tests.peers.workload import config_text

SHUTDOWN_TIMEOUT_S = 5.0  # service.shutdown_timeout_s in workload.config_text


def _config(tmp_path: Path, loki: FakeLoki, tempo: FakeTempo, port: int) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(config_text(tmp_path / "data", loki.url, tempo.endpoint, grpc_port=port))
    return path


def _start(path: Path) -> SidecarProcess:
    sidecar = SidecarProcess(path)
    sidecar.wait_event("service_started")
    return sidecar


def _all_delivered(loki: FakeLoki, tempo: FakeTempo, upstream: Upstream, timeout_s: float = 60) -> None:
    acked_spans, acked_llm = set(upstream.acked_spans), set(upstream.acked_llm_span_ids)
    assert acked_spans and acked_llm
    assert tempo.wait_until(lambda p: acked_spans <= p.spans.keys(), timeout_s), "spans missing in Tempo"
    assert loki.wait_until(lambda p: acked_llm <= {e.metadata.get("span_id") for e in p.entries.values()}, timeout_s), (
        "prompt lines missing in Loki"
    )


def test_sigkill_mid_stream_and_restart_lose_nothing_acknowledged(
    tmp_path: Path, peers: tuple[FakeLoki, FakeTempo]
) -> None:
    """kill -9 twice under load — once with both backends refusing (the spool holds the data), once
    with them answering (batches in flight) — and restart on the same spool: nothing acknowledged
    is lost, duplicates stay bounded."""
    loki, tempo = peers
    port = free_port()
    path = _config(tmp_path, loki, tempo, port)
    sidecar = _start(path)
    upstream = Upstream(f"127.0.0.1:{port}")
    load = Load(upstream).start()
    replayed = []
    try:
        assert load.wait_acked(30)
        loki.refuse = Fault(503)
        tempo.refuse = GrpcFault(grpc.StatusCode.UNAVAILABLE)
        assert load.wait_acked(load.acked() + 40)
        sidecar.kill()  # 1: backends down, acknowledged data only in the spool
        sidecar = SidecarProcess(path)
        replayed.append(sidecar.wait_event("spool_opened")["replaying_items"])
        sidecar.wait_event("service_started")
        loki.refuse = None
        tempo.refuse = None
        assert load.wait_acked(load.acked() + 40)
        sidecar.kill()  # 2: backends up, batches in flight
        sidecar = _start(path)
        assert load.wait_acked(load.acked() + 40)
    finally:
        load.finish()
    _all_delivered(loki, tempo, upstream)
    sidecar.terminate(SHUTDOWN_TIMEOUT_S + 10)
    assert replayed[0] > 0
    assert not read_dead_letters(tmp_path / "data" / "deadletter" / "tempo.jsonl")
    assert set(upstream.codes) <= {"OK", "UNAVAILABLE"}, upstream.codes
    # at-least-once: only what was in flight at a kill may come twice
    assert tempo.duplicates <= 2 * 3 * 5 * 4 and loki.duplicates <= 2 * 1000
    print(
        f"\nSIGKILL x2: {load.acked()} requests acked, {len(upstream.acked_spans)} spans all delivered; "
        f"replayed {replayed[0]} spool items; duplicates tempo {tempo.duplicates} loki {loki.duplicates}"
    )


def test_sigterm_drains_within_the_deadline(tmp_path: Path, peers: tuple[FakeLoki, FakeTempo]) -> None:
    """With the backends answering, SIGTERM under load stops intake, drains the spools and exits
    well inside shutdown_timeout_s, everything acknowledged already delivered."""
    loki, tempo = peers
    port = free_port()
    sidecar = _start(_config(tmp_path, loki, tempo, port))
    upstream = Upstream(f"127.0.0.1:{port}")
    load = Load(upstream).start()
    try:
        assert load.wait_acked(60)
        took_s = sidecar.terminate(SHUTDOWN_TIMEOUT_S + 5)
    finally:
        load.finish()
    assert sidecar.process.returncode == 0
    assert took_s < SHUTDOWN_TIMEOUT_S + 1
    _all_delivered(loki, tempo, upstream, timeout_s=1)  # delivered before the process exited
    assert not any(e.get("event") == "export_left_in_spool" for e in sidecar.log)


def test_sigterm_with_backends_down_keeps_the_rest_for_the_next_start(
    tmp_path: Path, peers: tuple[FakeLoki, FakeTempo]
) -> None:
    """With both backends refusing, SIGTERM exits at the deadline leaving the data in the spool;
    the next start replays it first."""
    loki, tempo = peers
    loki.refuse = Fault(503)
    tempo.refuse = GrpcFault(grpc.StatusCode.UNAVAILABLE)
    port = free_port()
    path = _config(tmp_path, loki, tempo, port)
    sidecar = _start(path)
    upstream = Upstream(f"127.0.0.1:{port}")
    load = Load(upstream).start()
    try:
        assert load.wait_acked(30)
    finally:
        load.finish()
    took_s = sidecar.terminate(SHUTDOWN_TIMEOUT_S + 5)
    assert sidecar.process.returncode == 0 and took_s < SHUTDOWN_TIMEOUT_S + 1.5
    assert any(e.get("event") == "export_left_in_spool" for e in sidecar.log)
    loki.refuse = None
    tempo.refuse = None
    sidecar = SidecarProcess(path)
    assert sidecar.wait_event("spool_opened")["replaying_items"] > 0
    _all_delivered(loki, tempo, upstream)
    sidecar.terminate(SHUTDOWN_TIMEOUT_S + 5)
