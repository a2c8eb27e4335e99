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

import hashlib
import os
import random
import time
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Final

import msgspec
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

    Drawn only when someone reads the id of an event that was never logged (the logger derives
    ids from the writer and sequence instead, see :func:`event_id_prefix`). This draws 128 bits
    from a per-process generator seeded from the OS (re-seeded in forked children), sets the
    version and variant bits as RFC 9562 does, and formats the string directly.
    """
    h = f"{(_rng.getrandbits(128) & _UUID4_CLEAR) | _UUID4_SET:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _reseed_after_fork() -> None:
    # A forked child must not replay its parent's random stream (duplicate event ids).
    _rng.seed(random.SystemRandom().getrandbits(64))


os.register_at_fork(after_in_child=_reseed_after_fork)

SEQUENCE_BITS: Final = 48
"""The low bits of a derived event id that hold the writer's sequence number (2^48 events per writer)."""
SEQUENCE_MASK: Final = (1 << SEQUENCE_BITS) - 1


def event_id_prefix(writer_id: str) -> str:
    """The first 24 characters of every event id a writer derives: ``"xxxxxxxx-xxxx-8xxx-Vxxx-"``.

    A derived id is a version 8 (RFC 9562, "custom") UUID: 74 bits of a BLAKE2b hash of the writer
    id, the version and variant bits, then the writer's 48-bit sequence number as the last 12 hex
    digits (:func:`derived_event_id`). Why derived rather than random: the trading process then
    neither draws nor formats an id per event -- the shipper writes it from the sequence it stores
    anyway. Writer ids are unique per logger instance (host, pid and 48 random bits), so a restart
    is a new writer and a new prefix; two writers share a prefix with probability ~n^2 / 2^75.
    Version 8 keeps derived ids apart from the random version 4 ones (:func:`new_event_id`).
    """
    bits = int.from_bytes(hashlib.blake2b(writer_id.encode(), digest_size=10).digest(), "big") >> 6  # 74 bits
    high, middle, low = bits >> 26, (bits >> 14) & 0xFFF, bits & 0x3FFF
    value = (high << 80) | (0x8 << 76) | (middle << 64) | (0b10 << 62) | (low << 48)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-"


def derived_event_id(prefix: str, sequence: int) -> str:
    """The id of a writer's event ``sequence`` (see :func:`event_id_prefix`)."""
    return f"{prefix}{sequence & SEQUENCE_MASK:012x}"


_ORIGIN_PREFIXES: list[str] = []
"""This process's writers' id prefixes; an event's ``_origin`` names one by its index here."""


def origin_base(writer_id: str) -> int:
    """What a logger adds its sequence numbers to for an event's ``_origin``: its writer's index << 48.

    One integer per event (rather than a ``(prefix, sequence)`` tuple) costs the hot path an addition
    and the spool a few bytes; :attr:`RiskEvent.event_id` turns it back into the derived id.
    """
    _ORIGIN_PREFIXES.append(event_id_prefix(writer_id))
    return (len(_ORIGIN_PREFIXES) - 1) << SEQUENCE_BITS


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def datetime_from_ns(ns: int) -> datetime:
    """A UTC datetime from integer nanoseconds since the Unix epoch (to the microsecond, as bronze)."""
    return _EPOCH + timedelta(microseconds=ns // 1000)


class _EventFields(msgspec.Struct, array_like=True, gc=False):
    """The stored form of :class:`RiskEvent`; its fields, in the order the spool stores them.

    ``timestamp`` holds what the caller gave, or integer nanoseconds since the epoch (UTC) read at
    construction; ``event_id`` holds what the caller gave, or None until someone reads it. ``_origin``
    is set once a logger accepted the event, to ``origin_base(writer) + sequence``
    (:func:`origin_base`): all the ``event_id`` property needs to answer with the id bronze will hold.
    """

    event_type: RiskEventType | str
    component: Component | str | None = None
    timestamp: datetime | int | None = msgspec.field(default_factory=time.time_ns)
    event_id: str | None = None
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
    _origin: int | None = None


RAW_TIMESTAMP: Final = _EventFields.__dict__["timestamp"]
"""The slot behind :attr:`RiskEvent.timestamp`, as stored (``RAW_TIMESTAMP.__get__(event)``)."""
RAW_EVENT_ID: Final = _EventFields.__dict__["event_id"]
"""The slot behind :attr:`RiskEvent.event_id`, as stored."""


class RiskEvent(_EventFields):
    """One decision of a risk component, as the trading code describes it.

    Only ``event_type`` is required; the component is derived from it when not given. Building one
    is a C-level ``msgspec.Struct`` construction (~0.2-0.3 µs): the event keeps the time as integer
    nanoseconds and draws no id. Reading ``timestamp`` gives a UTC datetime either way (an aware
    datetime the caller gave is returned as given; an ``int`` is nanoseconds since the epoch, UTC).
    Reading ``event_id`` gives the id bronze holds: the one given, else -- once a logger accepted the
    event -- the id derived from its writer and sequence, else a random one drawn now and kept.
    """

    @property  # type: ignore[override]
    def timestamp(self) -> datetime | None:
        raw = RAW_TIMESTAMP.__get__(self)
        return datetime_from_ns(raw) if type(raw) is int else raw

    @timestamp.setter
    def timestamp(self, value: datetime | int | None) -> None:
        RAW_TIMESTAMP.__set__(self, value)

    @property  # type: ignore[override]
    def event_id(self) -> str | None:
        raw = RAW_EVENT_ID.__get__(self)
        if raw is not None:
            return raw
        origin = self._origin
        if origin is not None:
            return derived_event_id(_ORIGIN_PREFIXES[origin >> SEQUENCE_BITS], origin)
        drawn = new_event_id()
        RAW_EVENT_ID.__set__(self, drawn)
        return drawn

    @event_id.setter
    def event_id(self, value: str | None) -> None:
        RAW_EVENT_ID.__set__(self, value)


EVENT_FIELDS: Final[tuple[str, ...]] = tuple(f for f in RiskEvent.__struct_fields__ if not f.startswith("_"))
"""The dataclass's fields, in the order the spool stores them."""

TIMESTAMP: Final = pa.timestamp("us", tz="UTC")

_EVENT_COLUMNS: Final[dict[str, tuple[pa.DataType, str]]] = {
    "event_id": (
        pa.string(),
        "A UUID (version 8) derived from writer_id and sequence, or the caller's own; unique across the lake.",
    ),
    "event_type": (
        pa.string(),
        "What happened, e.g. circuit_breaker_state_change, trailing_stop_trigger, portfolio_limit_rejection.",
    ),
    "component": (
        pa.string(),
        "The kind of component that logged it: circuit_breaker, trailing_stop, portfolio_limits, ...",
    ),
    "timestamp": (
        TIMESTAMP,
        "When the component made the decision, UTC (microseconds).",
    ),
    "source": (
        pa.string(),
        "The emitting instance, e.g. a circuit breaker's name (orders.cboe).",
    ),
    "execution_id": (
        pa.string(),
        "The trailing stop's position id (trailing-stop events).",
    ),
    "symbol": (
        pa.string(),
        "The instrument the trailing stop protects (trailing-stop events).",
    ),
    "old_state": (
        pa.string(),
        "The breaker's state before the change: CLOSED, OPEN or HALF_OPEN.",
    ),
    "new_state": (
        pa.string(),
        "The breaker's state after the change: CLOSED, OPEN or HALF_OPEN.",
    ),
    "failure_count": (
        pa.int64(),
        "The breaker's consecutive failures when the event was logged.",
    ),
    "entry_premium": (
        pa.float64(),
        "The option premium the position was entered at.",
    ),
    "current_premium": (
        pa.float64(),
        "The option premium at this event.",
    ),
    "highest_premium": (
        pa.float64(),
        "The highest premium seen since the stop was added (the trail's anchor).",
    ),
    "stop_premium": (
        pa.float64(),
        "The premium at which the stop triggers: max(entry, highest x (1 - trailing_pct)) once active.",
    ),
    "action": (
        pa.string(),
        "The trailing stop's step: ADD, ACTIVATE, UPDATE, TRIGGER or REMOVE.",
    ),
    "limit_type": (
        pa.string(),
        "Which portfolio limit was checked (a closed set: portfolio_delta, symbol_delta, open_positions).",
    ),
    "current_value": (
        pa.float64(),
        "The limit's measured value after the trade, in the limit's own unit.",
    ),
    "limit_value": (
        pa.float64(),
        "The configured limit it was checked against.",
    ),
    "allowed": (
        pa.bool_(),
        "Whether the portfolio-limit check let the trade through.",
    ),
    "rejection_reason": (
        pa.string(),
        "Why a trade was rejected, in the component's words.",
    ),
    "metadata": (
        pa.string(),
        "Extra context as a JSON object, or null.",
    ),
    "underlying": (
        pa.string(),
        "The option's underlying ticker (schema version 2).",
    ),
    "option_right": (
        pa.string(),
        "C (call) or P (put) (schema version 2).",
    ),
    "strike": (
        pa.float64(),
        "The option's strike price (schema version 2).",
    ),
    "expiry": (
        pa.date32(),
        "The option's expiry day, in the exchange's calendar (schema version 2).",
    ),
    "option_delta": (
        pa.float64(),
        "The option's delta at the event, in [-1, 1] (schema version 2).",
    ),
    "underlying_price": (
        pa.float64(),
        "The underlying's price at the event (schema version 2).",
    ),
    "schema_version": (
        pa.int32(),
        "The event schema version the writer used; silver upcasts older rows.",
    ),
}
"""Each event column's Arrow type and what it means (the catalog shows the meaning as its description)."""
assert set(_EVENT_COLUMNS) == set(EVENT_FIELDS), "RiskEvent and its Arrow columns must match"

BRONZE_SCHEMA: Final = pa.schema(
    [
        *(pa.field(name, _EVENT_COLUMNS[name][0], nullable=name != "event_type") for name in EVENT_FIELDS),
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
    **{name: description for name, (_, description) in _EVENT_COLUMNS.items()},
    "writer_id": "The logger instance that accepted the event (one per process start).",
    "sequence": "The writer's gap-free event number, 1, 2, 3, ...: a hole is a lost event.",
    "event_date": "The UTC day of timestamp; the table's partition.",
    "ingest_errors": "Values that could not be stored in their typed column (nulled), and why; null when none.",
    "ingested_at": "When the shipper committed the row to bronze, UTC.",
}
"""What each bronze column means, for the catalog (the pipeline attaches them as Arrow field metadata)."""
assert set(BRONZE_COLUMN_DESCRIPTIONS) == set(BRONZE_SCHEMA.names), "every bronze column is described"
