"""The flusher: the one thread that moves a logger's in-memory backlog into its spool.

Its invariants, and why each holds:

* **Who touches the backlog.** ``log()`` appends ``(sequence, event)`` on the right, without a lock,
  and under ``drop_oldest`` pops the oldest on the left. The flusher pops on the left, a frame at a
  time, and puts a frame it could not encode or write back on the left, in order, for the next
  cycle. A frame pop may find the deque emptied by ``drop_oldest`` under it; that is not an error.
  The one other writer is ``on_room``, which appends the dropped-events report, under the I/O lock.
* **Who writes the spool.** Every spool write, seal and sync happens under :attr:`Flusher.io_lock`,
  whoever calls: the flusher thread, ``flush()``, ``close()`` or the SIGTERM hook. An event is
  therefore either in the backlog or in the :class:`~risk_runtime.segments.SegmentBook`, never
  half-way, for anyone holding that lock.
* **What holds the GIL.** Packing (:func:`~risk_runtime.packing.pack_events`: one ``msgspec`` call,
  ~0.3 µs per event; the Arrow conversion happens in the shipper process) holds it, one frame of
  at most :data:`_FRAME_EVENTS` events at a time (~40 µs); between frames the flusher hands
  it back (``time.sleep(0)``) so trading threads run. The ``write()`` and ``fsync`` release it.
  When it has fallen behind (a backlog over :data:`_BURST_BACKLOG`), it takes
  :data:`_BURST_TURN_EVENTS` per turn, packed as frames of :data:`_BURST_FRAME_EVENTS` and written
  in one ``write()``, so that it catches up (see there).
* **Durability window.** The thread wakes every ``sync_interval`` (default 0.5 s, as Vector's disk
  buffer), or sooner when ``log()`` sees a batch's worth waiting (once per wake, so the trading
  thread never pays for waking it per event), and writes the whole backlog; an accepted event is on
  local disk (``write()``, and ``fsync`` when ``fsync=True``) within ``sync_interval`` of ``log()``
  returning. A ``kill -9`` loses at most what was accepted inside that window. The window holds
  while events arrive slower than the flusher packs them (millions of events/s on one core here);
  during a faster burst the backlog -- and with it the window -- grows until the burst ends.
* **When a segment is sealed** (and so becomes the shipper's to commit): when it holds
  ``batch_size`` events and is at least :data:`_MIN_SEAL_INTERVAL` old, or holds
  :data:`_SEGMENT_EVENTS` events, or is ``max_batch_age`` old, or when ``flush()``, ``close()`` or
  SIGTERM asks. A full batch is sealed as soon as its frame is written, so the shipper commits it
  while the rest of a burst is still being encoded. Otherwise a cycle ends with a ``sync``.
* **Spool bound.** Once this writer's pending spool reaches ``max_spool_bytes`` the backlog stays in
  memory (``log()`` applies the overflow policy when that fills) until the shipper frees space; the
  logger hears it has room again through ``on_room``, which reports what was dropped meanwhile.
* **Failures.** An ``Exception`` in a cycle is counted in :class:`~risk_runtime.logger_stats.Faults`
  and the thread carries on; anything that ends the thread is recorded in ``last_error`` and the
  next ``flush()`` starts a new thread.
* **fork.** A thread does not survive ``fork``: the logger builds a new :class:`Flusher` (new lock,
  new events) in the child. The thread is only ever started after ``warm_up()`` ran on the caller's
  thread (see :func:`risk_runtime.encoding.warm_up`), so it never holds an import lock at a fork.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from itertools import repeat, starmap
from typing import Any, Final

from risk_runtime.logger_config import LoggerConfig
from risk_runtime.logger_stats import Faults
from risk_runtime.packing import pack_events
from risk_runtime.segments import SegmentBook
from risk_runtime.spool import PackedEvents

__all__ = ["Flusher"]

log = logging.getLogger("risk_runtime.logger")  # one logger name for the whole RiskEventLogger

_FRAME_EVENTS: Final = 128
"""Most events per spool frame. Taking a frame off the backlog and packing it holds the GIL (~0.29 µs
per event, so ~37 µs a frame of 128 here; 133 µs at 512); the flusher hands it back between frames
(its ``write()`` and a ``time.sleep(0)``). A thread that wants the GIL while another runs Python code
waits up to the interpreter's switch interval (5 ms) unless the holder lets go first, so a trading
loop's lateness follows the longest stretch between those hand-backs: a frame is kept short enough
that a 1 ms loop's p99 does not see it. Smaller frames cost more per event (0.31 µs at 64) and the
frame header's field names take a larger share of the spool."""
_BURST_BACKLOG: Final = 16_384
"""A backlog this long means the flusher is behind: trading threads make events faster than it packs them."""
_BURST_TURN_EVENTS: Final = 16_384
"""Events the flusher takes off the backlog per turn while it is behind. A trading thread that runs Python
code flat out keeps the GIL for the interpreter's switch interval (5 ms) each time it gets it, and the
flusher gets it back only that long after each time it let go -- at each ``write()`` and ``sleep(0)``. At
128 events a turn it spooled ~25k events/s while the burst grew in memory (outside the durability window);
at 4,096 a turn, ~250k/s against a thread making ~800k/s, so the shipper sat idle waiting for segments and
then had the whole burst to do after it. A turn of 16,384 (~4 ms of packing, one ``write()``, and no
``sleep(0)`` after it: the write already handed the GIL back once) keeps up. A trading loop in the same
process already waits behind the busy thread's 5 ms then."""
_BURST_FRAME_EVENTS: Final = 2_048
"""Events per frame within a burst turn; the turn's frames go to the spool in one ``write()``. The shipper
converts a frame's rows together, and its cost per event grows with the frame once the frame's Python
objects outgrow the CPU caches: ~1.0 µs an event at 1,024-2,048, 1.2 at 4,096, 1.7 at 16,384 (measured)."""
_SEGMENT_EVENTS: Final = 50_000
"""A segment is sealed at this size whatever the batch size, which bounds what the shipper holds."""
_MIN_SEAL_INTERVAL: Final = 1.0
"""Under load a batch is sealed at most this often, and grows. Each sealed segment is a Delta commit:
two fsyncs here and, in the shipper, a conversion, a Parquet file and a log entry that take a core for
milliseconds beside the trading process. At 10,000 events/s and 1,000-event batches that was ten
commits a second, and a 1 ms trading loop's p99 lateness went from 0.2 to 0.45 ms; at one a second it
stays within ~0.03 ms of the loop without a logger, and bronze gets 10x fewer small files. Durability
is not at stake: events are on local disk within ``sync_interval`` whether sealed or not."""


def _encode(items: list[tuple[int, Any]]) -> PackedEvents:
    """Pack ``(sequence, event)`` pairs as frames of at most :data:`_BURST_FRAME_EVENTS` (never raises for
    bad event values)."""
    if len(items) <= _BURST_FRAME_EVENTS:
        return PackedEvents((pack_events(items),), len(items))
    step = _BURST_FRAME_EVENTS
    return PackedEvents(tuple(pack_events(items[i : i + step]) for i in range(0, len(items), step)), len(items))


class Flusher:
    """Owns the flusher thread, the I/O lock, the wake event and the backlog-to-spool writing.

    Args:
        buffer: the logger's backlog of ``(sequence, event)`` pairs (shared with ``log()``).
        book: the writer's :class:`~risk_runtime.segments.SegmentBook`.
        config: the logger's settings (``batch_size``, ``max_batch_age``, ``sync_interval``,
            ``max_spool_bytes``).
        faults: where problems are counted.
        on_room: called under the I/O lock after a cycle that left the spool below its bound.
        between_cycles: called by the thread after each cycle (the logger checks on its shipper).
    """

    def __init__(
        self,
        buffer: deque[tuple[int, object]],
        book: SegmentBook,
        config: LoggerConfig,
        faults: Faults,
        *,
        on_room: Callable[[], None],
        between_cycles: Callable[[], None],
    ) -> None:
        self._buffer = buffer
        self._book = book
        self._config = config
        self._faults = faults
        self._on_room = on_room
        self._between_cycles = between_cycles
        self.io_lock = threading.Lock()
        """Held while events move from the backlog to the spool, and for every spool write."""
        self.wake = threading.Event()
        self.wake_requested = False
        """Set by ``log()`` with :attr:`wake`, cleared by the thread when it wakes: one wake per cycle."""
        self._stopping = threading.Event()
        self._spool_full = False
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ the thread
    def start(self) -> None:
        self._stopping.clear()
        self.ensure_running()

    def ensure_running(self) -> None:
        """Start the thread, or a new one if the last one died (its error is in ``last_error``)."""
        if self._stopping.is_set():
            return
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="risk-event-flusher", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self.wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self._thread = None

    def is_alive(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread to end (it ends only when stopped or when something killed it)."""
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        faults = self._faults
        try:
            while not self._stopping.is_set():
                self.wake.wait(self._config.sync_interval)
                self.wake.clear()
                self.wake_requested = False
                try:
                    self.cycle(seal=False)
                    self._between_cycles()
                except Exception as exc:  # keep flushing whatever happens; say what went wrong
                    faults.internal_errors += 1
                    faults.last_error = f"{type(exc).__name__}: {exc}"
                    log.exception("risk event flusher cycle failed")
        except BaseException as exc:  # the thread is dying: say so where stats() shows it
            faults.internal_errors += 1
            faults.last_error = f"flusher thread stopped: {type(exc).__name__}: {exc}"
            log.error("risk event flusher thread stopped: %r; the next flush() restarts it", exc)

    # ------------------------------------------------------------------ backlog -> spool
    def cycle(self, *, seal: bool, lock_timeout: float = -1) -> None:
        """Move the backlog to the spool; seal the open segment when it is a batch (or when asked)."""
        if not self.io_lock.acquire(timeout=lock_timeout):
            return
        try:
            self._write_backlog()
            book = self._book
            if book.has_open and (seal or self._batch_ready() or book.open_age >= self._config.max_batch_age):
                book.seal()
            else:
                book.sync()
        finally:
            self.io_lock.release()

    def drain(self) -> None:
        """At close: the whole backlog to disk, past the spool bound, and the last segment sealed."""
        with self.io_lock:
            self._spool_full = False  # at close the bound yields: the backlog goes to disk, not away
            self._write_backlog()
            self._book.seal()

    def _batch_ready(self) -> bool:
        book = self._book
        if book.open_events >= _SEGMENT_EVENTS:
            return True
        return book.open_events >= self._config.batch_size and book.open_age >= _MIN_SEAL_INTERVAL

    def _write_backlog(self) -> None:
        """Write the backlog in frames; seal each full batch at once so the shipper commits it while
        the rest is still being encoded (logging, encoding and committing overlap under load)."""
        book, limit, faults = self._book, self._config.max_spool_bytes, self._faults
        if self._spool_full and book.pending_bytes() < limit:
            self._spool_full = False
        buffer = self._buffer
        while buffer and not self._spool_full:
            items: list[tuple[int, object]] = []
            backlog = len(buffer)
            behind = backlog > _BURST_BACKLOG
            take = min(backlog, _BURST_TURN_EVENTS if behind else _FRAME_EVENTS)
            # popleft in a C loop (~15 ns an event against ~25 for a Python loop); drop_oldest in log() may empty
            # the deque under us, and extend() keeps what it popped before the IndexError
            with contextlib.suppress(IndexError):
                items.extend(starmap(buffer.popleft, repeat((), take)))
            if not items:
                break
            try:
                batch = _encode(items)
            except Exception as exc:  # bad values never raise (they become ingest errors); this is the library
                buffer.extendleft(reversed(items))  # keep them, in order, for the next cycle
                faults.internal_errors += 1
                faults.last_error = f"encoding failed: {type(exc).__name__}: {exc}"
                log.exception("risk event encoding failed; the events stay queued")
                return
            sequences = [sequence for sequence, _ in items]
            try:
                book.write(batch, min(sequences), max(sequences))
            except OSError as exc:
                buffer.extendleft(reversed(items))  # keep them, in order, for the next cycle
                faults.spool_errors += 1
                faults.last_error = f"spool write failed: {exc}"
                return
            if self._batch_ready():
                book.seal()
            if book.pending_bytes() >= limit:
                self._spool_full = True
                faults.last_error = f"spool bound of {limit} bytes reached"
            if not behind:  # hand the GIL back to the trading threads between frames (behind, the write did)
                time.sleep(0)
        if not self._spool_full:
            self._on_room()
