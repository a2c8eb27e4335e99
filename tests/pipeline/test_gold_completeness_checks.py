"""Each gold completeness check fails on the fault it guards against, planted in a real Delta table.

The scripted two days of :mod:`test_gold_scenario` are built, then a row is deleted, altered or blended with
``deltalake``'s own ``delete``/``update``, and the check is evaluated as the gold step evaluates it.
"""

from __future__ import annotations

from datetime import timedelta

import dagster as dg
import polars as pl
from deltalake import DeltaTable, write_deltalake
from test_gold_scenario import D1, D2, D3, T, _ts, at, build_all, lake, write_silver

from risk_pipeline.defs.gold import circuit_breaker_transitions as cb
from risk_pipeline.defs.gold import trailing_stop_outcomes as stops
from risk_pipeline.defs.gold.checks import (
    OUTCOMES_RECONCILE,
    STOP_LIFETIMES_COMPLETE,
    TRANSITIONS_RECONCILE,
    outcomes_checks,
    transitions_checks,
)
from risk_pipeline.lake import Lake

__all__ = ["lake"]  # the fixture, re-exported for pytest

D4 = D3 + timedelta(days=1)


def results(checks: list[dg.AssetCheckResult]) -> dict[str, dg.AssetCheckResult]:
    return {r.check_name: r for r in checks}


def passed(checks: list[dg.AssetCheckResult]) -> dict[str, bool]:
    return {r.check_name: r.passed for r in checks}


def meta(result: dg.AssetCheckResult, key: str) -> object:
    return result.metadata[key].value


def outcomes_table(lake: Lake) -> DeltaTable:
    return DeltaTable(lake.uri(stops.TRAILING_STOP_OUTCOMES))


def test_every_check_passes_on_the_built_days_wherever_rows_sit(lake: Lake) -> None:
    build_all(lake)
    for start, end in ((D1, D2), (D2, D3), (D1, D3)):
        assert all(passed(outcomes_checks(lake, start, end)).values()), (start, outcomes_checks(lake, start, end))
        assert passed(transitions_checks(lake, start, end))[TRANSITIONS_RECONCILE], start  # (some are invalid)


def test_triggers_reconcile_when_the_triggered_row_also_took_a_later_event(lake: Lake) -> None:
    """ex-trig triggers on D2 and takes a late removal on D3: checking D2 must still find its trigger."""
    write_silver(lake, [_ts(T.TS_REMOVE, at(D3, 0, 5), "ex-trig", "SPY", 100.0, current=107.0)], D3, D4)
    build_all(lake, D1, D4)
    assert passed(outcomes_checks(lake, D2, D3))[OUTCOMES_RECONCILE]
    assert passed(outcomes_checks(lake, D3, D4))[OUTCOMES_RECONCILE]


def test_a_deleted_stop_row_fails_the_lifetime_check_on_every_day_it_was_touched(lake: Lake) -> None:
    build_all(lake)
    outcomes_table(lake).delete("execution_id = 'ex-trig'")  # added D1, triggered D2

    for start in (D1, D2):
        found = results(outcomes_checks(lake, start, start + timedelta(days=1)))
        assert not found[STOP_LIFETIMES_COMPLETE].passed, start
        assert meta(found[STOP_LIFETIMES_COMPLETE], "missing") == 1
        assert meta(found[STOP_LIFETIMES_COMPLETE], "examples") == ["ex-trig: missing"]
    assert not results(outcomes_checks(lake, D2, D3))[OUTCOMES_RECONCILE].passed  # its trigger has no row


def test_a_deleted_row_of_a_stop_that_lived_one_day_fails_that_day(lake: Lake) -> None:
    build_all(lake)
    outcomes_table(lake).delete("execution_id = 'ex-rm'")
    assert not passed(outcomes_checks(lake, D1, D2))[STOP_LIFETIMES_COMPLETE]
    assert passed(outcomes_checks(lake, D2, D3))[STOP_LIFETIMES_COMPLETE]  # ex-rm had no event on D2


def test_a_row_whose_counts_disagree_with_silver_fails(lake: Lake) -> None:
    build_all(lake)
    outcomes_table(lake).update(predicate="execution_id = 'ex-open'", updates={"n_updates": "n_updates + 1"})
    found = results(outcomes_checks(lake, D2, D3))[STOP_LIFETIMES_COMPLETE]
    assert not found.passed and meta(found, "mismatched") == 1


def test_a_duplicated_row_fails(lake: Lake) -> None:
    build_all(lake)
    table = outcomes_table(lake)
    copy = pl.from_arrow(table.to_pyarrow_table()).filter(pl.col("execution_id") == "ex-rm")
    write_deltalake(table, copy.to_arrow(), mode="append")
    found = results(outcomes_checks(lake, D1, D2))[STOP_LIFETIMES_COMPLETE]
    assert not found.passed and meta(found, "duplicated") == 1


def test_two_lifetimes_blended_into_one_row_fail(lake: Lake) -> None:
    """A reused id: ex-rm is added again on D2. Folding the second lifetime into the first row is caught."""
    again = [
        _ts(T.TS_ADD, at(D2, 12), "ex-rm", "QQQ", 55.0, current=55.0),
        _ts(T.TS_REMOVE, at(D2, 13), "ex-rm", "QQQ", 55.0, current=54.0),
    ]
    write_silver(lake, again, D2, D3)  # D2 now holds only the re-add: enough for this check
    build_all(lake)
    rows = lake.read_all(stops.TRAILING_STOP_OUTCOMES).filter(pl.col("execution_id") == "ex-rm")
    assert rows.height == 2 and all(passed(outcomes_checks(lake, D2, D3)).values())

    table = outcomes_table(lake)
    table.delete(f"execution_id = 'ex-rm' AND event_date = '{D2.isoformat()}'")
    table.update(
        predicate="execution_id = 'ex-rm'",
        updates={"n_events": "n_events + 2", "removed_at": "removed_at + INTERVAL '26' HOUR",
                 "last_event_date": f"DATE '{D2.isoformat()}'"},
    )  # fmt: skip
    found = results(outcomes_checks(lake, D2, D3))[STOP_LIFETIMES_COMPLETE]
    assert not found.passed
    assert meta(found, "missing") == 1  # the second lifetime's add has no row of its own


def test_a_deleted_transition_fails_even_when_a_copy_keeps_the_count(lake: Lake) -> None:
    build_all(lake)
    table = DeltaTable(lake.uri(cb.CIRCUIT_BREAKER_TRANSITIONS))
    day2 = pl.from_arrow(table.to_pyarrow_table()).filter(pl.col("event_date") == D2).sort("timestamp")
    lost, kept = day2.row(0, named=True)["event_id"], day2.row(1, named=True)["event_id"]
    table.delete(f"event_id = '{lost}'")
    only_deleted = results(transitions_checks(lake, D2, D3))[TRANSITIONS_RECONCILE]
    assert not only_deleted.passed and meta(only_deleted, "missing_event_ids") == [lost]
    write_deltalake(table, day2.filter(pl.col("event_id") == kept).to_arrow(), mode="append")  # count restored
    swapped = results(transitions_checks(lake, D2, D3))[TRANSITIONS_RECONCILE]
    assert not swapped.passed
    assert meta(swapped, "missing_event_ids") == [lost] and meta(swapped, "duplicated_event_ids") == [kept]
