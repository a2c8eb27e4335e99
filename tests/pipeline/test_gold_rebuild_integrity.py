"""Trailing-stop outcomes survive rebuilds: a stop's row is keyed by its lifetime and lives where the lifetime began.

Real Dagster runs (in-process) over real Delta tables, nothing mocked:

* three days are built; a tightened rule (``$RISK_MAX_PREMIUM``) then quarantines a later update of a stop
  added on day 1, and the range is backfilled one run per day and as one run: the stop keeps its row, with
  the history that remains in silver, and every completeness check passes;
* a desk's manager re-adds an ``execution_id`` after its stop triggered: gold holds two lifetimes, never a blend;
* rebuilding only the day whose events vanished brings the stop's row back to what the earlier days say;
* the lifetime rules, folded day by day: a re-add the same day, an add over a lifetime whose end was lost,
  an event long after its lifetime ended -- each agreeing with the completeness check.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import polars as pl
import pytest
from dagster_runs import append_bronze, check_results, materialize

from risk_pipeline.defs.gold import trailing_stop_outcomes as stops
from risk_pipeline.defs.gold.checks import (
    OUTCOMES_RECONCILE,
    STOP_LIFETIMES_COMPLETE,
    TRANSITIONS_RECONCILE,
    outcomes_checks,
)
from risk_pipeline.defs.silver.checks import QUARANTINE_RATE_ENV
from risk_pipeline.defs.silver.schema import MAX_PREMIUM_ENV, QUARANTINE, SILVER, SILVER_SCHEMA
from risk_pipeline.lake import Lake
from risk_runtime.clock import ManualClock
from risk_runtime.encoding import events_to_bronze
from risk_runtime.events import RiskEvent, RiskEventType
from risk_runtime.sink import MemorySink
from risk_runtime.trailing_stop import TrailingStopManager

T = RiskEventType
D1, D2, D3 = date(2026, 2, 16), date(2026, 2, 17), date(2026, 2, 18)
DAYS: Final = [D1, D2, D3]
GOLD_CHECKS: Final = (STOP_LIFETIMES_COMPLETE, OUTCOMES_RECONCILE, TRANSITIONS_RECONCILE)


def utc(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=UTC)


def stop_event(kind: RiskEventType, when: datetime, ex: str, entry: float, **premiums: float) -> RiskEvent:
    return RiskEvent(kind, timestamp=when, execution_id=ex, symbol="SPY", entry_premium=entry,
                     current_premium=premiums.get("current", entry), highest_premium=premiums.get("highest"),
                     stop_premium=premiums.get("stop"),
                     action=kind.value.removeprefix("trailing_stop_").upper())  # fmt: skip


def three_days() -> list[RiskEvent]:
    """X: added day 1, its one update on day 2 is dear (above 50). Z crosses midnight and triggers. B: a breaker."""
    return [
        stop_event(T.TS_ADD, utc(D1, 10), "X", 10.0),
        stop_event(T.TS_ACTIVATE, utc(D1, 11), "X", 10.0, current=10.5, highest=10.5, stop=10.3),
        stop_event(T.TS_UPDATE, utc(D2, 10), "X", 10.0, current=60.0, highest=60.0, stop=59.1),
        stop_event(T.TS_ADD, utc(D1, 12), "Z", 4.0),
        stop_event(T.TS_ACTIVATE, utc(D1, 13), "Z", 4.0, current=4.2, highest=4.2, stop=4.1),
        stop_event(T.TS_UPDATE, utc(D2, 9), "Z", 4.0, current=4.4, highest=4.4, stop=4.3),
        stop_event(T.TS_TRIGGER, utc(D3, 9), "Z", 4.0, current=4.25, highest=4.4, stop=4.3),
        stop_event(T.TS_ADD, utc(D3, 10), "Y", 2.0),
        RiskEvent(T.CB_STATE_CHANGE, timestamp=utc(D1, 9), source="b", old_state="CLOSED", new_state="OPEN",
                  failure_count=3),
        RiskEvent(T.CB_STATE_CHANGE, timestamp=utc(D2, 9), source="b", old_state="OPEN", new_state="HALF_OPEN",
                  failure_count=3),
    ]  # fmt: skip


def outcomes(root: Path) -> dict[str, dict[str, Any]]:
    rows = Lake(str(root)).read_all(stops.TRAILING_STOP_OUTCOMES).to_dicts()
    by_id = {r["execution_id"]: r for r in rows}
    assert len(by_id) == len(rows), rows
    return by_id


@pytest.fixture
def built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Three days in bronze, built one run per day with no premium cap."""
    monkeypatch.setenv(QUARANTINE_RATE_ENV, "1.0")  # the tightened rule refuses a large share of a tiny day
    monkeypatch.delenv(MAX_PREMIUM_ENV, raising=False)
    root = tmp_path / "built"
    events = sorted(three_days(), key=lambda e: e.timestamp)
    append_bronze(root, events_to_bronze(events, writer_id="w", ingested_at=utc(D3, 23)), "w")
    for day in DAYS:
        run = materialize(root, [day])
        assert run.success and all(check_results(run).values()), (day, check_results(run))
    yield root


@pytest.mark.parametrize("one_run", [False, True], ids=["a-run-per-day", "one-run"])
def test_a_backfill_that_quarantines_a_later_update_keeps_the_stop_with_what_remains(
    built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, one_run: bool
) -> None:
    x = outcomes(built)["X"]
    assert (x["n_updates"], x["highest_premium"], x["last_event_date"]) == (1, 60.0, D2)

    root = tmp_path / "backfilled"
    shutil.copytree(built, root)
    monkeypatch.setenv(MAX_PREMIUM_ENV, "50")
    runs = [materialize(root, DAYS)] if one_run else [materialize(root, [day]) for day in DAYS]
    for run in runs:
        assert run.success, run
        results = check_results(run)
        assert {name: results[name] for name in GOLD_CHECKS} == dict.fromkeys(GOLD_CHECKS, True), results

    lake = Lake(str(root))
    assert lake.read_all(QUARANTINE).get_column("event_date").to_list() == [D2]  # X's dear update, only
    rows = outcomes(root)
    assert sorted(rows) == ["X", "Y", "Z"]
    x = rows["X"]  # the add and the activation remain: the row is what they say
    assert (x["outcome"], x["n_updates"], x["n_events"]) == ("open", 0, 2)
    assert (x["highest_premium"], x["stop_premium"], x["last_event_date"], x["event_date"]) == (10.5, 10.3, D1, D1)
    z = rows["Z"]  # untouched by the rule: triggered on day 3, still in the partition of its add
    assert (z["outcome"], z["n_updates"], z["event_date"], z["triggered_at"]) == ("triggered", 1, D1, utc(D3, 9))
    assert rows["Y"]["event_date"] == D3
    silver_x = lake.read_all(SILVER).filter(pl.col("execution_id") == "X")
    assert silver_x.height == x["n_events"]


def test_rebuilding_only_the_day_that_lost_a_stops_events_restores_the_earlier_history(
    built: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Day 2 alone: X's row lives in day 1's partition and is recomputed from the state carried out of day 1."""
    monkeypatch.setenv(MAX_PREMIUM_ENV, "50")
    run = materialize(built, [D2])
    assert run.success and check_results(run)[STOP_LIFETIMES_COMPLETE], check_results(run)
    x = outcomes(built)["X"]
    assert (x["n_updates"], x["highest_premium"], x["last_event_date"], x["event_date"]) == (0, 10.5, D1, D1)


# ------------------------------------------------------------------------------------ a reused execution_id
def reused_id_events() -> list[RiskEvent]:
    """The runtime's own manager: R triggers on day 1, the desk adds R again on day 2 and removes it."""
    clock = ManualClock(utc(D1, 10))
    sink = MemorySink()
    manager = TrailingStopManager(event_logger=sink, clock=clock, name="desk")
    manager.add_trailing_stop("R", 10.0, symbol="SPY")
    clock.set(utc(D1, 10, 30))
    assert manager.update("R", 10.5) is None  # activates: stop 10.5 * 0.985 = 10.3425
    clock.set(utc(D1, 11))
    assert manager.update("R", 10.2) is not None  # triggers, and the manager forgets R
    clock.set(utc(D2, 9))
    manager.add_trailing_stop("R", 12.0, symbol="SPY")  # allowed: R's first stop has ended
    clock.set(utc(D2, 9, 30))
    assert manager.update("R", 12.5) is None
    clock.set(utc(D2, 15))
    manager.remove_stop("R")
    return sink.events


@pytest.mark.parametrize("one_run", [False, True], ids=["a-run-per-day", "one-run"])
def test_a_reused_execution_id_gives_two_lifetimes(tmp_path: Path, one_run: bool) -> None:
    root = tmp_path / "lake"
    events = reused_id_events()
    append_bronze(root, events_to_bronze(events, writer_id="w", ingested_at=utc(D2, 23)), "w")
    runs = [materialize(root, [D1, D2])] if one_run else [materialize(root, [day]) for day in (D1, D2)]
    for run in runs:
        assert run.success and all(check_results(run).values()), check_results(run)

    rows = Lake(str(root)).read_all(stops.TRAILING_STOP_OUTCOMES).sort("added_at").to_dicts()
    assert [r["execution_id"] for r in rows] == ["R", "R"]
    first, second = rows
    adds = [e.event_id for e in events if e.event_type == T.TS_ADD]
    assert [first["lifetime_id"], second["lifetime_id"]] == adds  # each lifetime is keyed by its own add
    assert (first["outcome"], first["entry_premium"], first["highest_premium"]) == ("triggered", 10.0, 10.5)
    assert (first["triggered_at"], first["removed_at"], first["event_date"]) == (utc(D1, 11), None, D1)
    assert first["n_events"] == 3
    assert (second["outcome"], second["entry_premium"], second["highest_premium"]) == ("removed", 12.0, 12.5)
    assert (second["added_at"], second["removed_at"], second["event_date"]) == (utc(D2, 9), utc(D2, 15), D2)
    assert second["triggered_at"] is None and second["n_events"] == 3


# ------------------------------------------------------------------------ the lifetime rules, day by day
def build_silver(tmp_path: Path, events: list[RiskEvent], days: list[date]) -> Lake:
    lake = Lake(str(tmp_path / "silver-only"))
    table = events_to_bronze(sorted(events, key=lambda e: e.timestamp), writer_id="w", ingested_at=utc(days[-1], 23))
    lake.replace_days(SILVER, table.drop_columns(["ingest_errors"]), days[0], days[-1] + timedelta(days=1),
                      schema=SILVER_SCHEMA)  # fmt: skip
    stops.build_days(lake, days[0], days[-1] + timedelta(days=1))
    for day in days:
        found = {r.check_name: r for r in outcomes_checks(lake, day, day + timedelta(days=1))}
        assert found[STOP_LIFETIMES_COMPLETE].passed, (day, found[STOP_LIFETIMES_COMPLETE].metadata)
        assert found[OUTCOMES_RECONCILE].passed, day
    return lake


def lifetimes(lake: Lake) -> list[tuple[Any, ...]]:
    frame = lake.read_all(stops.TRAILING_STOP_OUTCOMES).sort("execution_id", "last_event_date", "n_events")
    return frame.select("execution_id", "outcome", "n_events", "event_date", "last_event_date").rows()


def test_a_stop_triggered_and_added_again_the_same_day_is_two_rows(tmp_path: Path) -> None:
    lake = build_silver(tmp_path, [
        stop_event(T.TS_ADD, utc(D1, 9), "R", 10.0),
        stop_event(T.TS_ACTIVATE, utc(D1, 10), "R", 10.0, current=10.5, highest=10.5, stop=10.3),
        stop_event(T.TS_TRIGGER, utc(D1, 11), "R", 10.0, current=10.2, highest=10.5, stop=10.3),
        stop_event(T.TS_ADD, utc(D1, 12), "R", 11.0),
        stop_event(T.TS_UPDATE, utc(D2, 9), "R", 11.0, current=11.5, highest=11.5, stop=11.3),
    ], [D1, D2])  # fmt: skip
    assert lifetimes(lake) == [("R", "triggered", 3, D1, D1), ("R", "open", 2, D1, D2)]


def test_an_add_over_a_lifetime_that_never_ended_leaves_that_row_as_it_stood(tmp_path: Path) -> None:
    lake = build_silver(tmp_path, [
        stop_event(T.TS_ADD, utc(D1, 9), "L", 10.0),  # its end was lost
        stop_event(T.TS_ADD, utc(D2, 9), "L", 12.0),
        stop_event(T.TS_REMOVE, utc(D2, 10), "L", 12.0),
    ], [D1, D2])  # fmt: skip
    assert lifetimes(lake) == [("L", "open", 1, D1, D1), ("L", "removed", 2, D2, D2)]


def test_an_event_long_after_its_lifetime_ended_begins_a_lifetime_of_its_own(tmp_path: Path) -> None:
    late = D2 + timedelta(days=stops.CLOSED_RETENTION_DAYS + 1)  # the retention runs from its last event, on D2
    days = [D1 + timedelta(days=i) for i in range((late - D1).days + 1)]
    lake = build_silver(tmp_path, [
        stop_event(T.TS_ADD, utc(D1, 9), "Q", 10.0),
        stop_event(T.TS_REMOVE, utc(D1, 10), "Q", 10.0),
        stop_event(T.TS_REMOVE, utc(D2, 10), "Q", 10.0),  # within the retention: the same lifetime
        stop_event(T.TS_REMOVE, utc(late, 10), "Q", 10.0),  # after it: an orphan
    ], days)  # fmt: skip
    assert lifetimes(lake) == [("Q", "removed", 3, D1, D2), ("Q", "removed", 1, late, late)]
