"""``gold/limit_rejection_stats``: per day and limit type, how often and how hard limits bit.

One row per ``(event_date, limit_type)`` that had at least one rejection or warning that day:

* ``rejection_count``, ``avg_current_value``, ``avg_limit_value`` -- the design guide's Query 3, per
  day (the averages are over rejections only; null when the type only had warnings);
* ``warning_count`` -- portfolio-health warnings of that type;
* ``max_utilization`` -- max ``|current_value| / |limit_value|`` over the day's rejections *and*
  warnings of that type (rows without a usable value or with a zero limit are skipped);
* ``checks_total`` -- every entry check of the day (PL_CHECK + PL_REJECTION, whatever the limit
  type): the denominator of ``rejection_rate = rejection_count / checks_total``. It is the same on
  every row of a day so a day's rows can be read alone; null rate when the day had no checks.

A limit type with checks but no rejections or warnings gets no row: passing checks carry no limit
pressure worth recording per type, and "no row" keeps the table a list of limit *incidents*. The
day's check volume stays visible through ``checks_total`` on the other rows.

Every figure depends on the day's events only, so there is no carried state: a day can be rebuilt
alone, in any order, and nothing after it goes stale.
"""

from __future__ import annotations

from datetime import date
from typing import Final

import polars as pl
import pyarrow as pa

from risk_pipeline.columns import described
from risk_pipeline.defs.gold.carry import DayBatch, GoldResult, silver_days
from risk_pipeline.lake import DAY_COLUMN, Lake, TableRef
from risk_runtime.events import RiskEventType

LIMIT_REJECTION_STATS: Final = TableRef("gold", "limit_rejection_stats")

SCHEMA: Final = described(
    pa.schema(
        [
            pa.field("limit_type", pa.string()),
            pa.field("rejection_count", pa.int64(), nullable=False),
            pa.field("avg_current_value", pa.float64()),
            pa.field("avg_limit_value", pa.float64()),
            pa.field("warning_count", pa.int64(), nullable=False),
            pa.field("max_utilization", pa.float64()),
            pa.field("checks_total", pa.int64(), nullable=False),
            pa.field("rejection_rate", pa.float64()),
            pa.field(DAY_COLUMN, pa.date32(), nullable=False),
        ]
    ),
    {
        "limit_type": "The portfolio limit: portfolio_delta, symbol_delta or open_positions.",
        "rejection_count": "Trades this limit rejected that day.",
        "avg_current_value": "Mean measured value over the day's rejections (null without rejections).",
        "avg_limit_value": "Mean configured limit over the day's rejections (null without rejections).",
        "warning_count": "Warnings this limit raised that day (near the limit, trade allowed).",
        "max_utilization": "The day's worst max |current| / |limit| over its rejections and warnings.",
        "checks_total": "Every entry check that day, of all limit types (the denominator of rejection_rate).",
        "rejection_rate": "rejection_count / checks_total.",
        DAY_COLUMN: "The UTC day; the partition.",
    },
)

_CHECK, _REJECTION, _WARNING = (
    RiskEventType.PL_CHECK.value,
    RiskEventType.PL_REJECTION.value,
    RiskEventType.PL_WARNING.value,
)
_EVENT_COLUMNS: Final = ["limit_type", "current_value", "limit_value"]


def stats_for_day(events: pl.DataFrame, day: date) -> pl.DataFrame:
    """The day's rows from its portfolio-limit events (pure; ``events`` of one day, any order)."""
    checks_total = events.filter(pl.col("event_type").is_in([_CHECK, _REJECTION])).height
    rejection = pl.col("event_type") == _REJECTION
    limit = pl.col("limit_value").abs()
    utilization = pl.when(limit > 0).then(pl.col("current_value").abs() / limit)
    return (
        events.filter(pl.col("event_type").is_in([_REJECTION, _WARNING]))
        .group_by("limit_type")
        .agg(
            rejection.sum().cast(pl.Int64).alias("rejection_count"),
            pl.col("current_value").filter(rejection).mean().alias("avg_current_value"),
            pl.col("limit_value").filter(rejection).mean().alias("avg_limit_value"),
            (pl.col("event_type") == _WARNING).sum().cast(pl.Int64).alias("warning_count"),
            utilization.max().alias("max_utilization"),
        )
        .with_columns(
            pl.lit(checks_total, pl.Int64).alias("checks_total"),
            (pl.col("rejection_count") / pl.lit(checks_total) if checks_total else pl.lit(None, pl.Float64)).alias(
                "rejection_rate"
            ),
            pl.lit(day).alias(DAY_COLUMN),
        )
        .sort("limit_type", nulls_last=True)
        .select([f.name for f in SCHEMA])
    )


def build_days(lake: Lake, start: date, end: date, *, run_id: str | None = None) -> GoldResult:
    """Materialise the days ``[start, end)``; each day reads only its own silver partition."""
    per_day: dict[date, int] = {}
    stats = DayBatch(lake, LIMIT_REJECTION_STATS, SCHEMA, run_id=run_id)
    for day, events in silver_days(lake, start, end, [_CHECK, _REJECTION, _WARNING], _EVENT_COLUMNS):
        per_day[day] = stats.add(day, stats_for_day(events, day))
        if stats.full:
            stats.flush()
    stats.flush()
    return GoldResult(LIMIT_REJECTION_STATS, per_day)
