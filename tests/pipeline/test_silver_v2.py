"""Silver and event schema version 2: v1 rows upcast, the option fields' rules, the configurable premium cap."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest

from risk_pipeline.defs.silver.schema import MAX_PREMIUM_ENV, SILVER_SCHEMA, max_premium, polars_schema
from risk_pipeline.defs.silver.transform import build_silver
from risk_pipeline.defs.silver.upcast import v1_to_v2
from risk_runtime.events import RiskEvent, RiskEventType

T = RiskEventType
V2_COLUMNS = ["underlying", "option_right", "strike", "expiry", "option_delta", "underlying_price"]


def stop_add(at, day: date, label: str, **fields: object) -> RiskEvent:
    values: dict[str, object] = {
        "symbol": "SPY",
        "underlying": "SPY",
        "option_right": "C",
        "strike": 520.0,
        "expiry": day + timedelta(days=14),
        "option_delta": 0.5,
        "underlying_price": 519.0,
        "entry_premium": 5.0,
        **fields,
    }
    return RiskEvent(T.TS_ADD, timestamp=at(day, 60), source=label, execution_id=label, **values)  # type: ignore[arg-type]


def test_v1_rows_are_upcast_underlying_from_symbol(bronze_from_rows, bronze_row, day) -> None:
    v1 = dict(schema_version=1, event_type="portfolio_limit_check", component="portfolio_limits", allowed=True)
    bronze = bronze_from_rows(
        [
            bronze_row(**v1, symbol="SPY", sequence=1),
            bronze_row(**v1, symbol=None, sequence=2),
            bronze_row(sequence=3, schema_version=1),  # a breaker event: no symbol, no underlying
        ]
    ).drop(V2_COLUMNS)  # exactly what a v1 writer's rows look like
    build = build_silver(bronze, run_id="r", partition=day.isoformat())
    assert build.quarantine.is_empty()
    silver = build.silver.sort("sequence")
    assert silver.schema == polars_schema(SILVER_SCHEMA)
    assert silver.get_column("schema_version").to_list() == [2, 2, 2]
    assert silver.get_column("underlying").to_list() == ["SPY", None, None]
    for name in V2_COLUMNS[1:]:
        assert silver.get_column(name).null_count() == 3, name


def test_the_v1_step_keeps_an_underlying_already_present() -> None:
    rows = pl.DataFrame({"symbol": ["SPY", "QQQ"], "underlying": ["SPX", None]})
    assert v1_to_v2(rows).get_column("underlying").to_list() == ["SPX", "QQQ"]


def test_option_fields_are_validated_only_when_present(bronze_from_events, day, at) -> None:
    bad = {
        "right": ({"option_right": "X"}, ["option_right: in {C, P}"]),
        "strike": ({"strike": 0.0}, ["strike: finite and > 0"]),
        "delta": ({"option_delta": 1.5}, ["option_delta: in [-1, 1]"]),
        "nan-delta": ({"option_delta": float("nan")}, ["option_delta: in [-1, 1]"]),
        "spot": ({"underlying_price": -1.0}, ["underlying_price: finite and > 0"]),
        # 00:01 UTC is still the previous day in New York: expired means before *that* day.
        "expired": ({"expiry": day - timedelta(days=2)}, ["expiry not before the event's day in $RISK_EXCHANGE_TZ"]),
    }
    good = [
        stop_add(at, day, "full"),
        stop_add(at, day, "expires-today", expiry=day, option_right="P", option_delta=-1.0),
        stop_add(at, day, "none", **dict.fromkeys(V2_COLUMNS)),
    ]
    events = good + [stop_add(at, day, label, **fields) for label, (fields, _) in bad.items()]
    build = build_silver(bronze_from_events(events), run_id="r", partition=day.isoformat())
    assert sorted(build.silver.get_column("source").to_list()) == ["expires-today", "full", "none"]
    reasons = dict(build.quarantine.select("source", "reasons").rows())
    assert reasons == {label: why for label, (_, why) in bad.items()}


def test_premium_cap_is_read_at_validation_time(bronze_from_events, day, at, monkeypatch) -> None:
    events = [stop_add(at, day, "cheap"), stop_add(at, day, "dear", entry_premium=80.0)]
    bronze = bronze_from_events(events)
    monkeypatch.delenv(MAX_PREMIUM_ENV, raising=False)
    assert build_silver(bronze, run_id="r", partition=day.isoformat()).quarantine.is_empty()
    monkeypatch.setenv(MAX_PREMIUM_ENV, "50")
    capped = build_silver(bronze, run_id="r", partition=day.isoformat())
    assert dict(capped.quarantine.select("source", "reasons").rows()) == {
        "dear": [f"entry_premium: <= ${MAX_PREMIUM_ENV}"]
    }
    for text in ("fifty", "0", "-3", "nan"):
        monkeypatch.setenv(MAX_PREMIUM_ENV, text)
        with pytest.raises(ValueError, match=MAX_PREMIUM_ENV):
            max_premium()
