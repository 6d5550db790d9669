"""A full disk and a read-only disk under load: states the sidecar reports and recovers from.

The sidecar runs in-process with its spools' syscalls going through :class:`FaultyOps`; a
Collector-like upstream sends steadily. While the disk refuses writes the receiver answers
UNAVAILABLE with RetryInfo (the backpressure path, never "internal"), ``/readyz`` says why it is
not ready, ``otlp_enricher_storage_writable`` is 0 and what was spooled before keeps being sent.
Once the fault clears acceptance resumes by itself; in the end everything acknowledged arrived.
"""

from __future__ import annotations

import errno
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2

from tests.faults.fileops import FaultyOps
from tests.faults.harness import InProcess, Load, Upstream
from tests.integration.tools import holds_within
from tests.net import raw_export, status_details
from tests.peers.fake_loki import FakeLoki
from tests.peers.fake_tempo import FakeTempo
from tests.peers.workload import make_config, mixed_request


def _sample(sidecar: InProcess, name: str, labels: dict[str, str]) -> float:
    return sidecar.service.registry.get_sample_value(name, labels) or 0.0


def _refusal(target: str) -> grpc.RpcError:
    with grpc.insecure_channel(target) as channel, pytest.raises(grpc.RpcError) as refused:
        raw_export(channel)(mixed_request(1, 2, seed=987_654).SerializeToString(), timeout=5)
    return refused.value


def _retry_delay_s(error: grpc.RpcError) -> float:
    status = status_details(error)
    info = error_details_pb2.RetryInfo()
    assert status is not None and status.details[0].Unpack(info)
    return float(info.retry_delay.ToNanoseconds()) / 1e9


def test_a_full_disk_refuses_retryably_reports_not_ready_and_recovers(
    tmp_path: Path, peers: tuple[FakeLoki, FakeTempo]
) -> None:
    """Appends fail ENOSPC (the disk is full) under load: UNAVAILABLE + RetryInfo, /readyz 503 naming
    ENOSPC, writable gauge 0, spooled data still delivered; space back → ready and accepting again."""
    loki, tempo = peers
    ops = FaultyOps()
    sidecar = InProcess(make_config(tmp_path, loki_url=loki.url, tempo_endpoint=tempo.endpoint), ops)
    upstream = Upstream(sidecar.target)
    load = Load(upstream, workers=3).start()
    writable = {"exporter": "tempo"}
    try:
        assert load.wait_acked(20)
        assert sidecar.readiness()[0] == 200
        ops.arm("write", errno.ENOSPC, sticky=True)
        assert holds_within(lambda: upstream.codes["UNAVAILABLE"] > 0, 20.0), "the full disk was never noticed"
        status, reason = sidecar.readiness()
        assert status == 503 and "ENOSPC" in reason, reason
        assert _sample(sidecar, "otlp_enricher_storage_writable", writable) == 0
        refused = _refusal(sidecar.target)
        assert isinstance(refused, grpc.Call) and refused.code() == grpc.StatusCode.UNAVAILABLE
        assert _retry_delay_s(refused) > 0
        # sending goes on: what was acknowledged before the disk filled is delivered meanwhile
        assert holds_within(lambda: _sample(sidecar, "otlp_enricher_spool_items", writable) == 0, 20.0)
        before = load.acked()
        ops.clear()
        assert holds_within(lambda: sidecar.readiness()[0] == 200, 20.0), sidecar.readiness()
        assert load.wait_acked(before + 20)
    finally:
        load.finish()
    upstream.assert_delivered(loki, tempo, 30)
    assert _sample(sidecar, "otlp_enricher_storage_writable", writable) == 1
    errors = _sample(
        sidecar, "otlp_enricher_storage_errors_total", {"exporter": "tempo", "operation": "write", "errno": "ENOSPC"}
    )
    internal = _sample(sidecar, "otlp_enricher_export_requests_total", {"transport": "grpc", "result": "internal"})
    sidecar.stop()
    assert errors > 0
    assert internal == 0  # every refusal took the backpressure path
    assert set(upstream.codes) == {"OK", "UNAVAILABLE"}, upstream.codes


def test_a_read_only_disk_is_not_ready_and_shutdown_keeps_its_deadline(
    tmp_path: Path, peers: tuple[FakeLoki, FakeTempo]
) -> None:
    """Every storage call fails EROFS (the file system was remounted read-only): refusals are
    retryable, /readyz names EROFS, and shutdown — with the disk still read-only — ends within
    shutdown_timeout_s. Restarted on a healthy disk, it delivers everything it acknowledged."""
    loki, tempo = peers
    config = make_config(tmp_path, loki_url=loki.url, tempo_endpoint=tempo.endpoint)
    ops = FaultyOps()
    sidecar = InProcess(config, ops)
    upstream = Upstream(sidecar.target)
    load = Load(upstream, workers=3).start()
    try:
        assert load.wait_acked(20)
        loki.refuse = tempo.refuse = None
        ops.arm("*", errno.EROFS, sticky=True)
        assert holds_within(lambda: upstream.codes["UNAVAILABLE"] > 0, 20.0)
        status, reason = sidecar.readiness()
        assert status == 503 and "EROFS" in reason, reason
        internal = _sample(sidecar, "otlp_enricher_export_requests_total", {"transport": "grpc", "result": "internal"})
        assert internal == 0
    finally:
        load.finish()
    took_s = sidecar.stop()
    assert took_s < config.service.shutdown_timeout_s + 1.0
    again = InProcess(config)  # the disk is writable again (the real file layer)
    upstream.assert_delivered(loki, tempo, 30)
    again.stop()
    assert set(upstream.codes) == {"OK", "UNAVAILABLE"}, upstream.codes
