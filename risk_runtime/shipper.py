"""The shipper: a separate process that commits spooled events to the bronze Delta table.

Why a process and not a thread in the trading process: a Delta commit costs 10-30 ms of Parquet
encoding and I/O, and a writer thread inside the trading process measurably raised a 1 ms event
loop's p99 lateness (0.1 ms to ~1.7 ms, see the field notes). Here the trading process only
appends Arrow frames to a local file; this process, started with ``subprocess`` (fork+exec, so
nothing of the parent's deltalake state is inherited), does everything else.

One shipper runs per spool directory (``shipper.lock``) and serves every writer in it, so several
loggers of one lake on one machine coalesce into one commit per cycle instead of racing each
other. It exits once no live writer remains and nothing is pending; the next logger that starts,
or ``python -m risk_runtime.shipper --spool DIR --once``, picks up whatever a crash left behind.

**Only its own table.** The spool's manifest (:mod:`risk_runtime.spool_identity`) names the table
it feeds; a shipper started for another lake refuses to commit anything, says why, exits non-zero.

Each cycle, per writer, segments in number order: segments whose number the table already
records (``txn`` version) are deleted unread; the rest are read and committed in one Delta commit
carrying ``Transaction(writer_id, last_segment)`` for every writer in it; then their files are
deleted. A crash anywhere in between is repaired by the next cycle's version check: nothing is
lost and nothing lands twice. While it runs, the next commit is read and converted while the previous
one is written on a second thread (the Delta write releases the GIL): one write in flight, the next
submitted only once it returned, and a batch prepared on top of a write that failed is dropped, so a
later segment's transaction never records an earlier one as landed.

**Whole segments, or nothing.** A segment with a frame of a schema version this build does not know
(newer than :data:`~risk_runtime.events.SCHEMA_VERSION`), or with a column bronze's schema here does
not have, is held back: left in the spool with that writer's later segments, reported in the log
and in ``shipper.status.json`` (which the logger's ``stats()`` shows). A shipper of a build that
knows it ships it later, every column included. Nothing is ever cut down to fit.

**Damage costs only itself.** Damaged bytes of a segment (bad checksum or magic, a truncated
frame, bytes after the seal record, a missing seal record, an empty sealed segment) are written to
``corrupt/<writer>/<segment>.at-<offset>.bin`` with a ``.reason`` file beside them; the segment's
intact frames are committed as usual. A missing segment number is reported the same way
(``.missing.reason``). ``--once`` ships everything shippable in one pass, prints what it set
aside and where, and exits 1 if it set anything aside or held anything back.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from risk_runtime import encoding, events
from risk_runtime.contract import COMMIT_EVENT_DATES, COMMIT_WRITERS, format_event_dates
from risk_runtime.shipper_bell import IDLE_POLL, Bell, next_poll
from risk_runtime.spool import (
    CORRUPT,
    SHIPPER_LOCK,
    FileLock,
    Segment,
    SegmentContents,
    encode_seal,
    is_locked,
    list_segments,
    read_segment,
    segment_name,
    writer_dirs,
)
from risk_runtime.spool_identity import SpoolMismatchError, claim_spool, spool_identity
from risk_runtime.storage import storage_options_from_env
from risk_runtime.supervision import ShipperStatus
from risk_runtime.table import RiskEventsTable

log = logging.getLogger("risk_runtime.shipper")

_STATUS_HEARTBEAT: Final = 5.0


@dataclass
class ShipStats:
    commits: int = 0
    events: int = 0
    skipped_segments: int = 0
    recovered_writers: int = 0
    corrupt_segments: int = 0
    errors: int = 0
    last_error: str | None = None
    set_aside: list[str] = field(default_factory=list)
    held_back: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Pending:
    writer_id: str
    writer_dir: Path
    segments: list[Segment]
    alive: bool


@dataclass
class _Batch:
    """One commit's worth: the converted rows, each writer's last segment in it, and the segment files."""

    pending: list[_Pending]
    frames: list[pa.Table] = field(default_factory=list)
    transactions: dict[str, int] = field(default_factory=dict)
    shipped: list[Segment] = field(default_factory=list)
    events: int = 0
    deferred: bool = False
    """A writer was left for the next cycle: it needs the table, which the commit in flight was using."""
    committed: bool = False


class Shipper:
    """Commits the sealed segments of every writer in ``spool_dir`` to bronze."""

    def __init__(
        self,
        spool_dir: Path,
        lake_root: str | None = None,
        *,
        storage_options: Mapping[str, str] | None = None,
        max_commit_events: int = 200_000,
    ) -> None:
        self.spool_dir = Path(spool_dir)
        self.table = RiskEventsTable(lake_root, storage_options=storage_options)
        self.identity = spool_identity(self.table.lake_root, self.table.storage_options)
        self.max_commit_events = max_commit_events
        self.stats = ShipStats()
        self._next_expected: dict[str, int] = {}
        self._landed: dict[str, int] = {}
        """Each writer's last segment in bronze: read from the table when the writer is first seen, then
        kept from this shipper's own commits (one shipper serves a spool, and only it commits its writers)."""
        self._status = ShipperStatus(pid=os.getpid(), lake=self.table.lake_root)
        self._status_written = 0.0

    def claim(self) -> None:
        """Refuse (:class:`SpoolMismatchError`) a spool whose manifest names another table."""
        claim_spool(self.spool_dir, self.identity)

    # ------------------------------------------------------------------ one cycle
    def ship_once(self) -> int:
        """Commit everything that is ready; returns the number of events committed."""
        batch = self._prepare()
        if batch is not None and batch.transactions:
            self._write(batch)
        return self._land(batch)

    def _prepare(self, in_flight: _Batch | None = None) -> _Batch | None:
        """Read and convert every shippable segment into one commit's worth (None: nothing pending).

        With ``in_flight`` -- a commit another thread is writing -- its segments are left alone, the next
        segment of each of its writers follows on from it, and the table is not touched (that thread is using
        it): what each writer has landed comes from :attr:`_landed`. A writer seen for the first time needs
        the table: it waits for a cycle with nothing in flight (``deferred`` asks for one).
        """
        pending = self._collect()
        if not pending:
            self._report()
            return None
        deferred = False
        if in_flight is None:
            table = self.table.ensure_exists()
            table.update_incremental()
            for item in pending:
                self._landed[item.writer_id] = table.transaction_version(item.writer_id) or 0
        elif any(item.writer_id not in self._landed for item in pending):
            pending = [item for item in pending if item.writer_id in self._landed]
            deferred = True
        flying = in_flight.transactions if in_flight is not None else {}
        batch = _Batch(pending=pending, deferred=deferred)
        for item in pending:
            landed = self._landed[item.writer_id]
            skip = max(landed, flying.get(item.writer_id, 0))
            expected = max(skip, self._next_expected.get(item.writer_id, 1) - 1) + 1
            self.stats.held_back.pop(item.writer_id, None)
            for segment in item.segments:
                if segment.number <= landed:  # committed before a crash: delete, don't resend
                    segment.path.unlink(missing_ok=True)
                    self.stats.skipped_segments += 1
                    continue
                if segment.number <= skip:  # in the commit being written
                    continue
                if batch.events >= self.max_commit_events:
                    break
                contents = read_segment(segment.path, sealed=True)
                refusal = _unshippable(contents)
                if refusal is not None:
                    self._hold_back(item, segment, refusal)
                    break  # later segments would leave a hole in the transaction order: wait here
                if segment.number > expected:
                    self._report_missing(item.writer_dir, expected, segment.number)
                table_part = pa.Table.from_batches(contents.batches) if contents.batches else None
                if contents.damage:
                    self._set_aside(item.writer_dir, segment, contents)
                if table_part is not None and table_part.num_rows:
                    batch.frames.append(encoding.finish_bronze(table_part, writer_id=item.writer_id))
                    batch.events += table_part.num_rows
                batch.transactions[item.writer_id] = segment.number
                batch.shipped.append(segment)
                expected = segment.number + 1
                self._next_expected[item.writer_id] = expected
        return batch

    def _write(self, batch: _Batch) -> None:
        """The Delta commit of ``batch`` (its rows, if any, and every writer's last segment). Touches only the
        table, so it can run on another thread while the next batch is prepared: the write releases the GIL."""
        data = pa.concat_tables(batch.frames, promote_options="permissive") if batch.frames else None
        if data is not None and data.num_rows:
            self.table.append(
                data,
                transactions=batch.transactions,
                metadata={
                    COMMIT_EVENT_DATES: format_event_dates(pc.unique(data.column("event_date")).to_pylist()),
                    COMMIT_WRITERS: len(batch.transactions),
                },
            )
            batch.committed = True

    def _land(self, batch: _Batch | None) -> int:
        """After :meth:`_write` returned: delete the committed segments and count them; returns the events."""
        if batch is None:
            return 0
        if batch.transactions:
            if batch.committed:
                self.stats.commits += 1
                for writer_id, number in batch.transactions.items():
                    self._landed[writer_id] = max(self._landed.get(writer_id, 0), number)
            for segment in batch.shipped:
                segment.path.unlink(missing_ok=True)
            self.stats.events += batch.events
        self._remove_finished_writers(batch.pending)
        self._status.last_error, self._status.error_since = None, None
        self._report()
        return batch.events

    def _collect(self) -> list[_Pending]:
        pending = []
        for writer_dir in writer_dirs(self.spool_dir):
            alive = is_locked(writer_dir / "lock")
            segments = list_segments(writer_dir)
            if not alive:
                segments = [self._seal_abandoned(writer_dir, s) if not s.sealed else s for s in segments]
            ready = [s for s in segments if s.sealed]
            if ready or not alive:
                pending.append(_Pending(writer_dir.name, writer_dir, ready, alive))
        return pending

    def _seal_abandoned(self, writer_dir: Path, segment: Segment) -> Segment:
        """A dead writer's open segment: set any damaged tail aside, then seal what is intact for shipping."""
        contents = read_segment(segment.path, sealed=False)
        if contents.damage:
            self._set_aside(writer_dir, segment, contents, note="the writer stopped while writing it")
            with open(segment.path, "r+b") as handle:
                handle.truncate(contents.valid_bytes)
        if contents.seal is None:
            with open(segment.path, "ab") as handle:  # sealed by us, for the writer that cannot
                handle.write(encode_seal(len(contents.frames), contents.events))
                handle.flush()
                os.fsync(handle.fileno())
        sealed = writer_dir / segment_name(segment.number, sealed=True)
        os.rename(segment.path, sealed)
        self.stats.recovered_writers += 1
        log.info("recovered %d events from %s of a writer that stopped", contents.events, segment.path.name)
        return Segment(segment.number, sealed, sealed=True)

    # ------------------------------------------------------------------ what cannot ship whole
    def _set_aside(self, writer_dir: Path, segment: Segment, contents: SegmentContents, note: str = "") -> None:
        """Copy each damaged byte range to ``corrupt/`` with a reason file; the intact frames ship."""
        target = self.spool_dir / CORRUPT / writer_dir.name
        target.mkdir(parents=True, exist_ok=True)
        data = segment.path.read_bytes()
        name = segment_name(segment.number, sealed=True)
        for damage in contents.damage:
            stem = target / f"{name}.at-{damage.offset}"
            stem.with_name(stem.name + ".bin").write_bytes(data[damage.offset : damage.offset + damage.length])
            reason = {
                "writer_id": writer_dir.name,
                "segment": segment.number,
                "offset": damage.offset,
                "length": damage.length,
                "reason": damage.reason,
                "note": note,
                "segment_frames_shipped": len(contents.frames),
                "segment_events_shipped": contents.events,
                "segment_seal_record": contents.seal,
                "at": datetime.now(UTC).isoformat(),
            }
            reason_path = stem.with_name(stem.name + ".reason")
            reason_path.write_text(json.dumps(reason, indent=2) + "\n")
            self._remember(str(reason_path))
            log.error(
                "set aside %d damaged bytes of %s/%s at offset %d (%s) in %s; its %d intact frame(s) ship",
                damage.length, writer_dir.name, name, damage.offset, damage.reason, target, len(contents.frames),
            )  # fmt: skip
        self.stats.corrupt_segments += 1

    def _report_missing(self, writer_dir: Path, first: int, present: int) -> None:
        target = self.spool_dir / CORRUPT / writer_dir.name
        target.mkdir(parents=True, exist_ok=True)
        missing = list(range(first, present))
        reason_path = target / f"{segment_name(first, sealed=True)}.missing.reason"
        reason_path.write_text(
            json.dumps(
                {
                    "writer_id": writer_dir.name,
                    "missing_segments": missing,
                    "reason": f"segment(s) {missing[0]}..{missing[-1]} missing from the spool: their events are lost",
                    "at": datetime.now(UTC).isoformat(),
                },
                indent=2,
            )
            + "\n"
        )
        self._remember(str(reason_path))
        log.error("writer %s: segment(s) %s missing from the spool (see %s)", writer_dir.name, missing, reason_path)

    def _hold_back(self, item: _Pending, segment: Segment, why: str) -> None:
        message = f"{item.writer_id}/{segment.path.name}: {why}"
        if self.stats.held_back.get(item.writer_id) != message:
            log.warning("left %s in the spool: %s", segment.path, why)
        self.stats.held_back[item.writer_id] = message

    def _remember(self, path: str) -> None:
        if path in self.stats.set_aside:
            return
        self.stats.set_aside.append(path)
        self._status.set_aside = [*self._status.set_aside, path][-100:]

    def _report(self, *, force: bool = False) -> None:
        status = self._status
        status.held_back = sorted(self.stats.held_back.values())
        if force or time.monotonic() - self._status_written >= _STATUS_HEARTBEAT or self._status_changed():
            status.write(self.spool_dir)
            self._status_written = time.monotonic()
            self._last_written = (status.last_error, tuple(status.held_back), len(status.set_aside))

    def _status_changed(self) -> bool:
        status = self._status
        now = (status.last_error, tuple(status.held_back), len(status.set_aside))
        return now != getattr(self, "_last_written", None)

    def record_error(self, exc: BaseException) -> None:
        self.stats.errors += 1
        self.stats.last_error = f"{type(exc).__name__}: {exc}"
        self._status.last_error = self.stats.last_error
        self._status.error_since = self._status.error_since or time.time()
        self._report()

    def _remove_finished_writers(self, pending: Sequence[_Pending]) -> None:
        for item in pending:
            if not item.alive and not list_segments(item.writer_dir):
                shutil.rmtree(item.writer_dir, ignore_errors=True)

    # ------------------------------------------------------------------ the loop
    def has_work(self) -> bool:
        return any(
            (list_segments(d) and d.name not in self.stats.held_back) or is_locked(d / "lock")
            for d in writer_dirs(self.spool_dir)
        )

    def run(
        self,
        *,
        poll_interval: float = 0.05,
        idle_poll: float = IDLE_POLL,
        idle_exit: float | None = 5.0,
        max_backoff: float = 5.0,
    ) -> None:
        """Ship until no writer is alive and nothing shippable is pending for ``idle_exit`` seconds.

        Between looks it waits on the spool's bell (:mod:`risk_runtime.shipper_bell`): ``poll_interval``
        after work, doubling while idle up to ``idle_poll`` (:data:`~risk_runtime.shipper_bell.IDLE_POLL`), cut short
        whenever a writer rings after sealing a segment.
        """
        backoff = wait = poll_interval
        idle_since: float | None = None
        bell = Bell(self.spool_dir)
        writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bronze-commit")
        in_flight: tuple[Future[None], _Batch] | None = None
        try:
            while True:
                try:
                    shipped, in_flight = self._overlapped_cycle(writer, in_flight)
                    backoff = poll_interval
                except Exception as exc:  # the lake is unwritable or missing: keep everything, retry
                    in_flight = None
                    self._landed.clear()  # what landed is read from the table again
                    self.record_error(exc)
                    log.warning("commit failed, retrying in %.2fs: %s", backoff, self.stats.last_error)
                    time.sleep(backoff)
                    backoff = min(max_backoff, backoff * 2)
                    continue
                if shipped or in_flight is not None:
                    idle_since, wait = None, poll_interval
                    continue
                if idle_exit is not None and not self.has_work():
                    idle_since = idle_since or time.monotonic()
                    if time.monotonic() - idle_since >= idle_exit:
                        return
                else:
                    idle_since = None
                rang = bell.wait(wait)
                wait = next_poll(wait, rang=rang, fastest=poll_interval, slowest=idle_poll)
        finally:
            if in_flight is not None:  # a commit still being written: let it finish, and count it if it landed
                with contextlib.suppress(Exception):
                    in_flight[0].result()
                    self._land(in_flight[1])
            writer.shutdown(wait=True)
            bell.close()

    def _overlapped_cycle(
        self, writer: ThreadPoolExecutor, in_flight: tuple[Future[None], _Batch] | None
    ) -> tuple[int, tuple[Future[None], _Batch] | None]:
        """Prepare the next commit while the previous one is written on ``writer``'s thread.

        Converting segments holds the GIL; a Delta write mostly does not (Parquet encoding and I/O in Rust).
        So under load the two overlap, on two cores when there are two. The order of commits is kept: the
        next is submitted only after the previous one returned, and if that one failed, the batch prepared
        on top of it is dropped (its segments are still in the spool, and are prepared again once the table
        says what landed). Returns the events landed in this cycle and the commit now in flight.
        """
        try:
            batch = self._prepare(in_flight[1] if in_flight is not None else None)
        finally:
            landed = 0
            if in_flight is not None:
                in_flight[0].result()  # raises the write's error: the batch prepared on top of it is dropped
                landed = self._land(in_flight[1])
        if batch is None or not batch.transactions:
            return landed + self._land(batch), None
        if batch.deferred:  # a new writer needs the table: commit this batch now, and read the table next cycle
            self._write(batch)
            return landed + self._land(batch), None
        return landed, (writer.submit(self._write, batch), batch)


def _unshippable(contents: SegmentContents) -> str | None:
    """Why a segment cannot land whole in this build's bronze, or None."""
    known = events.SCHEMA_VERSION
    for frame in contents.frames:
        if frame.refusal is not None:
            return f"{frame.refusal}; this shipper reads MessagePack (1) and Arrow frames"
        if frame.schema_version > known:
            return f"frame of schema version {frame.schema_version}; this shipper knows versions up to {known}"
        for batch in frame.batches:
            if batch.schema.equals(encoding.SPOOL_SCHEMA):  # what this build converts frames to: all known
                continue
            bronze = set(encoding.BRONZE_SCHEMA.names)
            unknown = [n for n in batch.schema.names if n not in bronze]
            if unknown:
                return f"frame with column(s) {', '.join(unknown)} that bronze's schema here does not have"
    return None


def lower_priority(nice: int) -> None:
    """Run this process ``nice`` steps below normal CPU priority, also against other sessions.

    ``os.nice`` alone ranks the process only against others of its own scheduling group. Linux's
    autogroup scheduling (on by default in most distributions) makes every session a group of its own,
    shared fairly with the others whatever its members' nice values -- and the logger starts the
    shipper in a new session. So the shipper also sets its session group's nice
    (``/proc/self/autogroup``; raising it needs no privilege). Called before the first Delta write,
    so every thread the writer starts inherits the priority. Says so in the shipper's log if the
    system refuses either step; shipping goes on at normal priority then.
    """
    try:
        os.nice(nice)
    except OSError as exc:
        log.warning("could not lower the shipper's CPU priority: %s", exc)
    autogroup = Path("/proc/self/autogroup")
    if autogroup.exists():
        try:
            autogroup.write_text(str(nice))
        except OSError as exc:
            log.warning("could not lower the shipper's session group priority: %s", exc)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m risk_runtime.shipper", description=__doc__.splitlines()[0])
    parser.add_argument("--spool", required=True, type=Path, help="the spool directory to ship")
    parser.add_argument("--lake", default=None, help="lake root (default: $RISK_LAKE_ROOT or data/lake)")
    parser.add_argument("--once", action="store_true", help="ship what is there (recovery) and exit")
    parser.add_argument("--idle-exit", type=float, default=5.0, help="exit after this many idle seconds")
    parser.add_argument("--poll-interval", type=float, default=0.05, help="seconds between looks while busy")
    parser.add_argument(
        "--idle-poll", type=float, default=IDLE_POLL, help="longest wait between looks while idle, unless rung"
    )
    parser.add_argument(
        "--nice", type=int, default=0, choices=range(20), metavar="0..19", help="run this far below normal CPU priority"
    )
    parser.add_argument(
        "--cpus", type=_cpu_list, default=None, metavar="N[,N...]", help="run only on these CPUs (default: inherited)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(process)d %(levelname)s %(message)s")
    if args.nice:
        lower_priority(args.nice)
    args.spool.mkdir(parents=True, exist_ok=True)
    lock = FileLock(args.spool / SHIPPER_LOCK)
    if not lock.acquire(blocking=args.once):
        return 0  # another shipper serves this spool
    try:
        shipper = Shipper(args.spool, args.lake, storage_options=storage_options_from_env())
        try:
            shipper.claim()
        except SpoolMismatchError as exc:
            shipper.record_error(exc)
            print(f"refusing to ship: {exc}", file=sys.stderr, flush=True)
            return 2
        if args.cpus is not None:
            try:
                os.sched_setaffinity(0, args.cpus)
            except (OSError, ValueError) as exc:  # a CPU outside this process's cpuset: the operator asked for it
                shipper.record_error(OSError(f"cannot run on CPUs {sorted(args.cpus)}: {exc}"))
                print(f"refusing to ship: {shipper.stats.last_error}", file=sys.stderr, flush=True)
                return 2
        log.info("shipping %s to %s", args.spool, shipper.table.uri)
        if args.once:
            return _recover(shipper)
        shipper.run(poll_interval=args.poll_interval, idle_poll=args.idle_poll, idle_exit=args.idle_exit)
        log.info("done at %s: %s", datetime.now(UTC).isoformat(), shipper.stats)
    finally:
        lock.release()
    return 0


def _cpu_list(text: str) -> set[int]:
    try:
        cpus = {int(part) for part in text.split(",")}
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected CPU numbers separated by commas, got {text!r}") from None
    if not cpus or min(cpus) < 0:
        raise argparse.ArgumentTypeError(f"expected CPU numbers from 0 up, got {text!r}")
    return cpus


def _recover(shipper: Shipper) -> int:
    """One pass over everything shippable; say what was set aside or held back; 1 if anything was."""
    while shipper.ship_once():
        pass
    stats = shipper.stats
    print(f"shipped {stats.events} event(s) in {stats.commits} commit(s) to {shipper.table.uri}", flush=True)
    for path in stats.set_aside:
        print(f"set aside: {path}", flush=True)
    for message in stats.held_back.values():
        print(f"left in the spool: {message}", flush=True)
    return 1 if stats.set_aside or stats.held_back else 0


class _PandasRefused:
    """A meta-path finder that refuses ``pandas`` (and its submodules) to this process.

    Why: pyarrow asks, on its first conversion of Python values, whether they are pandas objects, and
    imports pandas to find out when it is installed (it is, for the pipeline): 0.3 s of CPU with
    bytecode caches, 1.1 s without (measured), in a process that never sees a pandas object, spent
    while a trading process streams events on the other core. pyarrow takes the ``ImportError`` as
    "pandas is not installed" and converts lists exactly as before.
    """

    @staticmethod
    def find_spec(name: str, path: object = None, target: object = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError(f"the shipper process does not use {name}", name=name)


def refuse_pandas() -> None:
    """Keep ``pandas`` out of this process (see :class:`_PandasRefused`); only the shipper's entry point calls it."""
    if "pandas" not in sys.modules and _PandasRefused not in sys.meta_path:
        sys.meta_path.insert(0, _PandasRefused)  # type: ignore[arg-type]


if __name__ == "__main__":
    refuse_pandas()
    sys.exit(main())
