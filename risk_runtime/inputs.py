"""Argument checks the risk components share: every wrong-typed input is a ``ValueError`` naming it.

Trading code wraps a component call in ``except ValueError`` to refuse one bad order without stopping
its loop; a bare ``TypeError`` from deep inside (``'<' not supported between 'str' and 'float'``)
escapes that and does not say which argument was wrong. The components check their arguments up
front with these helpers, before anything changes or is logged.

The option contract and the market at an event validate themselves, at construction
(:mod:`risk_runtime.instruments`); a component only checks that it was given one.
"""

from __future__ import annotations

import math
from typing import TypeGuard, TypeVar

__all__ = ["is_number", "require_collaborators", "require_instance", "require_text"]

_T = TypeVar("_T")


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


def require_instance(name: str, value: object, kind: type[_T]) -> _T | None:
    """``value`` if it is a ``kind`` (or None); else a ``ValueError`` naming ``name`` and the type it wants."""
    if value is not None and not isinstance(value, kind):
        raise ValueError(f"{name} must be a {kind.__name__} or None, got {value!r}")
    return value


def require_collaborators(event_logger: object, clock: object) -> None:
    """What a component calls, ``event_logger.log(event)`` and ``clock()``: refused up front, not on first use."""
    if event_logger is not None and not callable(getattr(event_logger, "log", None)):
        raise ValueError(f"event_logger must have a log(event) method (an EventSink) or be None, got {event_logger!r}")
    if not callable(clock):
        raise ValueError(f"clock must be a callable returning an aware datetime, got {clock!r}")
