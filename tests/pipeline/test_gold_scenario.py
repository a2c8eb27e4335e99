"""A scripted two-day silver lake shared by the gold and query tests, and the cross-table contracts.

Day 1 is 2026-01-27, day 2 is 2026-01-28 (UTC). Every expected figure in the other test modules is
worked out by hand from the events below.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from risk_pipeline.defs.gold import carry
from risk_pipeline.defs.gold import circuit_breaker_transitions as cb
from risk_pipeline.defs.gold import limit_rejection_stats as limits
from risk_pipeline.defs.gold import trailing_stop_outcomes as stops
from risk_pipeline.defs.gold.carry import DayBatch, GoldResult, read_state_before, state_partition
from risk_pipeline.defs.gold.checks import STOP_LIFETIMES_COMPLETE, outcomes_checks
from risk_pipeline.defs.silver.schema import SILVER, SILVER_SCHEMA
from risk_pipeline.lake import Lake, TableRef
from risk_runtime.encoding import events_to_bronze
from risk_runtime.events import RiskEvent, RiskEventType

D1, D2, D3 = date(2026, 1, 27), date(2026, 1, 28), date(2026, 1, 29)
T = RiskEventType


def at(day: date, hh: int, mm: int = 0, ss: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, ss, tzinfo=UTC)


def _cb(when: datetime, source: str, old: str, new: str, failures: int) -> RiskEvent:
    return RiskEvent(
        T.CB_STATE_CHANGE, timestamp=when, source=source, old_state=old, new_state=new, failure_count=failures
    )


def _ts(kind: RiskEventType, when: datetime, ex: str, symbol: str, entry: float, **premiums: float) -> RiskEvent:
    return RiskEvent(
        kind,
        timestamp=when,
        execution_id=ex,
        symbol=symbol,
        entry_premium=entry,
        current_premium=premiums.get("current"),
        highest_premium=premiums.get("highest"),
        stop_premium=premiums.get("stop"),
        action=kind.value.removeprefix("trailing_stop_").upper(),
    )


def _pl(kind: RiskEventType, when: datetime, limit_type: str, current: float, limit: float) -> RiskEvent:
    return RiskEvent(
        kind,
        timestamp=when,
        limit_type=limit_type,
        current_value=current,
        limit_value=limit,
        allowed={T.PL_CHECK: True, T.PL_REJECTION: False}.get(kind),
        rejection_reason=f"{limit_type} {current} over {limit}" if kind == T.PL_REJECTION else None,
    )


def scenario_events() -> list[RiskEvent]:
    """The scripted events, in the order the logger accepted them (= sequence order), with fixed ids."""
    events = _scripted()
    for i, event in enumerate(events, start=1):
        event.event_id = str(uuid.UUID(int=i, version=4))
    return events


def _scripted() -> list[RiskEvent]:
    return [
        # -- circuit breakers --------------------------------------------------------------
        # cb-orders opens on day 1, half-opens across midnight, closes, then jumps OPEN->HALF_OPEN
        # while CLOSED: legal pair, but it does not continue from CLOSED -> invalid.
        _cb(at(D1, 22), "cb-orders", "CLOSED", "OPEN", 5),
        _cb(at(D2, 0, 30), "cb-orders", "OPEN", "HALF_OPEN", 5),
        _cb(at(D2, 0, 31), "cb-orders", "HALF_OPEN", "CLOSED", 0),
        _cb(at(D2, 1, 0), "cb-orders", "OPEN", "HALF_OPEN", 0),
        # cb-data: CLOSED->HALF_OPEN is illegal outright; the next transition continues from it.
        _cb(at(D1, 12), "cb-data", "CLOSED", "OPEN", 3),
        _cb(at(D2, 9), "cb-data", "CLOSED", "HALF_OPEN", 3),
        _cb(at(D2, 10), "cb-data", "HALF_OPEN", "CLOSED", 0),
        # -- trailing stops ----------------------------------------------------------------
        # ex-trig: added day 1, activates and ratchets, ratchets again and triggers on day 2.
        _ts(T.TS_ADD, at(D1, 14), "ex-trig", "SPY", 100.0, current=100.0),
        _ts(T.TS_ACTIVATE, at(D1, 15), "ex-trig", "SPY", 100.0, current=103.0, highest=103.0, stop=101.0),
        _ts(T.TS_UPDATE, at(D1, 16), "ex-trig", "SPY", 100.0, current=106.0, highest=106.0, stop=104.0),
        _ts(T.TS_UPDATE, at(D2, 14, 30), "ex-trig", "SPY", 100.0, current=110.0, highest=110.0, stop=107.75),
        _ts(T.TS_TRIGGER, at(D2, 15), "ex-trig", "SPY", 100.0, current=107.5, highest=110.0, stop=107.75),
        # ex-rm: added and removed within an hour on day 1.
        _ts(T.TS_ADD, at(D1, 10), "ex-rm", "QQQ", 50.0, current=50.0),
        _ts(T.TS_REMOVE, at(D1, 11), "ex-rm", "QQQ", 50.0, current=49.0),
        # ex-open: added day 1, activates and ratchets once on day 2, still open.
        _ts(T.TS_ADD, at(D1, 12), "ex-open", "IWM", 20.0, current=20.0),
        _ts(T.TS_ACTIVATE, at(D2, 9), "ex-open", "IWM", 20.0, current=21.0, highest=21.0, stop=20.5),
        _ts(T.TS_UPDATE, at(D2, 10), "ex-open", "IWM", 20.0, current=22.0, highest=22.0, stop=21.5),
        # ex-orphan: its TS_ADD was lost; only an update arrives.
        _ts(T.TS_UPDATE, at(D2, 11), "ex-orphan", "DIA", 30.0, current=31.0, highest=31.0, stop=30.5),
        # -- portfolio limits --------------------------------------------------------------
        _pl(T.PL_CHECK, at(D1, 9), "portfolio_delta", 10.0, 100.0),
        _pl(T.PL_CHECK, at(D1, 9, 5), "symbol_delta", 5.0, 50.0),
        _pl(T.PL_CHECK, at(D1, 9, 10), "portfolio_delta", 20.0, 100.0),
        _pl(T.PL_REJECTION, at(D1, 9, 15), "portfolio_delta", 120.0, 100.0),
        _pl(T.PL_REJECTION, at(D1, 9, 20), "portfolio_delta", 150.0, 100.0),
        _pl(T.PL_REJECTION, at(D1, 9, 25), "symbol_delta", 60.0, 50.0),
        _pl(T.PL_WARNING, at(D1, 9, 30), "portfolio_delta", -170.0, 200.0),
        _pl(T.PL_WARNING, at(D1, 9, 35), "open_positions", 4.0, 5.0),
        _pl(T.PL_CHECK, at(D2, 9), "portfolio_delta", 30.0, 100.0),
        _pl(T.PL_REJECTION, at(D2, 9, 5), "portfolio_delta", 110.0, 100.0),
    ]


def write_silver(lake: Lake, events: list[RiskEvent], start: date = D1, end: date = D3) -> None:
    bronze = events_to_bronze(events, writer_id="w", ingested_at=at(D3, 0))
    silver = pl.from_arrow(bronze.drop_columns(["ingest_errors"]))
    lake.replace_days(SILVER, silver, start, end, schema=SILVER_SCHEMA)


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    """A lake holding the scripted silver days and no gold yet."""
    lake = Lake(str(tmp_path / "lake"))
    write_silver(lake, scenario_events())
    return lake


BUILDERS: dict[str, tuple[Callable[..., GoldResult], list[TableRef]]] = {
    "circuit_breaker_transitions": (cb.build_days, [cb.CIRCUIT_BREAKER_TRANSITIONS, cb.CIRCUIT_BREAKER_STATE]),
    "trailing_stop_outcomes": (stops.build_days, [stops.TRAILING_STOP_OUTCOMES, stops.TRAILING_STOP_STATE]),
    "limit_rejection_stats": (limits.build_days, [limits.LIMIT_REJECTION_STATS]),
}


def build_all(lake: Lake, start: date = D1, end: date = D3) -> None:
    for build, _ in BUILDERS.values():
        build(lake, start, end)


def content(lake: Lake, ref: TableRef) -> pl.DataFrame:
    """A table's rows in a canonical order, for equality across build histories."""
    frame = lake.read_all(ref)
    return frame.sort(frame.columns, nulls_last=True)


def partition_bytes(lake: Lake, ref: TableRef, day: date) -> dict[str, bytes]:
    files = lake.table(ref).file_uris(partition_filters=[("event_date", "=", day.isoformat())])
    return {uri: Path(uri.removeprefix("file://")).read_bytes() for uri in files}


# ------------------------------------------------------------------ contracts shared by every table
@pytest.mark.parametrize("batch_rows", [carry.BATCH_ROWS, 1], ids=["range-in-one-batch", "a-batch-per-day"])
@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_day_by_day_equals_one_range_run(
    tmp_path: Path, name: str, batch_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs of single days, and a range written in one batch or flushed after every day, agree."""
    monkeypatch.setattr(carry, "BATCH_ROWS", batch_rows)
    build, refs = BUILDERS[name]
    one_by_one, ranged = Lake(str(tmp_path / "a")), Lake(str(tmp_path / "b"))
    for target in (one_by_one, ranged):
        write_silver(target, scenario_events())
    build(one_by_one, D1, D2)
    build(one_by_one, D2, D3)
    result = build(ranged, D1, D3)
    assert list(result.per_day) == [D1, D2]
    for ref in refs:
        assert content(one_by_one, ref).equals(content(ranged, ref)), ref


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_rerunning_day_two_is_idempotent(lake: Lake, name: str) -> None:
    build, refs = BUILDERS[name]
    first = build(lake, D1, D3)
    day1_files = {ref: partition_bytes(lake, ref, D1) for ref in refs}
    day_rows = {(ref, d): content(lake, ref).filter(pl.col("event_date") == d) for ref in refs for d in (D1, D2)}

    again = build(lake, D2, D3)

    assert again.per_day[D2] == first.per_day[D2]
    for ref in refs:
        if ref != stops.TRAILING_STOP_OUTCOMES:  # whose day-1 rows day 2 updates in place (to the same values)
            assert partition_bytes(lake, ref, D1) == day1_files[ref], f"{ref}: day 1 files changed"
        for d in (D1, D2):
            assert content(lake, ref).filter(pl.col("event_date") == d).equals(day_rows[ref, d]), (ref, d)


def test_rerunning_an_older_day_keeps_the_rows_later_days_made(lake: Lake) -> None:
    """Re-running D1 after D2: D1's facts come out unchanged, so the rows D2 brought up to date are kept."""
    build_all(lake)
    before = content(lake, stops.TRAILING_STOP_OUTCOMES)
    stops.build_days(lake, D1, D2)
    assert content(lake, stops.TRAILING_STOP_OUTCOMES).equals(before)
    stops.build_days(lake, D2, D3)
    assert content(lake, stops.TRAILING_STOP_OUTCOMES).equals(before)


def test_rerunning_an_older_day_whose_facts_changed_shows_its_rows_as_of_that_day(lake: Lake) -> None:
    """D1 loses ex-trig's ratchet: its row is as of D1 until D2 is rebuilt, then as of D2 again."""
    build_all(lake)
    ratchet = at(D1, 16)
    write_silver(lake, [e for e in scenario_events() if e.timestamp.date() == D1 and e.timestamp != ratchet], D1, D2)
    stops.build_days(lake, D1, D2)
    rows = content(lake, stops.TRAILING_STOP_OUTCOMES).filter(pl.col("execution_id") == "ex-trig")
    assert rows.select("outcome", "n_updates", "last_event_date", "event_date").rows() == [("open", 0, D1, D1)]
    stops.build_days(lake, D2, D3)
    rows = content(lake, stops.TRAILING_STOP_OUTCOMES).filter(pl.col("execution_id") == "ex-trig")
    assert rows.select("outcome", "n_updates", "last_event_date", "event_date").rows() == [("triggered", 1, D2, D1)]
    assert all(r.passed for r in outcomes_checks(lake, D2, D3))


def test_a_copy_of_a_lifetime_in_another_partition_fails_one_row_per_stop_lifetime(lake: Lake) -> None:
    """A stale copy of ex-trig's row (added D1) in D2's partition: the check of D2 finds it twice."""
    build_all(lake)
    ts = stops.TRAILING_STOP_OUTCOMES
    copy = lake.read_days(ts, D1, D2, where="execution_id = 'ex-trig'").with_columns(pl.lit(D2).alias("event_date"))
    lake.replace_days(ts, pl.concat([lake.read_days(ts, D2, D3), copy]), D2, D3, schema=stops.SCHEMA)

    results = {r.check_name: r for r in outcomes_checks(lake, D2, D3)}

    assert not results[STOP_LIFETIMES_COMPLETE].passed
    assert results[STOP_LIFETIMES_COMPLETE].metadata["examples"].value == ["ex-trig: duplicated"]


def test_a_day_without_events_still_carries_the_state(lake: Lake) -> None:
    """D3 has no silver: it writes empty gold, and D4 still sees the breakers and open stops."""
    result = cb.build_days(lake, D1, D3 + timedelta(days=2))
    assert result.per_day == {D1: 2, D2: 5, D3: 0, D3 + timedelta(days=1): 0}
    state, as_of = read_state_before(lake, cb.CIRCUIT_BREAKER_STATE, D3 + timedelta(days=2), cb.STATE_SCHEMA)
    assert as_of == D3 + timedelta(days=1)
    assert dict(zip(state["source"], state["last_state"], strict=True)) == {
        "cb-data": "CLOSED",
        "cb-orders": "HALF_OPEN",
    }


def test_an_empty_state_is_not_mistaken_for_a_missing_one(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    ref = TableRef("gold", "_test_state")
    rows = pl.DataFrame({"source": ["a"], "last_state": ["OPEN"], "last_transition_at": [at(D1, 1)]})
    states = DayBatch(lake, ref, cb.STATE_SCHEMA, run_id=None)
    states.add(D1, state_partition(rows, D1))
    states.add(D2, state_partition(rows.clear(), D2))  # still a partition: the marker row
    states.flush()
    state, as_of = read_state_before(lake, ref, D3, cb.STATE_SCHEMA)
    assert as_of == D2 and state.is_empty()
    state, as_of = read_state_before(lake, ref, D2, cb.STATE_SCHEMA)
    assert as_of == D1 and state["source"].to_list() == ["a"]
    assert read_state_before(lake, ref, D1, cb.STATE_SCHEMA)[1] is None
