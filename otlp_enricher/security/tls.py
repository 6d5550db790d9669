"""Server TLS in the Collector's ``configtls`` vocabulary, with certificates re-read while running.

``tls: {cert_file, key_file, client_ca_file, min_version, reload_interval}``: mutual TLS when
``client_ca_file`` is set (a client certificate signed by that CA is required); with
``reload_interval`` the files are re-read at most that often and, when their content changed, new
handshakes use the new certificate (established connections keep theirs), as configtls does. A
reload that fails (a half-written file) keeps the previous certificate and is logged once per change.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import grpc

from otlp_enricher.telemetry.logging import get_logger

TLS_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


@dataclass(frozen=True, slots=True)
class ServerTlsConfig:
    """``tls`` of a listener: a certificate and key, optionally a client CA (mutual TLS)."""

    cert_file: str
    key_file: str
    client_ca_file: str = ""
    min_version: str = "1.2"
    reload_interval_s: float = 0.0


@dataclass(frozen=True, slots=True)
class _Material:
    cert: bytes
    key: bytes
    client_ca: bytes | None


class ReloadingTls:
    """The current certificate material of one listener; :meth:`reload_if_due` re-reads it."""

    def __init__(self, config: ServerTlsConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._log = get_logger("tls")
        self._material = self._read()  # a broken certificate at start fails start-up
        self._context = self._ssl_context(self._material)
        self._checked_at = clock()
        self._failed: _Material | None = None
        self.generation = 0

    def _read(self) -> _Material:
        config = self.config
        ca = Path(config.client_ca_file).read_bytes() if config.client_ca_file else None
        return _Material(Path(config.cert_file).read_bytes(), Path(config.key_file).read_bytes(), ca)

    def _ssl_context(self, material: _Material) -> ssl.SSLContext:
        """An ``ssl`` server context for the HTTP listeners (the stdlib loads from files only)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = TLS_VERSIONS[self.config.min_version]
        context.load_cert_chain(self.config.cert_file, self.config.key_file)
        if material.client_ca is not None:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cadata=material.client_ca.decode("ascii", "replace"))
        return context

    def reload_if_due(self) -> bool:
        """Re-read the files when ``reload_interval`` has passed; ``True`` when the material changed."""
        interval = self.config.reload_interval_s
        if interval <= 0:
            return False
        now = self._clock()
        with self._lock:
            if now - self._checked_at < interval:
                return False
            self._checked_at = now
            try:
                material = self._read()
                if material == self._material:
                    return False
                context = self._ssl_context(material)
            except (OSError, ssl.SSLError, ValueError) as error:
                if self._failed is None:
                    self._log.warning("tls_reload_failed", cert_file=self.config.cert_file, error=type(error).__name__)
                    self._failed = self._material
                return False
            self._material, self._context, self._failed = material, context, None
            self.generation += 1
        self._log.info("tls_reloaded", cert_file=self.config.cert_file, generation=self.generation)
        return True

    def ssl_context(self) -> ssl.SSLContext:
        """The context new HTTP connections are wrapped with (reloaded first when due)."""
        self.reload_if_due()
        return self._context

    def grpc_credentials(self) -> grpc.ServerCredentials:
        """gRPC server credentials that pick up reloaded certificates at the next handshake."""
        if self.config.min_version != "1.2":
            # grpcio exposes no minimum TLS version; config validation refuses anything else.
            raise ValueError("gRPC listeners support min_version 1.2 only")

        def configuration(material: _Material) -> grpc.ServerCertificateConfiguration:
            return grpc.ssl_server_certificate_configuration([(material.key, material.cert)], material.client_ca)

        def fetch() -> grpc.ServerCertificateConfiguration | None:
            return configuration(self._material) if self.reload_if_due() else None

        # grpcio documents that the fetcher returns None for "no change"; its stub says otherwise.
        fetcher = cast(Callable[[], grpc.ServerCertificateConfiguration], fetch)
        return grpc.dynamic_ssl_server_credentials(
            configuration(self._material), fetcher, require_client_authentication=self._material.client_ca is not None
        )
