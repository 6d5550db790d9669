"""Every component the service runs keeps the one lifecycle (``otlp_enricher.lifecycle``): shutdown
before start is a no-op, start then shutdown twice is fine, and ``ready()`` says ready once started.

Like the Collector's generated lifecycle tests, this runs every component of a real service: the
receivers, the Loki and Tempo exporters (backends unreachable: nothing must wait for them), the local
file exporters, the cost rollup, the telemetry endpoint, and a worker's exposition file.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from otlp_enricher.config import parse_config
from otlp_enricher.lifecycle import Component
from otlp_enricher.service import Service
from tests.net import free_port

LISTENERS = """
receivers: {otlp: {protocols: {grpc: {endpoint: "127.0.0.1:0"}, http: {endpoint: "127.0.0.1:0"}}}}
"""
SETUPS = {
    "loki-and-tempo": "exporters:\n"
    "  prometheus: {endpoint: '127.0.0.1:0'}\n"
    "  loki: {endpoint: 'http://127.0.0.1:%(port)d/loki/api/v1/push'}\n"
    "  tempo: {endpoint: '127.0.0.1:%(port)d', tls: {insecure: true}}\n",
    "local-files": "exporters: {prometheus: {endpoint: '127.0.0.1:0'}}\n",
}


def service(setup: str, directory: Path, worker: int | None = None) -> Service:
    text = LISTENERS + SETUPS[setup] % {"port": free_port()} + f"storage: {{directory: '{directory}'}}\n"
    return Service(parse_config(text, "lifecycle.yaml", {}), worker=worker)


def components(running: Service) -> list[Component]:
    return [component for stage in running._stages for component in stage]


@pytest.mark.parametrize(("setup", "worker"), [("loki-and-tempo", None), ("local-files", None), ("local-files", 0)])
def test_every_component_shuts_down_before_start_and_twice(setup: str, worker: int | None, tmp_path: Path) -> None:
    async def scenario() -> None:
        never_started = service(setup, tmp_path / "a", worker)
        for component in components(never_started):
            await asyncio.wait_for(component.shutdown(1.0), 10)  # before start: a no-op, never a hang

        started = service(setup, tmp_path / "b", worker)
        names = [component.name for component in components(started)]
        assert len(names) >= 4, names
        for component in components(started):
            await component.start()
        for component in components(started):
            assert component.ready() is None, component.name
        for component in reversed(components(started)):
            await asyncio.wait_for(component.shutdown(1.0), 10)
            await asyncio.wait_for(component.shutdown(1.0), 10)  # twice: still fine

    asyncio.run(scenario())


def test_receivers_are_not_ready_before_they_listen(tmp_path: Path) -> None:
    idle = service("local-files", tmp_path)
    receivers = [c for c in components(idle) if c.name.startswith("receiver.")]
    assert [c.name for c in receivers] == ["receiver.grpc", "receiver.http"]
    assert all(c.ready() is not None for c in receivers)
    assert idle.ready() == (False, "starting")

    async def release() -> None:  # the telemetry port is bound at construction
        for component in components(idle):
            await component.shutdown(0.0)

    asyncio.run(release())


def test_a_failed_start_stops_what_had_started(tmp_path: Path) -> None:
    """The HTTP port taken: start raises, and everything is shut down again: the gRPC receiver
    started before it, and the telemetry port bound at construction (an unclosed socket fails
    this test through pytest's unraisable-exception check)."""
    held = free_port()
    listeners = f'grpc: {{endpoint: "127.0.0.1:0"}}, http: {{endpoint: "127.0.0.1:{held}"}}'
    text = (
        f"receivers: {{otlp: {{protocols: {{{listeners}}}}}}}\n"
        f"exporters: {{prometheus: {{endpoint: '127.0.0.1:0'}}}}\nstorage: {{directory: '{tmp_path}'}}\n"
    )
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", held))
        blocker.listen()
        failing = Service(parse_config(text, "lifecycle.yaml", {}))

        async def scenario() -> None:
            with pytest.raises(OSError):
                await failing.start()

        asyncio.run(scenario())
    assert failing.grpc is not None and failing.grpc.ready() is not None  # stopped again
