"""One writer's segments and what became of them, owned by one object under one lock.

The flusher thread writes and seals segments; ``flush()``, ``stats()`` and the flusher itself ask
which of them bronze holds. Those answers used to be pieced together from several unlocked
fields; :class:`SegmentBook` keeps them in one place:

* every segment not yet known to be in bronze (the open one and the sealed ones), with its event
  count, bytes, the sequence range it holds and when its first frame was written;
* the running totals ``spooled`` (written to the spool) and ``committed`` (known to be in bronze).

A sealed segment is *committed* when its file is gone from the writer's folder and the shipper set
nothing of it aside. Only the shipper deletes a segment, and only once bronze holds every intact frame
of it; if it set damaged bytes aside (a ``corrupt/<writer>/<segment>....reason`` file), the segment's
events are counted as ``damaged`` instead, and :meth:`durable_through` never reports durable for a
sequence number inside it. Writes (``write``/``seal``) come from one thread at a time (the logger's
I/O lock); the book's own lock makes every read consistent with them.
"""

from __future__ import annotations

import collections
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from risk_runtime.shipper_bell import ring
from risk_runtime.spool import CORRUPT, SegmentWriter, segment_name


@dataclass
class _Entry:
    number: int
    events: int
    bytes: int
    first_sequence: int
    last_sequence: int
    written_at: float
    """Wall time of the segment's first frame."""


class SegmentBook:
    """The segments of one writer, from written to committed (see the module docs)."""

    def __init__(self, spool_dir: Path, writer_dir: Path, *, fsync: bool) -> None:
        self.spool_dir = spool_dir
        self.writer_dir = writer_dir
        self._writer = SegmentWriter(writer_dir, fsync=fsync)
        self._lock = threading.Lock()
        self._sealed: collections.deque[_Entry] = collections.deque()
        self._open: _Entry | None = None
        self.spooled = 0
        self.committed = 0
        self.damaged = 0
        self._damaged_first_sequence: int | None = None
        self.damage_note: str | None = None

    # ------------------------------------------------------------------ the writer's side
    def write(self, batch: pa.RecordBatch, first_sequence: int, last_sequence: int) -> None:
        """Append one frame of events ``first_sequence..last_sequence`` (in order). Raises OSError."""
        self._writer.write(batch)
        with self._lock:
            if self._open is None or self._open.number != self._writer.open_number:
                self._open = _Entry(self._writer.open_number or 0, 0, 0, first_sequence, last_sequence, time.time())
            self._open.events = self._writer.open_events
            self._open.bytes = self._writer.open_bytes
            self._open.last_sequence = last_sequence
            self.spooled += batch.num_rows

    def seal(self) -> bool:
        """Seal the open segment for shipping; False if there was none."""
        sealed = self._writer.seal()
        if not sealed:
            return False
        with self._lock:
            entry = self._open or _Entry(sealed[0], sealed[1], sealed[2], 0, 0, time.time())
            entry.bytes = sealed[2]
            self._sealed.append(entry)
            self._open = None
        ring(self.spool_dir)  # the shipper waits long between looks unless told
        return True

    def sync(self) -> None:
        self._writer.sync()

    def forget(self) -> None:
        """A forked child drops the parent's open segment descriptor (the segment stays the parent's)."""
        self._writer.forget()

    @property
    def open_events(self) -> int:
        return self._writer.open_events

    @property
    def open_age(self) -> float:
        since = self._writer.open_since
        return 0.0 if since is None else time.monotonic() - since

    @property
    def has_open(self) -> bool:
        return self._writer.open_number is not None

    # ------------------------------------------------------------------ what bronze holds
    def refresh(self) -> None:
        """Count sealed segments the shipper has finished with (in order) as committed or damaged."""
        with self._lock:
            sealed = self._sealed
            while sealed and not (self.writer_dir / segment_name(sealed[0].number, sealed=True)).exists():
                entry = sealed.popleft()
                reasons = sorted(
                    (self.spool_dir / CORRUPT / self.writer_dir.name).glob(
                        f"{segment_name(entry.number, sealed=True)}*.reason"
                    )
                )
                if reasons:
                    shipped = min(entry.events, _events_shipped(reasons, entry.events))
                    self.damaged += entry.events - shipped
                    self.committed += shipped
                    if self._damaged_first_sequence is None:
                        self._damaged_first_sequence = entry.first_sequence
                    self.damage_note = f"segment {entry.number} was damaged on disk; see {reasons[0]}"
                else:
                    self.committed += entry.events

    def durable_through(self, sequence: int) -> bool:
        """True when every event of this writer up to ``sequence`` that reached the spool is in bronze."""
        self.refresh()
        with self._lock:
            if self._damaged_first_sequence is not None and self._damaged_first_sequence <= sequence:
                return False
            pending = [*self._sealed, *([self._open] if self._open else [])]
            return all(entry.first_sequence > sequence for entry in pending)

    def pending_bytes(self) -> int:
        self.refresh()
        with self._lock:
            return sum(e.bytes for e in self._sealed) + (self._open.bytes if self._open else 0)

    def oldest_written_at(self) -> float | None:
        """When the oldest frame not yet in bronze was written (None: everything spooled is in bronze)."""
        self.refresh()
        with self._lock:
            if self._sealed:
                return self._sealed[0].written_at
            return self._open.written_at if self._open else None


def _events_shipped(reasons: list[Path], default: int) -> int:
    """How many events of a damaged segment the shipper landed, from its reason files."""
    for path in reasons:
        try:
            return int(json.loads(path.read_text())["segment_events_shipped"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return default
