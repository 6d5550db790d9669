"""With the embedded default's outputs (local files), no secret from the test corpus reaches any
file under the storage directory: prompt logs, spans, spool, keys (issue 9's "Done when")."""

from __future__ import annotations

from pathlib import Path

import grpc

from otlp_enricher.replay import send_requests
from tests.integration.sidecar import run_sidecar
from tests.integration.tools import wait_until
from tests.peers.workload import SECRET_CARD, SECRET_EMAIL, SECRET_KEY, SECRETS, mixed_request


def test_no_secret_reaches_a_file_under_the_storage_directory(tmp_path: Path) -> None:
    """Secrets in prompts: the files hold redaction markers, the spans their enrichment."""
    requests = [mixed_request(5, 2, seed).SerializeToString() for seed in (0, 100)]
    with run_sidecar(tmp_path) as sidecar:
        with grpc.insecure_channel(sidecar.grpc) as channel:
            send_requests(channel, requests)
        logs = sidecar.storage / "prompt-logs.jsonl"
        wait_until(lambda: logs.exists() and logs.read_bytes().count(b"\n") == 10, timeout_s=15, what="10 lines")
    files = [path for path in sidecar.storage.rglob("*") if path.is_file()]
    assert {path.name for path in files} >= {"prompt-logs.jsonl", "spans.jsonl"}
    for path in files:
        data = path.read_bytes()
        for secret in (*SECRETS, SECRET_EMAIL, SECRET_KEY, SECRET_CARD):
            assert secret.encode() not in data, (path.name, secret)
        assert path.stat().st_mode & 0o077 == 0, path.name  # private files
    spans = (sidecar.storage / "spans.jsonl").read_text()
    assert "[REDACTED:email]" in spans and "otlp_enricher.cost_usd" in spans
