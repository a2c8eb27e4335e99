"""Silver refuses contradictions: an event_id reused on another day, a trailing stop whose premiums cannot
all be true, an expiry judged in the wrong calendar. Each is quarantined with its reason; legitimate
events (every one the runtime's TrailingStop logs) all pass."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from dagster_runs import check_metadata, check_results, materialize
from deltalake import write_deltalake

from risk_pipeline.defs.bronze.assets import bronze_risk_events
from risk_pipeline.defs.silver.assets import silver_risk_events
from risk_pipeline.defs.silver.schema import QUARANTINE, SILVER
from risk_pipeline.defs.silver.transform import build_silver
from risk_pipeline.lake import Lake
from risk_runtime.encoding import events_to_bronze
from risk_runtime.events import RiskEvent, RiskEventType
from risk_runtime.sink import MemorySink
from risk_runtime.table import RiskEventsTable
from risk_runtime.trailing_stop import TrailingStopConfig, TrailingStopManager

T = RiskEventType
SILVER_ONLY = [bronze_risk_events, silver_risk_events]
D1, D2, D3 = date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 4)
DUPLICATE_RULE = "no_duplicate_event_ids"
ACCOUNTING_RULE = "bronze_rows_accounted_for"


def noon(day: date, minutes: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, 12, minutes, tzinfo=UTC)


# ---------------------------------------------------------------------------------------------- trailing stops
def stop_event(kind: RiskEventType, label: str, day: date, **premiums: float) -> RiskEvent:
    return RiskEvent(kind, timestamp=noon(day), source=label, execution_id=label, **premiums)  # type: ignore[arg-type]


def test_inconsistent_trailing_stop_premiums_are_quarantined_with_reasons(bronze_from_events, day) -> None:
    cases = {
        "high-below-entry": (
            stop_event(
                T.TS_ACTIVATE,
                "high-below-entry",
                day,
                entry_premium=10.0,
                current_premium=9.0,
                highest_premium=9.5,
                stop_premium=9.0,
            ),
            ["highest_premium >= entry_premium"],
        ),
        "current-above-high": (
            stop_event(
                T.TS_UPDATE,
                "current-above-high",
                day,
                entry_premium=10.0,
                current_premium=12.5,
                highest_premium=12.0,
                stop_premium=11.8,
            ),
            ["highest_premium >= current_premium"],
        ),
        "trigger-above-stop": (
            stop_event(
                T.TS_TRIGGER,
                "trigger-above-stop",
                day,
                entry_premium=10.0,
                current_premium=11.9,
                highest_premium=12.0,
                stop_premium=11.8,
            ),
            ["trailing_stop_trigger: current_premium <= stop_premium"],
        ),
        "stop-above-high": (
            stop_event(
                T.TS_UPDATE,
                "stop-above-high",
                day,
                entry_premium=10.0,
                current_premium=12.0,
                highest_premium=12.0,
                stop_premium=12.1,
            ),
            ["stop_premium <= highest_premium"],
        ),
    }
    # The last bit of a float is not a contradiction: a stop computed in another process may round up.
    rounding = stop_event(
        T.TS_TRIGGER,
        "rounding",
        day,
        entry_premium=10.0,
        current_premium=11.82 * (1 + 1e-13),
        highest_premium=12.0,
        stop_premium=11.82,
    )
    bronze = bronze_from_events([event for event, _ in cases.values()] + [rounding])
    build = build_silver(bronze, run_id="r", partition=day.isoformat())
    assert dict(build.quarantine.select("source", "reasons").rows()) == {k: why for k, (_, why) in cases.items()}
    assert build.silver.get_column("source").to_list() == ["rounding"]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_event_the_runtime_trailing_stop_logs_passes(bronze_from_events, day, seed: int) -> None:
    rng = random.Random(seed)
    clock = iter(noon(day) + timedelta(seconds=i) for i in range(100_000))
    sink = MemorySink()
    manager = TrailingStopManager(TrailingStopConfig(), event_logger=sink, clock=lambda: next(clock))
    premiums: dict[str, float] = {}
    for n in range(40):
        execution_id = f"x{n}"
        premiums[execution_id] = rng.uniform(0.5, 50.0)
        manager.add_trailing_stop(
            execution_id,
            premiums[execution_id],
            activation_pct=rng.uniform(0.001, 0.05),
            trailing_pct=rng.uniform(0.001, 0.2),
        )
    for _ in range(300):
        for execution_id in list(premiums):
            if execution_id not in manager:
                continue
            premiums[execution_id] *= 1 + rng.gauss(0.0, 0.02)
            manager.update(execution_id, premiums[execution_id])
    for stop in list(manager)[::2]:
        manager.remove_stop(stop.execution_id)
    kinds = {e.event_type for e in sink.events}
    assert {T.TS_ADD, T.TS_ACTIVATE, T.TS_UPDATE, T.TS_TRIGGER, T.TS_REMOVE} <= kinds

    build = build_silver(bronze_from_events(sink.events), run_id="r", partition=day.isoformat())

    assert build.quarantine.select("event_type", "reasons").rows() == []
    assert build.silver.height == len(sink.events)


# ---------------------------------------------------------------------------------------------- expiry
def test_expiry_is_a_day_of_the_exchange_calendar(bronze_from_events, monkeypatch) -> None:
    expiry = date(2026, 3, 20)
    new_york = ZoneInfo("America/New_York")
    # 20:30 in New York on expiry day is 00:30 UTC the next day: still expiry day at the exchange.
    evening = datetime(2026, 3, 20, 20, 30, tzinfo=new_york).astimezone(UTC)
    next_morning = datetime(2026, 3, 21, 9, 30, tzinfo=new_york).astimezone(UTC)
    assert evening.date() == date(2026, 3, 21)

    def removal(when: datetime, label: str) -> RiskEvent:
        return RiskEvent(
            T.TS_REMOVE,
            timestamp=when,
            source=label,
            execution_id=label,
            entry_premium=5.0,
            underlying="SPY",
            option_right="C",
            strike=520.0,
            expiry=expiry,
        )

    bronze = bronze_from_events(
        [removal(evening, "evening"), removal(next_morning, "after-expiry")], ingested_at=next_morning
    )
    partition = evening.date().isoformat()
    monkeypatch.delenv("RISK_EXCHANGE_TZ", raising=False)
    build = build_silver(bronze, run_id="r", partition=partition)
    assert build.silver.get_column("source").to_list() == ["evening"]
    assert build.quarantine.select("source", "reasons").rows() == [
        ("after-expiry", ["expiry not before the event's day in $RISK_EXCHANGE_TZ"])
    ]

    monkeypatch.setenv("RISK_EXCHANGE_TZ", "UTC")  # configurable: a venue on UTC calendar days
    assert build_silver(bronze, run_id="r", partition=partition).silver.is_empty()
    monkeypatch.setenv("RISK_EXCHANGE_TZ", "Mars/Olympus_Mons")
    with pytest.raises(ValueError, match="RISK_EXCHANGE_TZ"):
        build_silver(bronze, run_id="r", partition=partition)


# ---------------------------------------------------------------------------------------------- event_id across days
def ship(root: Path, app: str, events: list[RiskEvent], day: date, first_sequence: int = 1) -> None:
    """Land events as the shipper does, ingested on ``day`` (one commit per call)."""
    table = events_to_bronze(events, writer_id=app, first_sequence=first_sequence, ingested_at=noon(day, 59))
    assert RiskEventsTable(root).append(table, app_id=app, version=1)


def breaker(day: date, minutes: int, **fields: object) -> RiskEvent:
    return RiskEvent(T.CB_FAILURE, timestamp=noon(day, minutes), failure_count=1, **fields)  # type: ignore[arg-type]


def where_is(lake: Lake, event_id: str) -> tuple[list[date], list[tuple[date, list[str]]]]:
    """The days silver holds ``event_id`` on, and the (day, reasons) of its quarantined copies."""
    silver = lake.read_all(SILVER, columns=["event_id", "event_date"]).filter(pl.col("event_id") == event_id)
    quarantine = lake.read_all(QUARANTINE, columns=["event_id", "event_date", "reasons"]).filter(
        pl.col("event_id") == event_id
    )
    return sorted(silver.get_column("event_date").to_list()), sorted(quarantine.select("event_date", "reasons").rows())


def reused_id_lake(root: Path) -> str:
    """D1 and D3 each hold a different event under one id (a desk reusing ids); D2 is ordinary."""
    first = breaker(D1, 1)
    ship(root, "desk-a", [first, breaker(D1, 2)], D1)
    ship(root, "desk-b", [breaker(D2, 1)], D2)
    ship(root, "desk-c", [breaker(D3, 1, event_id=first.event_id, source="reuser"), breaker(D3, 2)], D3)
    return first.event_id


def test_an_event_id_reused_on_a_later_day_is_quarantined_once(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    event_id = reused_id_lake(root)
    lake = Lake(str(root))

    result = materialize(root, [D1, D2, D3], SILVER_ONLY)  # one range run: days built side by side
    assert result.success
    checks = check_results(result)
    assert checks[DUPLICATE_RULE] and checks[ACCOUNTING_RULE], checks
    reason = f"event_id: duplicate of an event already in silver on {D1.isoformat()}"
    assert where_is(lake, event_id) == ([D1], [(D3, [reason])])

    # Rebuilding either day, alone or in any order, keeps the same choice.
    for days in ([D1], [D3], [D1], [D1, D2, D3]):
        result = materialize(root, days, SILVER_ONLY)
        assert check_results(result)[DUPLICATE_RULE], days
        assert where_is(lake, event_id) == ([D1], [(D3, [reason])]), days


def test_a_later_day_built_before_the_first_copy_is_named_and_converges(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    event_id = reused_id_lake(root)
    lake = Lake(str(root))

    assert check_results(materialize(root, [D3], SILVER_ONLY))[DUPLICATE_RULE]  # nothing else known yet
    assert where_is(lake, event_id) == ([D3], [])

    # D1 is built afterwards (its bronze came late, or it is rebuilt): its copy is the first, and silver
    # now holds the id twice. The run cannot rewrite D3; its blocking check fails and says what to rebuild.
    result = materialize(root, [D1], SILVER_ONLY)
    assert not check_results(result)[DUPLICATE_RULE]
    facts = check_metadata(result, DUPLICATE_RULE)
    assert facts["days_to_rebuild"] == [D3.isoformat()]
    assert facts["examples"] == [event_id]

    result = materialize(root, [D3], SILVER_ONLY)
    assert check_results(result)[DUPLICATE_RULE]
    assert check_results(materialize(root, [D1], SILVER_ONLY))[DUPLICATE_RULE]
    reason = f"event_id: duplicate of an event already in silver on {D1.isoformat()}"
    assert where_is(lake, event_id) == ([D1], [(D3, [reason])])


def test_a_copy_planted_in_silver_fails_the_check_until_its_day_is_rebuilt(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    event_id = reused_id_lake(root)
    lake = Lake(str(root))
    assert check_results(materialize(root, [D1, D2, D3], SILVER_ONLY))[DUPLICATE_RULE]

    # Something other than a build writes a second copy of D1's event into D2 (a manual fix, a bad tool).
    copy = lake.read_all(SILVER).filter(pl.col("event_id") == event_id).with_columns(pl.lit(D2).alias("event_date"))
    write_deltalake(lake.uri(SILVER), copy.to_arrow(), mode="append", partition_by=["event_date"])
    assert where_is(lake, event_id)[0] == [D1, D2]

    result = materialize(root, [D3], SILVER_ONLY)  # any run: the check looks at every day
    assert not check_results(result)[DUPLICATE_RULE]
    assert check_metadata(result, DUPLICATE_RULE)["days_to_rebuild"] == [D2.isoformat()]

    assert check_results(materialize(root, [D2], SILVER_ONLY))[DUPLICATE_RULE]
    assert where_is(lake, event_id)[0] == [D1]
