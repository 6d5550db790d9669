"""``otlp-enricher dead-letters``: list, show and re-send what the backends refused for good.

Reads ``storage.directory/deadletter/<exporter>*.jsonl`` (see :mod:`.deadletter`). ``resend``
first sets the current file aside (a running sidecar then starts a new one), sends each letter
again through the exporter's own transport (the configured endpoint, auth and encoding), and
deletes each file whose letters were all accepted; a file with a letter refused again is kept.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from otlp_enricher.config import Config
from otlp_enricher.exporter.deadletter import dead_letter_files, read_letters, set_aside
from otlp_enricher.exporter.loki import LokiTransport
from otlp_enricher.exporter.sender import SendFailed, Transport
from otlp_enricher.exporter.spoolformat import Record
from otlp_enricher.exporter.tempo import TempoGrpcTransport, TempoHttpTransport

EXPORTERS = ("loki", "tempo")


@dataclass(frozen=True, slots=True)
class Summary:
    """One exporter's dead letters: files, letters, items, bytes."""

    exporter: str
    files: int
    letters: int
    items: int
    bytes: int


@dataclass(slots=True)
class ResendResult:
    """What ``resend`` did: letters accepted, letters refused again (with the last reason)."""

    sent: int = 0
    failed: int = 0
    last_failure: str = ""


def letters_path(config: Config, exporter: str) -> Path:
    """The current dead-letter file of ``exporter``."""
    return config.storage.directory / "deadletter" / f"{exporter}.jsonl"


def summarise(config: Config) -> list[Summary]:
    """A summary per exporter that has dead letters."""
    summaries = []
    for exporter in EXPORTERS:
        files = dead_letter_files(letters_path(config, exporter))
        if files:
            letters = [letter for file, _ in files for letter in read_letters(file)]
            items = sum(int(letter.get("items", 0)) for letter in letters)
            summaries.append(Summary(exporter, len(files), len(letters), items, sum(size for _, size in files)))
    return summaries


def records_of(exporter: str, letter: dict[str, Any]) -> list[Record]:
    """A dead letter's records, as the spool held them."""
    if exporter == "loki":
        return [Record(orjson.dumps(_loki_entry(r)), 1, 0) for r in letter["records"]]
    return [Record(base64.b64decode(r["otlp_protobuf_base64"]), int(r["spans"]), 0) for r in letter["records"]]


def _loki_entry(record: dict[str, Any]) -> list[Any]:
    """A described Loki entry back to the spooled form ``[labels, ts_ns, line, metadata]``."""
    labels = [[name, value] for name, value in record["labels"].items()]
    metadata = [[name, value] for name, value in record["metadata"].items()]
    return [labels, record["ts_ns"], record["line"], metadata]


def transport_for(config: Config, exporter: str) -> Transport:
    """The exporter's transport from ``config``; ``ValueError`` when it is not configured."""
    if exporter == "loki" and config.exporters.loki is not None:
        return LokiTransport(config.exporters.loki)
    tempo = config.exporters.tempo
    if exporter == "tempo" and tempo is not None:
        return TempoHttpTransport(tempo) if tempo.protocol == "http" else TempoGrpcTransport(tempo)
    raise ValueError(f"exporters.{exporter} is not configured: nowhere to re-send to")


async def resend(config: Config, exporter: str, transport: Transport | None = None) -> ResendResult:
    """Re-send every dead letter of ``exporter``; delete the files fully accepted."""
    transport = transport or transport_for(config, exporter)
    path = letters_path(config, exporter)
    set_aside(path)
    result = ResendResult()
    try:
        for file, _ in dead_letter_files(path):
            if file == path:
                continue  # written by a running sidecar since: not ours
            if await _resend_file(exporter, file, transport, result):
                file.unlink()
    finally:
        await transport.close()
    return result


async def _resend_file(exporter: str, file: Path, transport: Transport, result: ResendResult) -> bool:
    accepted = True
    for letter in read_letters(file):
        try:
            await transport.send(records_of(exporter, letter))
        except SendFailed as failure:
            result.failed += 1
            result.last_failure = failure.reason
            accepted = False
        else:
            result.sent += 1
    return accepted


def resend_now(config: Config, exporter: str) -> ResendResult:
    """:func:`resend` on a fresh event loop (for the CLI)."""
    return asyncio.run(resend(config, exporter))


def show(config: Config, exporter: str, limit: int) -> Sequence[dict[str, Any]]:
    """The newest ``limit`` dead letters of ``exporter``, oldest first."""
    letters = [letter for file, _ in dead_letter_files(letters_path(config, exporter)) for letter in read_letters(file)]
    return letters[-limit:] if limit > 0 else letters
