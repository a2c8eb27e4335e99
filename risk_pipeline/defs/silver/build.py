"""Building silver for a range of UTC days: each day read, validated and replaced on its own.

The silver asset and the pipeline benchmark both run this, so what is measured is what runs.

* **A few days at a time.** Reading a day, validating it and writing it happen mostly inside polars and
  delta-rs, outside the GIL, so :data:`SILVER_THREADS` worker threads build consecutive days side by
  side. Each commits its own day with a predicate overwrite of a different partition; delta-rs rebases
  such commits onto one another (and :meth:`Lake.replace_days` retries the rare one it gives up on).
  At most that many days are in memory, however long the range.
* **Quarantine in few commits.** A day refuses a handful of rows, so its quarantine waits in memory and
  the range's goes in one predicate overwrite (sooner, if it grows past :data:`QUARANTINE_FLUSH_ROWS`).
  A run that fails writes the quarantine of the days it finished before it raises.
* **Each row built once, under its home day.** A day reads its bronze partition plus the rows filed under
  it from elsewhere (events outside the time window, filed under the day they were ingested; see
  :mod:`.window`), and leaves out its own rows filed elsewhere.
* **event_id unique across days, in day order.** Days are validated side by side, but each one meets the
  ids of every earlier day before it is written: a short in-order step per day against
  :class:`~.event_index.EventIdLedger` (the index of the days outside the range, looked up by a filtered scan, plus the
  range's days resolved so far), then silver is written; the days' ``silver/event_id_index`` rows go
  with the range's quarantine, in few commits.
* **Checks from what was written.** The accounting identity uses the rows the Delta log says each day
  now holds, so a replace that left old rows behind breaks it. Duplicates are looked for in each day's
  rows as they are written, and against other days through the index; sequence gaps from each day's runs
  of sequence numbers (plus the day either side of the range, read back while the range is built), never by
  re-reading the range.

An interrupted range is repaired by running it again: every write replaces whole days.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import islice
from typing import Final

import dagster as dg
import polars as pl

from risk_pipeline.defs.constants import BRONZE_RISK_EVENTS
from risk_pipeline.defs.silver.checks import (
    GAPS_SCHEMA,
    accounting_check,
    duplicate_check,
    duplicate_ids,
    quarantine_rate_check,
    read_sequence_runs,
    sequence_gap_check,
    sequence_gaps,
    sequence_runs,
)
from risk_pipeline.defs.silver.event_index import EVENT_ID_INDEX, INDEX_SCHEMA, EventIdLedger, days_out_of_step
from risk_pipeline.defs.silver.schema import QUARANTINE, QUARANTINE_SCHEMA, SILVER, SILVER_SCHEMA
from risk_pipeline.defs.silver.transform import build_silver, refuse_reused_ids
from risk_pipeline.defs.silver.window import home_day, stray_partitions, strays_predicate
from risk_pipeline.lake import DAY_COLUMN, Lake, commit_metadata, compact, days_between
from risk_runtime.events import BRONZE_SCHEMA

_DAY: Final = timedelta(days=1)
COUNT_KEYS: Final = ("bronze_rows", "silver_rows", "quarantine_rows", "duplicates_removed")
_RUN_COLUMNS: Final = ["writer_id", "sequence", DAY_COLUMN]

SILVER_THREADS: Final = 3
"""Days built at once. A 60-day, 10M-event range on 2 cores: 17.6 s on two threads, 16.7 s on three (a
thread waiting for the GIL leaves its core to the others), for ~300 MB more peak memory."""

QUARANTINE_FLUSH_ROWS: Final = 250_000
"""Quarantined rows held before they are written: bounds memory on a range where everything is refused."""
INDEX_FLUSH_ROWS: Final = 2_000_000
"""``silver/event_id_index`` rows held before they are written (20 bytes each): a range's index goes in few
commits, like its quarantine, instead of a second commit beside every silver day."""

Stage = Callable[[str], AbstractContextManager[object]]
"""Wraps each step (``stage("silver: validate")``); the benchmark times them, the asset does not."""


def _untimed(_: str) -> AbstractContextManager[object]:
    return contextlib.nullcontext()


@dataclass
class SilverDays:
    """What a range build wrote, per day, and what its checks need."""

    per_day: dict[str, dict[str, int]] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)
    duplicated: list[str] = field(default_factory=list)
    later_copies: dict[str, list[str]] = field(default_factory=dict)
    """Later days outside the range holding a second copy of an id first seen in the range: rebuild them."""
    index_out_of_step: list[str] = field(default_factory=list)
    """Days whose ``silver/event_id_index`` rows do not match their silver rows: rebuild them."""
    gaps: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=GAPS_SCHEMA))

    @property
    def totals(self) -> dict[str, int]:
        return {k: sum(c[k] for c in self.per_day.values()) for k in COUNT_KEYS}

    def check_results(self) -> list[dg.AssetCheckResult]:
        return [
            duplicate_check(self.duplicated, self.later_copies, self.index_out_of_step),
            accounting_check(self.per_day),
            quarantine_rate_check(self.per_day),
            sequence_gap_check(self.gaps),
        ]


@dataclass(frozen=True)
class _BuiltDay:
    """One day, written to silver: what the range still needs of it."""

    day: date
    bronze_rows: int
    duplicates_removed: int
    reason_counts: dict[str, int]
    quarantine: pl.DataFrame
    index_rows: pl.DataFrame
    duplicated: list[str]
    later_copies: dict[str, list[str]]
    runs: pl.DataFrame


class _InDayOrder:
    """Runs each day's cross-day step after the previous day's, whichever thread builds which day.

    Days are submitted in order to a FIFO pool, so the day waited for has always started: no deadlock.
    A day whose predecessor failed is not written (its ids were never compared with that day's).
    """

    def __init__(self, days: list[date]) -> None:
        self._done = {day: threading.Event() for day in days}
        self._failed: set[date] = set()

    def wait_for_previous(self, day: date) -> None:
        previous = day - _DAY
        if previous in self._done:
            self._done[previous].wait()
            if previous in self._failed:
                raise RuntimeError(f"silver {previous} failed, so {day} is not written")

    def finish(self, day: date, *, ok: bool) -> None:
        if not ok:
            self._failed.add(day)
        self._done[day].set()


def build_silver_days(
    lake: Lake,
    start: date,
    end: date,
    *,
    run_id: str,
    stage: Stage = _untimed,
    log: Callable[[str], object] | None = None,
    threads: int = SILVER_THREADS,
) -> SilverDays:
    """Silver and quarantine for every day in ``[start, end)``, and what the silver checks need."""
    days = days_between(start, end)
    built = SilverDays()
    lake.ensure_table(SILVER, SILVER_SCHEMA)  # before the threads: two first commits would race to create it
    lake.ensure_table(QUARANTINE, QUARANTINE_SCHEMA)
    lake.ensure_table(EVENT_ID_INDEX, INDEX_SCHEMA)
    with stage("silver: event_id index of other days, bronze days holding strays"):
        ledger = EventIdLedger.outside(lake, start, end)
        strays = stray_partitions(lake)
    order = _InDayOrder(days)
    local = threading.local()

    def build_day(day: date) -> _BuiltDay:
        own = getattr(local, "lake", None)
        if own is None:  # one Lake (and open DeltaTables) per thread
            own = local.lake = Lake(lake.location, lake.storage_options)
        return _build_day(
            own, day, run_id=run_id, stage=stage, ledger=ledger, order=order, strays=strays, lookups=lookups
        )

    pending: list[_BuiltDay] = []
    runs: list[pl.DataFrame] = []
    built_counts: dict[date, tuple[int, int]] = {}  # bronze rows, duplicates removed (not the day's rows)

    def flush() -> None:
        if pending:
            with stage("silver: write quarantine and event_id index"):
                _write_side_tables(lake, pending, run_id=run_id)
            # One progress line per commit of the side tables (a few per range), not one per day: each Dagster
            # log line is an event written to the instance's storage, and 60 of them cost a run seconds.
            if log is not None:
                days_done = f"{pending[0].day}..{pending[-1].day}" if len(pending) > 1 else str(pending[0].day)
                bronze_rows = sum(d.bronze_rows for d in pending)
                log(
                    f"silver {days_done}: {bronze_rows} bronze rows, {sum(d.quarantine.height for d in pending)} "
                    "quarantined"
                )
            pending.clear()

    with (
        ThreadPoolExecutor(max_workers=threads, thread_name_prefix="silver-day") as pool,
        ThreadPoolExecutor(max_workers=threads, thread_name_prefix="silver-ids") as lookups,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="silver-edges") as beside,
    ):
        edges = beside.submit(_edge_runs, Lake(lake.location, lake.storage_options), start, end, stage)
        upcoming = iter(days)
        queue: deque[Future[_BuiltDay]] = deque(pool.submit(build_day, d) for d in islice(upcoming, threads))
        try:
            while queue:  # days come back in order; at most `threads` are in flight (and in memory)
                done = queue.popleft().result()
                next_day = next(upcoming, None)
                if next_day is not None:
                    queue.append(pool.submit(build_day, next_day))
                built_counts[done.day] = (done.bronze_rows, done.duplicates_removed)
                pending.append(done)
                runs.append(done.runs)
                built.duplicated += done.duplicated
                for later_day, ids in done.later_copies.items():
                    built.later_copies.setdefault(later_day, []).extend(ids)
                for reason, n in done.reason_counts.items():
                    built.reasons[reason] = built.reasons.get(reason, 0) + n
                if (
                    sum(d.quarantine.height for d in pending) >= QUARANTINE_FLUSH_ROWS
                    or sum(d.index_rows.height for d in pending) >= INDEX_FLUSH_ROWS
                ):
                    flush()
        except BaseException:
            for waiting in queue:
                waiting.cancel()
            with contextlib.suppress(Exception):  # the days finished so far keep their quarantine and index
                flush()
            raise
    flush()

    with stage("silver: asset checks"):
        silver_rows = lake.rows_per_day(SILVER, start, end)
        quarantine_rows = lake.rows_per_day(QUARANTINE, start, end)
        for day in days:
            bronze_rows, duplicates_removed = built_counts[day]
            built.per_day[day.isoformat()] = {
                "bronze_rows": bronze_rows,
                "silver_rows": silver_rows[day],
                "quarantine_rows": quarantine_rows[day],
                "duplicates_removed": duplicates_removed,
            }
        built.index_out_of_step = days_out_of_step(lake, SILVER)
        built.gaps = sequence_gaps(pl.concat([*runs, *edges.result()]), start, end)
    return built


def _edge_runs(lake: Lake, start: date, end: date, stage: Stage) -> list[pl.DataFrame]:
    """:func:`read_sequence_runs` of the day before ``[start, end)`` and the day after, for the gap check.

    Those days lie outside the range, so the run never writes them (and the silver pool keeps other runs
    from writing silver meanwhile): they are read on a thread of their own while the range is built, with
    a ``lake`` of their own, rather than after it. On a long lake the day before is a full day of silver,
    the one part of the checks that a first day does not read.
    """
    with stage("silver: sequence runs of the days either side, read beside the build"):
        return [read_sequence_runs(lake, start - _DAY), read_sequence_runs(lake, end)]


def read_home_rows(lake: Lake, day: date, strays: frozenset[date]) -> pl.DataFrame:
    """The bronze rows filed under ``day``: its partition's own, plus those filed under it from other days.

    ``strays`` (:func:`~.window.stray_partitions`) are the only bronze days that can hold rows filed
    elsewhere; ordinarily none, and the day is its partition, read as it is.
    """
    own = lake.read_days(BRONZE_RISK_EVENTS, day, day + _DAY, schema=BRONZE_SCHEMA)
    elsewhere = sorted(d for d in strays if d != day)
    if elsewhere:
        candidates = strays_predicate(day) & pl.col(DAY_COLUMN).is_in(elsewhere)
        others = lake.select(BRONZE_RISK_EVENTS, schema=BRONZE_SCHEMA, predicate=candidates)
        own = pl.concat([own, others], how="vertical_relaxed") if others.height else own
    return own.filter(home_day() == day) if strays else own


def _build_day(
    lake: Lake,
    day: date,
    *,
    run_id: str,
    stage: Stage,
    ledger: EventIdLedger,
    order: _InDayOrder,
    strays: frozenset[date],
    lookups: ThreadPoolExecutor,
) -> _BuiltDay:
    """Read one day of bronze, validate it, replace the day in silver; its quarantine is the caller's to write."""
    partition = day.isoformat()
    ok = False
    try:
        with stage("silver: read bronze day"):
            bronze = read_home_rows(lake, day, strays)
        # The other days' index is searched for the day's ids while the day is validated (a scan of one
        # column, outside the GIL): on a 60-day lake it was the one step of a new day that grew with history.
        ids = bronze.get_column("event_id")
        outside = lookups.submit(ledger.lookup_outside, ids) if ledger.outside_days is not None else None
        with stage("silver: build_silver (upcast, dedup, validate, route)"):
            build = build_silver(bronze, run_id=run_id, partition=partition)
        del bronze
        with stage("silver: event_id index of other days, looked up beside validation (wait)"):
            outside_hits = outside.result() if outside is not None else None
        order.wait_for_previous(day)
        with stage("silver: event_id across days"):
            resolution = ledger.resolve(day, build.silver, outside_hits)
            build = refuse_reused_ids(build, resolution.earlier, run_id=run_id, partition=partition)
            index_rows = ledger.learn(day, resolution)
        ok = True
    finally:
        order.finish(day, ok=ok)
    with stage("silver: write silver day"):
        metadata = commit_metadata(run_id, day, day + _DAY)
        lake.replace_days(SILVER, build.silver, day, day + _DAY, schema=SILVER_SCHEMA, metadata=metadata)
    with stage("silver: asset checks"):
        seen = [frame.select(_RUN_COLUMNS) for frame in (build.silver, build.quarantine)]
        runs = sequence_runs(pl.concat(seen, how="vertical_relaxed"))
        duplicated = duplicate_ids(build.silver)
    return _BuiltDay(
        day=day,
        bronze_rows=build.bronze_rows,
        duplicates_removed=build.duplicates_removed,
        reason_counts=dict(build.reason_counts),
        quarantine=compact(build.quarantine),  # held until written: must not pin the day's text
        index_rows=index_rows,
        duplicated=duplicated,
        later_copies=resolution.later,
        runs=compact(runs),
    )


def _write_side_tables(lake: Lake, built: list[_BuiltDay], *, run_id: str) -> None:
    """Replace the quarantine and the event_id index of consecutive built days, one commit each.

    Days without refused rows are included: their old quarantine rows must go too.
    """
    first, last = built[0].day, built[-1].day
    if [d.day for d in built] != days_between(first, last + _DAY):
        raise AssertionError(f"quarantine days must be consecutive: {[d.day for d in built]}")
    rows = pl.concat([d.quarantine for d in built], how="vertical_relaxed")
    metadata = commit_metadata(run_id, first, last + _DAY)
    lake.replace_days(QUARANTINE, rows, first, last + _DAY, schema=QUARANTINE_SCHEMA, metadata=metadata)
    index = pl.concat([d.index_rows for d in built], how="vertical_relaxed")
    lake.replace_days(EVENT_ID_INDEX, index, first, last + _DAY, schema=INDEX_SCHEMA, metadata=metadata)
