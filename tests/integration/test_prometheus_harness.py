"""The Prometheus harness works end to end: a real Prometheus scrapes a prometheus_client exposition.

A ``CollectorRegistry`` is served by ``make_wsgi_app`` on a wsgiref server bound to port 0; the
real Prometheus (``start_prometheus`` fixture) scrapes it every second with exemplar storage on.
These tests prove that ``rate``/``increase``/``histogram_quantile`` and exemplar queries work
through the harness, so the sidecar's own Prometheus tests can rely on it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import make_wsgi_app

from .conftest import StartPrometheus

pytestmark = pytest.mark.prometheus

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


class _QuietHandler(WSGIRequestHandler):
    """Request handler that does not log every scrape to stderr."""

    def log_message(self, format: str, *args: object) -> None:
        """Drop the access log line."""


@dataclass
class Exposition:
    """A served registry with one counter and one histogram, and its ``host:port``."""

    target: str
    requests: Counter
    duration: Histogram


@pytest.fixture
def exposition() -> Iterator[Exposition]:
    """Serve a fresh registry over HTTP on 127.0.0.1:<free port> in a thread."""
    registry = CollectorRegistry()
    requests = Counter("demo_requests", "Demo requests.", ["model"], registry=registry)
    duration = Histogram(
        "demo_request_duration_seconds",
        "Demo request duration.",
        ["model"],
        buckets=(0.1, 0.25, 0.5, 1.0, 2.5),
        registry=registry,
    )
    server: WSGIServer = make_server("127.0.0.1", 0, make_wsgi_app(registry), handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="exposition", daemon=True)
    thread.start()
    try:
        yield Exposition(f"127.0.0.1:{server.server_port}", requests, duration)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_counter_rate_and_histogram_quantile(exposition: Exposition, start_prometheus: StartPrometheus) -> None:
    """Increases after the first scrape show up in increase(), rate() and histogram_quantile()."""
    exposition.requests.labels(model="gpt-4o-mini").inc(3)
    exposition.duration.labels(model="gpt-4o-mini")  # exposed as zeros from the first scrape on
    prometheus = start_prometheus([exposition.target])

    # The first scrape has happened (start_prometheus waited for up == 1); now change the values.
    exposition.requests.labels(model="gpt-4o-mini").inc(2)
    for seconds in (0.3, 0.4, 0.45):
        exposition.duration.labels(model="gpt-4o-mini").observe(seconds)

    increase = prometheus.wait_for_query(
        'increase(demo_requests_total{model="gpt-4o-mini"}[1m])', predicate=lambda v: v > 0
    )
    assert increase[0]["metric"]["model"] == "gpt-4o-mini"
    rate = prometheus.wait_for_query("rate(demo_requests_total[1m])", predicate=lambda v: v > 0)
    assert float(rate[0]["value"][1]) > 0
    assert float(prometheus.query("demo_requests_total")[0]["value"][1]) == 5.0

    quantile = prometheus.wait_for_query(
        "histogram_quantile(0.5, sum by (le) (rate(demo_request_duration_seconds_bucket[1m])))",
        predicate=lambda v: not math.isnan(v),
    )
    # All three observations fall in the (0.25, 0.5] bucket.
    assert 0.25 < float(quantile[0]["value"][1]) <= 0.5


def test_exemplar_round_trip(exposition: Exposition, start_prometheus: StartPrometheus) -> None:
    """A histogram exemplar with a trace id comes back from /api/v1/query_exemplars."""
    start = time.time() - 60
    exposition.duration.labels(model="claude-sonnet-4-5").observe(0.42, exemplar={"trace_id": TRACE_ID})
    prometheus = start_prometheus([exposition.target])

    def exemplars() -> list[dict[str, object]] | None:
        found = [
            exemplar
            for series in prometheus.query_exemplars("demo_request_duration_seconds_bucket", start, time.time() + 60)
            for exemplar in series["exemplars"]
            if series["seriesLabels"].get("le") == "0.5"
        ]
        return found or None

    from .tools import wait_until

    found = wait_until(exemplars, timeout_s=30, what="the exemplar in Prometheus")
    assert found[0]["labels"] == {"trace_id": TRACE_ID}
    assert float(str(found[0]["value"])) == pytest.approx(0.42)
