"""``gold/circuit_breaker_transitions``: every breaker state change, timed and checked for legality.

One row per ``circuit_breaker_state_change`` event, partitioned by ``event_date``. For each breaker
(``source``) the transitions are ordered by ``(timestamp, writer_id, sequence)`` and each row gets:

* ``seconds_in_old_state`` -- time since the same breaker's previous transition, looking back across
  days through the carried state (null for a breaker's first transition ever seen);
* ``prev_new_state`` -- the state the breaker was last seen entering (null for its first);
* ``is_valid`` -- the transition is legal (CLOSED->OPEN, OPEN->HALF_OPEN, HALF_OPEN->CLOSED,
  HALF_OPEN->OPEN, or a manual reset OPEN->CLOSED) *and* continues from ``prev_new_state``. A
  breaker's first transition is valid if legal. An invalid row is kept, not dropped: it is the
  evidence of a lost event or a breaker bug that a post-mortem is looking for.

Carried state (``gold/_circuit_breaker_state``): one row per breaker ever seen -- its last
``new_state`` and the time it entered it. Breakers are few and long-lived, so it is never pruned.
See :mod:`risk_pipeline.defs.gold.carry` for how the state chains days and what re-running an older
day implies (later days stale until re-run in order).
"""

from __future__ import annotations

from datetime import date
from typing import Final

import polars as pl
import pyarrow as pa

from risk_pipeline.columns import described
from risk_pipeline.defs.gold.carry import (
    ORDER_COLUMNS,
    DayBatch,
    GoldResult,
    read_state_before,
    silver_days,
    state_partition,
    state_schema,
)
from risk_pipeline.lake import DAY_COLUMN, Lake, TableRef, compact
from risk_runtime.events import TIMESTAMP, RiskEventType

CIRCUIT_BREAKER_TRANSITIONS: Final = TableRef("gold", "circuit_breaker_transitions")
CIRCUIT_BREAKER_STATE: Final = TableRef("gold", "_circuit_breaker_state")

SCHEMA: Final = described(
    pa.schema(
        [
            pa.field("event_id", pa.string()),
            pa.field("source", pa.string()),
            pa.field("timestamp", TIMESTAMP),
            pa.field("old_state", pa.string()),
            pa.field("new_state", pa.string()),
            pa.field("failure_count", pa.int64()),
            pa.field("prev_new_state", pa.string()),
            pa.field("seconds_in_old_state", pa.float64()),
            pa.field("is_valid", pa.bool_(), nullable=False),
            pa.field(DAY_COLUMN, pa.date32(), nullable=False),
        ]
    ),
    {
        "event_id": "The silver event this transition is (its UUID).",
        "source": "The circuit breaker's name.",
        "timestamp": "When the breaker changed state, UTC.",
        "old_state": "The state it left: CLOSED, OPEN or HALF_OPEN.",
        "new_state": "The state it entered: CLOSED, OPEN or HALF_OPEN.",
        "failure_count": "Consecutive failures the breaker counted at the change.",
        "prev_new_state": "The state the same breaker's previous transition entered (across days); null for its first.",
        "seconds_in_old_state": "Seconds since the same breaker's previous transition (time spent in old_state).",
        "is_valid": "A legal transition that continues from the breaker's previous state.",
        DAY_COLUMN: "The UTC day of timestamp; the partition.",
    },
)
"""The transitions table (``event_date`` is the UTC day of ``timestamp``, the partition)."""

STATE_SCHEMA: Final = state_schema(
    [
        pa.field("source", pa.string()),
        pa.field("last_state", pa.string()),
        pa.field("last_transition_at", TIMESTAMP),
    ]
)
"""Per breaker, as of the end of ``event_date``: the state it is in and since when."""

LEGAL_TRANSITIONS: Final = frozenset(
    {
        ("CLOSED", "OPEN"),
        ("OPEN", "HALF_OPEN"),
        ("HALF_OPEN", "CLOSED"),
        ("HALF_OPEN", "OPEN"),
        ("OPEN", "CLOSED"),  # manual reset (HALF_OPEN -> CLOSED by reset is already legal)
    }
)

_EVENT_COLUMNS: Final = ["event_id", "source", "timestamp", "old_state", "new_state", "failure_count", DAY_COLUMN]


def transitions_for_day(events: pl.DataFrame, state: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The day's transition rows and the state after them; pure (no I/O), for tests and reuse.

    ``events`` are the day's state-change events (any order; sorted here), ``state`` the carried
    ``source, last_state, last_transition_at`` rows from before the day.
    """
    ordered = events.sort(["source", *ORDER_COLUMNS], nulls_last=True)
    legal = pl.concat_str([pl.col("old_state"), pl.col("new_state")], separator="->").is_in(
        [f"{a}->{b}" for a, b in sorted(LEGAL_TRANSITIONS)]
    )
    rows = (
        ordered.join(state, on="source", how="left", nulls_equal=True)
        .with_columns(
            pl.col("new_state").shift(1).over("source").fill_null(pl.col("last_state")).alias("prev_new_state"),
            pl.col("timestamp").shift(1).over("source").fill_null(pl.col("last_transition_at")).alias("_prev_at"),
        )
        .with_columns(
            ((pl.col("timestamp") - pl.col("_prev_at")).dt.total_microseconds() / 1_000_000).alias(
                "seconds_in_old_state"
            ),
            (
                legal.fill_null(False)
                & (pl.col("prev_new_state").is_null() | (pl.col("prev_new_state") == pl.col("old_state")))
            )
            .fill_null(False)
            .alias("is_valid"),
        )
        .sort([*ORDER_COLUMNS, "source"], nulls_last=True)
        .select([f.name for f in SCHEMA])
    )
    last_today = ordered.group_by("source", maintain_order=True).agg(
        pl.col("new_state").last().alias("last_state"), pl.col("timestamp").last().alias("last_transition_at")
    )
    new_state = pl.concat(
        [state.join(last_today, on="source", how="anti", nulls_equal=True), last_today], how="vertical_relaxed"
    ).sort("source", nulls_last=True)
    return rows, new_state


def build_days(lake: Lake, start: date, end: date, *, run_id: str | None = None) -> GoldResult:
    """Materialise the days ``[start, end)`` in order, replacing exactly those partitions (in few commits)."""
    per_day: dict[date, int] = {}
    state_rows: dict[date, int] = {}
    carried_from: date | None = None
    state: pl.DataFrame | None = None
    transitions = DayBatch(lake, CIRCUIT_BREAKER_TRANSITIONS, SCHEMA, run_id=run_id)
    states = DayBatch(lake, CIRCUIT_BREAKER_STATE, STATE_SCHEMA, run_id=run_id)
    for day, events in silver_days(lake, start, end, [RiskEventType.CB_STATE_CHANGE.value], _EVENT_COLUMNS):
        if state is None:
            state, carried_from = read_state_before(lake, CIRCUIT_BREAKER_STATE, day, STATE_SCHEMA)
        rows, new_state = transitions_for_day(events, state)
        state = compact(new_state)  # carried on: must not pin the day's silver
        per_day[day] = transitions.add(day, rows)
        states.add(day, state_partition(state, day))
        state_rows[day] = state.height
        if transitions.full or states.full:
            transitions.flush()
            states.flush()
    transitions.flush()
    states.flush()
    return GoldResult(CIRCUIT_BREAKER_TRANSITIONS, per_day, carried_from, state_rows)
