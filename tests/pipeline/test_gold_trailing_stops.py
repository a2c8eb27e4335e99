"""``gold/trailing_stop_outcomes`` against hand-worked expectations of the scripted days."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
from test_gold_scenario import D1, D2, D3, T, _ts, at, lake, write_silver

from risk_pipeline.defs.gold import trailing_stop_outcomes as stops
from risk_pipeline.lake import Lake

__all__ = ["lake"]  # the fixture, re-exported for pytest

D4 = D3 + timedelta(days=1)


def _by_id(lake: Lake) -> dict[str, dict[str, object]]:
    rows = lake.read_all(stops.TRAILING_STOP_OUTCOMES).rows(named=True)
    by_id = {r["execution_id"]: r for r in rows}
    assert len(by_id) == len(rows), "one row per execution_id"
    return by_id


def test_a_stop_added_on_day_one_triggers_on_day_two(lake: Lake) -> None:
    stops.build_days(lake, D1, D3)
    trig = _by_id(lake)["ex-trig"]

    assert trig["outcome"] == "triggered"
    assert (trig["symbol"], trig["entry_premium"], trig["highest_premium"]) == ("SPY", 100.0, 110.0)
    assert (trig["added_at"], trig["activated_at"], trig["triggered_at"]) == (at(D1, 14), at(D1, 15), at(D2, 15))
    assert (trig["stop_premium"], trig["exit_premium"], trig["removed_at"]) == (107.75, 107.5, None)
    assert trig["profit_locked"] == 7.75  # stop at trigger 107.75 - entry 100
    assert trig["realized_pnl"] == 7.5  # exit 107.5 - entry 100
    assert trig["giveback"] == 2.5  # highest 110 - exit 107.5
    assert trig["n_updates"] == 2  # one ratchet on each day
    assert trig["n_events"] == 5
    assert trig["duration_seconds"] == 25 * 3600.0  # day 1 14:00 -> day 2 15:00
    assert (trig["last_event_date"], trig["event_date"]) == (D2, D1)  # its row stays where it was added


def test_removed_open_and_orphan_stops(lake: Lake) -> None:
    stops.build_days(lake, D1, D3)
    rows = _by_id(lake)
    assert sorted(rows) == ["ex-open", "ex-orphan", "ex-rm", "ex-trig"]

    removed = rows["ex-rm"]
    assert (removed["outcome"], removed["removed_at"], removed["duration_seconds"]) == ("removed", at(D1, 11), 3600.0)
    assert removed["profit_locked"] is removed["realized_pnl"] is removed["giveback"] is None
    assert (removed["n_updates"], removed["event_date"]) == (0, D1)

    still_open = rows["ex-open"]
    assert (still_open["outcome"], still_open["added_at"], still_open["activated_at"]) == (
        "open",
        at(D1, 12),
        at(D2, 9),
    )
    assert (still_open["highest_premium"], still_open["stop_premium"], still_open["n_updates"]) == (22.0, 21.5, 1)
    assert still_open["duration_seconds"] is None and still_open["profit_locked"] is None
    assert (still_open["event_date"], still_open["last_event_date"]) == (D1, D2)

    orphan = rows["ex-orphan"]  # its TS_ADD was lost: unknowns stay null, the rest is kept
    assert (orphan["outcome"], orphan["added_at"], orphan["entry_premium"]) == ("open", None, 30.0)
    assert (orphan["symbol"], orphan["highest_premium"], orphan["n_updates"]) == ("DIA", 31.0, 1)
    assert orphan["event_date"] == D2  # its lifetime began with the first event seen


def test_a_stop_keeps_its_row_in_the_partition_of_its_add(lake: Lake) -> None:
    first = stops.build_days(lake, D1, D2)
    assert first.per_day == {D1: 3}
    day_one = lake.read_days(stops.TRAILING_STOP_OUTCOMES, D1, D2).sort("execution_id")
    assert day_one.select("execution_id", "outcome").rows() == [("ex-open", "open"), ("ex-rm", "removed"),
                                                                 ("ex-trig", "open")]  # fmt: skip

    second = stops.build_days(lake, D2, D3)
    assert second.per_day == {D2: 1} and second.carried_from == D1  # only ex-orphan began on D2
    day_one = lake.read_days(stops.TRAILING_STOP_OUTCOMES, D1, D2).sort("execution_id")
    assert day_one.select("execution_id", "outcome", "last_event_date").rows() == [
        ("ex-open", "open", D2),
        ("ex-rm", "removed", D1),
        ("ex-trig", "triggered", D2),
    ]  # updated in place by day 2
    assert lake.read_days(stops.TRAILING_STOP_OUTCOMES, D2, D3)["execution_id"].to_list() == ["ex-orphan"]
    assert second.state_rows == {D2: 4}  # two open, two closed within the retention


def test_a_late_removal_after_the_trigger_lands_on_the_same_row(lake: Lake) -> None:
    write_silver(lake, [_ts(T.TS_REMOVE, at(D3, 0, 5), "ex-trig", "SPY", 100.0, current=107.0)], D3, D4)
    stops.build_days(lake, D1, D4)
    trig = _by_id(lake)["ex-trig"]
    assert (trig["outcome"], trig["removed_at"], trig["event_date"]) == ("triggered", at(D3, 0, 5), D1)
    assert (trig["last_event_date"], trig["n_events"]) == (D3, 6)
    assert trig["duration_seconds"] == 25 * 3600.0 and trig["exit_premium"] == 107.5


def test_closed_stops_leave_the_state_after_the_retention() -> None:
    state = pl.from_arrow(stops.STATE_SCHEMA.empty_table()).drop("_marker", "event_date")
    closed = pl.DataFrame(
        {"execution_id": ["old", "recent", "open"], "removed_at": [at(D1, 1), at(D1, 1), None]},
        schema_overrides={"removed_at": pl.Datetime("us", "UTC")},
    ).with_columns(
        pl.Series("last_event_date", [D1, D3, D1]),
        pl.lit(0, pl.Int64).alias("n_updates"),
    )
    state = pl.concat([state, closed], how="diagonal_relaxed").select(state.columns)
    no_events = pl.DataFrame(schema={"event_id": pl.String, "event_type": pl.String, "execution_id": pl.String,
                                     "symbol": pl.String,
                                     "timestamp": pl.Datetime("us", "UTC"), "entry_premium": pl.Float64,
                                     "current_premium": pl.Float64, "highest_premium": pl.Float64,
                                     "stop_premium": pl.Float64})  # fmt: skip
    day = D1 + timedelta(days=stops.CLOSED_RETENTION_DAYS)
    touched, new_state = stops.fold_day(no_events, state, day)
    assert touched.is_empty()
    assert sorted(new_state["execution_id"]) == ["open", "recent"]
