"""Every wrong-typed input to a risk component's public API is a ValueError that names the parameter.

Trading code catches ``ValueError`` around a component call to reject one bad order without stopping
the loop; a bare ``TypeError``/``AttributeError`` from deep inside (``'<' not supported between str and
float``) escapes that and says nothing about which argument was wrong. Nothing is logged for a
refused call.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest

from risk_runtime.circuit_breaker import CircuitBreakerConfig, TradingCircuitBreaker
from risk_runtime.clock import ManualClock
from risk_runtime.instruments import MarketSnapshot, OptionContract
from risk_runtime.portfolio_limits import InMemoryRiskCalculator, PortfolioLimits, PortfolioLimitsChecker
from risk_runtime.sink import MemorySink
from risk_runtime.trailing_stop import TrailingStop, TrailingStopConfig, TrailingStopManager

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
EXPIRY = date(2026, 3, 20)
SINK = MemorySink()


def _manager() -> TrailingStopManager:
    SINK.events.clear()
    manager = TrailingStopManager(event_logger=SINK, clock=ManualClock(T0))
    manager.add_trailing_stop("a", 10.0)
    SINK.events.clear()
    return manager


def _checker() -> PortfolioLimitsChecker:
    SINK.events.clear()
    calc = InMemoryRiskCalculator()
    calc.add_position("p1", "SPY", 1.0)
    return PortfolioLimitsChecker(calc, PortfolioLimits(), SINK, clock=ManualClock(T0))


def _breaker() -> TradingCircuitBreaker:
    SINK.events.clear()
    return TradingCircuitBreaker(CircuitBreakerConfig(), SINK, clock=ManualClock(T0))


CALLS: dict[str, tuple[Callable[[], Any], str]] = {
    # trailing stops
    "stop.update str premium": (lambda: TrailingStop("e", 1.0).update("2.0"), "premium"),  # type: ignore[arg-type]
    "stop.update None premium": (lambda: TrailingStop("e", 1.0).update(None), "premium"),  # type: ignore[arg-type]
    "stop symbol int": (lambda: TrailingStop("e", 1.0, symbol=5), "symbol"),  # type: ignore[arg-type]
    "stop source int": (lambda: TrailingStop("e", 1.0, source=5), "source"),  # type: ignore[arg-type]
    "stop clock not callable": (lambda: TrailingStop("e", 1.0, clock="now"), "clock"),  # type: ignore[arg-type]
    "stop contract str": (lambda: TrailingStop("e", 1.0, contract="SPY"), "contract"),  # type: ignore[arg-type]
    "stop.update market float": (lambda: TrailingStop("e", 1.0).update(2.0, market=0.5), "market"),  # type: ignore[arg-type]
    "manager.update str premium": (lambda: _manager().update("a", "2.0"), "premium"),  # type: ignore[arg-type]
    "manager.update list id": (lambda: _manager().update(["a"], 2.0), "execution_id"),  # type: ignore[arg-type]
    "manager.update str market": (lambda: _manager().update("a", 11.0, market="520"), "market"),  # type: ignore[arg-type]
    "manager.update str spot": (
        lambda: _manager().update("a", 11.0, market=MarketSnapshot(underlying_price="520")),  # type: ignore[arg-type]
        "underlying_price",
    ),
    "manager.update delta out of range": (
        lambda: _manager().update("a", 11.0, market=MarketSnapshot(option_delta=1.5)),
        "option_delta",
    ),
    "manager.update_many not a mapping": (lambda: _manager().update_many([("a", 11.0)]), "premiums"),  # type: ignore[arg-type]
    "manager.update_many list id": (lambda: _manager().update_many({("a",): 11.0}), "execution_id"),  # type: ignore[dict-item]
    "manager.add int id": (lambda: _manager().add_trailing_stop(123, 1.0), "execution_id"),  # type: ignore[arg-type]
    "manager.add list id": (lambda: _manager().add_trailing_stop(["x"], 1.0), "execution_id"),  # type: ignore[arg-type]
    "manager.add str entry": (lambda: _manager().add_trailing_stop("x", "1.0"), "entry_premium"),  # type: ignore[arg-type]
    "manager.add str pct": (lambda: _manager().add_trailing_stop("x", 1.0, trailing_pct="0.1"), "trailing_pct"),  # type: ignore[arg-type]
    "manager.add contract dict": (
        lambda: _manager().add_trailing_stop("x", 1.0, contract={"underlying": "SPY"}),  # type: ignore[arg-type]
        "contract",
    ),
    "manager.add market tuple": (lambda: _manager().add_trailing_stop("x", 1.0, market=(0.5, 520.0)), "market"),  # type: ignore[arg-type]
    "manager.add int underlying": (
        lambda: _manager().add_trailing_stop("x", 1.0, contract=OptionContract(underlying=7)),  # type: ignore[arg-type]
        "underlying",
    ),
    "manager.add bad right": (
        lambda: _manager().add_trailing_stop("x", 1.0, contract=OptionContract(right="CALL")),
        "right",
    ),
    "manager.add str strike": (
        lambda: _manager().add_trailing_stop("x", 1.0, contract=OptionContract(strike="520")),  # type: ignore[arg-type]
        "strike",
    ),
    "manager.add datetime expiry": (
        lambda: _manager().add_trailing_stop("x", 1.0, contract=OptionContract(expiry=T0)),
        "expiry",
    ),
    "manager.add str expiry": (
        lambda: _manager().add_trailing_stop("x", 1.0, contract=OptionContract(expiry="2026-03-20")),  # type: ignore[arg-type]
        "expiry",
    ),
    "manager.remove list id": (lambda: _manager().remove_stop(["a"]), "execution_id"),  # type: ignore[arg-type]
    "manager.remove str market": (lambda: _manager().remove_stop("a", market="x"), "market"),  # type: ignore[arg-type]
    "manager.remove str spot": (
        lambda: _manager().remove_stop("a", market=MarketSnapshot(underlying_price="x")),  # type: ignore[arg-type]
        "underlying_price",
    ),
    "manager config str": (lambda: TrailingStopManager("tight"), "config"),  # type: ignore[arg-type]
    "manager name int": (lambda: TrailingStopManager(name=3), "name"),  # type: ignore[arg-type]
    "manager event_logger without log": (lambda: TrailingStopManager(event_logger=object()), "event_logger"),  # type: ignore[arg-type]
    # portfolio limits
    "check_entry str delta": (lambda: _checker().check_entry("SPY", "0.5"), "delta"),  # type: ignore[arg-type]
    "check_entry float quantity": (lambda: _checker().check_entry("SPY", 0.5, quantity=1.5), "quantity"),  # type: ignore[arg-type]
    "check_entry int symbol": (lambda: _checker().check_entry(5, 0.5), "symbol"),  # type: ignore[arg-type]
    "check_entry int execution_id": (lambda: _checker().check_entry("SPY", 0.5, execution_id=5), "execution_id"),  # type: ignore[arg-type]
    "check_entry contract str": (lambda: _checker().check_entry("SPY", 0.5, contract="SPY"), "contract"),  # type: ignore[arg-type]
    "check_entry market dict": (
        lambda: _checker().check_entry("SPY", 0.5, market={"option_delta": 0.5}),  # type: ignore[arg-type]
        "market",
    ),
    "check_entry int underlying": (
        lambda: _checker().check_entry("SPY", 0.5, contract=OptionContract(underlying=5)),  # type: ignore[arg-type]
        "underlying",
    ),
    "check_entry bad right": (lambda: _checker().check_entry("SPY", 0.5, contract=OptionContract(right="X")), "right"),
    "check_entry str strike": (
        lambda: _checker().check_entry("SPY", 0.5, contract=OptionContract(strike="520")),  # type: ignore[arg-type]
        "strike",
    ),
    "check_entry datetime expiry": (
        lambda: _checker().check_entry("SPY", 0.5, contract=OptionContract(expiry=T0)),
        "expiry",
    ),
    "check_entry str option_delta": (
        lambda: _checker().check_entry("SPY", 0.5, market=MarketSnapshot(option_delta="0.5")),  # type: ignore[arg-type]
        "option_delta",
    ),
    "check_entry negative spot": (
        lambda: _checker().check_entry("SPY", 0.5, market=MarketSnapshot(underlying_price=-1.0)),
        "underlying_price",
    ),
    "checker without a calculator": (lambda: PortfolioLimitsChecker(object()), "risk_calculator"),  # type: ignore[arg-type]
    "checker limits dict": (
        lambda: PortfolioLimitsChecker(InMemoryRiskCalculator(), {"max_portfolio_delta": 5}),  # type: ignore[arg-type]
        "limits",
    ),
    "calc add int id": (lambda: InMemoryRiskCalculator().add_position(1, "SPY", 0.5), "position_id"),  # type: ignore[arg-type]
    "calc add int symbol": (lambda: InMemoryRiskCalculator().add_position("p", 5, 0.5), "symbol"),  # type: ignore[arg-type]
    "calc add int underlying": (
        lambda: InMemoryRiskCalculator().add_position("p", "SPY", 0.5, underlying=5),  # type: ignore[arg-type]
        "underlying",
    ),
    "calc add str delta": (lambda: InMemoryRiskCalculator().add_position("p", "SPY", "0.5"), "delta"),  # type: ignore[arg-type]
    "calc remove list id": (lambda: InMemoryRiskCalculator().remove_position(["p"]), "position_id"),  # type: ignore[arg-type]
    "calc symbol_delta list": (lambda: InMemoryRiskCalculator().symbol_delta(["SPY"]), "underlying"),  # type: ignore[arg-type]
    # circuit breaker
    "breaker config str": (lambda: TradingCircuitBreaker("strict"), "config"),  # type: ignore[arg-type]
    "breaker clock not callable": (lambda: TradingCircuitBreaker(clock=5), "clock"),  # type: ignore[arg-type]
    "breaker event_logger without log": (lambda: TradingCircuitBreaker(event_logger=1), "event_logger"),  # type: ignore[arg-type]
    "breaker reset reason object": (lambda: _breaker().reset(reason=object()), "reason"),  # type: ignore[arg-type]
    "breaker restore str": (lambda: _breaker().restore("OPEN"), "snapshot"),  # type: ignore[arg-type]
    "breaker config str timeout": (lambda: CircuitBreakerConfig(reset_timeout="60"), "reset_timeout"),  # type: ignore[arg-type]
    "stop config str": (lambda: TrailingStopConfig(activation_pct="0.02"), "activation_pct"),  # type: ignore[arg-type]
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_wrong_typed_input_is_a_value_error_naming_the_parameter(name: str) -> None:
    call, parameter = CALLS[name]
    SINK.events.clear()
    with pytest.raises(ValueError, match=parameter):
        call()
    assert SINK.events == []  # a refused call decides nothing, so it logs nothing


def test_a_refused_update_leaves_the_stop_as_it_was() -> None:
    manager = _manager()
    with pytest.raises(ValueError):
        manager.update("a", 11.0, market="520")  # type: ignore[arg-type]
    stop = manager["a"]
    assert (stop.current_premium, stop.highest_premium, stop.stop_premium) == (10.0, 10.0, None)
    assert manager.update("a", 11.0) is None and stop.active
