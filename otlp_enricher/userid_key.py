"""The key that ``processors.redaction.user_id: hash`` (the default) hashes user ids with.

When the config gives no ``hash_key``, a random 256-bit key is generated once and kept in
``<storage.directory>/user-id-hash.key`` (mode 0600), so one user's calls keep grouping together
across restarts while the raw id never leaves the process. Delete the file to rotate the key
(hashes change); give ``hash_key`` to share one key between several sidecars.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from pathlib import Path

from otlp_enricher.processor.redaction import RedactionSettings
from otlp_enricher.storage_files import make_private_dir, open_private_fd

HASH_KEY_FILE = "user-id-hash.key"


def resolve_redaction(settings: RedactionSettings, storage_directory: Path) -> RedactionSettings:
    """``settings`` with ``hash_key`` filled from the storage directory when hashing without a key."""
    if settings.user_id != "hash" or settings.hash_key:
        return settings
    return dataclasses.replace(settings, hash_key=load_or_create_hash_key(storage_directory))


def load_or_create_hash_key(storage_directory: Path) -> str:
    """The key in ``storage_directory``, generated there (exclusively, 0600) when absent."""
    make_private_dir(storage_directory)
    path = storage_directory / HASH_KEY_FILE
    key = secrets.token_hex(32)
    try:
        fd = open_private_fd(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    except FileExistsError:
        existing = _read_key(path)
        if existing:
            return existing
        raise ValueError(f"{path} is empty; delete it to generate a new user-id hash key") from None
    with os.fdopen(fd, "wb") as stream:
        stream.write(key.encode() + b"\n")
        stream.flush()
        os.fsync(stream.fileno())
    return key


def _read_key(path: Path) -> str:
    fd = open_private_fd(path, os.O_RDONLY)  # narrows a key file left wider by hand
    with os.fdopen(fd, "rb") as stream:
        return stream.read(4096).decode("ascii", "replace").strip()
