"""The simulator is reproducible and sized by its knob; the scripted scenario yields its documented facts."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from risk_runtime.circuit_breaker import BreakerSnapshot, CircuitBreakerState, TradingCircuitBreaker
from risk_runtime.encoding import events_to_bronze
from risk_runtime.events import RiskEvent, RiskEventType
from risk_runtime.simulation import SCENARIO_START, scripted_scenario, simulate_session
from risk_runtime.simulation.pricing import black_scholes, norm_cdf
from risk_runtime.simulation.scenarios import SCENARIO_BREAKER
from risk_runtime.sink import MemorySink
from risk_runtime.table import RiskEventsTable

T = RiskEventType


def fingerprint(events: list[RiskEvent]) -> list[tuple[object, ...]]:
    return [
        (e.event_type, e.source, e.execution_id, e.timestamp, e.entry_premium, e.current_premium, e.stop_premium,
         e.old_state, e.new_state, e.limit_type, e.current_value)
        for e in events
    ]  # fmt: skip


# --------------------------------------------------------------------------- pricing
def test_black_scholes_matches_the_textbook_values() -> None:
    call, call_delta = black_scholes(100.0, 100.0, 1.0, 0.2, 0.05, True)
    put, put_delta = black_scholes(100.0, 100.0, 1.0, 0.2, 0.05, False)
    assert call == pytest.approx(10.4506, abs=1e-4) and put == pytest.approx(5.5735, abs=1e-4)
    assert call_delta == pytest.approx(0.6368, abs=1e-4) and put_delta == pytest.approx(call_delta - 1)
    assert norm_cdf(0.0) == 0.5
    assert black_scholes(120.0, 100.0, 0.0, 0.3, 0.0, True)[0] == pytest.approx(20.0)  # expiring: intrinsic


# --------------------------------------------------------------------------- random session
def test_same_seed_same_events_except_ids() -> None:
    a, b = MemorySink(), MemorySink()
    summary_a = simulate_session(a, seed=11, days=2, target_events=3_000)
    summary_b = simulate_session(b, seed=11, days=2, target_events=3_000)
    assert fingerprint(a.events) == fingerprint(b.events)
    assert summary_a.events == summary_b.events
    assert {e.event_id for e in a.events}.isdisjoint(e.event_id for e in b.events)
    other = MemorySink()
    simulate_session(other, seed=12, days=2, target_events=3_000)
    assert fingerprint(other.events) != fingerprint(a.events)


def test_session_exercises_every_decision_and_spans_the_days() -> None:
    sink = MemorySink()
    start = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
    summary = simulate_session(sink, seed=7, start=start, days=3, target_events=20_000)
    counts = Counter(e.event_type for e in sink.events)
    assert summary.events == dict(counts) and summary.total_events == len(sink.events)
    for kind in (T.TS_ADD, T.TS_ACTIVATE, T.TS_UPDATE, T.TS_TRIGGER, T.TS_REMOVE, T.PL_CHECK, T.PL_REJECTION,
                 T.PL_WARNING, T.CB_FAILURE, T.CB_SUCCESS, T.CB_STATE_CHANGE):  # fmt: skip
        assert counts[kind] > 0, kind
    days = {e.timestamp.date() for e in sink.events}
    assert days == {date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 4)}
    assert all(start <= e.timestamp <= summary.end for e in sink.events)
    assert [e.timestamp for e in sink.events] == sorted(e.timestamp for e in sink.events)
    transitions = {(e.old_state, e.new_state) for e in sink.of_type(T.CB_STATE_CHANGE)}
    assert {("CLOSED", "OPEN"), ("OPEN", "HALF_OPEN"), ("HALF_OPEN", "CLOSED")} <= transitions
    assert {e.source for e in sink.of_type(T.CB_STATE_CHANGE)} <= {"orders.cboe", "orders.ise", "orders.phlx",
                                                                    "orders.miax"}  # fmt: skip
    # Every stop ends: triggered or removed (the session ends flat), and triggers obey the stop rule.
    assert counts[T.TS_ADD] == counts[T.TS_TRIGGER] + counts[T.TS_REMOVE]
    for e in sink.of_type(T.TS_TRIGGER):
        assert e.current_premium is not None and e.stop_premium is not None and e.highest_premium is not None
        assert e.current_premium <= e.stop_premium < e.highest_premium
    for e in sink.of_type(T.PL_REJECTION):
        assert e.current_value is not None and e.limit_value is not None and e.current_value > e.limit_value


@pytest.mark.parametrize(
    ("target", "days"), [(2_000, 1), (20_000, 1), (20_000, 3), pytest.param(200_000, 2, marks=pytest.mark.slow)]
)
def test_event_count_follows_the_volume_knob(target: int, days: int) -> None:
    summary = simulate_session(MemorySink(), seed=3, days=days, target_events=target)
    assert 0.75 * target <= summary.total_events <= 1.25 * target


def test_tiny_sessions_still_run() -> None:
    summary = simulate_session(MemorySink(), seed=1, target_events=300)
    assert 100 <= summary.total_events <= 1_000


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"days": 0}, "days"), ({"target_events": 0}, "target_events"), ({"start": datetime(2026, 3, 2)}, "aware")],
)
def test_session_rejects_nonsense(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        simulate_session(MemorySink(), **kwargs)  # type: ignore[arg-type]


def test_progress_bar_is_optional() -> None:
    summary = simulate_session(MemorySink(), target_events=500, progress=True)
    assert summary.total_events > 0


# --------------------------------------------------------------------------- scripted scenario
@pytest.fixture(scope="module")
def scenario() -> list[RiskEvent]:
    sink = MemorySink()
    scripted_scenario(sink, start=SCENARIO_START)
    return sink.events


def at(offset: int) -> datetime:
    return SCENARIO_START + timedelta(seconds=offset)


def test_scenario_counts_by_day_match_the_docstring(scenario: list[RiskEvent]) -> None:
    day_d, day_d1 = date(2026, 3, 2), date(2026, 3, 3)
    by_day = Counter((e.timestamp.date(), e.event_type) for e in scenario)
    assert len(scenario) == 23
    assert {k[1]: v for k, v in by_day.items() if k[0] == day_d} == {
        T.PL_CHECK: 2, T.PL_REJECTION: 2, T.PL_WARNING: 1, T.TS_ADD: 2, T.TS_ACTIVATE: 1, T.TS_UPDATE: 1,
        T.CB_FAILURE: 3, T.CB_STATE_CHANGE: 1,
    }  # fmt: skip
    assert {k[1]: v for k, v in by_day.items() if k[0] == day_d1} == {
        T.PL_REJECTION: 2, T.PL_CHECK: 1, T.CB_STATE_CHANGE: 2, T.CB_SUCCESS: 2, T.TS_REMOVE: 1, T.TS_UPDATE: 1,
        T.TS_TRIGGER: 1,
    }  # fmt: skip


def test_scenario_breaker_transitions(scenario: list[RiskEvent]) -> None:
    changes = [(e.timestamp, e.old_state, e.new_state, e.failure_count) for e in scenario
               if e.event_type == T.CB_STATE_CHANGE]  # fmt: skip
    assert changes == [
        (at(1560), "CLOSED", "OPEN", 3),
        (at(2200), "OPEN", "HALF_OPEN", 3),
        (at(2220), "HALF_OPEN", "CLOSED", 0),
    ]
    assert at(1560).date() != at(2200).date()  # OPEN across midnight
    assert {e.source for e in scenario if e.component == "circuit_breaker"} == {"orders"}
    successes = [json.loads(e.metadata or "") for e in scenario if e.event_type == T.CB_SUCCESS]
    assert successes == [{"half_open_successes": 1}, {"half_open_successes": 2}]


def test_scenario_triggered_stop(scenario: list[RiskEvent]) -> None:
    e1 = [e for e in scenario if e.execution_id == "E1" and e.component == "trailing_stop"]
    assert [(e.action, e.timestamp) for e in e1] == [
        ("ADD", at(0)), ("ACTIVATE", at(300)), ("UPDATE", at(600)), ("UPDATE", at(2700)), ("TRIGGER", at(3000))
    ]  # fmt: skip
    trigger = e1[-1]
    assert (trigger.entry_premium, trigger.current_premium, trigger.highest_premium) == (5.0, 5.5, 5.6)
    assert trigger.stop_premium == pytest.approx(5.516)
    assert [e.stop_premium for e in e1[1:4]] == pytest.approx([5.122, 5.319, 5.516])
    assert e1[0].timestamp.date() != trigger.timestamp.date()  # the stop lived across days
    (remove,) = [e for e in scenario if e.event_type == T.TS_REMOVE]
    assert (remove.execution_id, remove.timestamp, remove.current_premium, remove.stop_premium) == (
        "E2",
        at(2400),
        3.03,
        None,
    )


def test_scenario_limits(scenario: list[RiskEvent]) -> None:
    rejections = [(e.execution_id, e.timestamp.date(), e.limit_type, e.current_value, e.limit_value)
                  for e in scenario if e.event_type == T.PL_REJECTION]  # fmt: skip
    assert rejections == [
        ("E3", date(2026, 3, 2), "symbol_delta", pytest.approx(3.4), 3.0),
        ("E4", date(2026, 3, 2), "open_positions", 3.0, 2.0),
        ("E5", date(2026, 3, 3), "open_positions", 3.0, 2.0),
        ("E6", date(2026, 3, 3), "symbol_delta", 4.0, 3.0),
    ]
    checks = [(e.execution_id, e.limit_type, e.current_value, e.limit_value, e.allowed)
              for e in scenario if e.event_type == T.PL_CHECK]  # fmt: skip
    assert checks == [
        ("E1", "open_positions", 1.0, 2.0, True),
        ("E2", "open_positions", 2.0, 2.0, True),
        ("E7", "open_positions", 1.0, 2.0, True),
    ]
    (warning,) = [e for e in scenario if e.event_type == T.PL_WARNING]
    assert (warning.timestamp, warning.limit_type, warning.current_value, warning.limit_value) == (
        at(1200),
        "open_positions",
        2.0,
        2.0,
    )


def test_scenario_needs_its_start_time() -> None:
    with pytest.raises(ValueError, match="23:30"):
        scripted_scenario(MemorySink(), start=datetime(2026, 3, 2, 12, 0, tzinfo=UTC))


def test_scenario_breaker_restores_from_bronze_while_open(tmp_path: Path, scenario: list[RiskEvent]) -> None:
    # Land the events up to midnight, as a crashed process would have left them.
    before_midnight = [e for e in scenario if e.timestamp < at(1800)]
    RiskEventsTable(tmp_path).append(events_to_bronze(before_midnight, writer_id="w"), app_id="w", version=1)

    class Clock:
        now = at(1800)

        def __call__(self) -> datetime:
            return self.now

    clock = Clock()
    restarted = TradingCircuitBreaker(SCENARIO_BREAKER, name="orders", clock=clock)
    assert restarted.load_state(tmp_path) == BreakerSnapshot("orders", CircuitBreakerState.OPEN, 3, at(1560), 0)
    assert restarted.state is CircuitBreakerState.OPEN
    clock.now = at(2160)  # the original opened_at + 600 s
    assert restarted.state is CircuitBreakerState.HALF_OPEN
