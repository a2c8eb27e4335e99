"""Argument checks the risk components share: every wrong-typed input is a ``ValueError`` naming it.

Trading code wraps a component call in ``except ValueError`` to refuse one bad order without stopping
its loop; a bare ``TypeError`` from deep inside (``'<' not supported between 'str' and 'float'``)
escapes that and does not say which argument was wrong. The components check their arguments up
front with these helpers, before anything changes or is logged.

The option-contract rules are the ones silver applies to the stored columns, enforced here where the
caller can still fix the call instead of finding a quarantined row the next day.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Final, TypeGuard

from risk_runtime.events import OptionRight

__all__ = ["is_number", "require_collaborators", "require_contract", "require_market", "require_text"]


_RIGHTS: Final = frozenset(r.value for r in OptionRight)


def is_number(value: object) -> TypeGuard[int | float]:
    """A finite int or float, not a bool (``True`` is an int to Python, never a price to a desk)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def require_text(name: str, value: object, *, optional: bool = True) -> str | None:
    """``value`` if it is a non-empty string (or None, when optional); else a ``ValueError`` naming ``name``."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string{' or None' if optional else ''}, got {value!r}")
    return value


def require_contract(
    underlying: object, option_right: object, strike: object, expiry: object
) -> tuple[str | None, str | None, float | None, date | None]:
    """An option contract as components log it (each part optional), or a ``ValueError`` naming the part.

    The rules silver applies to the stored columns, enforced where the caller can still fix the call:
    ``option_right`` is ``"C"``/``"P"`` (or an :class:`OptionRight`), ``strike`` a positive finite
    number, ``expiry`` a ``date`` -- a ``datetime`` is refused, since storing it would drop its time.
    """
    if option_right is not None and (not isinstance(option_right, str) or option_right not in _RIGHTS):
        raise ValueError(f"option_right must be 'C', 'P' or None, got {option_right!r}")
    if strike is not None and not (is_number(strike) and strike > 0):
        raise ValueError(f"strike must be a positive, finite number or None, got {strike!r}")
    if expiry is not None and (isinstance(expiry, datetime) or not isinstance(expiry, date)):
        raise ValueError(f"expiry must be a date (not a datetime) or None, got {expiry!r}")
    return (
        require_text("underlying", underlying),
        None if option_right is None else str(option_right),
        None if strike is None else float(strike),
        expiry,
    )


def require_market(option_delta: object, underlying_price: object) -> None:
    """``ValueError`` unless ``option_delta`` is in [-1, 1] and ``underlying_price`` positive (each optional)."""
    if option_delta is not None and not (is_number(option_delta) and -1.0 <= option_delta <= 1.0):
        raise ValueError(f"option_delta must be a number in [-1, 1] or None, got {option_delta!r}")
    if underlying_price is not None and not (is_number(underlying_price) and underlying_price > 0):
        raise ValueError(f"underlying_price must be a positive, finite number or None, got {underlying_price!r}")


def require_collaborators(event_logger: object, clock: object) -> None:
    """What a component calls, ``event_logger.log(event)`` and ``clock()``: refused up front, not on first use."""
    if event_logger is not None and not callable(getattr(event_logger, "log", None)):
        raise ValueError(f"event_logger must have a log(event) method (an EventSink) or be None, got {event_logger!r}")
    if not callable(clock):
        raise ValueError(f"clock must be a callable returning an aware datetime, got {clock!r}")
