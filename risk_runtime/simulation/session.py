"""A seeded, reproducible trading session that drives every risk component through real decisions.

What is simulated:

* **Market** -- eight underlyings following geometric Brownian motion, each with its own
  volatility, stepped every simulated minute of a 6.5-hour session (14:30-21:00 UTC from
  ``start``'s time of day, one session per calendar day) with an overnight gap between sessions.
  Options on them are priced with Black-Scholes, so premiums move with their underlying, with
  leverage, and decay as expiry nears. Premiums are rounded to the cent.
* **Books** -- independent strategy books, each an :class:`EntryWorkflow` (portfolio limits) and a
  :class:`PositionMonitoringWorkflow` (trailing stops) over its own positions. Entries buy
  1-5 near-the-money calls or puts expiring on a Friday 1-4 weeks out; a position leaves when its
  stop triggers or after a random holding period (15-240 minutes; the stop is then removed).
  Every book checks its portfolio health every 15 minutes. Limit checks and stop events carry the
  contract (underlying, right, strike, expiry), the option's Black-Scholes delta at entry and the
  underlying's price (schema version 2).
* **Order routing** -- one :class:`OrderExecutionEngine` with a breaker per venue
  (``orders.cboe``, ``orders.ise``, ``orders.phlx``, ``orders.miax``; 3 failures open it, 120 s
  timeout, 2 half-open successes close it). Each day every venue has a 60% chance of a 5-25
  minute outage during which 90% of its orders fail, so breakers open, half-open, re-open and
  close; outside outages 0.2% of orders fail.

**Volume.** ``target_events`` sets the number of entry attempts, ``target_events /
EVENTS_PER_ENTRY`` (every attempt costs one limit check and, when filled, a stop's ADD,
ACTIVATE, UPDATEs and TRIGGER or REMOVE, plus its share of breaker and warning events). Books
are added as volume grows (at most ``ENTRIES_PER_BOOK_DAY`` attempts per book per day), so each
book's concurrency -- and hence its rejection rate -- stays about the same from a few hundred
events to millions, and the event count stays roughly proportional to ``target_events``
(within about ±25% above a few thousand events; small runs are dominated by breaker events of
the daily outages).

**Determinism.** Everything random comes from one ``random.Random(seed)`` consumed in a fixed
order, and time from a :class:`~risk_runtime.clock.ManualClock`: two runs with the same
arguments emit the same events in the same order, identical except for ``event_id``.
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any, Final

from risk_runtime.circuit_breaker import CircuitBreakerConfig
from risk_runtime.clock import ManualClock
from risk_runtime.events import OptionRight, RiskEvent, RiskEventType
from risk_runtime.instruments import MarketSnapshot, OptionContract
from risk_runtime.portfolio_limits import InMemoryRiskCalculator, PortfolioLimits
from risk_runtime.simulation.pricing import black_scholes, gbm_step
from risk_runtime.simulation.workflows import (
    EntryWorkflow,
    OrderExecutionEngine,
    Position,
    PositionMonitoringWorkflow,
    SimulatedBroker,
)
from risk_runtime.sink import EventSink
from risk_runtime.trailing_stop import TrailingStopConfig

__all__ = [
    "DEFAULT_START",
    "EVENTS_PER_ENTRY",
    "SimulationSummary",
    "simulate_session",
]

DEFAULT_START: Final = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
"""Monday 2 March 2026, US options open (14:30 UTC)."""

BAR_MINUTES: Final = 5
TICK: Final = timedelta(minutes=BAR_MINUTES)
TICKS_PER_DAY: Final = 390 // BAR_MINUTES
"""6.5 hours of five-minute bars: positions are re-marked, and stops moved, once per bar."""
EVENTS_PER_ENTRY: Final = 4.8
"""Measured average events per entry attempt (all event types), used to size the run."""
ENTRIES_PER_BOOK_DAY: Final = 120
HEALTH_CHECK_EVERY: Final = 3
"""Bars between portfolio-health checks (15 minutes)."""

_YEAR_SECONDS: Final = 365.0 * 86400.0
_INTRADAY_DT: Final = 1.0 / (252 * TICKS_PER_DAY)
_OVERNIGHT_DT: Final = 0.25 / 252
"""Overnight variance as a quarter of a trading day's."""
_RATE: Final = 0.04

VENUES: Final = ("cboe", "ise", "phlx", "miax")
BREAKER_CONFIG: Final = CircuitBreakerConfig(failure_threshold=3, reset_timeout=120.0, half_open_success_threshold=2)
BOOK_LIMITS: Final = PortfolioLimits(
    max_portfolio_delta=18.0, max_symbol_delta=7.0, max_open_positions=24, warning_utilization=0.8
)
STOP_CONFIG: Final = TrailingStopConfig(activation_pct=0.04, trailing_pct=0.03)


@dataclass(frozen=True, slots=True)
class Underlying:
    symbol: str
    spot: float
    vol: float
    drift: float
    strike_step: float


UNIVERSE: Final = (
    Underlying("SPY", 520.0, 0.16, 0.07, 5.0),
    Underlying("QQQ", 440.0, 0.21, 0.09, 5.0),
    Underlying("IWM", 205.0, 0.24, 0.05, 1.0),
    Underlying("AAPL", 190.0, 0.27, 0.08, 2.5),
    Underlying("MSFT", 415.0, 0.23, 0.08, 5.0),
    Underlying("AMZN", 180.0, 0.30, 0.09, 2.5),
    Underlying("NVDA", 880.0, 0.48, 0.20, 10.0),
    Underlying("TSLA", 175.0, 0.55, 0.00, 2.5),
)


@dataclass(frozen=True, slots=True)
class SimulationSummary:
    """What a run produced. ``events`` counts per event type; ``wall_seconds`` is not reproducible."""

    seed: int
    start: datetime
    end: datetime
    days: int
    books: int
    entries_attempted: int
    positions_opened: int
    events: Mapping[str, int] = field(default_factory=dict)
    wall_seconds: float = 0.0

    @property
    def total_events(self) -> int:
        return sum(self.events.values())

    @property
    def events_per_second(self) -> float:
        return self.total_events / self.wall_seconds if self.wall_seconds > 0 else math.inf


class _CountingSink:
    """Passes events through to the caller's sink, counting them by type for the summary."""

    __slots__ = ("counts", "inner")

    def __init__(self, inner: EventSink) -> None:
        self.inner = inner
        self.counts: Counter[str] = Counter()

    def log(self, event: RiskEvent) -> bool:
        self.counts[event.event_type] += 1
        return self.inner.log(event)

    def flush_blocking(self, timeout: float | None = None) -> bool:
        return self.inner.flush_blocking(timeout)


class _Book:
    __slots__ = ("calc", "entry", "monitor", "name", "pending_exits")

    def __init__(self, name: str, engine: OrderExecutionEngine, sink: EventSink, clock: ManualClock) -> None:
        self.name = name
        self.calc = InMemoryRiskCalculator()
        self.monitor = PositionMonitoringWorkflow(STOP_CONFIG, sink, clock=clock, name=name)
        self.entry = EntryWorkflow(self.calc, BOOK_LIMITS, engine, self.monitor, sink, clock=clock, name=name)
        self.pending_exits: list[str] = []


def simulate_session(
    sink: EventSink,
    *,
    seed: int = 7,
    start: datetime = DEFAULT_START,
    days: int = 1,
    target_events: int = 2_000,
    progress: bool = False,
) -> SimulationSummary:
    """Run ``days`` simulated sessions opening at ``start`` (then every 24 h), logging into ``sink``.

    ``target_events`` is the approximate number of events to emit (see the module docstring).
    ``progress=True`` shows a tqdm bar over the simulated minutes when tqdm is installed
    (it is not a runtime dependency; without it the run is silent).
    """
    if start.utcoffset() is None:
        raise ValueError(f"start must be time-zone aware, got naive {start!r}")
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ValueError(f"days must be an integer >= 1, got {days!r}")
    if isinstance(target_events, bool) or not isinstance(target_events, int) or target_events < 1:
        raise ValueError(f"target_events must be an integer >= 1, got {target_events!r}")
    started = time.perf_counter()
    start = start.astimezone(UTC)
    rng = random.Random(seed)
    clock = ManualClock(start)
    counting = _CountingSink(sink)

    total_entries = target_events / EVENTS_PER_ENTRY
    n_books = max(1, math.ceil(total_entries / (days * ENTRIES_PER_BOOK_DAY)))
    entries_per_tick = total_entries / (n_books * days * TICKS_PER_DAY)
    whole_entries, extra_entry_p = int(entries_per_tick), entries_per_tick - int(entries_per_tick)

    broker = SimulatedBroker(rng, clock)
    engine = OrderExecutionEngine(broker, VENUES, BREAKER_CONFIG, counting, clock=clock)
    books = [_Book(f"book-{i:03d}", engine, counting, clock) for i in range(n_books)]
    spots = [u.spot for u in UNIVERSE]
    prices: dict[OptionContract, float] = {}
    now_ts = start.timestamp()

    def premium_of(contract: OptionContract) -> float:
        premium = prices.get(contract)
        if premium is None:
            assert contract.underlying is not None and contract.strike is not None and contract.expiry is not None
            symbol_index = _SYMBOL_INDEX[contract.underlying]
            u = UNIVERSE[symbol_index]
            years = (_expiry_timestamp(contract.expiry) - now_ts) / _YEAR_SECONDS
            value, _ = black_scholes(
                spots[symbol_index], contract.strike, years, u.vol, _RATE, contract.right == OptionRight.CALL
            )
            premium = max(round(value, 2), 0.01)
            prices[contract] = premium
        return premium

    bar: Any = _progress_bar(days * TICKS_PER_DAY) if progress else None
    counter = 0
    attempted = opened = 0
    tick = 0
    venues = len(VENUES)
    try:
        for day in range(days):
            day_open = start + timedelta(days=day)
            expiries = _expiries(day_open)
            for venue in VENUES:
                if rng.random() < 0.6:
                    begin = day_open + timedelta(minutes=rng.randrange(10, 360))
                    broker.schedule_outage(venue, begin, begin + timedelta(minutes=rng.randint(5, 25)))
            for minute in range(TICKS_PER_DAY):
                tick += 1
                clock.set(day_open + TICK * minute)
                now_ts = clock.now.timestamp()
                dt = _INTRADAY_DT if minute else (_OVERNIGHT_DT if day else 0.0)
                if dt:
                    for i, u in enumerate(UNIVERSE):
                        spots[i] = gbm_step(spots[i], u.drift, u.vol, dt, rng.gauss(0.0, 1.0))
                prices.clear()
                market_of = _markets(spots)
                for book in books:
                    triggered, expired = book.monitor.on_tick(tick, prices, premium_of, market_of)
                    for fired in triggered:
                        book.monitor.close(fired.execution_id, remove_stop=False)
                        book.pending_exits.append(fired.execution_id)
                    for execution_id in expired:
                        underlying = book.monitor.positions[execution_id].contract.underlying
                        book.monitor.close(execution_id, remove_stop=True, market=market_of[underlying])
                        book.pending_exits.append(execution_id)
                    _exit_pending(book, engine, int(rng.random() * venues))
                    n = whole_entries + (rng.random() < extra_entry_p)
                    for _ in range(n):
                        counter += 1
                        attempted += 1
                        position = _new_position(rng, spots, expiries, f"{book.name}-{counter:08d}", tick, now_ts)
                        position.entry_premium = premium_of(position.contract)
                        opened += book.entry.enter(position, int(rng.random() * venues))
                    if tick % HEALTH_CHECK_EVERY == 0:
                        book.entry.portfolio_limits.check_portfolio_health()
                if bar is not None:
                    bar.update(1)
        # The session ends flat: stop monitoring whatever is still open.
        clock.set(start + timedelta(days=days - 1) + TICK * TICKS_PER_DAY)
        market_of = _markets(spots)
        for book in books:
            for execution_id, position in list(book.monitor.positions.items()):
                book.monitor.close(execution_id, remove_stop=True, market=market_of[position.contract.underlying])
                book.calc.remove_position(execution_id)
            for execution_id in book.pending_exits:
                book.calc.remove_position(execution_id)
            book.pending_exits.clear()
    finally:
        if bar is not None:
            bar.close()
    order = {t.value: i for i, t in enumerate(RiskEventType)}
    return SimulationSummary(
        seed=seed,
        start=start,
        end=clock.now,
        days=days,
        books=n_books,
        entries_attempted=attempted,
        positions_opened=opened,
        events={k: counting.counts[k] for k in sorted(counting.counts, key=lambda k: order.get(k, len(order)))},
        wall_seconds=time.perf_counter() - started,
    )


_SYMBOL_INDEX: Final = {u.symbol: i for i, u in enumerate(UNIVERSE)}
_SYMBOLS: Final = tuple(u.symbol for u in UNIVERSE)


def _markets(spots: list[float]) -> dict[str, MarketSnapshot]:
    """Each underlying's market this tick: one snapshot, shared by the events of every position on it."""
    return {symbol: MarketSnapshot(underlying_price=spot) for symbol, spot in zip(_SYMBOLS, spots, strict=True)}


EXPIRY_HOUR_UTC: Final = 20
"""Listed options expire at 20:00 UTC (16:00 New York in summer) on their expiry day: the pricing clock."""


@cache
def _expiry_timestamp(expiry: date) -> float:
    """The POSIX time an expiry day's options stop trading, for Black-Scholes' time to expiry."""
    return datetime(expiry.year, expiry.month, expiry.day, EXPIRY_HOUR_UTC, tzinfo=UTC).timestamp()


def _new_position(
    rng: random.Random, spots: list[float], expiries: list[date], execution_id: str, tick: int, now_ts: float
) -> Position:
    """A random near-the-money option, priced and with its delta, to try to enter."""
    draw = rng.random  # int(draw() * n) is a uniform pick, and several times cheaper than randrange
    i = int(draw() * len(UNIVERSE))
    u = UNIVERSE[i]
    is_call = draw() < 0.5
    step = u.strike_step
    strike = (round(spots[i] / step) + int(draw() * 5) - 2) * step
    expiry = expiries[int(draw() * len(expiries))]
    years = (_expiry_timestamp(expiry) - now_ts) / _YEAR_SECONDS
    _, delta = black_scholes(spots[i], strike, years, u.vol, _RATE, is_call)
    return Position(
        execution_id=execution_id,
        contract=OptionContract(u.symbol, OptionRight.CALL if is_call else OptionRight.PUT, strike, expiry),
        quantity=1 + int(draw() * 5),
        entry_premium=0.0,
        delta=delta,
        close_after_tick=tick + (15 + int(draw() * 226)) // BAR_MINUTES,
        entry_market=MarketSnapshot(option_delta=delta, underlying_price=spots[i]),
    )


def _expiries(day_open: datetime) -> list[date]:
    """The listed expiry days an entry on this day may pick: Fridays 1-4 weeks out."""
    first = day_open.date() + timedelta(days=(4 - day_open.weekday()) % 7 + 7)
    return [first + timedelta(weeks=w) for w in range(4)]


def _exit_pending(book: _Book, engine: OrderExecutionEngine, first_venue: int) -> None:
    """Send exit orders for closed positions; those no venue fills wait for the next tick."""
    if not book.pending_exits:
        return
    waiting: list[str] = []
    for execution_id in book.pending_exits:
        if engine.execute(first_venue) is None:
            waiting.append(execution_id)
        else:
            book.calc.remove_position(execution_id)
    book.pending_exits = waiting


def _progress_bar(total: int) -> Any:
    try:
        from tqdm import tqdm  # optional: a nicety for long runs, not a runtime dependency
    except ImportError:
        return None
    return tqdm(total=total, unit="bar", desc="simulated session")
