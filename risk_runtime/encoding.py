"""Turning accepted events into bronze columns, without letting one bad value cost its batch.

The shipper process runs this conversion on the frames the logger's flusher packed
(:mod:`risk_runtime.packing` hands their columns to :func:`encode_columns`); tools and tests call
:func:`encode_batch` on events directly. Encoding is columnar: one C-level pass per field and one
``pa.array`` call per column, about 1-2 µs per event in all, off the trading process; the shipper
then adds its bookkeeping columns (:func:`finish_bronze`) before committing.

Malformed values never fail the batch. A column whose conversion fails -- or one of the few
where pyarrow would coerce without a word: ``True`` into a float, ``1.5`` into an int, a naive
datetime into UTC, a ``datetime`` into a ``date`` column (its time of day dropped) -- is checked
value by value; a bad value is nulled and described in the row's
``ingest_errors``, so the event still lands in bronze and silver quarantines it with the reason.

Time is UTC, and this module does the conversion itself (:func:`_utc_timestamps`): an aware
datetime in any zone is handed to pyarrow as ``astimezone(UTC)``, so bronze stores its instant
whatever process-wide pyarrow settings are in force. Importing pandera sets
``PYARROW_IGNORE_TIMEZONE=1`` for the whole process, and pyarrow then keeps the wall-clock time and
drops the offset (20:30 New York stored as 20:30 UTC, on the wrong ``event_date``).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from operator import attrgetter
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc

from risk_runtime.events import (
    BRONZE_SCHEMA,
    EVENT_COMPONENT,
    EVENT_FIELDS,
    RiskEvent,
)

SPOOL_SCHEMA: Final = pa.schema(
    [
        *(BRONZE_SCHEMA.field(name).with_nullable(True) for name in EVENT_FIELDS),
        BRONZE_SCHEMA.field("sequence"),
        BRONZE_SCHEMA.field("ingest_errors"),
    ]
)
"""What a spool frame holds: the event columns, the writer's sequence and any ingest errors.

The writer id is the spool directory's name; the event day and ingestion time are added by the
shipper when it commits (:func:`finish_bronze`)."""

_GETTERS: Final = {name: attrgetter(name) for name in EVENT_FIELDS}
_MAX_REPR: Final = 200
_get_tzinfo = attrgetter("tzinfo")
_get_enum_value = attrgetter("_value_")
_NONE: Final = type(None)
_LENIENT_TYPES: Final[dict[pa.DataType, tuple[frozenset[type], str]]] = {
    pa.float64(): (frozenset({float, int, _NONE}), "a number"),
    pa.int64(): (frozenset({int, _NONE}), "an integer"),
    pa.int32(): (frozenset({int, _NONE}), "an integer"),
    # exactly ``date``: a ``datetime`` is a ``date`` subclass that pyarrow would truncate to its day
    pa.date32(): (frozenset({date, _NONE}), "a date"),
}
_STRING: Final = pa.string()
_EXPECTED: Final[dict[pa.DataType, str]] = {pa.bool_(): "a bool", pa.string(): "a string"}


def _short_repr(value: object) -> str:
    try:
        text = repr(value)
    except Exception as exc:  # a broken __repr__ must not break ingestion
        text = f"<unrepresentable {type(value).__name__}: {exc}>"
    return text if len(text) <= _MAX_REPR else text[: _MAX_REPR - 3] + "..."


class Unconvertible:
    """A value the spool could not carry as itself, kept as its description (``"<type> <repr>"``).

    The packed frames (:mod:`risk_runtime.packing`) carry plain values; anything else travels as
    this, so the shipper can still say what the caller logged.
    """

    __slots__ = ("description",)

    def __init__(self, description: str) -> None:
        self.description = description

    def __repr__(self) -> str:
        return f"Unconvertible({self.description!r})"


def describe(value: object) -> str:
    """``"<type> <repr>"`` of a bad value, as ingest errors quote it."""
    if isinstance(value, Unconvertible):
        return value.description
    return f"{type(value).__name__} {_short_repr(value)}"


class Errors:
    """Ingest errors per row, allocated only when a batch has any."""

    __slots__ = ("by_row",)

    def __init__(self) -> None:
        self.by_row: dict[int, list[str]] = {}

    def add(self, row: int, message: str) -> None:
        self.by_row.setdefault(row, []).append(message)

    def column(self, n: int) -> pa.Array:
        if not self.by_row:
            return null_column(n, pa.string())
        return pa.array([json.dumps(self.by_row[i]) if i in self.by_row else None for i in range(n)], pa.string())


def _value_ok(value: object, arrow_type: pa.DataType) -> bool:
    if value is None:
        return True
    lenient = _LENIENT_TYPES.get(arrow_type)
    if lenient is not None and type(value) not in lenient[0]:
        return False
    try:
        pa.array([value], type=arrow_type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError, ValueError):
        return False
    return True


def _expected(arrow_type: pa.DataType) -> str:
    if pa.types.is_timestamp(arrow_type):
        return "a time-zone-aware datetime"
    lenient = _LENIENT_TYPES.get(arrow_type)
    return lenient[1] if lenient else _EXPECTED.get(arrow_type, str(arrow_type))


def _fast_path_ok(values: Sequence[Any], arrow_type: pa.DataType) -> bool:
    """True when every value is of a type pyarrow converts faithfully (checked in C loops)."""
    lenient = _LENIENT_TYPES.get(arrow_type)
    if lenient is not None:
        return lenient[0].issuperset(map(type, values))
    return True


def _utc_timestamps(values: Sequence[Any]) -> Sequence[Any] | None:
    """``values`` as UTC datetimes for pyarrow, or None when one of them needs the checked path.

    Only aware datetimes qualify: pyarrow would read a naive one as UTC without a word. The common
    batch -- every value already in :data:`datetime.UTC`, as :func:`~risk_runtime.events.utc_now`
    makes them -- costs one C-level pass over the tzinfos and is returned as it is; any other zone is
    converted with ``astimezone(UTC)``, never left for pyarrow to interpret.
    """
    present = [v for v in values if v is not None] if None in values else values
    if not present:
        return values
    try:
        zones = set(map(_get_tzinfo, present))
    except (AttributeError, TypeError):  # not datetimes, or an unhashable tzinfo
        return None
    if None in zones or not isinstance(present[0], datetime):
        return None
    if len(zones) == 1 and UTC in zones:
        return values
    try:
        return [None if v is None else v.astimezone(UTC) for v in values]
    except Exception:  # a value that is not a datetime, or a tzinfo that cannot say its offset
        return None


def _to_utc(value: object) -> datetime | None:
    """One value as an aware UTC datetime, or None if it is not one (the checked path)."""
    if not isinstance(value, datetime):
        return None
    try:
        return value.astimezone(UTC) if value.utcoffset() is not None else None
    except Exception:  # a broken tzinfo must not break ingestion
        return None


def _convert_column(name: str, values: Sequence[Any], arrow_type: pa.DataType, errors: Errors) -> pa.Array:
    """One column as Arrow; bad values become nulls with a reason recorded for their row."""
    if values.count(None) == len(values):  # most fields of most events: one C-level pass
        return null_column(len(values), arrow_type)
    if pa.types.is_timestamp(arrow_type):
        return _convert_timestamps(name, values, arrow_type, errors)
    if arrow_type == _STRING and _one_string(values):
        # One value throughout (an event type, a component, a breaker's name): repeated in C (~2 ns a row)
        # instead of converted row by row (~50-130 ns).
        return pa.repeat(pa.scalar(values[0], _STRING), len(values))
    if _fast_path_ok(values, arrow_type):
        try:
            return pa.array(values, type=arrow_type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError, ValueError):
            pass  # fall through to the value-by-value path
    cleaned = list(values)
    expected = _expected(arrow_type)
    for i, value in enumerate(values):
        if not _value_ok(value, arrow_type):
            errors.add(i, f"{name}: expected {expected}, got {describe(value)}")
            cleaned[i] = None
    return pa.array(cleaned, type=arrow_type)


def _one_string(values: Sequence[Any]) -> bool:
    """True when every value is the same plain ``str`` (two C-level passes; the type check keeps a ``str``
    subclass with its own ``==`` from passing for the first value)."""
    first = values[0]
    return type(first) is str and values.count(first) == len(values) and {str}.issuperset(map(type, values))


_NULL_COLUMNS: dict[tuple[int, pa.DataType], pa.Array] = {}
_NULL_COLUMNS_KEPT: Final = 256


def null_column(n: int, arrow_type: pa.DataType) -> pa.Array:
    """``n`` nulls of ``arrow_type``, shared: most columns of most frames are all null, and an Arrow array
    is immutable, so one array serves every frame of that length (~1 µs saved per column and frame)."""
    key = (n, arrow_type)
    column = _NULL_COLUMNS.get(key)
    if column is None:
        if len(_NULL_COLUMNS) >= _NULL_COLUMNS_KEPT:
            _NULL_COLUMNS.clear()
        column = _NULL_COLUMNS[key] = pa.nulls(n, arrow_type)
    return column


def _convert_timestamps(name: str, values: Sequence[Any], arrow_type: pa.DataType, errors: Errors) -> pa.Array:
    """A timestamp column of UTC instants; a naive or non-datetime value is nulled with its reason."""
    utc = _utc_timestamps(values)
    if utc is not None:
        try:
            return pa.array(utc, type=arrow_type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError, ValueError):
            pass  # fall through to the value-by-value path
    cleaned: list[datetime | None] = []
    expected = _expected(arrow_type)
    for i, value in enumerate(values):
        converted = _to_utc(value)
        if converted is None and value is not None:
            errors.add(i, f"{name}: expected {expected}, got {describe(value)}")
        cleaned.append(converted)
    return pa.array(cleaned, type=arrow_type)


def warm_up() -> None:
    """Make pyarrow's first conversion of Python values now, on purpose, instead of with the first batch.

    When numpy and pandas are installed, pyarrow imports pandas the first time it converts Python
    values (``pa.array``). That is pyarrow's behaviour and the process's environment, not ours to
    change; but an import holds the GIL for a few hundred milliseconds, fails outright during interpreter
    shutdown ("can't register atexit after shutdown"), and, running on the flusher thread while the
    process forks, leaves the child's import lock held forever. ``RiskEventLogger.start()`` calls this on
    the caller's thread: the cost lands at start-up, and no later encode imports anything.

    It never raises: at interpreter exit (a logger that was never started, flushed by the exit hook) the
    import fails once and pyarrow records that it tried, so the second attempt works; and if even that
    fails, the flusher's own encode retries (``flusher._encode``) -- a warm-up must not cost the events.
    """
    try:
        pa.array([None], type=pa.string())
    except Exception:
        with contextlib.suppress(Exception):
            pa.array([None], type=pa.string())


def encode_batch(events: Sequence[object], sequences: Sequence[int]) -> pa.RecordBatch:
    """A spool frame (:data:`SPOOL_SCHEMA`) for ``events``; never raises for bad event values.

    Anything that is not a :class:`RiskEvent` keeps its place (and its sequence number) as a row
    of nulls whose ``ingest_errors`` say what it was. This is the reference encoder (tools, tests,
    backfills and the Arrow frames of older spools); the logger's own frames are packed by
    :mod:`risk_runtime.packing` and meet the same conversion, in the shipper, through
    :func:`encode_columns`.
    """
    errors = Errors()
    if events and (type(events[0]) is not RiskEvent or not {RiskEvent}.issuperset(map(type, events))):
        events = _replace_non_events(events, errors)
    columns = {name: list(map(_GETTERS[name], events)) for name in EVENT_FIELDS}
    return encode_columns(columns, sequences, errors)


_SPOOL_TYPES: Final = tuple((name, SPOOL_SCHEMA.field(name).type) for name in EVENT_FIELDS)
"""Each event column's name and Arrow type, in the frame's order, looked up once."""


def encode_columns(columns: dict[str, Any], sequences: Sequence[int], errors: Errors) -> pa.RecordBatch:
    """A spool frame (:data:`SPOOL_SCHEMA`) from one Python sequence per event field (all of equal length).

    Values of the wrong type become nulls with their reason in ``ingest_errors``, as
    :func:`encode_batch` describes; ``errors`` may already hold reasons for some rows.
    """
    n = len(sequences)
    arrays: list[pa.Array] = []
    event_types: Sequence[Any] = []
    for name, arrow_type in _SPOOL_TYPES:
        values = columns.get(name)
        if values is None:  # a field the writer did not have (an older frame): null
            arrays.append(null_column(n, arrow_type))
            continue
        if isinstance(values, pa.Array):  # already converted, and checked, by the caller
            arrays.append(values)
            continue
        if name in _ENUM_FIELDS:
            values = _enum_values(values)
            if name == "event_type":
                event_types = values
            elif None in values:
                values = _derive_components(event_types, values)
        arrays.append(_convert_column(name, values, arrow_type, errors))
    if arrays[0].null_count:
        for i in pc.indices_nonzero(pc.is_null(arrays[0])).to_pylist():
            errors.add(i, "event_type: required, got null")
    arrays.append(pa.array(sequences, pa.int64()))
    arrays.append(errors.column(n))
    return pa.RecordBatch.from_arrays(arrays, schema=SPOOL_SCHEMA)


_ENUM_FIELDS: Final = frozenset({"event_type", "component"})


def _enum_values(values: Sequence[Any]) -> Sequence[Any]:
    """Plain strings for enum members: pyarrow converts ``StrEnum`` members ~30x slower."""
    if {str}.issuperset(map(type, values)):  # plain strings already (an unpacked frame)
        return values
    try:
        return list(map(_get_enum_value, values))
    except AttributeError:
        return [getattr(v, "_value_", v) for v in values]


def _replace_non_events(events: Sequence[object], errors: Errors) -> list[object]:
    replaced: list[object] = []
    for i, event in enumerate(events):
        if isinstance(event, RiskEvent):
            replaced.append(event)
        else:
            errors.add(i, f"not a RiskEvent: {describe(event)}")
            replaced.append(_empty_event())
    return replaced


def _empty_event() -> RiskEvent:
    event = RiskEvent(event_type="")
    event.event_type = None  # type: ignore[assignment]  # reported as a missing event type
    event.timestamp = None  # type: ignore[assignment]
    event.event_id = None  # type: ignore[assignment]
    event.schema_version = None  # type: ignore[assignment]
    return event


_COMPONENT_OF_TYPE: Final[dict[str, str]] = {t.value: c.value for t, c in EVENT_COMPONENT.items()}


def _derive_components(event_types: Sequence[Any], components: Sequence[Any]) -> Sequence[Any]:
    """Fill the component the caller left out from the (plain string) event type.

    Unknown event types stay null (silver reports them). The common case -- no component given
    anywhere -- is one C-level dictionary lookup per row.
    """
    try:
        derived = list(map(_COMPONENT_OF_TYPE.get, event_types))
    except TypeError:  # an unhashable event type: look the others up one by one
        derived = [_COMPONENT_OF_TYPE.get(t) if isinstance(t, str) else None for t in event_types]
    if not any(c is not None for c in components):
        return derived
    return [c if c is not None else d for c, d in zip(components, derived, strict=True)]


def finish_bronze(frames: pa.Table, *, writer_id: str, ingested_at: datetime | None = None) -> pa.Table:
    """Spool frames as bronze rows: adds ``writer_id``, ``event_date`` and ``ingested_at``.

    A row without a usable timestamp is filed under its ingestion day (and already carries an
    ingest error, so silver quarantines it there).
    """
    n = len(frames)
    ingested = _ingestion_instant(ingested_at)
    timestamps = frames.column("timestamp")
    days = pc.cast(timestamps, pa.date32())
    if timestamps.null_count:
        days = pc.fill_null(days, pa.scalar(ingested.date(), pa.date32()))
        errors = frames.column("ingest_errors").to_pylist()
        missing = pc.is_null(timestamps).to_pylist()
        for i, is_missing in enumerate(missing):
            if is_missing:
                reasons = json.loads(errors[i]) if errors[i] else []
                if not any(r.startswith("timestamp:") for r in reasons):
                    reasons.append("timestamp: required, got null")
                errors[i] = json.dumps(reasons)
        frames = frames.set_column(
            frames.schema.get_field_index("ingest_errors"), "ingest_errors", pa.array(errors, pa.string())
        )
    event_types = pc.fill_null(frames.column("event_type"), "")
    columns = {
        **{name: frames.column(name) for name in frames.column_names},
        "event_type": event_types,
        "writer_id": pa.repeat(pa.scalar(writer_id, pa.string()), n),  # in C, not a list of n references
        "event_date": days,
        "ingested_at": pa.repeat(pa.scalar(ingested, BRONZE_SCHEMA.field("ingested_at").type), n),
    }
    # A frame spooled by an older runtime lacks the columns later schema versions added: null there.
    return pa.Table.from_arrays(
        [columns[f.name] if f.name in columns else pa.nulls(n, f.type) for f in BRONZE_SCHEMA], schema=BRONZE_SCHEMA
    )


def _ingestion_instant(ingested_at: datetime | None) -> datetime:
    """``ingested_at`` (default: now) as UTC: its day files timestamp-less rows, so it must be the UTC day."""
    if ingested_at is None:
        return datetime.now(UTC)
    if not isinstance(ingested_at, datetime) or ingested_at.utcoffset() is None:
        raise ValueError(f"ingested_at must be a time-zone-aware datetime, got {ingested_at!r}")
    return ingested_at.astimezone(UTC)


def events_to_bronze(
    events: Iterable[object],
    *,
    writer_id: str,
    first_sequence: int = 1,
    ingested_at: datetime | None = None,
) -> pa.Table:
    """Bronze rows for ``events`` numbered from ``first_sequence`` (tools, tests, backfills)."""
    batch = list(events)
    frame = encode_batch(batch, range(first_sequence, first_sequence + len(batch)))
    return finish_bronze(pa.Table.from_batches([frame]), writer_id=writer_id, ingested_at=ingested_at)
