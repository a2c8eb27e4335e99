"""A circuit breaker for order routing whose every decision is a risk event.

Shape (after pybreaker): the breaker owns the counters; each state is a small object that
knows the transitions out of itself, and the breaker only delegates to the current one. Open ->
half-open is *lazy*: there are no timers or threads, the first check after the reset timeout
(reading :attr:`TradingCircuitBreaker.state`, :meth:`~TradingCircuitBreaker.is_trading_allowed`,
``record_failure``/``record_success``) moves the breaker, so a breaker costs nothing while idle
and behaves identically under a simulated clock.

The rules:

* CLOSED: each :meth:`~TradingCircuitBreaker.record_failure` increments the consecutive-failure
  count (``CB_FAILURE``); at ``failure_threshold`` the breaker opens. A success clears the count;
  if the count was not zero, that is recorded as ``CB_SUCCESS`` with ``failure_count=0`` and
  metadata ``{"failures_cleared": n}`` -- so the failure count can be rebuilt from the events.
* OPEN: trading is refused. A failure reported while open (an order already in flight) is
  counted and logged but does not extend the timeout; a success is ignored. Once
  ``reset_timeout`` seconds have passed since opening, the next check moves to HALF_OPEN.
* HALF_OPEN: trial orders are allowed. Each success is logged (``CB_SUCCESS`` with metadata
  ``{"half_open_successes": n}``); ``half_open_success_threshold`` of them close the breaker
  (count reset to 0). Any failure re-opens it, with a fresh timeout.
* :meth:`~TradingCircuitBreaker.reset` is the operator's manual reset: ``CB_MANUAL_RESET``
  (``failure_count`` = failures forgiven), then the ``CB_STATE_CHANGE`` to CLOSED if needed.

Every transition is a ``CB_STATE_CHANGE`` carrying ``old_state``, ``new_state`` and the failure
count after the transition (kept through OPEN and HALF_OPEN, 0 once CLOSED).

Persistence is event-sourced: the events *are* the state. :meth:`~TradingCircuitBreaker.save_state`
waits until the logger has made them durable; :meth:`~TradingCircuitBreaker.load_state` reads this
breaker's events (``component == "circuit_breaker"``, ``source == name``) back from bronze and from
the local spool's not-yet-committed segments, and folds them. There is no separate state file that
could disagree with the audit trail.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Final

from risk_runtime.clock import Clock, Instant, as_datetime, instant_of, reader, span
from risk_runtime.events import Component, RiskEvent, RiskEventType, utc_now
from risk_runtime.inputs import require_collaborators
from risk_runtime.sink import EventSink

__all__ = [
    "BreakerSnapshot",
    "CircuitBreakerConfig",
    "CircuitBreakerState",
    "TradingCircuitBreaker",
    "fold_breaker_events",
]


class CircuitBreakerState(StrEnum):
    """The breaker's state; the values are what bronze stores in ``old_state``/``new_state``."""

    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"


@dataclass(frozen=True, slots=True)
class CircuitBreakerConfig:
    """How eagerly a breaker opens and how cautiously it closes again.

    ``reset_timeout`` is in **seconds** (a float, as in pybreaker): how long the breaker stays
    OPEN before the next check lets trial orders through. 0 means "half-open at the next check".
    """

    failure_threshold: int = 5
    reset_timeout: float = 60.0
    half_open_success_threshold: int = 2

    def __post_init__(self) -> None:
        _require_positive_int("failure_threshold", self.failure_threshold)
        _require_positive_int("half_open_success_threshold", self.half_open_success_threshold)
        timeout = self.reset_timeout
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not math.isfinite(timeout):
            raise ValueError(f"reset_timeout must be a finite number of seconds, got {timeout!r}")
        if timeout < 0:
            raise ValueError(f"reset_timeout must not be negative, got {timeout!r} seconds")


def _require_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    """A breaker's state at one moment, as saved or as rebuilt from its events.

    ``opened_at`` is when the breaker last opened (kept while HALF_OPEN, None once CLOSED).
    ``durable`` says whether every event behind this state is known to be in the lake: True
    for a snapshot loaded from bronze alone, or saved after a confirmed flush; False when some of
    its events were read from the local spool (not committed yet), the flush timed out, or no
    logger is attached.
    """

    name: str
    state: CircuitBreakerState
    failure_count: int
    opened_at: datetime | None
    half_open_successes: int
    durable: bool = True


# --------------------------------------------------------------------------- states
class _BreakerState:
    """One state of the breaker: what it allows, and where each outcome leads from here."""

    kind: ClassVar[CircuitBreakerState]
    allows_trading: ClassVar[bool]

    __slots__ = ("_breaker",)

    def __init__(self, breaker: TradingCircuitBreaker) -> None:
        self._breaker = breaker

    def on_check(self, now: Instant) -> None:
        """Called before every observation; only OPEN has a lazy transition to make."""

    def on_failure(self, now: Instant) -> None:
        raise NotImplementedError

    def on_success(self, now: Instant) -> None:
        raise NotImplementedError


class _Closed(_BreakerState):
    kind = CircuitBreakerState.CLOSED
    allows_trading = True
    __slots__ = ()

    def on_failure(self, now: Instant) -> None:
        b = self._breaker
        b._failure_count += 1
        b._emit(RiskEventType.CB_FAILURE, now)
        if b._failure_count >= b.config.failure_threshold:
            b._transition(CircuitBreakerState.OPEN, now)

    def on_success(self, now: Instant) -> None:
        b = self._breaker
        cleared = b._failure_count
        if cleared:
            b._failure_count = 0
            b._emit(RiskEventType.CB_SUCCESS, now, metadata=json.dumps({"failures_cleared": cleared}))


class _Open(_BreakerState):
    kind = CircuitBreakerState.OPEN
    allows_trading = False
    __slots__ = ()

    def on_check(self, now: Instant) -> None:
        b = self._breaker
        opened_at = b._opened_at
        if opened_at is None or now >= opened_at + b._reset_delay:
            b._transition(CircuitBreakerState.HALF_OPEN, now)

    def on_failure(self, now: Instant) -> None:
        # A late failure of an order sent before the breaker opened: counted, timer unchanged.
        b = self._breaker
        b._failure_count += 1
        b._emit(RiskEventType.CB_FAILURE, now)

    def on_success(self, now: Instant) -> None:
        pass  # a late success proves nothing about the venue now


class _HalfOpen(_BreakerState):
    kind = CircuitBreakerState.HALF_OPEN
    allows_trading = True
    __slots__ = ()

    def on_failure(self, now: Instant) -> None:
        b = self._breaker
        b._failure_count += 1
        b._emit(RiskEventType.CB_FAILURE, now)
        b._transition(CircuitBreakerState.OPEN, now)

    def on_success(self, now: Instant) -> None:
        b = self._breaker
        b._half_open_successes += 1
        b._emit(RiskEventType.CB_SUCCESS, now, metadata=json.dumps({"half_open_successes": b._half_open_successes}))
        if b._half_open_successes >= b.config.half_open_success_threshold:
            b._transition(CircuitBreakerState.CLOSED, now)


_STATE_CLASSES: Final[dict[CircuitBreakerState, type[_BreakerState]]] = {
    cls.kind: cls for cls in (_Closed, _Open, _HalfOpen)
}


# --------------------------------------------------------------------------- breaker
class TradingCircuitBreaker:
    """Stops order flow to a failing venue, and records why.

    >>> cb = TradingCircuitBreaker(CircuitBreakerConfig(failure_threshold=3))
    >>> for _ in range(3):
    ...     cb.record_failure()
    >>> cb.state.name
    'OPEN'

    ``name`` goes into every event's ``source``: several breakers (one per venue or route) can
    share a logger and be restored independently. Thread-safe: a lock guards each operation so
    a transition and its events are never interleaved with another thread's.
    """

    def __init__(
        self,
        config: CircuitBreakerConfig | None = None,
        event_logger: EventSink | None = None,
        *,
        name: str = "default",
        clock: Clock = utc_now,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a circuit breaker needs a non-empty name, got {name!r}")
        if config is not None and not isinstance(config, CircuitBreakerConfig):
            raise ValueError(f"config must be a CircuitBreakerConfig or None, got {config!r}")
        require_collaborators(event_logger, clock)
        self.config = config if config is not None else CircuitBreakerConfig()
        self.event_logger = event_logger
        self.name = name
        self._lock = threading.RLock()
        self._opened_at: Instant | None = None
        self.clock = clock  # also sets how the breaker reads it (see the property)
        self._failure_count = 0
        self._half_open_successes = 0
        self._state: _BreakerState = _Closed(self)

    # ------------------------------------------------------------------ observations
    @property
    def state(self) -> CircuitBreakerState:
        with self._lock:
            self._state.on_check(self._now())
            return self._state.kind

    def is_trading_allowed(self) -> bool:
        """True when CLOSED, or HALF_OPEN (trial orders); False while OPEN."""
        with self._lock:
            self._state.on_check(self._now())
            return self._state.allows_trading

    @property
    def failure_count(self) -> int:
        return self._failure_count

    @property
    def opened_at(self) -> datetime | None:
        return None if self._opened_at is None else as_datetime(self._opened_at)

    @property
    def clock(self) -> Clock:
        return self._clock

    @clock.setter
    def clock(self, clock: Clock) -> None:
        """The breaker reads the wall clock as integer nanoseconds (``time.time_ns``, ~0.04 µs against
        ~0.16 µs for ``datetime.now``; its events then carry integers the shipper converts in one Arrow
        pass); an injected clock as the datetimes it returns. ``opened_at`` and the reset timeout are
        kept in the same unit, so one breaker never compares the two kinds."""
        with self._lock:  # a decision in flight never sees the instants of two clocks
            opened = self.opened_at
            self._clock = clock
            self._now = reader(clock)
            self._reset_delay = span(clock, self.config.reset_timeout)
            self._opened_at = None if opened is None else instant_of(clock, opened)

    @property
    def half_open_successes(self) -> int:
        return self._half_open_successes

    # ------------------------------------------------------------------ outcomes
    def record_failure(self) -> None:
        """An order to this venue failed."""
        with self._lock:
            now = self._now()
            self._state.on_check(now)
            self._state.on_failure(now)

    def record_success(self) -> None:
        """An order to this venue succeeded."""
        with self._lock:
            now = self._now()
            self._state.on_check(now)
            self._state.on_success(now)

    def reset(self, *, reason: str | None = None) -> None:
        """Manual reset to CLOSED by an operator: logs ``CB_MANUAL_RESET``, then the state change."""
        if reason is not None and not isinstance(reason, str):
            raise ValueError(f"reason must be a string or None, got {reason!r}")
        with self._lock:
            now = self._now()
            old = self._state.kind
            self._emit(
                RiskEventType.CB_MANUAL_RESET,
                now,
                old_state=old,
                new_state=CircuitBreakerState.CLOSED,
                metadata=json.dumps({"reason": reason}) if reason is not None else None,
            )
            self._failure_count = 0
            self._half_open_successes = 0
            if old is not CircuitBreakerState.CLOSED:
                self._transition(CircuitBreakerState.CLOSED, now)

    # ------------------------------------------------------------------ persistence
    def snapshot(self, *, durable: bool = False) -> BreakerSnapshot:
        """The in-memory state now (after any due lazy transition)."""
        with self._lock:
            self._state.on_check(self._now())
            return BreakerSnapshot(
                name=self.name,
                state=self._state.kind,
                failure_count=self._failure_count,
                opened_at=self.opened_at,
                half_open_successes=self._half_open_successes,
                durable=durable,
            )

    def save_state(self, timeout: float | None = None) -> BreakerSnapshot:
        """Wait (up to ``timeout`` seconds) until every event so far is in bronze; return the state.

        Nothing is written besides the events themselves: they are the saved state. ``timeout``
        defaults to the logger's ``flush_timeout`` (30 s), so a lake that is down never hangs the
        caller. The snapshot's ``durable`` is False if the events did not land in time or no logger
        is attached -- a shutdown path should not crash because the lake is slow, but it should know.
        """
        if timeout is not None and (not math.isfinite(timeout) or timeout < 0):
            raise ValueError(f"timeout must be None or a non-negative number of seconds, got {timeout!r}")
        durable = self.event_logger.flush_blocking(timeout) if self.event_logger is not None else False
        return self.snapshot(durable=bool(durable))

    def load_state(
        self,
        lake_root: str | os.PathLike[str] | None = None,
        *,
        storage_options: Mapping[str, str] | None = None,
        spool_dir: str | os.PathLike[str] | None = None,
        lookback_days: int = 7,
    ) -> BreakerSnapshot | None:
        """Restore this breaker from its events; None (and no change) if it has none.

        The events are this breaker's (``component == "circuit_breaker"``, ``source == self.name``)
        from bronze **and** from the local spool's segments that no shipper has committed yet
        (:mod:`risk_runtime.history`), so a breaker killed right after opening restarts OPEN.
        Bronze is read in the last ``lookback_days`` of ``event_date`` partitions, and in all of
        them only if those hold no state change; the read runs in a short-lived subprocess, so
        this process never loads deltalake and may still ``fork`` afterwards.

        Defaults: the lake, storage options and spool of the attached ``RiskEventLogger``; without
        one, ``$RISK_LAKE_ROOT`` (else ``data/lake``) and that lake's default spool. Events are
        folded in ``(timestamp, sequence)`` order (:func:`fold_breaker_events`). An OPEN breaker
        keeps its original ``opened_at``, so it stays OPEN until ``opened_at + reset_timeout`` and
        then half-opens lazily, as if the process had never stopped. Restoring logs nothing.
        """
        from pathlib import Path

        from risk_runtime.history import LANDED, read_source_events
        from risk_runtime.spool_identity import default_spool_dir
        from risk_runtime.table import resolve_lake_root

        attached = self.event_logger
        if lake_root is None and hasattr(attached, "lake_root"):
            lake = str(attached.lake_root)  # type: ignore[union-attr]
            storage_options = storage_options or getattr(attached, "storage_options", None)
            spool = Path(spool_dir) if spool_dir is not None else getattr(attached, "spool_dir", None)
        else:
            lake = resolve_lake_root(lake_root)
            spool = Path(spool_dir) if spool_dir is not None else default_spool_dir(lake)
        table = read_source_events(
            lake,
            component=Component.CIRCUIT_BREAKER.value,
            source=self.name,
            columns=list(_FOLD_COLUMNS),
            spool_dir=spool,
            storage_options=storage_options,
            lookback_days=lookback_days,
            complete_when=RiskEventType.CB_STATE_CHANGE.value,
        )
        if table.num_rows == 0:
            return None
        rows = table.sort_by([("timestamp", "ascending"), ("sequence", "ascending")]).to_pylist()
        snapshot = fold_breaker_events(rows, name=self.name)
        if snapshot is not None:
            # Events still only in the local spool are real, but not yet in the lake.
            snapshot = dataclasses.replace(snapshot, durable=all(table.column(LANDED).to_pylist()))
            self.restore(snapshot)
        return snapshot

    def restore(self, snapshot: BreakerSnapshot) -> None:
        """Adopt ``snapshot`` (from :meth:`load_state` or elsewhere) without logging anything."""
        if not isinstance(snapshot, BreakerSnapshot):
            raise ValueError(f"snapshot must be a BreakerSnapshot, got {snapshot!r}")
        state = CircuitBreakerState(snapshot.state)
        if state is CircuitBreakerState.OPEN and snapshot.opened_at is None:
            raise ValueError("an OPEN snapshot needs opened_at (the reset timeout counts from it)")
        if snapshot.opened_at is not None and (
            not isinstance(snapshot.opened_at, datetime) or snapshot.opened_at.utcoffset() is None
        ):
            raise ValueError(f"opened_at must be a time-zone-aware datetime, got {snapshot.opened_at!r}")
        with self._lock:
            self._failure_count = snapshot.failure_count
            self._opened_at = None if snapshot.opened_at is None else instant_of(self._clock, snapshot.opened_at)
            self._half_open_successes = snapshot.half_open_successes
            self._state = _STATE_CLASSES[state](self)

    # ------------------------------------------------------------------ internals
    def _transition(self, new: CircuitBreakerState, now: Instant) -> None:
        old = self._state.kind
        if new is CircuitBreakerState.OPEN:
            self._opened_at = now
            self._half_open_successes = 0
        elif new is CircuitBreakerState.HALF_OPEN:
            self._half_open_successes = 0
        else:
            self._failure_count = 0
            self._opened_at = None
            self._half_open_successes = 0
        self._state = _STATE_CLASSES[new](self)
        self._emit(RiskEventType.CB_STATE_CHANGE, now, old_state=old, new_state=new)

    def _emit(
        self,
        event_type: RiskEventType,
        now: Instant,
        *,
        old_state: str | None = None,
        new_state: str | None = None,
        metadata: str | None = None,
    ) -> None:
        sink = self.event_logger
        if sink is None:
            return
        sink.log(
            RiskEvent(
                event_type=event_type,
                component=Component.CIRCUIT_BREAKER,
                timestamp=now,
                source=self.name,
                old_state=None if old_state is None else str(old_state),
                new_state=None if new_state is None else str(new_state),
                failure_count=self._failure_count,
                metadata=metadata,
            )
        )

    def __repr__(self) -> str:
        return (
            f"TradingCircuitBreaker(name={self.name!r}, state={self._state.kind.value}, "
            f"failure_count={self._failure_count})"
        )


_FOLD_COLUMNS: Final = (
    "event_type",
    "timestamp",
    "sequence",
    "old_state",
    "new_state",
    "failure_count",
    "metadata",
)


def fold_breaker_events(rows: Iterable[Mapping[str, Any]], *, name: str) -> BreakerSnapshot | None:
    """Rebuild a breaker's state from its events, given in order (timestamp, then sequence).

    In effect only the last ``CB_STATE_CHANGE`` and what follows it matter: a state change
    carries the whole state (new state, failure count; ``opened_at`` is the timestamp of the
    last change *to* OPEN, which is why the fold walks from the start rather than from the last
    change -- a HALF_OPEN breaker still reports when it opened), and later failures, successes
    and manual resets adjust the counters. A breaker with events but no state change never
    opened: it is CLOSED with the failures counted since its last reset.
    """
    ordered = list(rows)
    if not ordered:
        return None
    state = CircuitBreakerState.CLOSED
    failures = 0
    opened_at: datetime | None = None
    successes = 0
    for row in ordered:
        kind = row["event_type"]
        if kind == RiskEventType.CB_STATE_CHANGE:
            state = CircuitBreakerState(row["new_state"])
            failures = row["failure_count"] or 0
            successes = 0
            if state is CircuitBreakerState.OPEN:
                opened_at = row["timestamp"]
            elif state is CircuitBreakerState.CLOSED:
                opened_at = None
        elif kind == RiskEventType.CB_FAILURE:
            failures = row["failure_count"] if row["failure_count"] is not None else failures + 1
        elif kind == RiskEventType.CB_SUCCESS:
            meta = _metadata(row)
            if state is CircuitBreakerState.HALF_OPEN:
                successes = int(meta.get("half_open_successes", successes + 1))
            else:
                failures = row["failure_count"] or 0
        elif kind == RiskEventType.CB_MANUAL_RESET:
            failures = 0
            successes = 0
    return BreakerSnapshot(
        name=name,
        state=state,
        failure_count=int(failures),
        opened_at=opened_at,
        half_open_successes=successes,
        durable=True,
    )


def _metadata(row: Mapping[str, Any]) -> dict[str, Any]:
    text = row.get("metadata")
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
