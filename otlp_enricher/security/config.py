"""``tls`` and ``auth`` of a listener (OTLP receivers and the metrics port), in the Collector's
``configtls`` and ``bearertokenauth`` vocabulary."""

from __future__ import annotations

import os
import re

from otlp_enricher.confignode import ConfigNode, join_path
from otlp_enricher.security.auth import BearerTokenConfig, ServerAuthConfig
from otlp_enricher.security.tls import TLS_VERSIONS, ServerTlsConfig


def server_tls_config(listener: ConfigNode, grpc: bool = False) -> ServerTlsConfig | None:
    """``tls`` of a listener (configtls): cert and key required, TLS 1.2 or 1.3."""
    if not listener.has("tls"):
        return None
    node = listener.child("tls")
    versions = ("1.2",) if grpc else tuple(TLS_VERSIONS)
    tls = ServerTlsConfig(
        cert_file=node.required_string("cert_file"),
        key_file=node.required_string("key_file"),
        client_ca_file=node.string("client_ca_file"),
        min_version=node.string("min_version", "1.2", versions),  # grpcio exposes no minimum version
        reload_interval_s=node.duration("reload_interval", 0.0, 0.0),
    )
    for key in ("cert_file", "key_file", "client_ca_file"):
        value = getattr(tls, key)
        if value and not os.path.isfile(value):
            node.error(join_path(node.path, key), "expected a readable file, which this path is not")
    node.done()
    return tls


def server_auth_config(listener: ConfigNode) -> ServerAuthConfig | None:
    """``auth`` of a listener: ``bearer_token: {token | filename, scheme}`` or ``basic: {htpasswd_file}``."""
    if not listener.has("auth"):
        return None
    node = listener.child("auth")
    config: ServerAuthConfig | None = None
    if node.has("bearer_token"):
        bearer = node.child("bearer_token")
        token_config = BearerTokenConfig(
            token=bearer.string("token"), filename=bearer.string("filename"), scheme=bearer.string("scheme", "Bearer")
        )
        if bool(token_config.token) == bool(token_config.filename):
            bearer.error(bearer.path, "expected exactly one of token, filename")
        elif token_config.filename and not os.path.isfile(token_config.filename):
            bearer.error(join_path(bearer.path, "filename"), "expected a readable file, which this path is not")
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9._~+/-]*", token_config.scheme):
            bearer.error(join_path(bearer.path, "scheme"), "expected an HTTP auth scheme name such as Bearer")
        bearer.done()
        config = ServerAuthConfig(bearer_token=token_config)
    if node.has("basic"):
        basic = node.child("basic")
        htpasswd = basic.required_string("htpasswd_file")
        if htpasswd and not os.path.isfile(htpasswd):
            basic.error(join_path(basic.path, "htpasswd_file"), "expected a readable file, which this path is not")
        basic.done()
        if config is not None:
            node.error(node.path, "expected one of bearer_token, basic, not both")
        config = ServerAuthConfig(htpasswd_file=htpasswd)
    if config is None:
        node.error(node.path, "expected bearer_token or basic")
    node.done()
    return config
