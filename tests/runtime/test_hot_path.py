"""The hot path only hands off: ids derived from writer and sequence, packed frames converted by the shipper.

Real loggers, spools, shipper processes and Delta tables in temp dirs; nothing mocked.
"""

from __future__ import annotations

import math
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest
from conftest import bronze

from risk_runtime import RiskEvent, RiskEventLogger, RiskEventType
from risk_runtime.encoding import encode_batch
from risk_runtime.events import SCHEMA_VERSION, derived_event_id, event_id_prefix
from risk_runtime.packing import pack_events, unpack_events
from risk_runtime.spool import (
    ARROW_FRAME_MAGIC,
    FRAME_MAGIC,
    WRITERS,
    PackedEvents,
    SegmentWriter,
    list_segments,
    read_segment,
)

T = RiskEventType
LOCAL = datetime(2026, 3, 2, 20, 30, 0, 123456, tzinfo=ZoneInfo("America/New_York"))
INSTANT = LOCAL.astimezone(UTC)


def ship_once(spool: Path, lake: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "risk_runtime.shipper", "--spool", str(spool), "--lake", str(lake), "--once"],
        capture_output=True,
        text=True,
        timeout=180,
    )


# ---------------------------------------------------------------------------------------- ids
def test_derived_ids_are_valid_uuids_unique_across_writers_and_restarts(lake: Path, spool: Path) -> None:
    """Two writers at once, then a restart on the same spool: every id distinct, a version 8 UUID,
    and ``event.event_id`` read after ``log()`` is the id bronze holds."""
    logged: list[RiskEvent] = []
    first, second = RiskEventLogger(lake, spool_dir=spool), RiskEventLogger(lake, spool_dir=spool)
    with first, second:
        for i in range(200):
            for logger in (first, second):
                event = RiskEvent(T.CB_FAILURE, source="orders", failure_count=i)
                assert logger.log(event)
                logged.append(event)
    with RiskEventLogger(lake, spool_dir=spool) as restarted:  # a restart is a new writer
        for i in range(200):
            event = RiskEvent(T.CB_FAILURE, source="orders", failure_count=i)
            assert restarted.log(event)
            logged.append(event)
    rows = bronze(lake).select(["event_id", "writer_id", "sequence"]).to_pylist()
    assert len(rows) == 600 and len({r["event_id"] for r in rows}) == 600
    assert len({r["writer_id"] for r in rows}) == 3
    for row in rows:
        parsed = uuid.UUID(row["event_id"])
        assert (parsed.version, parsed.variant) == (8, uuid.RFC_4122)
        assert str(parsed) == row["event_id"]
        assert row["event_id"] == derived_event_id(event_id_prefix(row["writer_id"]), row["sequence"])
    assert sorted(e.event_id for e in logged) == sorted(r["event_id"] for r in rows)


def test_writer_prefixes_do_not_collide() -> None:
    prefixes = {event_id_prefix(f"host-{pid}-{uuid.uuid4().hex[:12]}") for pid in range(20_000)}
    assert len(prefixes) == 20_000
    assert all(uuid.UUID(p + "000000000001").version == 8 for p in list(prefixes)[:100])


def test_a_user_built_event_keeps_its_id_and_timestamp(lake: Path, spool: Path) -> None:
    given = RiskEvent(T.CB_FAILURE, event_id="11111111-2222-4333-8444-555555555555", timestamp=LOCAL)
    read_first = RiskEvent(T.CB_FAILURE, source="read-first")
    id_read_before_log = read_first.event_id  # drawn now (a random version 4 id) and kept
    time_read_before_log = read_first.timestamp
    with RiskEventLogger(lake, spool_dir=spool) as logger:
        assert logger.log(given) and logger.log(read_first)
        assert given.event_id == "11111111-2222-4333-8444-555555555555" and given.timestamp == LOCAL
    rows = {r["event_id"]: r for r in bronze(lake).to_pylist()}
    assert rows["11111111-2222-4333-8444-555555555555"]["timestamp"] == INSTANT
    assert uuid.UUID(id_read_before_log).version == 4
    assert read_first.event_id == id_read_before_log
    assert rows[id_read_before_log]["timestamp"] == time_read_before_log
    assert time_read_before_log is not None and time_read_before_log.tzinfo is not None


def test_an_event_logged_twice_lands_twice_under_one_id(lake: Path, spool: Path) -> None:
    """As before the hot path changed: a re-sent event is a duplicate silver keeps once, not a new event."""
    event = RiskEvent(T.CB_FAILURE, source="twice")
    with RiskEventLogger(lake, spool_dir=spool) as logger:
        assert logger.log(event) and logger.log(event)
    rows = bronze(lake).select(["event_id", "sequence"]).to_pylist()
    assert sorted(r["sequence"] for r in rows) == [1, 2]
    assert {r["event_id"] for r in rows} == {event.event_id}


def test_event_time_is_integer_nanoseconds_until_read() -> None:
    from risk_runtime.events import RAW_TIMESTAMP

    before = datetime.now(UTC)
    event = RiskEvent(T.CB_FAILURE)
    assert type(RAW_TIMESTAMP.__get__(event)) is int
    assert before - timedelta(seconds=1) <= event.timestamp <= datetime.now(UTC)  # type: ignore[operator]
    assert event.timestamp is not None and event.timestamp.tzinfo is not None


# ---------------------------------------------------------------------------------------- RSF3 round trip
class _Opaque:
    def __repr__(self) -> str:
        return "<opaque>"


def _every_kind_of_event() -> list[object]:
    ids = (f"00000000-0000-4000-8000-{i:012d}" for i in range(100))
    tokyo = LOCAL.astimezone(ZoneInfo("Asia/Tokyo"))
    fixed = LOCAL.astimezone(timezone(timedelta(hours=5, minutes=30)))
    return [
        RiskEvent(T.CB_FAILURE, event_id=next(ids), timestamp=INSTANT, source="orders", failure_count=3),
        RiskEvent(T.CB_FAILURE, event_id=next(ids), timestamp=LOCAL, source="new-york"),
        RiskEvent(T.CB_FAILURE, event_id=next(ids), timestamp=tokyo, source="tokyo"),
        RiskEvent(T.CB_FAILURE, event_id=next(ids), timestamp=fixed, source="fixed"),
        RiskEvent(
            T.TS_UPDATE,
            event_id=next(ids),
            timestamp=INSTANT,
            source="Zürich — 東京 ✓",
            execution_id="exé-1",
            symbol="SPY 240620C00500000",
            entry_premium=2.5,
            current_premium=math.nan,
            highest_premium=math.inf,
            stop_premium=-0.0,
            action="update",
            metadata='{"note": "non-ASCII: ü, 東京"}',
            underlying="SPY",
            option_right="C",
            strike=500.0,
            expiry=date(2026, 6, 19),
            option_delta=0.52,
            underlying_price=519.8,
        ),
        RiskEvent(
            T.PL_CHECK,
            event_id=next(ids),
            timestamp=INSTANT,
            limit_type="portfolio_delta",
            allowed=True,
            current_value=1,
            limit_value=2.0,
        ),
        RiskEvent(T.PL_REJECTION, event_id=next(ids), timestamp=INSTANT, allowed=False, rejection_reason=""),
        # wrong types: each lands as an ingest error, described the same way by both encoders
        RiskEvent(T.TS_ADD, event_id=next(ids), timestamp=INSTANT, entry_premium="abc"),  # type: ignore[arg-type]
        RiskEvent(T.CB_FAILURE, event_id=next(ids), timestamp=INSTANT, failure_count=1.5),  # type: ignore[arg-type]
        RiskEvent(T.CB_FAILURE, event_id=next(ids), timestamp=datetime(2026, 1, 1, 12)),  # naive
        RiskEvent(T.CB_FAILURE, event_id=next(ids), timestamp="2026-03-02T20:30"),  # type: ignore[arg-type]
        RiskEvent(T.CB_FAILURE, event_id=next(ids), timestamp=None),  # type: ignore[arg-type]
        RiskEvent(T.TS_ADD, event_id=next(ids), timestamp=INSTANT, expiry="2026-06-19"),  # type: ignore[arg-type]
        RiskEvent(T.TS_ADD, event_id=next(ids), timestamp=INSTANT, expiry=INSTANT),
        RiskEvent(T.TS_ADD, event_id=next(ids), timestamp=INSTANT, expiry=20260619),  # type: ignore[arg-type]
        RiskEvent(T.TS_ADD, event_id=next(ids), timestamp=INSTANT, metadata={"a": [1, 2]}),  # type: ignore[arg-type]
        RiskEvent(T.TS_ADD, event_id=next(ids), timestamp=INSTANT, allowed=1),  # type: ignore[arg-type]
        RiskEvent(T.TS_ADD, event_id=next(ids), timestamp=INSTANT, strike=True),  # type: ignore[arg-type]
        RiskEvent(T.TS_ADD, event_id=next(ids), timestamp=INSTANT, symbol=_Opaque()),  # type: ignore[arg-type]
        RiskEvent(T.TS_ADD, event_id=next(ids), timestamp=INSTANT, failure_count=1 << 70),
        RiskEvent("not_a_known_type", event_id=next(ids), timestamp=INSTANT),
        RiskEvent(None, event_id=next(ids), timestamp=INSTANT),  # type: ignore[arg-type]
        {"not": "an event"},
        RiskEvent(T.CB_FAILURE, event_id=next(ids), timestamp=INSTANT, source="last"),
    ]


def test_packed_frames_round_trip_every_column_type_as_the_arrow_encoder_stores_it() -> None:
    events = _every_kind_of_event()
    sequences = list(range(1, len(events) + 1))
    reference = encode_batch(events, sequences)
    unpacked = unpack_events(pack_events(list(zip(sequences, events, strict=True))), "writer-1")
    assert unpacked.schema == reference.schema
    for name in reference.schema.names:
        if name == "event_id":  # the non-event's row: null from the Arrow encoder, derived by the shipper
            got, want = unpacked.column(name).to_pylist(), reference.column(name).to_pylist()
            assert got[:-2] == want[:-2] and got[-1] == want[-1]
            assert got[-2] == derived_event_id(event_id_prefix("writer-1"), len(events) - 1)
            continue
        assert unpacked.column(name).to_pylist() == reference.column(name).to_pylist() or (
            name in {"current_premium"} and _same_with_nan(unpacked.column(name), reference.column(name))
        )
    errors = unpacked.column("ingest_errors").to_pylist()
    assert sum(e is not None for e in errors) >= 12  # the wrong types above are reported, not coerced
    assert unpacked.column("timestamp").to_pylist()[1] == INSTANT  # New York, stored as its UTC instant


def _same_with_nan(a: pa.Array, b: pa.Array) -> bool:
    def key(v: float | None) -> object:
        return "nan" if v is not None and math.isnan(v) else v

    return [key(v) for v in a.to_pylist()] == [key(v) for v in b.to_pylist()]


def test_a_packed_frame_holds_integer_time_and_no_id_and_bronze_gets_both() -> None:
    event = RiskEvent(T.CB_FAILURE, source="orders")
    expected_time = event.timestamp
    batch = unpack_events(pack_events([(7, event)]), "host-1-abc")
    row = batch.to_pylist()[0]
    assert row["timestamp"] == expected_time
    assert row["event_id"] == derived_event_id(event_id_prefix("host-1-abc"), 7)
    assert row["ingest_errors"] is None and row["component"] == "circuit_breaker"


# ---------------------------------------------------------------------------------------- frame formats
def _claim(lake: Path, spool: Path) -> None:
    RiskEventLogger(lake, spool_dir=spool, start_shipper=False).start().close(timeout=0.1)


def test_an_arrow_frame_of_the_previous_format_still_ships_beside_packed_ones(lake: Path, spool: Path) -> None:
    _claim(lake, spool)
    writer_dir = spool / WRITERS / "older-host-1-0123456789ab"
    writer_dir.mkdir(parents=True)
    old = [RiskEvent(T.CB_FAILURE, source="rsf2", failure_count=i, timestamp=LOCAL) for i in range(3)]
    new = [RiskEvent(T.CB_FAILURE, source="rsf3", failure_count=i) for i in range(3, 5)]
    segments = SegmentWriter(writer_dir, fsync=False)
    segments.write(encode_batch(old, [1, 2, 3]))  # the old encoder's Arrow frame, as RSF2
    segments.write(PackedEvents((pack_events([(4, new[0]), (5, new[1])]),), 2))
    segments.seal()
    data = list_segments(writer_dir)[0].path.read_bytes()
    assert data.startswith(ARROW_FRAME_MAGIC) and FRAME_MAGIC in data
    contents = read_segment(list_segments(writer_dir)[0].path)
    assert not contents.damage and [f.events for f in contents.frames] == [3, 2]

    result = ship_once(spool, lake)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = sorted(bronze(lake).to_pylist(), key=lambda r: r["sequence"])
    assert [(r["source"], r["failure_count"]) for r in rows] == [
        ("rsf2", 0),
        ("rsf2", 1),
        ("rsf2", 2),
        ("rsf3", 3),
        ("rsf3", 4),
    ]
    assert [r["timestamp"] for r in rows[:3]] == [INSTANT] * 3
    assert [r["event_id"] for r in rows[:3]] == [e.event_id for e in old]
    assert all(r["ingest_errors"] is None for r in rows)


@pytest.mark.parametrize("kind", ["newer schema version", "unknown payload format"])
def test_a_packed_frame_this_build_cannot_read_stays_in_the_spool(lake: Path, spool: Path, kind: str) -> None:
    from risk_runtime.spool import encode_packed_frame

    _claim(lake, spool)
    writer_dir = spool / WRITERS / "newer-host-1-0123456789ab"
    writer_dir.mkdir(parents=True)
    payload = pack_events([(1, RiskEvent(T.CB_FAILURE, source="newer"))])
    if kind == "newer schema version":
        frame = encode_packed_frame(payload, schema_version=SCHEMA_VERSION + 1)
    else:
        frame = encode_packed_frame(payload, payload_format=9)
    segments = SegmentWriter(writer_dir, fsync=False)
    segments.write(PackedEvents((payload,), 1))  # a frame this build writes, so the segment is well formed ...
    path = list_segments(writer_dir)[0].path
    with open(path, "ab") as handle:  # ... then one it cannot read
        handle.write(frame)
    segments.open_frames += 1
    segments.open_events += 1
    segments.seal()

    result = ship_once(spool, lake)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert ("version" if kind == "newer schema version" else "payload format 9") in output, output
    assert [s.sealed for s in list_segments(writer_dir)] == [True]  # left whole, not set aside
    assert not (spool / "corrupt").exists()


def test_the_frame_checksum_covers_its_header(tmp_path: Path) -> None:
    writer_dir = tmp_path / "w"
    writer_dir.mkdir()
    segments = SegmentWriter(writer_dir, fsync=False)
    segments.write(PackedEvents((pack_events([(1, RiskEvent(T.CB_FAILURE))]),), 1))
    segments.seal()
    path = list_segments(writer_dir)[0].path
    data = bytearray(path.read_bytes())
    assert read_segment(path).events == 1
    data[6] ^= 0x01  # the schema version, in the header
    path.write_bytes(bytes(data))
    contents = read_segment(path)
    assert contents.events == 0 and "checksum" in contents.damage[0].reason
