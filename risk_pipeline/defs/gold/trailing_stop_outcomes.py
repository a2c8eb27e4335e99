"""``gold/trailing_stop_outcomes``: one row per trailing stop (``execution_id``) and how it ended.

Each row folds a stop's whole life -- add, activation, ratchets, trigger or removal -- into its
premiums and times, plus the figures a post-mortem asks for:

* ``outcome`` -- ``triggered`` (a trigger was seen; it wins over a later removal), ``removed``, or ``open``;
* ``profit_locked`` = stop premium at the trigger - entry premium (the design guide's Query 2);
* ``realized_pnl`` = exit premium (the current premium at the trigger) - entry premium;
* ``giveback`` = highest premium - exit premium: how much of the peak the trail gave back;
* ``n_updates`` -- TS_UPDATE events (ratchets); ``duration_seconds`` -- add to trigger/removal;
* ``underlying``, ``option_right``, ``strike``, ``expiry`` -- the option the stop protected, and
  ``entry_option_delta`` -- its delta, each from the stop's first event that carries it (event schema
  version 2). Stops logged by version-1 writers have ``underlying`` (silver's upcast takes it from
  ``symbol``) and nulls for the rest; their premiums and P&L are computed exactly as for any stop.

Events that arrive without their TS_ADD (the add was lost or came from before the lake) still make
a row: whatever is unknown (``added_at``, ``duration_seconds``, perhaps ``entry_premium``) is null.
Events without an ``execution_id`` cannot belong to a stop and are ignored.

Layout -- why partitions are "the day of the stop's last event"
----------------------------------------------------------------
A stop can live for days, yet must be one row. Building day D:

1. read silver(D) and the carried state as of the day before: every stop still open, plus stops
   closed within the last :data:`CLOSED_RETENTION_DAYS` days (so a late event -- a removal after a
   trigger that crossed midnight, say -- still lands on the stop's row instead of starting a new one);
2. fold the day's events onto those rows; every stop touched on D is written to partition D with
   ``event_date = last_event_date = D`` (``lake.replace_days``: replaces exactly partition D);
3. delete the touched stops' now-superseded rows from the earlier partitions the state says they
   were in -- a delete pruned to those partitions, never a scan of history;
4. write state(D).

Re-running D reads the same state, writes the same partition D, and its delete finds nothing left
to delete, so earlier partitions are untouched. Re-running an older day C leaves out the stops whose
row already lives in a later partition (that row supersedes C's view of them), so a stop keeps one
row whatever order days are re-run in; later days reflect a change to C once they are re-run in
order (as for every carried-state table, see :mod:`~risk_pipeline.defs.gold.carry`).
Steps 2 and 3 are separate commits: a crash between them leaves a duplicate that re-running D heals.
A stop that receives an event more than the retention after it closed starts a second row.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Final

import polars as pl
import pyarrow as pa
from deltalake import CommitProperties

from risk_pipeline.defs.gold.carry import (
    ONE_DAY,
    DayBatch,
    GoldResult,
    commit_metadata,
    read_state_before,
    silver_days,
    state_partition,
    state_schema,
)
from risk_pipeline.lake import DAY_COLUMN, Lake, TableRef, compact, sql_string
from risk_runtime.events import TIMESTAMP, RiskEventType

TRAILING_STOP_OUTCOMES: Final = TableRef("gold", "trailing_stop_outcomes")
TRAILING_STOP_STATE: Final = TableRef("gold", "_trailing_stop_state")

CLOSED_RETENTION_DAYS: Final = 7
"""How long a triggered or removed stop stays in the carried state to absorb late events."""

TRIGGERED: Final = "triggered"
REMOVED: Final = "removed"
OPEN: Final = "open"

_CONTRACT: Final = [
    pa.field("underlying", pa.string()),
    pa.field("option_right", pa.string()),
    pa.field("strike", pa.float64()),
    pa.field("expiry", pa.date32()),
    pa.field("entry_option_delta", pa.float64()),
]
"""The stop's option (event schema version 2); null where its events did not carry it."""

SCHEMA: Final = pa.schema(
    [
        pa.field("execution_id", pa.string(), nullable=False),
        pa.field("symbol", pa.string()),
        *_CONTRACT,
        pa.field("outcome", pa.string(), nullable=False),
        pa.field("entry_premium", pa.float64()),
        pa.field("added_at", TIMESTAMP),
        pa.field("activated_at", TIMESTAMP),
        pa.field("highest_premium", pa.float64()),
        pa.field("stop_premium", pa.float64()),
        pa.field("exit_premium", pa.float64()),
        pa.field("triggered_at", TIMESTAMP),
        pa.field("removed_at", TIMESTAMP),
        pa.field("profit_locked", pa.float64()),
        pa.field("realized_pnl", pa.float64()),
        pa.field("giveback", pa.float64()),
        pa.field("n_updates", pa.int64(), nullable=False),
        pa.field("duration_seconds", pa.float64()),
        pa.field("last_event_date", pa.date32(), nullable=False),
        pa.field(DAY_COLUMN, pa.date32(), nullable=False),
    ]
)
"""The outcomes table; ``event_date`` (the partition) always equals ``last_event_date``."""

_FOLDED: Final = [
    pa.field("execution_id", pa.string()),
    pa.field("symbol", pa.string()),
    *_CONTRACT,
    pa.field("entry_premium", pa.float64()),
    pa.field("added_at", TIMESTAMP),
    pa.field("activated_at", TIMESTAMP),
    pa.field("highest_premium", pa.float64()),
    pa.field("stop_premium", pa.float64()),
    pa.field("stop_at_trigger", pa.float64()),
    pa.field("exit_premium", pa.float64()),
    pa.field("triggered_at", TIMESTAMP),
    pa.field("removed_at", TIMESTAMP),
    pa.field("n_updates", pa.int64()),
    pa.field("last_event_date", pa.date32()),
]
STATE_SCHEMA: Final = state_schema(_FOLDED)
"""A stop's folded facts so far; derived columns are recomputed from these on every write."""
_FOLDED_NAMES: Final = [f.name for f in _FOLDED]

_EVENT_TYPES: Final = [
    t.value
    for t in (
        RiskEventType.TS_ADD,
        RiskEventType.TS_ACTIVATE,
        RiskEventType.TS_UPDATE,
        RiskEventType.TS_TRIGGER,
        RiskEventType.TS_REMOVE,
    )
]
_EVENT_COLUMNS: Final = [
    "execution_id",
    "symbol",
    "underlying",
    "option_right",
    "strike",
    "expiry",
    "option_delta",
    "timestamp",
    "entry_premium",
    "current_premium",
    "highest_premium",
    "stop_premium",
]


_CONTRACT_FROM_EVENTS: Final = ["underlying", "option_right", "strike", "expiry"]
"""Contract columns read from events under the same name (``entry_option_delta`` comes from ``option_delta``)."""


_EVENT_CONTRACT_TYPES: Final[dict[str, pl.DataType]] = {
    "underlying": pl.String(),
    "option_right": pl.String(),
    "strike": pl.Float64(),
    "expiry": pl.Date(),
    "option_delta": pl.Float64(),
}


def _is(kind: RiskEventType) -> pl.Expr:
    return pl.col("event_type") == kind.value


def fold_day(events: pl.DataFrame, state: pl.DataFrame, day: date) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The stops touched on ``day`` (folded with their carried facts) and the state after the day.

    Pure: ``events`` are the day's trailing-stop events in event order, ``state`` the carried rows
    (:data:`STATE_SCHEMA` columns without the bookkeeping ones). Returns ``(touched, new_state)``,
    both in folded form; :func:`outcome_rows` derives the table's rows from ``touched``.
    """
    trigger, remove = _is(RiskEventType.TS_TRIGGER), _is(RiskEventType.TS_REMOVE)
    absent = [pl.lit(None, dtype).alias(c) for c, dtype in _EVENT_CONTRACT_TYPES.items() if c not in events.columns]
    if absent:  # events shaped before schema version 2: their stops have no contract
        events = events.with_columns(absent)
    daily = (
        events.filter(pl.col("execution_id").is_not_null())
        .group_by("execution_id", maintain_order=True)
        .agg(
            pl.col("symbol").drop_nulls().last().alias("d_symbol"),
            *(pl.col(c).drop_nulls().first().alias(f"d_{c}") for c in _CONTRACT_FROM_EVENTS),
            pl.col("option_delta").drop_nulls().first().alias("d_entry_option_delta"),
            pl.col("entry_premium").filter(_is(RiskEventType.TS_ADD)).drop_nulls().first().alias("d_entry_add"),
            pl.col("entry_premium").drop_nulls().first().alias("d_entry_any"),
            pl.col("timestamp").filter(_is(RiskEventType.TS_ADD)).first().alias("d_added_at"),
            pl.col("timestamp").filter(_is(RiskEventType.TS_ACTIVATE)).first().alias("d_activated_at"),
            pl.col("highest_premium").max().alias("d_highest"),
            pl.col("stop_premium").drop_nulls().last().alias("d_stop"),
            pl.col("timestamp").filter(trigger).first().alias("d_triggered_at"),
            pl.col("current_premium").filter(trigger).first().alias("d_exit"),
            pl.col("stop_premium").filter(trigger).first().alias("d_stop_at_trigger"),
            pl.col("timestamp").filter(remove).first().alias("d_removed_at"),
            _is(RiskEventType.TS_UPDATE).sum().cast(pl.Int64).alias("d_n_updates"),
        )
    )
    earlier_trigger = pl.col("triggered_at").is_not_null()
    touched = (
        daily.join(state, on="execution_id", how="left")
        .with_columns(
            pl.coalesce("d_symbol", "symbol").alias("symbol"),
            # The contract is the stop's from its first event that carried it: the carried value wins.
            *(pl.coalesce(c, f"d_{c}").alias(c) for c in [*_CONTRACT_FROM_EVENTS, "entry_option_delta"]),
            pl.coalesce("entry_premium", "d_entry_add", "d_entry_any").alias("entry_premium"),
            pl.coalesce("added_at", "d_added_at").alias("added_at"),
            pl.coalesce("activated_at", "d_activated_at").alias("activated_at"),
            pl.max_horizontal("highest_premium", "d_highest").alias("highest_premium"),
            pl.coalesce("d_stop", "stop_premium").alias("stop_premium"),
            pl.when(earlier_trigger).then("stop_at_trigger").otherwise("d_stop_at_trigger").alias("stop_at_trigger"),
            pl.when(earlier_trigger).then("exit_premium").otherwise("d_exit").alias("exit_premium"),
            pl.coalesce("triggered_at", "d_triggered_at").alias("triggered_at"),
            pl.coalesce("removed_at", "d_removed_at").alias("removed_at"),
            (pl.col("n_updates").fill_null(0) + pl.col("d_n_updates")).alias("n_updates"),
            pl.lit(day).alias("last_event_date"),
        )
        .select(_FOLDED_NAMES)
    )
    untouched = state.join(touched, on="execution_id", how="anti")
    horizon = day - timedelta(days=CLOSED_RETENTION_DAYS)
    still_open = pl.col("triggered_at").is_null() & pl.col("removed_at").is_null()
    new_state = (
        pl.concat([untouched, touched], how="vertical_relaxed")
        .filter(still_open | (pl.col("last_event_date") > horizon))
        .sort("execution_id")
    )
    return touched, new_state


def outcome_rows(folded: pl.DataFrame) -> pl.DataFrame:
    """The table's rows for folded stops: outcome and the derived money and time figures."""
    triggered = pl.col("triggered_at").is_not_null()
    ended_at = pl.coalesce("triggered_at", "removed_at")
    return (
        folded.with_columns(
            pl.when(triggered)
            .then(pl.lit(TRIGGERED))
            .when(pl.col("removed_at").is_not_null())
            .then(pl.lit(REMOVED))
            .otherwise(pl.lit(OPEN))
            .alias("outcome"),
            pl.when(triggered)
            .then(pl.coalesce("stop_at_trigger", "stop_premium") - pl.col("entry_premium"))
            .alias("profit_locked"),
            pl.when(triggered).then(pl.col("exit_premium") - pl.col("entry_premium")).alias("realized_pnl"),
            pl.when(triggered).then(pl.col("highest_premium") - pl.col("exit_premium")).alias("giveback"),
            ((ended_at - pl.col("added_at")).dt.total_microseconds() / 1_000_000).alias("duration_seconds"),
            pl.col("last_event_date").alias(DAY_COLUMN),
        )
        .sort("execution_id")
        .select([f.name for f in SCHEMA])
    )


def _superseded(touched: pl.DataFrame, state: pl.DataFrame, day: date) -> pl.DataFrame:
    """``execution_id, last_event_date`` of the touched stops whose row lives in an earlier partition."""
    return (
        state.join(touched.select("execution_id"), on="execution_id", how="semi")
        .filter(pl.col("last_event_date") < day)
        .select("execution_id", "last_event_date")
    )


def _delete_superseded(lake: Lake, moved: pl.DataFrame, day: date, run_id: str | None) -> None:
    """Delete the rows ``moved`` names (``execution_id`` in partition ``last_event_date``) from the table."""
    if moved.is_empty() or not lake.exists(TRAILING_STOP_OUTCOMES):
        return
    # A MERGE keyed on (day, execution_id), not a DELETE with the ids spelled out: an IN list of
    # thousands of literals took ~1.7 s per day to plan, the keyed join ~25 ms. The literal list of
    # days lets Delta prune the merge to the partitions that hold moved rows.
    days = ", ".join(sql_string(d.isoformat()) for d in sorted(set(moved["last_event_date"].to_list())))
    source = pa.table(
        {
            "execution_id": pa.array(moved["execution_id"].to_list(), pa.string()),
            DAY_COLUMN: pa.array(moved["last_event_date"].to_list(), pa.date32()),
        }
    )
    (
        lake.table(TRAILING_STOP_OUTCOMES)
        .merge(
            source,
            predicate=(
                f"t.{DAY_COLUMN} IN ({days}) AND t.{DAY_COLUMN} = s.{DAY_COLUMN} AND t.execution_id = s.execution_id"
            ),
            source_alias="s",
            target_alias="t",
            commit_properties=CommitProperties(custom_metadata=commit_metadata(day, run_id)),
        )
        .when_matched_delete()
        .execute()
    )


def _rows_not_superseded(lake: Lake, rows: pl.DataFrame, day: date) -> pl.DataFrame:
    """``rows`` minus stops whose row already lives in a later partition.

    Re-running an older day must not re-insert a stop that has since moved on (a stale "open" copy
    beside its later "removed" row): the later row supersedes it, so "one row per stop" holds for
    any order of re-runs. For the newest day there are no later partitions and this reads nothing.
    """
    if rows.is_empty():
        return rows
    later = lake.read_days(TRAILING_STOP_OUTCOMES, day + ONE_DAY, date.max, columns=["execution_id"], schema=SCHEMA)
    if later.is_empty():
        return rows
    return rows.join(later.unique(), on="execution_id", how="anti")


def build_days(lake: Lake, start: date, end: date, *, run_id: str | None = None) -> GoldResult:
    """Materialise the days ``[start, end)`` in order (see the module docstring for the layout).

    Days are written in batches (:class:`~risk_pipeline.defs.gold.carry.DayBatch`): a stop that moves
    between two days of one batch is simply dropped from the earlier day before anything is written, so
    only moves out of partitions already in the table need the MERGE, once per batch.
    """
    per_day: dict[date, int] = {}
    state_rows: dict[date, int] = {}
    carried_from: date | None = None
    state: pl.DataFrame | None = None
    outcomes = DayBatch(lake, TRAILING_STOP_OUTCOMES, SCHEMA, run_id=run_id)
    states = DayBatch(lake, TRAILING_STOP_STATE, STATE_SCHEMA, run_id=run_id)
    written_moves: list[pl.DataFrame] = []

    def flush(day: date) -> None:
        outcomes.flush()
        if written_moves:
            _delete_superseded(lake, pl.concat(written_moves), day, run_id)
            written_moves.clear()
        states.flush()

    for day, events in silver_days(lake, start, end, _EVENT_TYPES, _EVENT_COLUMNS):
        if state is None:
            state, carried_from = read_state_before(lake, TRAILING_STOP_STATE, day, STATE_SCHEMA)
        touched, new_state = fold_day(events, state, day)
        moved = _superseded(touched, state, day)
        # Moves out of a day the batch still holds are undone in memory; the rest need the MERGE.
        first_held = outcomes.first_day
        held = pl.lit(False) if first_held is None else pl.col("last_event_date") >= first_held
        for (held_day,), ids in moved.filter(held).group_by("last_event_date"):
            outcomes.drop(held_day, ~pl.col("execution_id").is_in(ids["execution_id"].implode()))
        written_moves.append(moved.filter(~held))
        per_day[day] = outcomes.add(day, _rows_not_superseded(lake, outcome_rows(touched), day))
        state = compact(new_state)  # carried on: must not pin the day's silver
        state_rows[day] = state.height
        states.add(day, state_partition(state, day))
        if outcomes.full or states.full:
            flush(day)
    flush(end - ONE_DAY)
    return GoldResult(TRAILING_STOP_OUTCOMES, per_day, carried_from, state_rows)
