"""When an event can have happened, in which calendar, and which silver day owns each bronze row.

An event's ``timestamp`` is the trading process's clock; two facts bound it:

* **Not before the lake's first day** (``$RISK_PARTITIONS_START``): no partition exists before it, so a row
  dated 1999 could never be built, and a run over its day fails.
* **Not later than its ingestion plus a tolerance** (``$RISK_MAX_EVENT_AHEAD``, default 1 h): ``ingested_at``
  is the shipper's clock when it committed the row, so an event cannot have happened much after it. The
  tolerance absorbs clock skew between hosts; a row dated 2099 is a broken clock, not an early event.

**Every bronze row is filed under exactly one silver day** (its *home day*, :func:`home_day`), so the
accounting identity ``bronze = silver + quarantine + duplicates`` stays exact per day:

* a row whose ``event_date`` lies in its own window -- from the first day to the day of
  ``ingested_at + $RISK_MAX_EVENT_AHEAD`` -- belongs to its ``event_date`` (and is validated there: a
  timestamp a few hours ahead of its ingestion on the same day is quarantined in that day);
* any other row (dated before the first day, or on a day after its window) belongs to the day it was
  ingested (never before the first day), and is quarantined there with its reason. Its own ``event_date``
  is never a day to build: it cannot widen a run's range, and it is not left waiting in bronze until 2099.

Both depend on the row alone, never on when the pipeline runs, so re-running any day files every row
the same way. The days to build (the CLI's and the bronze sensor's) come from :func:`days_to_build`.

Expiry is a day of the exchange's calendar (``$RISK_EXCHANGE_TZ``, default ``America/New_York``, where US
listed options expire): a stop removed at 20:30 New York time on expiry day happened on that day there,
though it is the next day in UTC.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl
import pyarrow as pa

from risk_pipeline.defs.constants import BRONZE_RISK_EVENTS
from risk_pipeline.defs.partitions import PARTITIONS_START_ENV, partitions_start
from risk_pipeline.lake import DAY_COLUMN, Lake

MAX_EVENT_AHEAD_ENV: Final = "RISK_MAX_EVENT_AHEAD"
DEFAULT_MAX_EVENT_AHEAD: Final = timedelta(hours=1)
"""How far an event's timestamp may be ahead of its ``ingested_at`` (clock skew between hosts)."""

EXCHANGE_TZ_ENV: Final = "RISK_EXCHANGE_TZ"
DEFAULT_EXCHANGE_TZ: Final = "America/New_York"
"""The calendar option expiry dates are days of: US listed options expire in New York."""

_DURATION: Final = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd]?)$")
_UNIT_SECONDS: Final = {"": 1, "s": 1, "m": 60, "h": 3_600, "d": 86_400}


def max_event_ahead() -> timedelta:
    """``$RISK_MAX_EVENT_AHEAD``: seconds, or a number with ``s``/``m``/``h``/``d`` (``90s``, ``30m``, ``1h``).

    Unset or empty means :data:`DEFAULT_MAX_EVENT_AHEAD`. Anything else raises ``ValueError``: a typo must fail
    the run, not quietly quarantine (or accept) every row.
    """
    text = os.environ.get(MAX_EVENT_AHEAD_ENV, "").strip().lower()
    if not text:
        return DEFAULT_MAX_EVENT_AHEAD
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"${MAX_EVENT_AHEAD_ENV} must be a duration such as 3600, 90s, 30m or 1h, got {text!r}")
    return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def exchange_timezone() -> str:
    """``$RISK_EXCHANGE_TZ`` (an IANA zone name), else ``America/New_York``; an unknown zone raises ``ValueError``."""
    name = os.environ.get(EXCHANGE_TZ_ENV, "").strip() or DEFAULT_EXCHANGE_TZ
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"${EXCHANGE_TZ_ENV} must be an IANA time zone (America/New_York), got {name!r}") from None
    return name


def first_day() -> date:
    """The lake's first day (``$RISK_PARTITIONS_START``): nothing earlier is ever a partition."""
    return date.fromisoformat(partitions_start())


def window_settings() -> dict[str, str]:
    """The settings in force, for a run's ``rule_settings`` metadata."""
    return {
        PARTITIONS_START_ENV: first_day().isoformat(),
        MAX_EVENT_AHEAD_ENV: str(max_event_ahead()),
        EXCHANGE_TZ_ENV: exchange_timezone(),
    }


def horizon(now: datetime | None = None) -> date:
    """The last day an in-window event can be dated on if nothing is ingested after ``now``."""
    return ((now or datetime.now(UTC)) + max_event_ahead()).astimezone(UTC).date()


# ---------------------------------------------------------------------------------------------- home day
def home_day() -> pl.Expr:
    """Per bronze row, the silver day that owns it (see the module docstring); a ``date`` expression."""
    first = first_day()
    event_day = pl.col(DAY_COLUMN)
    last_day = (pl.col("ingested_at") + max_event_ahead()).dt.date()
    in_window = ((event_day >= first) & (event_day <= last_day)).fill_null(True)
    filing_day = pl.max_horizontal(pl.col("ingested_at").dt.date(), pl.lit(first))
    return pl.when(in_window).then(event_day).otherwise(filing_day)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def strays_predicate(day: date) -> pl.Expr:
    """Bronze rows outside ``day``'s partition that may be filed under ``day`` (a superset; filter by home day).

    Such a row was ingested on ``day`` and dated before the first day or after ``day`` (an event ingested on
    ``day`` and out of its window lies after its ingestion). On the first day, rows ingested earlier count too.
    The ``ingested_at`` bounds let Delta's file statistics skip every file of an ordinary day.
    """
    first = first_day()
    ingested = pl.col("ingested_at")
    ingested_on_day = ingested < _midnight(day + timedelta(days=1))
    if day > first:
        ingested_on_day = ingested_on_day & (ingested >= _midnight(day))
    event_day = pl.col(DAY_COLUMN)
    return ((event_day < first) | (event_day > day)) & ingested_on_day


def stray_partitions(lake: Lake) -> frozenset[date]:
    """Bronze days whose files may hold rows filed under another day, from the Delta log's file statistics.

    A file can only if its day is before the first day, or after the day of its earliest ``ingested_at``
    plus the tolerance (a file without statistics counts too). Ordinarily there is none, and a day's build
    reads its own partition only; the statistics cost nothing to read (the log is already open).
    """
    table = lake.table(BRONZE_RISK_EVENTS) if lake.exists(BRONZE_RISK_EVENTS) else None
    if table is None:
        return frozenset()
    files = pl.from_arrow(pa.table(table.get_add_actions(flatten=True)))
    partition = f"partition.{DAY_COLUMN}"
    if not isinstance(files, pl.DataFrame) or files.is_empty() or partition not in files.columns:
        return frozenset()
    day = pl.col(partition).cast(pl.Date)
    if "min.ingested_at" in files.columns:
        earliest = pl.col("min.ingested_at").cast(pl.Datetime("us", "UTC"))
        last_in_window = (earliest + max_event_ahead()).dt.date()
        suspect = (day < first_day()) | earliest.is_null() | (day > last_in_window)
    else:
        suspect = pl.lit(True)
    return frozenset(files.filter(suspect).get_column(partition).cast(pl.Date).unique().to_list())


def days_to_build(lake: Lake, days: Iterable[date], now: datetime | None = None) -> list[date]:
    """The silver days that own the rows of the bronze ``days`` (all bronze days, or those commits touched).

    A day from the first day up to :func:`horizon` is its own; a day outside (before the first day, or later
    than any event ingested by ``now`` can be dated) holds only rows filed under their ingestion days, which
    are read from those days' ``ingested_at`` alone. The CLI and the bronze sensor both ask here, so neither
    builds (nor spans a range up to) a day dated 2099.
    """
    first, last = first_day(), horizon(now)
    inside: set[date] = set()
    outside: list[date] = []
    for day in days:
        (inside.add(day) if first <= day <= last else outside.append(day))
    if outside:
        filed = lake.select(
            BRONZE_RISK_EVENTS,
            columns=[DAY_COLUMN, "ingested_at"],
            predicate=pl.col(DAY_COLUMN).is_in(sorted(outside)),
        )
        if filed.height:
            inside |= set(filed.select(home_day()).to_series().unique().to_list())
    return sorted(d for d in inside if d is not None)
