"""Faults the pipeline must surface or absorb, through real Dagster runs on real Delta tables.

* an event lost between a logger and bronze: the ``no_sequence_gaps`` check fails and names the hole;
* a breaker transition that is illegal or does not continue from the previous state: ``every_transition_valid``
  fails, and the rows stay in gold as evidence;
* events landing late in a day that was already built: re-running that day takes them in, and touches
  no other day.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Final

import dagster as dg
import polars as pl
import pytest
from dagster_runs import PIPELINE, append_bronze, check_metadata, check_results, materialize
from deltalake import DeltaTable

from risk_pipeline.defs.bronze.assets import bronze_risk_events
from risk_pipeline.defs.constants import SILVER_GROUP, asset_key
from risk_pipeline.defs.gold import trailing_stop_outcomes
from risk_pipeline.defs.gold.assets import gold_tables
from risk_pipeline.defs.gold.circuit_breaker_transitions import CIRCUIT_BREAKER_STATE, CIRCUIT_BREAKER_TRANSITIONS
from risk_pipeline.defs.gold.limit_rejection_stats import LIMIT_REJECTION_STATS
from risk_pipeline.defs.gold.trailing_stop_outcomes import TRAILING_STOP_OUTCOMES, TRAILING_STOP_STATE
from risk_pipeline.defs.silver.assets import silver_risk_events
from risk_pipeline.defs.silver.schema import QUARANTINE, SILVER
from risk_pipeline.lake import Lake, TableRef
from risk_runtime import RiskEvent, RiskEventLogger
from risk_runtime.encoding import events_to_bronze
from risk_runtime.events import RiskEventType

T = RiskEventType

BRONZE: Final = TableRef("bronze", "risk_events")
SILVER_ONLY: Final = [bronze_risk_events, silver_risk_events]
ALL_TABLES: Final = (
    BRONZE,
    SILVER,
    QUARANTINE,
    CIRCUIT_BREAKER_TRANSITIONS,
    CIRCUIT_BREAKER_STATE,
    TRAILING_STOP_OUTCOMES,
    TRAILING_STOP_STATE,
    LIMIT_REJECTION_STATS,
)


def utc(day: date, hh: int = 0, mm: int = 0, ss: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, ss, tzinfo=UTC)


def day_rows(lake: Lake, ref: TableRef, day: date) -> pl.DataFrame:
    """One day of a table in a canonical order (list columns ride along, they are not sort keys)."""
    frame = lake.read_all(ref)
    if frame.is_empty():
        return frame
    frame = frame.filter(pl.col("event_date") == day)
    return frame.sort([n for n, t in frame.schema.items() if not isinstance(t, pl.List)], nulls_last=True)


def limit_event(kind: RiskEventType, when: datetime, limit_type: str, current: float, limit: float) -> RiskEvent:
    return RiskEvent(
        kind,
        timestamp=when,
        limit_type=limit_type,
        current_value=current,
        limit_value=limit,
        allowed=kind == T.PL_CHECK,
        rejection_reason="over the limit" if kind == T.PL_REJECTION else None,
    )


def state_change(when: datetime, source: str, old: str, new: str, failures: int) -> RiskEvent:
    return RiskEvent(
        T.CB_STATE_CHANGE, timestamp=when, source=source, old_state=old, new_state=new, failure_count=failures
    )


# ------------------------------------------------------------------------------------ 5a. a lost event
GAP_DAY: Final = date(2026, 2, 23)


def test_an_event_deleted_from_bronze_fails_the_sequence_gap_check(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    logger = RiskEventLogger(root, spool_dir=tmp_path / "spool", handle_signals=False).start()
    for i in range(1, 21):
        when = utc(GAP_DAY, 9) + timedelta(minutes=i)
        assert logger.log(RiskEvent(T.CB_FAILURE, timestamp=when, source="orders", failure_count=i))
    assert logger.close(timeout=120), "the logger did not land every event in bronze"
    writer = logger.writer_id
    bronze = DeltaTable(Lake(str(root)).uri(BRONZE))
    assert bronze.to_pyarrow_table().num_rows == 20
    bronze.delete(f"writer_id = '{writer}' AND sequence = 5")

    result = materialize(root, [GAP_DAY], SILVER_ONLY)

    assert result.success  # the gap check is not blocking: silver is written, the check reports the hole
    assert check_results(result) == {
        "no_duplicate_event_ids": True,
        "bronze_rows_accounted_for": True,
        "quarantine_rate_below_threshold": True,
        "no_sequence_gaps": False,
    }
    assert check_metadata(result, "no_sequence_gaps") == {"missing_events": 1, "gaps": [f"{writer}: 5..5"]}
    silver = Lake(str(root)).read_all(SILVER)
    assert sorted(silver["sequence"].to_list()) == [s for s in range(1, 21) if s != 5]


# ---------------------------------------------------------------------------- 5b. invalid breaker transitions
CB_DAY: Final = date(2026, 2, 25)


def test_invalid_breaker_transitions_fail_every_transition_valid(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    events = [
        # "jump": CLOSED -> HALF_OPEN is not a legal transition at all.
        state_change(utc(CB_DAY, 9), "jump", "CLOSED", "HALF_OPEN", 3),
        # "skip": each pair is legal, but HALF_OPEN -> CLOSED does not continue from OPEN (a lost event).
        state_change(utc(CB_DAY, 10), "skip", "CLOSED", "OPEN", 3),
        state_change(utc(CB_DAY, 11), "skip", "HALF_OPEN", "CLOSED", 0),
        # "fine": a full, legal cycle.
        state_change(utc(CB_DAY, 12), "fine", "CLOSED", "OPEN", 3),
        state_change(utc(CB_DAY, 12, 10), "fine", "OPEN", "HALF_OPEN", 3),
        state_change(utc(CB_DAY, 12, 11), "fine", "HALF_OPEN", "CLOSED", 0),
    ]
    append_bronze(root, events_to_bronze(events, writer_id="w", ingested_at=utc(CB_DAY, 23)), "w")

    only_transitions = dg.AssetSelection.groups(SILVER_GROUP) | dg.AssetSelection.assets(
        asset_key(CIRCUIT_BREAKER_TRANSITIONS)
    )
    result = materialize(root, [CB_DAY], [*SILVER_ONLY, gold_tables], only_transitions)

    assert result.success
    assert not Lake(str(root)).exists(TRAILING_STOP_OUTCOMES)  # a subset of gold builds only that table
    checks = check_results(result)
    assert checks.pop("every_transition_valid") is False
    assert all(checks.values()), checks  # silver accepted every event; gold reconciles with it
    metadata = check_metadata(result, "every_transition_valid")
    assert metadata == {
        "invalid_transitions": 2,
        "examples": [f"jump at {utc(CB_DAY, 9)}", f"skip at {utc(CB_DAY, 11)}"],
    }
    gold = Lake(str(root)).read_all(CIRCUIT_BREAKER_TRANSITIONS).sort("timestamp")
    assert gold.select("source", "old_state", "new_state", "prev_new_state", "is_valid").rows() == [
        ("jump", "CLOSED", "HALF_OPEN", None, False),
        ("skip", "CLOSED", "OPEN", None, True),
        ("skip", "HALF_OPEN", "CLOSED", "OPEN", False),
        ("fine", "CLOSED", "OPEN", None, True),
        ("fine", "OPEN", "HALF_OPEN", "OPEN", True),
        ("fine", "HALF_OPEN", "CLOSED", "HALF_OPEN", True),
    ]


# ------------------------------------------------------------------------------------------ 6. late events
L1, L2 = date(2026, 2, 16), date(2026, 2, 17)


def test_late_events_enter_their_day_when_it_is_rebuilt_and_no_other_day_changes(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    on_time = [
        limit_event(T.PL_CHECK, utc(L1, 9), "portfolio_delta", 5.0, 10.0),
        limit_event(T.PL_REJECTION, utc(L1, 9, 5), "portfolio_delta", 12.0, 10.0),
        state_change(utc(L1, 22), "orders", "CLOSED", "OPEN", 3),
        state_change(utc(L2, 1), "orders", "OPEN", "HALF_OPEN", 3),
        limit_event(T.PL_CHECK, utc(L2, 9), "portfolio_delta", 6.0, 10.0),
        limit_event(T.PL_REJECTION, utc(L2, 9, 5), "symbol_delta", 4.0, 3.0),
    ]
    append_bronze(root, events_to_bronze(on_time, writer_id="w-early", ingested_at=utc(L2, 23)), "w-early")
    first = materialize(root, [L1, L2], PIPELINE)
    assert first.success and all(check_results(first).values()), check_results(first)
    lake = Lake(str(root))
    day2_before = {str(ref): day_rows(lake, ref, L2) for ref in ALL_TABLES}
    assert day2_before[str(SILVER)].height == 3

    # A process that was cut off from the lake ships day 1's events the day after.
    late = [
        limit_event(T.PL_CHECK, utc(L1, 14), "portfolio_delta", 7.0, 10.0),
        limit_event(T.PL_REJECTION, utc(L1, 14, 5), "portfolio_delta", 16.0, 10.0),
        limit_event(T.PL_WARNING, utc(L1, 14, 10), "symbol_delta", 2.7, 3.0),
        RiskEvent(T.CB_FAILURE, timestamp=utc(L1, 15), source="orders", failure_count=1),
    ]
    append_bronze(root, events_to_bronze(late, writer_id="w-late", ingested_at=utc(L2, 23, 30)), "w-late")
    again = materialize(root, [L1], PIPELINE)

    assert again.success and all(check_results(again).values()), check_results(again)
    assert check_metadata(again, "bronze_rows_accounted_for")["silver_rows"] == 3 + len(late)
    silver_day1 = day_rows(lake, SILVER, L1)
    assert set(silver_day1["event_id"].to_list()) == {e.event_id for e in [*on_time[:3], *late]}
    assert silver_day1.filter(pl.col("writer_id") == "w-late")["sequence"].sort().to_list() == [1, 2, 3, 4]
    stats = day_rows(lake, LIMIT_REJECTION_STATS, L1)
    assert stats.select(
        "limit_type", "rejection_count", "avg_current_value", "warning_count", "checks_total"
    ).rows() == [
        ("portfolio_delta", 2, 14.0, 0, 4),  # (12 + 16) / 2; 2 checks + 2 rejections
        ("symbol_delta", 0, None, 1, 4),
    ]
    for ref in ALL_TABLES:
        after = day_rows(lake, ref, L2)
        assert after.equals(day2_before[str(ref)]), f"{ref} {L2} changed:\n{day2_before[str(ref)]}\n{after}"


# ---------------------------------------------------------------------- 5d. one gold table failing
def test_a_failing_gold_table_fails_the_run_but_not_the_other_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "lake"
    events = [state_change(utc(CB_DAY, 12), "fine", "CLOSED", "OPEN", 3)]
    events += [limit_event(T.PL_REJECTION, utc(CB_DAY, 13), "portfolio_delta", 120.0, 100.0)]
    append_bronze(root, events_to_bronze(events, writer_id="w", ingested_at=utc(CB_DAY, 23)), "w")

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("trailing stops could not be built")

    monkeypatch.setattr(trailing_stop_outcomes, "build_days", broken)
    result = materialize(root, [CB_DAY])

    assert not result.success
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert materialized == {
        asset_key(ref) for ref in (SILVER, QUARANTINE, CIRCUIT_BREAKER_TRANSITIONS, LIMIT_REJECTION_STATS)
    }
    lake = Lake(str(root))
    assert lake.read_all(CIRCUIT_BREAKER_TRANSITIONS).height == 1
    assert lake.read_all(LIMIT_REJECTION_STATS).height == 1
    assert not lake.exists(TRAILING_STOP_OUTCOMES)
