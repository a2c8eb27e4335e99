"""The gold tables' asset checks: each gold table must be valid on its own terms and add up to silver.

Reconciliation reads only the days a run materialised, from both layers, so a check costs what the
run cost. Names are constants shared by the specs and the results.
"""

from __future__ import annotations

from datetime import date
from typing import Final

import dagster as dg
import polars as pl

from risk_pipeline.defs.constants import asset_key
from risk_pipeline.defs.gold.carry import read_state_before
from risk_pipeline.defs.gold.circuit_breaker_transitions import CIRCUIT_BREAKER_TRANSITIONS
from risk_pipeline.defs.gold.limit_rejection_stats import LIMIT_REJECTION_STATS
from risk_pipeline.defs.gold.trailing_stop_outcomes import STATE_SCHEMA as TS_STATE_SCHEMA
from risk_pipeline.defs.gold.trailing_stop_outcomes import TRAILING_STOP_OUTCOMES, TRAILING_STOP_STATE, TRIGGERED
from risk_pipeline.defs.silver.schema import SILVER
from risk_pipeline.lake import DAY_COLUMN, Lake, sql_date
from risk_runtime.events import RiskEventType

TRANSITIONS_VALID: Final = "every_transition_valid"
TRANSITIONS_RECONCILE: Final = "transitions_reconcile_with_silver"
TRIGGERED_STOP_BELOW_HIGH: Final = "triggered_stop_at_or_below_highest"
OUTCOMES_RECONCILE: Final = "triggers_reconcile_with_silver"
ONE_ROW_PER_STOP: Final = "one_row_per_stop"
REJECTIONS_RECONCILE: Final = "rejections_reconcile_with_silver"

CB_KEY: Final = asset_key(CIRCUIT_BREAKER_TRANSITIONS)
TS_KEY: Final = asset_key(TRAILING_STOP_OUTCOMES)
PL_KEY: Final = asset_key(LIMIT_REJECTION_STATS)

CIRCUIT_BREAKER_CHECKS: Final = [
    dg.AssetCheckSpec(
        TRANSITIONS_VALID,
        asset=CB_KEY,
        description="Every transition is legal and continues from the breaker's previous state (is_valid).",
    ),
    dg.AssetCheckSpec(
        TRANSITIONS_RECONCILE,
        asset=CB_KEY,
        description="One gold row per circuit_breaker_state_change event in silver, day by day.",
    ),
]
TRAILING_STOP_CHECKS: Final = [
    dg.AssetCheckSpec(
        TRIGGERED_STOP_BELOW_HIGH,
        asset=TS_KEY,
        description="Every triggered stop has stop_premium <= highest_premium.",
    ),
    dg.AssetCheckSpec(
        ONE_ROW_PER_STOP,
        asset=TS_KEY,
        blocking=True,
        description="No stop of the materialised days has a second row where it lived before (a stop's row moves "
        "with its last event; the partitions it can have moved from are read, not the whole table).",
    ),
    dg.AssetCheckSpec(
        OUTCOMES_RECONCILE,
        asset=TS_KEY,
        description="Triggered outcomes whose trigger fell in the run's days = trailing_stop_trigger events in silver.",
    ),
]
LIMIT_CHECKS: Final = [
    dg.AssetCheckSpec(
        REJECTIONS_RECONCILE,
        asset=PL_KEY,
        description="Per day: summed rejection_count and checks_total equal silver's rejection and check events.",
    ),
]


def _silver_counts(lake: Lake, start: date, end: date, event_types: list[RiskEventType]) -> pl.DataFrame:
    silver = lake.read_days(SILVER, start, end, columns=["event_type", "event_date"])
    if not silver.height:
        return pl.DataFrame(schema={"event_date": pl.Date, "event_type": pl.String, "n": pl.UInt32})
    return (
        silver.filter(pl.col("event_type").is_in([t.value for t in event_types]))
        .group_by("event_date", "event_type")
        .len("n")
    )


def transitions_checks(lake: Lake, start: date, end: date) -> list[dg.AssetCheckResult]:
    gold = lake.read_days(CIRCUIT_BREAKER_TRANSITIONS, start, end, columns=["source", "timestamp", "is_valid"])
    invalid = gold.filter(~pl.col("is_valid")) if gold.height else gold
    silver = _silver_counts(lake, start, end, [RiskEventType.CB_STATE_CHANGE])
    expected = int(silver.get_column("n").sum()) if silver.height else 0
    return [
        dg.AssetCheckResult(
            check_name=TRANSITIONS_VALID,
            asset_key=CB_KEY,
            passed=invalid.height == 0,
            metadata={
                "invalid_transitions": invalid.height,
                "examples": [f"{r['source']} at {r['timestamp']}" for r in invalid.head(10).to_dicts()],
            },
        ),
        dg.AssetCheckResult(
            check_name=TRANSITIONS_RECONCILE,
            asset_key=CB_KEY,
            passed=gold.height == expected,
            metadata={"gold_rows": gold.height, "silver_state_changes": expected},
        ),
    ]


def _repeated_stops(lake: Lake, gold: pl.DataFrame, start: date) -> pl.DataFrame:
    """``execution_id``s of the range's stops that have a row in another partition too.

    A stop's row moves to the partition of its last event, so a run can leave a stale copy only where
    the stop was before: in the partition the carried state says (its ``last_event_date`` as of the
    day before the range), or in a later partition when an older day is re-run. Only those partitions
    are read, so the check costs the same on a year of gold as on a week.
    """
    if not gold.height:
        return gold.select("execution_id")
    state, _ = read_state_before(lake, TRAILING_STOP_STATE, start, TS_STATE_SCHEMA)
    touched = gold.select("execution_id").unique()
    earlier = state.join(touched, on="execution_id", how="semi").get_column("last_event_date").unique().to_list()
    where = f"{DAY_COLUMN} >= {sql_date(start)}"
    if earlier:
        where += f" OR {DAY_COLUMN} IN ({', '.join(sql_date(d) for d in sorted(earlier))})"
    ids = lake.read_all(TRAILING_STOP_OUTCOMES, columns=["execution_id"], where=where)
    return ids.filter(pl.col("execution_id").is_duplicated()).join(touched, on="execution_id", how="semi").unique()


def outcomes_checks(lake: Lake, start: date, end: date) -> list[dg.AssetCheckResult]:
    gold = lake.read_days(TRAILING_STOP_OUTCOMES, start, end)
    triggered = gold.filter(pl.col("outcome") == TRIGGERED) if gold.height else gold
    above = triggered.filter(pl.col("stop_premium") > pl.col("highest_premium")) if triggered.height else triggered
    in_range = (
        triggered.filter((pl.col("triggered_at").dt.date() >= start) & (pl.col("triggered_at").dt.date() < end))
        if triggered.height
        else triggered
    )
    silver = _silver_counts(lake, start, end, [RiskEventType.TS_TRIGGER])
    expected = int(silver.get_column("n").sum()) if silver.height else 0
    repeated = _repeated_stops(lake, gold, start)
    return [
        dg.AssetCheckResult(
            check_name=ONE_ROW_PER_STOP,
            asset_key=TS_KEY,
            passed=repeated.height == 0,
            metadata={"repeated_execution_ids": repeated.height, "examples": repeated.head(10).to_series().to_list()}
            if repeated.height
            else {"repeated_execution_ids": 0},
        ),
        dg.AssetCheckResult(
            check_name=TRIGGERED_STOP_BELOW_HIGH,
            asset_key=TS_KEY,
            passed=above.height == 0,
            metadata={"violations": above.height, "examples": above.get_column("execution_id").head(10).to_list()}
            if above.height
            else {"violations": 0},
        ),
        dg.AssetCheckResult(
            check_name=OUTCOMES_RECONCILE,
            asset_key=TS_KEY,
            passed=in_range.height == expected,
            metadata={"gold_triggered": in_range.height, "silver_triggers": expected},
        ),
    ]


def rejection_checks(lake: Lake, start: date, end: date) -> list[dg.AssetCheckResult]:
    gold = lake.read_days(LIMIT_REJECTION_STATS, start, end)
    silver = _silver_counts(lake, start, end, [RiskEventType.PL_CHECK, RiskEventType.PL_REJECTION])
    rejections = silver.filter(pl.col("event_type") == RiskEventType.PL_REJECTION.value)
    expected_rejections = int(rejections.get_column("n").sum()) if rejections.height else 0
    gold_rejections = int(gold.get_column("rejection_count").sum()) if gold.height else 0
    expected_checks = silver.group_by("event_date").agg(pl.col("n").sum().alias("checks")) if silver.height else None
    gold_checks = (
        gold.group_by("event_date").agg(pl.col("checks_total").first().alias("checks")) if gold.height else None
    )
    mismatched_days: list[str] = []
    if expected_checks is not None and gold_checks is not None:
        joined = expected_checks.join(gold_checks, on="event_date", how="left", suffix="_gold")
        # Days with checks but no rejection or warning have no gold row by design; only compare days present.
        mismatched_days = [
            str(r["event_date"])
            for r in joined.to_dicts()
            if r["checks_gold"] is not None and r["checks_gold"] != r["checks"]
        ]
    return [
        dg.AssetCheckResult(
            check_name=REJECTIONS_RECONCILE,
            asset_key=PL_KEY,
            passed=gold_rejections == expected_rejections and not mismatched_days,
            metadata={
                "gold_rejections": gold_rejections,
                "silver_rejections": expected_rejections,
                "days_checks_total_mismatch": mismatched_days,
            },
        )
    ]
