"""The silver tables' schemas and the rules a bronze row must pass to enter silver.

Everything silver promises lives here, once:

* :data:`SILVER_SCHEMA` -- derived from :data:`~risk_runtime.events.BRONZE_SCHEMA` (bronze is the single
  definition of an event's columns), minus ``ingest_errors``: a row reaches silver only when bronze found
  nothing malformed, so the column would always be null there.
* :data:`QUARANTINE_SCHEMA` -- a refused row exactly as bronze held it, plus why and by which run.
* :class:`RiskEventModel` -- the validation rules, as a pandera ``DataFrameModel``. Every rule reports the
  rows it refuses (column checks, and dataframe checks returning one boolean per row), so one bad row
  costs nothing but itself; each rule has a readable name because that name *is* the quarantine reason.

The rule *sets* (states, limit types, which event needs which field, ...) are the module-level constants
below, not literals inside checks: tightening a rule is an edit to one table, followed by a backfill.

Some thresholds are operator configuration instead, read when a day is validated:
``$RISK_MAX_PREMIUM`` (:func:`max_premium`) caps every premium column; unset, there is no cap. The time
window (``$RISK_PARTITIONS_START``, ``$RISK_MAX_EVENT_AHEAD``) and the exchange's calendar for expiry
(``$RISK_EXCHANGE_TZ``) come from :mod:`.window`. Changing any of them changes what silver accepts, so
follow it with a backfill of the days it should apply to.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from typing import Any, Final

import pandera.polars as pa_pl
import polars as pl
import pyarrow as pa
from pandera.api.polars.types import PolarsData
from pandera.engines.polars_engine import DateTime

from risk_pipeline.columns import described
from risk_pipeline.defs.partitions import PARTITIONS_START_ENV
from risk_pipeline.defs.silver.upcast import KNOWN_SCHEMA_VERSIONS
from risk_pipeline.defs.silver.window import (
    EXCHANGE_TZ_ENV,
    MAX_EVENT_AHEAD_ENV,
    exchange_timezone,
    first_day,
    max_event_ahead,
    window_settings,
)
from risk_pipeline.lake import DAY_COLUMN, TableRef, polars_types
from risk_runtime.events import (
    BRONZE_COLUMN_DESCRIPTIONS,
    BRONZE_SCHEMA,
    EVENT_COMPONENT,
    TIMESTAMP,
    Component,
    OptionRight,
    RiskEventType,
)
from risk_runtime.instruments import OPTION_DELTA_RANGE, MarketSnapshot, OptionContract
from risk_runtime.portfolio_limits import LimitType

_HIGH_CARDINALITY: Final = ("event_id", "metadata")
SILVER: Final = TableRef("silver", "risk_events", high_cardinality=_HIGH_CARDINALITY)
QUARANTINE: Final = TableRef("silver", "risk_events_quarantine", high_cardinality=_HIGH_CARDINALITY)

# ----------------------------------------------------------------------------------------------- schemas
INGEST_ERRORS: Final = "ingest_errors"

_ALWAYS_PRESENT: Final = frozenset({"event_id", "component", "timestamp", "schema_version"})
"""Columns bronze allows to be null but silver's rules require: declared non-null in silver so readers
(and Delta) can rely on it."""

BRONZE_DESCRIBED: Final = described(BRONZE_SCHEMA, BRONZE_COLUMN_DESCRIPTIONS)
"""Bronze's schema with its columns' descriptions: what the catalog shows, and what silver inherits."""

SILVER_SCHEMA: Final = pa.schema(
    [
        field.with_nullable(False) if field.name in _ALWAYS_PRESENT else field
        for field in BRONZE_DESCRIBED
        if field.name != INGEST_ERRORS
    ]
)
"""``silver/risk_events``: bronze's columns without ``ingest_errors``, partitioned by ``event_date``."""

QUARANTINE_SCHEMA: Final = described(
    pa.schema(
        [
            *(field.with_nullable(True) for field in BRONZE_DESCRIBED),
            pa.field("reasons", pa.list_(pa.string())),
            pa.field("run_id", pa.string()),
            pa.field("partition", pa.string()),
            pa.field("quarantined_at", TIMESTAMP),
        ]
    ),
    {
        "reasons": "Every rule the row failed, e.g. 'new_state: isin', 'timestamp: not before $RISK_PARTITIONS_START'.",
        "run_id": "The Dagster run that refused the row.",
        "partition": "The partition (UTC day) whose build refused it.",
        "quarantined_at": "When that build refused it, UTC.",
    },
)
"""``silver/risk_events_quarantine``: the refused bronze row as it was, every reason that applied, and the
run (``run_id``, ``partition`` day key, ``quarantined_at``) that refused it. All nullable: a bronze value
may be the very thing that was wrong. Partitioned by ``event_date`` like silver."""

PARTITION_COLUMNS: Final = (DAY_COLUMN,)


def polars_schema(schema: pa.Schema) -> pl.Schema:
    """The polars dtypes an Arrow schema reads as (what ``Lake.read_days`` returns)."""
    return pl.Schema(polars_types(schema))


# ------------------------------------------------------------------------------------------- rule sets
_T = RiskEventType

CIRCUIT_STATES: Final = frozenset({"CLOSED", "OPEN", "HALF_OPEN"})
LIMIT_TYPES: Final = frozenset(t.value for t in LimitType)
"""A closed contract: the limits the runtime's checker enforces (see the README on why not an open set)."""
# KNOWN_SCHEMA_VERSIONS (imported from upcast.py): the versions silver accepts -- the current one and every
# older one with an upcast path. Older rows are upcast before validation, so only the current one remains.
MIN_SEQUENCE: Final = 1
MIN_FAILURE_COUNT: Final = 0

TRAILING_STOP_EVENTS: Final = frozenset(t for t, c in EVENT_COMPONENT.items() if c is Component.TRAILING_STOP)
STOP_MOVES: Final = frozenset({_T.TS_ACTIVATE, _T.TS_UPDATE, _T.TS_TRIGGER})
"""Trailing-stop events that report where the stop now sits, and the high it trails."""

REQUIRED_FIELDS: Final[Mapping[str, frozenset[RiskEventType]]] = {
    "old_state": frozenset({_T.CB_STATE_CHANGE}),
    "new_state": frozenset({_T.CB_STATE_CHANGE}),
    "failure_count": frozenset({_T.CB_FAILURE, _T.CB_STATE_CHANGE}),
    "execution_id": TRAILING_STOP_EVENTS,
    "entry_premium": TRAILING_STOP_EVENTS,
    "highest_premium": STOP_MOVES,
    "stop_premium": STOP_MOVES,
    "current_premium": frozenset({_T.TS_TRIGGER}),
    "limit_type": frozenset({_T.PL_REJECTION, _T.PL_WARNING}),
    "current_value": frozenset({_T.PL_REJECTION, _T.PL_WARNING}),
    "limit_value": frozenset({_T.PL_REJECTION, _T.PL_WARNING}),
    "rejection_reason": frozenset({_T.PL_REJECTION}),
}
"""Which event types must carry which field: a post-mortem query on those events is useless without it."""

ACTION_BY_EVENT_TYPE: Final[Mapping[RiskEventType, str]] = {
    _T.TS_ADD: "ADD",
    _T.TS_ACTIVATE: "ACTIVATE",
    _T.TS_UPDATE: "UPDATE",
    _T.TS_TRIGGER: "TRIGGER",
    _T.TS_REMOVE: "REMOVE",
}
"""The only ``action`` each event type may carry (when it carries one); other event types carry none."""

ALLOWED_BY_EVENT_TYPE: Final[Mapping[RiskEventType, bool]] = {_T.PL_CHECK: True, _T.PL_REJECTION: False}
"""A limit check let the entry through, a rejection did not: ``allowed`` must say the same."""

LIMIT_TYPES_BY_EVENT_TYPE: Final[Mapping[RiskEventType, frozenset[str]]] = {_T.PL_REJECTION: LIMIT_TYPES}
"""A rejection must name a limit the checker actually enforces."""

OPTION_RIGHTS: Final = frozenset(r.value for r in OptionRight)
# OPTION_DELTA_RANGE (imported from risk_runtime.instruments): the range MarketSnapshot enforces at the call.
_CONTRACT: Final = OptionContract.COLUMNS
_MARKET: Final = MarketSnapshot.COLUMNS
PREMIUM_COLUMNS: Final = ("entry_premium", "current_premium", "highest_premium", "stop_premium")

MAX_PREMIUM_ENV: Final = "RISK_MAX_PREMIUM"
"""Operator-set cap on every premium column (per share); unset or empty means no cap."""


def max_premium() -> float:
    """``$RISK_MAX_PREMIUM`` as a positive number, or infinity when unset; read at every validation.

    Raises ``ValueError`` for anything else: a typo must fail the run, not silently accept (or refuse)
    every row.
    """
    text = os.environ.get(MAX_PREMIUM_ENV, "").strip()
    if not text:
        return math.inf
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"${MAX_PREMIUM_ENV} must be a positive number, got {text!r}") from None
    if not value > 0:  # NaN fails too
        raise ValueError(f"${MAX_PREMIUM_ENV} must be a positive number, got {text!r}")
    return value


def rule_settings() -> dict[str, str]:
    """The operator-set thresholds in force, for a run's metadata (what a quarantine reason was judged by)."""
    cap = max_premium()
    return {MAX_PREMIUM_ENV: "unset (no cap)" if math.isinf(cap) else repr(cap), **window_settings()}


UUID_PATTERN: Final = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"

INGEST_ERRORS_CHECK: Final = "null: bronze found no malformed value"
"""Name of the ``ingest_errors`` rule. Silver replaces this reason with the ingest error texts themselves."""

_EVENT_TYPES: Final = sorted(t.value for t in RiskEventType)
_COMPONENT_OF: Final = {t.value: c.value for t, c in EVENT_COMPONENT.items()}


def _set_label(values: Iterable[Any]) -> str:
    return "{" + ", ".join(sorted(str(v) for v in values)) + "}"


def _types_label(types: Iterable[RiskEventType]) -> str:
    """``trailing_stop events`` when ``types`` is a whole component's events, else the sorted type names."""
    wanted = frozenset(types)
    for component in Component:
        if wanted == {t for t, c in EVENT_COMPONENT.items() if c is component}:
            return f"{component.value} events"
    return ", ".join(sorted(t.value for t in wanted))


PREMIUM_TOLERANCE: Final = 1e-9
"""Relative slack of the premium-ordering rules (``a <= b`` passes while ``a <= b * (1 + 1e-9)``): a stop
computed as ``highest * (1 - trailing_pct)`` and compared in another process may differ in its last bit
(a float64 carries ~16 significant digits); a real contradiction is cents, many orders of magnitude more."""


def _at_most(low: pl.Expr, high: pl.Expr) -> pl.Expr:
    """``low <= high`` within :data:`PREMIUM_TOLERANCE` (premiums are positive). Null and NaN pass: a
    missing or non-finite premium is its own rule's to report, once."""
    return low.is_nan() | high.is_nan() | (low <= high * (1.0 + PREMIUM_TOLERANCE))


def _rows(data: PolarsData, expr: pl.Expr) -> pl.LazyFrame:
    """One boolean per row: pandera reports each ``False`` at its row position (nulls pass)."""
    return data.lazyframe.select(expr)


def _by_event_type(mapping: Mapping[RiskEventType, Any], dtype: pl.DataType) -> pl.Expr:
    """Per row, ``mapping[event_type]`` (null for event types the mapping leaves out)."""
    return pl.col("event_type").replace_strict(
        {t.value: v for t, v in mapping.items()}, default=None, return_dtype=dtype
    )


def _requires(field: str, types: frozenset[RiskEventType]) -> Any:
    """A dataframe check: ``field`` is present on every event of ``types``."""
    names = sorted(t.value for t in types)

    def check(cls: Any, data: PolarsData) -> pl.LazyFrame:
        return _rows(data, ~pl.col("event_type").is_in(names) | pl.col(field).is_not_null())

    check.__name__ = f"requires_{field}"
    return pa_pl.dataframe_check(name=f"{field} required for {_types_label(types)}")(check)


_RequiredFieldChecks: Final = type(
    "_RequiredFieldChecks",
    (pa_pl.DataFrameModel,),
    {f"requires_{field}": _requires(field, types) for field, types in REQUIRED_FIELDS.items()},
)
"""One check per entry of :data:`REQUIRED_FIELDS`, generated so that table stays the one place to edit."""


# ----------------------------------------------------------------------------------------------- model
_UTC_MICROS: Final = {"time_unit": "us", "time_zone": "UTC"}


class RiskEventModel(_RequiredFieldChecks):  # type: ignore[misc,valid-type]
    """The rules a bronze row must pass to enter silver (validated on the bronze-shaped frame).

    Column types mirror :data:`BRONZE_SCHEMA` (asserted at import). ``nullable=True`` on optional columns
    because whether a field is required depends on the event type -- those rules are dataframe checks.
    """

    event_id: str = pa_pl.Field(nullable=False)
    event_type: str = pa_pl.Field(nullable=False)
    component: str = pa_pl.Field(nullable=True)
    timestamp: DateTime = pa_pl.Field(nullable=False, dtype_kwargs=_UTC_MICROS)
    source: str = pa_pl.Field(nullable=True)
    execution_id: str = pa_pl.Field(nullable=True)
    symbol: str = pa_pl.Field(nullable=True)
    old_state: str = pa_pl.Field(nullable=True)
    new_state: str = pa_pl.Field(nullable=True)
    failure_count: int = pa_pl.Field(nullable=True)
    entry_premium: float = pa_pl.Field(nullable=True)
    current_premium: float = pa_pl.Field(nullable=True)
    highest_premium: float = pa_pl.Field(nullable=True)
    stop_premium: float = pa_pl.Field(nullable=True)
    action: str = pa_pl.Field(nullable=True)
    limit_type: str = pa_pl.Field(nullable=True)
    current_value: float = pa_pl.Field(nullable=True)
    limit_value: float = pa_pl.Field(nullable=True)
    allowed: bool = pa_pl.Field(nullable=True)
    rejection_reason: str = pa_pl.Field(nullable=True)
    metadata: str = pa_pl.Field(nullable=True)
    underlying: str = pa_pl.Field(nullable=True)
    option_right: str = pa_pl.Field(nullable=True)
    strike: float = pa_pl.Field(nullable=True)
    expiry: pl.Date = pa_pl.Field(nullable=True)
    option_delta: float = pa_pl.Field(nullable=True)
    underlying_price: float = pa_pl.Field(nullable=True)
    schema_version: pl.Int32 = pa_pl.Field(nullable=False)
    writer_id: str = pa_pl.Field(nullable=False)
    sequence: int = pa_pl.Field(nullable=False)
    event_date: pl.Date = pa_pl.Field(nullable=False)
    ingest_errors: str = pa_pl.Field(nullable=True)
    ingested_at: DateTime = pa_pl.Field(nullable=False, dtype_kwargs=_UTC_MICROS)

    class Config:
        name = "RiskEventModel"
        strict = True  # an unknown bronze column means this model is out of date: refuse, don't drop it
        coerce = False  # a wrongly typed column is a finding, not something to paper over

    # ------------------------------------------------------------------ single-column rules
    @pa_pl.check("event_id", name="a UUID string")
    def _event_id_is_uuid(cls, data: PolarsData) -> pl.LazyFrame:
        return _rows(data, pl.col(data.key).str.contains(UUID_PATTERN))

    @pa_pl.check("event_type", name="a known RiskEventType")
    def _known_event_type(cls, data: PolarsData) -> pl.LazyFrame:
        return _rows(data, pl.col(data.key).is_in(_EVENT_TYPES))

    @pa_pl.check("old_state", "new_state", name=f"in {_set_label(CIRCUIT_STATES)}")
    def _known_state(cls, data: PolarsData) -> pl.LazyFrame:
        return _rows(data, pl.col(data.key).is_in(sorted(CIRCUIT_STATES)))

    @pa_pl.check("failure_count", name=f">= {MIN_FAILURE_COUNT}")
    def _failure_count_not_negative(cls, data: PolarsData) -> pl.LazyFrame:
        return _rows(data, pl.col(data.key) >= MIN_FAILURE_COUNT)

    @pa_pl.check("entry_premium", "current_premium", "highest_premium", "stop_premium", name="finite and > 0")
    def _premium_positive(cls, data: PolarsData) -> pl.LazyFrame:
        # polars orders NaN above every number (NaN > 0 is true), hence the explicit is_finite.
        return _rows(data, pl.col(data.key).is_finite() & (pl.col(data.key) > 0))

    @pa_pl.check(*PREMIUM_COLUMNS, name=f"<= ${MAX_PREMIUM_ENV}")
    def _premium_within_cap(cls, data: PolarsData) -> pl.LazyFrame:
        value = pl.col(data.key)
        return _rows(data, value.is_nan() | (value <= max_premium()))  # NaN is "finite and > 0"'s to report

    @pa_pl.check(_CONTRACT.right, name=f"in {_set_label(OPTION_RIGHTS)}")
    def _known_option_right(cls, data: PolarsData) -> pl.LazyFrame:
        return _rows(data, pl.col(data.key).is_in(sorted(OPTION_RIGHTS)))

    @pa_pl.check(_CONTRACT.strike, _MARKET.underlying_price, name="finite and > 0")
    def _price_positive(cls, data: PolarsData) -> pl.LazyFrame:
        return _rows(data, pl.col(data.key).is_finite() & (pl.col(data.key) > 0))

    @pa_pl.check(_MARKET.option_delta, name=f"in [{OPTION_DELTA_RANGE[0]:g}, {OPTION_DELTA_RANGE[1]:g}]")
    def _option_delta_in_range(cls, data: PolarsData) -> pl.LazyFrame:
        return _rows(data, pl.col(data.key).is_between(*OPTION_DELTA_RANGE))  # NaN is not between

    @pa_pl.check("current_value", "limit_value", name="finite")
    def _limit_value_finite(cls, data: PolarsData) -> pl.LazyFrame:
        return _rows(data, pl.col(data.key).is_finite())

    @pa_pl.check("metadata", name="a JSON object")
    def _metadata_is_json_object(cls, data: PolarsData) -> pl.LazyFrame:
        # json_path_match is null for text that is not valid JSON; the prefix test rejects arrays/scalars.
        # Spelled out for null (absent) metadata: `null & False` is False, which would fail the row.
        text = pl.col(data.key)
        is_object = text.str.strip_chars().str.starts_with("{") & text.str.json_path_match("$").is_not_null()
        return _rows(data, text.is_null() | is_object)

    @pa_pl.check("sequence", name=f">= {MIN_SEQUENCE}")
    def _sequence_positive(cls, data: PolarsData) -> pl.LazyFrame:
        return _rows(data, pl.col(data.key) >= MIN_SEQUENCE)

    @pa_pl.check("schema_version", name=f"a known version {_set_label(KNOWN_SCHEMA_VERSIONS)}")
    def _known_schema_version(cls, data: PolarsData) -> pl.LazyFrame:
        return _rows(data, pl.col(data.key).is_in(sorted(KNOWN_SCHEMA_VERSIONS)))

    @pa_pl.check(INGEST_ERRORS, name=INGEST_ERRORS_CHECK)
    def _no_ingest_errors(cls, data: PolarsData) -> pl.LazyFrame:
        return _rows(data, pl.col(data.key).is_null())

    # ------------------------------------------------------------------ cross-column rules
    @pa_pl.dataframe_check(name="component matches event_type")
    def _component_matches(cls, data: PolarsData) -> pl.LazyFrame:
        expected = pl.col("event_type").replace_strict(_COMPONENT_OF, default=None, return_dtype=pl.String)
        # An unknown event type has no expected component; that row already fails "a known RiskEventType".
        return _rows(data, expected.is_null() | (pl.col("component") == expected).fill_null(False))

    @pa_pl.dataframe_check(name="old_state != new_state")
    def _state_changes(cls, data: PolarsData) -> pl.LazyFrame:
        is_change = pl.col("event_type") == _T.CB_STATE_CHANGE.value
        return _rows(data, ~is_change | (pl.col("old_state") != pl.col("new_state")))

    # Trailing-stop consistency (see TrailingStop in risk_runtime): the high starts at entry and only rises,
    # every premium observed is at most the high, the stop sits at or below the high, and a trigger fires only
    # at or below its stop. Null operands pass (the event type's required-field rules report those).
    @pa_pl.dataframe_check(name="highest_premium >= entry_premium")
    def _high_not_below_entry(cls, data: PolarsData) -> pl.LazyFrame:
        return _rows(data, _at_most(pl.col("entry_premium"), pl.col("highest_premium")))

    @pa_pl.dataframe_check(name="highest_premium >= current_premium")
    def _high_not_below_current(cls, data: PolarsData) -> pl.LazyFrame:
        return _rows(data, _at_most(pl.col("current_premium"), pl.col("highest_premium")))

    @pa_pl.dataframe_check(name="stop_premium <= highest_premium")
    def _stop_below_high(cls, data: PolarsData) -> pl.LazyFrame:
        return _rows(data, _at_most(pl.col("stop_premium"), pl.col("highest_premium")))

    @pa_pl.dataframe_check(name=f"{_T.TS_TRIGGER.value}: current_premium <= stop_premium")
    def _trigger_at_or_below_stop(cls, data: PolarsData) -> pl.LazyFrame:
        is_trigger = pl.col("event_type") == _T.TS_TRIGGER.value
        return _rows(data, ~is_trigger | _at_most(pl.col("current_premium"), pl.col("stop_premium")))

    @pa_pl.dataframe_check(name="action matches event_type")
    def _action_matches(cls, data: PolarsData) -> pl.LazyFrame:
        expected = _by_event_type(ACTION_BY_EVENT_TYPE, pl.String())
        return _rows(
            data,
            pl.col("action").is_null()
            | ~pl.col("event_type").is_in(_EVENT_TYPES)
            | (pl.col("action") == expected).fill_null(False),
        )

    @pa_pl.dataframe_check(
        name="allowed matches event_type ("
        + ", ".join(f"{t.value}: {v}" for t, v in ALLOWED_BY_EVENT_TYPE.items())
        + ")"
    )
    def _allowed_matches(cls, data: PolarsData) -> pl.LazyFrame:
        expected = _by_event_type(ALLOWED_BY_EVENT_TYPE, pl.Boolean())
        return _rows(data, expected.is_null() | (pl.col("allowed") == expected).fill_null(False))

    @pa_pl.dataframe_check(
        name="limit_type is a known limit ("
        + "; ".join(f"{t.value}: {_set_label(v)}" for t, v in LIMIT_TYPES_BY_EVENT_TYPE.items())
        + ")"
    )
    def _known_limit_type(cls, data: PolarsData) -> pl.LazyFrame:
        ok = pl.lit(True)
        for event_type, limits in LIMIT_TYPES_BY_EVENT_TYPE.items():
            applies = pl.col("event_type") == event_type.value
            ok = ok & (~applies | pl.col("limit_type").is_in(sorted(limits)).fill_null(False))
        return _rows(data, ok)

    @pa_pl.dataframe_check(name=f"expiry not before the event's day in ${EXCHANGE_TZ_ENV}")
    def _expiry_not_past(cls, data: PolarsData) -> pl.LazyFrame:
        # An option that expired before the event cannot be entered, held or stopped out on that day. Expiry is
        # a day of the exchange's calendar: 20:30 in New York on expiry day is already the next UTC day.
        local_day = pl.col("timestamp").dt.convert_time_zone(exchange_timezone()).dt.date()
        expiry = pl.col(_CONTRACT.expiry)
        return _rows(data, expiry.is_null() | (expiry >= local_day).fill_null(True))

    @pa_pl.dataframe_check(name=f"timestamp: not before ${PARTITIONS_START_ENV}")
    def _not_before_first_day(cls, data: PolarsData) -> pl.LazyFrame:
        first = first_day()
        return _rows(data, (pl.col("timestamp").dt.date() >= first) & (pl.col(DAY_COLUMN) >= first))

    @pa_pl.dataframe_check(name=f"timestamp: at most ${MAX_EVENT_AHEAD_ENV} after ingested_at")
    def _not_ahead_of_ingestion(cls, data: PolarsData) -> pl.LazyFrame:
        return _rows(data, pl.col("timestamp") <= pl.col("ingested_at") + max_event_ahead())

    @pa_pl.dataframe_check(name="timestamp falls on event_date (UTC)")
    def _timestamp_on_event_date(cls, data: PolarsData) -> pl.LazyFrame:
        return _rows(data, pl.col("timestamp").dt.date() == pl.col(DAY_COLUMN))


def _assert_model_matches_bronze() -> None:
    """The model validates bronze-shaped frames: its columns and dtypes must be bronze's, exactly."""
    expected = polars_schema(BRONZE_SCHEMA)
    columns = RiskEventModel.to_schema().columns
    actual = {name: column.dtype.type for name, column in columns.items()}
    mismatched = {n for n in set(expected) | set(actual) if expected.get(n) != actual.get(n)}
    assert not mismatched, f"RiskEventModel and BRONZE_SCHEMA disagree on {sorted(mismatched)}"


_assert_model_matches_bronze()
