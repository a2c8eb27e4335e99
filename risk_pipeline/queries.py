"""The post-mortem questions of the design guide, answered from the gold tables.

The guide's three queries scanned the whole raw event table and recomputed everything on each
call. Here the work is done once, incrementally, by the gold builders, and these functions only
read and shape: a day range reads just those ``event_date`` partitions.

* :func:`circuit_breaker_history` -- Query 1, every breaker transition in time order, with how long
  the breaker stayed in the old state and whether the transition was legal;
* :func:`trailing_stop_profit` -- Query 2, the profit each triggered stop locked in;
* :func:`rejections_by_limit_type` -- Query 3, rejections per limit type over a range of days.

And the summaries an analyst reads first, from those frames (no further reads):

* :func:`breaker_summary` -- per breaker: transitions, opens, time spent OPEN, illegal transitions;
* :func:`trailing_stop_outcomes` and :func:`stop_summary` -- every stop lifetime in the days, and its
  trigger rate, total and mean profit locked and giveback.

Each returns a :class:`polars.DataFrame` (empty, with its columns, when nothing matches or the
table has not been built yet). Day ranges are ``[start, end)`` UTC days, open ends allowed.
"""

from __future__ import annotations

from datetime import date
from typing import Final

import polars as pl
import pyarrow as pa

from risk_pipeline.defs.gold import circuit_breaker_transitions as cb
from risk_pipeline.defs.gold import limit_rejection_stats as limits
from risk_pipeline.defs.gold import trailing_stop_outcomes as stops
from risk_pipeline.lake import DAY_COLUMN, Lake, TableRef, sql_string

_FIRST_DAY: Final = date.min
_AFTER_LAST_DAY: Final = date.max


def _read(
    lake: Lake, ref: TableRef, schema: pa.Schema, start: date | None = None, end: date | None = None
) -> pl.DataFrame:
    """``ref``'s rows in ``[start, end)`` (open ends allowed), pruned to those partitions."""
    if start is None and end is None:
        return lake.read_all(ref, schema=schema)
    return lake.read_days(ref, start or _FIRST_DAY, end or _AFTER_LAST_DAY, schema=schema)


HISTORY_COLUMNS: Final = [
    "timestamp",
    "source",
    "old_state",
    "new_state",
    "failure_count",
    "seconds_in_old_state",
    "prev_new_state",
    "is_valid",
    "event_id",
    DAY_COLUMN,
]


def circuit_breaker_history(
    lake: Lake, source: str | None = None, start: date | None = None, end: date | None = None
) -> pl.DataFrame:
    """Breaker state transitions in ``[start, end)`` (UTC days), oldest first (Query 1).

    ``source`` narrows to one breaker. ``is_valid = False`` rows are the ones to look at first: a
    transition that is illegal or does not continue from the breaker's previous state.
    """
    frame = _read(lake, cb.CIRCUIT_BREAKER_TRANSITIONS, cb.SCHEMA, start, end)
    if source is not None:
        frame = frame.filter(pl.col("source") == source)
    return frame.sort(["timestamp", "source"], nulls_last=True).select(HISTORY_COLUMNS)


PROFIT_COLUMNS: Final = [
    "execution_id",
    "symbol",
    "entry_premium",
    "stop_premium",
    "exit_premium",
    "highest_premium",
    "profit_locked",
    "realized_pnl",
    "giveback",
    "triggered_at",
    "duration_seconds",
]


def trailing_stop_profit(
    lake: Lake,
    execution_id: str | None = None,
    *,
    underlying: str | None = None,
    start: date | None = None,
    end: date | None = None,
) -> pl.DataFrame:
    """Triggered stops and the profit each locked in (Query 2), in trigger order.

    ``profit_locked`` = stop premium at the trigger - entry premium, as in the guide; the realised
    P&L (at the exit premium) and the giveback from the peak sit beside it. Stops that were removed
    or are still open locked nothing and are not listed. An ``execution_id`` added again after its stop
    ended has one row per lifetime, so it can list twice. The table is partitioned by the day each
    lifetime began, not by execution, so a lookup by ``execution_id`` is pushed down as a filter.
    ``underlying`` and ``[start, end)`` narrow as in :func:`trailing_stop_outcomes`.
    """
    where = f"outcome = {sql_string(stops.TRIGGERED)}"
    frame = trailing_stop_outcomes(lake, execution_id, underlying=underlying, start=start, end=end, where=where)
    return frame.sort(["triggered_at", "execution_id"]).select(PROFIT_COLUMNS)


def trailing_stop_outcomes(
    lake: Lake,
    execution_id: str | None = None,
    *,
    underlying: str | None = None,
    start: date | None = None,
    end: date | None = None,
    where: str = "",
) -> pl.DataFrame:
    """Every stop lifetime (triggered, removed or still open) that began in ``[start, end)``, by add time.

    A stop belongs to the day it was added (the table's partition), so a day range reads only those
    partitions and a stop added on the last day that triggers the next morning still counts in the range
    it began in. ``underlying`` is the option's underlying ticker (null for events before schema version 2,
    which no underlying filter matches).
    """
    clauses = [where] if where else []
    if execution_id is not None:
        clauses.append(f"execution_id = {sql_string(execution_id)}")
    if underlying is not None:
        clauses.append(f"underlying = {sql_string(underlying)}")
    condition = " AND ".join(f"({c})" for c in clauses)
    ref, schema = stops.TRAILING_STOP_OUTCOMES, stops.SCHEMA
    if start is None and end is None:
        frame = lake.read_all(ref, schema=schema, where=condition)
    else:
        frame = lake.read_days(ref, start or _FIRST_DAY, end or _AFTER_LAST_DAY, schema=schema, where=condition)
    return frame.sort(["added_at", "execution_id"], nulls_last=True)


BREAKER_SUMMARY_COLUMNS: Final = ["source", "transitions", "opens", "seconds_open", "longest_open_seconds", "invalid"]


def breaker_summary(history: pl.DataFrame) -> pl.DataFrame:
    """Per breaker in ``history`` (:func:`circuit_breaker_history`): transitions, opens, time spent OPEN.

    ``opens`` counts transitions into OPEN; ``seconds_open`` sums ``seconds_in_old_state`` of the
    transitions out of OPEN, so an OPEN spell still running at the end of the range (or one that began
    before it) counts only as far as the range's transitions close it. ``invalid`` counts illegal or
    discontinuous transitions. Most opened first.
    """
    was_open = pl.col("old_state") == "OPEN"
    summary = history.group_by("source").agg(
        pl.len().alias("transitions"),
        (pl.col("new_state") == "OPEN").sum().alias("opens"),
        pl.col("seconds_in_old_state").filter(was_open).sum().alias("seconds_open"),
        pl.col("seconds_in_old_state").filter(was_open).max().alias("longest_open_seconds"),
        (~pl.col("is_valid")).sum().alias("invalid"),
    )
    summary = summary.with_columns(pl.col("transitions", "opens", "invalid").cast(pl.Int64))
    return summary.sort(["opens", "source"], descending=[True, False], nulls_last=True).select(BREAKER_SUMMARY_COLUMNS)


STOP_SUMMARY_COLUMNS: Final = [
    "stops",
    "triggered",
    "removed",
    "open",
    "trigger_rate",
    "profit_locked_total",
    "profit_locked_mean",
    "giveback_total",
    "giveback_mean",
]


def stop_summary(outcomes: pl.DataFrame, by: str | None = None) -> pl.DataFrame:
    """The headline numbers of ``outcomes`` (:func:`trailing_stop_outcomes`): one row, or one per ``by`` value.

    ``trigger_rate`` is triggered / ended stops (triggered + removed: an open stop has not decided yet);
    profit locked and giveback are over the triggered stops (means null when none triggered). With
    ``by="underlying"``, the most-stopped underlying first.
    """
    outcome = pl.col("outcome")
    triggered = outcome == stops.TRIGGERED
    removed = outcome == stops.REMOVED
    aggregations = [
        pl.len().cast(pl.Int64).alias("stops"),
        triggered.sum().cast(pl.Int64).alias("triggered"),
        removed.sum().cast(pl.Int64).alias("removed"),
        (outcome == stops.OPEN).sum().cast(pl.Int64).alias("open"),
        pl.col("profit_locked").filter(triggered).sum().alias("profit_locked_total"),
        pl.col("profit_locked").filter(triggered).mean().alias("profit_locked_mean"),
        pl.col("giveback").filter(triggered).sum().alias("giveback_total"),
        pl.col("giveback").filter(triggered).mean().alias("giveback_mean"),
    ]
    if by is None:
        summary = outcomes.select(aggregations)
    else:
        summary = outcomes.group_by(by).agg(aggregations).sort(["stops", by], descending=[True, False], nulls_last=True)
    ended = pl.col("triggered") + pl.col("removed")
    rate = pl.when(ended > 0).then(pl.col("triggered") / ended).otherwise(None).alias("trigger_rate")
    return summary.with_columns(rate).select([*([by] if by else []), *STOP_SUMMARY_COLUMNS])


def rejections_by_limit_type(lake: Lake, start: date | None = None, end: date | None = None) -> pl.DataFrame:
    """Rejections per limit type over the days ``[start, end)`` (Query 3), most rejected first.

    The daily averages are re-weighted by each day's rejection count, so ``avg_current_value`` is
    the mean over all the range's rejections, exactly what Query 3 computes over raw events. Also
    returned: ``warning_count`` and the worst ``max_utilization`` in the range. Limit types that
    only had warnings appear with ``rejection_count = 0`` and null averages.
    """
    daily = _read(lake, limits.LIMIT_REJECTION_STATS, limits.SCHEMA, start, end)
    weight = pl.col("rejection_count")
    return (
        daily.group_by("limit_type")
        .agg(
            weight.sum().alias("rejection_count"),
            ((pl.col("avg_current_value") * weight).sum() / weight.sum()).alias("avg_current_value"),
            ((pl.col("avg_limit_value") * weight).sum() / weight.sum()).alias("avg_limit_value"),
            pl.col("warning_count").sum().alias("warning_count"),
            pl.col("max_utilization").max().alias("max_utilization"),
        )
        .with_columns(
            pl.when(pl.col("rejection_count") > 0).then(pl.col("avg_current_value", "avg_limit_value")).name.keep()
        )
        .sort(["rejection_count", "limit_type"], descending=[True, False], nulls_last=True)
    )
