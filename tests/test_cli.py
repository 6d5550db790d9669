"""The ``otlp-enricher`` command as a user runs it: exit codes, output, signals."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import grpc_testing
import orjson
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from otlp_enricher.cli import main
from otlp_enricher.otlp_json import read_recorded
from otlp_enricher.replay import send_requests
from tests.integration.sidecar import run_sidecar

RECORDED = Path(__file__).parent / "fixtures" / "recorded"


def run_cli(*args: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``python -m otlp_enricher`` with ``args``."""
    return subprocess.run(
        [sys.executable, "-m", "otlp_enricher", *args], capture_output=True, text=True, timeout=timeout_s
    )


def test_check_config_reports_every_problem_and_exits_2(tmp_path: Path) -> None:
    """A bad file: exit 2 and each problem on stderr with its key path."""
    config = tmp_path / "bad.yaml"
    config.write_text("receivers: {otlp: {protocols: {grpc: {endpoint: nope}}}}\nexporters: {bogus: {}}\n")
    result = run_cli("check-config", str(config))
    assert result.returncode == 2
    assert "receivers.otlp.protocols.grpc.endpoint: expected host:port, got 'nope'" in result.stderr
    assert "exporters.bogus: unknown key" in result.stderr


def test_check_config_accepts_a_good_file(tmp_path: Path) -> None:
    """A good file: exit 0 and a one-line summary."""
    config = tmp_path / "good.yaml"
    config.write_text("processors: {genai: {slos: [{name: a, objective: 0.9, latency_threshold_s: 1}]}}\n")
    result = run_cli("check-config", str(config))
    assert result.returncode == 0, result.stderr
    assert "ok (receivers grpc, http; exporters prometheus; 1 SLO(s))" in result.stdout


def test_prices_shows_resolution_and_cost(capsys: pytest.CaptureFixture[str]) -> None:
    """gpt-4o snapshot → openai/gpt-4o at $2.50/$1.25/$10 per MTok: 1000 in (400 cached), 100 out."""
    assert main(["prices", "gpt-4o-2024-08-06", "--provider", "openai", "--input", "1000", "--cache-read", "400",
                 "--output", "100"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "gpt-4o-2024-08-06 → openai/gpt-4o (price_table)" in out
    assert f"${(600 * 2.5 + 400 * 1.25 + 100 * 10) / 1e6:.6f}" in out
    assert main(["prices", "no-such-model-anywhere"]) == 1
    assert "unpriced" in capsys.readouterr().out


def test_replay_report_json_and_bad_file(tmp_path: Path) -> None:
    """--report json parses as JSON; a corrupt file fails with exit 1 and names the file."""
    result = run_cli("replay", "--report", "json", str(RECORDED / "otel-openai-v2.jsonl"))
    assert result.returncode == 0, result.stderr
    models = {entry["model"]: entry for entry in orjson.loads(result.stdout)["models"]}
    assert models["o3-mini-2025-01-31"]["tokens"]["output"] == 1264
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "not-hex"}]}]}]}\n')
    failed = run_cli("replay", "--report", str(broken))
    assert failed.returncode == 1
    assert f"{broken}:1: traceId must be a hex string" in failed.stderr


def test_replay_to_sends_every_request_through_grpc_testing() -> None:
    """``replay --to`` exports each recorded request once over the channel (grpcio-testing plays the server)."""
    method = trace_service_pb2.DESCRIPTOR.services_by_name["TraceService"].methods_by_name["Export"]
    channel = grpc_testing.channel([trace_service_pb2.DESCRIPTOR.services_by_name["TraceService"]],
                                   grpc_testing.strict_real_time())  # fmt: skip
    requests = list(read_recorded(RECORDED / "anthropic-sdk.jsonl"))
    received: list[bytes] = []

    def serve() -> None:
        for _ in requests:
            _, body, rpc = channel.take_unary_unary(method)
            received.append(body)
            rpc.terminate(b"", (), grpc.StatusCode.OK, "")

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    spans = send_requests(channel, requests, io.StringIO())
    server.join(10)
    assert received == [request.SerializeToString() for request in requests]
    assert spans == sum(len(s.spans) for r in requests for rs in r.resource_spans for s in rs.scope_spans)


def test_serve_starts_reports_ready_and_stops_on_sigterm(tmp_path: Path) -> None:
    """``serve`` binds, answers /readyz (``run_sidecar`` waits for it), and exits 0 on SIGTERM
    within its shutdown deadline."""
    with run_sidecar(tmp_path, {"service": {"shutdown_timeout_s": 5}}) as sidecar:
        os.kill(sidecar.process.pid, signal.SIGTERM)
        assert sidecar.process.wait(15) == 0
    assert '"event": "service_stopped"' in (tmp_path / "otlp-enricher.log").read_text()


def test_a_shutdown_that_hangs_past_its_deadline_still_exits() -> None:
    """The SIGTERM watchdog: whatever still waits (a thread stuck in fsync on a dead disk), the
    process exits 1 once the deadline passes, with a ``shutdown_overran`` event."""
    code = (
        "import threading, time\n"
        "from otlp_enricher.cli import _exit_after\n"
        "_exit_after(0.3)\n"
        "threading.Event().wait(30)\n"
    )
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20)
    assert done.returncode == 1
    assert time.monotonic() - started < 10
    assert "shutdown_overran" in done.stdout + done.stderr
