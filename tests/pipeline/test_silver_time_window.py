"""Events dated outside the time window (before the lake's first day, or later than their ingestion plus
``$RISK_MAX_EVENT_AHEAD``) are quarantined under the day they were ingested, never lost, and never widen
the days the CLI or the bronze sensor build."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from dagster_runs import check_metadata, check_results, materialize

from risk_pipeline.defs.bronze.assets import bronze_risk_events
from risk_pipeline.defs.bronze.sensors import bronze_sensor
from risk_pipeline.defs.constants import BRONZE_RISK_EVENTS
from risk_pipeline.defs.resources import LakeResource
from risk_pipeline.defs.silver.assets import silver_risk_events
from risk_pipeline.defs.silver.schema import QUARANTINE, SILVER
from risk_pipeline.defs.silver.transform import build_silver
from risk_pipeline.defs.silver.window import MAX_EVENT_AHEAD_ENV, days_to_build, max_event_ahead
from risk_pipeline.lake import Lake
from risk_runtime.encoding import events_to_bronze
from risk_runtime.events import RiskEvent, RiskEventType
from risk_runtime.table import LAKE_ROOT_ENV, RiskEventsTable

T = RiskEventType
D1, D2, D3 = date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 4)
PAST, FUTURE = date(1999, 6, 1), date(2099, 1, 1)
BEFORE_START = "timestamp: not before $RISK_PARTITIONS_START"
AHEAD = f"timestamp: at most ${MAX_EVENT_AHEAD_ENV} after ingested_at"


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def failure(when: datetime, label: str) -> RiskEvent:
    return RiskEvent(T.CB_FAILURE, timestamp=when, failure_count=1, source=label)


def ship(root: Path, app: str, events: list[RiskEvent], ingested_at: datetime, first_sequence: int = 1) -> None:
    table = events_to_bronze(events, writer_id=app, first_sequence=first_sequence, ingested_at=ingested_at)
    assert RiskEventsTable(root).append(table, app_id=app, version=first_sequence)


def three_days_and_two_broken_clocks(root: Path) -> None:
    """Three trading days landed live, and on D2 one desk's clock said 1999, another's 2099."""
    for i, day in enumerate((D1, D2, D3)):
        ship(root, "desk", [failure(at(day, 14), f"day-{i}")], at(day, 14, 1), first_sequence=i + 1)
    ship(root, "broken-clocks", [failure(at(PAST, 14), "1999"), failure(at(FUTURE, 14), "2099")], at(D2, 15))


def quarantined(lake: Lake) -> list[tuple[str, date, datetime, list[str]]]:
    rows = lake.read_all(QUARANTINE, columns=["source", "event_date", "timestamp", "reasons"])
    return sorted(rows.rows())


def risk_lake(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI in its own process, with an ephemeral Dagster instance."""
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", LAKE_ROOT_ENV)}
    env["RISK_MAX_QUARANTINE_RATE"] = "1"  # a three-row day: two refused rows are the point here
    command = [sys.executable, "-m", "risk_pipeline.cli", "--lake", str(root), *args]
    # Before the window, the 2099 row made this a 73-year range: the timeout is what fails then.
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=240, check=False)


@pytest.mark.parametrize("single_run", [True, False], ids=["single-run", "per-day"])
def test_cli_quarantines_1999_and_2099_under_their_ingestion_day_and_keeps_the_range(
    tmp_path: Path, single_run: bool
) -> None:
    root = tmp_path / "lake"
    three_days_and_two_broken_clocks(root)

    done = risk_lake(root, "materialize", *(["--single-run"] if single_run else []))

    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert f"3 day(s): {D1} .. {D3}" in out
    assert "failed checks" not in out
    lake = Lake(str(root))
    assert quarantined(lake) == [
        ("1999", D2, at(PAST, 14), [BEFORE_START]),
        ("2099", D2, at(FUTURE, 14), [AHEAD]),
    ]
    assert sorted(lake.read_all(SILVER, columns=["source"]).get_column("source").to_list()) == [
        "day-0",
        "day-1",
        "day-2",
    ]
    assert lake.days_present(SILVER) == [D1, D2, D3]


def test_accounting_counts_each_row_under_its_home_day(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    three_days_and_two_broken_clocks(root)

    result = materialize(root, [D1, D2, D3], [bronze_risk_events, silver_risk_events])

    assert check_results(result)["bronze_rows_accounted_for"]
    facts = check_metadata(result, "bronze_rows_accounted_for")
    assert (facts["bronze_rows"], facts["silver_rows"], facts["quarantine_rows"]) == (5, 3, 2)
    assert check_results(result)["no_sequence_gaps"]
    # Rebuilding the ingestion day alone replaces its quarantine exactly: nothing doubles, nothing goes.
    again = materialize(root, [D2], [bronze_risk_events, silver_risk_events])
    assert check_results(again)["bronze_rows_accounted_for"]
    assert [r[0] for r in quarantined(Lake(str(root)))] == ["1999", "2099"]


def test_days_to_build_ignore_out_of_window_days_but_keep_their_rows_home(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    three_days_and_two_broken_clocks(root)
    lake = Lake(str(root))
    present = lake.days_present(BRONZE_RISK_EVENTS)
    assert present == [PAST, D1, D2, D3, FUTURE]

    assert days_to_build(lake, present, now=at(D3, 18)) == [D1, D2, D3]
    # The bronze days a commit touched: only the broken clocks' days -> the day they were ingested.
    assert days_to_build(lake, [PAST, FUTURE], now=at(D3, 18)) == [D2]


def test_sensor_requests_the_ingestion_day_never_2099(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    ship(root, "desk", [failure(at(D1, 14), "d1")], at(D1, 14, 1))
    lake = LakeResource(root=str(root))
    defs = dg.Definitions(
        assets=[bronze_risk_events, silver_risk_events], sensors=[bronze_sensor], resources={"lake": lake}
    )
    with dg.instance_for_test() as instance:
        first = bronze_sensor.evaluate_tick(
            dg.build_sensor_context(instance=instance, definitions=defs, resources={"lake": lake})
        )
        ship(root, "broken-clock", [failure(at(FUTURE, 14), "2099")], at(D1, 15))
        second = bronze_sensor.evaluate_tick(
            dg.build_sensor_context(instance=instance, cursor=first.cursor, definitions=defs, resources={"lake": lake})
        )
    assert [r.partition_key for r in first.run_requests] == [D1.isoformat()]
    assert [r.partition_key for r in second.run_requests] == [D1.isoformat()]


def test_a_timestamp_ahead_of_ingestion_is_refused_beyond_the_tolerance(
    bronze_from_events, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingested = at(D1, 12)
    events = [
        failure(ingested + timedelta(minutes=59), "skewed"),
        failure(ingested + timedelta(minutes=61), "ahead"),
    ]
    bronze = bronze_from_events(events, ingested_at=ingested)
    monkeypatch.delenv(MAX_EVENT_AHEAD_ENV, raising=False)
    build = build_silver(bronze, run_id="r", partition=D1.isoformat())
    assert build.silver.get_column("source").to_list() == ["skewed"]
    assert build.quarantine.select("source", "reasons").rows() == [("ahead", [AHEAD])]

    monkeypatch.setenv(MAX_EVENT_AHEAD_ENV, "2h")
    assert build_silver(bronze, run_id="r", partition=D1.isoformat()).quarantine.is_empty()
    for text, seconds in (("90", 90), ("30m", 1_800), ("1.5h", 5_400), ("2d", 172_800)):
        monkeypatch.setenv(MAX_EVENT_AHEAD_ENV, text)
        assert max_event_ahead() == timedelta(seconds=seconds)
    for text in ("soon", "-1h", "1 week"):
        monkeypatch.setenv(MAX_EVENT_AHEAD_ENV, text)
        with pytest.raises(ValueError, match=MAX_EVENT_AHEAD_ENV):
            build_silver(bronze, run_id="r", partition=D1.isoformat())


def test_quarantined_rows_keep_their_raw_timestamp(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    three_days_and_two_broken_clocks(root)
    materialize(root, [D2], [bronze_risk_events, silver_risk_events])
    rows = Lake(str(root)).read_all(QUARANTINE, columns=["source", "timestamp", "partition"])
    assert sorted(rows.rows()) == [("1999", at(PAST, 14), D2.isoformat()), ("2099", at(FUTURE, 14), D2.isoformat())]
    assert Lake(str(root)).read_all(SILVER).filter(pl.col("source").is_in(["1999", "2099"])).is_empty()
