#!/usr/bin/env bash
# Creates .venv and installs otlp-enricher into it (with the test tools when given "test").
# Runs pip only when needed: on a new venv, when pyproject.toml or the native core's sources
# changed since the last install (a stamp in .venv keyed by their hash; pip then rebuilds the
# Rust extension with cargo), when the test tools are asked for and missing, or when the package
# is not importable. Otherwise it returns at once and prints nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
mode=${1:-run}
stamp=.venv/.otlp-enricher-installed
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
fi
want=$(.venv/bin/python -c 'import hashlib, pathlib, sys; h = hashlib.sha256()
for path in sys.argv[1:4] + sorted(map(str, pathlib.Path(sys.argv[4]).rglob("*.rs"))):
    h.update(path.encode() + b"\0" + open(path, "rb").read())
print(h.hexdigest())' pyproject.toml native/Cargo.toml native/Cargo.lock native/src)
have=$(cat "$stamp" 2>/dev/null || true)
# "<hash> test" covers both modes; "<hash> run" only the plain one. -I: do not import from the cwd.
if { [ "$have" = "$want test" ] || { [ "$mode" != test ] && [ "$have" = "$want run" ]; }; } \
  && .venv/bin/python -I -c 'import otlp_enricher._native' 2>/dev/null; then
  exit 0
fi
rm -f "$stamp"
if [ "$mode" = test ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test]"
else
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e .
fi
echo "$want $mode" > "$stamp"
