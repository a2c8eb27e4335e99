"""The local spool: where accepted events wait on disk until the shipper commits them to bronze.

Layout of a spool directory (one per lake and machine, shared by every logger of that lake on it)::

    <spool>/spool.json                     which table this spool feeds (see risk_runtime.spool_identity)
    <spool>/shipper.lock                   held (flock) by the one running shipper
    <spool>/shipper.log                    the shipper's own log
    <spool>/shipper.status.json            the shipper's last error, held-back and set-aside segments
    <spool>/shipper.bell                   a named pipe: a writer that sealed a segment wakes the shipper
    <spool>/writers/<writer_id>/lock       held (flock) by the live logger that owns the folder
    <spool>/writers/<writer_id>/000000000007.open   the segment being written
    <spool>/writers/<writer_id>/000000000006.seg    sealed: ready to commit
    <spool>/corrupt/<writer_id>/...        damaged bytes set aside, each with a ``.reason`` file (never deleted)

Invariants, first:

* A segment is a sequence of frames, then (once sealed) one seal record. A frame is
  ``"RSF3" | u16 payload format | u16 schema version | u32 length | u32 crc32 | payload``; the CRC
  covers the whole header before it and the payload. Payload format 1 is MessagePack rows
  (:mod:`risk_runtime.packing`): the flusher packs events as they are and the shipper converts them
  to Arrow, off the trading process. The seal record is ``"RSFS" | u32 frames | u64 events | u32
  crc32``. Frames of the previous formats are still read: ``"RSF2" | u16 schema version | u16
  reserved | u32 length | u32 crc32 | Arrow IPC stream`` (CRC over version, length and payload; also
  what tools write with an Arrow batch) and ``"RSF1" | length | crc32 | payload`` (no version, no
  seal record).
* Every frame says which schema version wrote it (and an RSF3 frame which payload format), so a
  shipper that does not know that version or format leaves the segment where it is instead of
  guessing (and dropping columns it does not know).
* Every frame is one ``write()``: after ``kill -9`` a segment ends at a frame boundary (a torn frame
  needs a power loss). Damage is found by length, magic and CRC, and reading resynchronises at the
  next frame magic whose frame checks out, so a damaged frame costs only itself. A sealed segment
  without its seal record was cut short; one whose record disagrees with its frames lost some.
* Segment numbers are the Delta transaction versions of their writer, contiguous from 1: the
  shipper commits them in order with ``Transaction(writer_id, segment_number)``, which makes
  re-committing after a crash a no-op, and a missing number is a missing segment, reported.
* Writers create segments; only the shipper deletes them, and only once bronze holds every intact
  frame; damaged bytes are moved to ``corrupt/``, never deleted.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import msgspec
import pyarrow as pa

from risk_runtime.events import SCHEMA_VERSION
from risk_runtime.packing import PAYLOAD_MSGPACK, unpack_events, unpacked_count

FORMAT_VERSION: Final = 3
"""The segment format this runtime writes (recorded in a spool's manifest when it is created)."""
FRAME_MAGIC: Final = b"RSF3"
ARROW_FRAME_MAGIC: Final = b"RSF2"
LEGACY_FRAME_MAGIC: Final = b"RSF1"
SEAL_MAGIC: Final = b"RSFS"
_HEADER: Final = struct.Struct("<4sHHII")  # magic, payload format, schema version, payload length, crc32
_ARROW_HEADER: Final = struct.Struct("<4sHHII")  # magic, schema version, reserved, payload length, crc32
_LEGACY_HEADER: Final = struct.Struct("<4sII")  # magic, payload length, crc32 of the payload
_SEAL: Final = struct.Struct("<4sIQI")  # magic, frames, events, crc32 of (frames, events)
_MAGICS: Final = (FRAME_MAGIC, ARROW_FRAME_MAGIC, LEGACY_FRAME_MAGIC, SEAL_MAGIC)
SCHEMA_VERSION_KEY: Final = b"risk.schema_version"
"""Arrow schema metadata key carrying the frame's schema version too (for readers of the payload alone)."""
_SEGMENT_RE: Final = re.compile(r"^(\d{12})\.(open|seg)$")
WRITERS: Final = "writers"
CORRUPT: Final = "corrupt"
SHIPPER_LOCK: Final = "shipper.lock"
SHIPPER_LOG: Final = "shipper.log"


def segment_name(number: int, sealed: bool) -> str:
    return f"{number:012d}.{'seg' if sealed else 'open'}"


@dataclass(frozen=True)
class PackedEvents:
    """Events packed by :func:`risk_runtime.packing.pack_events`: one RSF3 payload per frame, written together."""

    payloads: tuple[bytes, ...]
    num_rows: int


def encode_frame(batch: pa.RecordBatch, schema_version: int = SCHEMA_VERSION) -> bytes:
    """An RSF2 frame: an Arrow batch (what tools write; the logger writes :func:`encode_packed_frame`)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    payload = sink.getvalue().to_pybytes()
    fields = struct.pack("<HHI", schema_version, 0, len(payload))
    return ARROW_FRAME_MAGIC + fields + struct.pack("<I", zlib.crc32(payload, zlib.crc32(fields))) + payload


def encode_packed_frame(
    payload: bytes, schema_version: int = SCHEMA_VERSION, payload_format: int = PAYLOAD_MSGPACK
) -> bytes:
    """An RSF3 frame around a packed payload; the CRC covers the header and the payload."""
    header = FRAME_MAGIC + struct.pack("<HHI", payload_format, schema_version, len(payload))
    return header + struct.pack("<I", zlib.crc32(payload, zlib.crc32(header))) + payload


def encode_seal(frames: int, events: int) -> bytes:
    body = struct.pack("<IQ", frames, events)
    return SEAL_MAGIC + body + struct.pack("<I", zlib.crc32(body))


@dataclass(frozen=True)
class Frame:
    offset: int
    size: int
    schema_version: int
    """0 for a frame of the oldest format, which did not record it (any version up to 2)."""
    batches: list[pa.RecordBatch]
    """The frame's events as Arrow; empty for a frame this build cannot convert (see ``refusal``)."""
    events: int
    refusal: str | None = None
    """Why this build cannot convert the frame (a newer schema version or payload format), or None."""


@dataclass(frozen=True)
class Damage:
    offset: int
    length: int
    reason: str


@dataclass
class SegmentContents:
    """What reading a segment found: its intact frames, its seal record, and every damaged range."""

    frames: list[Frame] = field(default_factory=list)
    damage: list[Damage] = field(default_factory=list)
    seal: tuple[int, int] | None = None
    """``(frames, events)`` from the seal record, if the segment has an intact one."""
    size: int = 0

    @property
    def batches(self) -> list[pa.RecordBatch]:
        return [b for frame in self.frames for b in frame.batches]

    @property
    def events(self) -> int:
        return sum(frame.events for frame in self.frames)

    @property
    def valid_bytes(self) -> int:
        """Bytes up to the end of the last intact frame."""
        return self.frames[-1].offset + self.frames[-1].size if self.frames else 0

    @property
    def torn(self) -> bool:
        return bool(self.damage)


@dataclass(frozen=True)
class _FrameLayout:
    """Where one frame format keeps its fields, and which header bytes its checksum covers."""

    header: struct.Struct
    version_at: int | None
    """Index of the schema version among the header's fields (None: the format predates versions, 0)."""
    format_at: int | None
    """Index of the payload format (None: Arrow, the only format of that frame kind)."""
    crc_from: int | None
    """First header byte the checksum covers, up to byte 12 (None: the payload alone)."""


_FRAME_LAYOUTS: Final = {
    FRAME_MAGIC: _FrameLayout(_HEADER, version_at=2, format_at=1, crc_from=0),
    ARROW_FRAME_MAGIC: _FrameLayout(_ARROW_HEADER, version_at=1, format_at=None, crc_from=4),
    LEGACY_FRAME_MAGIC: _FrameLayout(_LEGACY_HEADER, version_at=None, format_at=None, crc_from=None),
}


def _parse_frame(data: bytes, offset: int, layout: _FrameLayout) -> tuple[str, int, int, int, bytes] | str:
    header = layout.header
    if len(data) - offset < header.size:
        return "truncated frame header"
    fields = header.unpack_from(data, offset)
    length, crc = fields[-2], fields[-1]
    end = offset + header.size + length
    if end > len(data):
        return f"truncated frame payload ({len(data) - offset - header.size} of {length} bytes)"
    payload = data[offset + header.size : end]
    start = 0 if layout.crc_from is None else zlib.crc32(data[offset + layout.crc_from : offset + 12])
    if zlib.crc32(payload, start) != crc:
        return "frame checksum mismatch"
    version = 0 if layout.version_at is None else fields[layout.version_at]
    payload_format = 0 if layout.format_at is None else fields[layout.format_at]
    return "frame", end, version, payload_format, payload


def _parse_at(data: bytes, offset: int) -> tuple[str, int, int, int, bytes] | str:
    """The record at ``offset``: ``(kind, end, a, b, payload)``, or the reason it is not one.

    For a frame, ``a`` is its schema version and ``b`` its payload format (0: Arrow).
    """
    remaining = len(data) - offset
    magic = data[offset : offset + 4]
    layout = _FRAME_LAYOUTS.get(magic)
    if layout is not None:
        return _parse_frame(data, offset, layout)
    if magic == SEAL_MAGIC:
        if remaining < _SEAL.size:
            return "truncated seal record"
        _, frames, events, crc = _SEAL.unpack_from(data, offset)
        if zlib.crc32(data[offset + 4 : offset + 16]) != crc:
            return "seal record checksum mismatch"
        return "seal", offset + _SEAL.size, frames, events, b""
    if remaining < 4 and any(m.startswith(magic) for m in _MAGICS):
        return "truncated frame header"
    return "bytes that are not a frame (bad magic)"


def _decode(payload: bytes) -> list[pa.RecordBatch] | None:
    try:
        return list(pa.ipc.open_stream(pa.py_buffer(payload)))
    except (pa.ArrowInvalid, OSError):
        return None


def _read_frame(
    offset: int, end: int, version: int, payload_format: int, payload: bytes, writer_id: str
) -> Frame | None:
    """The frame at ``offset``, converted to Arrow when this build knows how; None if it does not decode."""
    if payload_format == 0:
        batches = _decode(payload)
        if batches is None:
            return None
        return Frame(offset, end - offset, version, batches, sum(b.num_rows for b in batches))
    if payload_format != PAYLOAD_MSGPACK:
        return Frame(offset, end - offset, version, [], 0, f"frame of payload format {payload_format}")
    try:
        if version > SCHEMA_VERSION:  # its rows are counted, not converted: the shipper leaves it be
            return Frame(offset, end - offset, version, [], unpacked_count(payload))
        batch = unpack_events(payload, writer_id)
    except (msgspec.DecodeError, ValueError, TypeError, IndexError):
        return None
    return Frame(offset, end - offset, version, [batch], batch.num_rows)


def _resync(data: bytes, start: int) -> int:
    """The next offset from ``start`` holding an intact record, else the end of the data."""
    position = start
    while True:
        found = [p for p in (data.find(m, position) for m in _MAGICS) if p >= 0]
        if not found:
            return len(data)
        candidate = min(found)
        if not isinstance(_parse_at(data, candidate), str):
            return candidate
        position = candidate + 1


def read_segment(path: Path, *, sealed: bool | None = None) -> SegmentContents:
    """Every intact frame of a segment, and every damaged byte range with its reason.

    ``sealed`` (default: from the file name) adds the checks only a sealed segment can fail: it is
    empty, it lacks its seal record (cut short), or its record disagrees with its intact frames.
    """
    data = path.read_bytes()
    sealed = path.name.endswith(".seg") if sealed is None else sealed
    contents = SegmentContents(size=len(data))
    offset = 0
    versioned = False
    while offset < len(data):
        parsed = _parse_at(data, offset)
        if not isinstance(parsed, str):
            kind, end, a, b, payload = parsed
            if kind == "seal" and contents.seal is None:
                contents.seal = (a, b)
                if end < len(data):
                    contents.damage.append(Damage(end, len(data) - end, "bytes after the seal record"))
                break
            frame = _read_frame(offset, end, a, b, payload, path.parent.name) if kind == "frame" else None
            if frame is not None:
                contents.frames.append(frame)
                versioned = versioned or data[offset : offset + 4] != LEGACY_FRAME_MAGIC
                offset = end
                continue
            parsed = "checksum holds but the payload does not decode"
        resume = _resync(data, offset + 1)
        contents.damage.append(Damage(offset, resume - offset, parsed))
        offset = resume
    if sealed:
        if not data:
            contents.damage.append(Damage(0, 0, "empty sealed segment (0 bytes)"))
        elif contents.seal is None and versioned and not contents.damage:
            intact = len(contents.frames)
            contents.damage.append(
                Damage(len(data), 0, f"seal record missing: the segment was cut short after {intact} intact frame(s)")
            )
        elif contents.seal is not None and not contents.damage and not any(f.refusal for f in contents.frames):
            frames, events = contents.seal
            if (frames, events) != (len(contents.frames), contents.events):
                contents.damage.append(
                    Damage(
                        len(data),
                        0,
                        f"seal record says {frames} frame(s) / {events} event(s), "
                        f"found {len(contents.frames)} / {contents.events}",
                    )
                )
    return contents


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

    Used only by the logger's flusher thread (the caller serialises access). Every frame carries
    ``schema_version`` (this runtime's, unless a tool writes for another).
    """

    def __init__(self, directory: Path, *, fsync: bool, schema_version: int = SCHEMA_VERSION) -> None:
        self.directory = directory
        self.fsync = fsync
        self.schema_version = schema_version
        self.open_frames = 0
        self.next_number = 1
        self.open_number: int | None = None
        self.open_events = 0
        self.open_bytes = 0
        self.open_since: float | None = None
        self._fd: int | None = None

    def write(self, batch: pa.RecordBatch | PackedEvents) -> int:
        """Append packed events (their RSF3 frames, in one ``write()``) or an Arrow batch (one RSF2 frame);
        returns the bytes written.

        Raises OSError (nothing is half-counted then). Durability is :meth:`sync`'s job, once per
        flush cycle rather than once per frame.
        """
        if isinstance(batch, PackedEvents):
            version = self.schema_version
            frame = b"".join([encode_packed_frame(payload, version) for payload in batch.payloads])
            frames = len(batch.payloads)
        else:
            frame, frames = encode_frame(batch, self.schema_version), 1
        if self._fd is None:
            number = self.next_number
            path = self.directory / segment_name(number, sealed=False)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
            self._fd, self.open_number, self.next_number = fd, number, number + 1
            self.open_events, self.open_bytes, self.open_since = 0, 0, time.monotonic()
            self.open_frames = 0
            if self.fsync:
                fsync_dir(self.directory)
        written = os.write(self._fd, frame)
        if written != len(frame):  # a short write (disk full): cut it off so the file stays whole
            os.ftruncate(self._fd, os.lseek(self._fd, 0, os.SEEK_CUR) - written)
            raise OSError(f"short write to spool segment ({written} of {len(frame)} bytes)")
        self.open_events += batch.num_rows
        self.open_bytes += len(frame)
        self.open_frames += frames
        return len(frame)

    def sync(self) -> None:
        """``fsync`` the open segment (when configured): what was written survives a power loss."""
        if self.fsync and self._fd is not None:
            os.fsync(self._fd)

    def seal(self) -> tuple[int, int, int] | None:
        """Write the seal record, close the segment for shipping; returns ``(number, events, bytes)`` or None."""
        if self._fd is None or self.open_number is None:
            return None
        seal = encode_seal(self.open_frames, self.open_events)
        if os.write(self._fd, seal) != len(seal):
            raise OSError("short write of a seal record")
        self.open_bytes += len(seal)
        self.sync()
        os.close(self._fd)
        self._fd = None
        number, events, size = self.open_number, self.open_events, self.open_bytes
        os.rename(self.directory / segment_name(number, False), self.directory / segment_name(number, True))
        if self.fsync:
            fsync_dir(self.directory)
        self.open_number, self.open_events, self.open_bytes, self.open_since = None, 0, 0, None
        self.open_frames = 0
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
