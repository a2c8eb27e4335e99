"""The shipper's bell: a writer that seals a segment wakes a shipper that waits long between looks.

Real shipper processes, real named pipes, real Delta tables: a shipper told to look only every 60
seconds still lands a flushed event at once when the writer rings, and never without the ring.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import bronze

from risk_runtime import RiskEvent, RiskEventLogger, RiskEventType
from risk_runtime.shipper_bell import BELL, IDLE_POLL, Bell, next_poll, ring
from risk_runtime.spool import SHIPPER_LOCK, is_locked

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need a POSIX system")

SLOW: float = 60.0
"""The test shipper's wait between looks: longer than any flush below may take."""


def _slow_shipper(lake: Path, spool: Path) -> subprocess.Popen[bytes]:
    spool.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "risk_runtime.shipper", "--spool", str(spool), "--lake", str(lake)]
    command += ["--poll-interval", str(SLOW), "--idle-poll", str(SLOW), "--idle-exit", "300"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not (is_locked(spool / SHIPPER_LOCK) and (spool / BELL).exists()):
        assert process.poll() is None, "the shipper exited"
        assert time.monotonic() < deadline, "the shipper did not start"
        time.sleep(0.05)
    time.sleep(1.0)  # past its first look: from here on it waits SLOW seconds unless rung
    return process


def _log_one(lake: Path, spool: Path) -> RiskEventLogger:
    logger = RiskEventLogger(lake, spool_dir=spool, start_shipper=False).start()
    logger.log(RiskEvent(RiskEventType.CB_FAILURE, source="orders", failure_count=1))
    return logger


def test_a_sealed_segment_wakes_a_shipper_that_looks_only_every_minute(lake: Path, spool: Path) -> None:
    shipper = _slow_shipper(lake, spool)
    try:
        logger = _log_one(lake, spool)
        assert logger.flush(timeout=15)  # sealed, rung, shipped: long before the shipper's next look
        assert bronze(lake).num_rows == 1
        assert logger.close(timeout=15)
    finally:
        shipper.terminate()
        shipper.wait(30)


def test_without_the_ring_the_same_shipper_waits_out_its_interval(
    lake: Path, spool: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fault the bell guards against, planted: the sealed event waits for the shipper's next look."""
    shipper = _slow_shipper(lake, spool)
    try:
        with monkeypatch.context() as patch:
            patch.setattr("risk_runtime.segments.ring", lambda spool_dir: False)
            logger = _log_one(lake, spool)
            assert not logger.flush(timeout=10)
        assert ring(spool)  # the ring the seal did not give
        assert logger.close(timeout=15)
        assert bronze(lake).num_rows == 1
    finally:
        shipper.terminate()
        shipper.wait(30)


def test_a_ring_nobody_hears_is_harmless(tmp_path: Path) -> None:
    assert ring(tmp_path) is False  # no bell yet
    bell = Bell(tmp_path)
    assert bell.listening
    assert ring(tmp_path) is True
    assert bell.wait(5) is True  # heard, and the rings consumed ...
    assert bell.wait(0.01) is False  # ... so the next wait times out
    bell.close()
    assert ring(tmp_path) is False  # the pipe is there, nobody listens


def test_a_bell_replaces_a_file_that_took_its_name(tmp_path: Path) -> None:
    (tmp_path / BELL).write_text("not a pipe")
    bell = Bell(tmp_path)
    try:
        assert bell.listening
        assert ring(tmp_path) is True
    finally:
        bell.close()


def test_the_wait_between_looks_doubles_while_idle_and_resets_on_a_ring() -> None:
    waits = [0.05]
    for _ in range(8):
        waits.append(next_poll(waits[-1], rang=False, fastest=0.05))
    assert waits[:4] == [0.05, 0.1, 0.2, 0.4]
    assert waits[-1] == IDLE_POLL
    assert next_poll(IDLE_POLL, rang=True, fastest=0.05) == 0.05
    assert next_poll(0.05, rang=False, fastest=60.0, slowest=60.0) == 60.0
