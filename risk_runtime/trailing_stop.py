"""Trailing stops on long option-premium positions, with every stop decision recorded.

A stop protects profit, not entry: it stays dormant until the premium has gained
``activation_pct`` over entry; once active it never sits below entry, trails ``trailing_pct``
below the highest premium seen, and only ever moves up. The first premium at or below the stop
triggers it.

The rule, once active::

    stop = max(entry, highest * (1 - trailing_pct))

A desk activates a stop to stop a winner turning into a loser: from activation on, the position
is at least break-even. When the trail is wider than the gain that activated it
(``trailing_pct > activation_pct``, e.g. activation 1%, trail 5%: an update to 103 on an entry of
100 gives a trail of 97.85), the stop sits *at entry* -- ``TS_ACTIVATE`` with ``stop_premium =
entry`` -- and starts trailing once ``highest * (1 - trailing_pct)`` passes entry. So a triggered
stop's ``profit_locked = stop - entry`` is never negative (the exit premium can still gap below
the stop: that is ``realized_pnl``). With the defaults (2% / 1.5%) the floor never binds: entry
100, update to 103 activates at 103 * 0.985 = 101.455.

Per update of one position (:meth:`TrailingStop.update`):

1. the high-water mark rises to the premium if it is a new high;
2. dormant and ``premium >= entry * (1 + activation_pct)`` -> activate with
   ``stop = max(entry, highest * (1 - trailing_pct))`` (``TS_ACTIVATE``);
3. active and ``premium <= stop`` -> trigger (``TS_TRIGGER``), the stop stops tracking;
4. active and a new high lifts ``highest * (1 - trailing_pct)`` above the stop -> ratchet
   (``TS_UPDATE``). A tick that moves nothing logs nothing: the table records decisions,
   not prices.

Every wrong-typed or nonsensical argument is a ``ValueError`` naming the parameter, raised before
anything changes or is logged.

Every ``TS_*`` event carries ``execution_id``, ``symbol``, the entry/current/highest premiums,
the stop premium (null while dormant) and ``action`` (ADD/ACTIVATE/UPDATE/TRIGGER/REMOVE).
``TS_ADD`` also carries the stop's parameters as metadata
(``{"activation_pct": .., "trailing_pct": ..}``), so the table alone explains each stop.

Option contract (schema version 2): a stop added with ``contract=OptionContract(...)`` holds it and
puts it on every event of that stop. ``market=MarketSnapshot(...)`` (the option's delta, the
underlying's price) describes one moment, so it goes only on the event of the call that supplied it
(the add, an update, a removal); its columns are null where the caller did not know the market.
Both are built once by the caller (:mod:`risk_runtime.instruments`) and spread into each event
without allocating. The design guide's calls (``add_trailing_stop("abc123", entry_premium=100.0)``,
``await update_stops({...})``) pass neither and log the contract and market columns as null.

The manager is meant for one asyncio task (the position-monitoring loop); it takes no locks.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final

from risk_runtime.clock import Clock, event_time
from risk_runtime.events import Component, RiskEvent, RiskEventType, utc_now
from risk_runtime.inputs import is_number, require_collaborators, require_instance, require_text
from risk_runtime.instruments import NO_CONTRACT, NO_MARKET, MarketSnapshot, OptionContract
from risk_runtime.sink import EventSink

__all__ = [
    "TrailingStop",
    "TrailingStopAction",
    "TrailingStopConfig",
    "TrailingStopManager",
    "TriggeredStop",
]


class TrailingStopAction(StrEnum):
    """What a stop did; stored in the event's ``action`` column."""

    ADD = "ADD"
    ACTIVATE = "ACTIVATE"
    UPDATE = "UPDATE"
    TRIGGER = "TRIGGER"
    REMOVE = "REMOVE"


_EVENT_FOR: Final[dict[TrailingStopAction, RiskEventType]] = {
    TrailingStopAction.ADD: RiskEventType.TS_ADD,
    TrailingStopAction.ACTIVATE: RiskEventType.TS_ACTIVATE,
    TrailingStopAction.UPDATE: RiskEventType.TS_UPDATE,
    TrailingStopAction.TRIGGER: RiskEventType.TS_TRIGGER,
    TrailingStopAction.REMOVE: RiskEventType.TS_REMOVE,
}


DEFAULT_ACTIVATION_PCT: Final = 0.02
DEFAULT_TRAILING_PCT: Final = 0.015


def _require_fraction(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be a fraction strictly between 0 and 1 (0.02 = 2%), got {value!r}")
    return float(value)


def _require_premium(name: str, value: object) -> float:
    if not (is_number(value) and value > 0.0):
        raise ValueError(f"{name} must be a positive, finite premium, got {value!r}")
    return float(value)


def _require_execution_id(execution_id: object) -> str:
    if not isinstance(execution_id, str) or not execution_id:
        raise ValueError(f"execution_id must be a non-empty string, got {execution_id!r}")
    return execution_id


@dataclass(frozen=True, slots=True)
class TrailingStopConfig:
    """Default stop parameters, as fractions: 0.02 activates after a 2% gain over entry.

    With the defaults, entry 100.0 activates at 102.0; an update to 103.0 activates the stop
    at 103.0 * 0.985 = 101.455. With ``activation_pct=0.01, trailing_pct=0.05`` the same update
    activates the stop at entry, 100.0 (the trail, 97.85, would be a loss), and it starts trailing
    once the high passes 100 / 0.95 = 105.26.
    """

    activation_pct: float = DEFAULT_ACTIVATION_PCT
    trailing_pct: float = DEFAULT_TRAILING_PCT

    def __post_init__(self) -> None:
        _require_fraction("activation_pct", self.activation_pct)
        _require_fraction("trailing_pct", self.trailing_pct)


@dataclass(frozen=True, slots=True)
class TriggeredStop:
    """A stop that fired: the position should be closed near ``exit_premium``."""

    execution_id: str
    symbol: str | None
    entry_premium: float
    highest_premium: float
    stop_premium: float
    exit_premium: float
    triggered_at: datetime

    @property
    def profit_locked(self) -> float:
        """Stop minus entry: the profit the stop protected (per unit of premium); never negative."""
        return self.stop_premium - self.entry_premium


class TrailingStop:
    """The trailing stop of one long premium position (see the module docstring for the rules).

    Created by :class:`TrailingStopManager`, which logs ``TS_ADD``; the stop itself logs
    ACTIVATE, UPDATE and TRIGGER from :meth:`update`. Once triggered it accepts no more updates.
    """

    __slots__ = (
        "_clock",
        "_keep",
        "_sink",
        "_source",
        "activation_pct",
        "activation_premium",
        "contract",
        "current_premium",
        "entry_premium",
        "execution_id",
        "highest_premium",
        "stop_premium",
        "symbol",
        "trailing_pct",
        "triggered_at",
    )

    def __init__(
        self,
        execution_id: str,
        entry_premium: float,
        *,
        symbol: str | None = None,
        activation_pct: float = DEFAULT_ACTIVATION_PCT,
        trailing_pct: float = DEFAULT_TRAILING_PCT,
        event_logger: EventSink | None = None,
        clock: Clock = utc_now,
        source: str = "default",
        contract: OptionContract | None = None,
    ) -> None:
        self.execution_id = _require_execution_id(execution_id)
        self.symbol = require_text("symbol", symbol)
        # The option this stop protects, put on every event it logs; None when the caller named none.
        self.contract = require_instance("contract", contract, OptionContract)
        require_collaborators(event_logger, clock)
        self.entry_premium = _require_premium("entry_premium", entry_premium)
        self.activation_pct = _require_fraction("activation_pct", activation_pct)
        self.trailing_pct = _require_fraction("trailing_pct", trailing_pct)
        self.activation_premium = self.entry_premium * (1.0 + self.activation_pct)
        self._keep = 1.0 - self.trailing_pct
        self.highest_premium = self.entry_premium
        self.current_premium = self.entry_premium
        self.stop_premium: float | None = None
        self.triggered_at: datetime | None = None
        self._sink = event_logger
        self._clock = clock
        self._source = require_text("source", source, optional=False)

    @property
    def active(self) -> bool:
        return self.stop_premium is not None

    @property
    def triggered(self) -> bool:
        return self.triggered_at is not None

    def update(self, premium: float, *, market: MarketSnapshot | None = None) -> TrailingStopAction | None:
        """Apply one premium observation; the action taken (logged), or None if nothing moved.

        ``market``, when given, is the market at this observation and goes on the event it logs (if any).
        """
        if self.triggered_at is not None:
            raise RuntimeError(f"trailing stop {self.execution_id!r} already triggered; it takes no more updates")
        if not (is_number(premium) and premium > 0.0):
            raise ValueError(f"premium for {self.execution_id!r} must be a positive, finite number, got {premium!r}")
        if market is None:
            market = NO_MARKET
        elif not isinstance(market, MarketSnapshot):
            require_instance("market", market, MarketSnapshot)
        self.current_premium = premium
        stop = self.stop_premium
        if stop is None:
            if premium > self.highest_premium:
                self.highest_premium = premium
            if premium >= self.activation_premium:
                self.stop_premium = max(self.entry_premium, self.highest_premium * self._keep)
                self._log(TrailingStopAction.ACTIVATE, market=market)
                return TrailingStopAction.ACTIVATE
            return None
        if premium <= stop:
            self.triggered_at = self._clock()
            self._log(TrailingStopAction.TRIGGER, self.triggered_at, market=market)
            return TrailingStopAction.TRIGGER
        if premium > self.highest_premium:
            self.highest_premium = premium
            candidate = premium * self._keep
            if candidate > stop:
                self.stop_premium = candidate
                self._log(TrailingStopAction.UPDATE, market=market)
                return TrailingStopAction.UPDATE
        return None

    def _log(
        self,
        action: TrailingStopAction,
        now: datetime | None = None,
        metadata: str | None = None,
        *,
        market: MarketSnapshot = NO_MARKET,
    ) -> None:
        sink = self._sink
        if sink is None:
            return
        contract = self.contract or NO_CONTRACT
        sink.log(
            RiskEvent(
                event_type=_EVENT_FOR[action],
                component=Component.TRAILING_STOP,
                timestamp=now if now is not None else event_time(self._clock),
                source=self._source,
                execution_id=self.execution_id,
                symbol=self.symbol,
                entry_premium=self.entry_premium,
                current_premium=self.current_premium,
                highest_premium=self.highest_premium,
                stop_premium=self.stop_premium,
                action=action.value,
                metadata=metadata,
                underlying=contract.underlying,
                option_right=contract.right,
                strike=contract.strike,
                expiry=contract.expiry,
                option_delta=market.option_delta,
                underlying_price=market.underlying_price,
            )
        )

    def _triggered(self) -> TriggeredStop:
        assert self.triggered_at is not None and self.stop_premium is not None
        return TriggeredStop(
            execution_id=self.execution_id,
            symbol=self.symbol,
            entry_premium=self.entry_premium,
            highest_premium=self.highest_premium,
            stop_premium=self.stop_premium,
            exit_premium=self.current_premium,
            triggered_at=self.triggered_at,
        )

    def __repr__(self) -> str:
        return (
            f"TrailingStop({self.execution_id!r}, symbol={self.symbol!r}, entry={self.entry_premium}, "
            f"highest={self.highest_premium}, stop={self.stop_premium})"
        )


class TrailingStopManager:
    """The trailing stops of every open position, keyed by execution id.

    >>> manager = TrailingStopManager()
    >>> _ = manager.add_trailing_stop("abc123", entry_premium=100.0)
    >>> manager.update("abc123", 103.0) is None   # activates; nothing triggered
    True

    A triggered stop is returned (as a :class:`TriggeredStop`) and forgotten: the position is
    being closed, and the monitoring loop should not keep feeding it prices.
    """

    def __init__(
        self,
        config: TrailingStopConfig | None = None,
        event_logger: EventSink | None = None,
        *,
        clock: Clock = utc_now,
        name: str = "default",
    ) -> None:
        if config is not None and not isinstance(config, TrailingStopConfig):
            raise ValueError(f"config must be a TrailingStopConfig or None, got {config!r}")
        require_collaborators(event_logger, clock)
        self.config = config if config is not None else TrailingStopConfig()
        self.event_logger = event_logger
        self.clock = clock
        self.name = require_text("name", name, optional=False)
        self._stops: dict[str, TrailingStop] = {}
        self._add_metadata: dict[tuple[float, float], str] = {}  # JSON once per parameter pair, not per stop

    # ------------------------------------------------------------------ lifecycle
    def add_trailing_stop(
        self,
        execution_id: str,
        entry_premium: float,
        *,
        symbol: str | None = None,
        activation_pct: float | None = None,
        trailing_pct: float | None = None,
        contract: OptionContract | None = None,
        market: MarketSnapshot | None = None,
    ) -> TrailingStop:
        """Start tracking a new position (``TS_ADD``); per-stop pcts override the config.

        ``contract`` (the option the position holds) is kept by the stop and logged on every event of
        it; ``market`` (the market at entry) goes on the ``TS_ADD`` only. Both optional: without them
        those columns are null, as in the design guide's ``add_trailing_stop("abc123", entry_premium=100.0)``.
        """
        if _require_execution_id(execution_id) in self._stops:
            raise ValueError(f"a trailing stop for execution_id {execution_id!r} already exists")
        entry_market = require_instance("market", market, MarketSnapshot) or NO_MARKET
        activation = self.config.activation_pct if activation_pct is None else activation_pct
        trailing = self.config.trailing_pct if trailing_pct is None else trailing_pct
        stop = TrailingStop(
            execution_id,
            entry_premium,
            symbol=symbol,
            activation_pct=activation,
            trailing_pct=trailing,
            event_logger=self.event_logger,
            clock=self.clock,
            source=self.name,
            contract=contract,
        )
        self._stops[execution_id] = stop
        if self.event_logger is not None:
            key = (stop.activation_pct, stop.trailing_pct)
            metadata = self._add_metadata.get(key)
            if metadata is None:
                metadata = json.dumps({"activation_pct": key[0], "trailing_pct": key[1]})
                self._add_metadata[key] = metadata
            stop._log(TrailingStopAction.ADD, metadata=metadata, market=entry_market)
        return stop

    def remove_stop(self, execution_id: str, *, market: MarketSnapshot | None = None) -> TrailingStop:
        """Stop tracking a position closed for another reason (``TS_REMOVE``); returns the stop.

        ``market`` (optional) is the market at the removal, logged on the ``TS_REMOVE``.
        """
        at_removal = require_instance("market", market, MarketSnapshot) or NO_MARKET
        stop = self._stops.pop(_require_execution_id(execution_id), None)
        if stop is None:
            raise KeyError(f"no trailing stop for execution_id {execution_id!r}")
        stop._log(TrailingStopAction.REMOVE, market=at_removal)
        return stop

    # ------------------------------------------------------------------ prices
    def update(
        self,
        execution_id: str,
        premium: float,
        *,
        market: MarketSnapshot | None = None,
    ) -> TriggeredStop | None:
        """Feed one premium to one stop; the :class:`TriggeredStop` if it fired, else None.

        ``market`` (optional: the market as the premium moved) goes on the event the update logs, if any.
        """
        stop = self._stops.get(_require_execution_id(execution_id))
        if stop is None:
            raise KeyError(f"no trailing stop for execution_id {execution_id!r}")
        if stop.update(premium, market=market) is TrailingStopAction.TRIGGER:
            del self._stops[execution_id]
            return stop._triggered()
        return None

    def update_many(self, premiums: Mapping[str, float]) -> list[TriggeredStop]:
        """Feed a batch of premiums; the stops that fired, in the mapping's order.

        The whole batch is validated first (every id known, every premium positive and
        finite), so a bad entry changes no stop and logs nothing.
        """
        if not isinstance(premiums, Mapping):
            raise ValueError(f"premiums must be a mapping of execution_id to premium, got {premiums!r}")
        for execution_id, premium in premiums.items():
            if _require_execution_id(execution_id) not in self._stops:
                raise KeyError(f"no trailing stop for execution_id {execution_id!r}")
            if not (is_number(premium) and premium > 0.0):
                raise ValueError(f"premium for {execution_id!r} must be a positive, finite number, got {premium!r}")
        triggered: list[TriggeredStop] = []
        for execution_id, premium in premiums.items():
            fired = self.update(execution_id, premium)
            if fired is not None:
                triggered.append(fired)
        return triggered

    async def update_stops(self, premiums: Mapping[str, float]) -> list[TriggeredStop]:
        """Async form of :meth:`update_many`, for the monitoring workflow's event loop."""
        return self.update_many(premiums)

    # ------------------------------------------------------------------ inspection
    def get(self, execution_id: str) -> TrailingStop | None:
        return self._stops.get(_require_execution_id(execution_id))

    def __getitem__(self, execution_id: str) -> TrailingStop:
        try:
            return self._stops[_require_execution_id(execution_id)]
        except KeyError:
            raise KeyError(f"no trailing stop for execution_id {execution_id!r}") from None

    def __contains__(self, execution_id: object) -> bool:
        return isinstance(execution_id, str) and execution_id in self._stops

    def __len__(self) -> int:
        return len(self._stops)

    def __iter__(self) -> Iterator[TrailingStop]:
        return iter(list(self._stops.values()))
