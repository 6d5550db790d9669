"""Type stub of the native core (``native/src/py/``): bytes in, bytes and plain values out."""

from typing import Any

class DecodeError(ValueError):
    """The bytes are not a well-formed OTLP traces request."""

class ScrubFailed(Exception):
    """A scrubber failed; the text must be dropped, not sent."""

class Status:
    code: int
    message: str

class Event:
    name: str
    time_unix_nano: int
    attributes: dict[str, Any]

class Span:
    """A candidate LLM span: identity, timing, status, and only the attributes the rules read."""

    ordinal: int
    resource: int
    scope_name: str
    scope_version: str
    trace_id: bytes
    span_id: bytes
    name: str
    kind: int
    start_time_unix_nano: int
    end_time_unix_nano: int
    status: Status
    attributes: dict[str, Any]
    events: list[Event]
    redaction_failed: bool

class Scan:
    span_count: int
    resources: list[dict[str, Any]]
    spans: list[Span]
    redactions: dict[str, int]
    redaction_failures: int

class Scanner:
    def __init__(
        self,
        marker_keys: list[str],
        read_keys: list[str],
        read_prefixes: list[str],
        scope_prefixes: list[str],
        name_prefixes: list[str],
        content_keys: list[str] = ...,
        content_prefixes: list[str] = ...,
        content_event_names: list[str] = ...,
        content_event_prefixes: list[str] = ...,
        redactor: Redactor | None = None,
    ) -> None: ...
    def scan(self, request: bytes) -> Scan: ...

class Redactor:
    def __init__(self, scrubbers: list[tuple[str, str, str, str]], memo_bytes: int) -> None: ...
    def scrub(self, text: str) -> tuple[str, dict[str, int]]: ...

class Splicer:
    def __init__(
        self,
        content_keys: list[str],
        content_prefixes: list[str],
        content_event_names: list[str],
        content_event_prefixes: list[str],
        content: str,
        redactor: Redactor | None,
    ) -> None: ...
    def splice(
        self,
        request: bytes,
        edits: dict[int, tuple[dict[str, str | bool | int | float | None], list[tuple[str, str | bool | int | float]]]],
    ) -> tuple[bytes, dict[str, int], int]: ...

def to_json(request: bytes) -> bytes: ...
def split(request: bytes, max_spans: int, max_bytes: int) -> list[tuple[bytes, int]]: ...
def pattern_problem(pattern: str) -> str | None: ...
