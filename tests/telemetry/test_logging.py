"""The sidecar's own log goes to the stderr of the moment, never to a stream closed since."""

from __future__ import annotations

import io
import json

import pytest

from otlp_enricher.telemetry.logging import configure_logging, get_logger


def test_events_follow_a_replaced_stderr_after_the_old_one_is_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    first = io.StringIO()
    monkeypatch.setattr("sys.stderr", first)
    configure_logging("info", "json")
    first.close()  # as a test runner closes its capture after a test
    second = io.StringIO()
    monkeypatch.setattr("sys.stderr", second)
    get_logger("test").info("still_logged", detail=1)
    (line,) = second.getvalue().splitlines()
    assert json.loads(line)["event"] == "still_logged"
