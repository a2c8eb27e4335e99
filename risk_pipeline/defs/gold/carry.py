"""What every gold builder shares: its result, the silver input, and the carried state between days.

Gold is built one UTC day at a time from that day's silver rows plus a *small carried state*: the
facts from before the day that the day's rows need (a breaker's last state, the stops still open).
Reading all history instead would make one new day cost more as the lake grows; reading one silver
partition and one state partition keeps it flat.

The state lives in its own Delta table, partitioned by ``event_date`` = the day the state is
"as of the end of". Day D reads the latest state partition strictly before D (found from the Delta
log's partition listing, no data scan) and writes state(D). Consequences:

* re-running day D is idempotent: it reads the same state(< D) and replaces gold(D) and state(D);
* re-running an older day C < D rewrites state(C), so days after C reflect a change to C only once
  they are re-run in order (a backfill of C onwards; the bronze sensor and the daily schedule rebuild
  the days they touch, not the ones after);
* a day with no state partition before it starts from empty state; a hole (day D-1 never built)
  makes D start from an older state -- :attr:`GoldResult.carried_from` reports which one was used.

An empty state must still leave a partition behind, or the next day would silently fall back to an
older, non-empty one. So every state partition carries one *marker* row (``_marker = true``, every
other column null) that readers drop.

Snapshots and change sets
-------------------------
A state that is large and changes little a day (the trailing stops: every open stop, ~75k rows on a
60-day lake of 10M events, ~7k of them touched a day) is not rewritten whole every day: its schema
has a ``_base`` column (:func:`state_schema` with ``changes=True``), and a day's partition is either a
full *snapshot* (``_base`` null on the marker) or a *change set*: only the rows whose facts changed
that day, and on the marker the day of the partition it applies on top of (the state the day's fold
started from). State as of day X is its chain -- X's partition, its base, that one's base ... down to a
snapshot -- with each key's row taken from the newest partition of the chain that holds it
(:func:`read_state_changes_before`; the owner then applies whatever drops rows with time, such as a
retention, as of X). The writer decides per day (:class:`ChangeSets`): a change set while the chain's
change rows stay under half the state and the chain under :data:`MAX_CHANGE_DAYS` days, else a
snapshot -- so reading a state costs at most ~1.5 times the state, and a day writes its changes, not
the whole state, most days. The chain is found in the Delta log (the marker is the only row of a change
set with a base, so the column's statistics name it; a file without statistics has its marker read), then
its partitions are read in one scan; a change set whose base the table no longer holds fails loudly. A
partition written before the column existed reads as a snapshot, which it is. Re-running an older day C
rewrites state(C) in place, so until the days after it are re-run in order, a later change set reads as
its old changes on top of C's new state -- as stale as a whole state(D) would be, and healed the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Final

import polars as pl
import pyarrow as pa

from risk_pipeline.defs.silver.schema import SILVER, SILVER_SCHEMA
from risk_pipeline.lake import (
    DAY_COLUMN,
    Lake,
    TableRef,
    commit_metadata,
    compact,
    days_between,
    sql_date,
    sql_string,
)

ORDER_COLUMNS: Final = ("timestamp", "writer_id", "sequence")
"""Total order of events: time, then the writer's own numbering breaks ties deterministically."""

MARKER: Final = "_marker"
BASE: Final = "_base"
"""On a change set's marker row: the day of the partition it applies on top of (null: a snapshot)."""
ONE_DAY: Final = timedelta(days=1)


@dataclass(frozen=True)
class GoldResult:
    """What a ``build_days`` call wrote: rows per day (every day of the range, zeros included)."""

    table: TableRef
    per_day: dict[date, int] = field(default_factory=dict)
    carried_from: date | None = None
    """The state partition the first day of the range started from (None: empty state)."""
    state_rows: dict[date, int] = field(default_factory=dict)
    """Carried-state rows written per day (markers excluded); empty for stateless tables."""
    carried: pl.DataFrame | None = field(default=None, compare=False, repr=False)
    """The carried state the range started from, as the builder read it (``None``: not kept). The table's
    checks compare against these same rows instead of reading the state partition a second time."""

    @property
    def rows_written(self) -> int:
        return sum(self.per_day.values())


def read_day(
    lake: Lake, ref: TableRef, day: date, schema: pa.Schema, *, columns: list[str] | None = None, where: str = ""
) -> pl.DataFrame:
    """One ``event_date`` partition of ``ref`` (optionally narrowed by a SQL ``where``), typed as ``schema``."""
    return lake.read_days(ref, day, day + ONE_DAY, columns=columns, schema=schema, where=where)


def read_silver_day(lake: Lake, day: date, event_types: list[str], columns: list[str]) -> pl.DataFrame:
    """Silver rows of one day and the given event types, in event order (one partition read)."""
    wanted = list(dict.fromkeys([*columns, "event_type", *ORDER_COLUMNS]))
    kinds = ", ".join(sql_string(kind) for kind in event_types)
    frame = read_day(lake, SILVER, day, SILVER_SCHEMA, columns=wanted, where=f"event_type IN ({kinds})")
    return frame.sort(list(ORDER_COLUMNS))


def silver_days(
    lake: Lake, start: date, end: date, event_types: list[str], columns: list[str]
) -> Iterator[tuple[date, pl.DataFrame]]:
    """``(day, read_silver_day(...))`` for each day of ``[start, end)``, the next day read while this one is used.

    A read runs in polars, outside the GIL, so reading day D+1 on a second thread overlaps it with
    folding and writing day D. The reader has its own :class:`Lake` (its own open
    table); at most two days are in memory.
    """
    reader = Lake(lake.location, lake.storage_options)
    days = days_between(start, end)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="silver-read") as pool:
        ahead = [pool.submit(read_silver_day, reader, day, event_types, columns) for day in days[:1]]
        for i, day in enumerate(days):
            frame = ahead.pop().result()
            if i + 1 < len(days):
                ahead.append(pool.submit(read_silver_day, reader, days[i + 1], event_types, columns))
            yield day, frame


def state_schema(fields: list[pa.Field], *, changes: bool = False) -> pa.Schema:
    """A state table's schema: its own columns, the marker, the base (``changes``: written as snapshots and
    change sets, see the module docstring) and the as-of day partition column."""
    base = [pa.field(BASE, pa.date32())] if changes else []
    marker = pa.field(MARKER, pa.bool_(), nullable=False)
    return pa.schema([*fields, marker, *base, pa.field(DAY_COLUMN, pa.date32())])


def read_state_before(lake: Lake, ref: TableRef, day: date, schema: pa.Schema) -> tuple[pl.DataFrame, date | None]:
    """The latest state partition strictly before ``day`` (markers and bookkeeping columns dropped).

    The partition is found from the Delta log's partition listing, then only it is read.
    """
    if BASE in schema.names:
        raise ValueError(f"{ref} is written as snapshots and change sets: read it with read_state_changes_before")
    columns = [f.name for f in schema if f.name not in (MARKER, DAY_COLUMN)]
    earlier = [d for d in lake.days_present(ref) if d < day]
    if not earlier:
        return pl.from_arrow(schema.empty_table().select(columns)), None  # type: ignore[return-value]
    last = earlier[-1]
    return lake.read_days(ref, last, last + ONE_DAY, columns=columns, schema=schema, where=f"NOT {MARKER}"), last


def state_partition(rows: pl.DataFrame, day: date, *, base: date | None = None) -> pl.DataFrame:
    """State(``day``) as stored: ``rows`` plus the marker row, all with ``event_date = day``.

    With ``base``, ``rows`` are a change set on top of state(``base``), which the marker records (a table
    without the column drops it when the partition is written).
    """
    body = rows.with_columns(pl.lit(False).alias(MARKER), pl.lit(day).alias(DAY_COLUMN))
    marker = pl.DataFrame({MARKER: [True], DAY_COLUMN: [day], BASE: pl.Series([base], dtype=pl.Date)})
    return pl.concat([body, marker], how="diagonal_relaxed")


@dataclass(frozen=True)
class StateChain:
    """The partitions a state is read from: a snapshot, then the change sets on top of it, oldest first."""

    days: list[date] = field(default_factory=list)
    change_rows: int = 0
    """Rows of the chain's change sets (the snapshot's and the markers excluded)."""


def _bases_in_log(lake: Lake, ref: TableRef) -> dict[date, date | None]:
    """Each partition's base as the Delta log's column statistics tell it (``None``: a snapshot).

    A change set's marker is its only row with a base, so the file's ``min`` of the column is the base, and a
    snapshot's column is all null. Partitions with a file the log has no statistics for are left out.
    """
    actions = pl.from_arrow(pa.table(lake.table(ref).get_add_actions(flatten=True)))
    assert isinstance(actions, pl.DataFrame)
    nulls, lowest, day = f"null_count.{BASE}", f"min.{BASE}", f"partition.{DAY_COLUMN}"
    if actions.is_empty() or not {nulls, lowest, day, "num_records"} <= set(actions.columns):
        return {}
    per_day = actions.group_by(day).agg(
        pl.col(lowest).cast(pl.Date).min().alias("base"),
        (pl.col(nulls).is_null() | pl.col("num_records").is_null()).any().alias("unknown"),
    )
    known = per_day.filter(~pl.col("unknown"))
    return {d: b for d, b, _ in known.iter_rows()}


def _chain(lake: Lake, ref: TableRef, present: list[date], schema: pa.Schema) -> list[date]:
    """The chain ending at ``present[-1]``, oldest first: from the log's statistics, no file opened.

    A partition the log has no statistics for (a file written without them) has its marker read instead.
    """
    bases = _bases_in_log(lake, ref)
    day, chain = present[-1], [present[-1]]
    while True:
        if day in bases:
            base = bases[day]
        else:
            marker = lake.read_days(ref, day, day + ONE_DAY, columns=[BASE], schema=schema, where=MARKER)
            base = marker.get_column(BASE).drop_nulls().min() if marker.height else None
        if base is None:
            return chain[::-1]
        if base not in present or base >= day:
            raise ValueError(
                f"{ref}: the state of {day} is a change set on {base}, which the table does not hold before it: "
                f"rebuild gold from {base}"
            )
        day = base
        chain.append(day)


def read_state_changes_before(
    lake: Lake, ref: TableRef, day: date, schema: pa.Schema, key: str
) -> tuple[pl.DataFrame, date | None, StateChain]:
    """State as of the latest partition strictly before ``day``, of a table of snapshots and change sets.

    Each ``key``'s row as the newest partition of the chain holds it (in no particular order); rows the owner
    drops with time (a retention) are still there, for it to drop as of the returned day. The chain comes
    from the Delta log, then its partitions are read in one scan.
    """
    columns = [f.name for f in schema if f.name not in (MARKER, BASE, DAY_COLUMN)]
    earlier = [d for d in lake.days_present(ref) if d < day]
    if not earlier:
        return pl.from_arrow(schema.empty_table().select(columns)), None, StateChain()  # type: ignore[return-value]
    chain = _chain(lake, ref, earlier, schema)
    listed = ", ".join(sql_date(d) for d in chain)
    rows = lake.select(
        ref, columns=[*columns, DAY_COLUMN], schema=schema, where=f"NOT {MARKER} AND {DAY_COLUMN} IN ({listed})"
    )
    snapshot = rows.filter(pl.col(DAY_COLUMN) == chain[0]).drop(DAY_COLUMN)
    if len(chain) == 1:
        return snapshot, chain[0], StateChain(chain, 0)
    changes = rows.filter(pl.col(DAY_COLUMN) != chain[0])
    latest = changes.sort(DAY_COLUMN, maintain_order=True).unique(subset=key, keep="last").drop(DAY_COLUMN)
    state = pl.concat([snapshot.join(latest, on=key, how="anti"), latest])
    return state, chain[-1], StateChain(chain, changes.height)


MAX_CHANGE_DAYS: Final = 14
"""Change sets a chain may hold before the next day is a snapshot: bounds the partitions a read opens."""
CHANGES_PER_STATE: Final = 0.5
"""A chain's change rows stay under this share of the state, or the next day is a snapshot (reads <= 1.5x)."""


class ChangeSets:
    """Decides, day by day, whether a state partition is a snapshot or a change set (module docstring).

    Follows the chain as it is on disk when the range began and as the range writes it, so a day comes out
    the same whether it is built alone or inside a range.
    """

    def __init__(self, chain: StateChain, base: date | None) -> None:
        self.base = base
        self._days = max(len(chain.days) - 1, 0)
        self._rows = chain.change_rows

    def partition(self, day: date, state: pl.DataFrame, changed: pl.DataFrame) -> pl.DataFrame:
        """State(``day``) to store: ``changed`` on top of the base, or ``state`` whole; the next base is ``day``."""
        fits = self._days + 1 <= MAX_CHANGE_DAYS and self._rows + changed.height <= CHANGES_PER_STATE * state.height
        if self.base is not None and fits:
            stored = state_partition(changed, day, base=self.base)
            self._days, self._rows = self._days + 1, self._rows + changed.height
        else:
            stored = state_partition(state, day)
            self._days, self._rows = 0, 0
        self.base = day
        return stored


BATCH_ROWS: Final = 500_000
"""Rows a :class:`DayBatch` holds before it writes: a few MB of gold, weeks of days in one commit."""


class DayBatch:
    """Rows of consecutive days for one table, written as one replace of those days.

    Gold is built a day at a time, but a gold day is small: committing each one cost more than
    computing it (two commits a day, ~40 ms each, for tables of a few thousand rows). A batch keeps
    the days' rows (copied, so they do not pin the day's silver in memory) and replaces the whole
    run of days in one commit when it holds :data:`BATCH_ROWS` rows or when the builder flushes it.
    A day with no rows is part of the run too: replacing it clears what an earlier build left there.
    """

    def __init__(self, lake: Lake, ref: TableRef, schema: pa.Schema, *, run_id: str | None) -> None:
        self.lake, self.ref, self.schema, self.run_id = lake, ref, schema, run_id
        self._frames: dict[date, pl.DataFrame] = {}  # in day order

    @property
    def full(self) -> bool:
        return sum(f.height for f in self._frames.values()) >= BATCH_ROWS

    def add(self, day: date, rows: pl.DataFrame) -> int:
        """Hold ``rows`` as day ``day`` (the day after the last one added); returns their count."""
        last = next(reversed(self._frames), None)
        if last is not None and day != last + ONE_DAY:
            raise ValueError(f"{self.ref}: day {day} does not follow {last}")
        self._frames[day] = compact(rows)
        return rows.height

    def flush(self) -> None:
        """Replace the held days in the table, in one commit."""
        if not self._frames:
            return
        first, end = next(iter(self._frames)), next(reversed(self._frames)) + ONE_DAY
        rows = pl.concat(list(self._frames.values()), how="vertical_relaxed")
        meta = commit_metadata(self.run_id, first, end)
        self.lake.replace_days(self.ref, rows, first, end, schema=self.schema, metadata=meta)
        self._frames.clear()
