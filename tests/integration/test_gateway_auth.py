"""The real Collector's ``otlp`` exporter (``collector/gateway.yaml``, ``otlp_grpc/secure``) sends to
otlp-enricher over TLS with a bearer token from its ``bearertokenauth`` extension: with the right
token every span arrives; with a wrong one otlp-enricher refuses every call as UNAUTHENTICATED.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from tests.net import free_port
from tests.receiver.conftest import spans_in
from tests.receiver.secured import Secured, secured
from tests.tls_certs import Certs, make_certs

from .conftest import StartCollector
from .test_collector_configs import export, make_request
from .tools import COLLECTOR_DIR, wait_until

pytestmark = pytest.mark.collector

TOKEN = "gateway-token-" + "k" * 24


def _sidecar_config(certs: Certs, token_file: Path) -> str:
    tls = f"{{cert_file: {certs.server}, key_file: {certs.server_key}}}"
    return f"""
receivers:
  otlp:
    protocols:
      grpc: {{endpoint: 127.0.0.1:0, tls: {tls}, auth: {{bearer_token: {{filename: {token_file}}}}}}}
      http: {{endpoint: 127.0.0.1:0}}
exporters: {{prometheus: {{endpoint: 127.0.0.1:0}}}}
"""


def _gateway_env(sidecar: Secured, certs: Certs, token: str, tmp_path: Path) -> dict[str, str]:
    return {
        "GATEWAY_GRPC_ENDPOINT": f"127.0.0.1:{free_port()}",
        "GATEWAY_HTTP_ENDPOINT": f"127.0.0.1:{free_port()}",
        "GATEWAY_STORAGE_DIR": str(tmp_path / "queue"),
        "GATEWAY_METRICS_PORT": str(free_port()),
        "GATEWAY_EXPORTER": "otlp_grpc/secure",
        "OTLP_ENRICHER_ENDPOINT": f"127.0.0.1:{sidecar.grpc_port}",
        "OTLP_ENRICHER_CA_FILE": str(certs.ca),
        "OTLP_ENRICHER_TOKEN": token,
    }


def _gateway_address(env: dict[str, str]) -> tuple[str, int]:
    host, port = env["GATEWAY_GRPC_ENDPOINT"].rsplit(":", 1)
    return host, int(port)


@pytest.mark.parametrize("right_token", [True, False], ids=["right-token", "wrong-token"])
def test_the_collector_exports_over_tls_with_a_bearer_token(
    start_collector: StartCollector, tmp_path: Path, right_token: bool
) -> None:
    """Spans sent to the gateway reach otlp-enricher only when the gateway carries the right token."""
    certs = make_certs(tmp_path / "certs")
    token_file = tmp_path / "otlp-token"
    token_file.write_text(TOKEN + "\n")
    with secured(_sidecar_config(certs, token_file)) as sidecar:
        env = _gateway_env(sidecar, certs, TOKEN if right_token else "not-the-token", tmp_path)
        address = _gateway_address(env)
        start_collector(COLLECTOR_DIR / "gateway.yaml", env, wait_for=[address])
        trace_id = secrets.token_hex(16)
        export(address, make_request(trace_id, [secrets.token_hex(8) for _ in range(3)]))
        if right_token:
            wait_until(
                lambda: spans_in(sidecar.exporter.batches) >= 3, timeout_s=30, what="3 spans through the gateway"
            )
            assert sidecar.value("otlp_enricher_auth_failures_total", listener="grpc") == 0
        else:
            wait_until(
                lambda: sidecar.value("otlp_enricher_auth_failures_total", listener="grpc") >= 1,
                timeout_s=30,
                what="the gateway's call refused as UNAUTHENTICATED",
            )
            assert spans_in(sidecar.exporter.batches) == 0
