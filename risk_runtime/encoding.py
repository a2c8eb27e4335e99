"""Turning accepted events into bronze rows, without letting one bad value cost its batch.

Two steps, split so the trading process does as little as possible:

1. :func:`event_row` -- in the trading process, off the caller's thread -- reads an event's
   fields into a plain tuple (a C-level ``attrgetter``), cheap to pickle into the spool.
2. :func:`rows_to_bronze` -- in the shipper process -- builds the Arrow columns of
   :data:`~risk_runtime.events.BRONZE_SCHEMA`. Every column is converted in one vectorised call;
   only a column that fails (or one of the few where pyarrow would coerce silently: ``True`` into
   a float, ``1.5`` into an int, a naive datetime into UTC) is checked value by value. A bad value
   is nulled and described in the row's ``ingest_errors``, so the row still lands in bronze and
   silver quarantines it with the reason.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc

from risk_runtime.events import (
    BRONZE_SCHEMA,
    EVENT_COMPONENT,
    EVENT_FIELDS,
    RiskEvent,
    RiskEventType,
)

Row = tuple[Any, ...]
"""An event's field values in :data:`EVENT_FIELDS` order."""

_get_fields = attrgetter(*EVENT_FIELDS)
_N_FIELDS: Final = len(EVENT_FIELDS)
_NOT_AN_EVENT: Final = "__not_a_risk_event__"
_MAX_REPR: Final = 200


def event_row(event: object) -> Row:
    """The event's fields as a tuple; anything that is not a :class:`RiskEvent` still gets a row.

    A non-event becomes a row of nulls whose ``metadata`` slot carries a marker and the object's
    repr, so :func:`rows_to_bronze` records it as an ingest error instead of dropping it.
    """
    if type(event) is RiskEvent:
        return _get_fields(event)
    try:
        return _get_fields(event)
    except Exception:
        placeholder: list[Any] = [None] * _N_FIELDS
        placeholder[_METADATA_INDEX] = (_NOT_AN_EVENT, _short_repr(event))
        return tuple(placeholder)


_METADATA_INDEX: Final = EVENT_FIELDS.index("metadata")
_TIMESTAMP_INDEX: Final = EVENT_FIELDS.index("timestamp")


def _short_repr(value: object) -> str:
    try:
        text = repr(value)
    except Exception as exc:  # a broken __repr__ must not break ingestion
        text = f"<unrepresentable {type(value).__name__}: {exc}>"
    return text if len(text) <= _MAX_REPR else text[: _MAX_REPR - 3] + "..."


def _describe(column: str, value: object, expected: str) -> str:
    return f"{column}: expected {expected}, got {type(value).__name__} {_short_repr(value)}"


# Per-type value checks for the columns where pyarrow's conversion is lenient or failing.
def _is_float(value: object) -> bool:
    return type(value) is float or type(value) is int


def _is_int(value: object) -> bool:
    return type(value) is int


def _is_bool(value: object) -> bool:
    return type(value) is bool


def _is_str(value: object) -> bool:
    return isinstance(value, str)


def _is_aware_datetime(value: object) -> bool:
    return isinstance(value, datetime) and value.utcoffset() is not None


_CHECKS: Final = {
    pa.float64(): (_is_float, "a number"),
    pa.int64(): (_is_int, "an integer"),
    pa.int32(): (_is_int, "an integer"),
    pa.bool_(): (_is_bool, "a bool"),
    pa.string(): (_is_str, "a string"),
}
_ALWAYS_CHECKED: Final = frozenset({pa.float64(), pa.int64(), pa.int32()})


def _convert_column(
    name: str, values: Sequence[Any], arrow_type: pa.DataType, errors: list[list[str] | None]
) -> pa.Array:
    """One column as Arrow; bad values become nulls with a reason appended to ``errors[row]``."""
    if pa.types.is_timestamp(arrow_type):
        check, expected = _is_aware_datetime, "a time-zone-aware datetime"
    else:
        check, expected = _CHECKS[arrow_type]
    if arrow_type not in _ALWAYS_CHECKED and not pa.types.is_timestamp(arrow_type):
        try:
            return pa.array(values, type=arrow_type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
            pass  # fall through to the value-by-value path
    bad = [i for i, v in enumerate(values) if v is not None and not check(v)]
    if not bad:
        try:
            return pa.array(values, type=arrow_type)
        except OverflowError:  # an int beyond int64
            bad = [i for i, v in enumerate(values) if v is not None and not _fits(v, arrow_type)]
    cleaned = list(values)
    for i in bad:
        _add_error(errors, i, _describe(name, values[i], expected))
        cleaned[i] = None
    return pa.array(cleaned, type=arrow_type)


def _fits(value: object, arrow_type: pa.DataType) -> bool:
    try:
        pa.array([value], type=arrow_type)
        return True
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
        return False


def _add_error(errors: list[list[str] | None], row: int, message: str) -> None:
    bucket = errors[row]
    if bucket is None:
        errors[row] = [message]
    else:
        bucket.append(message)


def rows_to_bronze(
    rows: Sequence[Row],
    *,
    writer_id: str,
    sequences: Sequence[int],
    ingested_at: datetime | None = None,
) -> pa.Table:
    """Build a bronze table from event rows; never raises for bad event values."""
    n = len(rows)
    ingested = ingested_at or datetime.now(UTC)
    errors: list[list[str] | None] = [None] * n
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in EVENT_FIELDS]
    by_name = dict(zip(EVENT_FIELDS, columns, strict=True))

    # Objects that were not RiskEvents: say so, and keep the row.
    metadata = list(by_name["metadata"])
    for i, value in enumerate(metadata):
        if type(value) is tuple and len(value) == 2 and value[0] == _NOT_AN_EVENT:
            _add_error(errors, i, f"not a RiskEvent: {value[1]}")
            metadata[i] = None
    by_name["metadata"] = metadata

    # The component follows from the event type when the caller left it out.
    by_name["component"] = _fill_components(by_name["event_type"], by_name["component"], errors)

    arrays: dict[str, pa.Array] = {}
    for name in EVENT_FIELDS:
        arrays[name] = _convert_column(name, by_name[name], BRONZE_SCHEMA.field(name).type, errors)

    # Required values: an event type, a timestamp (else the row is filed under its ingest day).
    for i in _null_positions(arrays["event_type"]):
        _add_error(errors, i, "event_type: required, got null")
    timestamps = arrays["timestamp"]
    days = pc.cast(timestamps, pa.date32())
    if timestamps.null_count:
        for i in _null_positions(timestamps):
            if not any(e.startswith("timestamp:") for e in errors[i] or ()):
                _add_error(errors, i, "timestamp: required, got null")
        days = pc.fill_null(days, pa.scalar(ingested.date(), pa.date32()))
    arrays["event_type"] = pc.fill_null(arrays["event_type"], "")

    arrays["writer_id"] = pa.array([writer_id] * n, pa.string())
    arrays["sequence"] = pa.array(sequences, pa.int64())
    arrays["event_date"] = days
    arrays["ingest_errors"] = pa.array([json.dumps(e) if e else None for e in errors], pa.string())
    arrays["ingested_at"] = pa.array([ingested] * n, BRONZE_SCHEMA.field("ingested_at").type)
    return pa.Table.from_arrays([arrays[f.name] for f in BRONZE_SCHEMA], schema=BRONZE_SCHEMA)


def _fill_components(
    event_types: Sequence[Any], components: Sequence[Any], errors: list[list[str] | None]
) -> list[Any]:
    filled = list(components)
    for i, (kind, component) in enumerate(zip(event_types, components, strict=True)):
        if component is not None:
            continue
        # An unknown event type has no component to derive; silver reports it.
        with contextlib.suppress(ValueError, KeyError, TypeError):
            filled[i] = EVENT_COMPONENT[RiskEventType(kind)]
    return filled


def _null_positions(array: pa.Array) -> list[int]:
    if not array.null_count:
        return []
    return pc.indices_nonzero(pc.is_null(array)).to_pylist()


def events_to_bronze(
    events: Iterable[object],
    *,
    writer_id: str,
    first_sequence: int = 1,
    ingested_at: datetime | None = None,
) -> pa.Table:
    """Bronze rows for ``events`` numbered from ``first_sequence`` (tools, tests, backfills)."""
    rows = [event_row(e) for e in events]
    return rows_to_bronze(
        rows,
        writer_id=writer_id,
        sequences=range(first_sequence, first_sequence + len(rows)),
        ingested_at=ingested_at,
    )
