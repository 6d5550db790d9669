"""Fixtures shared by the fault suites."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.peers.fake_loki import FakeLoki
from tests.peers.fake_tempo import FakeTempo


@pytest.fixture
def peers() -> Iterator[tuple[FakeLoki, FakeTempo]]:
    """A fake Loki and a fake Tempo, both answering."""
    loki, tempo = FakeLoki(tenant="team-a").start(), FakeTempo().start()
    yield loki, tempo
    loki.stop()
    tempo.stop()
