"""Request authentication for the receivers and the metrics port: bearer tokens and basic auth.

``auth: {bearer_token: {token | filename, scheme}}`` follows the Collector's ``bearertokenauth``
extension: the ``authorization`` header (HTTP) or metadata (gRPC) must equal ``<scheme> <token>``,
scheme ``Bearer`` by default; a token ``filename`` holds the bare token and is re-read when it
changes (checked at most once a second), so a token can be rotated without a restart.

``auth: {basic: {htpasswd_file}}`` takes ``user:{SHA}base64(sha1(password))`` lines, as written by
``htpasswd -s`` (the Collector's ``basicauth`` reads the same file). SHA-1 is unsalted: use long
random passwords (these are machine credentials). bcrypt, MD5-crypt and plain-text lines are
refused rather than guessed at; they are logged once (never their content) and match nothing.

Every comparison is constant-time (``hmac.compare_digest``); the credential itself is never logged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from otlp_enricher.telemetry.logging import get_logger

_RECHECK_S = 1.0


@dataclass(frozen=True, slots=True)
class BearerTokenConfig:
    """``auth.bearer_token``: a ``token`` or a ``filename`` holding it; ``scheme`` before it."""

    token: str = ""
    filename: str = ""
    scheme: str = "Bearer"


@dataclass(frozen=True, slots=True)
class ServerAuthConfig:
    """``auth`` of a listener: exactly one of ``bearer_token`` and ``basic.htpasswd_file``."""

    bearer_token: BearerTokenConfig | None = None
    htpasswd_file: str = ""


class Authenticator(Protocol):
    """Decides whether an ``authorization`` header value is acceptable."""

    challenge: str
    """The ``WWW-Authenticate`` value sent with a 401."""

    def check(self, authorization: str | None) -> bool:
        """Whether ``authorization`` (the header value, ``None`` when absent) is accepted."""
        ...


class _WatchedFile:
    """A small file re-read when its identity, size or mtime changes, checked at most once a second."""

    def __init__(self, path: str, parse: Callable[[bytes], object], clock: Callable[[], float]) -> None:
        self._path = Path(path)
        self._parse = parse
        self._clock = clock
        self._lock = threading.Lock()
        self._stamp = self._stat()  # a missing file at start fails start-up
        self.value = parse(self._path.read_bytes())
        self._checked_at = clock()

    def _stat(self) -> tuple[int, int, int, int]:
        st = os.stat(self._path)
        return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns

    def current(self) -> object:
        now = self._clock()
        if now - self._checked_at < _RECHECK_S:
            return self.value
        with self._lock:
            self._checked_at = now
            try:
                stamp = self._stat()
                if stamp != self._stamp:
                    self.value = self._parse(self._path.read_bytes())
                    self._stamp = stamp
                    get_logger("auth").info("credentials_reloaded", file=str(self._path))
            except OSError as error:
                get_logger("auth").warning("credentials_unreadable", file=str(self._path), error=error.strerror)
        return self.value


class BearerTokenAuth:
    """``authorization: <scheme> <token>`` with the configured or file-held token."""

    def __init__(self, config: BearerTokenConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self._scheme = config.scheme
        self.challenge = f'{config.scheme} realm="otlp-enricher"'
        self._file = (
            _WatchedFile(config.filename, lambda data: data.decode("utf-8", "replace").strip(), clock)
            if config.filename
            else None
        )
        self._token = config.token

    def check(self, authorization: str | None) -> bool:
        """Constant-time comparison with ``<scheme> <token>``; an empty token matches nothing."""
        token = str(self._file.current()) if self._file is not None else self._token
        if not token or authorization is None:
            return False
        expected = f"{self._scheme} {token}".encode()
        return hmac.compare_digest(authorization.encode("utf-8", "replace"), expected)


class BasicAuth:
    """``authorization: Basic base64(user:password)`` checked against an htpasswd file."""

    challenge = 'Basic realm="otlp-enricher", charset="UTF-8"'

    def __init__(self, htpasswd_file: str, clock: Callable[[], float] = time.monotonic) -> None:
        self._file = _WatchedFile(htpasswd_file, _parse_htpasswd, clock)

    def check(self, authorization: str | None) -> bool:
        """Decode the credentials, hash the password and compare in constant time."""
        if authorization is None or not authorization.startswith("Basic "):
            return False
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, sep, password = decoded.partition(":")
        if not sep:
            return False
        entries = self._file.current()
        assert isinstance(entries, dict)
        digest = base64.b64encode(hashlib.sha1(password.encode()).digest())  # htpasswd -s format
        # Compare against a dummy when the user is unknown, so timing does not reveal user names.
        expected = entries.get(user, b"\x00" * 28)
        return hmac.compare_digest(digest, expected) and user in entries


def _parse_htpasswd(data: bytes) -> dict[str, bytes]:
    entries: dict[str, bytes] = {}
    refused = 0
    for line in data.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, _, hashed = line.partition(":")
        if hashed.startswith("{SHA}"):
            entries[user] = hashed[5:].encode("ascii", "replace")
        else:
            refused += 1
    if refused:
        get_logger("auth").warning("htpasswd_entries_refused", count=refused, supported="{SHA} (htpasswd -s)")
    return entries


def build_authenticator(config: ServerAuthConfig | None) -> Authenticator | None:
    """The authenticator ``config`` describes; ``None`` when the listener is open."""
    if config is None:
        return None
    if config.bearer_token is not None:
        return BearerTokenAuth(config.bearer_token)
    return BasicAuth(config.htpasswd_file)
