"""Fuzz targets for every parser that takes bytes from outside, and one runner for all of them.

``python -m tests.fuzz <target>`` runs one target: coverage-guided under atheris (libFuzzer) when it
is installed, otherwise under the runner's own seeded random mutation; both call the same
``check``. ``tests/fuzz/test_short_runs.py`` runs every target briefly in CI; CONTRIBUTING.md gives
the longer run. Targets import the code under test only when loaded, so atheris instruments it.
"""
