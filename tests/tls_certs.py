"""Real X.509 material for TLS tests, made with the ``openssl`` command line in a temporary directory:
a CA, a server certificate for 127.0.0.1/localhost signed by it, and a client certificate for mTLS.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Certs:
    """Paths of one generated set (PEM)."""

    directory: Path
    ca: Path
    ca_key: Path
    server: Path
    server_key: Path
    client: Path
    client_key: Path

    def read(self, path: Path) -> bytes:
        """The bytes of one of the files."""
        return path.read_bytes()


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(directory: Path, name: str = "ca") -> tuple[Path, Path]:
    """A self-signed CA: (certificate, key)."""
    cert, key = directory / f"{name}.pem", directory / f"{name}-key.pem"
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN=otlp-enricher test {name}",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )  # fmt: skip
    return cert, key


def make_leaf(directory: Path, name: str, ca: tuple[Path, Path], usage: str) -> tuple[Path, Path]:
    """A certificate signed by ``ca`` for 127.0.0.1 and localhost; ``usage`` serverAuth or clientAuth."""
    cert, key, csr = directory / f"{name}.pem", directory / f"{name}-key.pem", directory / f"{name}.csr"
    ext = directory / f"{name}.ext"
    ext.write_text(f"subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage={usage}\n")
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={name}", cwd=directory,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]), "-CAcreateserial",
        "-out", str(cert), "-days", "2", "-extfile", str(ext), cwd=directory,
    )  # fmt: skip
    return cert, key


def make_certs(directory: Path) -> Certs:
    """A CA, a server and a client certificate in ``directory``."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to generate test certificates")
    directory.mkdir(parents=True, exist_ok=True)
    ca = make_ca(directory)
    server = make_leaf(directory, "server", ca, "serverAuth")
    client = make_leaf(directory, "client", ca, "clientAuth")
    return Certs(directory, ca[0], ca[1], server[0], server[1], client[0], client[1])
