"""The circuit breaker's state machine, its events, and its restore from a real bronze table."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from risk_runtime.circuit_breaker import (
    BreakerSnapshot,
    CircuitBreakerConfig,
    CircuitBreakerState,
    TradingCircuitBreaker,
    fold_breaker_events,
)
from risk_runtime.clock import ManualClock
from risk_runtime.encoding import events_to_bronze
from risk_runtime.events import RAW_TIMESTAMP, RiskEvent, RiskEventType
from risk_runtime.sink import MemorySink
from risk_runtime.table import RiskEventsTable

T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
CLOSED, OPEN, HALF_OPEN = CircuitBreakerState.CLOSED, CircuitBreakerState.OPEN, CircuitBreakerState.HALF_OPEN


def make(
    threshold: int = 3, timeout: float = 60.0, successes: int = 2, name: str = "orders"
) -> tuple[TradingCircuitBreaker, MemorySink, ManualClock]:
    sink, clock = MemorySink(), ManualClock(T0)
    config = CircuitBreakerConfig(
        failure_threshold=threshold, reset_timeout=timeout, half_open_success_threshold=successes
    )
    return TradingCircuitBreaker(config, event_logger=sink, name=name, clock=clock), sink, clock


def changes(sink: MemorySink) -> list[tuple[str | None, str | None, int | None]]:
    return [(e.old_state, e.new_state, e.failure_count) for e in sink.of_type(RiskEventType.CB_STATE_CHANGE)]


def write_bronze(lake: Path, events: list[RiskEvent], version: int = 1) -> None:
    RiskEventsTable(lake).append(events_to_bronze(events, writer_id="w"), app_id="w", version=version)


def test_seed_manual_test_three_failures_open_the_breaker() -> None:
    sink = MemorySink()
    cb = TradingCircuitBreaker(CircuitBreakerConfig(failure_threshold=3), event_logger=sink)
    states = []
    for _ in range(3):
        cb.record_failure()
        states.append(cb.state.name)
    assert states == ["CLOSED", "CLOSED", "OPEN"]
    assert not cb.is_trading_allowed()
    assert [e.event_type for e in sink.events] == [RiskEventType.CB_FAILURE] * 3 + [RiskEventType.CB_STATE_CHANGE]


def test_failures_are_counted_and_logged_with_the_count_after_increment() -> None:
    cb, sink, _ = make(threshold=3)
    cb.record_failure()
    cb.record_failure()
    assert cb.state is CLOSED and cb.failure_count == 2
    assert [e.failure_count for e in sink.of_type(RiskEventType.CB_FAILURE)] == [1, 2]
    for e in sink.events:
        assert e.source == "orders" and e.component == "circuit_breaker" and e.timestamp == T0


def test_success_in_closed_resets_the_count_so_failures_must_be_consecutive() -> None:
    cb, sink, _ = make(threshold=3)
    cb.record_failure()
    cb.record_failure()
    cb.record_success()
    assert cb.failure_count == 0
    cb.record_failure()
    cb.record_failure()
    assert cb.state is CLOSED
    (reset,) = sink.of_type(RiskEventType.CB_SUCCESS)
    assert reset.failure_count == 0 and json.loads(reset.metadata or "") == {"failures_cleared": 2}
    cb.record_failure()
    assert cb.state is OPEN


def test_success_with_nothing_to_clear_logs_nothing() -> None:
    cb, sink, _ = make()
    cb.record_success()
    assert sink.events == []


def test_open_half_opens_lazily_after_the_timeout_without_timers() -> None:
    cb, sink, clock = make(threshold=1, timeout=30)
    cb.record_failure()
    clock.advance(29.999)
    assert cb.state is OPEN and not cb.is_trading_allowed()
    clock.advance(0.001)
    assert changes(sink) == [("CLOSED", "OPEN", 1)]  # nothing happens until someone looks
    assert cb.is_trading_allowed()
    assert cb.state is HALF_OPEN
    assert changes(sink) == [("CLOSED", "OPEN", 1), ("OPEN", "HALF_OPEN", 1)]
    assert sink.events[-1].timestamp == T0 + timedelta(seconds=30)


@pytest.mark.parametrize("observe", ["state", "is_trading_allowed", "record_failure", "record_success"])
def test_every_kind_of_check_performs_the_lazy_transition(observe: str) -> None:
    cb, sink, clock = make(threshold=1, timeout=10)
    cb.record_failure()
    clock.advance(11)
    result = getattr(cb, observe)
    if callable(result):
        result()
    assert changes(sink)[1] == ("OPEN", "HALF_OPEN", 1)


def test_half_open_successes_close_the_breaker() -> None:
    cb, sink, clock = make(threshold=2, timeout=5, successes=3)
    cb.record_failure()
    cb.record_failure()
    clock.advance(5)
    cb.record_success()
    cb.record_success()
    assert cb.state is HALF_OPEN and cb.half_open_successes == 2
    cb.record_success()
    assert cb.state is CLOSED and cb.failure_count == 0 and cb.opened_at is None
    successes = sink.of_type(RiskEventType.CB_SUCCESS)
    assert [json.loads(e.metadata or "") for e in successes] == [{"half_open_successes": n} for n in (1, 2, 3)]
    assert changes(sink) == [("CLOSED", "OPEN", 2), ("OPEN", "HALF_OPEN", 2), ("HALF_OPEN", "CLOSED", 0)]


def test_failure_in_half_open_reopens_with_a_fresh_timeout() -> None:
    cb, sink, clock = make(threshold=1, timeout=60)
    cb.record_failure()
    clock.advance(60)
    cb.record_success()  # first trial order fine (threshold 2)
    clock.advance(1)
    cb.record_failure()
    assert cb.state is OPEN and cb.opened_at == T0 + timedelta(seconds=61)
    assert cb.half_open_successes == 0 and cb.failure_count == 2
    clock.advance(59)
    assert cb.state is OPEN
    clock.advance(1)
    assert cb.state is HALF_OPEN
    assert [c[:2] for c in changes(sink)] == [
        ("CLOSED", "OPEN"),
        ("OPEN", "HALF_OPEN"),
        ("HALF_OPEN", "OPEN"),
        ("OPEN", "HALF_OPEN"),
    ]


def test_late_failure_while_open_is_counted_but_does_not_extend_the_timeout() -> None:
    cb, sink, clock = make(threshold=1, timeout=10)
    cb.record_failure()
    clock.advance(5)
    cb.record_failure()
    cb.record_success()  # ignored while open
    assert cb.failure_count == 2 and cb.state is OPEN
    clock.advance(5)
    assert cb.state is HALF_OPEN
    assert len(sink.of_type(RiskEventType.CB_SUCCESS)) == 0


def test_manual_reset_logs_the_reset_then_the_state_change() -> None:
    cb, sink, _ = make(threshold=2)
    cb.record_failure()
    cb.record_failure()
    sink.events.clear()
    cb.reset(reason="venue confirmed healthy")
    assert cb.state is CLOSED and cb.failure_count == 0 and cb.is_trading_allowed()
    reset, change = sink.events
    assert reset.event_type == RiskEventType.CB_MANUAL_RESET
    assert (reset.old_state, reset.new_state, reset.failure_count) == ("OPEN", "CLOSED", 2)
    assert json.loads(reset.metadata or "") == {"reason": "venue confirmed healthy"}
    assert change.event_type == RiskEventType.CB_STATE_CHANGE
    assert (change.old_state, change.new_state, change.failure_count) == ("OPEN", "CLOSED", 0)


def test_manual_reset_when_closed_forgets_failures_without_a_state_change() -> None:
    cb, sink, _ = make(threshold=3)
    cb.record_failure()
    cb.reset()
    assert cb.failure_count == 0
    assert [e.event_type for e in sink.events] == [RiskEventType.CB_FAILURE, RiskEventType.CB_MANUAL_RESET]


def test_named_breakers_are_independent() -> None:
    sink, clock = MemorySink(), ManualClock(T0)
    config = CircuitBreakerConfig(failure_threshold=2)
    a = TradingCircuitBreaker(config, sink, name="cboe", clock=clock)
    b = TradingCircuitBreaker(config, sink, name="ise", clock=clock)
    a.record_failure()
    a.record_failure()
    b.record_failure()
    assert (a.state, b.state) == (OPEN, CLOSED)
    assert {e.source for e in sink.events} == {"cboe", "ise"}
    assert [e.source for e in sink.of_type(RiskEventType.CB_STATE_CHANGE)] == ["cboe"]


def test_works_without_a_logger() -> None:
    cb = TradingCircuitBreaker(CircuitBreakerConfig(failure_threshold=1))
    cb.record_failure()
    assert cb.state is OPEN
    assert cb.save_state().durable is False


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"failure_threshold": 0}, "failure_threshold"),
        ({"failure_threshold": 2.5}, "failure_threshold"),
        ({"half_open_success_threshold": 0}, "half_open_success_threshold"),
        ({"reset_timeout": -1}, "must not be negative"),
        ({"reset_timeout": float("nan")}, "finite"),
        ({"reset_timeout": float("inf")}, "finite"),
    ],
)
def test_config_rejects_nonsense(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CircuitBreakerConfig(**kwargs)  # type: ignore[arg-type]


def test_save_state_waits_for_the_logger_and_reports_durability() -> None:
    class SlowSink(MemorySink):
        def __init__(self, ok: bool) -> None:
            super().__init__()
            self.ok = ok
            self.timeouts: list[float | None] = []

        def flush_blocking(self, timeout: float | None = None) -> bool:
            self.timeouts.append(timeout)
            return self.ok

    for ok in (True, False):
        sink = SlowSink(ok)
        cb = TradingCircuitBreaker(CircuitBreakerConfig(failure_threshold=1), sink, name="x", clock=ManualClock(T0))
        cb.record_failure()
        snap = cb.save_state(timeout=2.5)
        assert sink.timeouts == [2.5]
        assert snap == BreakerSnapshot("x", OPEN, 1, T0, 0, durable=ok)
    with pytest.raises(ValueError, match="timeout"):
        cb.save_state(timeout=-1)


# --------------------------------------------------------------------------- restore from bronze
def test_load_state_keeps_an_open_breaker_open_until_its_original_timeout(tmp_path: Path) -> None:
    cb, sink, _ = make(threshold=3, timeout=300)
    for _ in range(3):
        cb.record_failure()
    write_bronze(tmp_path, sink.events)

    # The process restarts 200 s later.
    restarted_clock = ManualClock(T0 + timedelta(seconds=200))
    restored_sink = MemorySink()
    restored = TradingCircuitBreaker(cb.config, restored_sink, name="orders", clock=restarted_clock)
    snap = restored.load_state(tmp_path)
    assert snap == BreakerSnapshot("orders", OPEN, 3, T0, 0, durable=True)
    assert restored_sink.events == []  # restoring is not a decision
    assert restored.state is OPEN and not restored.is_trading_allowed()
    restarted_clock.advance(99)
    assert restored.state is OPEN
    restarted_clock.advance(1)  # T0 + 300 s: the original timeout
    assert restored.state is HALF_OPEN
    (change,) = restored_sink.events
    assert (change.old_state, change.new_state, change.failure_count) == ("OPEN", "HALF_OPEN", 3)


def test_load_state_reads_only_its_own_breaker_and_folds_what_followed(tmp_path: Path) -> None:
    sink, clock = MemorySink(), ManualClock(T0)
    config = CircuitBreakerConfig(failure_threshold=2, reset_timeout=10, half_open_success_threshold=3)
    a = TradingCircuitBreaker(config, sink, name="cboe", clock=clock)
    b = TradingCircuitBreaker(config, sink, name="ise", clock=clock)
    a.record_failure()
    a.record_failure()  # cboe OPEN at T0
    b.record_failure()  # ise: 1 failure, CLOSED
    clock.advance(10)
    a.record_success()  # cboe HALF_OPEN, 1 success
    a.record_success()  # 2 successes
    write_bronze(tmp_path, sink.events)

    fresh_a = TradingCircuitBreaker(config, name="cboe", clock=clock)
    fresh_b = TradingCircuitBreaker(config, name="ise", clock=clock)
    fresh_c = TradingCircuitBreaker(config, name="phlx", clock=clock)
    assert fresh_a.load_state(tmp_path) == BreakerSnapshot("cboe", HALF_OPEN, 2, T0, 2)
    assert fresh_b.load_state(tmp_path) == BreakerSnapshot("ise", CLOSED, 1, None, 0)
    assert fresh_c.load_state(tmp_path) is None
    assert fresh_c.state is CLOSED
    fresh_a.record_success()  # the third half-open success closes it, as it would have before
    assert fresh_a.state is CLOSED
    fresh_b.record_failure()
    assert fresh_b.state is OPEN


def test_load_state_after_several_cycles_and_batches(tmp_path: Path) -> None:
    cb, sink, clock = make(threshold=2, timeout=10, successes=1)
    cb.record_failure()
    cb.record_failure()
    clock.advance(10)
    cb.record_success()  # closed again
    write_bronze(tmp_path, sink.events, version=1)
    first = len(sink.events)
    clock.advance(1)
    cb.record_failure()
    cb.record_failure()  # open again at T0 + 11 s
    clock.advance(10)
    cb.record_failure()  # half-open (lazily) then re-opened at T0 + 21 s by this failure
    RiskEventsTable(tmp_path).append(
        events_to_bronze(sink.events[first:], writer_id="w", first_sequence=first + 1), app_id="w", version=2
    )
    restored = TradingCircuitBreaker(cb.config, name="orders", clock=clock)
    snap = restored.load_state(tmp_path)
    assert snap == BreakerSnapshot("orders", OPEN, 3, T0 + timedelta(seconds=21), 0)
    assert snap == cb.snapshot(durable=True)


def test_load_state_of_a_manually_reset_breaker(tmp_path: Path) -> None:
    cb, sink, _ = make(threshold=2)
    cb.record_failure()
    cb.record_failure()
    cb.reset()
    cb.record_failure()
    write_bronze(tmp_path, sink.events)
    restored = TradingCircuitBreaker(cb.config, name="orders", clock=cb.clock)
    assert restored.load_state(tmp_path) == BreakerSnapshot("orders", CLOSED, 1, None, 0)


def test_load_state_from_an_absent_lake_returns_none(tmp_path: Path) -> None:
    cb, _, _ = make()
    assert cb.load_state(tmp_path / "nowhere") is None


def test_fold_without_state_changes_is_closed_with_the_counted_failures() -> None:
    rows = [
        {"event_type": "circuit_breaker_failure", "failure_count": 1, "timestamp": T0},
        {"event_type": "circuit_breaker_failure", "failure_count": 2, "timestamp": T0},
    ]
    assert fold_breaker_events(rows, name="x") == BreakerSnapshot("x", CLOSED, 2, None, 0)
    assert fold_breaker_events([], name="x") is None


def test_restore_refuses_an_open_snapshot_without_opened_at() -> None:
    cb, _, _ = make()
    with pytest.raises(ValueError, match="opened_at"):
        cb.restore(BreakerSnapshot("orders", OPEN, 3, None, 0))


@pytest.mark.parametrize("opened_at", [datetime(2026, 3, 2, 14, 30), "2026-03-02T14:30:00+00:00"])
def test_restore_refuses_an_opened_at_that_is_not_an_aware_datetime(opened_at: object) -> None:
    cb, _, _ = make()
    with pytest.raises(ValueError, match="time-zone-aware"):
        cb.restore(BreakerSnapshot("orders", OPEN, 3, opened_at, 0))  # type: ignore[arg-type]


# ------------------------------------------------------------------ the wall clock, read as integer nanoseconds
def test_on_the_wall_clock_events_carry_integer_time_and_read_back_as_utc_datetimes() -> None:
    sink = MemorySink()
    cb = TradingCircuitBreaker(CircuitBreakerConfig(failure_threshold=2), event_logger=sink)
    before = datetime.now(UTC).replace(microsecond=0)
    cb.record_failure()
    cb.record_failure()
    after = datetime.now(UTC) + timedelta(microseconds=1)
    assert all(type(RAW_TIMESTAMP.__get__(e)) is int for e in sink.events)  # the shipper converts them in one pass
    stamps = [e.timestamp for e in sink.events]
    assert all(before <= t <= after and t.tzinfo is UTC for t in stamps)
    assert cb.state is OPEN and cb.opened_at == stamps[-1]  # the transition's own instant


def test_on_the_wall_clock_the_reset_timeout_counts_from_opened_at() -> None:
    cb = TradingCircuitBreaker(CircuitBreakerConfig(failure_threshold=1, reset_timeout=0.2))
    cb.record_failure()
    assert cb.state is OPEN
    opened = cb.opened_at
    assert opened is not None
    while datetime.now(UTC) < opened + timedelta(seconds=0.2):
        assert cb.state is OPEN
        time.sleep(0.01)
    time.sleep(0.002)  # opened_at reads to the microsecond, the breaker keeps nanoseconds
    assert cb.state is HALF_OPEN


@pytest.mark.parametrize(("ago", "expected"), [(30.0, OPEN), (90.0, HALF_OPEN)])
def test_on_the_wall_clock_a_restored_open_breaker_keeps_its_timeout(ago: float, expected: CircuitBreakerState) -> None:
    cb = TradingCircuitBreaker(CircuitBreakerConfig(reset_timeout=60.0))
    opened_at = (datetime.now(UTC) - timedelta(seconds=ago)).replace(microsecond=123456)
    cb.restore(BreakerSnapshot("default", OPEN, 5, opened_at, 0))
    assert cb.state is expected
    assert cb.opened_at == opened_at
    assert cb.snapshot().opened_at == opened_at


def test_a_new_clock_keeps_opened_at() -> None:
    cb = TradingCircuitBreaker(CircuitBreakerConfig(failure_threshold=1, reset_timeout=60.0))
    cb.record_failure()
    opened = cb.opened_at
    assert opened is not None
    manual = ManualClock(opened + timedelta(seconds=59))
    cb.clock = manual
    assert cb.state is OPEN and cb.opened_at == opened
    manual.advance(1)
    assert cb.state is HALF_OPEN and cb.opened_at == opened
