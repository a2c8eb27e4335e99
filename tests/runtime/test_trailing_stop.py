"""Trailing stops: activation, ratchet, trigger and removal, and the events each one records."""

from __future__ import annotations

import asyncio
import json
import math
import random
from datetime import UTC, datetime

import pytest

from risk_runtime.clock import ManualClock
from risk_runtime.events import RiskEventType
from risk_runtime.sink import MemorySink
from risk_runtime.trailing_stop import (
    TrailingStop,
    TrailingStopAction,
    TrailingStopConfig,
    TrailingStopManager,
    TriggeredStop,
)

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def make(config: TrailingStopConfig | None = None) -> tuple[TrailingStopManager, MemorySink, ManualClock]:
    sink, clock = MemorySink(), ManualClock(T0)
    return TrailingStopManager(config, sink, clock=clock, name="monitor"), sink, clock


def test_seed_example_as_written_in_the_guide() -> None:
    async def scenario() -> tuple[MemorySink, list[TriggeredStop]]:
        event_logger = MemorySink()
        manager = TrailingStopManager(event_logger=event_logger)
        manager.add_trailing_stop("abc123", entry_premium=100.0)
        triggered = await manager.update_stops({"abc123": 103.0})  # Logs ACTIVATE
        return event_logger, triggered

    sink, triggered = asyncio.run(scenario())
    assert triggered == []
    assert [e.event_type for e in sink.events] == [RiskEventType.TS_ADD, RiskEventType.TS_ACTIVATE]
    activate = sink.events[1]
    assert activate.action == "ACTIVATE"
    assert activate.stop_premium == pytest.approx(103.0 * 0.985)


def test_add_logs_the_position_and_its_parameters() -> None:
    manager, sink, _ = make()
    stop = manager.add_trailing_stop("e1", 2.50, symbol="SPY")
    assert not stop.active and len(manager) == 1 and "e1" in manager
    (add,) = sink.events
    assert add.event_type == RiskEventType.TS_ADD and add.action == "ADD"
    assert (add.execution_id, add.symbol, add.source, add.timestamp) == ("e1", "SPY", "monitor", T0)
    assert (add.entry_premium, add.current_premium, add.highest_premium, add.stop_premium) == (2.5, 2.5, 2.5, None)
    assert json.loads(add.metadata or "") == {"activation_pct": 0.02, "trailing_pct": 0.015}


def test_activation_boundary_is_inclusive() -> None:
    manager, sink, _ = make()
    manager.add_trailing_stop("e1", 100.0)
    assert manager.update("e1", 101.99) is None
    assert not manager["e1"].active
    manager.update("e1", 102.0)  # exactly entry * 1.02
    assert manager["e1"].active
    assert manager["e1"].stop_premium == pytest.approx(102.0 * 0.985)
    assert [e.action for e in sink.events] == ["ADD", "ACTIVATE"]


def test_activation_uses_the_high_water_mark() -> None:
    stop = TrailingStop("e1", 10.0, activation_pct=0.1, trailing_pct=0.05)
    stop.update(10.5)
    stop.update(10.2)
    assert stop.highest_premium == 10.5 and stop.current_premium == 10.2 and not stop.active
    assert stop.update(11.0) is TrailingStopAction.ACTIVATE
    assert stop.stop_premium == pytest.approx(10.45)


def test_stop_ratchets_only_up_and_logs_update_only_when_it_moves() -> None:
    manager, sink, clock = make()
    manager.add_trailing_stop("e1", 100.0, symbol="QQQ")
    manager.update("e1", 103.0)  # activate at 101.455
    clock.advance(60)
    manager.update("e1", 102.0)  # lower: nothing moves
    manager.update("e1", 103.0)  # equal to the high: nothing moves
    assert [e.action for e in sink.events] == ["ADD", "ACTIVATE"]
    manager.update("e1", 110.0)
    assert manager["e1"].stop_premium == pytest.approx(108.35)
    manager.update("e1", 109.0)
    assert manager["e1"].stop_premium == pytest.approx(108.35)
    updates = sink.of_type(RiskEventType.TS_UPDATE)
    assert len(updates) == 1
    (u,) = updates
    assert (u.action, u.current_premium, u.highest_premium) == ("UPDATE", 110.0, 110.0)
    assert u.stop_premium == pytest.approx(108.35) and u.timestamp == T0.replace(minute=1)


def test_trigger_carries_every_premium_and_forgets_the_stop() -> None:
    manager, sink, clock = make()
    manager.add_trailing_stop("e1", 100.0, symbol="IWM")
    manager.update("e1", 105.0)
    clock.advance(120)
    fired = manager.update("e1", 103.0)
    stop = 105.0 * 0.985
    assert fired == TriggeredStop("e1", "IWM", 100.0, 105.0, pytest.approx(stop), 103.0, clock())
    assert fired is not None and fired.profit_locked == pytest.approx(stop - 100.0)
    assert "e1" not in manager and len(manager) == 0
    trigger = sink.events[-1]
    assert trigger.event_type == RiskEventType.TS_TRIGGER and trigger.action == "TRIGGER"
    assert (trigger.entry_premium, trigger.current_premium, trigger.highest_premium) == (100.0, 103.0, 105.0)
    assert trigger.stop_premium == pytest.approx(stop) and trigger.timestamp == clock()
    with pytest.raises(KeyError, match="e1"):
        manager.update("e1", 100.0)


def test_premium_equal_to_the_stop_triggers() -> None:
    stop = TrailingStop("e1", 100.0, activation_pct=0.5, trailing_pct=0.5)
    stop.update(200.0)  # stop 100.0
    assert stop.update(100.0) is TrailingStopAction.TRIGGER
    with pytest.raises(RuntimeError, match="already triggered"):
        stop.update(150.0)


def test_remove_logs_and_stops_tracking() -> None:
    manager, sink, _ = make()
    manager.add_trailing_stop("e1", 4.0, symbol="SPY")
    manager.update("e1", 4.2)
    removed = manager.remove_stop("e1")
    assert removed.execution_id == "e1" and "e1" not in manager
    remove = sink.events[-1]
    assert remove.event_type == RiskEventType.TS_REMOVE and remove.action == "REMOVE"
    assert (remove.current_premium, remove.highest_premium) == (4.2, 4.2)
    with pytest.raises(KeyError, match="no trailing stop for execution_id 'e1'"):
        manager.remove_stop("e1")


def test_per_stop_overrides_replace_the_config() -> None:
    manager, sink, _ = make(TrailingStopConfig(activation_pct=0.05, trailing_pct=0.02))
    default = manager.add_trailing_stop("a", 100.0)
    custom = manager.add_trailing_stop("b", 100.0, activation_pct=0.01, trailing_pct=0.1)
    assert (default.activation_pct, default.trailing_pct) == (0.05, 0.02)
    assert (custom.activation_pct, custom.trailing_pct) == (0.01, 0.1)
    assert manager.update_many({"a": 101.0, "b": 101.0}) == []
    assert not manager["a"].active and manager["b"].stop_premium == 100.0  # the 10% trail (90.9) floors at entry
    assert json.loads(sink.events[1].metadata or "") == {"activation_pct": 0.01, "trailing_pct": 0.1}


def test_update_stops_returns_the_triggered_in_order() -> None:
    manager, _, _ = make()
    for eid in ("a", "b", "c"):
        manager.add_trailing_stop(eid, 10.0)
    asyncio.run(manager.update_stops({"a": 11.0, "b": 11.0, "c": 11.0}))
    fired = asyncio.run(manager.update_stops({"c": 10.0, "b": 11.5, "a": 10.5}))
    assert [f.execution_id for f in fired] == ["c", "a"]
    assert list(s.execution_id for s in manager) == ["b"]


def test_a_bad_batch_changes_nothing() -> None:
    manager, sink, _ = make()
    manager.add_trailing_stop("a", 10.0)
    manager.add_trailing_stop("b", 10.0)
    before = len(sink.events)
    with pytest.raises(ValueError, match="'b'"):
        manager.update_many({"a": 11.0, "b": math.nan})
    with pytest.raises(KeyError, match="zzz"):
        manager.update_many({"a": 11.0, "zzz": 11.0})
    assert len(sink.events) == before and not manager["a"].active


def test_duplicate_id_is_refused() -> None:
    manager, _, _ = make()
    manager.add_trailing_stop("a", 10.0)
    with pytest.raises(ValueError, match="already exists"):
        manager.add_trailing_stop("a", 11.0)


@pytest.mark.parametrize("premium", [0.0, -1.0, math.nan, math.inf])
def test_nonsense_premiums_are_refused(premium: float) -> None:
    manager, _, _ = make()
    with pytest.raises(ValueError, match="entry_premium"):
        manager.add_trailing_stop("x", premium)
    manager.add_trailing_stop("a", 10.0)
    with pytest.raises(ValueError, match="premium"):
        manager.update("a", premium)


@pytest.mark.parametrize("pct", [0.0, 1.0, -0.1, 1.5, math.nan])
def test_nonsense_pcts_are_refused(pct: float) -> None:
    with pytest.raises(ValueError, match="activation_pct"):
        TrailingStopConfig(activation_pct=pct)
    with pytest.raises(ValueError, match="trailing_pct"):
        TrailingStopConfig(trailing_pct=pct)
    manager, _, _ = make()
    with pytest.raises(ValueError, match="trailing_pct"):
        manager.add_trailing_stop("a", 10.0, trailing_pct=pct)


def test_works_without_a_logger() -> None:
    manager = TrailingStopManager()
    manager.add_trailing_stop("a", 1.0)
    manager.update("a", 1.1)
    assert manager.update("a", 0.5) is not None


# --------------------------------------------------------------------------- the stop protects profit
def test_a_wide_trail_activates_at_entry_not_below_it() -> None:
    """activation 1%, trail 5%: the trail alone would sit at 103 * 0.95 = 97.85, below entry."""
    manager, sink, _ = make(TrailingStopConfig(activation_pct=0.01, trailing_pct=0.05))
    manager.add_trailing_stop("abc123", entry_premium=100.0)
    assert manager.update("abc123", 103.0) is None
    assert [e.action for e in sink.events] == ["ADD", "ACTIVATE"]  # the guide's example, unchanged
    assert manager["abc123"].stop_premium == 100.0 and sink.events[-1].stop_premium == 100.0
    manager.update("abc123", 105.0)  # trail 99.75: still below entry, the stop stays at 100
    assert manager["abc123"].stop_premium == 100.0 and len(sink.events) == 2
    manager.update("abc123", 110.0)  # trail 104.5 > 100: the stop ratchets
    assert manager["abc123"].stop_premium == pytest.approx(104.5)
    assert [e.action for e in sink.events][-1] == "UPDATE"


def test_a_stop_at_entry_triggers_at_entry_and_locks_no_loss() -> None:
    manager, sink, _ = make(TrailingStopConfig(activation_pct=0.01, trailing_pct=0.05))
    manager.add_trailing_stop("e1", 100.0)
    manager.update("e1", 101.0)  # the case: 101 * 0.95 = 95.95 before
    fired = manager.update("e1", 99.0)  # gapped through the stop
    assert fired is not None and fired.stop_premium == 100.0 and fired.exit_premium == 99.0
    assert fired.profit_locked == 0.0
    assert sink.events[-1].stop_premium == 100.0


def test_every_logged_stop_sits_between_entry_and_the_high_and_never_falls() -> None:
    rng = random.Random(20260302)
    for _ in range(200):
        activation, trailing = rng.uniform(0.001, 0.2), rng.uniform(0.001, 0.5)
        sink = MemorySink()
        manager = TrailingStopManager(TrailingStopConfig(activation, trailing), sink)
        entry = rng.uniform(0.5, 50.0)
        manager.add_trailing_stop("e", entry)
        premium = entry
        while "e" in manager:
            premium = max(0.01, premium * math.exp(rng.gauss(0.002, 0.03)))
            manager.update("e", premium)
            if len(sink.events) > 500:
                break
        stops = [e.stop_premium for e in sink.events if e.stop_premium is not None]
        assert all(entry <= s <= e.highest_premium for s, e in zip(stops, sink.events[1:], strict=True))
        assert stops == sorted(stops)
