"""``gold/limit_rejection_stats`` against hand-worked expectations of the scripted days."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest
from test_gold_scenario import D1, D2, D3, lake

from risk_pipeline.defs.gold import limit_rejection_stats as limits
from risk_pipeline.lake import Lake

__all__ = ["lake"]  # the fixture, re-exported for pytest


def _day(lake: Lake, day: date) -> dict[str, dict[str, object]]:
    frame = lake.read_days(limits.LIMIT_REJECTION_STATS, day, day + timedelta(days=1))
    return {r["limit_type"]: r for r in frame.rows(named=True)}


def test_day_one_stats_per_limit_type(lake: Lake) -> None:
    result = limits.build_days(lake, D1, D3)
    assert result.per_day == {D1: 3, D2: 1}

    day1 = _day(lake, D1)
    # 3 allowed checks + 3 rejections = 6 entry checks on day 1
    assert {r["checks_total"] for r in day1.values()} == {6}

    delta = day1["portfolio_delta"]  # rejections 120/100, 150/100; warning -170/200
    assert (delta["rejection_count"], delta["warning_count"]) == (2, 1)
    assert (delta["avg_current_value"], delta["avg_limit_value"]) == (135.0, 100.0)
    assert delta["max_utilization"] == 1.5
    assert delta["rejection_rate"] == pytest.approx(2 / 6)

    symbol = day1["symbol_delta"]  # one rejection 60/50
    assert (symbol["rejection_count"], symbol["warning_count"], symbol["max_utilization"]) == (1, 0, 1.2)
    assert (symbol["avg_current_value"], symbol["avg_limit_value"]) == (60.0, 50.0)
    assert symbol["rejection_rate"] == pytest.approx(1 / 6)

    positions = day1["open_positions"]  # a warning only: 4 / 5
    assert (positions["rejection_count"], positions["warning_count"]) == (0, 1)
    assert positions["avg_current_value"] is positions["avg_limit_value"] is None
    assert positions["max_utilization"] == pytest.approx(0.8)
    assert positions["rejection_rate"] == 0.0


def test_day_two_and_types_without_incidents(lake: Lake) -> None:
    limits.build_days(lake, D1, D3)
    day2 = _day(lake, D2)
    assert list(day2) == ["portfolio_delta"]  # symbol_delta was checked on day 1 only; no incident today
    row = day2["portfolio_delta"]
    assert (row["rejection_count"], row["checks_total"], row["rejection_rate"]) == (1, 2, 0.5)
    assert row["max_utilization"] == pytest.approx(1.1)


def test_a_day_with_warnings_but_no_checks_has_no_rate() -> None:
    events = pl.DataFrame(
        {
            "event_type": ["portfolio_limit_warning"],
            "limit_type": ["vega"],
            "current_value": [8.0],
            "limit_value": [0.0],
        }
    )
    row = limits.stats_for_day(events, D1).row(0, named=True)
    assert (row["checks_total"], row["rejection_rate"], row["max_utilization"]) == (0, None, None)
