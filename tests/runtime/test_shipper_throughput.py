"""The shipper's cheaper conversion and commits change no result: every frame shape converts as the
reference Arrow encoder does, and the shipper process keeps what it never uses (pandas) out.

Real loggers, spools, shipper processes and Delta tables in temp dirs; nothing mocked.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path

import pyarrow as pa
import pytest
from conftest import bronze

from risk_runtime import RiskEvent, RiskEventLogger, RiskEventType
from risk_runtime.encoding import encode_batch
from risk_runtime.events import RAW_EVENT_ID, SEQUENCE_MASK, derived_event_id, event_id_prefix
from risk_runtime.packing import derived_id_column, pack_events, unpack_events

T = RiskEventType
START = datetime(2026, 3, 2, 20, 30, 0, 123456, tzinfo=UTC)
WRITER = "host-1-0123456789ab"


START_NS = (int(START.replace(microsecond=0).timestamp()) * 1_000_000 + START.microsecond) * 1000


def _ns(i: int) -> int:
    """``START`` plus ``i`` µs as integer nanoseconds, as the default clock stamps events."""
    return START_NS + i * 1000


def _frame(kind: str, count: int) -> list[object]:
    """Events of one frame shape; each shape takes a different branch of the shipper's conversion."""
    events: list[object] = []
    for i in range(count):
        time_given: datetime | int = START + timedelta(microseconds=i)
        if kind in ("integer times", "custom ids") or (kind == "mixed times" and i % 2):
            time_given = _ns(i)
        event = RiskEvent(T.CB_FAILURE, timestamp=time_given, source="orders", failure_count=i)
        if kind == "custom ids" and i % 3 == 0:
            event.event_id = f"00000000-0000-4000-8000-{i:012d}"
        if kind == "wrong values" and i % 4 == 1:
            event.failure_count = 1.5  # type: ignore[assignment]
        if kind == "wrong values" and i % 4 == 2:
            event.timestamp = datetime(2026, 1, 1, 12)  # naive: an ingest error
        if kind == "a non-event" and i == count // 2:
            events.append({"not": "an event"})
            continue
        events.append(event)
    return events


@pytest.mark.parametrize("count", [1, 7, 512])
@pytest.mark.parametrize(
    "kind", ["datetime times", "integer times", "mixed times", "custom ids", "wrong values", "a non-event"]
)
def test_every_frame_shape_converts_as_the_arrow_encoder_does(kind: str, count: int) -> None:
    events = _frame(kind, count)
    sequences = list(range(1, count + 1))
    prefix = event_id_prefix(WRITER)
    ids = [
        e.event_id if isinstance(e, RiskEvent) and RAW_EVENT_ID.__get__(e) is not None else derived_event_id(prefix, s)
        for e, s in zip(events, sequences, strict=True)
    ]
    unpacked = unpack_events(pack_events(list(zip(sequences, events, strict=True))), WRITER)
    reference = encode_batch(events, sequences)  # after packing: reading an id draws one for the event
    assert unpacked.schema == reference.schema
    for name in reference.schema.names:
        want = ids if name == "event_id" else reference.column(name).to_pylist()
        assert unpacked.column(name).to_pylist() == want, name
    if kind in ("wrong values", "a non-event") and count > 2:
        assert unpacked.column("ingest_errors").null_count < count  # reported, not coerced


class _Incomparable(tzinfo):
    """A time zone one hour east of UTC that refuses to be compared."""

    def utcoffset(self, dt: datetime | None) -> timedelta:
        return timedelta(hours=1)

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("not comparable")

    __hash__ = tzinfo.__hash__


def test_a_time_zone_that_cannot_be_compared_still_packs_and_lands_as_its_instant() -> None:
    local = datetime(2026, 3, 2, 21, 30, tzinfo=_Incomparable())
    events = [RiskEvent(T.CB_FAILURE, timestamp=local, source="odd-zone"), RiskEvent(T.CB_FAILURE, timestamp=START)]
    batch = unpack_events(pack_events([(1, events[0]), (2, events[1])]), WRITER)
    assert batch.column("timestamp").to_pylist() == [datetime(2026, 3, 2, 20, 30, tzinfo=UTC), START]
    assert batch.column("ingest_errors").null_count == 2


def test_frames_of_different_lengths_share_no_wrong_sized_columns() -> None:
    """All-null columns are shared between frames of one length; another length gets its own."""
    for count in (3, 512, 3, 1, 512):
        batch = unpack_events(pack_events([(s, RiskEvent(T.CB_FAILURE)) for s in range(1, count + 1)]), WRITER)
        batch.validate(full=True)
        assert batch.num_rows == count
        assert all(len(column) == count for column in batch.columns)
        assert batch.column("symbol").null_count == count


def test_the_shipper_process_converts_frames_without_importing_pandas(lake: Path, spool: Path) -> None:
    """pyarrow imports pandas, when installed, on its first conversion of Python values: ~1 s of CPU the
    shipper spent per start. The shipper process refuses it, and converts exactly as before."""
    with RiskEventLogger(lake, spool_dir=spool, start_shipper=False) as logger:
        for i in range(1_000):
            logger.log(RiskEvent(T.CB_FAILURE, source="orders", failure_count=i))
    command = [sys.executable, "-X", "importtime", "-m", "risk_runtime.shipper", "--once"]
    shipped = subprocess.run(
        [*command, "--spool", str(spool), "--lake", str(lake)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert shipped.returncode == 0, shipped.stdout + shipped.stderr
    assert "shipped 1000 event(s)" in shipped.stdout
    imported = [line.rsplit("|", 1)[-1].strip() for line in shipped.stderr.splitlines() if "import time:" in line]
    assert "pyarrow" in imported  # the import trace is there
    # A refused import is traced as one "pandas" line; importing it loads its hundreds of submodules.
    assert not [m for m in imported if m.startswith("pandas.")], "the shipper imported pandas"
    rows = bronze(lake)
    assert sorted(rows.column("failure_count").to_pylist()) == list(range(1_000))
    assert rows.column("ingest_errors").null_count == 1_000
    assert pa.compute.count_distinct(rows.column("event_id")).as_py() == 1_000


@pytest.mark.parametrize("sequences", [[1], [0, 1, 2], [SEQUENCE_MASK, 1, 0xABCDEF012345], list(range(40_000, 41_000))])
def test_derived_ids_built_in_arrow_are_the_ids_derived_one_by_one(sequences: list[int]) -> None:
    prefix = event_id_prefix(WRITER)
    column = derived_id_column(prefix, sequences)
    assert column.type == pa.string()
    assert column.to_pylist() == [derived_event_id(prefix, s) for s in sequences]


class _AgreeableStr(str):
    """A string that says it equals anything: it must still land as itself."""

    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = str.__hash__


@pytest.mark.parametrize(
    "sources",
    [
        ["orders"] * 5,
        ["orders"] * 4 + ["orders.ise"],
        ["orders.ise"] + ["orders"] * 4,
        ["orders", _AgreeableStr("venue-b"), "orders"],
        ["orders", None, "orders"],
        ["orders", 7, "orders"],
    ],
)
def test_a_string_column_of_one_value_converts_as_value_by_value(sources: list[object]) -> None:
    """One repeated string is copied in C instead of converted per row; any other column takes the per-row path."""
    events = [RiskEvent(T.CB_FAILURE, timestamp=START, source=s) for s in sources]  # type: ignore[arg-type]
    batch = encode_batch(events, range(1, len(events) + 1))
    want = [s if s is None or isinstance(s, str) else None for s in sources]
    assert batch.column("source").to_pylist() == [None if s is None else str.__str__(s) for s in want]
    errors = batch.column("ingest_errors").to_pylist()
    assert [e is not None for e in errors] == [not (s is None or isinstance(s, str)) for s in sources]
