"""TLS and authentication on every listener, with real certificates generated in the test.

On every port a client without the right certificate or credential gets only an authentication
error (or no TLS session at all); with them everything works.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from otlp_enricher.otlp_protocol import EXPORT_METHOD
from otlp_enricher.security.auth import BasicAuth, BearerTokenAuth, BearerTokenConfig
from otlp_enricher.security.tls import ReloadingTls, ServerTlsConfig
from tests.net import raw_export
from tests.otlp_builders import openai_chat, request, span
from tests.receiver.conftest import spans_in
from tests.receiver.secured import Secured, secured
from tests.tls_certs import Certs, make_ca, make_certs, make_leaf

TOKEN = "s3cr3t-otlp-token-Zq9"
METRICS_TOKEN = "metrics-token-Xk2"


def body() -> bytes:
    """One LLM span."""
    return request([span(openai_chat(input_tokens=3, output_tokens=1))]).SerializeToString()


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    """One CA with a server and a client certificate, for the whole module."""
    return make_certs(tmp_path_factory.mktemp("certs"))


def _config(certs: Certs, token_file: Path, mutual: bool = False) -> str:
    ca = f", client_ca_file: {certs.ca}" if mutual else ""
    tls = f"{{cert_file: {certs.server}, key_file: {certs.server_key}{ca}}}"
    return f"""
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:0
        tls: {tls}
        auth: {{bearer_token: {{filename: {token_file}}}}}
      http:
        endpoint: 127.0.0.1:0
        tls: {tls}
        auth: {{bearer_token: {{token: "${{env:OTLP_TOKEN}}"}}}}
exporters:
  prometheus:
    endpoint: 127.0.0.1:0
    tls: {tls}
    auth: {{bearer_token: {{token: {METRICS_TOKEN}}}}}
"""


@pytest.fixture
def tls_token(certs: Certs, tmp_path: Path) -> Iterator[Secured]:
    """Every listener on TLS with a bearer token (gRPC from a file, HTTP from the environment)."""
    token_file = tmp_path / "otlp-token"
    token_file.write_text(TOKEN + "\n")
    with secured(_config(certs, token_file), {"OTLP_TOKEN": TOKEN}) as running:
        yield running


def grpc_export(port: int, certs: Certs, token: str | None, client_cert: bool = False) -> ExportTraceServiceResponse:
    """One Export over TLS trusting the test CA, with ``authorization: Bearer <token>`` when given."""
    credentials = grpc.ssl_channel_credentials(
        certs.read(certs.ca),
        certs.read(certs.client_key) if client_cert else None,
        certs.read(certs.client) if client_cert else None,
    )
    with grpc.secure_channel(f"127.0.0.1:{port}", credentials) as channel:
        call: grpc.UnaryUnaryMultiCallable[bytes, ExportTraceServiceResponse] = channel.unary_unary(
            EXPORT_METHOD, response_deserializer=ExportTraceServiceResponse.FromString
        )
        metadata = (("authorization", f"Bearer {token}"),) if token is not None else None
        return call(body(), timeout=10, metadata=metadata)


def https(
    port: int, method: str, path: str, certs: Certs, headers: dict[str, str] | None = None, client_cert: bool = False
) -> tuple[int, dict[str, str], bytes]:
    """One HTTPS request trusting the test CA."""
    context = ssl.create_default_context(cafile=str(certs.ca))
    if client_cert:
        context.load_cert_chain(str(certs.client), str(certs.client_key))
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
    try:
        payload = body() if method == "POST" else None
        connection.request(method, path, payload, {"Content-Type": "application/x-protobuf", **(headers or {})})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_grpc_needs_the_token_over_tls(tls_token: Secured, certs: Certs) -> None:
    """No token or a wrong one → UNAUTHENTICATED (counted, nothing processed); the right one → OK."""
    for token in (None, "wrong", TOKEN + "x"):
        with pytest.raises(grpc.RpcError) as error:
            grpc_export(tls_token.grpc_port, certs, token)
        assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert spans_in(tls_token.exporter.batches) == 0
    assert tls_token.value("otlp_enricher_auth_failures_total", listener="grpc") == 3
    assert not grpc_export(tls_token.grpc_port, certs, TOKEN).HasField("partial_success")
    assert spans_in(tls_token.exporter.batches) == 1


def test_grpc_refuses_plaintext_on_a_tls_port(tls_token: Secured) -> None:
    """An insecure channel cannot even complete a call."""
    channel = grpc.insecure_channel(f"127.0.0.1:{tls_token.grpc_port}")
    with channel, pytest.raises(grpc.RpcError) as error:
        raw_export(channel)(body(), timeout=5, metadata=(("authorization", f"Bearer {TOKEN}"),))
    assert error.value.code() == grpc.StatusCode.UNAVAILABLE
    assert spans_in(tls_token.exporter.batches) == 0


def test_http_needs_the_token_over_tls(tls_token: Secured, certs: Certs) -> None:
    """401 with WWW-Authenticate without the token (the body is not processed); 200 with it."""
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": TOKEN}):
        status, answer_headers, _ = https(tls_token.http_port, "POST", "/v1/traces", certs, headers)
        assert status == 401 and answer_headers["WWW-Authenticate"].startswith("Bearer")
    assert tls_token.value("otlp_enricher_auth_failures_total", listener="http") == 3
    status, _, _ = https(tls_token.http_port, "POST", "/v1/traces", certs, {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200 and spans_in(tls_token.exporter.batches) == 1


def test_http_refuses_plaintext_on_a_tls_port(tls_token: Secured) -> None:
    """A plain-HTTP request to the TLS port gets no HTTP answer at all."""
    with socket.create_connection(("127.0.0.1", tls_token.http_port), timeout=10) as sock:
        sock.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        try:
            answer = sock.recv(100)
        except ConnectionResetError:
            answer = b""
    assert not answer.startswith(b"HTTP/")
    assert spans_in(tls_token.exporter.batches) == 0


def test_metrics_are_guarded_but_probes_stay_open(tls_token: Secured, certs: Certs) -> None:
    """/metrics needs the token; /healthz and /readyz answer without one."""
    port = tls_token.metrics_port
    assert https(port, "GET", "/healthz", certs)[0] == 200
    assert https(port, "GET", "/readyz", certs)[0] == 200
    status, headers, answer = https(port, "GET", "/metrics", certs)
    assert status == 401 and "WWW-Authenticate" in headers and b"llm_" not in answer
    status, _, answer = https(port, "GET", "/metrics", certs, {"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert status == 200 and b"otlp_enricher_auth_failures_total" in answer


def test_mutual_tls_requires_a_client_certificate(certs: Certs, tmp_path: Path) -> None:
    """With client_ca_file: no client certificate → no session; one signed by the CA → OK."""
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    with secured(_config(certs, token_file, mutual=True), {"OTLP_TOKEN": TOKEN}) as running:
        with pytest.raises(grpc.RpcError) as error:
            grpc_export(running.grpc_port, certs, TOKEN)
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            https(running.http_port, "POST", "/v1/traces", certs, {"Authorization": f"Bearer {TOKEN}"})
        grpc_export(running.grpc_port, certs, TOKEN, client_cert=True)
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert https(running.http_port, "POST", "/v1/traces", certs, auth, client_cert=True)[0] == 200
        assert https(running.metrics_port, "GET", "/healthz", certs, client_cert=True)[0] == 200
        assert spans_in(running.exporter.batches) == 2


def test_token_file_is_re_read_when_it_changes(tmp_path: Path) -> None:
    """A rotated token file takes effect within the recheck interval; the old token stops working."""
    now = [0.0]
    token_file = tmp_path / "token"
    token_file.write_text("first\n")
    auth = BearerTokenAuth(BearerTokenConfig(filename=str(token_file)), clock=lambda: now[0])
    assert auth.check("Bearer first") and not auth.check("Bearer second")
    token_file.write_text("second-token\n")
    now[0] = 2.0
    assert auth.check("Bearer second-token") and not auth.check("Bearer first")
    assert not auth.check(None) and not auth.check("bearer second-token")  # the scheme is exact


def test_custom_scheme_and_empty_token_file(tmp_path: Path) -> None:
    """``scheme`` replaces Bearer; an empty token file accepts nothing (not every empty credential)."""
    custom = BearerTokenAuth(BearerTokenConfig(token="t", scheme="Token"))
    assert custom.check("Token t") and not custom.check("Bearer t")
    empty = tmp_path / "empty"
    empty.write_text("\n")
    auth = BearerTokenAuth(BearerTokenConfig(filename=str(empty)))
    assert not auth.check("Bearer ") and not auth.check("Bearer")


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_basic_auth_from_an_htpasswd_file(tmp_path: Path) -> None:
    """``{SHA}`` lines as ``htpasswd -s`` writes them; other formats are refused, not guessed."""
    sha = base64.b64encode(hashlib.sha1(b"correct horse").digest()).decode()
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(f"# scrapers\nprometheus:{{SHA}}{sha}\nplain:secret\nbcrypt:$2y$05$abcdefghijklmnopqrstuv\n")
    auth = BasicAuth(str(htpasswd))
    assert auth.check(_basic("prometheus", "correct horse"))
    assert not auth.check(_basic("prometheus", "wrong"))
    assert not auth.check(_basic("plain", "secret")) and not auth.check(_basic("nobody", "correct horse"))
    assert not auth.check("Basic !!!") and not auth.check("Bearer x") and not auth.check(None)


def test_basic_auth_guards_metrics(tmp_path: Path) -> None:
    """``exporters.prometheus.auth.basic.htpasswd_file``: 401 + Basic challenge, 200 with the password."""
    sha = base64.b64encode(hashlib.sha1(b"pw-123").digest()).decode()
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(f"scraper:{{SHA}}{sha}\n")
    text = f"""
receivers: {{otlp: {{protocols: {{grpc: {{endpoint: 127.0.0.1:0}}, http: {{endpoint: 127.0.0.1:0}}}}}}}}
exporters: {{prometheus: {{endpoint: 127.0.0.1:0, auth: {{basic: {{htpasswd_file: {htpasswd}}}}}}}}}
"""
    with secured(text) as running:
        connection = http.client.HTTPConnection("127.0.0.1", running.metrics_port, timeout=10)
        connection.request("GET", "/metrics")
        response = connection.getresponse()
        response.read()
        assert response.status == 401 and response.getheader("WWW-Authenticate", "").startswith("Basic")
        connection.close()
        connection = http.client.HTTPConnection("127.0.0.1", running.metrics_port, timeout=10)
        connection.request("GET", "/metrics", headers={"Authorization": _basic("scraper", "pw-123")})
        response = connection.getresponse()
        response.read()
        assert response.status == 200
        connection.close()
        assert running.value("otlp_enricher_auth_failures_total", listener="prometheus") == 1


def _served_certificate(port: int, ca: Path) -> bytes:
    context = ssl.create_default_context(cafile=str(ca))
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def test_certificates_are_reloaded_on_reload_interval(tmp_path: Path) -> None:
    """New files are served at the next handshake once reload_interval passed; a broken file keeps
    the previous certificate."""
    first = make_certs(tmp_path / "first")
    live = tmp_path / "live"
    live.mkdir()
    (live / "cert.pem").write_bytes(first.server.read_bytes())
    (live / "key.pem").write_bytes(first.server_key.read_bytes())
    now = [0.0]
    reloading = ReloadingTls(
        ServerTlsConfig(str(live / "cert.pem"), str(live / "key.pem"), reload_interval_s=60), clock=lambda: now[0]
    )
    assert not reloading.reload_if_due()
    second_ca = make_ca(tmp_path / "first", "second-ca")
    second = make_leaf(tmp_path / "first", "server2", second_ca, "serverAuth")
    (live / "cert.pem").write_bytes(second[0].read_bytes())
    (live / "key.pem").write_bytes(second[1].read_bytes())
    now[0] = 30.0
    assert not reloading.reload_if_due()  # not due yet
    now[0] = 61.0
    assert reloading.reload_if_due() and reloading.generation == 1
    (live / "cert.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\ntruncated")
    now[0] = 200.0
    assert not reloading.reload_if_due() and reloading.generation == 1


def test_a_running_https_listener_serves_the_reloaded_certificate(certs: Certs, tmp_path: Path) -> None:
    """End to end on the metrics port: a handshake after the reload sees the new certificate."""
    live = tmp_path / "live"
    live.mkdir()
    (live / "cert.pem").write_bytes(certs.server.read_bytes())
    (live / "key.pem").write_bytes(certs.server_key.read_bytes())
    text = f"""
receivers: {{otlp: {{protocols: {{grpc: {{endpoint: 127.0.0.1:0}}, http: {{endpoint: 127.0.0.1:0}}}}}}}}
exporters:
  prometheus:
    endpoint: 127.0.0.1:0
    tls: {{cert_file: {live / "cert.pem"}, key_file: {live / "key.pem"}, reload_interval: 10ms}}
"""
    with secured(text) as running:
        before = _served_certificate(running.metrics_port, certs.ca)
        renewed = make_leaf(certs.directory, "server-renewed", (certs.ca, certs.ca_key), "serverAuth")
        key_tmp = live / "key.tmp"
        key_tmp.write_bytes(renewed[1].read_bytes())
        (live / "cert.tmp").write_bytes(renewed[0].read_bytes())
        os.replace(key_tmp, live / "key.pem")
        os.replace(live / "cert.tmp", live / "cert.pem")
        after = before
        for _ in range(50):  # each handshake re-checks; 10 ms apart at least once
            after = _served_certificate(running.metrics_port, certs.ca)
            if after != before:
                break
        assert after != before
