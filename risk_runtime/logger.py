"""``RiskEventLogger``: takes risk events off the trading hot path and lands them in bronze.

The path of an event, and why each step is where it is::

    trading thread   log(event)          deque append + sequence number: ~0.3 µs, never blocks
    flusher thread   every sync_interval  encode the backlog as Arrow, append one frame to the spool
    shipper process  (risk_runtime.shipper)  commit sealed segments to Delta, retrying, idempotently

* ``log()`` does no I/O, no encoding and no locking; it only refuses (and counts) an event when
  the bounded in-memory backlog is full -- which happens only if the local disk itself is failing
  or the spool reached its size bound while the lake was unreachable.
* The flusher wakes on a timer (``sync_interval``) or when a batch's worth is waiting, so the
  trading thread never pays for waking it per event. Its work is a few microseconds per event
  of columnar Arrow conversion plus one ``write()``; it holds the GIL one frame (at most 4,096
  events) at a time.
* Durability window: an accepted event is on local disk (``write()``, and ``fsync`` when
  ``fsync=True``) within ``sync_interval`` (default 0.5 s, as Vector's disk buffer) of ``log()``
  returning; a shorter interval narrows the window but wakes the flusher, and meets the trading
  loop, more often (see bench.runtime's sweep). A ``kill -9`` loses at most what was accepted
  inside that window; everything older is committed by the next shipper to run on the same spool,
  exactly once. The window holds while events arrive slower than the flusher encodes them
  (~200k events/s on one core here); during a burst faster than that, the backlog -- and with it
  the window -- grows until the burst ends.
* Batches land in bronze when a segment holds ``batch_size`` events or is ``max_batch_age``
  seconds old (1,000 events / 5 s; the design guide's 100-event batches cost ten commits a second
  per process at 1,000 events/s), or at ``flush()``/``close()``; the shipper
  coalesces whatever is ready into one commit, so under load commits grow instead of multiplying.

Usage, with asyncio as in the design guide, or without it::

    logger = RiskEventLogger()
    await logger.initialize()
    cb = TradingCircuitBreaker(config, event_logger=logger)
    cb.record_failure()
    await logger.flush()

    with RiskEventLogger(lake_root="/data/lake") as logger:
        logger.log(RiskEvent(RiskEventType.CB_FAILURE, source="orders", failure_count=1))
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import contextlib
import hashlib
import itertools
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
import weakref
from collections.abc import Awaitable, Generator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Final

from risk_runtime.encoding import encode_batch, warm_up
from risk_runtime.events import Component, RiskEvent, RiskEventType
from risk_runtime.spool import (
    SHIPPER_LOCK,
    SHIPPER_LOG,
    STORAGE_OPTIONS_ENV,
    WRITERS,
    FileLock,
    SegmentWriter,
    is_locked,
    segment_name,
)
from risk_runtime.table import is_uri, resolve_lake_root

log = logging.getLogger(__name__)

SPOOL_DIR_ENV: Final = "RISK_SPOOL_DIR"
_FRAME_EVENTS: Final = 4_096
"""Most events per spool frame. Encoding holds the GIL (~2-3 µs per event) and the flusher hands it
back between frames. Measured with bench.runtime, a trading loop's p99 lateness depends on how
*often* it meets the flusher far more than on how long each meeting is: at 1,000 events/s one
frame per sync interval beat frames of 256 (1.3x against 1.6x the loop's own p99), and bursts
encode ~35% faster in large frames."""
_SEGMENT_EVENTS: Final = 50_000
"""A segment is sealed at this size whatever the batch size, which bounds what the shipper holds."""
_MIN_SEAL_INTERVAL: Final = 0.1
"""Sealing costs two fsyncs (~7 ms here); under load a batch is sealed at most this often, and grows."""
_SHIPPER_CHECK_INTERVAL: Final = 1.0


class OverflowPolicy(StrEnum):
    """What ``log()`` does when the in-memory backlog is full (the sink has fallen behind)."""

    DROP_NEWEST = "drop_newest"
    """Refuse the incoming event (``log()`` returns False). Nothing accepted is ever lost, and
    the writer's sequence stays gapless; the refusals are counted and reported."""
    DROP_OLDEST = "drop_oldest"
    """Discard the oldest waiting event to accept the new one: keeps the most recent decisions,
    at the price of losing accepted events -- their sequence numbers show up as a gap."""


@dataclass(frozen=True)
class LoggerStats:
    """A snapshot of the logger's accounting; every event is in exactly one of these states."""

    writer_id: str
    accepted: int
    """Events ``log()`` took (each has a sequence number)."""
    dropped: int
    """Events refused or discarded because the backlog was full (see :class:`OverflowPolicy`)."""
    buffered: int
    """Accepted, still in memory."""
    spooled: int
    """Accepted and written to the local spool (committed or not)."""
    committed: int
    """Written to the spool and since committed to bronze."""
    spool_bytes: int
    spool_errors: int
    last_error: str | None
    shipper_running: bool
    internal_errors: int


class _Done:
    """The result of a blocking ``flush()``/``initialize()`` outside an event loop; awaitable too."""

    __slots__ = ("value",)

    def __init__(self, value: bool) -> None:
        self.value = value

    def __bool__(self) -> bool:
        return self.value

    def __await__(self) -> Generator[Any, None, bool]:
        return self.value
        yield  # pragma: no cover  (makes this a generator)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.value})"


def default_spool_dir(lake_root: str) -> Path:
    """``$RISK_SPOOL_DIR``, else ``<lake_root>/../spool`` for a local lake, else a per-user state dir."""
    configured = os.environ.get(SPOOL_DIR_ENV)
    if configured:
        return Path(configured).expanduser().resolve()
    if not is_uri(lake_root):
        return Path(lake_root).parent / "spool"
    digest = hashlib.sha256(lake_root.encode()).hexdigest()[:16]
    state = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return state / "risk-event-lake" / "spool" / digest


def new_writer_id() -> str:
    host = socket.gethostname().split(".")[0] or "host"
    return f"{host}-{os.getpid()}-{uuid.uuid4().hex[:12]}"


def _encode(items: list[tuple[int, Any]]) -> Any:
    """Encode ``(sequence, event)`` pairs, trying twice: a library's one-time set-up can fail once.

    pyarrow's first conversion may import pandas (see :func:`~risk_runtime.encoding.warm_up`); at
    interpreter exit that import raises, pyarrow records that it tried, and the second attempt works.
    """
    events, sequences = [event for _, event in items], [sequence for sequence, _ in items]
    try:
        return encode_batch(events, sequences)
    except Exception:
        return encode_batch(events, sequences)


class RiskEventLogger:
    """Accepts risk events without blocking and lands every accepted one in bronze.

    Args:
        lake_root: the lake (``$RISK_LAKE_ROOT``, else ``data/lake``); a local path or a URI.
        spool_dir: where events wait on local disk (default: see :func:`default_spool_dir`).
        storage_options: for an object-store lake; handed to the shipper through its environment.
        batch_size / max_batch_age: a batch lands in bronze when it has this many events or is
            this old (seconds), whichever comes first.
        sync_interval: the durability window, in seconds (see the module docs).
        fsync: also ``fsync`` every spool write (survives power loss, not only process crashes).
        max_buffer_events: the in-memory backlog bound; beyond it ``overflow`` applies.
        max_spool_bytes: this writer's spool bound; beyond it the backlog stays in memory.
        overflow: :class:`OverflowPolicy`.
        start_shipper: start a shipper process for the spool when none runs (turn off when an
            external shipper serves it).
        handle_signals: flush to the spool on SIGTERM when no other handler is installed.
        exit_timeout: how long ``close()`` and interpreter exit wait for the spool to be committed.
    """

    def __init__(
        self,
        lake_root: str | os.PathLike[str] | None = None,
        *,
        spool_dir: str | os.PathLike[str] | None = None,
        storage_options: Mapping[str, str] | None = None,
        batch_size: int = 1_000,
        max_batch_age: float = 5.0,
        sync_interval: float = 0.5,
        fsync: bool = True,
        max_buffer_events: int = 1_000_000,
        max_spool_bytes: int = 1 << 30,
        overflow: OverflowPolicy | str = OverflowPolicy.DROP_NEWEST,
        start_shipper: bool = True,
        handle_signals: bool = True,
        exit_timeout: float = 10.0,
    ) -> None:
        for name, value in (("batch_size", batch_size), ("max_buffer_events", max_buffer_events)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name, number in (
            ("max_batch_age", max_batch_age),
            ("sync_interval", sync_interval),
            ("exit_timeout", exit_timeout),
        ):
            if not isinstance(number, int | float) or not number > 0:
                raise ValueError(f"{name} must be a positive number of seconds, got {number!r}")
        if not isinstance(max_spool_bytes, int) or max_spool_bytes < 1 << 20:
            raise ValueError(f"max_spool_bytes must be at least 1 MiB, got {max_spool_bytes!r}")
        try:
            self.overflow = OverflowPolicy(overflow)
        except ValueError:
            choices = ", ".join(p.value for p in OverflowPolicy)
            raise ValueError(f"overflow must be one of {choices}, got {overflow!r}") from None

        self.lake_root = resolve_lake_root(lake_root)
        self.spool_dir = Path(spool_dir).resolve() if spool_dir is not None else default_spool_dir(self.lake_root)
        self.storage_options = dict(storage_options) if storage_options else None
        self.batch_size = batch_size
        self.max_batch_age = float(max_batch_age)
        self.sync_interval = float(sync_interval)
        self.fsync = fsync
        self.max_buffer_events = max_buffer_events
        self.max_spool_bytes = max_spool_bytes
        self.start_shipper = start_shipper
        self.handle_signals = handle_signals
        self.exit_timeout = float(exit_timeout)

        self._io_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._reset_writer()
        _live_loggers.add(self)

    # ------------------------------------------------------------------ state
    def _reset_writer(self) -> None:
        """Fresh identity and empty books: at construction, and in a forked child."""
        self.writer_id = new_writer_id()
        self._buffer: collections.deque[tuple[int, object]] = collections.deque()
        self._sequence = itertools.count(1)
        self._dropped = itertools.count()
        self._dropped_unreported = 0
        self._drop_window: tuple[float, float] | None = None
        self._wake_requested = False
        self._internal_errors = 0
        self._spooled = 0
        self._committed = 0
        self._sealed: collections.deque[tuple[int, int, int]] = collections.deque()  # number, events, bytes
        self._sealed_bytes = 0
        self._spool_errors = 0
        self._last_error: str | None = None
        self._spool_full = False
        self._writer_dir = self.spool_dir / WRITERS / self.writer_id
        self._writer_lock = FileLock(self._writer_dir / "lock")
        self._segments = SegmentWriter(self._writer_dir, fsync=self.fsync)
        self._flusher: threading.Thread | None = None
        self._shipper: subprocess.Popen[bytes] | None = None
        self._last_shipper_check = 0.0
        self._started = False
        self._closed = False

    @property
    def started(self) -> bool:
        return self._started

    # ------------------------------------------------------------------ the hot path
    def log(self, event: RiskEvent) -> bool:
        """Accept ``event`` for bronze; O(1), never blocks, never raises.

        Returns False only when the event was refused because the backlog is full (counted in
        :meth:`stats` and reported as a ``risk_events_dropped`` event once the sink recovers).
        A malformed event is accepted: it lands with its problems described, and silver
        quarantines it.
        """
        try:
            buffer = self._buffer
            if len(buffer) >= self.max_buffer_events and not self._make_room():
                return False
            buffer.append((next(self._sequence), event))
            if len(buffer) >= self.batch_size and not self._wake_requested:
                self._wake_requested = True
                self._wake.set()
            return True
        except Exception:  # never into trading code
            self._internal_errors += 1
            return False

    def _make_room(self) -> bool:
        """The backlog is full: apply the overflow policy; True if the new event can go in."""
        next(self._dropped)
        self._dropped_unreported += 1
        now = time.time()
        self._drop_window = (self._drop_window[0] if self._drop_window else now, now)
        if self.overflow is OverflowPolicy.DROP_OLDEST:
            with contextlib.suppress(IndexError):
                self._buffer.popleft()
            return True
        return False

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> RiskEventLogger:
        """Create the spool folder, start the flusher thread and (if needed) the shipper."""
        if self._closed:
            raise RuntimeError("this RiskEventLogger is closed; create a new one")
        if self._started:
            return self
        self._create_writer_dir()
        # On this thread, before the flusher exists: an import running on a background thread when the
        # process forks leaves the child's import lock held forever (see encoding.warm_up).
        warm_up()
        self._stopping.clear()
        self._flusher = threading.Thread(target=self._run_flusher, name="risk-event-flusher", daemon=True)
        self._flusher.start()
        self._started = True
        self._ensure_shipper()
        if self.handle_signals:
            _install_sigterm_handler()
        return self

    def _create_writer_dir(self) -> None:
        """Make this writer's spool folder appear with its lock already held.

        The shipper treats a folder whose lock nobody holds as a dead writer's and removes it once
        empty. Creating the folder and then locking it left a gap in which a shipper's scan could
        do exactly that to a live writer; instead the folder is prepared under a hidden name
        (which shippers skip) and renamed into place, atomically, once locked.
        """
        staging = self._writer_dir.with_name(f".{self.writer_id}.starting")
        staging.mkdir(parents=True, exist_ok=True)
        lock = FileLock(staging / "lock")
        lock.acquire(blocking=True)  # nobody else can know this name: only a stale probe could hold it
        os.rename(staging, self._writer_dir)
        self._writer_lock = lock  # the lock lives on the open descriptor, whatever the folder is called

    async def initialize(self) -> None:
        """Asyncio twin of :meth:`start` (the design guide's ``await logger.initialize()``)."""
        await asyncio.to_thread(self.start)

    def flush(self, timeout: float | None = None) -> Awaitable[bool] | _Done:
        """Land every event accepted so far in bronze; True when done, False on timeout.

        Inside a running event loop this returns an awaitable and waits in a worker thread
        (``await logger.flush()``); elsewhere it blocks and returns the result (also awaitable).
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return _Done(self.flush_blocking(timeout))
        return loop.run_in_executor(None, self.flush_blocking, timeout)

    def flush_blocking(self, timeout: float | None = None) -> bool:
        """Write the backlog to the spool, seal it, and wait until the shipper has committed it."""
        if not self._started:
            if not self._buffer or self._closed:
                return not self._buffer
            self.start()
        deadline = None if timeout is None else time.monotonic() + timeout
        self._cycle(seal=True)
        while True:
            self._refresh_committed()
            if not self._sealed and not self._buffer and self._segments.open_number is None:
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            if self._buffer or self._segments.open_number is not None:
                self._cycle(seal=True)
            self._ensure_shipper()
            time.sleep(0.005)

    def close(self, timeout: float | None = None) -> bool:
        """Flush and stop; True if everything was committed.

        Waits at most ``timeout`` seconds (default: ``exit_timeout``), so a lake that is down never
        holds a process's shutdown hostage. Whatever is not committed by then is already on local
        disk, where the shipper (which outlives this process) or the next logger commits it.
        """
        if self._closed:
            return True
        wait = self.exit_timeout if timeout is None else timeout
        landed = self.flush_blocking(wait) if (self._started or self._buffer) else True
        self._stop_flusher()
        with self._io_lock:
            self._seal()
        self._writer_lock.release()
        self._closed = True
        self._started = False
        _live_loggers.discard(self)
        return landed

    async def aclose(self, timeout: float | None = None) -> bool:
        return await asyncio.to_thread(self.close, timeout)

    def __enter__(self) -> RiskEventLogger:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> RiskEventLogger:
        await self.initialize()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def stats(self) -> LoggerStats:
        self._refresh_committed()
        return LoggerStats(
            writer_id=self.writer_id,
            accepted=_peek(self._sequence) - 1,
            dropped=_peek(self._dropped),
            buffered=len(self._buffer),
            spooled=self._spooled,
            committed=self._committed,
            spool_bytes=self._spool_usage(),
            spool_errors=self._spool_errors,
            last_error=self._last_error,
            shipper_running=is_locked(self.spool_dir / SHIPPER_LOCK),
            internal_errors=self._internal_errors,
        )

    # ------------------------------------------------------------------ the flusher
    def _run_flusher(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self.sync_interval)
            self._wake.clear()
            self._wake_requested = False
            try:
                self._cycle(seal=False)
                if time.monotonic() - self._last_shipper_check >= _SHIPPER_CHECK_INTERVAL:
                    self._ensure_shipper()
            except Exception as exc:  # keep flushing whatever happens; say what went wrong
                self._internal_errors += 1
                self._last_error = f"{type(exc).__name__}: {exc}"
                log.exception("risk event flusher cycle failed")

    def _stop_flusher(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._flusher is not None and self._flusher is not threading.current_thread():
            self._flusher.join(timeout=5)
        self._flusher = None

    def _cycle(self, *, seal: bool, lock_timeout: float = -1) -> None:
        """Move the backlog to the spool; seal the open segment when it is a batch (or when asked)."""
        if not self._io_lock.acquire(timeout=lock_timeout):
            return
        try:
            self._write_backlog()
            segments = self._segments
            if segments.open_number is not None and (
                seal or self._batch_ready() or time.monotonic() - (segments.open_since or 0) >= self.max_batch_age
            ):
                self._seal()
            else:
                segments.sync()
        finally:
            self._io_lock.release()

    def _batch_ready(self) -> bool:
        segments = self._segments
        if segments.open_events >= _SEGMENT_EVENTS:
            return True
        age = time.monotonic() - (segments.open_since or 0)
        return segments.open_events >= self.batch_size and age >= _MIN_SEAL_INTERVAL

    def _seal(self) -> None:
        sealed = self._segments.seal()
        if sealed:
            self._sealed.append(sealed)
            self._sealed_bytes += sealed[2]

    def _spool_usage(self) -> int:
        self._refresh_committed()
        return self._sealed_bytes + self._segments.open_bytes

    def _write_backlog(self) -> None:
        """Write the backlog in frames; seal each full batch at once so the shipper commits it while
        the rest is still being encoded (logging, encoding and committing overlap under load)."""
        if self._spool_full and self._spool_usage() < self.max_spool_bytes:
            self._spool_full = False
        buffer = self._buffer
        while buffer and not self._spool_full:
            items = [buffer.popleft() for _ in range(min(len(buffer), _FRAME_EVENTS))]
            try:
                batch = _encode(items)
            except Exception as exc:  # bad values never raise (they become ingest errors); this is the library
                buffer.extendleft(reversed(items))  # keep them, in order, for the next cycle
                self._internal_errors += 1
                self._last_error = f"encoding failed: {type(exc).__name__}: {exc}"
                log.exception("risk event encoding failed; the events stay queued")
                return
            try:
                self._segments.write(batch)
            except OSError as exc:
                buffer.extendleft(reversed(items))  # keep them, in order, for the next cycle
                self._spool_errors += 1
                self._last_error = f"spool write failed: {exc}"
                return
            self._spooled += len(items)
            if self._batch_ready():
                self._seal()
            if self._spool_usage() >= self.max_spool_bytes:
                self._spool_full = True
                self._last_error = f"spool bound of {self.max_spool_bytes} bytes reached"
            time.sleep(0)  # hand the GIL back to the trading threads between frames
        if self._dropped_unreported and not self._spool_full:
            self._report_drops()

    def _report_drops(self) -> None:
        """The sink has room again: record how many events were dropped meanwhile, as an event."""
        count, self._dropped_unreported = self._dropped_unreported, 0
        first, last = self._drop_window or (time.time(), time.time())
        self._drop_window = None
        self._buffer.append(
            (
                next(self._sequence),
                RiskEvent(
                    RiskEventType.EVENTS_DROPPED,
                    component=Component.EVENT_LOGGER,
                    source=self.writer_id,
                    current_value=float(count),
                    metadata=json.dumps(
                        {"dropped": count, "policy": self.overflow.value, "first_at": first, "last_at": last}
                    ),
                ),
            )
        )

    def _refresh_committed(self) -> None:
        """Sealed segments the shipper has deleted are committed."""
        sealed = self._sealed
        while sealed and not (self._writer_dir / segment_name(sealed[0][0], sealed=True)).exists():
            _, events, size = sealed.popleft()
            self._committed += events
            self._sealed_bytes -= size

    # ------------------------------------------------------------------ the shipper
    def _ensure_shipper(self) -> None:
        self._last_shipper_check = time.monotonic()
        if not self.start_shipper:
            return
        if self._shipper is not None and self._shipper.poll() is None:
            return
        if is_locked(self.spool_dir / SHIPPER_LOCK):
            return
        env = dict(os.environ)
        package_root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        if self.storage_options:
            env[STORAGE_OPTIONS_ENV] = json.dumps(self.storage_options)
        command = [sys.executable, "-m", "risk_runtime.shipper", "--spool", str(self.spool_dir)]
        command += ["--lake", self.lake_root]
        with open(self.spool_dir / SHIPPER_LOG, "ab") as shipper_log:
            self._shipper = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=shipper_log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # a Ctrl-C or SIGTERM to the trading process group spares it
                close_fds=True,
            )

    # ------------------------------------------------------------------ process events
    def _after_fork_in_child(self) -> None:
        """A forked child gets its own writer: new id, new sequence, none of the parent's backlog.

        The parent's pending events stay the parent's to write; the child closes the descriptors
        it inherited (without unlocking the parent's files) and starts its own flusher.
        """
        was_started = self._started
        self._writer_lock.forget()
        self._segments.forget()
        self._io_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._reset_writer()
        if was_started:
            self.start()

    def _on_sigterm(self) -> None:
        """Put the backlog on disk now; the shipper commits it after this process is gone."""
        if self._started:
            self._cycle(seal=True, lock_timeout=2.0)

    def _at_exit(self) -> None:
        if self._started or self._buffer:
            self.close(timeout=self.exit_timeout)


def _peek(counter: itertools.count[int]) -> int:
    """The next value of an ``itertools.count`` without consuming it (read from its repr)."""
    return int(repr(counter)[len("count(") : -1])


_live_loggers: weakref.WeakSet[RiskEventLogger] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for logger in list(_live_loggers):
        try:
            logger._after_fork_in_child()
        except Exception:
            log.exception("risk event logger could not restart in a forked child")


def _at_exit() -> None:
    for logger in list(_live_loggers):
        try:
            logger._at_exit()
        except Exception:
            log.exception("risk event logger could not flush at exit")


_previous_sigterm: Any = None
_sigterm_installed = False


def _install_sigterm_handler() -> None:
    """Flush on SIGTERM, then let the signal do what it did before (terminate, by default)."""
    global _previous_sigterm, _sigterm_installed
    if _sigterm_installed or threading.current_thread() is not threading.main_thread():
        return
    current = signal.getsignal(signal.SIGTERM)
    if current not in (signal.SIG_DFL, None) and not callable(current):
        return  # SIG_IGN: the process chose to ignore SIGTERM; respect that
    _previous_sigterm = current
    signal.signal(signal.SIGTERM, _handle_sigterm)
    _sigterm_installed = True


def _handle_sigterm(signum: int, frame: FrameType | None) -> None:
    for logger in list(_live_loggers):
        with contextlib.suppress(Exception):
            logger._on_sigterm()
    previous = _previous_sigterm
    if callable(previous):
        previous(signum, frame)
        return
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_at_exit)
