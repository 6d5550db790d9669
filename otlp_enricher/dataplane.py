"""The data plane's Python face: the native core (``native/``) configured from the Python tables.

Bytes stay bytes. A received request is scanned once natively (:func:`Scanner.scan`): every byte
is validated, spans are counted, and only candidate LLM spans — chosen by the marker keys, scope
and span-name prefixes of ``semconv/candidates.py`` — come back as Python objects, carrying only the
attribute values the rules read. Exporters then write the enrichment into the request's own
bytes (:class:`SpanWriter`) and produce OTLP/JSON from them (:func:`to_json`). Native errors
become :class:`~otlp_enricher.otlp_json.OtlpDecodeError` here, at the boundary.
"""

from __future__ import annotations

from collections.abc import Iterable

from otlp_enricher import _native
from otlp_enricher.otlp_json import OtlpDecodeError
from otlp_enricher.semconv import candidates, keys

AttributeValue = str | bool | int | float
SpanEdit = tuple[dict[str, AttributeValue | None], list[tuple[str, AttributeValue]]]
"""For one span: attribute key → new value (``None`` drops it), and attributes to add."""


class Scanner:
    """Finds the candidate LLM spans of a request; reads ``extra_keys`` (label sources) too.

    With ``redactor``, content values (``CONTENT_KEYS`` / ``CONTENT_PREFIXES`` and content events)
    are handed over already scrubbed: raw prompts never become Python objects, and the scrub
    results are remembered for the Tempo span and the span file, which scrub the same strings.
    """

    def __init__(self, extra_keys: Iterable[str] = (), redactor: _native.Redactor | None = None) -> None:
        self._native = _native.Scanner(
            sorted(candidates.MARKER_KEYS),
            sorted(candidates.READ_KEYS | set(extra_keys)),
            list(candidates.READ_PREFIXES),
            list(candidates.LLM_SCOPE_PREFIXES),
            list(candidates.LLM_SPAN_NAME_PREFIXES),
            sorted(keys.CONTENT_KEYS),
            list(keys.CONTENT_PREFIXES),
            sorted(keys.CONTENT_EVENTS),
            list(keys.CONTENT_EVENT_PREFIXES),
            redactor,
        )

    def scan(self, request: bytes) -> _native.Scan:
        """Validate ``request`` (serialised ``ExportTraceServiceRequest``) and read its candidates."""
        try:
            return self._native.scan(request)
        except _native.DecodeError as error:
            raise OtlpDecodeError(f"invalid OTLP protobuf: {error}") from error


class SpanWriter:
    """Writes per-span edits into request bytes, applying one content policy to edited spans.

    ``content`` is ``keep``, ``scrub`` (every string in a content attribute through ``redactor``;
    a value that fails to scrub becomes ``[REDACTED:scrubber_error]``) or ``strip``.
    """

    def __init__(self, content: str, redactor: _native.Redactor | None) -> None:
        self._native = _native.Splicer(
            sorted(keys.CONTENT_KEYS),
            list(keys.CONTENT_PREFIXES),
            sorted(keys.CONTENT_EVENTS),
            list(keys.CONTENT_EVENT_PREFIXES),
            content,
            redactor,
        )

    def write(self, request: bytes, edits: dict[int, SpanEdit]) -> tuple[bytes, dict[str, int], int]:
        """The edited request, matches per scrubber, and how many values failed to scrub."""
        try:
            return self._native.splice(request, edits)
        except _native.DecodeError as error:
            raise OtlpDecodeError(f"invalid OTLP protobuf: {error}") from error


_VALIDATOR = _native.Scanner([], [], [], [], [])


def validate(request: bytes) -> int:
    """Check every byte of ``request`` (raises :class:`OtlpDecodeError`) and return its span
    count; builds no span objects."""
    try:
        return _VALIDATOR.scan(request).span_count
    except _native.DecodeError as error:
        raise OtlpDecodeError(f"invalid OTLP protobuf: {error}") from error


def split(request: bytes, max_spans: int, max_bytes: int) -> list[tuple[bytes, int]]:
    """``request`` cut into requests of at most ``max_spans`` spans and about ``max_bytes`` bytes
    each (a larger single span travels alone), every span under its own resource and scope; with
    the span count of each part."""
    try:
        return _native.split(request, max_spans, max_bytes)
    except _native.DecodeError as error:
        raise OtlpDecodeError(f"invalid OTLP protobuf: {error}") from error


def to_json(request: bytes) -> bytes:
    """The request as one OTLP/JSON line, as the Collector's file exporter writes it."""
    try:
        return _native.to_json(request)
    except _native.DecodeError as error:
        raise OtlpDecodeError(f"invalid OTLP protobuf: {error}") from error
