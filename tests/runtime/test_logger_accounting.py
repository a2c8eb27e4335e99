"""Honest accounting: every accepted event is in bronze or counted as dropped, and the caller is told."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import pytest
from conftest import bronze

from bench.faults import break_lake, restore_lake
from risk_runtime import OverflowPolicy, RiskEvent, RiskEventLogger, RiskEventType
from risk_runtime.circuit_breaker import CircuitBreakerConfig, TradingCircuitBreaker


def failure(i: int) -> RiskEvent:
    return RiskEvent(RiskEventType.CB_FAILURE, source="orders", failure_count=i)


def test_log_after_close_is_refused_and_counted(lake: Path, spool: Path) -> None:
    logger = RiskEventLogger(lake, spool_dir=spool).start()
    assert all(logger.log(failure(i)) for i in range(3))
    assert logger.close(timeout=60)
    assert logger.log(failure(99)) is False
    assert logger.log(failure(100)) is False
    stats = logger.stats()
    assert stats.accepted == 3 and stats.refused_after_close == 2
    assert bronze(lake).num_rows == 3


@pytest.mark.parametrize("round_", range(5))
def test_drop_oldest_under_a_racing_flusher_counts_every_loss(lake: Path, spool: Path, round_: int) -> None:
    logger = RiskEventLogger(
        lake,
        spool_dir=spool,
        max_buffer_events=64,
        overflow=OverflowPolicy.DROP_OLDEST,
        batch_size=16,
        sync_interval=0.001,
        fsync=False,
    ).start()
    threads = [threading.Thread(target=lambda: [logger.log(failure(i)) for i in range(20_000)]) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert logger.close(timeout=120)
    stats = logger.stats()
    assert stats.dropped > 0  # the race really happened: the backlog overflowed
    assert stats.accepted == bronze(lake).num_rows + stats.dropped


@pytest.mark.parametrize("name", ["sync_interval", "max_batch_age", "exit_timeout", "flush_timeout"])
@pytest.mark.parametrize("value", [math.inf, -1.0, math.nan])
def test_non_finite_or_negative_intervals_are_refused(lake: Path, name: str, value: float) -> None:
    with pytest.raises(ValueError, match=name):
        RiskEventLogger(lake, **{name: value})  # type: ignore[arg-type]


def test_flush_and_save_state_give_up_in_finite_time_while_the_lake_is_down(lake: Path, spool: Path) -> None:
    logger = RiskEventLogger(lake, spool_dir=spool, flush_timeout=2.0).start()
    logger.log(failure(0))
    assert logger.flush(timeout=60)  # the table exists, the shipper runs
    away = break_lake(lake)
    breaker = TradingCircuitBreaker(CircuitBreakerConfig(failure_threshold=2), event_logger=logger)
    breaker.record_failure()
    breaker.record_failure()
    results: dict[str, object] = {}
    waiter = threading.Thread(
        target=lambda: results.update(flush=bool(logger.flush()), snapshot=breaker.save_state()), daemon=True
    )
    waiter.start()
    waiter.join(timeout=120)
    assert not waiter.is_alive(), "flush()/save_state() waited for a lake that is down"
    assert results["flush"] is False
    assert results["snapshot"].durable is False  # type: ignore[attr-defined]
    stats = logger.stats()
    assert stats.last_error is not None  # the shipper cannot reach its table, and stats() says so
    assert stats.oldest_unshipped_age is not None and stats.oldest_unshipped_age > 0
    assert logger.log(failure(5))  # still accepting, within bounds
    restore_lake(lake, away)
    assert logger.close(timeout=120)
    assert bronze(lake).num_rows == 5


def test_a_flusher_that_dies_is_visible_and_restarted(lake: Path, spool: Path) -> None:
    logger = RiskEventLogger(lake, spool_dir=spool).start()
    flusher = logger._flusher
    real = flusher._write_backlog

    def dying() -> None:
        flusher._write_backlog = real  # type: ignore[method-assign]
        raise SystemExit("flusher killed")

    flusher._write_backlog = dying  # type: ignore[method-assign]
    logger.log(failure(1))
    flusher.wake.set()
    assert logger._flusher is not None
    logger._flusher.join(timeout=30)
    stats = logger.stats()
    assert not stats.flusher_running
    assert "flusher" in (stats.last_error or "")
    assert logger.log(failure(2))
    assert logger.flush(timeout=60)  # a flush restarts it
    assert logger.stats().flusher_running
    assert logger.close(timeout=60)
    assert bronze(lake).num_rows == 2
