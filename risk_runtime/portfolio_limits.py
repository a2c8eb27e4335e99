"""Pre-trade portfolio limits, with every check and its verdict recorded.

An entry is judged on the portfolio *as it would be* after the trade (the projected
portfolio): a trade that would take a limit over is refused before it exists, rather than
noticed afterwards. Three limits, checked in this order -- the first one breached is the one
reported, and produces the single ``PL_REJECTION`` event:

1. ``portfolio_delta``: ``|portfolio delta + delta * quantity|`` must not exceed ``max_portfolio_delta``;
2. ``symbol_delta``: ``|underlying's delta + delta * quantity|`` must not exceed ``max_symbol_delta``;
3. ``open_positions``: ``open positions + 1`` must not exceed ``max_open_positions``.

``symbol_delta`` is a limit *per underlying*: every position on one underlying counts -- the stock
and each option contract on it -- because that is the exposure the limit bounds. A position's
underlying is its ``underlying`` when given (an option contract), else its ``symbol`` (a stock is
its own underlying), both in :meth:`InMemoryRiskCalculator.add_position` and in
:meth:`PortfolioLimitsChecker.check_entry` (there, the ``contract``'s underlying).

A value equal to its limit is allowed. So is a trade that **reduces an existing breach** of a delta
limit: a book already over a limit (the market moved, the limit was lowered) must be able to hedge
back towards it, and refusing the hedge would keep it over. Reducing means the magnitude shrinks
and the sign is kept (60 -> 55 against 50); a trade that increases or keeps the breach, or flips
the book through zero to the far side of the limit (60 -> -55), is refused. Each limit is judged on
its own: reducing a portfolio breach does not excuse breaching a symbol limit.

An allowed entry logs one ``PL_CHECK`` describing the most-utilised limit (the one closest to
binding; the first in the order above on a tie); when it was allowed because it reduces a breach,
the check's ``metadata`` says so: ``{"reduces_breach": [{"limit_type", "before", "after", "limit"}]}``
(plus ``"underlying"`` for ``symbol_delta``), magnitudes before and after the trade. In both events
``current_value`` is the projected quantity the limit bounds (an absolute delta, or a count) and
``limit_value`` the limit, so ``current_value / limit_value`` is the utilisation (above 1 for a
breach being reduced).

:meth:`PortfolioLimitsChecker.check_portfolio_health` looks at the *current* portfolio and logs a
``PL_WARNING`` for each limit whose utilisation reaches ``warning_utilization`` (80% by default):
the portfolio delta, each underlying's delta (its ``symbol`` and ``underlying`` both name the
underlying), and the open-position count.

Every wrong-typed or nonsensical argument is a ``ValueError`` naming the parameter, raised before
anything is logged.

Deltas are in whatever unit the desk uses for its limits (here: option delta per contract);
the checker multiplies by ``quantity`` and never by a contract multiplier.

Option contract (schema version 2): :meth:`PortfolioLimitsChecker.check_entry` optionally takes the
entry's ``contract=OptionContract(...)`` and ``market=MarketSnapshot(...)``
(:mod:`risk_runtime.instruments`) and puts them on its ``PL_CHECK`` / ``PL_REJECTION`` event. The
market's ``option_delta`` is the option's own delta (in [-1, 1]); it is not derived from ``delta``,
whose unit is the desk's limit unit. The design guide's ``await check_entry_allowed(...)`` passes
neither; those columns are then null. A ``PL_WARNING`` on one underlying names it as the contract's
underlying (its ``symbol`` too).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

from risk_runtime.clock import Clock, event_time
from risk_runtime.events import Component, RiskEvent, RiskEventType, utc_now
from risk_runtime.inputs import is_number, require_collaborators, require_instance, require_text
from risk_runtime.instruments import NO_CONTRACT, NO_MARKET, MarketSnapshot, OptionContract
from risk_runtime.sink import EventSink

__all__ = [
    "InMemoryRiskCalculator",
    "LimitType",
    "LimitWarning",
    "PortfolioLimits",
    "PortfolioLimitsChecker",
    "RiskCalculator",
]


class LimitType(StrEnum):
    """The limits, in the order an entry is checked against them (stored in ``limit_type``)."""

    PORTFOLIO_DELTA = "portfolio_delta"
    SYMBOL_DELTA = "symbol_delta"
    OPEN_POSITIONS = "open_positions"


@runtime_checkable
class RiskCalculator(Protocol):
    """What the checker needs to know about the book it guards (signed deltas, a count).

    ``symbol_delta(underlying)`` is the delta of every position on that underlying (a stock's
    symbol is its underlying); ``symbol_deltas()`` maps each underlying held to its delta.
    """

    def portfolio_delta(self) -> float: ...

    def symbol_delta(self, symbol: str) -> float: ...

    def symbol_deltas(self) -> Mapping[str, float]: ...

    def open_positions(self) -> int: ...


def _require_finite(name: str, value: object) -> float:
    if not is_number(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _require_count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return value


class InMemoryRiskCalculator:
    """Open positions held in memory: deltas summed per underlying as positions come and go.

    A position's delta is ``delta * quantity`` (signed: negative for puts or shorts). Its
    underlying is ``underlying`` when given (an option contract: ``symbol`` names the contract),
    else ``symbol`` (a stock).
    """

    def __init__(self) -> None:
        self._positions: dict[str, tuple[str, float]] = {}
        self._by_underlying: dict[str, float] = {}
        self._count_by_underlying: dict[str, int] = {}

    def add_position(
        self, position_id: str, symbol: str, delta: float, quantity: int = 1, *, underlying: str | None = None
    ) -> None:
        _require_position_id(position_id)
        require_text("symbol", symbol, optional=False)
        key = require_text("underlying", underlying) or symbol
        if position_id in self._positions:
            raise ValueError(f"position {position_id!r} is already open")
        position_delta = _require_finite("delta", delta) * _require_count("quantity", quantity)
        self._positions[position_id] = (key, position_delta)
        self._by_underlying[key] = self._by_underlying.get(key, 0.0) + position_delta
        self._count_by_underlying[key] = self._count_by_underlying.get(key, 0) + 1

    def update_delta(self, position_id: str, delta: float, quantity: int = 1) -> None:
        """Re-mark a position's delta (it moves with the underlying)."""
        key, old = self._position(position_id)
        new = _require_finite("delta", delta) * _require_count("quantity", quantity)
        self._positions[position_id] = (key, new)
        self._by_underlying[key] += new - old

    def remove_position(self, position_id: str) -> None:
        key, position_delta = self._position(position_id)
        del self._positions[position_id]
        remaining = self._count_by_underlying[key] - 1
        if remaining:
            self._count_by_underlying[key] = remaining
            self._by_underlying[key] -= position_delta
        else:  # forget the underlying, and with it any floating-point residue
            del self._count_by_underlying[key]
            del self._by_underlying[key]

    def _position(self, position_id: str) -> tuple[str, float]:
        try:
            return self._positions[_require_position_id(position_id)]
        except KeyError:
            raise KeyError(f"no open position {position_id!r}") from None

    # RiskCalculator
    def portfolio_delta(self) -> float:
        return math.fsum(self._by_underlying.values())

    def symbol_delta(self, symbol: str) -> float:
        """The delta of every position on this underlying (a stock's symbol, or an option's underlying)."""
        return self._by_underlying.get(require_text("underlying", symbol, optional=False), 0.0)

    def symbol_deltas(self) -> Mapping[str, float]:
        return dict(self._by_underlying)

    def open_positions(self) -> int:
        return len(self._positions)

    def __contains__(self, position_id: object) -> bool:
        return position_id in self._positions


def _require_position_id(position_id: object) -> str:
    if not isinstance(position_id, str) or not position_id:
        raise ValueError(f"position_id must be a non-empty string, got {position_id!r}")
    return position_id


@dataclass(frozen=True, slots=True)
class PortfolioLimits:
    """The book's limits. Deltas are absolute bounds (a long and a short book are alike)."""

    max_portfolio_delta: float = 50.0
    max_symbol_delta: float = 20.0
    max_open_positions: int = 10
    warning_utilization: float = 0.8

    def __post_init__(self) -> None:
        for name in ("max_portfolio_delta", "max_symbol_delta"):
            value = getattr(self, name)
            if _require_finite(name, value) <= 0:
                raise ValueError(f"{name} must be positive, got {value!r}")
        _require_count("max_open_positions", self.max_open_positions)
        w = self.warning_utilization
        if isinstance(w, bool) or not isinstance(w, int | float) or not 0.0 < w < 1.0:
            raise ValueError(f"warning_utilization must be a fraction strictly between 0 and 1, got {w!r}")


@dataclass(frozen=True, slots=True)
class LimitWarning:
    """A limit whose utilisation reached the warning threshold (``symbol`` for symbol_delta)."""

    limit_type: LimitType
    symbol: str | None
    current_value: float
    limit_value: float

    @property
    def utilization(self) -> float:
        return self.current_value / self.limit_value


class PortfolioLimitsChecker:
    """Decides whether a new position fits the book's limits, and logs the decision.

    ``name`` (the book or desk) is every event's ``source``.
    """

    def __init__(
        self,
        risk_calculator: RiskCalculator,
        limits: PortfolioLimits | None = None,
        event_logger: EventSink | None = None,
        *,
        clock: Clock = utc_now,
        name: str = "default",
    ) -> None:
        if not isinstance(risk_calculator, RiskCalculator):
            raise ValueError(
                "risk_calculator must provide portfolio_delta(), symbol_delta(underlying), symbol_deltas() and "
                f"open_positions() (a RiskCalculator), got {risk_calculator!r}"
            )
        if limits is not None and not isinstance(limits, PortfolioLimits):
            raise ValueError(f"limits must be a PortfolioLimits or None, got {limits!r}")
        require_collaborators(event_logger, clock)
        self.risk_calculator = risk_calculator
        self.limits = limits if limits is not None else PortfolioLimits()
        self.event_logger = event_logger
        self.clock = clock
        self.name = require_text("name", name, optional=False)

    def check_entry(
        self,
        symbol: str,
        delta: float,
        *,
        quantity: int = 1,
        execution_id: str | None = None,
        contract: OptionContract | None = None,
        market: MarketSnapshot | None = None,
    ) -> tuple[bool, str | None]:
        """``(True, None)`` if the entry fits every limit, else ``(False, reason)``; logs either way.

        ``symbol`` is what is traded (a stock, or an option contract). ``contract``, when given, is the
        option entered and goes on the logged event; its ``underlying`` is what the delta counts against
        for the per-underlying limit (else ``symbol`` is). ``market``, when given, is the market at the
        check, logged too. A trade that reduces an existing breach of a delta limit is allowed (module docs).
        """
        if not isinstance(symbol, str) or not symbol:
            raise ValueError(f"symbol must be a non-empty string, got {symbol!r}")
        if not is_number(delta):
            raise ValueError(f"delta for {symbol} must be a finite number, got {delta!r}")
        _require_count("quantity", quantity)
        require_text("execution_id", execution_id)
        contract = require_instance("contract", contract, OptionContract) or NO_CONTRACT
        market = require_instance("market", market, MarketSnapshot) or NO_MARKET
        key = contract.underlying if contract.underlying is not None else symbol
        calc = self.risk_calculator
        limits = self.limits
        added = delta * quantity
        current_portfolio = calc.portfolio_delta()
        current_symbol = calc.symbol_delta(key)
        projected_portfolio = current_portfolio + added
        projected_symbol = current_symbol + added
        projected_open = calc.open_positions() + 1
        measures = (
            (LimitType.PORTFOLIO_DELTA, current_portfolio, projected_portfolio, limits.max_portfolio_delta),
            (LimitType.SYMBOL_DELTA, current_symbol, projected_symbol, limits.max_symbol_delta),
            (LimitType.OPEN_POSITIONS, None, float(projected_open), float(limits.max_open_positions)),
        )
        reductions: list[dict[str, object]] = []
        for limit_type, before, after, limit in measures:
            value = abs(after)
            if value <= limit:
                continue
            if before is not None and _reduces_breach(before, after):
                reduction: dict[str, object] = {"limit_type": limit_type.value}
                if limit_type is LimitType.SYMBOL_DELTA:
                    reduction["underlying"] = key
                reduction.update(before=abs(before), after=value, limit=limit)
                reductions.append(reduction)
                continue
            reason = _rejection_reason(limit_type, symbol, key, value, limit)
            self._log(
                RiskEventType.PL_REJECTION,
                limit_type,
                symbol,
                execution_id,
                value,
                limit,
                allowed=False,
                reason=reason,
                metadata=json.dumps(
                    {
                        "delta": delta,
                        "quantity": quantity,
                        "projected_portfolio_delta": projected_portfolio,
                        "projected_symbol_delta": projected_symbol,
                        "projected_open_positions": projected_open,
                    }
                )
                if self.event_logger is not None
                else None,
                contract=contract,
                market=market,
            )
            return False, reason
        binding = max(measures, key=lambda m: abs(m[2]) / m[3])  # max() keeps the first on ties
        self._log(
            RiskEventType.PL_CHECK,
            binding[0],
            symbol,
            execution_id,
            abs(binding[2]),
            binding[3],
            allowed=True,
            metadata=json.dumps({"reduces_breach": reductions})
            if reductions and self.event_logger is not None
            else None,
            contract=contract,
            market=market,
        )
        return True, None

    async def check_entry_allowed(
        self,
        symbol: str,
        delta: float,
        *,
        quantity: int = 1,
        execution_id: str | None = None,
        contract: OptionContract | None = None,
        market: MarketSnapshot | None = None,
    ) -> tuple[bool, str | None]:
        """Async form of :meth:`check_entry` (same rules, same events), for the entry workflow."""
        return self.check_entry(
            symbol, delta, quantity=quantity, execution_id=execution_id, contract=contract, market=market
        )

    def check_portfolio_health(self) -> list[LimitWarning]:
        """Warnings for every limit at or above ``warning_utilization``; each logged as PL_WARNING."""
        calc = self.risk_calculator
        limits = self.limits
        candidates: list[LimitWarning] = [
            LimitWarning(LimitType.PORTFOLIO_DELTA, None, abs(calc.portfolio_delta()), limits.max_portfolio_delta)
        ]
        candidates.extend(
            LimitWarning(LimitType.SYMBOL_DELTA, underlying, abs(value), limits.max_symbol_delta)
            for underlying, value in calc.symbol_deltas().items()
        )
        candidates.append(
            LimitWarning(LimitType.OPEN_POSITIONS, None, float(calc.open_positions()), float(limits.max_open_positions))
        )
        warnings = [w for w in candidates if w.utilization >= limits.warning_utilization]
        metadata = json.dumps({"threshold": limits.warning_utilization}) if self.event_logger is not None else None
        for w in warnings:
            self._log(
                RiskEventType.PL_WARNING,
                w.limit_type,
                w.symbol,
                None,
                w.current_value,
                w.limit_value,
                metadata=metadata,
                contract=NO_CONTRACT if w.symbol is None else OptionContract(underlying=w.symbol),
            )
        return warnings

    def _log(
        self,
        event_type: RiskEventType,
        limit_type: LimitType,
        symbol: str | None,
        execution_id: str | None,
        current_value: float,
        limit_value: float,
        *,
        allowed: bool | None = None,
        reason: str | None = None,
        metadata: str | None = None,
        contract: OptionContract = NO_CONTRACT,
        market: MarketSnapshot = NO_MARKET,
    ) -> None:
        sink = self.event_logger
        if sink is None:
            return
        sink.log(
            RiskEvent(
                event_type=event_type,
                component=Component.PORTFOLIO_LIMITS,
                timestamp=event_time(self.clock),
                source=self.name,
                execution_id=execution_id,
                symbol=symbol,
                limit_type=limit_type.value,
                current_value=current_value,
                limit_value=limit_value,
                allowed=allowed,
                rejection_reason=reason,
                metadata=metadata,
                underlying=contract.underlying,
                option_right=contract.right,
                strike=contract.strike,
                expiry=contract.expiry,
                option_delta=market.option_delta,
                underlying_price=market.underlying_price,
            )
        )


def _reduces_breach(before: float, after: float) -> bool:
    """True when ``after`` is a smaller breach on the same side: 60 -> 55, not 60 -> 61 or 60 -> -55."""
    return abs(after) < abs(before) and (after > 0) == (before > 0)


def _rejection_reason(limit_type: LimitType, symbol: str, underlying: str, value: float, limit: float) -> str:
    """A sentence for the blotter and the post-mortem: which limit, for what, by how much."""
    if limit_type is LimitType.OPEN_POSITIONS:
        return f"open_positions: entering {symbol} would make {value:.0f} open positions, over the limit of {limit:.0f}"
    if limit_type is LimitType.SYMBOL_DELTA:
        return f"symbol_delta: projected |delta| of {underlying} would be {value:.2f}, over the limit of {limit:.2f}"
    return f"portfolio_delta: entering {symbol} would make |portfolio delta| {value:.2f}, over the limit of {limit:.2f}"
