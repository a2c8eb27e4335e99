"""Portfolio limits: projected checks, the one rejection per entry, warnings, and input validation."""

from __future__ import annotations

import asyncio
import json
import math
from datetime import UTC, datetime

import pytest

from risk_runtime.clock import ManualClock
from risk_runtime.events import RiskEventType
from risk_runtime.instruments import OptionContract
from risk_runtime.portfolio_limits import (
    InMemoryRiskCalculator,
    LimitType,
    LimitWarning,
    PortfolioLimits,
    PortfolioLimitsChecker,
    RiskCalculator,
)
from risk_runtime.sink import MemorySink

T0 = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)
LIMITS = PortfolioLimits(max_portfolio_delta=10.0, max_symbol_delta=4.0, max_open_positions=3)


def make(limits: PortfolioLimits = LIMITS) -> tuple[PortfolioLimitsChecker, InMemoryRiskCalculator, MemorySink]:
    calc, sink = InMemoryRiskCalculator(), MemorySink()
    return PortfolioLimitsChecker(calc, limits, sink, clock=ManualClock(T0), name="book-a"), calc, sink


def test_in_memory_calculator_is_a_risk_calculator() -> None:
    calc = InMemoryRiskCalculator()
    assert isinstance(calc, RiskCalculator)
    calc.add_position("p1", "SPY", 0.5, quantity=4)
    calc.add_position("p2", "SPY", -0.25, quantity=2)
    calc.add_position("p3", "QQQ", 0.3)
    assert calc.symbol_delta("SPY") == pytest.approx(1.5) and calc.symbol_delta("IWM") == 0.0
    assert calc.portfolio_delta() == pytest.approx(1.8) and calc.open_positions() == 3
    calc.update_delta("p3", 0.6)
    calc.remove_position("p1")
    assert dict(calc.symbol_deltas()) == pytest.approx({"SPY": -0.5, "QQQ": 0.6})
    calc.remove_position("p2")
    assert "SPY" not in calc.symbol_deltas()
    with pytest.raises(KeyError, match="p1"):
        calc.remove_position("p1")
    with pytest.raises(ValueError, match="already open"):
        calc.add_position("p3", "QQQ", 0.1)


def test_allowed_entry_logs_one_check_for_the_most_utilised_limit() -> None:
    checker, calc, sink = make()
    calc.add_position("p1", "SPY", 2.0)
    assert checker.check_entry("SPY", 1.0, execution_id="e2") == (True, None)
    (check,) = sink.events
    assert check.event_type == RiskEventType.PL_CHECK and check.allowed is True
    # projected: portfolio 3/10, SPY 3/4 = 0.75, open 2/3 = 0.67 -> symbol delta binds
    assert (check.limit_type, check.current_value, check.limit_value) == ("symbol_delta", 3.0, 4.0)
    assert (check.symbol, check.execution_id, check.source, check.timestamp) == ("SPY", "e2", "book-a", T0)
    assert check.rejection_reason is None and check.component == "portfolio_limits"


def test_value_equal_to_the_limit_is_allowed() -> None:
    checker, _, _ = make()
    assert checker.check_entry("SPY", 2.0, quantity=2) == (True, None)


def test_portfolio_delta_rejection_uses_the_projected_value() -> None:
    checker, calc, sink = make()
    for i, symbol in enumerate(["SPY", "QQQ"]):
        calc.add_position(f"p{i}", symbol, -4.0)
    allowed, reason = checker.check_entry("IWM", -0.75, quantity=4, execution_id="e9")
    assert not allowed and reason is not None and reason.startswith("portfolio_delta")
    (rej,) = sink.events
    assert rej.event_type == RiskEventType.PL_REJECTION and rej.allowed is False
    assert (rej.limit_type, rej.current_value, rej.limit_value) == ("portfolio_delta", 11.0, 10.0)
    assert rej.rejection_reason == reason and "11.00" in reason and "10.00" in reason
    assert (rej.symbol, rej.execution_id) == ("IWM", "e9")
    meta = json.loads(rej.metadata or "")
    assert meta["projected_portfolio_delta"] == -11.0 and meta["quantity"] == 4


def test_symbol_delta_rejection() -> None:
    checker, calc, sink = make()
    calc.add_position("p1", "SPY", 3.5)
    allowed, reason = checker.check_entry("SPY", 0.6)
    assert not allowed and reason is not None and "SPY" in reason
    (rej,) = sink.events
    assert (rej.limit_type, rej.limit_value) == ("symbol_delta", 4.0)
    assert rej.current_value == pytest.approx(4.1)


def test_open_positions_rejection() -> None:
    checker, calc, sink = make()
    for i, symbol in enumerate(["SPY", "QQQ", "IWM"]):
        calc.add_position(f"p{i}", symbol, 0.1)
    assert checker.check_entry("DIA", 0.1) == (
        False,
        "open_positions: entering DIA would make 4 open positions, over the limit of 3",
    )
    (rej,) = sink.events
    assert (rej.limit_type, rej.current_value, rej.limit_value) == ("open_positions", 4.0, 3.0)


def test_only_the_first_breached_limit_is_reported_in_documented_order() -> None:
    checker, calc, sink = make()
    for i in range(3):
        calc.add_position(f"p{i}", "SPY", 3.0)  # portfolio 9, SPY 9, 3 open
    allowed, _ = checker.check_entry("SPY", 2.0)  # breaches all three
    assert not allowed
    assert [e.limit_type for e in sink.events] == ["portfolio_delta"]
    checker.limits = PortfolioLimits(max_portfolio_delta=100.0, max_symbol_delta=4.0, max_open_positions=3)
    checker.check_entry("SPY", 2.0)
    assert sink.events[-1].limit_type == "symbol_delta"


def test_hedging_entry_reduces_the_projected_delta() -> None:
    checker, calc, _ = make()
    calc.add_position("p1", "SPY", 3.9)
    assert checker.check_entry("SPY", -0.5, quantity=2) == (True, None)


def test_async_twin_behaves_identically() -> None:
    checker, calc, sink = make()
    calc.add_position("p1", "SPY", 3.5)
    result = asyncio.run(checker.check_entry_allowed("SPY", 1.0, execution_id="e1"))
    assert result[0] is False
    assert sink.events[0].limit_type == "symbol_delta" and sink.events[0].execution_id == "e1"


def test_health_warns_for_each_limit_past_the_threshold() -> None:
    checker, calc, sink = make()
    calc.add_position("p1", "SPY", 3.2)  # SPY 3.2/4 = 80%
    calc.add_position("p2", "QQQ", 3.1)  # QQQ 77.5%: no warning
    calc.add_position("p3", "IWM", 2.0)  # portfolio 8.3/10 = 83%, open 3/3 = 100%
    warnings = checker.check_portfolio_health()
    assert [(w.limit_type, w.symbol) for w in warnings] == [
        (LimitType.PORTFOLIO_DELTA, None),
        (LimitType.SYMBOL_DELTA, "SPY"),
        (LimitType.OPEN_POSITIONS, None),
    ]
    assert warnings[1] == LimitWarning(LimitType.SYMBOL_DELTA, "SPY", 3.2, 4.0)
    assert warnings[0].utilization == pytest.approx(0.83)
    events = sink.of_type(RiskEventType.PL_WARNING)
    assert [(e.limit_type, e.symbol, e.current_value, e.limit_value) for e in events] == [
        ("portfolio_delta", None, pytest.approx(8.3), 10.0),
        ("symbol_delta", "SPY", 3.2, 4.0),
        ("open_positions", None, 3.0, 3.0),
    ]
    assert all(e.allowed is None and json.loads(e.metadata or "") == {"threshold": 0.8} for e in events)


def test_health_threshold_is_configurable_and_quiet_when_healthy() -> None:
    checker, calc, sink = make(
        PortfolioLimits(max_portfolio_delta=10.0, max_symbol_delta=4.0, max_open_positions=3, warning_utilization=0.5)
    )
    assert checker.check_portfolio_health() == []
    calc.add_position("p1", "SPY", -2.0)  # short delta counts by magnitude
    assert [w.limit_type for w in checker.check_portfolio_health()] == ["symbol_delta"]
    assert len(sink.events) == 1


@pytest.mark.parametrize("delta", [math.nan, math.inf, -math.inf])
def test_nonsense_delta_is_refused(delta: float) -> None:
    checker, _, sink = make()
    with pytest.raises(ValueError, match="delta"):
        checker.check_entry("SPY", delta)
    assert sink.events == []


def test_nonsense_entry_arguments_are_refused() -> None:
    checker, _, _ = make()
    with pytest.raises(ValueError, match="quantity"):
        checker.check_entry("SPY", 0.5, quantity=0)
    with pytest.raises(ValueError, match="symbol"):
        checker.check_entry("", 0.5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_portfolio_delta": 0}, "max_portfolio_delta"),
        ({"max_symbol_delta": -1.0}, "max_symbol_delta"),
        ({"max_symbol_delta": math.nan}, "max_symbol_delta"),
        ({"max_open_positions": 0}, "max_open_positions"),
        ({"warning_utilization": 0.0}, "warning_utilization"),
        ({"warning_utilization": 1.2}, "warning_utilization"),
    ],
)
def test_limits_reject_nonsense(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PortfolioLimits(**kwargs)  # type: ignore[arg-type]


def test_works_without_a_logger() -> None:
    checker = PortfolioLimitsChecker(InMemoryRiskCalculator(), LIMITS)
    assert checker.check_entry("SPY", 5.0) == (
        False,
        "symbol_delta: projected |delta| of SPY would be 5.00, over the limit of 4.00",
    )


# --------------------------------------------------------------------------- trades that reduce a breach
WIDE = PortfolioLimits(max_portfolio_delta=50.0, max_symbol_delta=200.0, max_open_positions=10)


def _breached_book(limits: PortfolioLimits = WIDE) -> tuple[PortfolioLimitsChecker, InMemoryRiskCalculator, MemorySink]:
    checker, calc, sink = make(limits)
    calc.add_position("p1", "SPY", 0.6, quantity=100)  # |portfolio delta| 60 over a limit of 50
    return checker, calc, sink


def test_a_hedge_that_reduces_a_portfolio_breach_is_allowed_and_says_so() -> None:
    checker, _, sink = _breached_book()
    assert checker.check_entry("QQQ", -0.5, quantity=10, execution_id="hedge") == (True, None)
    (check,) = sink.events
    assert check.event_type == RiskEventType.PL_CHECK and check.allowed is True and check.rejection_reason is None
    assert (check.limit_type, check.current_value, check.limit_value) == ("portfolio_delta", 55.0, 50.0)
    assert json.loads(check.metadata or "") == {
        "reduces_breach": [{"limit_type": "portfolio_delta", "before": 60.0, "after": 55.0, "limit": 50.0}]
    }


@pytest.mark.parametrize(
    ("delta", "what"),
    [(0.1, "increases"), (0.0, "keeps"), (-12.0, "flips sign beyond the limit"), (-11.5, "flips to 55 short")],
)
def test_a_trade_that_does_not_reduce_the_breach_is_still_refused(delta: float, what: str) -> None:
    checker, _, sink = _breached_book()
    allowed, reason = checker.check_entry("QQQ", delta, quantity=10)
    assert not allowed and reason is not None and reason.startswith("portfolio_delta"), what
    (rej,) = sink.events
    assert rej.event_type == RiskEventType.PL_REJECTION and rej.limit_type == "portfolio_delta"
    assert "reduces_breach" not in json.loads(rej.metadata or "")


def test_flipping_back_inside_the_limit_is_an_ordinary_allowed_check() -> None:
    checker, _, sink = _breached_book()
    assert checker.check_entry("QQQ", -10.0, quantity=10) == (True, None)  # 60 -> -40
    assert sink.events[0].current_value == 40.0 and sink.events[0].metadata is None


def test_a_trade_that_reduces_a_symbol_breach_is_allowed() -> None:
    checker, calc, sink = make(PortfolioLimits(max_portfolio_delta=50.0, max_symbol_delta=20.0))
    calc.add_position("p1", "SPY", 0.5, quantity=50)  # SPY 25 over 20
    assert checker.check_entry("SPY", -0.5, quantity=4) == (True, None)  # 25 -> 23
    (check,) = sink.events
    assert (check.limit_type, check.current_value) == ("symbol_delta", 23.0)
    assert json.loads(check.metadata or "")["reduces_breach"] == [
        {"limit_type": "symbol_delta", "underlying": "SPY", "before": 25.0, "after": 23.0, "limit": 20.0}
    ]


def test_reducing_one_breach_does_not_excuse_breaching_another_limit() -> None:
    checker, calc, sink = make(PortfolioLimits(max_portfolio_delta=50.0, max_symbol_delta=20.0))
    for i, symbol in enumerate(["SPY", "QQQ", "IWM"]):
        calc.add_position(f"p{i}", symbol, 0.5, quantity=40)  # portfolio 60, each symbol 20
    allowed, reason = checker.check_entry("DIA", -0.5, quantity=42)  # portfolio 60 -> 39, DIA -21
    assert not allowed and reason is not None and reason.startswith("symbol_delta")
    (rej,) = sink.events
    assert (rej.event_type, rej.limit_type, rej.current_value) == (RiskEventType.PL_REJECTION, "symbol_delta", 21.0)


# --------------------------------------------------------------------------- per-underlying delta
def test_option_contracts_on_one_underlying_are_aggregated() -> None:
    calc = InMemoryRiskCalculator()
    calc.add_position("p1", "SPY 260320C00520000", 0.5, quantity=4, underlying="SPY")
    calc.add_position("p2", "SPY 260320P00500000", -0.25, quantity=2, underlying="SPY")
    calc.add_position("p3", "SPY", 1.0)  # the stock: its symbol is its underlying
    calc.add_position("p4", "QQQ 260320C00440000", 0.4, underlying="QQQ")
    assert calc.symbol_delta("SPY") == pytest.approx(2.5) and calc.symbol_delta("QQQ") == pytest.approx(0.4)
    assert dict(calc.symbol_deltas()) == pytest.approx({"SPY": 2.5, "QQQ": 0.4})
    calc.update_delta("p1", 0.6, quantity=4)
    calc.remove_position("p3")
    assert calc.symbol_delta("SPY") == pytest.approx(1.9)
    calc.remove_position("p1")
    calc.remove_position("p2")
    assert "SPY" not in calc.symbol_deltas()


def test_the_per_underlying_limit_counts_every_contract_on_the_underlying() -> None:
    checker, calc, sink = make()  # |symbol delta| <= 4
    calc.add_position("p1", "SPY 260320C00520000", 0.5, quantity=4, underlying="SPY")  # SPY 2.0
    calc.add_position("p2", "SPY 260417C00530000", 0.4, quantity=4, underlying="SPY")  # SPY 3.6
    allowed, reason = checker.check_entry("SPY 260320C00540000", 0.3, quantity=2, contract=OptionContract("SPY"))
    assert not allowed
    assert reason == "symbol_delta: projected |delta| of SPY would be 4.20, over the limit of 4.00"
    (rej,) = sink.events
    assert (rej.limit_type, rej.current_value, rej.limit_value) == ("symbol_delta", pytest.approx(4.2), 4.0)
    assert (rej.symbol, rej.underlying) == ("SPY 260320C00540000", "SPY")
    assert json.loads(rej.metadata or "")["projected_symbol_delta"] == pytest.approx(4.2)


def test_the_symbol_limit_keeps_working_for_stock_and_sees_options_on_it() -> None:
    checker, calc, _ = make()
    calc.add_position("p1", "SPY 260320C00520000", 0.5, quantity=6, underlying="SPY")  # SPY 3.0
    assert checker.check_entry("SPY", 1.5)[0] is False  # the stock adds to the same underlying: 4.5
    assert checker.check_entry("QQQ", 1.5)[0] is True
    assert checker.check_entry("QQQ 260320C00440000", 0.5, quantity=2, contract=OptionContract("QQQ"))[0] is True


def test_health_warns_per_underlying() -> None:
    checker, calc, sink = make()
    calc.add_position("p1", "SPY 260320C00520000", 0.5, quantity=4, underlying="SPY")
    calc.add_position("p2", "SPY 260417C00530000", 0.6, quantity=2, underlying="SPY")  # SPY 3.2 / 4
    warnings = checker.check_portfolio_health()
    assert [(w.limit_type, w.symbol) for w in warnings] == [(LimitType.SYMBOL_DELTA, "SPY")]
    (event,) = sink.events
    assert (event.symbol, event.underlying, event.current_value) == ("SPY", "SPY", pytest.approx(3.2))
