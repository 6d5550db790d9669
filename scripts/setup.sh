#!/usr/bin/env bash
# Creates .venv and installs otlp-enricher into it (with the test tools when given "test").
# Runs pip only when needed: on a new venv, when pyproject.toml changed since the last install
# (a stamp in .venv keyed by its hash), when the test tools are asked for and missing, or when
# the package is not importable. Otherwise it returns at once and prints nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
mode=${1:-run}
stamp=.venv/.otlp-enricher-installed
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
fi
want=$(.venv/bin/python -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' pyproject.toml)
have=$(cat "$stamp" 2>/dev/null || true)
# "<hash> test" covers both modes; "<hash> run" only the plain one. -I: do not import from the cwd.
if { [ "$have" = "$want test" ] || { [ "$mode" != test ] && [ "$have" = "$want run" ]; }; } \
  && .venv/bin/python -I -c 'import otlp_enricher' 2>/dev/null; then
  exit 0
fi
rm -f "$stamp"
if [ "$mode" = test ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test]"
else
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e .
fi
echo "$want $mode" > "$stamp"
