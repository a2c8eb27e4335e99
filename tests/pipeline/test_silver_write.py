"""Writing silver: a day or a range is replaced exactly, so re-runs are idempotent and other days never move."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest

from risk_pipeline.defs.silver import build as build_module
from risk_pipeline.defs.silver.build import SilverDays, build_silver_days
from risk_pipeline.defs.silver.schema import QUARANTINE, QUARANTINE_SCHEMA, SILVER, SILVER_SCHEMA
from risk_pipeline.lake import Lake, TableRef
from risk_runtime.events import BRONZE_SCHEMA, RiskEvent, RiskEventType

BRONZE = TableRef("bronze", "risk_events")
ORDER = [("event_date", "ascending"), ("writer_id", "ascending"), ("sequence", "ascending")]
T = RiskEventType


def day_table(lake: Lake, ref: TableRef, day: date) -> pa.Table:
    """One day of a table as Arrow, in a stable row order, as the lake stores it."""
    table = lake.table(ref).to_pyarrow_table(filters=[("event_date", "=", day)])
    return table.sort_by(ORDER)


def events_for(day: date, at, n: int, *, bad: int = 1) -> list[RiskEvent]:
    good = [RiskEvent(T.CB_FAILURE, timestamp=at(day, 60 * i), source="orders", failure_count=i) for i in range(n)]
    return good + [RiskEvent(T.CB_FAILURE, timestamp=at(day, 7 + i), failure_count=-1) for i in range(bad)]


def run_day(lake: Lake, day: date, run_id: str) -> SilverDays:
    return build_silver_days(lake, day, day + timedelta(days=1), run_id=run_id)


@pytest.fixture
def three_days(lake: Lake, bronze_from_events, day, at) -> list[date]:
    """Bronze for three consecutive days, silver built day by day."""
    days = [day - timedelta(days=1), day, day + timedelta(days=1)]
    for i, d in enumerate(days):
        bronze = bronze_from_events(events_for(d, at, 5 + i, bad=1 + i), ingested_at=at(d, 86_000))
        lake.replace_days(BRONZE, bronze, d, d + timedelta(days=1), schema=BRONZE_SCHEMA)
        run_day(lake, d, run_id=f"first-{i}")
    return days


def test_days_land_with_their_accounting(lake: Lake, three_days: list[date]) -> None:
    assert lake.days_present(SILVER) == three_days
    assert lake.days_present(QUARANTINE) == three_days
    assert [day_table(lake, SILVER, d).num_rows for d in three_days] == [5, 6, 7]
    assert [day_table(lake, QUARANTINE, d).num_rows for d in three_days] == [1, 2, 3]
    assert lake.table(SILVER).history(1)[0]["run_id"] == "first-2"  # each commit says which run wrote it


def test_rerunning_a_day_is_idempotent_and_leaves_other_days_untouched(lake: Lake, three_days: list[date]) -> None:
    before = {(ref, d): day_table(lake, ref, d) for ref in (SILVER, QUARANTINE) for d in three_days}
    middle = three_days[1]

    for attempt in range(2):
        report = run_day(lake, middle, run_id=f"rerun-{attempt}")
        assert report.per_day == {
            middle.isoformat(): {"bronze_rows": 8, "silver_rows": 6, "quarantine_rows": 2, "duplicates_removed": 0}
        }
        assert report.reasons == {"failure_count: >= 0": 2}

    for d in (three_days[0], three_days[2]):
        assert day_table(lake, SILVER, d).equals(before[SILVER, d])
        assert day_table(lake, QUARANTINE, d).equals(before[QUARANTINE, d])
    assert day_table(lake, SILVER, middle).equals(before[SILVER, middle])
    rerun = day_table(lake, QUARANTINE, middle)
    assert rerun.num_rows == 2
    assert set(rerun.column("run_id").to_pylist()) == {"rerun-1"}
    run_columns = ["run_id", "quarantined_at"]
    assert rerun.drop_columns(run_columns).equals(before[QUARANTINE, middle].drop_columns(run_columns))


def test_rerunning_a_range_replaces_exactly_that_range(
    lake: Lake, three_days: list[date], bronze_from_events, at
) -> None:
    first, middle, last = three_days
    before = {(ref, d): day_table(lake, ref, d) for ref in (SILVER, QUARANTINE) for d in (middle, last)}
    # Since silver was built, the first day's bronze gained a late batch -- landed twice by a retry.
    late = events_for(first, at, 2, bad=0)
    copies = [bronze_from_events(late, writer_id="writer-2", ingested_at=at(first, s)) for s in (86_100, 86_200)]
    day_rows = lake.read_days(BRONZE, first, middle, schema=BRONZE_SCHEMA)
    grown = pl.concat([day_rows, *(c.select(day_rows.columns) for c in copies)])
    lake.replace_days(BRONZE, grown, first, middle, schema=BRONZE_SCHEMA)

    report = build_silver_days(lake, first, last, run_id="range")

    assert report.totals == {
        "bronze_rows": (6 + 2 + 2) + 8,
        "silver_rows": (5 + 2) + 6,
        "quarantine_rows": 1 + 2,
        "duplicates_removed": 2,
    }
    assert [day_table(lake, SILVER, d).num_rows for d in three_days] == [5 + 2, 6, 7]
    assert day_table(lake, SILVER, middle).equals(before[SILVER, middle])  # same bronze, same silver
    for ref in (SILVER, QUARANTINE):
        assert day_table(lake, ref, last).equals(before[ref, last])  # outside the range: untouched
    checks = {c.check_name: c.passed for c in report.check_results()}
    assert checks == {
        "no_duplicate_event_ids": True,
        "bronze_rows_accounted_for": True,
        "quarantine_rate_below_threshold": False,  # the fixture refuses a row in every six or so
        "no_sequence_gaps": True,
    }


def test_rows_outside_the_range_are_refused(lake: Lake, three_days: list[date]) -> None:
    first, middle, _ = three_days
    rows = lake.read_days(SILVER, first, middle + timedelta(days=1), schema=SILVER_SCHEMA)
    with pytest.raises(ValueError, match="rows outside"):
        lake.replace_days(SILVER, rows, middle, middle + timedelta(days=1), schema=SILVER_SCHEMA)


def test_written_tables_have_the_declared_schemas(lake: Lake, three_days: list[date]) -> None:
    silver = lake.table(SILVER).schema().to_arrow()
    quarantine = lake.table(QUARANTINE).schema().to_arrow()
    assert [(f.name, f.nullable) for f in silver] == [(f.name, f.nullable) for f in SILVER_SCHEMA]
    assert [(f.name, f.nullable) for f in quarantine] == [(f.name, f.nullable) for f in QUARANTINE_SCHEMA]
    assert lake.table(SILVER).metadata().partition_columns == ["event_date"]
    assert lake.table(QUARANTINE).metadata().partition_columns == ["event_date"]


def test_threads_and_quarantine_batches_do_not_change_what_is_written(
    tmp_path: Path, three_days: list[date], lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two days at a time with the quarantine flushed after every day gives the tables one thread gives."""
    first, _, last = three_days
    expected = {ref: lake.read_all(ref).drop("run_id", "quarantined_at", strict=False) for ref in (SILVER, QUARANTINE)}
    monkeypatch.setattr(build_module, "QUARANTINE_FLUSH_ROWS", 1)
    for threads in (1, 2):
        report = build_silver_days(lake, first, last + timedelta(days=1), run_id=f"t{threads}", threads=threads)
        assert report.totals["quarantine_rows"] == 1 + 2 + 3
        for ref, rows in expected.items():
            now = lake.read_all(ref).drop("run_id", "quarantined_at", strict=False)
            assert now.sort(now.columns[:5]).equals(rows.sort(rows.columns[:5])), (threads, ref)
    assert len(lake.table(QUARANTINE).history(3)) == 3  # one commit per day: flushed after every day
