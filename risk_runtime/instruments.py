"""The option contract and the market at an event: two value objects, declared beside the event model.

Event schema version 2 put an option's contract (underlying, right, strike, expiry) and the market when an
event happened (the option's delta, the underlying's price) on trailing-stop and limit events. Before these
objects, those six names were spelled as keyword lists in every component signature, in a private context
class, in silver's upcast, in three gold lists and in the simulator. Now:

* :class:`OptionContract` is what a position *is*: fixed for a stop's life, built once when the stop is added
  or the entry is checked, and put on every event about it;
* :class:`MarketSnapshot` is what the market *was* at one call: it goes only on the event that call logs.

Each declares its event/bronze column names once, as ``COLUMNS``, derived from its fields (``right`` is
stored as ``option_right``; every other field under its own name). ``COLUMNS`` is a named tuple: iterate it
for the list (``list(OptionContract.COLUMNS)``), or name one column by its field
(``OptionContract.COLUMNS.right == "option_right"``). Silver's upcast, gold and the simulator take their
columns from here; the bronze schema in :mod:`risk_runtime.events` types them (a test keeps the two equal).

Every field is optional (None), as the components accepted them before these objects existed: a desk may
know the underlying and right of what it trades but not yet the strike, a portfolio warning names only an
underlying, and silver's rules treat each column as nullable. What is given is validated at construction,
with the rules silver applies to the stored columns, so a bad value is a ``ValueError`` naming the field
where the caller can still fix the call, never a quarantined row the next day.

Frozen and slotted: a contract is a safe dict key (the simulator prices by it) and costs no per-event work.
The components spread its attributes into ``RiskEvent(...)`` directly, so logging allocates nothing for it.
"""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any, ClassVar, Final

from risk_runtime.events import OptionRight
from risk_runtime.inputs import is_number

__all__ = ["NO_CONTRACT", "NO_MARKET", "OPTION_DELTA_RANGE", "MarketSnapshot", "OptionContract"]

OPTION_DELTA_RANGE: Final = (-1.0, 1.0)
"""An option's delta per share: a call's in [0, 1], a put's in [-1, 0]."""

_RIGHTS: Final = frozenset(r.value for r in OptionRight)


def _columns(cls: type, renamed: dict[str, str]) -> Any:
    """``cls``'s column names in field order, as a named tuple whose attribute names are the fields."""
    names = [f.name for f in fields(cls)]
    unknown = set(renamed) - set(names)
    if unknown:  # not assert: must hold under -O too
        raise AssertionError(f"{cls.__name__} has no fields {sorted(unknown)} to rename")
    return namedtuple(f"{cls.__name__}Columns", names)(*(renamed.get(n, n) for n in names))


def _refuse(cls: str, name: str, rule: str, value: object) -> ValueError:
    return ValueError(f"{cls}.{name} must be {rule} or None, got {value!r}")


@dataclass(frozen=True, slots=True)
class OptionContract:
    """An option contract: ``OptionContract("SPY", "C", 520.0, date(2026, 3, 20))``.

    ``underlying`` a non-empty ticker; ``right`` an :class:`~risk_runtime.events.OptionRight` or ``"C"``/``"P"``
    (kept as the plain string, which encodes ~30x faster than the enum member); ``strike`` a positive, finite
    number (kept as a float); ``expiry`` a ``date`` of the exchange's calendar -- a ``datetime`` is refused,
    since storing it would drop its time. Each part may be None (module docstring).
    """

    underlying: str | None = None
    right: str | None = None
    strike: float | None = None
    expiry: date | None = None

    COLUMNS: ClassVar[Any]
    """The event/bronze column of each field, in field order (a named tuple keyed by field name)."""

    def __post_init__(self) -> None:
        underlying, right, strike, expiry = self.underlying, self.right, self.strike, self.expiry
        if underlying is not None and (not isinstance(underlying, str) or not underlying):
            raise _refuse("OptionContract", "underlying", "a non-empty string", underlying)
        if right is not None:
            if not isinstance(right, str) or right not in _RIGHTS:
                raise _refuse("OptionContract", "right", "'C', 'P' or an OptionRight", right)
            object.__setattr__(self, "right", OptionRight(right).value)
        if strike is not None:
            if not (is_number(strike) and strike > 0):
                raise _refuse("OptionContract", "strike", "a positive, finite number", strike)
            object.__setattr__(self, "strike", float(strike))
        if expiry is not None and (isinstance(expiry, datetime) or not isinstance(expiry, date)):
            raise _refuse("OptionContract", "expiry", "a date (not a datetime)", expiry)


@dataclass(frozen=True, slots=True)
class MarketSnapshot:
    """The market at one event: ``MarketSnapshot(option_delta=0.52, underlying_price=519.8)``.

    ``option_delta`` is the option's own delta, finite and in [-1, 1] (not the desk's limit unit that
    :meth:`~risk_runtime.portfolio_limits.PortfolioLimitsChecker.check_entry` takes as ``delta``);
    ``underlying_price`` positive and finite. Either may be None; numbers are kept as floats.
    """

    option_delta: float | None = None
    underlying_price: float | None = None

    COLUMNS: ClassVar[Any]
    """The event/bronze column of each field, in field order (a named tuple keyed by field name)."""

    def __post_init__(self) -> None:
        delta, price = self.option_delta, self.underlying_price
        if delta is not None:
            low, high = OPTION_DELTA_RANGE
            if not (is_number(delta) and low <= delta <= high):
                raise _refuse("MarketSnapshot", "option_delta", f"a number in [{low:g}, {high:g}]", delta)
            object.__setattr__(self, "option_delta", float(delta))
        if price is not None:
            if not (is_number(price) and price > 0):
                raise _refuse("MarketSnapshot", "underlying_price", "a positive, finite number", price)
            object.__setattr__(self, "underlying_price", float(price))


OptionContract.COLUMNS = _columns(OptionContract, {"right": "option_right"})
MarketSnapshot.COLUMNS = _columns(MarketSnapshot, {})

NO_CONTRACT: Final = OptionContract()
"""An event about no option contract (every contract column null): what components log without ``contract=``."""
NO_MARKET: Final = MarketSnapshot()
"""An event without market values: what components log without ``market=``."""
