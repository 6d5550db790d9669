"""The real ``otlp-enricher serve`` process never logs a secret of its config: not at start, not
on refused calls, not while its Loki and Tempo exporters fail against closed ports."""

from __future__ import annotations

import http.client
import urllib.request
from pathlib import Path

from tests.net import free_port
from tests.otlp_builders import openai_chat, request, span

from .sidecar import run_sidecar
from .tools import wait_until

PASSWORD = "Pw-9f3k2-LOKI"
TOKEN = "Tk-77aa1-OTLP"
HEADER = "Hd-0b0b-TEMPO"
USERINFO = "userinfo-pw"


def _post(address: str, token: str) -> int:
    host, port = address.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    body = request([span(openai_chat(input_tokens=5, output_tokens=1))]).SerializeToString()
    headers = {"Content-Type": "application/x-protobuf", "Authorization": f"Bearer {token}"}
    connection.request("POST", "/v1/traces", body, headers)
    response = connection.getresponse()
    response.read()
    status = response.status
    connection.close()
    return status


def test_no_config_secret_reaches_the_log(tmp_path: Path) -> None:
    """Start, refuse a wrong token, accept the right one, fail exports for a while, stop; grep."""
    closed = free_port()
    extra = {
        "receivers": {"otlp": {"protocols": {"http": {"auth": {"bearer_token": {"token": TOKEN}}}}}},
        "exporters": {
            "loki": {
                "endpoint": f"http://admin:{USERINFO}@127.0.0.1:{closed}/loki/api/v1/push",
                "auth": {"basic": {"username": "u", "password": PASSWORD}},
                "retry_on_failure": {"initial_interval": 0.05, "max_interval": 0.1},
                "batch": {"timeout": 0.05},
            },
            "tempo": {
                "endpoint": f"127.0.0.1:{closed}",
                "tls": {"insecure": True},
                "headers": {"authorization": f"Bearer {HEADER}"},
                "retry_on_failure": {"initial_interval": 0.05, "max_interval": 0.1},
            },
        },
    }
    with run_sidecar(tmp_path, extra) as sidecar:
        assert _post(sidecar.http, "wrong") == 401
        assert _post(sidecar.http, TOKEN) == 200

        def exports_failed() -> bool:
            with urllib.request.urlopen(f"http://{sidecar.metrics}/metrics", timeout=5) as response:
                text = response.read().decode()
            return 'otlp_enricher_exporter_retries_total{exporter="loki"}' in text and (
                'otlp_enricher_exporter_retries_total{exporter="tempo"}' in text
            )

        wait_until(exports_failed, timeout_s=30, what="Loki and Tempo send attempts to fail and retry")
    log = (tmp_path / "otlp-enricher.log").read_text(errors="replace")
    assert "insecure_credentials" in log  # the clear-text warning is there …
    for secret in (PASSWORD, TOKEN, HEADER, USERINFO):
        assert secret not in log, secret  # … and no secret is
