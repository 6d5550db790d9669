"""SIGHUP to the real ``otlp-enricher serve``: the price override changes from the next request on,
with no request priced at $0 (or by a half-loaded table) meanwhile and no restart; an invalid file
is rejected with its errors and the running prices kept."""

from __future__ import annotations

import re
import signal
import threading
import urllib.request
from pathlib import Path

import grpc
import orjson

from tests.faults.harness import EXPORT, SidecarProcess
from tests.net import free_port
from tests.otlp_builders import openai_chat, request, span
from tests.peers.workload import config_text

MILLION = 1_000_000


def _config(data: Path, port: int, input_mtok: float) -> str:
    pricing = (
        "    pricing: {models: {"
        f"'openai/gpt-4o': {{input_mtok: {input_mtok}, output_mtok: 0}}, "
        f"'openai/gpt-4o-2024-08-06': {{input_mtok: {input_mtok}, output_mtok: 0}}"
        "}}\n"
    )
    return config_text(data, grpc_port=port).replace("    slos: [", pricing + "    slos: [", 1)


def _exposition(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        return str(answer.read().decode())


def _cost_usd(text: str) -> float:
    return sum(float(value) for value in re.findall(r"^llm_cost_usd_total\{[^}]*\} (\S+)$", text, re.M))


def _config_hash(text: str) -> str:
    match = re.search(r'^otlp_enricher_config_info\{config_sha256="([0-9a-f]+)"', text, re.M)
    assert match, "no config_info series"
    return match.group(1)


class _Sender:
    """Sends one-LLM-call requests (a million input tokens each) back to back until stopped."""

    def __init__(self, target: str) -> None:
        self._channel = grpc.insecure_channel(target)
        self._export = self._channel.unary_unary(EXPORT)
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
    port = free_port()
    data = tmp_path / "data"
    path = tmp_path / "config.yaml"
    path.write_text(_config(data, port, 1.0))
    sidecar = SidecarProcess(path)
    metrics_port = sidecar.wait_event("service_started")["metrics_port"]
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
        assert _config_hash(second) != _config_hash(first)
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
