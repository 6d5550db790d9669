"""Tempo exporter (``exporters.tempo``): every span re-exported over OTLP, LLM spans enriched.

Intake (:meth:`TempoExporter.accept`) turns the request into the bytes to send and spools them:
the received protobuf bytes unchanged when no span needs a change (no LLM call, or nothing to
add), otherwise the same bytes with the enrichment written into the LLM spans as ``otlp_enricher.*``
attributes (cost and its source, unpriced flag, error reason, SLO outcomes, normalised
provider/model), with content scrubbed (``processors.redaction``) or removed (``strip_content``).
The original request is never modified: the prompt-log exporter reads the same spans.

The sender concatenates spooled requests into one ``ExportTraceServiceRequest`` (repeated fields
concatenate on the wire) up to ``MAX_REQUEST_BYTES`` and sends it over OTLP/gRPC (default) or
OTLP/HTTP, gzip when configured. Answers follow the OTLP failure table; RESOURCE_EXHAUSTED is
retried even without RetryInfo (Tempo 2.x rate limits carry none, and dropping them would lose
data) unless it says the message is too large. A partial success is not retried (the other spans
were accepted): the request goes to the dead-letter file with Tempo's message and the rejected
count, and only that count is counted as dead-lettered.
"""

from __future__ import annotations

import base64
import gzip
from collections import Counter
from collections.abc import Sequence
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)

from otlp_enricher.connector.spans import SpanEditor
from otlp_enricher.dataplane import split
from otlp_enricher.exporter.budget import StorageBudget
from otlp_enricher.exporter.config import StorageConfig, TempoExporterConfig
from otlp_enricher.exporter.httpclient import HttpPoster
from otlp_enricher.exporter.sender import SendFailed
from otlp_enricher.exporter.spooled import SpooledExporter
from otlp_enricher.exporter.spoolformat import Record
from otlp_enricher.otlp_protocol import EXPORT_METHOD, PROTOBUF, TRACES_PATH
from otlp_enricher.pipeline import SpanBatch
from otlp_enricher.processor.redaction import Redactor
from otlp_enricher.telemetry.metrics import Metrics

MAX_REQUEST_BYTES = 3 << 20  # under the 4 MiB default receive limit of grpc-go, hence of Tempo
_RETRYABLE = frozenset(
    {
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)
_HTTP_RETRYABLE = frozenset({408, 429, 502, 503, 504})


class TempoExporter(SpooledExporter):
    """Spans to Tempo through the spool; implements ``SpanExporter``."""

    def __init__(
        self,
        config: TempoExporterConfig,
        storage: StorageConfig,
        redactor: Redactor,
        metrics: Metrics,
        name: str = "tempo",
        budget: StorageBudget | None = None,
    ) -> None:
        transport: TempoGrpcTransport | TempoHttpTransport = (
            TempoHttpTransport(config) if config.protocol == "http" else TempoGrpcTransport(config)
        )
        super().__init__(
            name,
            "spans",
            storage,
            transport,
            metrics,
            10_000,
            MAX_REQUEST_BYTES,
            0.0,
            config.retry,
            config.sending_queue,
            budget,
        )
        self._editor = SpanEditor(redactor, config.strip_content)
        self._metrics = metrics
        self.forwarded_raw = 0
        self.reencoded = 0

    async def accept(self, batch: SpanBatch) -> None:
        """Spool the request (enriched where needed); raises ``Backpressure`` when full."""
        self._check_open()
        if not batch.span_count:
            return
        if not batch.calls:
            payload = batch.raw  # nothing to change: forward the received bytes as they are
            self.forwarded_raw += 1
        else:
            counts: Counter[str] = Counter()
            payload, failed = self._editor.edit(batch.raw, batch.calls, counts)
            for scrubber, count in counts.items():
                self._metrics.redactions.labels("span", scrubber).inc(count)
            if failed:
                self._metrics.redaction_failures.labels("span").inc(failed)
            self.reencoded += 1
        if len(payload) <= MAX_REQUEST_BYTES:
            await self._append([(payload, batch.span_count)])
        else:  # one received request can be larger than Tempo takes (grpc-go's 4 MiB): cut it up
            await self._append(split(payload, 1 << 31, MAX_REQUEST_BYTES))


def _retry_delay(metadata: Any) -> float | None:
    """The ``RetryInfo`` delay carried in ``grpc-status-details-bin``, if any."""
    for key, value in metadata or ():
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                    info = error_details_pb2.RetryInfo()
                    detail.Unpack(info)
                    return float(info.retry_delay.ToNanoseconds()) / 1e9
    return None


def _check_response(data: bytes, items: int) -> None:
    response = ExportTraceServiceResponse.FromString(data)
    partial = response.partial_success
    if partial.rejected_spans:
        raise SendFailed(
            f"partial success: {partial.rejected_spans} of {items} spans rejected: {partial.error_message}",
            retryable=False,
            rejected_items=partial.rejected_spans,
        )


def _describe(records: Sequence[Record]) -> list[Any]:
    return [{"otlp_protobuf_base64": base64.b64encode(r.payload).decode(), "spans": r.items} for r in records]


class TempoGrpcTransport:
    """OTLP/gRPC ``TraceService/Export`` with raw bytes in and out."""

    def __init__(self, config: TempoExporterConfig) -> None:
        self._config = config
        self._channel: grpc.aio.Channel | None = None
        self._export: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] | None = None
        self._metadata = tuple((key.lower(), value) for key, value in config.headers.items())
        self._compression = grpc.Compression.Gzip if config.compression == "gzip" else grpc.Compression.NoCompression

    def _connect(self) -> grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]:
        """Open the channel on first use, on the running loop (grpc.aio channels belong to one)."""
        config = self._config
        target = config.endpoint.split("://", 1)[-1]
        options = [("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 4 << 20)]
        secure = config.endpoint.startswith("https://") or (
            not config.tls.insecure and not config.endpoint.startswith("http://")
        )
        if secure:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_read(config.tls.ca_file),
                private_key=_read(config.tls.key_file),
                certificate_chain=_read(config.tls.cert_file),
            )
            self._channel = grpc.aio.secure_channel(target, credentials, options=options)
        else:
            self._channel = grpc.aio.insecure_channel(target, options=options)
        self._export = self._channel.unary_unary(EXPORT_METHOD)
        return self._export

    async def send(self, records: Sequence[Record]) -> None:
        """Export the concatenated requests; raise ``SendFailed`` per the OTLP failure table."""
        body = b"".join(record.payload for record in records)
        export = self._export or self._connect()
        try:
            data = await export(
                body, timeout=self._config.timeout_s, metadata=self._metadata, compression=self._compression
            )
        except grpc.aio.AioRpcError as error:
            code, message = error.code(), error.details() or ""
            reason = f"{code.name}: {message}"
            retry_after = _retry_delay(error.trailing_metadata())
            if code in _RETRYABLE:
                raise SendFailed(reason, True, retry_after) from error
            if code == grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max" not in message:
                raise SendFailed(reason, True, retry_after) from error
            raise SendFailed(reason, False) from error
        _check_response(data, sum(record.items for record in records))

    def describe(self, records: Sequence[Record]) -> list[Any]:
        """Each spooled request as base64 protobuf for the dead-letter file."""
        return _describe(records)

    async def close(self) -> None:
        """Close the channel."""
        if self._channel is not None:
            await self._channel.close()
            self._channel = self._export = None


class TempoHttpTransport:
    """OTLP/HTTP ``POST /v1/traces`` in protobuf."""

    def __init__(self, config: TempoExporterConfig) -> None:
        endpoint = config.endpoint if "://" in config.endpoint else f"http://{config.endpoint}"
        self._poster = HttpPoster(endpoint, config.tls, config.timeout_s, TRACES_PATH)
        self._gzip = config.compression == "gzip"
        self._level = config.compression_level
        self._headers = {**config.headers, "Content-Type": PROTOBUF}
        if self._gzip:
            self._headers["Content-Encoding"] = "gzip"

    async def send(self, records: Sequence[Record]) -> None:
        """POST the concatenated requests; 429/502/503/504 (and 408) are retryable."""
        body = b"".join(record.payload for record in records)
        answer = await self._poster.post(gzip.compress(body, self._level) if self._gzip else body, self._headers)
        if 200 <= answer.status < 300:
            _check_response(answer.body if len(answer.body) < 512 else b"", sum(r.items for r in records))
            return
        reason = f"HTTP {answer.status}"
        raise SendFailed(reason, answer.status in _HTTP_RETRYABLE, answer.retry_after_s)

    def describe(self, records: Sequence[Record]) -> list[Any]:
        """Each spooled request as base64 protobuf for the dead-letter file."""
        return _describe(records)

    async def close(self) -> None:
        """Close the connection."""
        await self._poster.close()


def _read(path: str) -> bytes | None:
    if not path:
        return None
    with open(path, "rb") as stream:
        return stream.read()
