"""The trading workflows the design guide names, reduced to what exercises the risk components.

Each is wired exactly as the guide's "Integration Points" describe -- a component built in the
workflow's ``__init__`` with the shared ``event_logger``:

* :class:`EntryWorkflow` owns a :class:`~risk_runtime.portfolio_limits.PortfolioLimitsChecker`
  (``self.portfolio_limits``) and asks it before every entry;
* :class:`PositionMonitoringWorkflow` owns a :class:`~risk_runtime.trailing_stop.TrailingStopManager`
  (``self.trailing_stops``) and feeds it premiums each tick;
* :class:`OrderExecutionEngine` owns one named
  :class:`~risk_runtime.circuit_breaker.TradingCircuitBreaker` per venue (``self.circuit_breakers``)
  and reports every broker outcome to it.

The broker is simulated (:class:`SimulatedBroker`): orders fail at a small base rate, and at a
high rate inside scheduled outage windows, so breakers open, half-open and close as they would
against a venue having a bad quarter of an hour.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from risk_runtime.circuit_breaker import CircuitBreakerConfig, TradingCircuitBreaker
from risk_runtime.clock import Clock
from risk_runtime.instruments import MarketSnapshot, OptionContract
from risk_runtime.portfolio_limits import InMemoryRiskCalculator, PortfolioLimits, PortfolioLimitsChecker
from risk_runtime.sink import EventSink
from risk_runtime.trailing_stop import TrailingStopConfig, TrailingStopManager, TriggeredStop


@dataclass(slots=True)
class Position:
    """An open long option position.

    ``contract`` is built once, when the position is drawn, and is both what the stop and the limit
    check log and the key the session prices premiums by (most contracts are held by several positions).
    """

    execution_id: str
    contract: OptionContract
    quantity: int
    entry_premium: float
    delta: float
    close_after_tick: int
    last_premium: float = 0.0
    entry_market: MarketSnapshot | None = None
    """The option's delta and the underlying's price when the position was priced for entry."""


class SimulatedBroker:
    """Fills or fails orders; failure bursts come from per-venue outage windows."""

    def __init__(
        self,
        rng: random.Random,
        clock: Clock,
        *,
        base_failure_rate: float = 0.002,
        outage_failure_rate: float = 0.9,
    ) -> None:
        self._rng = rng
        self._clock = clock
        self.base_failure_rate = base_failure_rate
        self.outage_failure_rate = outage_failure_rate
        self.outages: dict[str, list[tuple[datetime, datetime]]] = {}

    def schedule_outage(self, venue: str, start: datetime, end: datetime) -> None:
        self.outages.setdefault(venue, []).append((start, end))

    def submit(self, venue: str) -> bool:
        """True if the order filled."""
        now = self._clock()
        rate = self.base_failure_rate
        for start, end in self.outages.get(venue, ()):
            if start <= now < end:
                rate = self.outage_failure_rate
                break
        return self._rng.random() >= rate


class OrderExecutionEngine:
    """Routes orders across venues, skipping any whose breaker is open."""

    def __init__(
        self,
        broker: SimulatedBroker,
        venues: Sequence[str],
        config: CircuitBreakerConfig,
        event_logger: EventSink | None = None,
        *,
        clock: Clock,
    ) -> None:
        self.broker = broker
        self.venues = tuple(venues)
        self.circuit_breakers = {
            venue: TradingCircuitBreaker(config, event_logger=event_logger, name=f"orders.{venue}", clock=clock)
            for venue in self.venues
        }

    def execute(self, first_choice: int) -> str | None:
        """Try venues in preference order from ``first_choice``; the venue that filled, or None."""
        n = len(self.venues)
        for i in range(n):
            venue = self.venues[(first_choice + i) % n]
            breaker = self.circuit_breakers[venue]
            if not breaker.is_trading_allowed():
                continue
            if self.broker.submit(venue):
                breaker.record_success()
                return venue
            breaker.record_failure()
        return None


class PositionMonitoringWorkflow:
    """Feeds each open position's premium to its trailing stop, and closes stale positions."""

    def __init__(
        self,
        config: TrailingStopConfig | None = None,
        event_logger: EventSink | None = None,
        *,
        clock: Clock,
        name: str,
    ) -> None:
        self.trailing_stops = TrailingStopManager(config, event_logger=event_logger, clock=clock, name=name)
        self.positions: dict[str, Position] = {}

    def open(self, position: Position, symbol: str) -> None:
        self.positions[position.execution_id] = position
        self.trailing_stops.add_trailing_stop(
            position.execution_id,
            position.entry_premium,
            symbol=symbol,
            contract=position.contract,
            market=position.entry_market,
        )

    def on_tick(
        self,
        tick: int,
        prices: Mapping[OptionContract, float],
        premium_of: Callable[[OptionContract], float],
        markets: Mapping[str, MarketSnapshot] | None = None,
    ) -> tuple[list[TriggeredStop], list[str]]:
        """Update every stop; returns the stops that triggered and the positions held too long.

        ``prices`` is this tick's cache of premiums already computed, ``premium_of`` prices
        (and caches) a contract not yet in it: most contracts are held by several positions.
        ``markets`` (underlying -> its market this tick, one snapshot shared by every position on
        it), when given, goes on the stops' events.
        """
        triggered: list[TriggeredStop] = []
        expired: list[str] = []
        update = self.trailing_stops.update
        cached = prices.get
        market_of = (markets or {}).get
        for execution_id, position in self.positions.items():
            if tick >= position.close_after_tick:
                expired.append(execution_id)
                continue
            premium = cached(position.contract) or premium_of(position.contract)
            if premium == position.last_premium:
                continue  # an unchanged premium cannot move or trigger a stop
            position.last_premium = premium
            fired = update(execution_id, premium, market=market_of(position.contract.underlying))
            if fired is not None:
                triggered.append(fired)
        return triggered, expired

    def close(self, execution_id: str, *, remove_stop: bool, market: MarketSnapshot | None = None) -> Position:
        if remove_stop:
            self.trailing_stops.remove_stop(execution_id, market=market)
        return self.positions.pop(execution_id)


class EntryWorkflow:
    """Pre-trade limits, then the order, then monitoring: the life of one entry decision."""

    def __init__(
        self,
        risk_calculator: InMemoryRiskCalculator,
        limits: PortfolioLimits,
        engine: OrderExecutionEngine,
        monitor: PositionMonitoringWorkflow,
        event_logger: EventSink | None = None,
        *,
        clock: Clock,
        name: str,
    ) -> None:
        self.risk_calculator = risk_calculator
        self.portfolio_limits = PortfolioLimitsChecker(
            risk_calculator, limits, event_logger=event_logger, clock=clock, name=name
        )
        self.engine = engine
        self.monitor = monitor

    def enter(self, position: Position, first_venue: int) -> bool:
        """True if the position was opened (allowed by the limits and filled)."""
        symbol = position.contract.underlying
        assert symbol is not None, "the simulator's contracts always name their underlying"
        allowed, _ = self.portfolio_limits.check_entry(
            symbol,
            position.delta,
            quantity=position.quantity,
            execution_id=position.execution_id,
            contract=position.contract,
            market=position.entry_market,
        )
        if not allowed or self.engine.execute(first_venue) is None:
            return False
        self.risk_calculator.add_position(position.execution_id, symbol, position.delta, position.quantity)
        self.monitor.open(position, symbol)
        return True
