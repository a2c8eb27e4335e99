"""The design guide's three post-mortem queries, answered from gold, against the scripted days."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from test_gold_scenario import D1, D2, D3, at, build_all, lake

from risk_pipeline import queries
from risk_pipeline.defs.silver.schema import SILVER
from risk_pipeline.lake import Lake

__all__ = ["lake"]  # the fixture, re-exported for pytest


@pytest.fixture
def built(lake: Lake) -> Lake:
    build_all(lake)
    return lake


def test_query_1_circuit_breaker_history(built: Lake) -> None:
    history = queries.circuit_breaker_history(built, source="cb-orders")
    # The guide's sample output, then the invalid jump this scenario adds.
    assert history.select("old_state", "new_state", "failure_count").rows() == [
        ("CLOSED", "OPEN", 5),
        ("OPEN", "HALF_OPEN", 5),
        ("HALF_OPEN", "CLOSED", 0),
        ("OPEN", "HALF_OPEN", 0),
    ]
    assert history["is_valid"].to_list() == [True, True, True, False]
    assert history["timestamp"].is_sorted()

    everything = queries.circuit_breaker_history(built)
    assert everything.height == 7 and everything["timestamp"].is_sorted()
    day2 = queries.circuit_breaker_history(built, start=D2, end=D3)
    assert day2.height == 5 and set(day2["event_date"]) == {D2}
    assert queries.circuit_breaker_history(built, end=D2)["timestamp"].to_list() == [at(D1, 12), at(D1, 22)]


def test_query_2_trailing_stop_profit(built: Lake) -> None:
    one = queries.trailing_stop_profit(built, execution_id="ex-trig")
    assert one.select("execution_id", "entry_premium", "stop_premium", "profit_locked").rows() == [
        ("ex-trig", 100.0, 107.75, 7.75)
    ]
    assert one.row(0, named=True)["realized_pnl"] == 7.5
    # removed and open stops locked nothing
    assert queries.trailing_stop_profit(built)["execution_id"].to_list() == ["ex-trig"]
    assert queries.trailing_stop_profit(built, execution_id="ex-open").is_empty()


def test_query_3_matches_the_guide_computed_over_raw_events(built: Lake) -> None:
    answer = queries.rejections_by_limit_type(built)
    # The guide's Query 3, verbatim in spirit, over every silver row.
    raw = (
        built.read_all(SILVER)
        .filter(pl.col("event_type") == "portfolio_limit_rejection")
        .group_by("limit_type")
        .agg(
            pl.len().alias("rejection_count"),
            pl.col("current_value").mean().alias("avg_current_value"),
            pl.col("limit_value").mean().alias("avg_limit_value"),
        )
    )
    with_rejections = answer.filter(pl.col("rejection_count") > 0).select(raw.columns).sort("limit_type")
    assert with_rejections["limit_type"].to_list() == ["portfolio_delta", "symbol_delta"]
    assert with_rejections["rejection_count"].to_list() == [3, 1]
    assert with_rejections["avg_current_value"].to_list() == pytest.approx([(120 + 150 + 110) / 3, 60.0])
    assert with_rejections["avg_limit_value"].to_list() == pytest.approx([100.0, 50.0])
    assert_frame_equal(with_rejections, raw.sort("limit_type"), check_dtypes=False, check_exact=False)

    first = answer.row(0, named=True)  # most rejected first
    assert (first["limit_type"], first["warning_count"], first["max_utilization"]) == ("portfolio_delta", 1, 1.5)
    warned_only = answer.filter(pl.col("limit_type") == "open_positions").row(0, named=True)
    assert (warned_only["rejection_count"], warned_only["avg_current_value"]) == (0, None)


def test_query_3_over_a_day_range(built: Lake) -> None:
    day2 = queries.rejections_by_limit_type(built, start=D2, end=D3)
    assert day2.select("limit_type", "rejection_count", "avg_current_value", "avg_limit_value").rows() == [
        ("portfolio_delta", 1, 110.0, 100.0)
    ]


def test_queries_on_a_lake_without_gold(tmp_path: Path) -> None:
    empty = Lake(str(tmp_path / "nothing"))
    assert queries.circuit_breaker_history(empty).columns == queries.HISTORY_COLUMNS
    assert queries.trailing_stop_profit(empty).columns == queries.PROFIT_COLUMNS
    assert queries.rejections_by_limit_type(empty, start=D1, end=D2).is_empty()
