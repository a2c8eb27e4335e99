"""Silver's upcast and gold take their option columns from the value objects, not from lists of their own."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl

from risk_pipeline.defs.gold import trailing_stop_outcomes as outcomes
from risk_pipeline.defs.silver.schema import SILVER_SCHEMA, polars_schema
from risk_pipeline.defs.silver.upcast import V2_COLUMNS, v1_to_v2
from risk_runtime.instruments import MarketSnapshot, OptionContract

CONTRACT = ("underlying", "option_right", "strike", "expiry")
MARKET = ("option_delta", "underlying_price")


def test_the_upcast_adds_exactly_the_contract_and_market_columns_typed_as_silver_types_them() -> None:
    assert tuple(V2_COLUMNS) == (*OptionContract.COLUMNS, *MarketSnapshot.COLUMNS) == (*CONTRACT, *MARKET)
    silver = polars_schema(SILVER_SCHEMA)
    assert {c: silver[c] for c in (*CONTRACT, *MARKET)} == V2_COLUMNS
    upcast = v1_to_v2(pl.DataFrame({"symbol": ["SPY", None]}))
    assert upcast.columns == ["symbol", *CONTRACT, *MARKET]
    assert upcast.get_column("underlying").to_list() == ["SPY", None]


def test_gold_reads_and_writes_the_contract_the_value_object_declares() -> None:
    option = [f.name for f in outcomes.SCHEMA if f.name in {*CONTRACT, outcomes.ENTRY_OPTION_DELTA}]
    assert option == [*OptionContract.COLUMNS, outcomes.ENTRY_OPTION_DELTA] == [*CONTRACT, "entry_option_delta"]
    assert {f.name for f in outcomes.STATE_SCHEMA} >= {*CONTRACT, "entry_option_delta"}
    read = outcomes._EVENT_COLUMNS
    assert [c for c in read if c in {*CONTRACT, *MARKET}] == [
        *OptionContract.COLUMNS,
        MarketSnapshot.COLUMNS.option_delta,
    ]
    assert list(outcomes._EVENT_CONTRACT_TYPES) == [*CONTRACT, "option_delta"]


def test_a_stop_without_a_market_delta_still_folds_its_contract() -> None:
    """The derived lists drive the fold: events of a stop land its contract and first delta in gold's row."""
    day = date(2026, 3, 2)
    events = pl.DataFrame(
        {
            "event_id": ["a", "b"],
            "event_type": ["trailing_stop_add", "trailing_stop_activate"],
            "execution_id": ["e1", "e1"],
            "symbol": ["SPY", "SPY"],
            "underlying": ["SPY", "SPY"],
            "option_right": ["C", "C"],
            "strike": [520.0, 520.0],
            "expiry": [date(2026, 3, 20)] * 2,
            "option_delta": [None, 0.55],
            "timestamp": [datetime(2026, 3, 2, 15, tzinfo=UTC), datetime(2026, 3, 2, 15, 5, tzinfo=UTC)],
            "entry_premium": [5.0, 5.0],
            "current_premium": [5.0, 5.3],
            "highest_premium": [5.0, 5.3],
            "stop_premium": [None, 5.141],
        },
        schema_overrides={"timestamp": pl.Datetime("us", "UTC"), "option_delta": pl.Float64},
    )
    state = pl.DataFrame(schema=polars_schema(outcomes.STATE_SCHEMA)).select(outcomes._FOLDED_NAMES)
    touched, _ = outcomes.fold_day(events, state, day)
    (row,) = touched.to_dicts()
    assert [row[c] for c in (*CONTRACT, "entry_option_delta")] == ["SPY", "C", 520.0, date(2026, 3, 20), 0.55]
