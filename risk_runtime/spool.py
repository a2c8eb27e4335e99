"""The local spool: where accepted events wait on disk until the shipper commits them to bronze.

Layout of a spool directory (one per machine and lake, shared by every logger on it)::

    <spool>/shipper.lock                   held (flock) by the one running shipper
    <spool>/shipper.log                    the shipper's own log
    <spool>/writers/<writer_id>/lock       held (flock) by the live logger that owns the folder
    <spool>/writers/<writer_id>/000000000007.open   the segment being written
    <spool>/writers/<writer_id>/000000000006.seg    sealed: ready to commit
    <spool>/corrupt/                       segments that failed their checksums (kept, never deleted)

A segment is a sequence of frames ``magic | length | crc32 | Arrow IPC stream``; every frame is
one ``write()``, so after ``kill -9`` a segment ends at a frame boundary or with one torn frame,
which the reader detects (length or checksum) and cuts off. Segment numbers are the Delta
transaction versions of their writer: the shipper commits them in order with
``Transaction(writer_id, segment_number)``, which makes re-committing after a crash a no-op.

Why ``flock``: the kernel releases it when its holder dies, however it dies, so "is this writer
(or the shipper) still alive?" has an answer that a crash cannot leave stale.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import struct
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pyarrow as pa

FRAME_MAGIC: Final = b"RSF1"
_HEADER: Final = struct.Struct("<4sII")  # magic, payload length, crc32 of the payload
_SEGMENT_RE: Final = re.compile(r"^(\d{12})\.(open|seg)$")
WRITERS: Final = "writers"
CORRUPT: Final = "corrupt"
SHIPPER_LOCK: Final = "shipper.lock"
SHIPPER_LOG: Final = "shipper.log"
STORAGE_OPTIONS_ENV: Final = "RISK_STORAGE_OPTIONS"
"""JSON storage options for the shipper, passed through its environment (never argv: they hold secrets)."""


def segment_name(number: int, sealed: bool) -> str:
    return f"{number:012d}.{'seg' if sealed else 'open'}"


def encode_frame(batch: pa.RecordBatch) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    payload = sink.getvalue().to_pybytes()
    return _HEADER.pack(FRAME_MAGIC, len(payload), zlib.crc32(payload)) + payload


@dataclass(frozen=True)
class SegmentContents:
    batches: list[pa.RecordBatch]
    valid_bytes: int
    """Bytes up to the end of the last intact frame."""
    torn: bool
    """The file continues past ``valid_bytes`` with a partial or corrupt frame."""

    @property
    def events(self) -> int:
        return sum(b.num_rows for b in self.batches)


def read_segment(path: Path) -> SegmentContents:
    """Every intact frame of a segment; stops at the first torn or corrupt frame."""
    data = path.read_bytes()
    batches: list[pa.RecordBatch] = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < _HEADER.size:
            return SegmentContents(batches, offset, torn=True)
        magic, length, crc = _HEADER.unpack_from(data, offset)
        start, end = offset + _HEADER.size, offset + _HEADER.size + length
        if magic != FRAME_MAGIC or end > len(data) or zlib.crc32(data[start:end]) != crc:
            return SegmentContents(batches, offset, torn=True)
        batches.extend(pa.ipc.open_stream(pa.py_buffer(data[start:end])))
        offset = end
    return SegmentContents(batches, offset, torn=False)


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (a created or renamed file) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileLock:
    """An exclusive ``flock`` on a file, released by the kernel when its holder dies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self, blocking: bool = False) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def forget(self) -> None:
        """Close this process's descriptor without unlocking (a forked child's inherited copy)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                os.close(fd)


def is_locked(path: Path) -> bool:
    """True if another live process holds the lock at ``path``."""
    if not path.exists():
        return False
    probe = FileLock(path)
    if probe.acquire():
        probe.release()
        return False
    return True


class SegmentWriter:
    """Appends frames to one writer's current segment and seals segments in order.

    Used only by the logger's flusher thread (the caller serialises access).
    """

    def __init__(self, directory: Path, *, fsync: bool) -> None:
        self.directory = directory
        self.fsync = fsync
        self.next_number = 1
        self.open_number: int | None = None
        self.open_events = 0
        self.open_bytes = 0
        self.open_since: float | None = None
        self._fd: int | None = None

    def write(self, batch: pa.RecordBatch) -> int:
        """Append one frame; returns its size. Raises OSError (nothing is half-counted then).

        Durability is :meth:`sync`'s job, once per flush cycle rather than once per frame.
        """
        frame = encode_frame(batch)
        if self._fd is None:
            number = self.next_number
            path = self.directory / segment_name(number, sealed=False)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
            self._fd, self.open_number, self.next_number = fd, number, number + 1
            self.open_events, self.open_bytes, self.open_since = 0, 0, time.monotonic()
            if self.fsync:
                fsync_dir(self.directory)
        written = os.write(self._fd, frame)
        if written != len(frame):  # a short write (disk full): cut it off so the file stays whole
            os.ftruncate(self._fd, os.lseek(self._fd, 0, os.SEEK_CUR) - written)
            raise OSError(f"short write to spool segment ({written} of {len(frame)} bytes)")
        self.open_events += batch.num_rows
        self.open_bytes += len(frame)
        return len(frame)

    def sync(self) -> None:
        """``fsync`` the open segment (when configured): what was written survives a power loss."""
        if self.fsync and self._fd is not None:
            os.fsync(self._fd)

    def seal(self) -> tuple[int, int, int] | None:
        """Close the open segment for shipping; returns ``(number, events, bytes)`` or None."""
        if self._fd is None or self.open_number is None:
            return None
        self.sync()
        os.close(self._fd)
        self._fd = None
        number, events, size = self.open_number, self.open_events, self.open_bytes
        os.rename(self.directory / segment_name(number, False), self.directory / segment_name(number, True))
        if self.fsync:
            fsync_dir(self.directory)
        self.open_number, self.open_events, self.open_bytes, self.open_since = None, 0, 0, None
        return number, events, size

    def forget(self) -> None:
        """Drop the descriptor inherited across fork; the segment belongs to the parent."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


@dataclass(frozen=True, order=True)
class Segment:
    number: int
    path: Path
    sealed: bool


def list_segments(writer_dir: Path) -> list[Segment]:
    segments = []
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(writer_dir):
            match = _SEGMENT_RE.match(entry.name)
            if match:
                segments.append(Segment(int(match.group(1)), Path(entry.path), match.group(2) == "seg"))
    return sorted(segments)


def writer_dirs(spool_dir: Path) -> Iterator[Path]:
    """Every writer's folder; hidden ones are still being set up by a starting logger."""
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(spool_dir / WRITERS):
            if entry.is_dir() and not entry.name.startswith("."):
                yield Path(entry.path)
