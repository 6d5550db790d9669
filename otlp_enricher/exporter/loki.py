"""Loki exporter (``exporters.loki``): one JSON prompt-log line per LLM call, pushed to Loki.

Intake (:meth:`LokiExporter.accept`, on the receiver's path) redacts the record, renders the
line and appends it to the spool, and returns: the request is acknowledged once the line is
durable. The sender pushes batches (bounded by ``batch.max_lines``, ``batch.max_bytes`` and
``batch.timeout_s``) to ``/loki/api/v1/push`` as snappy block-compressed protobuf (``encoding:
protobuf``, Loki's native form) or gzip JSON (``encoding: json``).

Labels are few and bounded: ``service``, ``provider``, ``model`` (each capped at
``max_model_values`` distinct values and their combinations at ``max_streams``, the rest
``other``) and the static ``labels`` of the config (e.g. environment).
Trace and span ids go in structured metadata; user and session ids in the line. Timestamp (span
start) and line are derived deterministically from the span, so a replayed push is an exact
duplicate that Loki drops. A line over ``max_line_bytes`` loses its message content, which is
replaced by a preview ending in a visible ``[TRUNCATED …]`` marker, and is counted.

Answers (Loki push API): 2xx delivered; 429, 408, 5xx and 401/403/404 (a fixable setup problem,
the data waits in the spool) retried with ``Retry-After`` honoured; other 4xx (400 invalid, 413
too large) are permanent: the sender bisects the batch to isolate the lines Loki refuses, which go
to the dead-letter file with Loki's message; the rest is delivered.
"""

from __future__ import annotations

import base64
import gzip
from collections.abc import Sequence
from typing import Any

import orjson
import snappy
from google.protobuf.timestamp_pb2 import Timestamp

from otlp_enricher._proto import loki_push_pb2
from otlp_enricher.connector.promptlog import PromptLogLines
from otlp_enricher.exporter.budget import StorageBudget
from otlp_enricher.exporter.config import LokiExporterConfig, StorageConfig
from otlp_enricher.exporter.httpclient import HttpPoster
from otlp_enricher.exporter.sender import SendFailed
from otlp_enricher.exporter.spooled import SpooledExporter
from otlp_enricher.model import LLMCall
from otlp_enricher.otlp_protocol import JSON, PROTOBUF
from otlp_enricher.processor.cardinality import StreamBudget
from otlp_enricher.processor.redaction import Redactor
from otlp_enricher.telemetry.metrics import Metrics

PUSH_PATH = "/loki/api/v1/push"
_RETRYABLE_4XX = frozenset({401, 403, 404, 408, 429})

Entry = tuple[list[list[str]], int, str, list[list[str]]]
"""(label pairs, timestamp ns, line, structured metadata pairs): one spooled record."""


class LokiExporter(SpooledExporter):
    """Prompt logs to Loki through the spool; implements ``CallExporter``."""

    def __init__(
        self,
        config: LokiExporterConfig,
        storage: StorageConfig,
        redactor: Redactor,
        metrics: Metrics,
        name: str = "loki",
        budget: StorageBudget | None = None,
    ) -> None:
        self._lines = LokiLines(config, redactor, metrics)
        transport = LokiTransport(config)
        batch = config.batch
        super().__init__(
            name,
            "log_lines",
            storage,
            transport,
            metrics,
            batch.max_lines,
            batch.max_bytes,
            batch.timeout_s,
            config.retry,
            config.sending_queue,
            budget,
        )

    async def accept(self, calls: Sequence[LLMCall]) -> None:
        """Render, redact and spool one line per call; raises ``Backpressure`` when full."""
        self._check_open()
        records = [(orjson.dumps(self._lines.entry(call)), 1) for call in calls]
        if records:
            await self._append(records)

    async def accept_entries(self, entries: Sequence[Entry]) -> None:
        """Spool ready-made entries (per-trace summaries, ``governance.rollup``); raises ``Backpressure``."""
        self._check_open()
        if entries:
            await self._append([(orjson.dumps(entry), 1) for entry in entries])


class LokiLines:
    """LLM call → spooled Loki entry: labels, timestamp, redacted line, structured metadata."""

    def __init__(self, config: LokiExporterConfig, redactor: Redactor, metrics: Metrics) -> None:
        self._static = sorted(config.labels.items())
        self._streams = StreamBudget(
            ("service", "provider", "model"),
            config.max_streams,
            config.max_model_values,
            metrics.loki_stream_labels_folded.inc,
        )
        self._render = PromptLogLines(redactor, metrics, config.max_line_bytes)

    def entry(self, call: LLMCall) -> Entry:
        """The entry of ``call``; deterministic for a given span (and model cap state)."""
        service, provider, model = self._streams.labels(
            (call.service or "unknown", call.provider or "unknown", call.model or "unknown")
        )
        labels = [
            ["service", service],
            ["provider", provider],
            ["model", model],
            *([name, value] for name, value in self._static),
        ]
        metadata = [["trace_id", call.trace_id.hex()], ["span_id", call.span_id.hex()]]
        return labels, call.start_ns, self.line(call), metadata

    def line(self, call: LLMCall) -> str:
        """The JSON line: the prompt-log record, redacted, truncated to the line limit."""
        return self._render.line(call).decode()


class LokiTransport:
    """Pushes spooled entries to Loki; classifies the answer for the sender."""

    def __init__(self, config: LokiExporterConfig) -> None:
        self._config = config
        self._poster = HttpPoster(config.endpoint, config.tls, config.timeout_s, PUSH_PATH)
        self._headers = dict(config.headers)
        if config.tenant_id:
            self._headers["X-Scope-OrgID"] = config.tenant_id
        if config.bearer_token:
            self._headers["Authorization"] = f"Bearer {config.bearer_token}"
        elif config.basic_username:
            pair = f"{config.basic_username}:{config.basic_password}".encode()
            self._headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        if config.encoding == "json":
            self._headers.update({"Content-Type": JSON, "Content-Encoding": "gzip"})
        else:
            self._headers["Content-Type"] = PROTOBUF

    async def send(self, records: Sequence[Any]) -> None:
        """Push one batch; raise ``SendFailed`` unless Loki answered 2xx."""
        entries = [_decode(record.payload) for record in records]
        if self._config.encoding == "json":
            body = gzip.compress(encode_json(entries), compresslevel=5)
        else:
            body = snappy.compress(encode_protobuf(entries))
        answer = await self._poster.post(body, self._headers)
        if 200 <= answer.status < 300:
            return
        reason = f"HTTP {answer.status}: {answer.body.decode('utf-8', 'replace').strip()}"
        retryable = answer.status >= 500 or answer.status in _RETRYABLE_4XX
        # 400/413 refuse the whole push for one bad (or one too many) line: halves may pass
        raise SendFailed(reason, retryable, answer.retry_after_s, splittable=answer.status in (400, 413))

    def describe(self, records: Sequence[Any]) -> list[Any]:
        """Entries as ``{"labels", "ts_ns", "line", "metadata"}`` for the dead-letter file."""
        described = []
        for record in records:
            labels, ts, line, metadata = _decode(record.payload)
            described.append({"labels": dict(labels), "ts_ns": ts, "line": line, "metadata": dict(metadata)})
        return described

    async def close(self) -> None:
        """Close the connection."""
        await self._poster.close()


def _decode(payload: bytes) -> Entry:
    labels, ts, line, metadata = orjson.loads(payload)
    return labels, ts, line, metadata


def selector(labels: list[list[str]]) -> str:
    """Label pairs → Loki's stream selector text, ``{a="x",b="y"}``."""
    inner = ",".join(f'{name}="{_escape(value)}"' for name, value in labels)
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _streams(entries: Sequence[Entry]) -> dict[str, list[Entry]]:
    streams: dict[str, list[Entry]] = {}
    for entry in entries:
        streams.setdefault(selector(entry[0]), []).append(entry)
    for stream in streams.values():
        stream.sort(key=lambda entry: entry[1])
    return streams


def encode_protobuf(entries: Sequence[Entry]) -> bytes:
    """A ``logproto.PushRequest`` (before snappy compression)."""
    request = loki_push_pb2.PushRequest()
    for labels_text, stream_entries in _streams(entries).items():
        stream = request.streams.add(labels=labels_text)
        for _, ts, line, metadata in stream_entries:
            seconds, nanos = divmod(ts, 1_000_000_000)
            stream.entries.add(
                timestamp=Timestamp(seconds=seconds, nanos=nanos),
                line=line,
                structuredMetadata=[loki_push_pb2.LabelPairAdapter(name=k, value=v) for k, v in metadata],
            )
    return request.SerializeToString()


def encode_json(entries: Sequence[Entry]) -> bytes:
    """The JSON push body (timestamps as strings, structured metadata as the third element)."""
    streams = [
        {
            "stream": dict(stream_entries[0][0]),
            "values": [[str(ts), line, dict(metadata)] for _, ts, line, metadata in stream_entries],
        }
        for stream_entries in _streams(entries).values()
    ]
    return orjson.dumps({"streams": streams})
