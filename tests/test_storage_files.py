"""Private modes under the storage directory, and the generated user-id hash key."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from otlp_enricher.config import parse_config
from otlp_enricher.processor.redaction import RedactionSettings, Redactor
from otlp_enricher.storage_files import make_private_dir, open_private, write_private
from otlp_enricher.userid_key import HASH_KEY_FILE, load_or_create_hash_key, resolve_redaction


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def _permissive_umask() -> object:
    """The helpers must not rely on the umask: run every test under the most permissive one."""
    old = os.umask(0)
    yield None
    os.umask(old)


def test_files_and_directories_are_private_whatever_the_umask(tmp_path: Path) -> None:
    """New directories (parents included) are 0700, new files 0600."""
    directory = make_private_dir(tmp_path / "a" / "b")
    with open_private(directory / "x.jsonl") as stream:
        stream.write(b"line\n")
    write_private(directory / "y", b"data")
    assert _mode(tmp_path / "a") == 0o700 and _mode(directory) == 0o700
    assert _mode(directory / "x.jsonl") == 0o600 and _mode(directory / "y") == 0o600
    assert (directory / "y").read_bytes() == b"data"


def test_wider_modes_left_by_an_older_version_are_narrowed(tmp_path: Path) -> None:
    """An existing 0644 file and 0755 directory are narrowed when opened again."""
    old = tmp_path / "old"
    old.mkdir(mode=0o755)
    (old / "f").write_bytes(b"x")
    os.chmod(old / "f", 0o644)
    make_private_dir(old)
    with open_private(old / "f") as stream:
        stream.write(b"y")
    assert _mode(old) == 0o700 and _mode(old / "f") == 0o600
    assert (old / "f").read_bytes() == b"xy"


def test_the_default_hashes_user_ids_with_a_key_generated_once(tmp_path: Path) -> None:
    """No ``hash_key`` in the config: a 0600 key file is created and reused across restarts."""
    settings = parse_config("processors: {genai: {}}", "t.yaml", {}).redaction
    assert settings.user_id == "hash"
    first = resolve_redaction(settings, tmp_path / "data")
    second = resolve_redaction(settings, tmp_path / "data")
    key_file = tmp_path / "data" / HASH_KEY_FILE
    assert _mode(key_file) == 0o600 and len(first.hash_key) == 64
    assert first.hash_key == second.hash_key == key_file.read_text().strip()
    hashed = Redactor(first).user_id("alice@example.com")
    assert hashed is not None and hashed.startswith("h:") and "alice" not in hashed
    other = resolve_redaction(settings, tmp_path / "elsewhere")
    assert Redactor(other).user_id("alice@example.com") != hashed


def test_a_configured_key_or_another_mode_needs_no_file(tmp_path: Path) -> None:
    """``hash_key`` given, or ``keep``/``drop``: nothing is written."""
    given = resolve_redaction(RedactionSettings(user_id="hash", hash_key="k"), tmp_path)
    keep = resolve_redaction(RedactionSettings(user_id="keep"), tmp_path)
    assert given.hash_key == "k" and keep.hash_key == "" and not (tmp_path / HASH_KEY_FILE).exists()


def test_an_empty_key_file_is_an_error_not_an_empty_key(tmp_path: Path) -> None:
    """A truncated key file must not silently hash with an empty key."""
    (tmp_path / HASH_KEY_FILE).write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        load_or_create_hash_key(tmp_path)
