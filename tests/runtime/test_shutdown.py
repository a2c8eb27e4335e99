"""SIGTERM and fork on the design guide's asyncio path, in real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import wait_for_rows

_ASYNC_SESSION = textwrap.dedent(
    """
    import asyncio, signal, sys
    from pathlib import Path
    from risk_runtime import RiskEventLogger, RiskEvent, RiskEventType
    from risk_runtime.circuit_breaker import CircuitBreakerConfig, TradingCircuitBreaker

    lake, spool, chain = sys.argv[1], sys.argv[2], sys.argv[3]
    marker = Path(spool).parent / "app-handler-ran"

    def app_handler(signum, frame):
        marker.write_text("ran")
        raise SystemExit(0)

    async def main():
        stop = asyncio.Event()
        if chain == "before":
            signal.signal(signal.SIGTERM, app_handler)
        logger = RiskEventLogger(lake, spool_dir=spool, sync_interval=60.0)  # nothing on disk before SIGTERM
        await logger.initialize()
        if chain == "after":
            def on_term():
                marker.write_text("ran")
                stop.set()
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, on_term)
        cb = TradingCircuitBreaker(CircuitBreakerConfig(failure_threshold=3), event_logger=logger)
        for _ in range(3):
            cb.record_failure()
        for i in range(500):
            logger.log(RiskEvent(RiskEventType.CB_FAILURE, source="other", failure_count=i))
        print("ready", flush=True)
        try:
            await asyncio.wait_for(stop.wait(), 120)
        except TimeoutError:
            pass

    asyncio.run(main())
    """
)


@pytest.mark.parametrize("chain", ["none", "before", "after"])
def test_sigterm_on_the_asyncio_path_lands_everything_accepted(tmp_path: Path, chain: str) -> None:
    lake, spool = tmp_path / "lake", tmp_path / "spool"
    process = subprocess.Popen(
        [sys.executable, "-c", _ASYNC_SESSION, str(lake), str(spool), chain], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    process.send_signal(signal.SIGTERM)
    code = process.wait(timeout=60)
    if chain == "none":
        assert code == -signal.SIGTERM  # the signal still terminates the process
    else:
        assert code == 0 and (tmp_path / "app-handler-ran").read_text() == "ran"  # the application's handler ran
    table = wait_for_rows(lake, 504)
    assert table.num_rows == 504  # three failures, the change to OPEN, 500 others


_FORK_AFTER_LOAD = textwrap.dedent(
    """
    import os, sys
    from risk_runtime import RiskEventLogger, RiskEvent, RiskEventType
    from risk_runtime.circuit_breaker import CircuitBreakerConfig, TradingCircuitBreaker

    lake, spool = sys.argv[1], sys.argv[2]
    logger = RiskEventLogger(lake, spool_dir=spool).start()
    breaker = TradingCircuitBreaker(CircuitBreakerConfig(failure_threshold=2), event_logger=logger, name="venue")
    snapshot = breaker.load_state(lake)
    assert snapshot is not None and snapshot.state == "OPEN", snapshot
    pid = os.fork()
    if pid == 0:
        child = TradingCircuitBreaker(CircuitBreakerConfig(failure_threshold=2), event_logger=logger, name="venue")
        restored = child.load_state(lake)  # a forked child may restore a breaker too
        logger.log(RiskEvent(RiskEventType.CB_FAILURE, source="child", failure_count=1))
        ok = restored is not None and restored.state == "OPEN" and logger.close(timeout=60)
        os._exit(0 if ok else 3)
    _, status = os.waitpid(pid, 0)
    print(os.waitstatus_to_exitcode(status), flush=True)
    logger.close(timeout=60)
    """
)


def test_fork_after_load_state_is_safe(tmp_path: Path) -> None:
    from risk_runtime import RiskEventLogger
    from risk_runtime.circuit_breaker import CircuitBreakerConfig, TradingCircuitBreaker

    lake, spool = tmp_path / "lake", tmp_path / "spool"
    with RiskEventLogger(lake, spool_dir=spool, handle_signals=False) as logger:
        breaker = TradingCircuitBreaker(CircuitBreakerConfig(failure_threshold=2), event_logger=logger, name="venue")
        breaker.record_failure()
        breaker.record_failure()
        assert logger.flush(timeout=60)
    result = subprocess.run(
        [sys.executable, "-c", _FORK_AFTER_LOAD, str(lake), str(spool)],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "RUST_BACKTRACE": "0"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "0", result.stderr[-3000:]
    assert wait_for_rows(lake, 4).num_rows == 4  # three breaker events and the child's
