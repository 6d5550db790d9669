"""The scripts a newcomer runs first: ``scripts/serve``, ``scripts/setup.sh``, ``scripts/test``."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.integration.tools import free_port, wait_until

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"


def _ready(url: str, process: subprocess.Popen[bytes]) -> bool:
    if process.poll() is not None:
        raise AssertionError(f"scripts/serve exited with {process.returncode}")
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def test_serve_resolves_config_and_storage_against_the_callers_directory(tmp_path: Path) -> None:
    """``bash scripts/serve --config my.yaml`` from elsewhere: the relative config path is found and
    the relative storage directory is created there, not inside the checkout."""
    caller = tmp_path / "elsewhere"
    caller.mkdir()
    metrics = f"127.0.0.1:{free_port()}"
    (caller / "my.yaml").write_text(
        f"receivers: {{otlp: {{protocols: {{grpc: {{endpoint: '127.0.0.1:{free_port()}'}}}}}}}}\n"
        f"exporters: {{prometheus: {{endpoint: '{metrics}'}}}}\n"
        "storage: {directory: my-data}\n"
    )
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            ["bash", str(SCRIPTS / "serve"), "--config", "my.yaml"], cwd=caller, stdout=log, stderr=log
        )
        try:
            # The first run on a fresh venv may run pip once (setup.sh); later runs return at once.
            wait_until(lambda: _ready(f"http://{metrics}/readyz", process), timeout_s=300,
                       what="scripts/serve /readyz", on_timeout=log_path.read_text)  # fmt: skip
            assert (caller / "my-data").is_dir()
            assert not (ROOT / "my-data").exists()
        finally:
            os.kill(process.pid, signal.SIGTERM)  # serve execs the sidecar: this is its pid
            assert process.wait(30) == 0, log_path.read_text()


def _fake_checkout(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of setup.sh and pyproject.toml with a ``.venv/bin/python`` that logs pip runs instead
    of running them, and hands everything else to the real interpreter."""
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    shutil.copy(SCRIPTS / "setup.sh", checkout / "scripts" / "setup.sh")
    shutil.copy(ROOT / "pyproject.toml", checkout / "pyproject.toml")
    python = checkout / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    pip_log = tmp_path / "pip.log"
    python.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = -m ] && [ "$2" = pip ]; then echo "$*" >> {pip_log}; exit 0; fi\n'
        f'exec {sys.executable} "$@"\n'
    )
    python.chmod(0o755)
    return checkout, pip_log


def _pip_runs(checkout: Path, pip_log: Path, *args: str) -> list[str]:
    """Run setup.sh and return the pip commands it ran (and clear the log)."""
    result = subprocess.run(["bash", str(checkout / "scripts" / "setup.sh"), *args],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    runs = pip_log.read_text().splitlines() if pip_log.exists() else []
    pip_log.unlink(missing_ok=True)
    return runs


def test_setup_runs_pip_only_when_pyproject_changed_or_tools_are_missing(tmp_path: Path) -> None:
    """First run installs; a second does nothing; "test" after a plain install installs the extras;
    a changed pyproject.toml installs again."""
    checkout, pip_log = _fake_checkout(tmp_path)
    assert _pip_runs(checkout, pip_log) == ["-m pip install --quiet --disable-pip-version-check -e ."]
    assert _pip_runs(checkout, pip_log) == []
    assert _pip_runs(checkout, pip_log, "test") == ["-m pip install --quiet --disable-pip-version-check -e .[test]"]
    assert _pip_runs(checkout, pip_log) == []
    assert _pip_runs(checkout, pip_log, "test") == []
    with open(checkout / "pyproject.toml", "a") as pyproject:
        pyproject.write("\n# changed\n")
    assert len(_pip_runs(checkout, pip_log, "test")) == 1


def test_no_script_stops_a_process_by_name() -> None:
    """A user's own Prometheus (or anything else) must survive ``scripts/test``: nothing is stopped
    by process name, only by the PID or service the script itself started."""
    by_name = re.compile(r"\b(p[k]ill|kill[a]ll)\b")  # bracketed so this file does not match itself
    for script in [*SCRIPTS.iterdir(), ROOT / ".ci" / "run"]:
        assert not by_name.search(script.read_text()), script
