"""``gold/trailing_stop_outcomes``: one row per trailing-stop *lifetime* and how it ended.

A lifetime is one stop on one ``execution_id``, from its TS_ADD to its trigger or removal. Each row
folds a lifetime's events -- add, activation, ratchets, trigger or removal -- into its premiums and
times, plus the figures a post-mortem asks for:

* ``outcome`` -- ``triggered`` (a trigger was seen; it wins over a later removal), ``removed``, or ``open``;
* ``profit_locked`` = stop premium at the trigger - entry premium (the design guide's Query 2);
* ``realized_pnl`` = exit premium (the current premium at the trigger) - entry premium;
* ``giveback`` = highest premium - exit premium: how much of the peak the trail gave back;
* ``n_updates`` -- TS_UPDATE events (ratchets); ``n_events`` -- every event folded into the row;
  ``duration_seconds`` -- add to trigger/removal;
* ``underlying``, ``option_right``, ``strike``, ``expiry`` -- the option the stop protected, and
  ``entry_option_delta`` -- its delta, each from the lifetime's first event that carries it (event
  schema version 2). Stops logged by version-1 writers have ``underlying`` (silver's upcast takes it
  from ``symbol``) and nulls for the rest; their premiums and P&L are computed exactly as for any stop.

Lifetimes -- a reused ``execution_id`` is a new row, never a blend
------------------------------------------------------------------
The runtime's :class:`~risk_runtime.trailing_stop.TrailingStopManager` forgets a stop once it has
triggered or been removed, and **may add the same ``execution_id`` again** (a desk re-arming a stop
on a position it re-entered under the same id). Gold keeps every lifetime apart. Taking an id's
events in event order (time, writer, sequence):

* a TS_ADD always begins a new lifetime;
* any other event belongs to the id's current lifetime -- even after its trigger, so a late removal
  (a trigger and a removal racing across midnight) lands on the stop that triggered;
* an event of an id with no current lifetime (its add was lost or predates the lake) begins one too:
  whatever is unknown (``added_at``, ``duration_seconds``, perhaps ``entry_premium``) stays null.

``lifetime_id`` is the ``event_id`` of the event that began the lifetime (its TS_ADD when there was
one), so ``(execution_id, lifetime_id)`` is unique and stable across rebuilds. An add over a lifetime
that never ended (which the manager refuses, so its end was lost) leaves the earlier row as it stood.
Events without an ``execution_id`` cannot belong to a stop and are ignored.

Layout -- why a row lives in the partition of its lifetime's first day
----------------------------------------------------------------------
``event_date`` is the UTC day the lifetime began, and a row never moves: later days update it in
place, by key (an upsert on ``event_date, execution_id, lifetime_id``). Building the days
``[start, end)``:

1. read the carried state as of the day before: each ``execution_id``'s current lifetime (open ones,
   and ended ones for :data:`CLOSED_RETENTION_DAYS` days, to absorb late events), with the day it began;
2. fold each day's events onto it, day by day; a lifetime's row is its facts as of the last day built;
3. replace the partitions ``[start, end)`` with the rows of the lifetimes that began in them (a
   lifetime whose events are no longer in silver -- say its add was quarantined -- simply is not
   written again), and upsert the rows of older lifetimes the range touched into their own partitions:
   those the events touch now, and those an earlier build of these days touched (read from that
   build's state partitions, before they are replaced), which fall back to what the carried state
   says -- so a rebuild that loses a lifetime's later events puts the row back to what remains;
4. write the state of every day.

So a rebuild of one day can never delete a row that another day owns, and re-running any day
recomputes exactly the rows of the lifetimes its events touch, from the state carried into it. When
days after the range were already built, a lifetime whose facts at the range's end come out exactly
as before keeps the row those later days made (:class:`_LaterDays`); one whose facts changed shows
them as of the range's end until the later days are rebuilt in order, as for every carried-state
table (see :mod:`~risk_pipeline.defs.gold.carry`). Step 3's replace and upsert are one commit (a
predicate overwrite of the window's days and of the older partitions, read and rewritten with their
rows swapped by key); rows and states are separate commits, healed by running the range again. An event
more than the retention after
its lifetime ended begins a lifetime of its own.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from typing import Final

import polars as pl
import pyarrow as pa

from risk_pipeline.columns import described
from risk_pipeline.defs.gold import carry
from risk_pipeline.defs.gold.carry import (
    MARKER,
    ONE_DAY,
    ChangeSets,
    DayBatch,
    GoldResult,
    StateChain,
    read_state_changes_before,
    silver_days,
    state_schema,
)
from risk_pipeline.lake import (
    DAY_COLUMN,
    Lake,
    TableRef,
    commit_metadata,
    compact,
    days_between,
    polars_types,
    sql_date,
)
from risk_runtime.events import BRONZE_SCHEMA, TIMESTAMP, RiskEventType
from risk_runtime.instruments import MarketSnapshot, OptionContract

TRAILING_STOP_OUTCOMES: Final = TableRef("gold", "trailing_stop_outcomes", high_cardinality=("lifetime_id",))
TRAILING_STOP_STATE: Final = TableRef("gold", "_trailing_stop_state", high_cardinality=("lifetime_id",))

CLOSED_RETENTION_DAYS: Final = 7
"""How long an ended lifetime stays in the carried state to absorb late events."""

TRIGGERED: Final = "triggered"
REMOVED: Final = "removed"
OPEN: Final = "open"

KEY: Final = ["execution_id", "lifetime_id"]
"""A lifetime's identity: the stop's id and the ``event_id`` of the event that began it."""

_OPTION_DELTA: Final = MarketSnapshot.COLUMNS.option_delta
ENTRY_OPTION_DELTA: Final = "entry_option_delta"
"""The option's delta from the lifetime's first event that carried one (the event's ``option_delta``)."""
_CONTRACT_FROM_EVENTS: Final = list(OptionContract.COLUMNS)
"""Contract columns read from events under the same name (:data:`ENTRY_OPTION_DELTA` comes from the market's)."""
_EVENT_OPTION: Final = pa.schema([BRONZE_SCHEMA.field(c) for c in (*_CONTRACT_FROM_EVENTS, _OPTION_DELTA)])
"""The option columns a stop's events carry, typed as the event model types them."""

_CONTRACT: Final = [
    *(pa.field(c, _EVENT_OPTION.field(c).type) for c in _CONTRACT_FROM_EVENTS),
    pa.field(ENTRY_OPTION_DELTA, _EVENT_OPTION.field(_OPTION_DELTA).type),
]
"""The stop's option (event schema version 2); null where its events did not carry it."""

SCHEMA: Final = described(
    pa.schema(
        [
            pa.field("execution_id", pa.string(), nullable=False),
            # Never null; declared nullable so the column merges into a table written before lifetimes existed.
            pa.field("lifetime_id", pa.string()),
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
            pa.field("n_events", pa.int64()),
            pa.field("duration_seconds", pa.float64()),
            pa.field("last_event_date", pa.date32(), nullable=False),
            pa.field(DAY_COLUMN, pa.date32(), nullable=False),
        ]
    ),
    {
        "execution_id": "The stop's position id.",
        "lifetime_id": "The event_id of the add that began this lifetime (an id added again is a new lifetime).",
        "symbol": "The instrument the stop protected.",
        OptionContract.COLUMNS.underlying: "The option's underlying ticker (null where its events predate version 2).",
        OptionContract.COLUMNS.right: "C (call) or P (put) (null before schema version 2).",
        OptionContract.COLUMNS.strike: "The option's strike (null before schema version 2).",
        OptionContract.COLUMNS.expiry: "The option's expiry day (null before schema version 2).",
        "entry_option_delta": "The option's delta when the stop was added (null before schema version 2).",
        "outcome": "triggered, removed, or open (still trailing).",
        "entry_premium": "The premium the position was entered at.",
        "added_at": "When the stop was added, UTC.",
        "activated_at": "When the stop activated (began to trail), UTC; null if it never did.",
        "highest_premium": "The highest premium seen during the lifetime.",
        "stop_premium": "The stop level: at the trigger for a triggered stop, else the latest.",
        "exit_premium": "The premium at the trigger or removal.",
        "triggered_at": "When the stop triggered, UTC; null unless outcome = triggered.",
        "removed_at": "When the stop was removed, UTC; null unless outcome = removed.",
        "profit_locked": "stop_premium - entry_premium at the trigger (the design guide's Query 2).",
        "realized_pnl": "exit_premium - entry_premium.",
        "giveback": "highest_premium - exit_premium: what the trail gave back from the peak.",
        "n_updates": "Price updates the stop received.",
        "n_events": "Silver events folded into this row (the completeness check compares them).",
        "duration_seconds": "Seconds from the add to the trigger or removal (to the latest event while open).",
        "last_event_date": "The UTC day of the lifetime's latest event.",
        DAY_COLUMN: "The UTC day the lifetime began; the partition (later days update the row in place).",
    },
)
"""The outcomes table; ``event_date`` (the partition) is the UTC day the lifetime began."""

_FOLDED: Final = [
    pa.field("execution_id", pa.string()),
    pa.field("lifetime_id", pa.string()),
    pa.field("began_on", pa.date32()),
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
    pa.field("n_events", pa.int64()),
    pa.field("last_event_date", pa.date32()),
]
STATE_SCHEMA: Final = state_schema(_FOLDED, changes=True)
"""Each ``execution_id``'s current lifetime, folded so far; derived columns are recomputed on every write.
Stored as snapshots and change sets (:mod:`~risk_pipeline.defs.gold.carry`): a day's partition holds, most
days, only the lifetimes it touched."""
_FOLDED_NAMES: Final = [f.name for f in _FOLDED]

EVENT_TYPES: Final = [  # the silver event types a stop's lifetime is made of
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
    "event_id",
    "execution_id",
    "symbol",
    *_EVENT_OPTION.names,
    "timestamp",
    "entry_premium",
    "current_premium",
    "highest_premium",
    "stop_premium",
]


_EVENT_CONTRACT_TYPES: Final[dict[str, pl.DataType]] = polars_types(_EVENT_OPTION)


def _is(kind: RiskEventType) -> pl.Expr:
    return pl.col("event_type") == kind.value


def _by_lifetime(events: pl.DataFrame, current: pl.DataFrame, aggregations: list[pl.Expr]) -> pl.DataFrame:
    """``aggregations`` of ``events`` (one day, in event order, with an ``execution_id``) per lifetime.

    ``current`` holds each id's current lifetime (``execution_id, lifetime_id``) from before the day. A
    TS_ADD begins a lifetime, and so does an id's first event when no lifetime is carried; every other
    event belongs to the lifetime of the event before it. Almost every id has at most one lifetime a day,
    begun (if at all) by its first event: those are grouped by ``execution_id`` alone, as cheap as before
    lifetimes existed. Only the ids with a lifetime beginning after their first event of the day are
    split into segments (a running count of beginnings, per id). Groups come out in each id's event
    order, so an id's last group is its latest lifetime.
    """
    carried = current.select("execution_id", pl.col("lifetime_id").alias("_carried"))
    first = pl.col("execution_id").is_first_distinct()
    marked = events.join(carried, on="execution_id", how="left", maintain_order="left").with_columns(
        (_is(RiskEventType.TS_ADD) | (first & pl.col("_carried").is_null())).alias("_begins"), first.alias("_first")
    )
    keys = [
        *aggregations,
        pl.col("_begins").first().alias("_begun"),
        pl.col("event_id").first().alias("_begun_by"),
        pl.col("_carried").first(),
    ]
    split = marked.filter(pl.col("_begins") & ~pl.col("_first")).get_column("execution_id").unique()
    if split.is_empty():
        groups = marked.group_by("execution_id", maintain_order=True).agg(keys)
    else:
        several = pl.col("execution_id").is_in(split.implode())
        segment = pl.col("_begins").cast(pl.Int64).cum_sum().over("execution_id").alias("_segment")
        groups = pl.concat(
            [
                marked.filter(~several).group_by("execution_id", maintain_order=True).agg(keys),
                marked.filter(several)
                .with_columns(segment)
                .group_by("execution_id", "_segment", maintain_order=True)
                .agg(keys)
                .drop("_segment"),
            ]
        )
    lifetime = pl.when("_begun").then("_begun_by").otherwise("_carried").alias("lifetime_id")
    return groups.with_columns(lifetime).drop("_begun", "_begun_by", "_carried")


def fold_day(events: pl.DataFrame, state: pl.DataFrame, day: date) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The lifetimes touched on ``day`` (folded with their carried facts) and the state after the day.

    Pure: ``events`` are the day's trailing-stop events in event order, ``state`` the carried rows
    (:data:`STATE_SCHEMA` columns without the bookkeeping ones), one per ``execution_id``. Returns
    ``(touched, new_state)``, both in folded form; :func:`outcome_rows` derives the table's rows from
    ``touched``. ``touched`` may hold several lifetimes of one id (a stop triggered and added again the
    same day); the state keeps each id's latest.
    """
    trigger, remove = _is(RiskEventType.TS_TRIGGER), _is(RiskEventType.TS_REMOVE)
    state = state.select(_FOLDED_NAMES)  # the folded columns alone, whatever bookkeeping the caller's frame has
    absent = [pl.lit(None, dtype).alias(c) for c, dtype in _EVENT_CONTRACT_TYPES.items() if c not in events.columns]
    if absent:  # events shaped before schema version 2: their stops have no contract
        events = events.with_columns(absent)
    daily = _by_lifetime(
        events.filter(pl.col("execution_id").is_not_null()),
        state,
        [
            pl.col("symbol").drop_nulls().last().alias("d_symbol"),
            *(pl.col(c).drop_nulls().first().alias(f"d_{c}") for c in _CONTRACT_FROM_EVENTS),
            pl.col(_OPTION_DELTA).drop_nulls().first().alias(f"d_{ENTRY_OPTION_DELTA}"),
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
            pl.len().cast(pl.Int64).alias("d_n_events"),
        ],
    )
    earlier_trigger = pl.col("triggered_at").is_not_null()
    touched = (
        daily.join(state, on=KEY, how="left")  # a lifetime begun today matches nothing: its facts start empty
        .with_columns(
            pl.coalesce("began_on", pl.lit(day)).alias("began_on"),
            pl.coalesce("d_symbol", "symbol").alias("symbol"),
            # The contract is the stop's from its first event that carried it: the carried value wins.
            *(pl.coalesce(c, f"d_{c}").alias(c) for c in [*_CONTRACT_FROM_EVENTS, ENTRY_OPTION_DELTA]),
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
            (pl.col("n_events").fill_null(0) + pl.col("d_n_events")).alias("n_events"),
            pl.lit(day).alias("last_event_date"),
        )
        .select(_FOLDED_NAMES)
    )
    latest = changed_lifetimes(touched)
    untouched = state.join(latest, on="execution_id", how="anti")
    new_state = _retained(pl.concat([untouched, latest], how="vertical_relaxed"), day).sort("execution_id")
    return touched, new_state


def changed_lifetimes(touched: pl.DataFrame) -> pl.DataFrame:
    """The state rows a day changed: each touched id's latest lifetime (groups are in each id's event order)."""
    return touched.filter(pl.col("execution_id").is_last_distinct())


def _retained(state: pl.DataFrame, day: date) -> pl.DataFrame:
    """``state`` as of the end of ``day``: open lifetimes, and ended ones for :data:`CLOSED_RETENTION_DAYS` days.

    Applied again when a state is read from its change sets: a row it drops stays dropped on every later
    day (it is ended and no longer touched), so dropping it at the end of a chain drops what each day did.
    """
    horizon = day - timedelta(days=CLOSED_RETENTION_DAYS)
    still_open = pl.col("triggered_at").is_null() & pl.col("removed_at").is_null()
    return state.filter(still_open | (pl.col("last_event_date") > horizon))


def carried_state(lake: Lake, day: date) -> tuple[pl.DataFrame, date | None, StateChain]:
    """The state carried into ``day``: each id's current lifetime as of the latest state partition before it.

    Returns the rows (one per ``execution_id``, sorted by it, as :func:`fold_day` leaves a state: folding onto
    an unsorted state cost twice as much), the day they are as of (``None``: empty state), and the chain of
    partitions they were read from.
    """
    rows, as_of, chain = read_state_changes_before(lake, TRAILING_STOP_STATE, day, STATE_SCHEMA, "execution_id")
    if len(chain.days) > 1:  # a snapshot is stored as it was folded: retained and sorted already
        rows = _retained(rows, chain.days[-1]).sort("execution_id")
    return rows, as_of, chain


def outcome_rows(folded: pl.DataFrame) -> pl.DataFrame:
    """The table's rows for folded lifetimes: outcome and the derived money and time figures."""
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
            pl.col("began_on").alias(DAY_COLUMN),
        )
        .sort(KEY)
        .select([f.name for f in SCHEMA])
    )


def _no_lifetimes() -> pl.DataFrame:
    return pl.from_arrow(STATE_SCHEMA.empty_table()).select(_FOLDED_NAMES)  # type: ignore[union-attr]


def _latest(frames: list[pl.DataFrame]) -> pl.DataFrame:
    """Each lifetime once, as the last frame that holds it has it."""
    if not frames:
        return _no_lifetimes()
    return pl.concat(frames, how="vertical_relaxed").unique(subset=KEY, keep="last", maintain_order=True)


def touched_by_earlier_build(lake: Lake, start: date, end: date) -> pl.DataFrame:
    """``execution_id, lifetime_id`` of lifetimes begun before ``start`` that a build of ``[start, end)`` touched.

    Read from that build's state partitions (a lifetime touched on day D has ``last_event_date = D`` in
    state(D)), so it must be called before the range's states are replaced. A first build of the range
    has no such partitions and reads nothing.
    """
    ref = TRAILING_STOP_STATE
    none = pl.DataFrame(schema={"execution_id": pl.String, "lifetime_id": pl.String})
    if not any(start <= d < end for d in lake.days_present(ref)):
        return none
    if "began_on" not in {f.name for f in lake.table(ref).schema().fields}:  # written before lifetimes existed
        return none
    where = f"NOT {MARKER} AND last_event_date = {DAY_COLUMN} AND began_on < {sql_date(start)}"
    return lake.read_days(ref, start, end, columns=KEY, schema=STATE_SCHEMA, where=where).unique()


class _LifetimeRows:
    """The outcome rows a range writes: lifetimes begun in the current window, and older ones it touched.

    Rows of lifetimes begun in the window replace the window's partitions; rows of older lifetimes are
    upserted into theirs. Each lifetime is kept as its latest fold (frames are appended per day and
    de-duplicated at the flush, cheaper than a join per day).
    """

    def __init__(self, lake: Lake, *, run_id: str | None) -> None:
        self.lake, self.run_id = lake, run_id
        self.window_start: date | None = None
        self._begun: list[pl.DataFrame] = []
        self._older: list[pl.DataFrame] = []
        self._held = 0

    @property
    def full(self) -> bool:
        return self._held >= carry.BATCH_ROWS

    def start(self, day: date, older: pl.DataFrame) -> None:
        """Begin at ``day`` with the ``older`` lifetimes an earlier build touched (their carried facts)."""
        self.window_start = day
        if older.height:
            self._older.append(compact(older))

    def add(self, day: date, touched: pl.DataFrame) -> int:
        """Hold the lifetimes ``touched`` on ``day``; returns how many began that day (the partition's rows)."""
        if self.window_start is None:
            self.window_start = day
        in_window = pl.col("began_on") >= self.window_start
        self._begun.append(touched.filter(in_window))
        self._older.append(touched.filter(~in_window))
        self._held += touched.height
        return touched.filter(pl.col("began_on") == day).height

    def flush(self, last_day: date) -> None:
        """Replace the window ``[window_start, last_day]`` and upsert the older lifetimes' rows, in one commit."""
        if self.window_start is None or last_day < self.window_start:
            return
        end = last_day + ONE_DAY
        begun, older = outcome_rows(_latest(self._begun)), outcome_rows(_latest(self._older))
        meta = commit_metadata(self.run_id, self.window_start, end)
        _write(self.lake, begun, days_between(self.window_start, end), older, meta)
        self.window_start, self._begun, self._older, self._held = end, [], [], 0


def _write(lake: Lake, rows: pl.DataFrame, days: list[date], upserts: pl.DataFrame, meta: dict[str, str]) -> None:
    """Replace ``days`` with ``rows`` and upsert ``upserts`` (rows of lifetimes begun earlier) by key, in one commit.

    An upsert is a read of the few older partitions the rows live in, the rows swapped by
    ``(event_date, execution_id, lifetime_id)`` (inserted if absent), and those partitions written back with
    the window's own predicate overwrite. A Delta MERGE of the same rows cost twice the whole write on a
    60-day table (it joins the source against every file of the target partitions, in a commit of its own),
    and it was the stage of an incremental day that grew with the lake's history.
    """
    older_days = sorted(set(upserts.get_column(DAY_COLUMN).to_list()) - set(days)) if upserts.height else []
    if older_days:
        existing = lake.select(TRAILING_STOP_OUTCOMES, schema=SCHEMA, predicate=pl.col(DAY_COLUMN).is_in(older_days))
        kept = existing.join(upserts, on=[DAY_COLUMN, *KEY], how="anti")
        rows = pl.concat([rows, kept, upserts.filter(pl.col(DAY_COLUMN).is_in(older_days))], how="vertical_relaxed")
    if days or older_days:
        lake.replace_day_set(TRAILING_STOP_OUTCOMES, rows, [*days, *older_days], schema=SCHEMA, metadata=meta)


def _upsert(lake: Lake, rows: pl.DataFrame, day: date, run_id: str | None) -> None:
    """Put ``rows`` into their own partitions by ``(event_date, execution_id, lifetime_id)``: update, or insert."""
    if rows.is_empty():
        return
    _write(lake, rows.clear(), [], rows, commit_metadata(run_id, day, day + ONE_DAY))


def _same_facts(old: pl.DataFrame, new: pl.DataFrame) -> pl.DataFrame:
    """``execution_id, lifetime_id`` of lifetimes whose folded facts are identical in ``old`` and ``new``."""
    joined = old.join(new, on=KEY, how="inner", suffix="_new")
    same = pl.all_horizontal(pl.col(c).eq_missing(pl.col(f"{c}_new")) for c in _FOLDED_NAMES if c not in KEY)
    return joined.filter(same).select(KEY)


class _LaterDays:
    """What days after the range already made of its lifetimes, kept when the range leaves them as they were.

    Rebuilding ``[start, end)`` when later days exist: a lifetime whose row also holds events after the
    range (``last_event_date >= end``) and whose facts as of ``end - 1`` come out of the rebuild exactly
    as the earlier build had them (its state(end - 1), read before it is replaced) still has a valid row,
    later events included -- it is put back rather than left as of ``end - 1``. Where the facts changed,
    the row shows them as of ``end - 1`` until the later days are rebuilt. Reads nothing when the range
    ends at the newest day built.
    """

    def __init__(self, lake: Lake, end: date) -> None:
        self.state = _no_lifetimes()
        self.rows = pl.from_arrow(SCHEMA.empty_table())
        days = lake.days_present(TRAILING_STOP_STATE)
        if not days or days[-1] < end or end - ONE_DAY not in days:
            return
        self.state = carried_state(lake, end)[0].select(_FOLDED_NAMES)
        ahead = lake.read_all(TRAILING_STOP_OUTCOMES, schema=SCHEMA, where=f"last_event_date >= {sql_date(end)}")
        self.rows = ahead.join(self.state.select(KEY), on=KEY, how="semi")

    def unchanged(self, new_state: pl.DataFrame) -> pl.DataFrame:
        """The later rows to put back: their lifetimes' facts as of the range's end did not change."""
        if self.rows.is_empty():
            return self.rows
        return self.rows.join(_same_facts(self.state, new_state), on=KEY, how="semi")


def build_days(lake: Lake, start: date, end: date, *, run_id: str | None = None) -> GoldResult:
    """Materialise the days ``[start, end)`` in order (see the module docstring for the layout).

    ``per_day`` counts the lifetimes that began on each day: the rows its partition holds. Rows and
    states are written in batches (:class:`~risk_pipeline.defs.gold.carry.DayBatch`): a lifetime
    touched on several days of one batch is written once. The result keeps the carried state the range
    started from, for the checks.
    """
    per_day: dict[date, int] = {}
    state_rows: dict[date, int] = {}
    carried_from: date | None = None
    carried: pl.DataFrame | None = None
    state: pl.DataFrame | None = None
    stored = ChangeSets(StateChain(), None)
    # Both read what an earlier build of these days wrote, so before this build replaces it.
    earlier = touched_by_earlier_build(lake, start, end)
    later = _LaterDays(lake, end)
    outcomes = _LifetimeRows(lake, run_id=run_id)
    states = DayBatch(lake, TRAILING_STOP_STATE, STATE_SCHEMA, run_id=run_id)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="stop-state") as writer:
        for day, events in silver_days(lake, start, end, EVENT_TYPES, _EVENT_COLUMNS):
            if state is None:
                state, carried_from, chain = carried_state(lake, day)
                carried, stored = state, ChangeSets(chain, carried_from)
                outcomes.start(day, state.join(earlier, on=KEY, how="semi"))
            touched, new_state = fold_day(events, state, day)
            touched = compact(touched)  # held past the day: must not pin its silver
            per_day[day] = outcomes.add(day, touched)
            state = compact(new_state)
            state_rows[day] = state.height
            states.add(day, stored.partition(day, state, changed_lifetimes(touched)))
            if outcomes.full or states.full:
                _flush(writer, outcomes, states, day)
        _flush(writer, outcomes, states, end - ONE_DAY)
    if state is not None:
        _upsert(lake, later.unchanged(state), end - ONE_DAY, run_id)
    return GoldResult(TRAILING_STOP_OUTCOMES, per_day, carried_from, state_rows, carried=carried)


def _flush(writer: ThreadPoolExecutor, outcomes: _LifetimeRows, states: DayBatch, last_day: date) -> None:
    """Write the held rows and states side by side: two commits to two tables.

    The state (every open stop, ~75k rows on a 60-day lake of 10M events) is the larger write, and it is
    the part of a new day that grows with the lake's history; both writes run mostly in delta-rs, outside
    the GIL, so on a second thread the state costs the day little more than the rows' own write. They were
    separate commits before too (a failure between them is healed by running the range again).
    """
    pending = writer.submit(states.flush)
    try:
        outcomes.flush(last_day)
    finally:
        pending.result()
