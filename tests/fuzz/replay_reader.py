"""The replay reader (``replay.readable_requests`` over ``otlp_json.read_recorded``).

Property: a file of any content is either read into requests the scanner accepts or passed over
with a note; the only error is ``NothingToReplay`` (nothing readable at all). ``read_recorded`` on
its own raises only ``OtlpDecodeError``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from otlp_enricher.dataplane import validate
from otlp_enricher.otlp_json import OtlpDecodeError, read_recorded
from otlp_enricher.replay import NothingToReplay, readable_requests
from tests.fuzz.seeds import recorded_files

MAX_LEN = 1 << 16
_FILE = Path(tempfile.mkdtemp(prefix="fuzz-replay-")) / "input"


def seeds() -> list[bytes]:
    """The recorded files, whole."""
    return [path.read_bytes() for path in recorded_files()]


def check(data: bytes) -> bool:
    """Replay ``data`` as a file; raise when an undocumented error escapes."""
    _FILE.write_bytes(data)
    notes: list[str] = []
    try:
        requests = list(readable_requests([_FILE], notes.append))
    except NothingToReplay as nothing:
        requests, notes = [], [*notes, str(nothing)]
    for request in requests:
        validate(request)
    try:
        for _ in read_recorded(_FILE):
            pass
    except OtlpDecodeError:
        pass
    assert requests or notes, "nothing replayed and nothing said"  # an empty file: NothingToReplay
    return bool(requests)
