"""Fixtures for integration tests against a real OpenTelemetry Collector and a real Prometheus.

Fixtures:

* ``otelcol_binary`` (session) -> ``Path``: the Collector built from ``collector/manifest.yaml``.
* ``start_collector`` -> ``StartCollector``: ``start_collector(config, env, wait_for=[(host, port)])``
  starts a Collector, waits for its ports and returns a :class:`RunningCollector`; stopped at
  teardown, its log printed when the test failed.
* ``prometheus_binary`` / ``promtool_binary`` (session) -> ``Path``: Debian's ``prometheus`` package.
* ``start_prometheus`` -> ``StartPrometheus``: ``start_prometheus(["127.0.0.1:8000"], rule_files=())``
  starts Prometheus scraping the targets every second and returns a :class:`PrometheusServer`
  once every target was scraped; stopped at teardown.

Markers: ``collector`` (needs the Collector build), ``prometheus`` (needs Prometheus/promtool).
Missing tools skip loudly, or fail under ``CI=true``.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
from collections.abc import Generator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Protocol

import pytest

from .tools import (
    PrometheusServer,
    RunningCollector,
    build_collector,
    unavailable,
)
from .tools import start_collector as _start_collector
from .tools import start_prometheus as _start_prometheus


def pytest_configure(config: pytest.Config) -> None:
    """Register this directory's markers (pyproject.toml is owned elsewhere)."""
    config.addinivalue_line("markers", "collector: needs the OpenTelemetry Collector built by collector/build.sh (Go)")
    config.addinivalue_line("markers", "prometheus: needs Prometheus and promtool (Debian package 'prometheus')")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the item so fixtures can tell at teardown if the test failed."""
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


def _test_failed(request: pytest.FixtureRequest) -> bool:
    reports = request.node.stash.get(_REPORTS, {})
    return any(report.failed for report in reports.values())


class StartCollector(Protocol):
    """Starts a Collector for the current test; see :func:`tools.start_collector`."""

    def __call__(
        self, config: Path, env: Mapping[str, str], *, wait_for: Sequence[tuple[str, int]]
    ) -> RunningCollector:
        """Start ``config`` with ``env``; return once every ``(host, port)`` accepts."""
        ...


class StartPrometheus(Protocol):
    """Starts Prometheus for the current test; see :func:`tools.start_prometheus`."""

    def __call__(self, targets: Sequence[str], *, rule_files: Sequence[Path] = ()) -> PrometheusServer:
        """Start Prometheus scraping ``targets``; return once each was scraped successfully."""
        ...


@pytest.fixture(scope="session")
def otelcol_binary() -> Path:
    """The Collector binary built (or reused from the cache) by ``collector/build.sh``."""
    return build_collector()


@pytest.fixture
def start_collector(otelcol_binary: Path, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[StartCollector]:
    """Start Collectors for one test; all are stopped at teardown, logs shown if it failed."""
    with contextlib.ExitStack() as stack:
        started: list[RunningCollector] = []

        def start(config: Path, env: Mapping[str, str], *, wait_for: Sequence[tuple[str, int]]) -> RunningCollector:
            log_path = tmp_path / f"otelcol-{len(started)}-{config.stem}.log"
            collector = stack.enter_context(
                _start_collector(otelcol_binary, config, env, wait_for=wait_for, log_path=log_path)
            )
            started.append(collector)
            return collector

        yield start
        if _test_failed(request):
            for collector in started:
                print(collector.process.log_tail(), file=sys.stderr)


def _debian_prometheus_tool(name: str) -> Path:
    found = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if found is None:
        unavailable(f"{name} is not installed; run: apt-get install -y prometheus")
    return Path(found)


@pytest.fixture(scope="session")
def prometheus_binary() -> Path:
    """The ``prometheus`` server binary (Debian package ``prometheus``)."""
    return _debian_prometheus_tool("prometheus")


@pytest.fixture(scope="session")
def promtool_binary() -> Path:
    """The ``promtool`` binary (Debian package ``prometheus``)."""
    return _debian_prometheus_tool("promtool")


@pytest.fixture
def start_prometheus(
    prometheus_binary: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[StartPrometheus]:
    """Start Prometheus servers for one test; stopped at teardown, logs shown if it failed."""
    with contextlib.ExitStack() as stack:
        started: list[PrometheusServer] = []

        def start(targets: Sequence[str], *, rule_files: Sequence[Path] = ()) -> PrometheusServer:
            workdir = tmp_path / f"prometheus-{len(started)}"
            server = stack.enter_context(_start_prometheus(prometheus_binary, targets, workdir, rule_files=rule_files))
            started.append(server)
            return server

        yield start
        if _test_failed(request):
            for server in started:
                if server.process is not None:
                    print(server.process.log_tail(), file=sys.stderr)


__all__ = ["StartCollector", "StartPrometheus"]
