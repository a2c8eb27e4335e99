"""The silver tables' asset checks: names, specs and the code that evaluates them.

The checks run inside the silver materialisation (they need its accounting, and the blocking ones
must stop gold in the same run), so each check is a spec plus a function returning its result;
the names are constants used by both, as in Dagster's own platform code.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
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
        description="Every event_id appears once in silver: within each materialised day (retried batches were "
        "de-duplicated) and across days (a later day's copy was quarantined; a later day built before the first "
        "copy arrived is named in days_to_rebuild).",
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


def duplicate_ids(silver: pl.DataFrame) -> list[str]:
    """``event_id``s that one day's silver rows hold more than once.

    A retried batch lands in the same day as its original (an event's day is its timestamp's), so
    checking each day as it is written finds every duplicate while holding one day's ids.
    """
    event_id = pl.col("event_id")
    return silver.filter(event_id.is_duplicated()).get_column("event_id").unique().sort().to_list()


def duplicate_check(
    duplicated: list[str],
    later_copies: Mapping[str, list[str]] | None = None,
    index_out_of_step: list[str] | None = None,
) -> dg.AssetCheckResult:
    """Fails on an id held twice by a day, or held by a later day whose copy is not the first.

    ``later_copies`` (later day -> ids) come from the event_id index: those days were built before the
    first copy arrived (or was rebuilt), and re-materialising them quarantines their copies. The index
    vouches for other days only where it holds exactly their silver rows; ``index_out_of_step`` names the
    days where it does not, and fails the check too.
    """
    later = dict(later_copies or {})
    stale = list(index_out_of_step or [])
    examples = [*duplicated, *(i for ids in later.values() for i in ids)]
    return dg.AssetCheckResult(
        check_name=NO_DUPLICATE_EVENT_IDS,
        asset_key=SILVER_KEY,
        passed=not duplicated and not later and not stale,
        metadata={
            "duplicated_event_ids": len(duplicated) + sum(len(ids) for ids in later.values()),
            "examples": [str(x) for x in examples[:10]],
            "days_to_rebuild": sorted({*later, *stale}),
            "index_out_of_step": stale,
        },
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


RUNS_SCHEMA: Final = {"writer_id": pl.String, "first": pl.Int64, "last": pl.Int64, DAY_COLUMN: pl.Date}
GAPS_SCHEMA: Final = {"writer_id": pl.String, "first_missing": pl.Int64, "last_missing": pl.Int64}


def sequence_runs(rows: pl.DataFrame) -> pl.DataFrame:
    """Each writer's contiguous runs of ``sequence`` in ``rows``, per day: ``writer_id, first, last, event_date``.

    A day's events from one writer are usually one run, so a range's runs are a few rows per writer and
    day however many events it holds: gaps are then found across days without holding their events.
    """
    sequence = pl.col("sequence")
    starts = (sequence.diff().over("writer_id", DAY_COLUMN) != 1).fill_null(True)  # a repeat starts a run too
    return (
        rows.select(pl.col("writer_id").cast(pl.String), sequence.cast(pl.Int64), DAY_COLUMN)
        .drop_nulls()
        .group_by("writer_id", DAY_COLUMN)
        .agg(sequence.sort())
        .explode("sequence")
        .with_columns(starts.cum_sum().alias("run"))
        .group_by("writer_id", DAY_COLUMN, "run")
        .agg(sequence.min().alias("first"), sequence.max().alias("last"))
        .select(list(RUNS_SCHEMA))
    )


def read_sequence_runs(lake: Lake, day: date) -> pl.DataFrame:
    """:func:`sequence_runs` of one day as the lake holds it in silver and quarantine together."""
    columns = ["writer_id", "sequence", DAY_COLUMN]
    frames = [lake.read_days(ref, day, day + timedelta(days=1), columns=columns) for ref in (SILVER, QUARANTINE)]
    present = [f for f in frames if f.height]
    if not present:
        return pl.DataFrame(schema=RUNS_SCHEMA)
    return sequence_runs(pl.concat(present, how="vertical_relaxed"))


def sequence_gaps(runs: pl.DataFrame, start: date, end: date) -> pl.DataFrame:
    """Missing sequence numbers of the writers seen in ``[start, end)``: writer, first and last missing.

    ``runs`` (:func:`sequence_runs`) cover the range and the day either side of it, silver and
    quarantine together: an event in quarantine is not lost, and a writer's events around midnight can
    fall on either side of it. A gap is reported when either of its neighbours lies in the range.
    """
    in_range = (pl.col(DAY_COLUMN) >= start) & (pl.col(DAY_COLUMN) < end)
    writers = runs.filter(in_range).get_column("writer_id").unique().implode()
    ordered = (
        runs.filter(pl.col("writer_id").is_in(writers))
        .sort("writer_id", "first", "last")
        .with_columns(reached=pl.col("last").cum_max().shift(1).over("writer_id"))
    )
    holes = ordered.filter(pl.col("first") > pl.col("reached") + 1)
    # The gap's lower neighbour is the sequence ``reached``: the end of some earlier run, on its own day.
    below = ordered.select("writer_id", pl.col("last").alias("reached"), pl.col(DAY_COLUMN).alias("below_day"))
    gaps = (
        holes.join(below, on=["writer_id", "reached"], how="left")
        .filter(in_range | ((pl.col("below_day") >= start) & (pl.col("below_day") < end)))
        .select("writer_id", first_missing=pl.col("reached") + 1, last_missing=pl.col("first") - 1)
        .unique()
    )
    return gaps.sort("writer_id", "first_missing")


def sequence_gap_check(gaps: pl.DataFrame) -> dg.AssetCheckResult:
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
