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
from risk_pipeline.lake import DAY_COLUMN, Lake, TableRef, commit_metadata, compact, days_between, sql_string

ORDER_COLUMNS: Final = ("timestamp", "writer_id", "sequence")
"""Total order of events: time, then the writer's own numbering breaks ties deterministically."""

MARKER: Final = "_marker"
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


def state_schema(fields: list[pa.Field]) -> pa.Schema:
    """A state table's schema: its own columns, the marker, and the as-of day partition column."""
    return pa.schema([*fields, pa.field(MARKER, pa.bool_(), nullable=False), pa.field(DAY_COLUMN, pa.date32())])


def read_state_before(lake: Lake, ref: TableRef, day: date, schema: pa.Schema) -> tuple[pl.DataFrame, date | None]:
    """The latest state partition strictly before ``day`` (markers and bookkeeping columns dropped).

    The partition is found from the Delta log's partition listing, then only it is read.
    """
    columns = [f.name for f in schema if f.name not in (MARKER, DAY_COLUMN)]
    earlier = [d for d in lake.days_present(ref) if d < day]
    if not earlier:
        return pl.from_arrow(schema.empty_table().select(columns)), None  # type: ignore[return-value]
    last = earlier[-1]
    return lake.read_days(ref, last, last + ONE_DAY, columns=columns, schema=schema, where=f"NOT {MARKER}"), last


def state_partition(rows: pl.DataFrame, day: date) -> pl.DataFrame:
    """State(``day``) as stored: ``rows`` plus the marker row, all with ``event_date = day``."""
    body = rows.with_columns(pl.lit(False).alias(MARKER), pl.lit(day).alias(DAY_COLUMN))
    marker = pl.DataFrame({MARKER: [True], DAY_COLUMN: [day]})
    return pl.concat([body, marker], how="diagonal_relaxed")


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
