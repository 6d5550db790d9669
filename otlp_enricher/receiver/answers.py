"""Answers shared by both receivers: the Export response and the retry-after status.

Only this package knows gRPC and HTTP codes; the pipeline speaks in :class:`Backpressure` and
:class:`ExportOutcome`.
"""

from __future__ import annotations

import math

from google.protobuf import duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from otlp_enricher.pipeline import ExportOutcome

SHUTTING_DOWN_RETRY_S = 5.0
INTERNAL_RETRY_S = 5.0


def export_response(outcome: ExportOutcome) -> ExportTraceServiceResponse:
    """Full success, or partial success naming the spans whose LLM data was unusable."""
    response = ExportTraceServiceResponse()
    if outcome.rejected:
        response.partial_success.rejected_spans = outcome.rejected_count
        response.partial_success.error_message = outcome.message()
    return response


def retry_status(message: str, retry_after_s: float) -> status_pb2.Status:
    """An UNAVAILABLE ``google.rpc.Status`` carrying ``RetryInfo`` (retryable for every OTLP client)."""
    delay = duration_pb2.Duration()
    delay.FromNanoseconds(int(retry_after_s * 1e9))
    status = status_pb2.Status(code=code_pb2.UNAVAILABLE, message=message)
    status.details.add().Pack(error_details_pb2.RetryInfo(retry_delay=delay))
    return status


def bad_request_status(message: str) -> status_pb2.Status:
    """An INVALID_ARGUMENT ``google.rpc.Status`` (permanent: the sender must not retry)."""
    return status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message=message)


def retry_after_header(retry_after_s: float) -> str:
    """``Retry-After`` takes whole seconds; round up so the sender never comes back early."""
    return str(max(1, math.ceil(retry_after_s)))
