"""Events as the spool carries them (RSF3 frames): MessagePack rows, packed cheaply, converted to Arrow later.

Why: the trading process has one job, to hand events off. Converting them to Arrow costs ~2-3 µs
per event and holds the GIL while it runs; packing the event structs as they are with ``msgspec``
costs ~0.1-0.3 µs. So the flusher thread only packs (:func:`pack_events`), and the shipper process,
on another core, unpacks a frame and meets the same conversion :func:`~risk_runtime.encoding.encode_batch`
applies (:func:`unpack_events`, through :func:`~risk_runtime.encoding.encode_columns`): bad values
become nulls with their reason in ``ingest_errors``, ids missing from a row are derived from the
writer and sequence, integer timestamps become UTC microseconds. Measured alternatives are in
``bench/README.md``.

A payload is ``[field names, [[sequence, row], ...]]``: the names make a frame self-describing (an
older writer's rows lack later fields; those are null), and ``row`` is the event struct's fields in
order, as ``msgspec`` writes a ``Struct(array_like=True)``.

What MessagePack cannot tell apart is made explicit before packing, so a value keeps its type:

* a ``date`` (which MessagePack would write as an ISO string, like a ``str``) travels as extension
  :data:`_EXT_DATE`;
* a naive ``datetime`` (written as a string too) and anything MessagePack cannot write at all
  travel as extension :data:`_EXT_BAD` with their description, and land as an ingest error;
* something logged that is not a :class:`~risk_runtime.events.RiskEvent` travels as
  :data:`_EXT_NOT_EVENT` with its description.

Known looseness, for speed: a ``Decimal``, ``UUID`` or enum member in a *string* field is packed as
its string form (or value) and lands as that string, where the Arrow encoder reports an ingest error.
Every other wrong type still lands as the ingest error it always was.
"""

from __future__ import annotations

import gc
import struct
from collections.abc import Sequence
from datetime import UTC, date, datetime
from operator import attrgetter, itemgetter
from typing import Any, Final

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from risk_runtime.encoding import SPOOL_SCHEMA, Errors, Unconvertible, describe, encode_columns
from risk_runtime.events import (
    RAW_TIMESTAMP,
    SEQUENCE_MASK,
    RiskEvent,
    datetime_from_ns,
    derived_event_id,
    event_id_prefix,
)
from risk_runtime.instruments import OptionContract

PAYLOAD_MSGPACK: Final = 1
"""The payload format an RSF3 frame header names: MessagePack rows as described above."""

ROW_FIELDS: Final[tuple[str, ...]] = RiskEvent.__struct_fields__
"""What each packed row holds, in order (the event fields, then the logger's private ``_origin``)."""

_EXT_DATE: Final = 1
_EXT_BAD: Final = 2
_EXT_NOT_EVENT: Final = 3
_TIMESTAMP_AT: Final = ROW_FIELDS.index("timestamp")
_EXPIRY_AT: Final = ROW_FIELDS.index(OptionContract.COLUMNS.expiry)
_get_expiry = attrgetter(OptionContract.COLUMNS.expiry)
_get_tzinfo = attrgetter("tzinfo")
_raw_timestamp = RAW_TIMESTAMP.__get__
_NONE: Final = type(None)
_PLAIN_TIMES: Final = frozenset({int, _NONE})
_KEPT: Final = frozenset({int, float, str, bool, _NONE})
"""Types MessagePack gives back as themselves."""


def _bad(value: object) -> msgspec.msgpack.Ext:
    return msgspec.msgpack.Ext(_EXT_BAD, describe(value).encode())


_encoder = msgspec.msgpack.Encoder(enc_hook=_bad)


def _decode_ext(code: int, data: memoryview) -> object:
    if code == _EXT_DATE:
        return date.fromordinal(int.from_bytes(data, "little"))
    if code == _EXT_BAD:
        return Unconvertible(bytes(data).decode())
    if code == _EXT_NOT_EVENT:
        return _NotEvent(bytes(data).decode())
    return Unconvertible(f"unknown packed value (extension {code})")


_decoder = msgspec.msgpack.Decoder(ext_hook=_decode_ext)


class _NotEvent:
    __slots__ = ("description",)

    def __init__(self, description: str) -> None:
        self.description = description


# ---------------------------------------------------------------------------------------- the flusher's side
def pack_events(items: Sequence[tuple[int, object]]) -> bytes:
    """One frame's payload for ``(sequence, event)`` pairs; never raises for bad event values.

    The common batch -- every item a :class:`RiskEvent` with integer or UTC timestamps and no
    ``date`` -- is one ``msgspec`` call; only a batch holding something MessagePack would blur
    (see the module docs) is rebuilt row by row, and then only the rows that need it.
    """
    events = [event for _, event in items]
    rows: Sequence[tuple[int, object]] = items
    if _needs_rows(events):
        rows = [(sequence, _row(event)) for sequence, event in items]
    try:
        return _encoder.encode((ROW_FIELDS, rows))
    except Exception:  # a value MessagePack refuses (e.g. an int beyond 64 bits): find it, row by row
        return _encoder.encode((ROW_FIELDS, [(sequence, _checked_row(event)) for sequence, event in items]))


def _needs_rows(events: list[object]) -> bool:
    if not {RiskEvent}.issuperset(map(type, events)):
        return True
    times = list(map(_raw_timestamp, events))
    kinds = set(map(type, times))
    if not _PLAIN_TIMES.issuperset(kinds):
        if not _PLAIN_TIMES.union((datetime,)).issuperset(kinds):
            return True
        aware = times if len(kinds) == 1 else [t for t in times if type(t) is datetime]
        zones = list(map(_get_tzinfo, aware))
        try:
            if zones.count(UTC) != len(zones):  # by identity first, so no hashing of the zones
                return True  # a naive or non-UTC datetime: checked row by row
        except Exception:  # a tzinfo that cannot be compared: row by row too
            return True
    return not {_NONE}.issuperset(map(type, map(_get_expiry, events)))


def _row(event: object) -> object:
    """What one event is packed as: the struct itself when MessagePack keeps every value's type."""
    if not isinstance(event, RiskEvent):
        return msgspec.msgpack.Ext(_EXT_NOT_EVENT, describe(event).encode())
    timestamp, expiry = _raw_timestamp(event), event.expiry
    time_kept = type(timestamp) in _PLAIN_TIMES or (type(timestamp) is datetime and timestamp.tzinfo is UTC)
    if time_kept and expiry is None:
        return event
    row = list(msgspec.structs.astuple(event))
    if not time_kept:
        row[_TIMESTAMP_AT] = _timestamp_value(timestamp)
    if expiry is not None:
        row[_EXPIRY_AT] = _expiry_value(expiry)
    return row


def _timestamp_value(value: object) -> object:
    """An aware datetime as its UTC instant; a value MessagePack keeps as it is; else its description."""
    if type(value) in _KEPT:
        return value
    if isinstance(value, datetime):
        try:
            if value.utcoffset() is not None:
                return value.astimezone(UTC)
        except Exception:  # a tzinfo that cannot say its offset
            pass
    return _bad(value)


def _expiry_value(value: object) -> object:
    if type(value) is date:
        return msgspec.msgpack.Ext(_EXT_DATE, value.toordinal().to_bytes(4, "little"))
    return value if type(value) in _KEPT else _bad(value)


def _checked_row(event: object) -> object:
    row = _row(event)
    if not isinstance(row, RiskEvent | list):
        return row
    values = list(msgspec.structs.astuple(row)) if isinstance(row, RiskEvent) else row
    for i, value in enumerate(values):
        try:
            _encoder.encode(value)
        except Exception:
            values[i] = _bad(value)
    return values


# ---------------------------------------------------------------------------------------- the shipper's side
def unpacked_count(payload: bytes) -> int:
    """How many events a payload holds, without converting them."""
    return len(_decoder.decode(payload)[1])


def unpack_events(payload: bytes, writer_id: str) -> pa.RecordBatch:
    """A spool frame (:data:`~risk_runtime.encoding.SPOOL_SCHEMA`) from a packed payload of ``writer_id``.

    Fields this build does not know come back as columns of nulls under their own names, so the
    shipper refuses the frame (and leaves it in the spool) rather than dropping them.
    """
    enabled = gc.isenabled()
    gc.disable()  # decoding makes a list per row: no cycles, but enough allocations to run the collector often
    try:
        return _unpack(payload, writer_id)
    finally:
        if enabled:
            gc.enable()


def _unpack(payload: bytes, writer_id: str) -> pa.RecordBatch:
    names, items = _decoder.decode(payload)
    n = len(items)
    sequences = list(map(_first, items))
    rows = list(map(_second, items))
    errors = Errors()
    width = len(names)
    if not {list}.issuperset(map(type, rows)):  # one C-level pass; the common frame holds only rows
        for i, row in enumerate(rows):
            if not isinstance(row, list):
                description = row.description if isinstance(row, _NotEvent) else describe(row)
                errors.add(i, f"not a RiskEvent: {description}")
                rows[i] = [None] * width
    # One C-level transposition into a tuple per field; the encoder reads tuples as it reads lists.
    columns: dict[str, Sequence[Any]] = (
        dict(zip(names, zip(*rows, strict=True), strict=True)) if n else {name: [] for name in names}
    )
    if "timestamp" in columns:
        columns["timestamp"] = _times(columns["timestamp"])
    if "event_id" in columns:
        columns["event_id"] = _ids(columns["event_id"], sequences, writer_id)
    batch = encode_columns(columns, sequences, errors)
    unknown = [name for name in names if not name.startswith("_") and name not in _SPOOL_NAMES]
    for name in unknown:
        batch = batch.append_column(name, pa.nulls(n))
    return batch


_SPOOL_NAMES: Final = frozenset(SPOOL_SCHEMA.names)
_first = itemgetter(0)
_second = itemgetter(1)


def _times(values: Sequence[Any]) -> Sequence[Any] | pa.Array:
    """Integer nanoseconds as UTC microseconds (an Arrow column); anything else is left for the encoder."""
    kinds = set(map(type, values))
    if _PLAIN_TIMES.issuperset(kinds):
        micros = pc.divide(pa.array(values, pa.int64()), 1000)
        return micros.cast(SPOOL_SCHEMA.field("timestamp").type)
    if int not in kinds:  # datetimes as the caller gave them (a component's clock): the encoder checks them
        return values
    return [datetime_from_ns(v) if type(v) is int else v for v in values]


def _ids(values: Sequence[Any], sequences: list[int], writer_id: str) -> Sequence[Any] | pa.Array:
    """Each row's id: the one the event carried, else the id derived from its writer and sequence."""
    if None not in values:
        return values
    prefix, mask = event_id_prefix(writer_id), SEQUENCE_MASK
    if values.count(None) == len(values):  # the common frame: no event carried its own id
        if {int}.issuperset(map(type, sequences)) and min(sequences) >= 0 and max(sequences) <= mask:
            return derived_id_column(prefix, sequences)
        return [f"{prefix}{s & mask:012x}" for s in sequences]
    return [derived_event_id(prefix, s) if v is None else v for v, s in zip(values, sequences, strict=True)]


_HEX_DIGITS: Final = 16
"""Hex digits of a sequence packed as an unsigned 64-bit integer; a derived id keeps the last 12."""


def derived_id_column(prefix: str, sequences: Sequence[int]) -> pa.Array:
    """:func:`~risk_runtime.events.derived_event_id` of every sequence (each in ``0..SEQUENCE_MASK``), as Arrow.

    Formatting one Python string per event and converting it cost ~0.28 µs an event, the shipper's largest
    single step. Here the sequences are packed big-endian in one ``struct`` call and hex-encoded in one
    ``bytes.hex()``; Arrow then cuts each 16-digit group to its last 12 and puts the writer's prefix before
    it (~0.05 µs an event). The strings are byte for byte the ones ``derived_event_id`` formats.
    """
    n = len(sequences)
    digits = struct.pack(f">{n}Q", *sequences).hex().encode("ascii")
    groups = pa.FixedSizeBinaryArray.from_buffers(pa.binary(_HEX_DIGITS), n, [None, pa.py_buffer(digits)])
    last12 = pc.binary_slice(groups.cast(pa.binary()), _HEX_DIGITS - 12, _HEX_DIGITS)
    separator = pa.scalar(b"", pa.binary())  # built here: a scalar made at import asks pyarrow to import pandas
    ids = pc.binary_join_element_wise(pa.scalar(prefix.encode("ascii"), pa.binary()), last12, separator)
    return ids.cast(pa.string())


__all__ = ["PAYLOAD_MSGPACK", "ROW_FIELDS", "pack_events", "unpack_events", "unpacked_count"]
