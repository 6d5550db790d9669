"""Throughput benchmark: the real ``otlp-enricher serve`` process driven over gRPC from another process.

Prints spans/s, Export latency percentiles and the server's memory. Requests carry LLM-call spans
like real ones (~20 attributes, a 2 KB prompt and a 1 KB completion) plus plain HTTP spans.

    .venv/bin/python bench/throughput.py --seconds 20 --concurrency 8 --spans-per-request 100
    .venv/bin/python bench/throughput.py --backends    # Loki + Tempo exporters to in-repo peers

Without ``--backends`` the server runs the embedded default (prompt logs and spans written as JSON
lines); with it, the Loki and Tempo exporters (spools, senders) deliver to the fake peers of
``tests/peers`` running in this process, and the time until they hold everything is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.net import free_port
from tests.otlp_builders import openai_chat, request, span
from tests.peers.fake_loki import FakeLoki
from tests.peers.fake_tempo import FakeTempo

METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def build_body(spans_per_request: int, variant: int = 0) -> bytes:
    """One Export request: 80 % LLM calls, 20 % plain spans; ``variant`` changes every prompt text."""
    spans = []
    for index in range(spans_per_request):
        if index % 5 == 4:
            spans.append(
                span(
                    {
                        "http.request.method": "GET",
                        "url.full": "https://shop/cart",
                        "http.response.status_code": 200,
                    }
                )
            )
            continue
        attributes = openai_chat(input_tokens=1200 + index, output_tokens=300)
        attributes.update(
            {
                "gen_ai.usage.cache_read.input_tokens": 1000,
                "gen_ai.response.id": f"chatcmpl-{index}",
                "gen_ai.response.finish_reasons": ["stop"],
                "server.address": "api.openai.com",
                "gen_ai.request.temperature": 0.2,
                "gen_ai.request.max_tokens": 512,
                "gen_ai.input.messages": '[{"role":"user","parts":[{"type":"text","content":"'
                + f"order {variant}-{index}: "
                + "p" * 2000
                + '"}]}]',
                "gen_ai.output.messages": '[{"role":"assistant","parts":[{"type":"text","content":"'
                + "c" * 1000
                + '"}]}]',
                "user.id": f"user-{index % 50}",
                "gen_ai.conversation.id": f"conv-{index}",
            }
        )
        spans.append(span(attributes, duration_s=1.5, events=[("gen_ai.content.completion.chunk", 0.3, {})]))
    return request(spans).SerializeToString()


def client(target: str, bodies: list[bytes], concurrency: int, seconds: float, results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """Keep ``concurrency`` Export calls in flight for ``seconds``, cycling through ``bodies``."""

    async def run() -> list[float]:
        latencies: list[float] = []
        deadline = time.monotonic() + seconds
        async with grpc.aio.insecure_channel(target) as channel:
            export = channel.unary_unary(METHOD)

            async def worker() -> None:
                while time.monotonic() < deadline:
                    started = time.perf_counter()
                    await export(bodies[len(latencies) % len(bodies)], timeout=30)
                    latencies.append(time.perf_counter() - started)

            await asyncio.gather(*(worker() for _ in range(concurrency)))
        return latencies

    results.put(asyncio.run(run()))


def rss_kib(pid: int, field: str) -> int:
    """VmRSS / VmHWM of a process in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, int(q * len(ordered) + 0.999999) - 1)]


def main() -> None:
    """Start the server, load it, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--spans-per-request", type=int, default=100)
    parser.add_argument("--config", help="server config (default: the embedded one on free ports)")
    parser.add_argument("--backends", action="store_true", help="export to fake Loki and Tempo peers")
    parser.add_argument("--fsync", choices=("always", "batch", "never"), default="batch")
    args = parser.parse_args()
    loki = FakeLoki().start() if args.backends else None
    tempo = FakeTempo().start() if args.backends else None

    with tempfile.TemporaryDirectory() as workdir:
        grpc_port, metrics_port = free_port(), free_port()
        config = args.config or os.path.join(workdir, "bench.yaml")
        if not args.config:
            exporters: dict[str, Any] = {"prometheus": {"endpoint": f"127.0.0.1:{metrics_port}"}}
            if loki is not None and tempo is not None:
                exporters["loki"] = {"endpoint": f"{loki.url}/loki/api/v1/push"}
                exporters["tempo"] = {"endpoint": tempo.endpoint, "tls": {"insecure": True}}
            settings = {
                "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": f"127.0.0.1:{grpc_port}"}}}},
                "exporters": exporters,
                "storage": {"directory": f"{workdir}/data", "fsync": args.fsync},
                "service": {"telemetry": {"logs": {"level": "warning"}}},
            }
            Path(config).write_text(yaml.safe_dump(settings))
        server = subprocess.Popen([sys.executable, "-m", "otlp_enricher", "serve", "--config", config])
        try:
            target = f"127.0.0.1:{grpc_port}"
            for _ in range(600):
                if server.poll() is not None:
                    raise SystemExit(f"otlp-enricher exited with {server.returncode}")
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/readyz", timeout=1)
                    break
                except OSError:
                    time.sleep(0.05)
            bodies = [build_body(args.spans_per_request, variant) for variant in range(64)]
            spawn = multiprocessing.get_context("spawn")  # no fork() under running gRPC threads
            results: multiprocessing.Queue = spawn.Queue()  # type: ignore[type-arg]
            started = time.monotonic()
            loader = spawn.Process(target=client, args=(target, bodies, args.concurrency, args.seconds, results))
            loader.start()
            latencies = results.get(timeout=args.seconds + 120)
            loader.join()
            elapsed = time.monotonic() - started
            spans = len(latencies) * args.spans_per_request
            shape = f"{args.spans_per_request} spans, {args.concurrency} in flight"
            print(f"requests: {len(latencies)} of {shape}, {elapsed:.1f} s")
            print(f"throughput: {spans / elapsed:,.0f} spans/s")
            print(
                "Export latency: p50 {:.1f} ms, p95 {:.1f} ms, p99 {:.1f} ms".format(
                    *(1000 * percentile(latencies, q) for q in (0.50, 0.95, 0.99))
                )
            )
            rss, peak = rss_kib(server.pid, "VmRSS") / 1024, rss_kib(server.pid, "VmHWM") / 1024
            print(f"server memory: RSS {rss:.0f} MiB, peak {peak:.0f} MiB")
            if loki is not None and tempo is not None:
                llm_calls = len(latencies) * sum(1 for index in range(args.spans_per_request) if index % 5 != 4)
                # The bodies repeat, so the peers see repeated ids: count deliveries, duplicates included.
                delivered = tempo.wait_until(
                    lambda peer: len(peer.spans) + peer.duplicates >= spans, timeout_s=120
                ) and loki.wait_until(lambda peer: len(peer.entries) + peer.duplicates >= llm_calls, timeout_s=120)
                lag = time.monotonic() - started - elapsed
                print(
                    f"backends: {len(tempo.spans) + tempo.duplicates} spans to Tempo, "
                    f"{len(loki.entries) + loki.duplicates} lines to Loki, "
                    f"all delivered {lag:.1f} s after the load ended"
                    if delivered
                    else "backends: NOT all delivered"
                )
        finally:
            server.terminate()
            server.wait(30)
            for peer in (loki, tempo):
                if peer is not None:
                    peer.stop()


if __name__ == "__main__":
    main()
