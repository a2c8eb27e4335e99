"""Components take ``contract=`` / ``market=`` and land the same bronze rows the six loose keywords did.

The expected rows are written out by hand, column by column, as the keyword path logged them (the contract
on every event of a stop, the market only on the event of the call that supplied it): nothing here derives
them from the value objects under test. The events travel through a real logger and shipper into a real
bronze table.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from risk_runtime import (
    InMemoryRiskCalculator,
    MarketSnapshot,
    OptionContract,
    OptionRight,
    PortfolioLimits,
    PortfolioLimitsChecker,
    RiskEventLogger,
    TrailingStopConfig,
    TrailingStopManager,
)
from risk_runtime.clock import ManualClock
from risk_runtime.sink import MemorySink
from risk_runtime.table import RiskEventsTable

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
EXPIRY = date(2026, 3, 20)
COMPARED = (
    "event_type", "source", "execution_id", "symbol", "action", "entry_premium", "current_premium",
    "highest_premium", "stop_premium", "limit_type", "allowed", "underlying", "option_right", "strike", "expiry",
    "option_delta", "underlying_price", "schema_version", "ingest_errors",
)  # fmt: skip
SPY_CALL = {"underlying": "SPY", "option_right": "C", "strike": 520.0, "expiry": EXPIRY}
QQQ_PUT = {"underlying": "QQQ", "option_right": "P", "strike": 440.0, "expiry": EXPIRY}
NONE = {"underlying": None, "option_right": None, "strike": None, "expiry": None}
NO_MARKET = {"option_delta": None, "underlying_price": None}


def stop_row(action: str, entry: float, current: float, high: float, stop: float | None, **columns: Any) -> dict:
    return {
        "event_type": f"trailing_stop_{action.lower()}", "source": "monitor", "symbol": "SPY", "action": action,
        "entry_premium": entry, "current_premium": current, "highest_premium": high, "stop_premium": stop,
        "limit_type": None, "allowed": None, "schema_version": 2, "ingest_errors": None, **columns,
    }  # fmt: skip


def limit_row(event_type: str, limit_type: str, allowed: bool | None, **columns: Any) -> dict:
    return {
        "event_type": event_type, "source": "book", "action": None, "entry_premium": None, "current_premium": None,
        "highest_premium": None, "stop_premium": None, "limit_type": limit_type, "allowed": allowed,
        "schema_version": 2, "ingest_errors": None, **columns,
    }  # fmt: skip


EXPECTED = [
    stop_row("ADD", 5.0, 5.0, 5.0, None, execution_id="e1", **SPY_CALL, option_delta=0.52, underlying_price=519.8),
    stop_row("ACTIVATE", 5.0, 5.3, 5.3, 5.141, execution_id="e1", **SPY_CALL,
             option_delta=0.55, underlying_price=521.0),
    stop_row("UPDATE", 5.0, 5.5, 5.5, 5.335, execution_id="e1", **SPY_CALL, **NO_MARKET),
    stop_row("TRIGGER", 5.0, 5.0, 5.5, 5.335, execution_id="e1", **SPY_CALL,
             option_delta=None, underlying_price=518.0),
    stop_row("ADD", 3.0, 3.0, 3.0, None, execution_id="e2", **{**NONE, "option_right": "P"}, **NO_MARKET),
    stop_row("REMOVE", 3.0, 3.0, 3.0, None, execution_id="e2", **{**NONE, "option_right": "P"},
             option_delta=-0.4, underlying_price=None),
    stop_row("ADD", 4.0, 4.0, 4.0, None, execution_id="e3", symbol=None, **NONE, **NO_MARKET),  # as the guide
    limit_row("portfolio_limit_check", "symbol_delta", True, execution_id="e4", symbol="SPY 260320C00520000",
              **SPY_CALL, option_delta=0.52, underlying_price=519.8),
    limit_row("portfolio_limit_rejection", "symbol_delta", False, execution_id="e5", symbol="QQQ 260320P00440000",
              **QQQ_PUT, option_delta=-0.45, underlying_price=None),
    limit_row("portfolio_limit_check", "open_positions", True, execution_id=None, symbol="IWM", **NONE,
              **NO_MARKET),
    limit_row("portfolio_limit_warning", "symbol_delta", None, execution_id=None, symbol="QQQ",
              **{**NONE, "underlying": "QQQ"}, **NO_MARKET),
]  # fmt: skip


def drive(stops: TrailingStopManager, checker: PortfolioLimitsChecker, calc: InMemoryRiskCalculator) -> None:
    """One scripted session through the new API: every event of :data:`EXPECTED`, in its order."""
    spy_call = OptionContract("SPY", OptionRight.CALL, 520, EXPIRY)  # built once per position
    stops.add_trailing_stop("e1", 5.0, symbol="SPY", contract=spy_call, market=MarketSnapshot(0.52, 519.8))
    stops.update("e1", 5.3, market=MarketSnapshot(option_delta=0.55, underlying_price=521.0))  # ACTIVATE
    stops.update("e1", 5.5)  # UPDATE, market not given
    stops.update("e1", 5.4, market=MarketSnapshot(underlying_price=519.0))  # moves nothing, logs nothing
    stops.update("e1", 5.0, market=MarketSnapshot(underlying_price=518.0))  # TRIGGER
    stops.add_trailing_stop("e2", 3.0, symbol="SPY", contract=OptionContract(right="P"))  # a partial contract
    stops.remove_stop("e2", market=MarketSnapshot(option_delta=-0.4))
    stops.add_trailing_stop("e3", entry_premium=4.0)  # as the design guide calls it
    # |SPY delta| 0.52 of 1.0 is the binding limit of the allowed check
    calc.add_position("p1", "QQQ 260320P00430000", -0.3, quantity=2, underlying="QQQ")
    checker.check_entry(
        "SPY 260320C00520000", 0.52, execution_id="e4", contract=spy_call, market=MarketSnapshot(0.52, 519.8)
    )
    qqq_put = OptionContract(underlying="QQQ", right="P", strike=440.0, expiry=EXPIRY)
    checker.check_entry(
        "QQQ 260320P00440000", -0.45, execution_id="e5", contract=qqq_put, market=MarketSnapshot(option_delta=-0.45)
    )  # QQQ -0.6 - 0.45 breaches the per-underlying limit of 1.0: counted against the contract's underlying
    assert asyncio.run(checker.check_entry_allowed("IWM", 0.1)) == (True, None)  # guide-style: no contract
    checker.check_portfolio_health()  # |QQQ delta| 0.6 of 1.0 reaches the 0.5 warning level


def components(sink: Any) -> tuple[TrailingStopManager, PortfolioLimitsChecker, InMemoryRiskCalculator]:
    clock = ManualClock(T0)
    stops = TrailingStopManager(TrailingStopConfig(0.04, 0.03), sink, clock=clock, name="monitor")
    calc = InMemoryRiskCalculator()
    limits = PortfolioLimits(max_portfolio_delta=10.0, max_symbol_delta=1.0, max_open_positions=10,
                             warning_utilization=0.5)  # fmt: skip
    return stops, PortfolioLimitsChecker(calc, limits, sink, clock=clock, name="book"), calc


def test_contract_and_market_land_the_rows_the_keywords_did(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    with RiskEventLogger(lake, spool_dir=tmp_path / "spool", sync_interval=0.05) as logger:
        drive(*components(logger))
        assert logger.flush_blocking()
    rows = sorted(RiskEventsTable(lake).read().to_pylist(), key=lambda r: r["sequence"])
    got = [{c: row[c] for c in COMPARED} for row in rows]
    assert got == [{c: pytest.approx(e[c]) if isinstance(e[c], float) else e[c] for c in COMPARED} for e in EXPECTED]
    assert [r["timestamp"] for r in rows] == [T0] * len(EXPECTED)


def test_the_per_underlying_limit_keys_on_the_contracts_underlying() -> None:
    sink = MemorySink()
    _, checker, calc = components(sink)
    calc.add_position("p1", "SPY 260320C00520000", 0.5, quantity=2, underlying="SPY")  # SPY 1.0 of 1.0
    spy = OptionContract(underlying="SPY")
    allowed, reason = checker.check_entry("SPY 260417C00530000", 0.2, contract=spy)
    assert not allowed and reason is not None and reason.startswith("symbol_delta: projected |delta| of SPY")
    assert checker.check_entry("SPY 260417C00530000", 0.2)[0]  # without a contract its symbol is its own key
    assert json.loads(sink.events[0].metadata or "")["projected_symbol_delta"] == pytest.approx(1.2)


def test_a_stop_holds_its_contract_and_logs_it_without_building_anything_per_event() -> None:
    sink = MemorySink()
    stops, _, _ = components(sink)
    contract = OptionContract("SPY", "C", 520.0, EXPIRY)
    stop = stops.add_trailing_stop("e1", 5.0, contract=contract)
    assert stop.contract is contract and stops.add_trailing_stop("e2", 5.0).contract is None
    stops.update("e1", 5.3)
    stops.update("e1", 5.5)
    assert [e.action for e in sink.events] == ["ADD", "ADD", "ACTIVATE", "UPDATE"]
    e1 = [e for e in sink.events if e.execution_id == "e1"]
    assert all(e.strike == 520.0 and e.expiry is EXPIRY and e.option_right == "C" for e in e1)


def test_stops_survive_a_day_boundary_with_their_contract() -> None:
    sink = MemorySink()
    clock = ManualClock(T0)
    stops = TrailingStopManager(event_logger=sink, clock=clock)
    stops.add_trailing_stop("e1", 5.0, contract=OptionContract("SPY", "C", 520.0, EXPIRY))
    clock.set(T0 + timedelta(days=1))
    stops.remove_stop("e1", market=MarketSnapshot(underlying_price=500.0))
    remove = sink.events[-1]
    assert (remove.underlying, remove.strike, remove.underlying_price, remove.option_delta) == (
        "SPY", 520.0, 500.0, None
    )  # fmt: skip
