"""The risk-event model and the bronze table's Arrow schema.

This module is the single definition of what a risk event is. The bronze Delta table's
schema (:data:`BRONZE_SCHEMA`) is declared here, next to the dataclass it stores, and every
other layer (the spool, the shipper, the pipeline's silver model) derives its columns from it.

Why the extra columns beyond the design guide's:

* ``writer_id`` + ``sequence`` -- every logger instance numbers the events it accepts 1, 2, 3, ...
  with no gaps, so a lost event is detectable downstream as a hole in a writer's sequence.
* ``source`` -- the emitting instance (a breaker's name), so several breakers can coexist.
* ``schema_version`` -- lets the pipeline upcast older rows after the model changes.
* ``event_date`` -- the UTC day of ``timestamp``; bronze and silver are partitioned by it.
* ``ingest_errors`` -- values that could not be stored in their typed column are nulled and
  described here, so a malformed event still lands (and is quarantined by silver with the
  reason) instead of costing the rest of its batch or vanishing.

Schema versions (``schema_version`` on every row, :data:`SCHEMA_VERSION` for this runtime):

* **1** -- the columns up to ``metadata``.
* **2** -- adds the option contract and market context a desk needs on trailing-stop and limit
  events: ``underlying`` (the underlying's ticker), ``option_right`` (``"C"``/``"P"``), ``strike``,
  ``expiry`` (a ``date``), ``option_delta`` (the option's delta at the time, in [-1, 1]) and
  ``underlying_price``. All optional; bronze merges them into an existing version-1 table as
  nullable columns, so writers still running version 1 keep appending their shape beside them.
  Components take them as two value objects, :class:`~risk_runtime.instruments.OptionContract` and
  :class:`~risk_runtime.instruments.MarketSnapshot`, whose ``COLUMNS`` name these fields (a test keeps
  the two declarations equal).

A new version only ever *adds nullable columns* here (bronze is append-only history and older
writers keep running); anything else -- a renamed field, a changed meaning -- is expressed as an
upcast step in the pipeline (``risk_pipeline/defs/silver/upcast.py``).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Final

import pyarrow as pa

SCHEMA_VERSION: Final = 2
"""The event schema version this runtime writes."""


class Component(StrEnum):
    """The part of the trading stack that emitted an event."""

    CIRCUIT_BREAKER = "circuit_breaker"
    TRAILING_STOP = "trailing_stop"
    PORTFOLIO_LIMITS = "portfolio_limits"
    EVENT_LOGGER = "event_logger"
    """The logger itself, reporting events it had to refuse (see ``EVENTS_DROPPED``)."""


class OptionRight(StrEnum):
    """An option's right, stored in ``option_right`` (schema version 2)."""

    CALL = "C"
    PUT = "P"


def plain_right(option_right: OptionRight | str | None) -> str | None:
    """``"C"``/``"P"`` for an :class:`OptionRight` member (logged as a plain string), else unchanged.

    Plain strings encode ~30x faster than ``StrEnum`` members; anything else is left for the encoder
    and silver to report.
    """
    return option_right.value if isinstance(option_right, OptionRight) else option_right


class RiskEventType(StrEnum):
    """Every decision a risk component can record."""

    CB_STATE_CHANGE = "circuit_breaker_state_change"
    CB_FAILURE = "circuit_breaker_failure"
    CB_SUCCESS = "circuit_breaker_success"
    CB_MANUAL_RESET = "circuit_breaker_manual_reset"

    TS_ADD = "trailing_stop_add"
    TS_ACTIVATE = "trailing_stop_activate"
    TS_UPDATE = "trailing_stop_update"
    TS_TRIGGER = "trailing_stop_trigger"
    TS_REMOVE = "trailing_stop_remove"

    PL_CHECK = "portfolio_limit_check"
    PL_REJECTION = "portfolio_limit_rejection"
    PL_WARNING = "portfolio_limit_warning"

    EVENTS_DROPPED = "risk_events_dropped"
    """Emitted by the logger once its sink recovers, counting the events it refused meanwhile."""

    @property
    def component(self) -> Component:
        return EVENT_COMPONENT[self]


EVENT_COMPONENT: Final[dict[RiskEventType, Component]] = {
    **{t: Component.CIRCUIT_BREAKER for t in RiskEventType if t.value.startswith("circuit_breaker_")},
    **{t: Component.TRAILING_STOP for t in RiskEventType if t.value.startswith("trailing_stop_")},
    **{t: Component.PORTFOLIO_LIMITS for t in RiskEventType if t.value.startswith("portfolio_limit_")},
    RiskEventType.EVENTS_DROPPED: Component.EVENT_LOGGER,
}


def utc_now() -> datetime:
    return datetime.now(UTC)


_uuid_bits = random.SystemRandom().getrandbits(64)
_rng = random.Random(_uuid_bits ^ id(object()))


_UUID4_CLEAR: Final = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET: Final = (0x4000 << 64) | (0x8000 << 48)


def new_event_id() -> str:
    """A random (version 4) UUID string, several times cheaper than ``str(uuid.uuid4())``.

    Events are created on the trading hot path; ``uuid4`` reads ``os.urandom`` and builds a
    ``UUID`` object on every call. This draws 128 bits from a per-process generator seeded from
    the OS (re-seeded in forked children), sets the version and variant bits as RFC 4122 does, and
    formats the string directly.
    """
    h = f"{(_rng.getrandbits(128) & _UUID4_CLEAR) | _UUID4_SET:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _reseed_after_fork() -> None:
    # A forked child must not replay its parent's random stream (duplicate event ids).
    _rng.seed(random.SystemRandom().getrandbits(64))


os.register_at_fork(after_in_child=_reseed_after_fork)


@dataclass(slots=True)
class RiskEvent:
    """One decision of a risk component, as the trading code describes it.

    Only ``event_type`` is required; the component is derived from it when not given. The
    logger fills ``writer_id`` and ``sequence`` at acceptance; callers leave them alone.
    """

    event_type: RiskEventType | str
    component: Component | str | None = None
    timestamp: datetime = field(default_factory=utc_now)
    event_id: str = field(default_factory=new_event_id)
    source: str | None = None
    execution_id: str | None = None
    symbol: str | None = None
    # circuit breaker
    old_state: str | None = None
    new_state: str | None = None
    failure_count: int | None = None
    # trailing stop
    entry_premium: float | None = None
    current_premium: float | None = None
    highest_premium: float | None = None
    stop_premium: float | None = None
    action: str | None = None
    # portfolio limits
    limit_type: str | None = None
    current_value: float | None = None
    limit_value: float | None = None
    allowed: bool | None = None
    rejection_reason: str | None = None
    # free-form JSON object, as a string
    metadata: str | None = None
    # option contract and market context (schema version 2)
    underlying: str | None = None
    option_right: str | None = None
    strike: float | None = None
    expiry: date | None = None
    option_delta: float | None = None
    underlying_price: float | None = None
    schema_version: int = SCHEMA_VERSION


EVENT_FIELDS: Final[tuple[str, ...]] = tuple(f.name for f in fields(RiskEvent))
"""The dataclass's fields, in the order the spool stores them."""

TIMESTAMP: Final = pa.timestamp("us", tz="UTC")

_EVENT_COLUMNS: Final[dict[str, pa.DataType]] = {
    "event_id": pa.string(),
    "event_type": pa.string(),
    "component": pa.string(),
    "timestamp": TIMESTAMP,
    "source": pa.string(),
    "execution_id": pa.string(),
    "symbol": pa.string(),
    "old_state": pa.string(),
    "new_state": pa.string(),
    "failure_count": pa.int64(),
    "entry_premium": pa.float64(),
    "current_premium": pa.float64(),
    "highest_premium": pa.float64(),
    "stop_premium": pa.float64(),
    "action": pa.string(),
    "limit_type": pa.string(),
    "current_value": pa.float64(),
    "limit_value": pa.float64(),
    "allowed": pa.bool_(),
    "rejection_reason": pa.string(),
    "metadata": pa.string(),
    "underlying": pa.string(),
    "option_right": pa.string(),
    "strike": pa.float64(),
    "expiry": pa.date32(),
    "option_delta": pa.float64(),
    "underlying_price": pa.float64(),
    "schema_version": pa.int32(),
}
assert set(_EVENT_COLUMNS) == set(EVENT_FIELDS), "RiskEvent and its Arrow columns must match"

BRONZE_SCHEMA: Final = pa.schema(
    [
        *(pa.field(name, _EVENT_COLUMNS[name], nullable=name != "event_type") for name in EVENT_FIELDS),
        pa.field("writer_id", pa.string(), nullable=False),
        pa.field("sequence", pa.int64(), nullable=False),
        pa.field("event_date", pa.date32(), nullable=False),
        pa.field("ingest_errors", pa.string()),
        pa.field("ingested_at", TIMESTAMP, nullable=False),
    ]
)
"""The bronze ``risk_events`` table: every event field, plus the logger's accounting columns."""

BRONZE_PARTITION_COLUMNS: Final = ("event_date",)

BRONZE_COLUMN_DESCRIPTIONS: Final[dict[str, str]] = {
    "event_type": "What happened, e.g. circuit_breaker_state_change, trailing_stop_trigger, portfolio_limit_rejection.",
    "component": "The kind of component that logged it: circuit_breaker, trailing_stop, portfolio_limits, ...",
    "timestamp": "When the component made the decision, UTC (microseconds).",
    "event_id": "A random UUID given when the event is created; unique across the lake (silver enforces it).",
    "source": "The emitting instance, e.g. a circuit breaker's name (orders.cboe).",
    "execution_id": "The trailing stop's position id (trailing-stop events).",
    "symbol": "The instrument the trailing stop protects (trailing-stop events).",
    "old_state": "The breaker's state before the change: CLOSED, OPEN or HALF_OPEN.",
    "new_state": "The breaker's state after the change: CLOSED, OPEN or HALF_OPEN.",
    "failure_count": "The breaker's consecutive failures when the event was logged.",
    "entry_premium": "The option premium the position was entered at.",
    "current_premium": "The option premium at this event.",
    "highest_premium": "The highest premium seen since the stop was added (the trail's anchor).",
    "stop_premium": "The premium at which the stop triggers: max(entry, highest x (1 - trailing_pct)) once active.",
    "action": "The trailing stop's step: ADD, ACTIVATE, UPDATE, TRIGGER or REMOVE.",
    "limit_type": "Which portfolio limit was checked (a closed set: portfolio_delta, symbol_delta, open_positions).",
    "current_value": "The limit's measured value after the trade, in the limit's own unit.",
    "limit_value": "The configured limit it was checked against.",
    "allowed": "Whether the portfolio-limit check let the trade through.",
    "rejection_reason": "Why a trade was rejected, in the component's words.",
    "metadata": "Extra context as a JSON object, or null.",
    "underlying": "The option's underlying ticker (schema version 2).",
    "option_right": "C (call) or P (put) (schema version 2).",
    "strike": "The option's strike price (schema version 2).",
    "expiry": "The option's expiry day, in the exchange's calendar (schema version 2).",
    "option_delta": "The option's delta at the event, in [-1, 1] (schema version 2).",
    "underlying_price": "The underlying's price at the event (schema version 2).",
    "schema_version": "The event schema version the writer used; silver upcasts older rows.",
    "writer_id": "The logger instance that accepted the event (one per process start).",
    "sequence": "The writer's gap-free event number, 1, 2, 3, ...: a hole is a lost event.",
    "event_date": "The UTC day of timestamp; the table's partition.",
    "ingest_errors": "Values that could not be stored in their typed column (nulled), and why; null when none.",
    "ingested_at": "When the shipper committed the row to bronze, UTC.",
}
"""What each bronze column means, for the catalog (the pipeline attaches them as Arrow field metadata)."""
assert set(BRONZE_COLUMN_DESCRIPTIONS) == set(BRONZE_SCHEMA.names), "every bronze column is described"
