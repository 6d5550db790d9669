"""SIGHUP and ``POST /-/reload`` to the real ``otlp-enricher serve``: the price override changes
from the next request on, with no request priced at $0 (or by a half-loaded table) meanwhile and
no restart; an invalid file is rejected with its errors and the running prices kept. The HTTP
path is guarded by the metrics port's credential and off unless ``enable_lifecycle`` is set."""

from __future__ import annotations

import hashlib
import importlib.metadata
import re
import signal
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import grpc
import orjson

from tests.faults.harness import InProcess, SidecarProcess
from tests.net import free_port, raw_export
from tests.otlp_builders import openai_chat, request, span
from tests.peers.workload import config_text, make_config

MILLION = 1_000_000
TOKEN = "reload-credential-" + "k" * 16


def _config(data: Path, port: int, input_mtok: float) -> str:
    pricing = (
        "    pricing: {models: {"
        f"'openai/gpt-4o': {{input_mtok: {input_mtok}, output_mtok: 0}}, "
        f"'openai/gpt-4o-2024-08-06': {{input_mtok: {input_mtok}, output_mtok: 0}}"
        "}}\n"
    )
    return config_text(data, grpc_port=port).replace("    slos: [", pricing + "    slos: [", 1)


def _lifecycle_config(data: Path, port: int, input_mtok: float) -> str:
    auth = f"auth: {{bearer_token: {{token: {TOKEN}}}}}"
    guarded = f"  prometheus: {{endpoint: '127.0.0.1:0', enable_lifecycle: true, {auth}}}"
    return _config(data, port, input_mtok).replace("  prometheus: {endpoint: '127.0.0.1:0'}", guarded, 1)


def _call(port: int, path: str, method: str = "GET", token: str = "") -> tuple[int, str]:
    """Status and body of one request to the metrics port."""
    body = None if method == "GET" else b""
    call = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method, data=body)
    if token:
        call.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(call, timeout=60) as answer:
            return answer.status, str(answer.read().decode())
    except urllib.error.HTTPError as refused:
        return refused.code, str(refused.read().decode())


def _exposition(port: int, token: str = "") -> str:
    status, body = _call(port, "/metrics", token=token)
    assert status == 200, (status, body)
    return body


def _cost_usd(text: str) -> float:
    return sum(float(value) for value in re.findall(r"^llm_cost_usd_total\{[^}]*\} (\S+)$", text, re.M))


def _config_info(text: str) -> tuple[str, str]:
    """(config_sha256, prices_version) of the one ``otlp_enricher_config_info`` series."""
    pattern = r'^otlp_enricher_config_info\{config_sha256="([0-9a-f]+)",prices_version="([^"]+)"\}'
    found: list[tuple[str, str]] = re.findall(pattern, text, re.M)
    assert len(found) == 1, found
    return found[0]


def _expected_info(path: Path) -> tuple[str, str]:
    """What ``config_info`` must say for the file at ``path``: its own SHA-256, the table's version."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12], importlib.metadata.version("genai-prices")


def _start(tmp_path: Path, config: Callable[[Path, int, float], str]) -> tuple[SidecarProcess, Path, Path, int, int]:
    """The sidecar on ``config(data, port, 1.0)`` ($1/MTok): process, config file, data directory,
    gRPC port, metrics port."""
    port = free_port()
    data = tmp_path / "data"
    path = tmp_path / "config.yaml"
    path.write_text(config(data, port, 1.0))
    sidecar = SidecarProcess(path)
    return sidecar, path, data, port, sidecar.wait_event("service_started")["metrics_port"]


class _Sender:
    """Sends one-LLM-call requests (a million input tokens each) back to back until stopped."""

    def __init__(self, target: str) -> None:
        self._channel = grpc.insecure_channel(target)
        self._export = raw_export(self._channel)
        self.stop = threading.Event()
        self.sent = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def one(self) -> None:
        """Send one request and wait for its acknowledgement."""
        llm = span(openai_chat(input_tokens=MILLION, output_tokens=0))
        self._export(request([llm]).SerializeToString(), timeout=5)
        self.sent += 1

    def _run(self) -> None:
        while not self.stop.is_set():
            self.one()

    def start(self) -> None:
        """Send continuously in a thread."""
        self._thread.start()

    def finish(self) -> None:
        """Stop the thread and close the channel."""
        self.stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
        self._channel.close()


def test_sighup_reloads_prices_without_a_zero_window_and_rejects_an_invalid_file(tmp_path: Path) -> None:
    """$1/MTok, then SIGHUP with $3/MTok under steady load: every call is priced $1 or $3, never $0,
    and after the reload at $3; then an invalid file on SIGHUP is refused and $3 stays."""
    sidecar, path, data, port, metrics_port = _start(tmp_path, _config)
    sender = _Sender(f"127.0.0.1:{port}")
    try:
        sender.one()
        first = _exposition(metrics_port)
        assert _cost_usd(first) == 1.0
        sender.start()
        path.write_text(_config(data, port, 3.0))
        sidecar.process.send_signal(signal.SIGHUP)
        reloaded = sidecar.wait_event("config_reloaded")
        assert reloaded["restart_required_for"] == []
        sender.finish()
        before = _cost_usd(_exposition(metrics_port))
        sender = _Sender(f"127.0.0.1:{port}")
        sender.one()
        second = _exposition(metrics_port)
        assert _cost_usd(second) == before + 3.0
        assert _config_info(second) == _expected_info(path) != _config_info(first)
        path.write_text(_config(data, port, 5.0).replace("input_mtok: 5.0", "input_mtok: cheap"))
        sidecar.process.send_signal(signal.SIGHUP)
        rejected = sidecar.wait_event("config_reload_rejected")
        assert any("input_mtok" in error for error in rejected["errors"])
        sender.one()
        assert _cost_usd(_exposition(metrics_port)) == before + 6.0  # still $3: the old prices kept
    finally:
        sender.finish()
    assert sidecar.process.poll() is None  # SIGHUP never stopped it
    sidecar.terminate(15)
    costs = [orjson.loads(line)["cost_usd"] for line in (data / "prompt-logs.jsonl").read_bytes().splitlines()]
    assert len(costs) >= 4 and set(costs) <= {1.0, 3.0}, sorted(set(costs))


def test_post_reload_does_what_sighup_does_behind_the_metrics_credential(tmp_path: Path) -> None:
    """``enable_lifecycle`` with a bearer token on the metrics port: a POST without (or with a
    wrong) credential is refused and reloads nothing; with it, under steady load, the answer is 200
    and every call is priced $1 or $3, never $0, the next at $3, and ``config_info`` names the new
    file; an invalid file is answered 500 with its problem (never the credential) and $3 stays."""
    sidecar, path, data, port, metrics_port = _start(tmp_path, _lifecycle_config)
    sender = _Sender(f"127.0.0.1:{port}")
    try:
        sender.one()
        first = _exposition(metrics_port, TOKEN)
        assert _cost_usd(first) == 1.0 and _config_info(first) == _expected_info(path)
        path.write_text(_lifecycle_config(data, port, 3.0))
        assert _call(metrics_port, "/-/reload", "POST")[0] == 401
        assert _call(metrics_port, "/-/reload", "POST", token="not-" + TOKEN)[0] == 401
        assert _call(metrics_port, "/-/reload", token=TOKEN)[0] == 405  # GET reloads nothing either
        sender.one()
        assert _cost_usd(_exposition(metrics_port, TOKEN)) == 2.0  # still $1: nothing was reloaded
        sender.start()
        assert _call(metrics_port, "/-/reload", "POST", token=TOKEN) == (200, "config reloaded\n")
        sender.finish()
        before = _cost_usd(_exposition(metrics_port, TOKEN))
        sender = _Sender(f"127.0.0.1:{port}")
        sender.one()
        second = _exposition(metrics_port, TOKEN)
        assert _cost_usd(second) == before + 3.0
        assert _config_info(second) == _expected_info(path) != _config_info(first)
        path.write_text(_lifecycle_config(data, port, 5.0).replace("input_mtok: 5.0", "input_mtok: cheap"))
        status, body = _call(metrics_port, "/-/reload", "PUT", token=TOKEN)
        assert status == 500 and "processors.genai.pricing.models.openai/gpt-4o.input_mtok" in body, body
        assert TOKEN not in body
        sender.one()
        third = _exposition(metrics_port, TOKEN)
        assert _cost_usd(third) == before + 6.0  # still $3: the old prices kept
        assert _config_info(third) == _config_info(second)
        assert 'otlp_enricher_config_reloads_total{result="invalid"} 1.0' in third
        assert 'otlp_enricher_config_reloads_total{result="ok"} 1.0' in third
    finally:
        sender.finish()
    assert sidecar.process.poll() is None
    sidecar.terminate(15)
    costs = [orjson.loads(line)["cost_usd"] for line in (data / "prompt-logs.jsonl").read_bytes().splitlines()]
    assert len(costs) >= 5 and set(costs) <= {1.0, 3.0}, sorted(set(costs))
    assert all(TOKEN not in str(event) for event in sidecar.log)


def test_reload_endpoint_is_off_unless_lifecycle_is_enabled(tmp_path: Path) -> None:
    """Without ``enable_lifecycle`` (the default) ``POST /-/reload`` is refused with 403 and the
    config is not re-read, as Prometheus does without ``--web.enable-lifecycle``."""
    sidecar = InProcess(make_config(tmp_path))
    try:
        port = sidecar.service.telemetry.port
        status, body = _call(port, "/-/reload", "POST")
        assert status == 403 and "exporters.prometheus.enable_lifecycle" in body
        assert _call(port, "/-/nothing", "POST")[0] == 404
        registry = sidecar.service.registry
        assert not any(
            registry.get_sample_value("otlp_enricher_config_reloads_total", {"result": result})
            for result in ("ok", "invalid", "failed")
        )
    finally:
        sidecar.stop()
