"""``RiskEventLogger``: takes risk events off the trading hot path and lands them in bronze.

The path of an event, and why each step is where it is::

    trading thread   RiskEvent(...)      a C-level struct: time as integer ns, no id drawn (~0.3 µs)
                     log(event)          sequence number, tag, deque append: ~0.2 µs, never blocks
    flusher thread   every sync_interval  pack the backlog as MessagePack frames, append them to the spool
    shipper process  (risk_runtime.shipper)  convert frames to Arrow (ids derived from writer and
                                          sequence, timestamps as UTC µs), commit sealed segments to
                                          Delta, retrying, idempotently

* ``log()`` does no I/O, no encoding and no locking (it tags the event with its writer and sequence,
  so ``event.event_id`` answers the id bronze will hold); it only refuses (and counts) an event when
  the bounded in-memory backlog is full -- which happens only if the local disk itself is failing
  or the spool reached its size bound while the lake was unreachable.
* Durability window: an accepted event is on local disk within ``sync_interval`` (default 0.5 s)
  of ``log()`` returning; a shorter interval narrows the window but wakes the flusher, and meets
  the trading loop, more often (see bench.runtime's sweep). A ``kill -9`` loses at most what was
  accepted inside that window; everything older is committed by the next shipper to run on the
  same spool, exactly once. What the flusher guarantees, and at what cost to the trading
  threads, is stated in :mod:`risk_runtime.flusher`.
* Batches land in bronze when a segment holds ``batch_size`` events or is ``max_batch_age``
  seconds old (1,000 events / 5 s; the design guide's 100-event batches cost ten commits a second
  per process at 1,000 events/s), or at ``flush()``/``close()``; the shipper
  coalesces whatever is ready into one commit, so under load commits grow instead of multiplying.
* Accounting: every accepted event is buffered, spooled, committed, ``dropped`` (counted, only under
  ``drop_oldest`` or a full backlog) or ``damaged`` (set aside by the shipper); ``flush()`` is True
  only when bronze holds every event accepted before it, within ``flush_timeout`` (30 s) by default.
  After ``close()``, ``log()`` returns False and counts the refusal: a closed logger stays closed.

This module holds the hot path (with the overflow policy and its drop accounting) and the
lifecycle. The rest lives by concept: settings and their validation in
:mod:`risk_runtime.logger_config`, the thread that writes the backlog to the spool in
:mod:`risk_runtime.flusher`, what ``stats()`` reports in :mod:`risk_runtime.logger_stats`, the
writer's segments and what became of them in :mod:`risk_runtime.segments`, which table a spool
feeds in :mod:`risk_runtime.spool_identity`, starting and hearing from the shipper in
:mod:`risk_runtime.supervision`, and the exit, fork and SIGTERM hooks in
:mod:`risk_runtime.process_hooks`.

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
import contextlib
import itertools
import json
import logging
import os
import socket
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Final

import msgspec

from risk_runtime import process_hooks
from risk_runtime.encoding import warm_up
from risk_runtime.events import Component, RiskEvent, RiskEventType, origin_base
from risk_runtime.flusher import Flusher
from risk_runtime.logger_config import LoggerConfig, OverflowPolicy
from risk_runtime.logger_stats import Faults, LoggerStats, _Done
from risk_runtime.segments import SegmentBook
from risk_runtime.spool import WRITERS, FileLock
from risk_runtime.spool_identity import SPOOL_DIR_ENV, check_spool, claim_spool, default_spool_dir, spool_identity
from risk_runtime.storage import storage_options_from_env
from risk_runtime.supervision import ShipperSupervisor
from risk_runtime.table import resolve_lake_root

__all__ = ["SPOOL_DIR_ENV", "LoggerStats", "OverflowPolicy", "RiskEventLogger", "default_spool_dir"]

log = logging.getLogger(__name__)

_SHIPPER_CHECK_INTERVAL: Final = 1.0
"""How often, at most, the flusher thread checks that a shipper serves the spool."""


def new_writer_id() -> str:
    host = socket.gethostname().split(".")[0] or "host"
    return f"{host}-{os.getpid()}-{uuid.uuid4().hex[:12]}"


class RiskEventLogger:
    """Accepts risk events without blocking and lands every accepted one in bronze.

    Args:
        lake_root: the lake (``$RISK_LAKE_ROOT``, else ``data/lake``); a local path or a URI. An
            explicit value always wins over the environment, and the default spool follows it.
        spool_dir: where events wait on local disk (default: this lake's own spool, see
            :func:`risk_runtime.spool_identity.default_spool_dir`). A spool feeds one table:
            ``start()`` refuses one that feeds another.
        storage_options: for an object-store lake (default: ``$RISK_STORAGE_OPTIONS``); handed to the shipper
            through its environment.
        batch_size / max_batch_age: a batch lands in bronze when it has this many events or is
            this old (seconds), whichever comes first.
        sync_interval: the durability window, in seconds (see the module docs).
        fsync: also ``fsync`` every spool write (survives power loss, not only process crashes).
        max_buffer_events: the in-memory backlog bound; beyond it ``overflow`` applies.
        max_spool_bytes: this writer's spool bound; beyond it the backlog stays in memory.
        overflow: :class:`OverflowPolicy`.
        start_shipper: start a shipper process for the spool when none runs (turn off when an
            external shipper serves it).
        handle_signals: flush to the spool on SIGTERM (see :mod:`risk_runtime.process_hooks`).
        exit_timeout: how long ``close()`` and interpreter exit wait for the spool to be committed.
        flush_timeout: how long ``flush()`` (and ``save_state()``) wait when given no timeout.
        shipper_nice: how much lower than normal the shipper it starts runs in the CPU scheduler
            (0..19, default 10): converting and committing is background work, and on a busy host
            it must not take the CPU a trading thread is waking up to (see :mod:`risk_runtime.supervision`).
        shipper_cpus: the CPUs the shipper it starts may run on (default: the trading process's own, as a
            child inherits them). A trading process pinned to a core would otherwise have its shipper on
            that same core; given a core of its own, the shipper keeps up with a burst instead of finishing
            it afterwards, and never runs where the trading thread runs (see ``bench/README.md``).

    Every interval must be a finite positive number of seconds and every size a positive integer:
    anything else is a ``ValueError`` naming the parameter, here, at construction.
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
        flush_timeout: float = 30.0,
        shipper_nice: int = 10,
        shipper_cpus: Iterable[int] | None = None,
    ) -> None:
        self.config = LoggerConfig(
            batch_size=batch_size,
            max_batch_age=max_batch_age,
            sync_interval=sync_interval,
            fsync=fsync,
            max_buffer_events=max_buffer_events,
            max_spool_bytes=max_spool_bytes,
            overflow=overflow,  # type: ignore[arg-type]  # validated into an OverflowPolicy
            start_shipper=start_shipper,
            handle_signals=handle_signals,
            exit_timeout=exit_timeout,
            flush_timeout=flush_timeout,
            shipper_nice=shipper_nice,
            shipper_cpus=shipper_cpus,  # type: ignore[arg-type]  # validated into a frozenset
        )
        self.lake_root = resolve_lake_root(lake_root)
        self.spool_dir = Path(spool_dir).resolve() if spool_dir is not None else default_spool_dir(self.lake_root)
        options = storage_options if storage_options is not None else storage_options_from_env()
        self.storage_options = dict(options) if options else None
        self.identity = spool_identity(self.lake_root, self.storage_options)
        # Refuse a spool that feeds another table now, before log() accepts a single event for it.
        check_spool(self.spool_dir, self.identity)
        self.overflow = self.config.overflow
        self.max_buffer_events = self.config.max_buffer_events
        self.batch_size = self.config.batch_size
        self.sync_interval = self.config.sync_interval
        self.exit_timeout = self.config.exit_timeout
        self.flush_timeout = self.config.flush_timeout
        self._supervisor = ShipperSupervisor(
            self.spool_dir,
            self.lake_root,
            self.storage_options,
            enabled=self.config.start_shipper,
            nice=self.config.shipper_nice,
            cpus=self.config.shipper_cpus,
        )
        self._reset_writer()
        process_hooks.register(self)
        if self.config.handle_signals:
            process_hooks.install_sigterm_handler()

    @property
    def start_shipper(self) -> bool:
        return self._supervisor.enabled

    @start_shipper.setter
    def start_shipper(self, enabled: bool) -> None:
        self._supervisor.enabled = enabled

    # ------------------------------------------------------------------ state
    def _reset_writer(self) -> None:
        """Fresh identity and empty books: at construction, and in a forked child."""
        self.writer_id = new_writer_id()
        self._origin_base = origin_base(self.writer_id)
        self._buffer: deque[tuple[int, object]] = deque()
        self._sequence = itertools.count(1)
        self._dropped = itertools.count()
        self._refused_closed = itertools.count()
        self._drops_reported = 0
        self._drop_window: tuple[float, float] | None = None
        self._faults = Faults()
        self._writer_dir = self.spool_dir / WRITERS / self.writer_id
        self._writer_lock = FileLock(self._writer_dir / "lock")
        self._book = SegmentBook(self.spool_dir, self._writer_dir, fsync=self.config.fsync)
        self._flusher = Flusher(
            self._buffer,
            self._book,
            self.config,
            self._faults,
            on_room=self._report_drops,
            between_cycles=self._check_shipper,
        )
        self._started = False
        self._closed = False

    @property
    def started(self) -> bool:
        return self._started

    # ------------------------------------------------------------------ the hot path
    def log(self, event: RiskEvent) -> bool:
        """Accept ``event`` for bronze; O(1), never blocks, never raises.

        Returns False when the event was refused: the backlog is full under ``drop_newest``
        (counted in ``dropped`` and reported as a ``risk_events_dropped`` event once the sink
        recovers), or the logger is closed (counted in ``refused_after_close``; a closed logger
        never writes again -- create a new one). A malformed event is accepted: it lands with its
        problems described, and silver quarantines it.
        """
        try:
            if self._closed:
                next(self._refused_closed)
                return False
            buffer = self._buffer
            if len(buffer) >= self.max_buffer_events and not self._make_room():
                return False
            sequence = next(self._sequence)
            try:
                if event._origin is not None:  # logged before: this one is a copy with the same id
                    event = _copy_for_relog(event)
                event._origin = self._origin_base + sequence
            except AttributeError:
                pass  # not a RiskEvent: it lands as a row whose ingest error says what it was
            buffer.append((sequence, event))
            if len(buffer) >= self.batch_size:
                flusher = self._flusher
                if not flusher.wake_requested:  # wake it once per cycle, not once per event
                    flusher.wake_requested = True
                    flusher.wake.set()
            return True
        except Exception:  # never into trading code
            self._faults.internal_errors += 1
            return False

    def _make_room(self) -> bool:
        """The backlog is full: apply the overflow policy; True if the new event can go in.

        Under ``drop_oldest`` the flusher may empty the backlog between the length check and the
        ``popleft()``: then nothing was discarded, nothing is counted, and the event goes in.
        """
        if self.overflow is OverflowPolicy.DROP_OLDEST:
            try:
                self._buffer.popleft()
            except IndexError:
                return True
            self._count_drop()
            return True
        self._count_drop()
        return False

    def _count_drop(self) -> None:
        next(self._dropped)
        now = time.time()
        window = self._drop_window
        self._drop_window = (window[0] if window else now, now)

    def _report_drops(self) -> None:
        """The sink has room again (the flusher calls this, under its I/O lock): record how many
        events were dropped meanwhile, as an event."""
        count = _peek(self._dropped) - self._drops_reported
        if count <= 0:
            return
        self._drops_reported += count
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

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> RiskEventLogger:
        """Claim the spool for this lake, start the flusher thread and (if needed) the shipper.

        Raises :class:`~risk_runtime.spool_identity.SpoolMismatchError` (a ``ValueError``) when the
        spool feeds another table (checked at construction too); nothing is written then, and every later
        ``log()`` is refused and counted (``refused_after_close``).
        """
        if self._closed:
            raise RuntimeError("this RiskEventLogger is closed; create a new one")
        if self.config.handle_signals:
            process_hooks.install_sigterm_handler()
        if self._started:
            return self
        try:
            claim_spool(self.spool_dir, self.identity)
        except ValueError as exc:  # another table claimed the spool since construction: never write to it
            self._faults.last_error = str(exc)
            self._closed = True  # log() refuses (and counts) from now on; what it took before is reported
            log.error(
                "risk event logger refused to start, %d accepted event(s) not written: %s", len(self._buffer), exc
            )
            raise
        self._create_writer_dir()
        # On this thread, before the flusher exists: an import running on a background thread when the
        # process forks leaves the child's import lock held forever (see encoding.warm_up).
        warm_up()
        self._started = True
        self._flusher.start()
        self._supervisor.ensure_running()
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
        """Asyncio twin of :meth:`start` (the design guide's ``await logger.initialize()``).

        The SIGTERM hook is installed here, on the event loop's thread (normally the main thread),
        before ``start()`` runs on a worker thread, so the asyncio path is covered like the sync one.
        """
        if self.config.handle_signals:
            process_hooks.install_sigterm_handler()
        await asyncio.to_thread(self.start)

    def flush(self, timeout: float | None = None) -> Awaitable[bool] | _Done:
        """Land every event accepted so far in bronze; True when done, False if not within ``timeout``.

        ``timeout`` defaults to ``flush_timeout`` (30 s): a lake that is down never hangs the caller,
        and False says so. Inside a running event loop this returns an awaitable and waits in a
        worker thread (``await logger.flush()``); elsewhere it blocks and returns the result (also
        awaitable).
        """
        if self.config.handle_signals:
            process_hooks.install_sigterm_handler()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return _Done(self.flush_blocking(timeout))
        return loop.run_in_executor(None, self.flush_blocking, timeout)

    def flush_blocking(self, timeout: float | None = None) -> bool:
        """Write the backlog to the spool, seal it, and wait until bronze holds it (or ``timeout``)."""
        wait = self.flush_timeout if timeout is None else timeout
        if not self._started:
            if not self._buffer or self._closed:
                return not self._buffer
            self.start()
        target = _peek(self._sequence) - 1
        deadline = time.monotonic() + wait
        flusher = self._flusher
        flusher.ensure_running()
        flusher.cycle(seal=True)
        while True:
            if self._durable_through(target):
                return True
            if time.monotonic() >= deadline:
                return False
            if self._buffer or self._book.has_open:
                flusher.cycle(seal=True)
            self._supervisor.ensure_running()
            time.sleep(0.005)

    def _durable_through(self, sequence: int) -> bool:
        """Every event up to ``sequence`` is in bronze or was dropped: none is buffered, in flight or pending."""
        with self._flusher.io_lock:  # the flusher moves events from the backlog to the spool under this lock
            if any(seq <= sequence for seq, _ in list(self._buffer)):
                return False
        return self._book.durable_through(sequence)

    def close(self, timeout: float | None = None) -> bool:
        """Flush and stop; True if everything was committed.

        Waits at most ``timeout`` seconds (default: ``exit_timeout``), so a lake that is down never
        holds a process's shutdown hostage. Whatever is not committed by then is already on local
        disk, where the shipper (which outlives this process) or the next logger commits it. Later
        ``log()`` calls return False and are counted (``refused_after_close``).
        """
        if self._closed:
            return True
        wait = self.exit_timeout if timeout is None else timeout
        landed = self.flush_blocking(wait) if (self._started or self._buffer) else True
        self._closed = True
        self._flusher.stop()
        if self._started:
            self._flusher.drain()
            self._writer_lock.release()
        self._started = False
        process_hooks.unregister(self)
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
        book = self._book
        book.refresh()
        status = self._supervisor.status()
        if status is not None and status.lake != self.lake_root:
            status = None
        held_back = len(status.held_back) if status else 0
        faults = self._faults
        last_error = faults.last_error
        if last_error is None and status is not None and status.last_error:
            last_error = f"shipper: {status.last_error}"
        exited = self._supervisor.exited_with()
        if last_error is None and exited is not None and not self._supervisor.running():
            last_error = f"shipper exited with code {exited}; see {self.spool_dir / 'shipper.log'}"
        if last_error is None and held_back and status is not None:
            last_error = f"shipper holds back {held_back} segment(s): {status.held_back[0]}"
        if last_error is None and book.damage_note:
            last_error = book.damage_note
        return LoggerStats(
            writer_id=self.writer_id,
            accepted=_peek(self._sequence) - 1,
            dropped=_peek(self._dropped),
            buffered=len(self._buffer),
            spooled=book.spooled,
            committed=book.committed,
            spool_bytes=book.pending_bytes(),
            spool_errors=faults.spool_errors,
            last_error=last_error,
            shipper_running=self._supervisor.running(),
            internal_errors=faults.internal_errors,
            refused_after_close=_peek(self._refused_closed),
            damaged=book.damaged,
            held_back_segments=held_back,
            flusher_running=self._flusher.is_alive(),
            oldest_unshipped_age=self._oldest_unshipped_age(),
        )

    def _oldest_unshipped_age(self) -> float | None:
        oldest = self._book.oldest_written_at()
        with contextlib.suppress(IndexError, AttributeError, TypeError, ValueError, OverflowError):
            logged = self._buffer[0][1].timestamp.timestamp()  # type: ignore[attr-defined]
            oldest = logged if oldest is None else min(oldest, logged)
        return None if oldest is None else max(0.0, time.time() - oldest)

    # ------------------------------------------------------------------ the flusher's calls (risk_runtime.flusher)
    def _check_shipper(self) -> None:
        """Between flusher cycles: restart the shipper if it is gone (at most once a check interval)."""
        if time.monotonic() - self._supervisor.last_check >= _SHIPPER_CHECK_INTERVAL:
            self._supervisor.ensure_running()

    def _cycle(self, *, seal: bool, lock_timeout: float = -1) -> None:
        """One flusher cycle on the caller's thread (see :meth:`Flusher.cycle`)."""
        self._flusher.cycle(seal=seal, lock_timeout=lock_timeout)

    # ------------------------------------------------------------------ process events (process_hooks)
    def _after_fork_in_child(self) -> None:
        """A forked child gets its own writer: new id, new sequence, none of the parent's backlog.

        The parent's pending events stay the parent's to write; the child closes the descriptors
        it inherited (without unlocking the parent's files) and starts its own flusher.
        """
        was_started = self._started
        self._writer_lock.forget()
        self._book.forget()
        self._supervisor.forget()
        self._reset_writer()  # a new Flusher too: new lock and events, no thread until start()
        if was_started:
            self.start()

    def _on_sigterm(self) -> None:
        """Put the backlog on disk now; the shipper commits it after this process is gone."""
        if self._started:
            self._flusher.cycle(seal=True, lock_timeout=2.0)

    def _at_exit(self) -> None:
        if self._started or self._buffer:
            self.close(timeout=self.exit_timeout)


def _copy_for_relog(event: RiskEvent) -> RiskEvent:
    """An event logged a second time lands again under the id it already has (silver keeps one copy)."""
    return msgspec.structs.replace(event, event_id=event.event_id, _origin=None)


def _peek(counter: itertools.count[int]) -> int:
    """The next value of an ``itertools.count`` without consuming it (read from its repr)."""
    return int(repr(counter)[len("count(") : -1])
