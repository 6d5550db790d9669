"""The ``otlp-enricher`` command as a user runs it: exit codes, output, signals."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
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
    assert received == requests
    messages = [trace_service_pb2.ExportTraceServiceRequest.FromString(r) for r in requests]
    assert spans == sum(len(s.spans) for r in messages for rs in r.resource_spans for s in rs.scope_spans)


def test_serve_starts_reports_ready_and_stops_on_sigterm(tmp_path: Path) -> None:
    """``serve`` binds, answers /readyz (``run_sidecar`` waits for it), and exits 0 on SIGTERM
    within its shutdown deadline."""
    with run_sidecar(tmp_path, {"service": {"shutdown_timeout_s": 5}}) as sidecar:
        os.kill(sidecar.process.pid, signal.SIGTERM)
        assert sidecar.process.wait(15) == 0
    assert '"event": "service_stopped"' in (tmp_path / "otlp-enricher.log").read_text()


LISTENER_KEYS = {
    "grpc": "receivers.otlp.protocols.grpc.endpoint",
    "http": "receivers.otlp.protocols.http.endpoint",
    "metrics": "exporters.prometheus.endpoint",
}


def _config_holding(tmp_path: Path, taken: str, port: int) -> Path:
    """A config whose ``taken`` listener is on ``port`` and whose others are on port 0."""
    endpoints = {name: f"127.0.0.1:{port if name == taken else 0}" for name in LISTENER_KEYS}
    config = tmp_path / "taken.yaml"
    config.write_text(
        f"receivers: {{otlp: {{protocols: {{grpc: {{endpoint: '{endpoints['grpc']}'}},"
        f" http: {{endpoint: '{endpoints['http']}'}}}}}}}}\n"
        f"exporters: {{prometheus: {{endpoint: '{endpoints['metrics']}'}}}}\n"
        f"storage: {{directory: '{tmp_path / 'data'}'}}\n"
    )
    return config


@pytest.fixture
def held_port() -> Iterator[int]:
    """A loopback port this test holds open (listening) for as long as it runs."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


@pytest.mark.parametrize("taken", sorted(LISTENER_KEYS))
def test_serve_on_a_taken_port_says_which_key_in_one_line_and_exits_3(
    taken: str, held_port: int, tmp_path: Path
) -> None:
    """Every listener fails the same way: one stderr line naming the port and its config key, exit 3."""
    result = run_cli("serve", "--config", str(_config_holding(tmp_path, taken, held_port)))
    assert result.returncode == 3, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"127.0.0.1:{held_port} ({LISTENER_KEYS[taken]})" in lines[0]
    assert "Address already in use" in lines[0]


@pytest.mark.parametrize("taken", ["grpc", "http"])
def test_a_port_taken_after_the_check_is_named_the_same_way(taken: str, held_port: int, tmp_path: Path) -> None:
    """When the port is taken between the up-front check and the bind (the check is made to miss it
    once), grpc's RuntimeError and the HTTP server's OSError become the same line and exit 3."""
    config = _config_holding(tmp_path, taken, held_port)
    script = (
        "import sys, otlp_enricher.cli as cli\n"
        "real, calls = cli.port_problem, []\n"
        "def once(listeners):\n"
        "    calls.append(1)\n"
        "    return None if len(calls) == 1 else real(listeners)\n"
        "cli.port_problem = once\n"
        f"sys.exit(cli.main(['serve', '--config', {str(config)!r}]))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    assert f"cannot listen on 127.0.0.1:{held_port} ({LISTENER_KEYS[taken]})" in result.stderr.splitlines()[-1]


def test_the_same_port_twice_is_named_before_start(tmp_path: Path) -> None:
    """gRPC and HTTP on one port: one line naming both keys, exit 3, nothing bound."""
    config = tmp_path / "twice.yaml"
    config.write_text(
        "receivers: {otlp: {protocols: {grpc: {endpoint: '127.0.0.1:4999'}, http: {endpoint: '127.0.0.1:4999'}}}}\n"
        "exporters: {prometheus: {endpoint: '127.0.0.1:0'}}\n"
    )
    result = run_cli("serve", "--config", str(config))
    assert result.returncode == 3
    assert result.stderr.strip() == (
        "otlp-enricher: port 4999 is configured twice:"
        " receivers.otlp.protocols.grpc.endpoint and receivers.otlp.protocols.http.endpoint"
    )


def test_help_documents_the_exit_codes() -> None:
    """``--help`` lists every exit code the command uses."""
    result = run_cli("--help")
    assert result.returncode == 0
    for line in ("0    success", "2    bad usage", "3    a port to listen on is taken", "141  stdout was closed"):
        assert line in result.stdout


def test_version_comes_from_the_package_metadata() -> None:
    """``--version`` prints the version pyproject.toml declares (read here from the file itself)."""
    declared = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]["version"]
    assert run_cli("--version").stdout.strip() == f"otlp-enricher {declared}"


def _run_into_closed_pipe(*args: str) -> subprocess.CompletedProcess[bytes]:
    """Run the CLI with stdout a pipe whose reader has already gone, as after ``| head``."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [sys.executable, "-m", "otlp_enricher", *args], stdout=write_end, stderr=subprocess.PIPE, timeout=60
        )
    finally:
        os.close(write_end)


@pytest.mark.parametrize(
    "args",
    [
        ("prices", "gpt-4o", "--provider", "openai", "--input", "10"),
        ("replay", "--report", str(RECORDED / "otel-openai-v2.jsonl")),
        ("replay", "--report", "json", str(RECORDED / "otel-openai-v2.jsonl")),
    ],
    ids=["prices", "replay-table", "replay-json"],
)
def test_output_piped_to_a_reader_that_left_exits_quietly(args: tuple[str, ...]) -> None:
    """No BrokenPipeError traceback: nothing on stderr, exit 141 as a tool killed by SIGPIPE."""
    result = _run_into_closed_pipe(*args)
    assert result.stderr == b""
    assert result.returncode == 141


def _write_non_otlp_files(directory: Path) -> list[Path]:
    """Files a glob over a recordings directory picks up besides the recordings."""
    manifest = directory / "MANIFEST.json"
    manifest.write_text('{\n  "description": "not a request"\n}\n')
    provider = directory / "calls.provider.json"
    provider.write_text('[\n  {"seq": 1, "scenario": "chat"}\n]\n' * 50)
    (directory / "subdir").mkdir()
    return [manifest, provider, directory / "subdir"]


def test_replay_report_names_and_skips_files_that_are_not_otlp(tmp_path: Path) -> None:
    """A glob with a manifest, a JSON array and a directory beside a recording: each one named as
    skipped on stderr, the recording reported, exit 0; no talk of a truncated message."""
    recording = tmp_path / "otel-openai-v2.jsonl"
    recording.write_bytes((RECORDED / "otel-openai-v2.jsonl").read_bytes())
    strays = _write_non_otlp_files(tmp_path)
    result = run_cli("replay", "--report", "json", *sorted(str(p) for p in tmp_path.iterdir()))
    assert result.returncode == 0, result.stderr
    models = {entry["model"]: entry for entry in orjson.loads(result.stdout)["models"]}
    assert models["o3-mini-2025-01-31"]["tokens"]["output"] == 1264
    skipped = [line for line in result.stderr.splitlines() if "skipped, not an OTLP traces file" in line]
    assert len(skipped) == len(strays), result.stderr
    for stray, line in zip(sorted(strays), sorted(skipped), strict=True):
        assert str(stray) in line
    assert "truncated" not in result.stderr


def test_replay_with_nothing_replayable_fails(tmp_path: Path) -> None:
    """Only non-OTLP files: each named, then a failure line and exit 1."""
    strays = _write_non_otlp_files(tmp_path)
    result = run_cli("replay", "--report", *(str(p) for p in strays))
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == "replay failed: no OTLP traces request in the given files"


def test_replay_keeps_what_a_cut_off_file_held(tmp_path: Path) -> None:
    """A recording whose last line is cut off: its earlier requests are replayed, the rest named as skipped."""
    lines = (RECORDED / "anthropic-sdk.jsonl").read_bytes().splitlines(keepends=True)
    cut = tmp_path / "cut.jsonl"
    cut.write_bytes(b"".join(lines[:2]) + lines[2][: len(lines[2]) // 2] + b"\n")
    result = run_cli("replay", "--report", "json", str(cut))
    assert result.returncode == 0, result.stderr
    assert f"replay: skipped the rest of a file after request 2: {cut}:3: invalid OTLP/JSON" in result.stderr
    first_two = tmp_path / "first-two.jsonl"
    first_two.write_bytes(b"".join(lines[:2]))
    expected = run_cli("replay", "--report", "json", str(first_two))
    assert orjson.loads(result.stdout) == orjson.loads(expected.stdout)
    assert orjson.loads(result.stdout)["models"]


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
