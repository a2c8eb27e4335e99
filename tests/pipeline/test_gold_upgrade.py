"""Gold tables written before event schema version 2 keep working after it: the code location is upgraded
over a lake whose silver, outcomes and state tables have no contract columns yet."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pyarrow as pa

from risk_pipeline.defs.gold import trailing_stop_outcomes as stops
from risk_pipeline.defs.silver.schema import SILVER, SILVER_SCHEMA
from risk_pipeline.lake import Lake, TableRef
from risk_runtime.encoding import events_to_bronze
from risk_runtime.events import RiskEvent, RiskEventType

T = RiskEventType
D1, D2 = date(2026, 5, 4), date(2026, 5, 5)
CONTRACT = ("underlying", "option_right", "strike", "expiry", "option_delta", "underlying_price")
GOLD_CONTRACT = ("underlying", "option_right", "strike", "expiry", "entry_option_delta")


def at(day: date, hh: int) -> datetime:
    return datetime(day.year, day.month, day.day, hh, tzinfo=UTC)


def without(schema: pa.Schema, names: tuple[str, ...]) -> pa.Schema:
    return pa.schema([f for f in schema if f.name not in names])


def test_day_two_builds_on_state_and_tables_from_before_the_upgrade(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    v1_silver = without(SILVER_SCHEMA, CONTRACT)
    day1 = [RiskEvent(T.TS_ADD, timestamp=at(D1, 10), execution_id="old", symbol="SPY", entry_premium=5.0)]
    rows = events_to_bronze(day1, writer_id="w", ingested_at=at(D2, 23)).select(v1_silver.names)
    lake.replace_days(SILVER, rows, D1, D1 + timedelta(days=1), schema=v1_silver)
    # Day 1 as the previous code built it: outcomes and state without the contract columns.
    scratch = Lake(str(tmp_path / "scratch"))
    scratch.replace_days(SILVER, rows, D1, D2, schema=v1_silver)
    stops.build_days(scratch, D1, D2)
    for ref, schema in ((stops.TRAILING_STOP_OUTCOMES, stops.SCHEMA), (stops.TRAILING_STOP_STATE, stops.STATE_SCHEMA)):
        v1_schema = without(schema, GOLD_CONTRACT)
        lake.replace_days(ref, scratch.read_all(ref).drop(GOLD_CONTRACT), D1, D2, schema=v1_schema)
    for ref in (SILVER, stops.TRAILING_STOP_OUTCOMES, stops.TRAILING_STOP_STATE):
        assert "strike" not in {f.name for f in lake.table(ref).schema().fields}, ref

    # Day 2 with today's code: a v1-era stop ends, a stop with a contract starts.
    expiry = D2 + timedelta(days=11)
    day2 = [
        RiskEvent(T.TS_REMOVE, timestamp=at(D2, 9), execution_id="old", symbol="SPY", entry_premium=5.0,
                  current_premium=4.9),
        RiskEvent(T.TS_ADD, timestamp=at(D2, 10), execution_id="new", symbol="QQQ", entry_premium=3.0,
                  underlying="QQQ", option_right="P", strike=440.0, expiry=expiry, option_delta=-0.4),
    ]  # fmt: skip
    lake.replace_days(SILVER, events_to_bronze(day2, writer_id="w", ingested_at=at(D2, 23)).drop_columns(
        ["ingest_errors"]), D2, D2 + timedelta(days=1), schema=SILVER_SCHEMA)  # fmt: skip
    assert stops.build_days(lake, D2, D2 + timedelta(days=1)).carried_from == D1
    rows_by_id = {r["execution_id"]: r for r in lake.read_all(stops.TRAILING_STOP_OUTCOMES).to_dicts()}
    assert sorted(rows_by_id) == ["new", "old"]
    old, new = rows_by_id["old"], rows_by_id["new"]
    assert (old["outcome"], old["added_at"], old["event_date"]) == ("removed", at(D1, 10), D1)  # updated in place
    assert [old[c] for c in GOLD_CONTRACT] == [None] * 5
    assert [new[c] for c in GOLD_CONTRACT] == ["QQQ", "P", 440.0, expiry, -0.4]
    state = lake.read_days(stops.TRAILING_STOP_STATE, D2, D2 + timedelta(days=1), schema=stops.STATE_SCHEMA)
    assert state.filter(pl.col("execution_id") == "new").get_column("strike").to_list() == [440.0]


def test_reading_a_column_a_table_does_not_have_yet_gives_nulls(tmp_path: Path) -> None:
    lake, ref = Lake(str(tmp_path / "lake")), TableRef("gold", "t")
    old = pa.schema([pa.field("a", pa.int64()), pa.field("event_date", pa.date32())])
    new = pa.schema([*old, pa.field("b", pa.string())])
    lake.replace_days(ref, pa.table({"a": [1], "event_date": [D1]}, schema=old), D1, D2, schema=old)
    typed = lake.read_days(ref, D1, D2, columns=["a", "b"], schema=new)
    assert typed.rows() == [(1, None)] and typed.schema["b"] == pl.String
    assert lake.read_days(ref, D1, D2, columns=["b"]).rows() == [(None,)]
