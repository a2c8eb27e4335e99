"""The trailing stops' carried state, stored as snapshots and change sets, reads back as the state each day folded.

Twelve days of stops (many open ones, a few touched a day, some ending and leaving with the retention, ids
re-added) are built day by day into a real Delta table; each day's state read back from its chain must equal
the state folded in memory from the same silver, a range build must store the same partitions, a chain whose
base is gone must fail loudly, and the stop checks given the builder's state must still fail on a planted fault.
"""

from __future__ import annotations

import random
import shutil
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest
from deltalake import DeltaTable
from test_gold_completeness_checks import meta, results
from test_gold_scenario import T, _ts, at, content, write_silver

from risk_pipeline.defs.gold import carry
from risk_pipeline.defs.gold import trailing_stop_outcomes as stops
from risk_pipeline.defs.gold.assets import GOLD_TABLES, build_gold_tables
from risk_pipeline.defs.gold.checks import STOP_LIFETIMES_COMPLETE, outcomes_checks
from risk_pipeline.lake import Lake, days_between
from risk_runtime.events import RiskEvent

FIRST = date(2026, 2, 2)
DAYS = days_between(FIRST, FIRST + timedelta(days=12))
END = DAYS[-1] + timedelta(days=1)
ONE_DAY = timedelta(days=1)


def stop_days(seed: int = 7) -> list[RiskEvent]:
    """60 stops added on the first day, then each day: 2 added, 4 ratcheted, 1 triggered, 1 removed and, from
    the fourth day, one of those two added again."""
    rng = random.Random(seed)
    events: list[RiskEvent] = []
    alive: dict[str, float] = {}
    ended: list[str] = []
    serial = 0

    def add(day: date, hour: int, ex: str | None = None) -> None:
        nonlocal serial
        if ex is None:
            serial += 1
            ex = f"ex-{serial:03d}"
        entry = round(rng.uniform(5, 50), 2)
        alive[ex] = entry
        events.append(_ts(T.TS_ADD, at(day, hour, rng.randrange(60)), ex, "SPY", entry, current=entry))

    for _ in range(60):
        add(FIRST, 9)
    for day in DAYS[1:]:
        for _ in range(2):
            add(day, 9)
        for ex in rng.sample(sorted(alive), 4):
            high = alive[ex] * 1.1
            events.append(_ts(T.TS_UPDATE, at(day, 10), ex, "SPY", alive[ex], current=high, highest=high,
                              stop=high * 0.95))  # fmt: skip
        triggered, removed = rng.sample(sorted(alive), 2)
        entry = alive.pop(triggered)
        events.append(_ts(T.TS_TRIGGER, at(day, 12), triggered, "SPY", entry, current=entry * 1.04,
                          highest=entry * 1.1, stop=entry * 1.045))  # fmt: skip
        events.append(_ts(T.TS_REMOVE, at(day, 13), removed, "SPY", alive.pop(removed), current=1.0))
        ended += [triggered, removed]
        if day >= DAYS[3]:
            add(day, 14, ended.pop())  # an id ended today added again: a new lifetime
    return events


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    lake = Lake(str(tmp_path / "lake"))
    write_silver(lake, stop_days(), FIRST, END)
    return lake


def folded_states(lake: Lake) -> dict[date, pl.DataFrame]:
    """Each day's state as the fold makes it in memory, from empty, over the same silver."""
    state = pl.from_arrow(stops.STATE_SCHEMA.empty_table())
    assert isinstance(state, pl.DataFrame)
    out = {}
    for day in DAYS:
        events = carry.read_silver_day(lake, day, stops.EVENT_TYPES, stops._EVENT_COLUMNS)
        _, state = stops.fold_day(events, state, day)
        out[day] = state
    return out


def stored_bases(lake: Lake) -> dict[date, date | None]:
    markers = lake.read_all(stops.TRAILING_STOP_STATE, schema=stops.STATE_SCHEMA, where=carry.MARKER)
    return dict(markers.select("event_date", carry.BASE).iter_rows())


def test_each_days_state_read_from_its_chain_is_the_state_the_fold_made(lake: Lake) -> None:
    for day in DAYS:
        result = stops.build_days(lake, day, day + ONE_DAY)
        assert result.carried_from == (day - ONE_DAY if day > FIRST else None)
    expected = folded_states(lake)

    bases = stored_bases(lake)
    changes = [day for day, base in bases.items() if base is not None]
    assert bases[FIRST] is None and len(changes) >= 6, bases  # change sets most days ...
    assert any(bases[day] is None for day in DAYS[1:]), bases  # ... and a snapshot again once they grew
    assert all(bases[day] == day - ONE_DAY for day in changes)
    states = lake.read_all(stops.TRAILING_STOP_STATE, schema=stops.STATE_SCHEMA, where=f"NOT {carry.MARKER}")
    written = dict(states.group_by("event_date").len().iter_rows())
    assert all(written[day] < expected[day].height / 2 for day in changes)  # a change set is the day's changes

    for day in DAYS:
        state, as_of, chain = stops.carried_state(lake, day + ONE_DAY)
        assert as_of == day and chain.days[-1] == day
        want = expected[day].select(stops._FOLDED_NAMES)
        assert state.select(stops._FOLDED_NAMES).sort("execution_id").equals(want), day
    horizon = DAYS[-1] - timedelta(days=stops.CLOSED_RETENTION_DAYS)
    aged = lake.read_all(stops.TRAILING_STOP_OUTCOMES).filter(
        (pl.col("outcome") != stops.OPEN) & (pl.col("last_event_date") <= horizon)
    )
    assert aged.height >= 4  # ended stops left the state with the retention, while it was read from change sets
    assert expected[DAYS[-1]].join(aged, on=stops.KEY, how="semi").is_empty()


def test_a_range_build_stores_the_same_partitions_as_day_by_day(lake: Lake, tmp_path: Path) -> None:
    shutil.copytree(lake.location, tmp_path / "at-once")  # the same silver, event ids included
    at_once = Lake(str(tmp_path / "at-once"))
    for day in DAYS:
        stops.build_days(lake, day, day + ONE_DAY)
    stops.build_days(at_once, FIRST, END)
    for ref in (stops.TRAILING_STOP_STATE, stops.TRAILING_STOP_OUTCOMES):
        assert content(at_once, ref).equals(content(lake, ref)), ref
    stops.build_days(lake, DAYS[5], DAYS[8])  # a rebuild in the middle stores them again, the same
    assert content(at_once, stops.TRAILING_STOP_STATE).equals(content(lake, stops.TRAILING_STOP_STATE))


def test_a_change_set_whose_base_is_gone_fails_loudly(lake: Lake) -> None:
    for day in DAYS:
        stops.build_days(lake, day, day + ONE_DAY)
    bases = stored_bases(lake)
    day = next(d for d in reversed(DAYS) if bases[d] is not None)
    base = bases[day]
    assert base is not None
    DeltaTable(lake.uri(stops.TRAILING_STOP_STATE)).delete(f"event_date = '{base.isoformat()}'")

    with pytest.raises(ValueError, match=f"change set on {base}.*rebuild gold from {base}"):
        stops.carried_state(lake, day + ONE_DAY)
    with pytest.raises(ValueError, match="change set on"):
        stops.build_days(lake, day + ONE_DAY, day + 2 * ONE_DAY)


def test_the_stop_checks_given_the_builders_state_fail_on_a_deleted_row(lake: Lake) -> None:
    """The gold step hands the checks the state the build read; the rows they check are still read from the table."""
    for day in DAYS[:-1]:
        stops.build_days(lake, day, day + ONE_DAY)
    table = next(t for t in GOLD_TABLES if t.table == stops.TRAILING_STOP_OUTCOMES)
    [outcome] = build_gold_tables([table], lambda: lake, DAYS[-1], END, "run")
    assert outcome.result is not None and outcome.result.carried is not None
    assert all(check.passed for check in outcome.checks), outcome.checks
    read, _, _ = stops.carried_state(lake, DAYS[-1])
    assert outcome.result.carried.sort("execution_id").equals(read.sort("execution_id"))

    touched = carry.read_silver_day(lake, DAYS[-1], stops.EVENT_TYPES, ["execution_id"])
    older = lake.read_all(stops.TRAILING_STOP_OUTCOMES).filter(
        pl.col("execution_id").is_in(touched.get_column("execution_id").implode()) & (pl.col("event_date") == FIRST)
    )
    victim = older.get_column("execution_id").sort()[0]  # a stop added on the first day, touched on the last
    DeltaTable(lake.uri(stops.TRAILING_STOP_OUTCOMES)).delete(f"execution_id = '{victim}'")
    found = results(outcomes_checks(lake, DAYS[-1], END, carried=outcome.result.carried))[STOP_LIFETIMES_COMPLETE]
    assert not found.passed and meta(found, "missing") == 1
    assert meta(found, "examples") == [f"{victim}: missing"]
