"""The silver tables' asset checks: names, specs and the code that evaluates them.

The checks run inside the silver materialisation (they need its accounting, and the blocking ones
must stop gold in the same run), so each check is a spec plus a function returning its result;
the names are constants used by both, as in Dagster's own platform code.
"""

from __future__ import annotations

import os
from datetime import date, timedelta
from typing import Final

import dagster as dg
import polars as pl

from risk_pipeline.defs.constants import asset_key
from risk_pipeline.defs.silver.schema import QUARANTINE, SILVER
from risk_pipeline.lake import DAY_COLUMN, Lake

NO_DUPLICATE_EVENT_IDS: Final = "no_duplicate_event_ids"
ACCOUNTING_IDENTITY: Final = "bronze_rows_accounted_for"
QUARANTINE_RATE: Final = "quarantine_rate_below_threshold"
NO_SEQUENCE_GAPS: Final = "no_sequence_gaps"

QUARANTINE_RATE_ENV: Final = "RISK_MAX_QUARANTINE_RATE"
DEFAULT_MAX_QUARANTINE_RATE: Final = 0.05
"""Above this share of a day's bronze rows in quarantine, something upstream is broken."""

SILVER_KEY: Final = asset_key(SILVER)

CHECK_SPECS: Final = [
    dg.AssetCheckSpec(
        NO_DUPLICATE_EVENT_IDS,
        asset=SILVER_KEY,
        blocking=True,
        description="Every event_id appears once in the materialised days (retried batches were de-duplicated).",
    ),
    dg.AssetCheckSpec(
        ACCOUNTING_IDENTITY,
        asset=SILVER_KEY,
        blocking=True,
        description="Per day: bronze rows = silver rows + quarantined rows + duplicates removed. Nothing vanished.",
    ),
    dg.AssetCheckSpec(
        QUARANTINE_RATE,
        asset=SILVER_KEY,
        description=f"Quarantined share of bronze per day stays under ${QUARANTINE_RATE_ENV} "
        f"(default {DEFAULT_MAX_QUARANTINE_RATE:.0%}).",
    ),
    dg.AssetCheckSpec(
        NO_SEQUENCE_GAPS,
        asset=SILVER_KEY,
        description="Every writer's sequence numbers are contiguous (silver and quarantine together, looking "
        "one day either side): a hole is an event that was accepted by a logger and never reached bronze.",
    ),
]


def max_quarantine_rate() -> float:
    return float(os.environ.get(QUARANTINE_RATE_ENV) or DEFAULT_MAX_QUARANTINE_RATE)


def duplicate_ids(lake: Lake, start: date, end: date) -> list[str]:
    """``event_id``s that silver holds more than once in ``[start, end)``.

    A retried batch lands in the same day as its original (an event's day is its timestamp's), so
    checking day by day finds every duplicate while holding one day's ids, not a backfill's.
    """
    ids = lake.read_days(SILVER, start, end, columns=["event_id"])
    if not ids.height:
        return []
    return ids.filter(pl.col("event_id").is_duplicated()).get_column("event_id").unique().sort().to_list()


def duplicate_check(duplicated: list[str]) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=NO_DUPLICATE_EVENT_IDS,
        asset_key=SILVER_KEY,
        passed=len(duplicated) == 0,
        metadata={"duplicated_event_ids": len(duplicated), "examples": [str(x) for x in duplicated[:10]]},
    )


def accounting_check(per_day: dict[str, dict[str, int]]) -> dg.AssetCheckResult:
    broken = {
        day: counts
        for day, counts in per_day.items()
        if counts["bronze_rows"] != counts["silver_rows"] + counts["quarantine_rows"] + counts["duplicates_removed"]
    }
    totals = {key: sum(c[key] for c in per_day.values()) for key in next(iter(per_day.values()), {})}
    return dg.AssetCheckResult(
        check_name=ACCOUNTING_IDENTITY,
        asset_key=SILVER_KEY,
        passed=not broken,
        metadata={**{k: int(v) for k, v in totals.items()}, "days_broken": sorted(broken)},
    )


def quarantine_rate_check(per_day: dict[str, dict[str, int]]) -> dg.AssetCheckResult:
    threshold = max_quarantine_rate()
    rates = {day: c["quarantine_rows"] / c["bronze_rows"] if c["bronze_rows"] else 0.0 for day, c in per_day.items()}
    worst = max(rates.values(), default=0.0)
    return dg.AssetCheckResult(
        check_name=QUARANTINE_RATE,
        asset_key=SILVER_KEY,
        passed=worst <= threshold,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "max_rate": worst,
            "threshold": threshold,
            "days_over": sorted(d for d, r in rates.items() if r > threshold),
        },
    )


def sequence_gaps(lake: Lake, start: date, end: date) -> pl.DataFrame:
    """Missing sequence numbers of the writers seen in ``[start, end)``: writer, first and last missing.

    An event in quarantine is not lost, so both tables count. A writer's events around midnight
    can fall on either side of it, so the day before and after are read too; a gap is reported when
    either of its neighbours lies in the range.
    """
    columns = ["writer_id", "sequence", DAY_COLUMN]
    window_start, window_end = start - timedelta(days=1), end + timedelta(days=1)
    frames = [lake.read_days(ref, window_start, window_end, columns=columns) for ref in (SILVER, QUARANTINE)]
    present = [f for f in frames if f.height]
    if not present:
        return pl.DataFrame(schema={"writer_id": pl.String, "first_missing": pl.Int64, "last_missing": pl.Int64})
    seen = pl.concat(present, how="vertical_relaxed")
    in_range = (pl.col(DAY_COLUMN) >= start) & (pl.col(DAY_COLUMN) < end)
    writers = seen.filter(in_range).get_column("writer_id").unique()
    ordered = (
        seen.filter(pl.col("writer_id").is_in(writers.implode()) & pl.col("sequence").is_not_null())
        .unique(["writer_id", "sequence"])
        .sort("writer_id", "sequence")
        .with_columns(
            previous=pl.col("sequence").shift(1).over("writer_id"),
            previous_day=pl.col(DAY_COLUMN).shift(1).over("writer_id"),
        )
    )
    gaps = ordered.filter(
        (pl.col("sequence") - pl.col("previous") > 1)
        & (in_range | ((pl.col("previous_day") >= start) & (pl.col("previous_day") < end)))
    ).select("writer_id", first_missing=pl.col("previous") + 1, last_missing=pl.col("sequence") - 1)
    return gaps.sort("writer_id", "first_missing")


def sequence_gap_check(gaps: pl.DataFrame) -> dg.AssetCheckResult:
    """The result for gaps found day by day (a gap across midnight is found from both sides: once here)."""
    gaps = gaps.unique().sort("writer_id", "first_missing")
    sizes = gaps.get_column("last_missing") - gaps.get_column("first_missing") + 1
    missing = int(sizes.sum()) if gaps.height else 0
    return dg.AssetCheckResult(
        check_name=NO_SEQUENCE_GAPS,
        asset_key=SILVER_KEY,
        passed=gaps.height == 0,
        metadata={
            "missing_events": missing,
            "gaps": [f"{r['writer_id']}: {r['first_missing']}..{r['last_missing']}" for r in gaps.head(20).to_dicts()],
        },
    )
