"""Event time is stored as the UTC instant, whatever process-wide pyarrow settings an application has.

Importing pandera sets ``PYARROW_IGNORE_TIMEZONE=1`` for the whole process; pyarrow then keeps a
tz-aware datetime's wall-clock time and drops its offset, so 20:30 in New York would be stored as
20:30 UTC, on the wrong day. The encoder converts to UTC itself. These tests run in a real child
process with pandera imported (and the variable set), as a trading application that also validates
with pandera would be.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest

from risk_runtime.encoding import encode_batch, events_to_bronze, finish_bronze
from risk_runtime.events import RiskEvent, RiskEventType

NEW_YORK = ZoneInfo("America/New_York")
LOCAL = datetime(2026, 3, 2, 20, 30, tzinfo=NEW_YORK)
"""20:30 on Monday 2 March 2026 in New York (EST, UTC-5): 01:30 UTC on Tuesday 3 March."""
INSTANT = datetime(2026, 3, 3, 1, 30, tzinfo=UTC)

_CHILD = textwrap.dedent(
    """
    import json, os, sys
    from datetime import datetime
    from zoneinfo import ZoneInfo

    import pandera  # sets PYARROW_IGNORE_TIMEZONE=1 for the whole process, as any application importing it
    import pyarrow as pa

    from risk_runtime.encoding import events_to_bronze
    from risk_runtime.events import RiskEvent, RiskEventType
    from risk_runtime.logger import RiskEventLogger
    from risk_runtime.table import RiskEventsTable

    lake, spool = sys.argv[1], sys.argv[2]
    local = datetime(2026, 3, 2, 20, 30, tzinfo=ZoneInfo("America/New_York"))
    ignored = os.environ.get("PYARROW_IGNORE_TIMEZONE")
    # the trap itself, so the test shows the setting is in force in this process
    raw = pa.array([local], pa.timestamp("us", tz="UTC"))[0].as_py().isoformat()

    def event(source):
        return RiskEvent(event_type=RiskEventType.CB_FAILURE, timestamp=local, source=source, failure_count=1)

    rows = events_to_bronze([event("direct")], writer_id="w").to_pylist()
    with RiskEventLogger(lake_root=lake, spool_dir=spool, sync_interval=0.05) as logger:
        assert logger.log(event("logger"))
        assert logger.flush_blocking(60)
    landed = RiskEventsTable(lake).read(columns=["source", "timestamp", "event_date", "ingest_errors"]).to_pylist()

    def plain(row):
        return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in row.items() if k in
                ("source", "timestamp", "event_date", "ingest_errors")}

    print(json.dumps({"ignore_timezone": ignored, "raw_pyarrow": raw,
                      "direct": [plain(r) for r in rows], "bronze": [plain(r) for r in landed]}))
    """
)


def _run_child(tmp_path: Path, **env: str) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, str(tmp_path / "lake"), str(tmp_path / "spool")],
        env={**{k: v for k, v in os.environ.items() if k != "PYARROW_IGNORE_TIMEZONE"}, **env},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("preset", [None, "1"], ids=["set-by-pandera", "set-by-environment"])
def test_new_york_event_lands_at_its_utc_instant_with_pandera_imported(tmp_path: Path, preset: str | None) -> None:
    out = _run_child(tmp_path, **({} if preset is None else {"PYARROW_IGNORE_TIMEZONE": preset}))
    assert out["ignore_timezone"] == "1"
    assert out["raw_pyarrow"] == "2026-03-02T20:30:00+00:00"  # the trap is in force in the child
    expected = {"timestamp": INSTANT.isoformat(), "event_date": "2026-03-03", "ingest_errors": None}
    assert out["direct"] == [{"source": "direct", **expected}]
    assert out["bronze"] == [{"source": "logger", **expected}]


def _timestamps(events: list[RiskEvent]) -> list[datetime]:
    return encode_batch(events, range(1, len(events) + 1)).column("timestamp").to_pylist()


def test_every_time_zone_in_one_batch_is_converted_to_utc() -> None:
    """Mixed zones, fixed offsets, UTC and a missing value: each is stored as its own instant."""
    tokyo = LOCAL.astimezone(ZoneInfo("Asia/Tokyo"))
    fixed = LOCAL.astimezone(timezone(timedelta(hours=5, minutes=30)))
    events = [RiskEvent(event_type=RiskEventType.CB_FAILURE, timestamp=t) for t in (LOCAL, INSTANT, tokyo, fixed)]
    assert _timestamps(events) == [INSTANT] * 4
    missing = RiskEvent(event_type=RiskEventType.CB_FAILURE, timestamp=LOCAL)
    missing.timestamp = None  # type: ignore[assignment]
    assert _timestamps([missing, events[0]]) == [None, INSTANT]


def test_naive_and_non_datetime_timestamps_stay_ingest_errors_beside_converted_ones() -> None:
    naive = RiskEvent(event_type=RiskEventType.CB_FAILURE, timestamp=datetime(2026, 3, 2, 20, 30))
    text = RiskEvent(event_type=RiskEventType.CB_FAILURE, timestamp="2026-03-02T20:30")  # type: ignore[arg-type]
    good = RiskEvent(event_type=RiskEventType.CB_FAILURE, timestamp=LOCAL)
    table = events_to_bronze([naive, good, text], writer_id="w", ingested_at=INSTANT)
    rows = table.select(["timestamp", "event_date", "ingest_errors"]).to_pylist()
    assert rows[1] == {"timestamp": INSTANT, "event_date": date(2026, 3, 3), "ingest_errors": None}
    for row in (rows[0], rows[2]):
        assert row["timestamp"] is None and row["event_date"] == INSTANT.date()
        assert "timestamp: expected a time-zone-aware datetime" in json.loads(row["ingest_errors"])[0]


def test_ingested_at_is_stored_as_its_utc_instant_and_must_be_aware() -> None:
    frame = encode_batch([RiskEvent(event_type=RiskEventType.CB_FAILURE, timestamp=LOCAL)], [1])
    bronze = finish_bronze(pa.Table.from_batches([frame]), writer_id="w", ingested_at=LOCAL)
    assert bronze.column("ingested_at").to_pylist() == [INSTANT]
    with pytest.raises(ValueError, match="ingested_at"):
        finish_bronze(pa.Table.from_batches([frame]), writer_id="w", ingested_at=datetime(2026, 3, 2, 20, 30))


def test_bronze_filters_compare_instants_and_refuse_naive_datetimes(tmp_path: Path) -> None:
    from risk_runtime.table import RiskEventsTable

    table = RiskEventsTable(tmp_path / "lake")
    event = RiskEvent(event_type=RiskEventType.CB_FAILURE, timestamp=LOCAL, failure_count=1)
    table.append(events_to_bronze([event], writer_id="w"), app_id="w", version=1)
    tokyo = LOCAL.astimezone(ZoneInfo("Asia/Tokyo"))
    assert table.read(filters=[("timestamp", "=", tokyo)], columns=["event_id"]).num_rows == 1
    assert table.read(filters=[("timestamp", ">", LOCAL)], columns=["event_id"]).num_rows == 0
    with pytest.raises(ValueError, match="naive"):  # which zone? astimezone would guess the machine's
        table.read(filters=[("timestamp", "<", datetime(2026, 3, 3, 1, 30))])
