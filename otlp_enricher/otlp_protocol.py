"""OTLP/gRPC and OTLP/HTTP trace protocol names, written once for receivers, exporters and replay."""

from __future__ import annotations

TRACE_SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
"""The gRPC service of trace export."""

EXPORT_METHOD = f"/{TRACE_SERVICE}/Export"
"""Its one method, as a gRPC method path."""

TRACES_PATH = "/v1/traces"
"""The OTLP/HTTP trace export path."""

PROTOBUF = "application/x-protobuf"
"""OTLP/HTTP binary protobuf bodies (also Loki's protobuf push)."""

JSON = "application/json"
"""OTLP/HTTP JSON bodies."""
