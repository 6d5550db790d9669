"""The spool's ``committed`` file: the position up to which everything has been delivered.

Two fixed 32-byte slots (:func:`~.spoolformat.encode_slot`), written alternately in place with
``pwrite`` + ``fsync``: writing needs no new disk blocks, so it works on a full disk, and a torn write
leaves the other slot good. The newer valid slot wins on open; nothing valid means "replay all that
is kept" — duplicates, never loss.
"""

from __future__ import annotations

import os

from otlp_enricher.exporter.fileops import FileOps, read_all
from otlp_enricher.exporter.spoolformat import SLOT, Position, decode_committed, encode_slot, write_all_at


class CommitRecord:
    """The open ``committed`` file of one spool and the durable position it holds."""

    def __init__(self, path: str, ops: FileOps, fsync: bool) -> None:
        self.path = path
        self.ops = ops
        self.fsync = fsync
        self.fd = -1
        self.seq = 0
        self.position = Position(0, 0)

    def open(self) -> Position:
        """Open (creating) the file and read the committed position; a new file, or the legacy text
        form, is rewritten as two slots at once."""
        fd = self.ops.open(self.path, os.O_RDWR | os.O_CREAT)
        try:
            data = read_all(self.ops, self.path)
            self.seq, self.position = decode_committed(data)
            if len(data) != 2 * SLOT.size:
                self.seq += 1
                slots = encode_slot(self.seq, self.position) + bytes(SLOT.size)
                write_all_at(self.ops, fd, slots, 0)
                self.ops.ftruncate(fd, len(slots))
                self.ops.fsync(fd)
        except BaseException:
            self.ops.close(fd)
            raise
        self.fd = fd
        return self.position

    def write(self, position: Position) -> None:
        """Make ``position`` the durable committed one (into the older slot); raises ``OSError``, and
        then :attr:`position` is unchanged."""
        seq = self.seq + 1
        write_all_at(self.ops, self.fd, encode_slot(seq, position), (seq % 2) * SLOT.size)
        if self.fsync:
            self.ops.fsync(self.fd)
        self.seq, self.position = seq, position

    def detach(self) -> int:
        """Stop writing; the file descriptor for the caller to close (``-1`` when not open)."""
        fd, self.fd = self.fd, -1
        return fd
