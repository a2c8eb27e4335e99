"""A small, fully scripted session whose every event is known in advance: the end-to-end fixture.

The random simulator proves volume and realism; this script proves correctness. Gold tables
computed by the pipeline from it can be compared with numbers worked out by hand from the
docstring of :func:`scripted_scenario`.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Final

from risk_runtime.circuit_breaker import CircuitBreakerConfig, TradingCircuitBreaker
from risk_runtime.clock import ManualClock
from risk_runtime.instruments import MarketSnapshot, OptionContract
from risk_runtime.portfolio_limits import InMemoryRiskCalculator, PortfolioLimits, PortfolioLimitsChecker
from risk_runtime.sink import EventSink
from risk_runtime.trailing_stop import TrailingStopConfig, TrailingStopManager

__all__ = ["SCENARIO_START", "scripted_scenario"]

SCENARIO_START: Final = datetime(2026, 3, 2, 23, 30, tzinfo=UTC)
"""The canonical start: Monday 2 March 2026, 23:30 UTC (any day works, the time must be 23:30)."""

SCENARIO_BREAKER: Final = CircuitBreakerConfig(failure_threshold=3, reset_timeout=600.0, half_open_success_threshold=2)
SCENARIO_LIMITS: Final = PortfolioLimits(
    max_portfolio_delta=10.0, max_symbol_delta=3.0, max_open_positions=2, warning_utilization=0.8
)
SCENARIO_STOPS: Final = TrailingStopConfig(activation_pct=0.02, trailing_pct=0.015)
SCENARIO_CONTRACTS: Final = {"SPY": (520.0, 519.80), "QQQ": (440.0, 441.25)}
"""Underlying -> (strike of the call a stop protects, the underlying's price at entry)."""


def scripted_scenario(sink: EventSink, *, start: datetime) -> None:
    """Emit the scripted session into ``sink``; ``start`` must be 23:30:00 UTC of some day D.

    Components (their ``source``): breaker ``"orders"`` (threshold 3, reset timeout 600 s,
    2 half-open successes), trailing stops ``"monitor"`` (activation 2%, trailing 1.5%), limits
    ``"book"`` (|portfolio delta| <= 10, |symbol delta| <= 3, open positions <= 2, warning at 80%).
    Each event's timestamp is ``start + offset``; midnight (day D+1) is ``start + 1800 s``.
    Stop premiums are ``highest * 0.985`` computed in floating point (shown rounded).

    ======  ==========  ==========================================================================
    offset  time (UTC)  events
    ======  ==========  ==========================================================================
    0       D 23:30:00  PL_CHECK E1 SPY delta 0.5 x 2, allowed; binding open_positions 1 / 2.
                        TS_ADD E1 SPY entry 5.00
    60      D 23:31:00  PL_CHECK E2 QQQ delta 0.4 x 1, allowed; binding open_positions 2 / 2.
                        TS_ADD E2 QQQ entry 3.00
    120     D 23:32:00  (E1 at 5.05: below activation 5.10, no event)
    300     D 23:35:00  TS_ACTIVATE E1 current 5.20, highest 5.20, stop 5.122
    420     D 23:37:00  PL_REJECTION E3 SPY 0.6 x 4: symbol_delta, current 3.4, limit 3
    600     D 23:40:00  TS_UPDATE E1 current 5.40, highest 5.40, stop 5.319
    1200    D 23:50:00  PL_WARNING open_positions current 2, limit 2 (100%; nothing else >= 80%)
    1320    D 23:52:00  PL_REJECTION E4 IWM 0.3 x 1: open_positions, current 3, limit 2
    1500    D 23:55:00  CB_FAILURE orders failure_count 1
    1530    D 23:55:30  CB_FAILURE orders failure_count 2
    1560    D 23:56:00  CB_FAILURE orders failure_count 3;
                        CB_STATE_CHANGE orders CLOSED -> OPEN, failure_count 3 (opened_at 23:56:00)
    1700    D 23:58:20  (E1 at 5.35: above the stop, below the high, no event)
    1800    D+1 00:00   (trading refused: breaker still OPEN across midnight, no event)
    1900    D+1 00:01:40  PL_REJECTION E5 IWM 0.2 x 1: open_positions, current 3, limit 2
    2000    D+1 00:03:20  PL_REJECTION E6 SPY 1.5 x 2: symbol_delta, current 4.0, limit 3
    2100    D+1 00:05:00  (E2 at 3.03: below activation 3.06, no event)
    2200    D+1 00:06:40  CB_STATE_CHANGE orders OPEN -> HALF_OPEN, failure_count 3 (lazy: first
                          check after the timeout expired at 00:06:00)
    2210    D+1 00:06:50  CB_SUCCESS orders {"half_open_successes": 1}, failure_count 3
    2220    D+1 00:07:00  CB_SUCCESS orders {"half_open_successes": 2}, failure_count 3;
                          CB_STATE_CHANGE orders HALF_OPEN -> CLOSED, failure_count 0
    2400    D+1 00:10:00  TS_REMOVE E2 current 3.03, highest 3.03, stop null
    2700    D+1 00:15:00  TS_UPDATE E1 current 5.60, highest 5.60, stop 5.516
    3000    D+1 00:20:00  TS_TRIGGER E1 entry 5.00, current (exit) 5.50, highest 5.60, stop 5.516
    3060    D+1 00:21:00  PL_CHECK E7 QQQ delta 0.5 x 1, allowed; binding open_positions 1 / 2
    ======  ==========  ==========================================================================

    Both stops name their option (event schema version 2) on every event: E1 the SPY 520 call, E2 the
    QQQ 440 call, both expiring on day D + 18; their TS_ADD also carries the option's delta at entry
    (0.5 and 0.4, as entered) and the underlying's price (519.80 and 441.25). Limit events carry no contract.

    Totals (23 events): day D 13 -- PL_CHECK 2, PL_REJECTION 2 (symbol_delta 1, open_positions 1),
    PL_WARNING 1, TS_ADD 2, TS_ACTIVATE 1, TS_UPDATE 1, CB_FAILURE 3, CB_STATE_CHANGE 1;
    day D+1 10 -- PL_REJECTION 2 (open_positions 1, symbol_delta 1), PL_CHECK 1,
    CB_STATE_CHANGE 2, CB_SUCCESS 2, TS_REMOVE 1, TS_UPDATE 1, TS_TRIGGER 1.
    The breaker was OPEN from D 23:56:00 to D+1 00:06:40 (640 s, 240 s of it on day D).
    Stop E1 lived from D 23:30:00 to D+1 00:20:00 and locked in 5.516 - 5.00 = 0.516.
    """
    if start.utcoffset() is None or start.astimezone(UTC).time() != time(23, 30):
        raise ValueError(f"the scripted scenario starts at 23:30:00 UTC of some day, got {start!r}")
    start = start.astimezone(UTC)
    clock = ManualClock(start)

    def at(offset: int) -> None:
        clock.set(start + timedelta(seconds=offset))

    breaker = TradingCircuitBreaker(SCENARIO_BREAKER, sink, name="orders", clock=clock)
    stops = TrailingStopManager(SCENARIO_STOPS, sink, clock=clock, name="monitor")
    book = InMemoryRiskCalculator()
    limits = PortfolioLimitsChecker(book, SCENARIO_LIMITS, sink, clock=clock, name="book")

    expiry = start.date() + timedelta(days=18)

    def enter(execution_id: str, symbol: str, delta: float, quantity: int, premium: float | None) -> bool:
        allowed, _ = limits.check_entry(symbol, delta, quantity=quantity, execution_id=execution_id)
        if allowed and premium is not None:
            assert breaker.is_trading_allowed()
            breaker.record_success()  # a fill while CLOSED with no failures logs nothing
            book.add_position(execution_id, symbol, delta, quantity)
            strike, spot = SCENARIO_CONTRACTS[symbol]
            stops.add_trailing_stop(
                execution_id,
                premium,
                symbol=symbol,
                contract=OptionContract(symbol, "C", strike, expiry),
                market=MarketSnapshot(option_delta=delta, underlying_price=spot),
            )
        return allowed

    at(0)
    enter("E1", "SPY", 0.5, 2, 5.00)
    at(60)
    enter("E2", "QQQ", 0.4, 1, 3.00)
    at(120)
    stops.update("E1", 5.05)
    at(300)
    stops.update("E1", 5.20)
    at(420)
    enter("E3", "SPY", 0.6, 4, 2.10)
    at(600)
    stops.update("E1", 5.40)
    at(1200)
    limits.check_portfolio_health()
    at(1320)
    enter("E4", "IWM", 0.3, 1, 1.80)
    for offset in (1500, 1530, 1560):
        at(offset)
        breaker.record_failure()
    at(1700)
    stops.update("E1", 5.35)
    at(1800)
    assert not breaker.is_trading_allowed()
    at(1900)
    enter("E5", "IWM", 0.2, 1, 1.20)
    at(2000)
    enter("E6", "SPY", 1.5, 2, 9.00)
    at(2100)
    stops.update("E2", 3.03)
    at(2200)
    assert breaker.is_trading_allowed()
    for offset in (2210, 2220):
        at(offset)
        breaker.record_success()
    at(2400)
    stops.remove_stop("E2")
    book.remove_position("E2")
    at(2700)
    stops.update("E1", 5.60)
    at(3000)
    fired = stops.update("E1", 5.50)
    assert fired is not None
    breaker.record_success()  # the exit fills; CLOSED with no failures: no event
    book.remove_position("E1")
    at(3060)
    enter("E7", "QQQ", 0.5, 1, None)  # a pre-trade check only: the desk decided not to trade
