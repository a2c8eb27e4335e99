"""``gold/circuit_breaker_transitions`` against hand-worked expectations of the scripted days."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
from test_gold_scenario import D1, D2, D3, at, lake

from risk_pipeline.defs.gold import circuit_breaker_transitions as cb
from risk_pipeline.lake import Lake

__all__ = ["lake"]  # the fixture, re-exported for pytest


def _rows(lake: Lake) -> list[dict[str, object]]:
    frame = lake.read_all(cb.CIRCUIT_BREAKER_TRANSITIONS).sort(["source", "timestamp"])
    columns = ["source", "timestamp", "old_state", "new_state", "failure_count"]
    columns += ["prev_new_state", "seconds_in_old_state", "is_valid", "event_date"]
    return frame.select(columns).rows(named=True)


def test_transitions_are_timed_and_checked_across_midnight(lake: Lake) -> None:
    result = cb.build_days(lake, D1, D3)

    assert result.per_day == {D1: 2, D2: 5} and result.rows_written == 7
    assert result.carried_from is None
    expected = [
        # source, timestamp, old, new, failures, prev_new_state, seconds_in_old_state, is_valid, day
        ("cb-data", at(D1, 12), "CLOSED", "OPEN", 3, None, None, True, D1),
        ("cb-data", at(D2, 9), "CLOSED", "HALF_OPEN", 3, "OPEN", 21 * 3600.0, False, D2),  # illegal pair
        ("cb-data", at(D2, 10), "HALF_OPEN", "CLOSED", 0, "HALF_OPEN", 3600.0, True, D2),
        ("cb-orders", at(D1, 22), "CLOSED", "OPEN", 5, None, None, True, D1),
        ("cb-orders", at(D2, 0, 30), "OPEN", "HALF_OPEN", 5, "OPEN", 2.5 * 3600, True, D2),  # across midnight
        ("cb-orders", at(D2, 0, 31), "HALF_OPEN", "CLOSED", 0, "HALF_OPEN", 60.0, True, D2),
        ("cb-orders", at(D2, 1), "OPEN", "HALF_OPEN", 0, "CLOSED", 29 * 60.0, False, D2),  # does not continue
    ]
    assert [tuple(r.values()) for r in _rows(lake)] == expected


def test_day_two_alone_uses_the_carried_state_of_day_one(lake: Lake) -> None:
    cb.build_days(lake, D1, D2)
    result = cb.build_days(lake, D2, D3)

    assert result.carried_from == D1
    first_of_day2 = lake.read_days(cb.CIRCUIT_BREAKER_TRANSITIONS, D2, D3).sort("timestamp").row(0, named=True)
    assert first_of_day2["seconds_in_old_state"] == 9000.0 and first_of_day2["prev_new_state"] == "OPEN"


def test_same_timestamp_is_ordered_by_writer_sequence() -> None:
    """Two transitions in the same microsecond: the writer's sequence decides which came first."""
    ts = at(D1, 8)
    events = pl.DataFrame(
        {
            "event_id": ["b", "a"],
            "source": ["cb"] * 2,
            "timestamp": [ts, ts],
            "old_state": ["OPEN", "CLOSED"],
            "new_state": ["HALF_OPEN", "OPEN"],
            "failure_count": [1, 1],
            "event_date": [D1, D1],
            "writer_id": ["w", "w"],
            "sequence": [8, 7],
        }
    )
    state = pl.DataFrame(
        schema={"source": pl.String, "last_state": pl.String, "last_transition_at": pl.Datetime("us", "UTC")}
    )
    rows, new_state = cb.transitions_for_day(events, state)
    assert rows["event_id"].to_list() == ["a", "b"]
    assert rows["is_valid"].to_list() == [True, True]
    assert rows["seconds_in_old_state"].to_list() == [None, 0.0]
    assert new_state.row(0) == ("cb", "HALF_OPEN", ts)


def test_unknown_states_are_invalid_not_errors() -> None:
    ts = at(D1, 8)
    events = pl.DataFrame(
        {
            "event_id": ["x", "y"],
            "source": [None, None],
            "timestamp": [ts, ts + timedelta(seconds=1)],
            "old_state": ["CLOSED", None],
            "new_state": ["SIDEWAYS", "OPEN"],
            "failure_count": [None, None],
            "event_date": [D1, D1],
            "writer_id": ["w", "w"],
            "sequence": [1, 2],
        },
        schema_overrides={"source": pl.String, "failure_count": pl.Int64},
    )
    state = pl.DataFrame(
        schema={"source": pl.String, "last_state": pl.String, "last_transition_at": pl.Datetime("us", "UTC")}
    )
    rows, new_state = cb.transitions_for_day(events, state)
    assert rows["is_valid"].to_list() == [False, False]
    assert new_state.rows() == [(None, "OPEN", ts + timedelta(seconds=1))]
