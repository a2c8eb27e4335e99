"""A breaker killed right after opening restarts OPEN, from the events still in the local spool."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta
from pathlib import Path

from conftest import bronze

from bench.faults import kill_writer_and_shipper
from risk_runtime.circuit_breaker import CircuitBreakerConfig, CircuitBreakerState, TradingCircuitBreaker
from risk_runtime.clock import ManualClock
from risk_runtime.events import utc_now

_OPEN_THEN_WAIT = textwrap.dedent(
    """
    import json, sys, time
    from risk_runtime import RiskEventLogger
    from risk_runtime.circuit_breaker import CircuitBreakerConfig, TradingCircuitBreaker

    lake, spool = sys.argv[1], sys.argv[2]
    # Batches this small stay in the open segment: on local disk, not yet in bronze.
    logger = RiskEventLogger(lake, spool_dir=spool, max_batch_age=3600, sync_interval=0.05).start()
    breaker = TradingCircuitBreaker(CircuitBreakerConfig(failure_threshold=3, reset_timeout=30), event_logger=logger,
                                    name="venue-a")
    for _ in range(3):
        breaker.record_failure()
    while logger.stats().spooled < 4:  # the durability window has passed
        time.sleep(0.01)
    print(json.dumps({"state": str(breaker.state), "opened_at": breaker.opened_at.isoformat()}), flush=True)
    time.sleep(3600)
    """
)


def test_breaker_killed_right_after_opening_restarts_open(tmp_path: Path) -> None:
    lake, spool = tmp_path / "lake", tmp_path / "spool"
    writer = subprocess.Popen(
        [sys.executable, "-c", _OPEN_THEN_WAIT, str(lake), str(spool)], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout is not None
    opened = json.loads(writer.stdout.readline())
    kill_writer_and_shipper(writer, spool)  # kill -9, before any shipper committed the segment
    assert opened["state"] == "OPEN"
    assert bronze(lake).num_rows == 0  # nothing in bronze: the state is only in the spool

    opened_at = datetime.fromisoformat(opened["opened_at"])
    clock = ManualClock(utc_now())
    config = CircuitBreakerConfig(failure_threshold=3, reset_timeout=30)
    breaker = TradingCircuitBreaker(config, name="venue-a", clock=clock)
    snapshot = breaker.load_state(lake, spool_dir=spool)
    assert snapshot is not None and snapshot.state is CircuitBreakerState.OPEN
    assert breaker.opened_at == opened_at and breaker.failure_count == 3
    clock.set(opened_at + timedelta(seconds=29.9))
    assert breaker.state is CircuitBreakerState.OPEN  # until its original timeout ...
    clock.set(opened_at + timedelta(seconds=30))
    assert breaker.state is CircuitBreakerState.HALF_OPEN  # ... then half-open, as if never stopped
    other = TradingCircuitBreaker(config, name="venue-b", clock=clock)
    assert other.load_state(lake, spool_dir=spool) is None  # only its own events


def test_load_state_folds_bronze_and_spool_together(tmp_path: Path) -> None:
    """The first failure is in bronze, the next two (and the change to OPEN) only in the spool."""
    from risk_runtime import RiskEventLogger

    lake, spool = tmp_path / "lake", tmp_path / "spool"
    logger = RiskEventLogger(lake, spool_dir=spool, handle_signals=False).start()
    config = CircuitBreakerConfig(failure_threshold=3, reset_timeout=30)
    breaker = TradingCircuitBreaker(config, event_logger=logger, name="venue-a")
    breaker.record_failure()
    assert logger.flush(timeout=60)
    logger.start_shipper = False
    breaker.record_failure()
    breaker.record_failure()
    logger._cycle(seal=False)  # on local disk, in the open segment: no shipper commits that
    assert bronze(lake).num_rows == 1
    restored = TradingCircuitBreaker(config, name="venue-a")
    snapshot = restored.load_state(lake, spool_dir=spool)
    assert snapshot is not None and snapshot.state is CircuitBreakerState.OPEN and snapshot.failure_count == 3
    assert restored.opened_at == breaker.opened_at
    assert snapshot.durable is False  # two of its events are not in the lake yet
    logger.start_shipper = True
    assert logger.flush(timeout=60)
    landed = TradingCircuitBreaker(config, name="venue-a").load_state(lake, spool_dir=spool)
    assert landed is not None and landed.durable is True and landed.state is CircuitBreakerState.OPEN
    logger.close(timeout=0.5)
