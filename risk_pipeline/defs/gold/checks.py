"""The gold tables' asset checks: each gold table must be valid on its own terms and add up to silver.

Completeness is checked by key, not by totals that a deletion and a duplicate would balance: every
silver state change has exactly one transition row (by ``event_id``); every TS_ADD has the one outcome
row its lifetime began, and each stop's rows gained exactly the events and ratchets silver holds for
it. Each check reads only the days a run materialised (plus, for stops, the partitions where the
lifetimes those days touch began), so a check costs what the run cost. Names are constants shared by
the specs and the results.
"""

from __future__ import annotations

from datetime import date
from typing import Final

import dagster as dg
import polars as pl

from risk_pipeline.defs.constants import asset_key
from risk_pipeline.defs.gold.circuit_breaker_transitions import CIRCUIT_BREAKER_TRANSITIONS
from risk_pipeline.defs.gold.limit_rejection_stats import LIMIT_REJECTION_STATS
from risk_pipeline.defs.gold.trailing_stop_outcomes import EVENT_TYPES as TS_EVENT_TYPES
from risk_pipeline.defs.gold.trailing_stop_outcomes import SCHEMA as TS_SCHEMA
from risk_pipeline.defs.gold.trailing_stop_outcomes import (
    TRAILING_STOP_OUTCOMES,
    TRIGGERED,
    carried_state,
)
from risk_pipeline.defs.silver.schema import SILVER
from risk_pipeline.lake import DAY_COLUMN, Lake, sql_date, sql_string
from risk_runtime.events import RiskEventType

TRANSITIONS_VALID: Final = "every_transition_valid"
TRANSITIONS_RECONCILE: Final = "transitions_reconcile_with_silver"
TRIGGERED_STOP_BELOW_HIGH: Final = "triggered_stop_at_or_below_highest"
OUTCOMES_RECONCILE: Final = "triggers_reconcile_with_silver"
STOP_LIFETIMES_COMPLETE: Final = "one_row_per_stop_lifetime"
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
        description="Exactly one gold row per circuit_breaker_state_change event in silver (matched by event_id), "
        "and no row without one.",
    ),
]
TRAILING_STOP_CHECKS: Final = [
    dg.AssetCheckSpec(
        TRIGGERED_STOP_BELOW_HIGH,
        asset=TS_KEY,
        description="Every triggered stop has stop_premium <= highest_premium.",
    ),
    dg.AssetCheckSpec(
        STOP_LIFETIMES_COMPLETE,
        asset=TS_KEY,
        blocking=True,
        description="Every stop lifetime the materialised days touch has exactly one row: each TS_ADD has the row "
        "its lifetime began (execution_id, lifetime_id), no key is there twice, and what each stop's rows gained "
        "over those days (n_events, n_updates) equals its events in silver.",
    ),
    dg.AssetCheckSpec(
        OUTCOMES_RECONCILE,
        asset=TS_KEY,
        description="Triggered outcomes whose trigger fell in the run's days = trailing_stop_trigger events in silver, "
        "wherever the stops' rows sit.",
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


def _examples(ids: pl.Series) -> list[str]:
    return ids.head(10).to_list()


def transitions_checks(lake: Lake, start: date, end: date) -> list[dg.AssetCheckResult]:
    """Reads the transitions and silver's state-change events of ``[start, end)``: both are partitioned by
    the event's own UTC day, so those partitions hold every row the check compares."""
    gold = lake.read_days(
        CIRCUIT_BREAKER_TRANSITIONS, start, end, columns=["event_id", "source", "timestamp", "is_valid"]
    )
    invalid = gold.filter(~pl.col("is_valid")) if gold.height else gold
    silver = lake.read_days(
        SILVER,
        start,
        end,
        columns=["event_id"],
        where=f"event_type = {sql_string(RiskEventType.CB_STATE_CHANGE.value)}",
    ).get_column("event_id")
    rows = gold.get_column("event_id") if gold.height else pl.Series("event_id", [], pl.String)
    missing = silver.filter(~silver.is_in(rows.implode())).sort()
    extra = rows.filter(~rows.is_in(silver.implode()) | rows.is_null()).sort()
    duplicated = rows.filter(rows.is_duplicated()).unique().sort()
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
            passed=missing.is_empty() and extra.is_empty() and duplicated.is_empty(),
            metadata={
                "gold_rows": gold.height,
                "silver_state_changes": silver.len(),
                "missing_event_ids": _examples(missing),
                "extra_event_ids": _examples(extra),
                "duplicated_event_ids": _examples(duplicated),
            },
        ),
    ]


_CARRIED: Final = ["execution_id", "lifetime_id", "began_on", "n_events", "n_updates"]


def _silver_stops(lake: Lake, start: date, end: date) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Silver's stop events of ``[start, end)``: counted per ``execution_id``, and the TS_ADDs' ids.

    One aggregating scan pruned to those partitions (streamed: it never holds the range's events), then
    the adds alone -- a fraction of the events. Neither depends on how the builder folded them.
    """
    in_range = pl.col(DAY_COLUMN).is_between(start, end, closed="left") & pl.col("execution_id").is_not_null()
    if not lake.exists(SILVER):
        empty = {"execution_id": pl.String}
        counts = pl.DataFrame(schema={**empty, "n_events": pl.Int64, "n_updates": pl.Int64, "n_triggers": pl.Int64})
        return counts, pl.DataFrame(schema={**empty, "lifetime_id": pl.String})
    events = pl.scan_delta(lake.table(SILVER)).filter(in_range & pl.col("event_type").is_in(TS_EVENT_TYPES))
    counts = (
        events.group_by("execution_id")
        .agg(
            pl.len().cast(pl.Int64).alias("n_events"),
            (pl.col("event_type") == RiskEventType.TS_UPDATE.value).sum().cast(pl.Int64).alias("n_updates"),
            (pl.col("event_type") == RiskEventType.TS_TRIGGER.value).sum().cast(pl.Int64).alias("n_triggers"),
        )
        .collect(engine="streaming")
    )
    adds = (
        events.filter(pl.col("event_type") == RiskEventType.TS_ADD.value)
        .select("execution_id", pl.col("event_id").alias("lifetime_id"))
        .collect()
    )
    return counts, adds


def _lifetime_rows(lake: Lake, start: date, end: date, carried: pl.DataFrame, ids: pl.DataFrame) -> pl.DataFrame:
    """The gold rows a range can have written: partitions ``[start, end)`` and the rows of carried lifetimes
    of the ids with events in the range (in the partitions of the days those lifetimes began)."""
    where = f"{DAY_COLUMN} >= {sql_date(start)} AND {DAY_COLUMN} < {sql_date(end)}"
    began = carried.join(ids, on="execution_id", how="semi").get_column("began_on").drop_nulls().unique().sort()
    if began.len():
        where = f"({where}) OR {DAY_COLUMN} IN ({', '.join(sql_date(d) for d in began.to_list())})"
    rows = lake.read_all(TRAILING_STOP_OUTCOMES, schema=TS_SCHEMA, where=where)
    in_range = (pl.col(DAY_COLUMN) >= start) & (pl.col(DAY_COLUMN) < end)
    return rows.filter(in_range | pl.col("execution_id").is_in(ids.get_column("execution_id").implode()))


def outcomes_checks(
    lake: Lake, start: date, end: date, *, carried: pl.DataFrame | None = None
) -> list[dg.AssetCheckResult]:
    """The trailing-stop checks of the days ``[start, end)``, evaluated right after they were built.

    Reads silver's stop events of those days (counted per ``execution_id`` in one streamed scan, plus the
    TS_ADDs), the carried state from before them, and the gold rows those events can touch: partitions
    ``[start, end)`` plus the partitions where the carried lifetimes of the same ids began -- never the
    whole table, so a check costs what the run cost.

    ``carried`` is that state as the builder read it at the start of the same step
    (:attr:`~risk_pipeline.defs.gold.carry.GoldResult.carried`): the same partition's rows, so it is not read
    twice -- on a long lake it holds every open stop. The gold rows and silver's events are always read
    from the tables.

    ``one_row_per_stop_lifetime`` fails on a lifetime begun by a TS_ADD of these days without its row, an
    id with events here but no row that took them, a row here of an id with no event here, a key twice,
    or counts that differ: per id, what its rows gained over the days (``n_events``, ``n_updates`` minus
    the carried lifetime's) equals its events in silver. An id's lifetimes of the range are counted
    together (a reused id: the sum of its rows), which a deletion or a blend cannot balance: a blended-in
    lifetime's add has no row. Rows that days after the range also updated (a rebuild of older days kept
    them) are checked by those days' runs.
    """
    counts, adds = _silver_stops(lake, start, end)
    if carried is None:
        carried, _, _ = carried_state(lake, start)
    carried = carried.select(_CARRIED)
    ids = counts.select("execution_id")
    rows = _lifetime_rows(lake, start, end, carried, ids)

    key = ["execution_id", "lifetime_id"]
    seen = rows.unique(subset=key, keep="first")
    in_range = (pl.col(DAY_COLUMN) >= start) & (pl.col(DAY_COLUMN) < end)
    touched = seen.filter(in_range | (pl.col("last_event_date") >= start))  # rows these days' events can reach
    gained = (
        touched.join(carried, on=key, how="left", suffix="_carried")
        .group_by("execution_id")
        .agg(
            (pl.col("n_events") - pl.col("n_events_carried").fill_null(0)).sum().alias("n_events"),
            (pl.col("n_updates") - pl.col("n_updates_carried").fill_null(0)).sum().alias("n_updates"),
            (pl.col("last_event_date") >= end).any().alias("_later"),
        )
    )
    compared = counts.join(gained.filter(~pl.col("_later")), on="execution_id", how="inner", suffix="_gold")
    problems = {
        "missing": pl.concat(
            [
                adds.join(seen, on=key, how="anti").select("execution_id"),
                counts.join(gained, on="execution_id", how="anti").select("execution_id"),
            ]
        ).unique(maintain_order=True),
        "extra": touched.filter(in_range).join(counts, on="execution_id", how="anti").select("execution_id"),
        "duplicated": rows.filter(pl.struct(key).is_duplicated()).select("execution_id").unique(maintain_order=True),
        "mismatched": compared.filter(
            (pl.col("n_events") != pl.col("n_events_gold")) | (pl.col("n_updates") != pl.col("n_updates_gold"))
        ).select("execution_id"),
    }

    triggered = seen.filter(pl.col("outcome") == TRIGGERED)
    above = triggered.filter(pl.col("stop_premium") > pl.col("highest_premium"))
    triggers_in_range = triggered.filter(
        (pl.col("triggered_at").dt.date() >= start) & (pl.col("triggered_at").dt.date() < end)
    )
    silver_triggers = int(counts.get_column("n_triggers").sum())
    examples = [f"{i}: {kind}" for kind, frame in problems.items() for i in frame.get_column("execution_id").head(10)]
    return [
        dg.AssetCheckResult(
            check_name=STOP_LIFETIMES_COMPLETE,
            asset_key=TS_KEY,
            passed=all(frame.is_empty() for frame in problems.values()),
            metadata={
                "stops_in_silver": counts.height,
                **{kind: frame.height for kind, frame in problems.items()},
                "examples": examples[:10],
            },
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
            passed=triggers_in_range.height == silver_triggers,
            metadata={"gold_triggered": triggers_in_range.height, "silver_triggers": silver_triggers},
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
