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

from tests.integration.tools import wait_until
from tests.net import free_port

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
    shutil.copytree(ROOT / "native", checkout / "native", ignore=shutil.ignore_patterns("target"))
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
    a changed pyproject.toml or native source (at any depth) installs again."""
    checkout, pip_log = _fake_checkout(tmp_path)
    assert _pip_runs(checkout, pip_log) == ["-m pip install --quiet --disable-pip-version-check -e ."]
    assert _pip_runs(checkout, pip_log) == []
    assert _pip_runs(checkout, pip_log, "test") == ["-m pip install --quiet --disable-pip-version-check -e .[test]"]
    assert _pip_runs(checkout, pip_log) == []
    assert _pip_runs(checkout, pip_log, "test") == []
    with open(checkout / "pyproject.toml", "a") as pyproject:
        pyproject.write("\n# changed\n")
    assert len(_pip_runs(checkout, pip_log, "test")) == 1
    for module in ("lib.rs", "py/splicer.rs"):  # the extension must be rebuilt, nested modules too
        with open(checkout / "native" / "src" / module, "a") as source:
            source.write("\n// changed\n")
        assert len(_pip_runs(checkout, pip_log, "test")) == 1, module
    assert _pip_runs(checkout, pip_log, "test") == []


def test_no_script_stops_a_process_by_name() -> None:
    """A user's own Prometheus (or anything else) must survive ``scripts/test``: nothing is stopped
    by process name, only by the PID or service the script itself started."""
    by_name = re.compile(r"\b(p[k]ill|kill[a]ll)\b")  # bracketed so this file does not match itself
    for script in [*SCRIPTS.iterdir(), ROOT / ".ci" / "run"]:
        assert not by_name.search(script.read_text()), script


FAKE_APT_GET = """#!/bin/sh
# Records the install and, like a package's postinst, starts the service unless policy-rc.d forbids it.
[ "$1" = install ] || exit 0
rc=none
if [ -x "$POLICY_RC_D" ]; then "$POLICY_RC_D" prometheus start; rc=$?; fi
echo "install policy_rc=$rc" >> "$FAKE_LOG"
if [ "$rc" != 101 ]; then echo active > "$FAKE_STATE"; fi
"""
FAKE_SYSTEMCTL = """#!/bin/sh
echo "systemctl $*" >> "$FAKE_LOG"
case "$1" in
  is-active) state=$(cat "$FAKE_STATE" 2>/dev/null || echo inactive); echo "$state"; [ "$state" = active ] ;;
  stop) echo inactive > "$FAKE_STATE" ;;
esac
"""


def _run_test_script_install(tmp_path: Path, policy: str | None, active_before: bool) -> tuple[list[str], Path]:
    """Run scripts/test's install branch on a machine without prometheus, with apt-get and systemctl
    faked and every check stubbed; returns what apt-get and systemctl were asked to do."""
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    shutil.copy(SCRIPTS / "test", checkout / "scripts" / "test")
    (checkout / "scripts" / "setup.sh").write_text("exit 0\n")
    fakebin, venv_bin = tmp_path / "bin", checkout / ".venv" / "bin"
    fakebin.mkdir()
    venv_bin.mkdir(parents=True)
    for tool in ("ruff", "mypy", "python"):
        (venv_bin / tool).write_text("#!/bin/sh\nexit 0\n")
    (checkout / "native").mkdir()
    (fakebin / "cargo").write_text("#!/bin/sh\nexit 0\n")
    for tool in ("bash", "sh", "cat", "chmod", "dirname", "id", "rm", "tee"):
        found = shutil.which(tool)
        assert found, tool
        (fakebin / tool).symlink_to(found)
    for name, text in (("apt-get", FAKE_APT_GET), ("systemctl", FAKE_SYSTEMCTL)):
        (fakebin / name).write_text(text)
    for executable in [*venv_bin.iterdir(), fakebin / "apt-get", fakebin / "systemctl", fakebin / "cargo"]:
        executable.chmod(0o755)
    policy_path, log, state = tmp_path / "policy-rc.d", tmp_path / "calls.log", tmp_path / "state"
    if policy is not None:
        policy_path.write_text(policy)
        policy_path.chmod(0o755)
    if active_before:
        state.write_text("active\n")
    env = {"PATH": str(fakebin), "POLICY_RC_D": str(policy_path), "FAKE_LOG": str(log), "FAKE_STATE": str(state)}
    result = subprocess.run([str(fakebin / "bash"), str(checkout / "scripts" / "test")], env=env,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return [line for line in log.read_text().splitlines() if "is-active" not in line], policy_path


def test_test_script_keeps_the_packaged_prometheus_from_starting(tmp_path: Path) -> None:
    """No policy-rc.d on the machine: one answering 101 is in place during the install (so the
    service never starts), removed afterwards, and nothing is stopped."""
    calls, policy = _run_test_script_install(tmp_path, policy=None, active_before=False)
    assert calls == ["install policy_rc=101"]
    assert not policy.exists()


def test_test_script_stops_only_a_service_its_install_started(tmp_path: Path) -> None:
    """The machine's own policy-rc.d allows starts: it is left as it was, and the service the
    install started is stopped through systemctl by its unit name."""
    own_policy = "#!/bin/sh\nexit 0\n"
    calls, policy = _run_test_script_install(tmp_path, policy=own_policy, active_before=False)
    assert calls == ["install policy_rc=0", "systemctl stop prometheus"]
    assert policy.read_text() == own_policy


def test_test_script_leaves_a_prometheus_that_was_already_running(tmp_path: Path) -> None:
    """A Prometheus service that was running before the install is the user's: never stopped."""
    calls, _ = _run_test_script_install(tmp_path, policy="#!/bin/sh\nexit 0\n", active_before=True)
    assert calls == ["install policy_rc=0"]
