"""The benchmark's own servers, each run as its own process (``python -m bench.servers …``).

``floor``: a do-nothing ``grpc.aio`` OTLP ``TraceService/Export`` server that parses each request
and answers success — the least any Python receiver can cost, the floor of the table.

``sink``: where the systems under test deliver. An OTLP/gRPC Export endpoint (plays Tempo for
otlp-enricher and the downstream of the Collector's ``otlp`` exporter; gzip is handled by gRPC)
that counts spans, and a Loki push endpoint that answers 204 and counts requests and bytes.
``GET /counts`` on the HTTP port returns the counters as JSON. Unlike ``tests/peers`` the sink
keeps nothing, so a run of millions of spans costs it no memory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
EMPTY_RESPONSE = ExportTraceServiceResponse().SerializeToString()


class Counters:
    """What the sink has received; shared by the gRPC handler and the HTTP threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.values = {"otlp_requests": 0, "otlp_spans": 0, "loki_requests": 0, "loki_bytes": 0}

    def add(self, **increments: int) -> None:
        """Add to the named counters."""
        with self.lock:
            for name, amount in increments.items():
                self.values[name] += amount

    def snapshot(self) -> dict[str, int]:
        """A copy of the counters."""
        with self.lock:
            return dict(self.values)


async def serve_export(port: int, count_into: Counters | None) -> None:
    """Serve ``TraceService/Export`` on 127.0.0.1:``port`` until cancelled."""

    async def export(
        request: ExportTraceServiceRequest, context: grpc.aio.ServicerContext[ExportTraceServiceRequest, bytes]
    ) -> bytes:
        if count_into is not None:
            spans = sum(len(scope.spans) for resource in request.resource_spans for scope in resource.scope_spans)
            count_into.add(otlp_requests=1, otlp_spans=spans)
        return EMPTY_RESPONSE

    server = grpc.aio.server(options=[("grpc.max_receive_message_length", 256 << 20)])
    handler: grpc.RpcMethodHandler[ExportTraceServiceRequest, bytes] = grpc.unary_unary_rpc_method_handler(
        export,
        request_deserializer=ExportTraceServiceRequest.FromString,
        response_serializer=None,
    )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Export": handler}),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


def _loki_handler(counters: Counters) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            counters.add(loki_requests=1, loki_bytes=len(body))
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            body = json.dumps(counters.snapshot()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: one line per push would swamp the benchmark's output."""

    return Handler


def main() -> None:
    """``floor --port P`` or ``sink --grpc-port P --http-port Q``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True)
    floor = commands.add_parser("floor", help="do-nothing Export server (parses, answers success)")
    floor.add_argument("--port", type=int, required=True)
    sink = commands.add_parser("sink", help="OTLP/gRPC and Loki sinks that count what they receive")
    sink.add_argument("--grpc-port", type=int, required=True)
    sink.add_argument("--http-port", type=int, required=True)
    args = parser.parse_args()
    if args.command == "floor":
        asyncio.run(serve_export(args.port, None))
        return
    counters = Counters()
    http = ThreadingHTTPServer(("127.0.0.1", args.http_port), _loki_handler(counters))
    http.daemon_threads = True
    threading.Thread(target=http.serve_forever, daemon=True).start()
    asyncio.run(serve_export(args.grpc_port, counters))


if __name__ == "__main__":
    main()
