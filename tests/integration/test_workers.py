"""``service.workers: 2``: two receiver processes share the ports, one /metrics sums them exactly."""

from __future__ import annotations

import os
import signal
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client.parser import text_string_to_metric_families

from otlp_enricher.otlp_json import read_recorded
from otlp_enricher.replay import send_requests
from tests.integration.sidecar import run_sidecar
from tests.integration.tools import wait_until
from tests.net import free_port

RECORDED = Path(__file__).parent.parent / "fixtures" / "recorded"


def _sample(text: str, name: str, labels: dict[str, str]) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


def test_two_workers_share_the_ports_and_one_metrics_endpoint_sums_them(tmp_path: Path) -> None:
    """Twenty connections spread over both workers; the summed span count equals what was sent;
    exemplars survive the merge; SIGTERM stops the supervisor and both workers."""
    requests = list(read_recorded(RECORDED / "otel-openai-v2.jsonl"))
    per_round = sum(
        len(s.spans)
        for r in requests
        for rs in ExportTraceServiceRequest.FromString(r).resource_spans
        for s in rs.scope_spans
    )
    with run_sidecar(tmp_path, {"service": {"workers": 2}}) as sidecar:
        for _ in range(20):  # a new connection each round: the kernel picks a worker per connection
            with grpc.insecure_channel(sidecar.grpc) as channel:
                send_requests(channel, requests)
        sent = 20 * per_round

        def summed() -> float:
            return _sample(sidecar.metrics_text(), "otlp_enricher_spans_received_total", {"transport": "grpc"})

        wait_until(lambda: summed() == sent, timeout_s=15, what=f"{sent} spans in the summed /metrics")
        lines = [len((sidecar.storage / f"worker-{i}" / "spans.jsonl").read_bytes().splitlines()) for i in range(2)]
        assert sum(lines) == 20 * len(requests) and min(lines) > 0, lines
        accept = {"Accept": "application/openmetrics-text; version=1.0.0"}
        request = urllib.request.Request(f"http://{sidecar.metrics}/metrics", headers=accept)
        with urllib.request.urlopen(request, timeout=5) as response:
            assert '# {trace_id="' in response.read().decode()
        workers = [
            int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _parent(p) == sidecar.process.pid
        ]
        assert len(workers) == 2
        os.kill(sidecar.process.pid, signal.SIGTERM)
        assert sidecar.process.wait(30) == 0
        assert not any(
            Path(f"/proc/{pid}").exists() and _parent(Path(f"/proc/{pid}")) == sidecar.process.pid for pid in workers
        )


def _parent(proc: Path) -> int:
    try:
        return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def _four_free_ports() -> int:
    """A port p such that p … p+3 are free (gRPC p and p+1, HTTP p+2 and p+3)."""
    import socket

    for _ in range(50):
        base = free_port()
        sockets = []
        try:
            for port in range(base, base + 4):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise AssertionError("no four consecutive free ports")


def test_worker_port_step_gives_each_worker_its_own_ports(tmp_path: Path) -> None:
    """``worker_port_step: 1``: worker 1 listens one port up (for load_balancing); both count."""
    base = _four_free_ports()
    protocols = {"grpc": {"endpoint": f"127.0.0.1:{base}"}, "http": {"endpoint": f"127.0.0.1:{base + 2}"}}
    extra = {"service": {"workers": 2, "worker_port_step": 1}, "receivers": {"otlp": {"protocols": protocols}}}
    requests = list(read_recorded(RECORDED / "otel-openai-v2.jsonl"))
    with run_sidecar(tmp_path, extra) as sidecar:
        spans = 0
        for port in (base, base + 1):
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                spans += send_requests(channel, requests)

        def summed() -> float:
            return _sample(sidecar.metrics_text(), "otlp_enricher_spans_received_total", {"transport": "grpc"})

        wait_until(lambda: summed() == spans, timeout_s=15, what=f"{spans} spans in the summed /metrics")
        for index in range(2):
            assert (sidecar.storage / f"worker-{index}" / "spans.jsonl").read_bytes().count(b"\n") == len(requests)


def test_post_reload_on_the_supervisor_reloads_every_worker(tmp_path: Path) -> None:
    """With ``service.workers: 2`` ``POST /-/reload`` is answered by the supervisor: a valid file is
    sent to both workers as SIGHUP (each counts one reload); an invalid one is answered 500 with its
    problem and no worker is signalled."""
    extra = {"service": {"workers": 2}, "exporters": {"prometheus": {"enable_lifecycle": True}}}
    with run_sidecar(tmp_path, extra) as sidecar:
        url = f"http://{sidecar.metrics}/-/reload"

        def reloads(result: str = "ok") -> float:
            return _sample(sidecar.metrics_text(), "otlp_enricher_config_reloads_total", {"result": result})

        def post() -> int:
            with urllib.request.urlopen(urllib.request.Request(url, method="POST", data=b""), timeout=30) as answer:
                return int(answer.status)

        assert post() == 200
        wait_until(lambda: reloads() == 2, timeout_s=15, what="one reload counted by each worker")
        config = tmp_path / "otlp-enricher.yaml"
        valid = config.read_text()
        config.write_text(valid + "\nextra_section: {}\n")
        with pytest.raises(urllib.error.HTTPError) as refused:
            post()
        assert refused.value.code == 500
        assert "extra_section: unknown key" in refused.value.read().decode()
        config.write_text(valid)
        assert post() == 200
        wait_until(lambda: reloads() == 4, timeout_s=15, what="the second valid reload in each worker")
        assert reloads("invalid") == 0  # the invalid file never reached a worker
