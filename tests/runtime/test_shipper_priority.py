"""The shipper a logger starts runs below the trading process in the CPU scheduler.

Converting and committing a batch takes a core for tens of milliseconds; on a host whose cores are
busy, a shipper at normal priority takes the CPU a trading thread is waking up to. These tests start
real shippers through real loggers and read the priority the kernel holds for them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from risk_runtime import RiskEventLogger
from risk_runtime.supervision import ShipperStatus


def _shipper_pid(spool: Path, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = ShipperStatus.read(spool)
        if status is not None and status.pid:
            return status.pid
        time.sleep(0.05)
    raise AssertionError(f"no shipper reported its pid in {spool} within {timeout} s")


def _autogroup_nice(pid: int) -> int | None:
    path = Path(f"/proc/{pid}/autogroup")
    if not path.exists():
        return None
    # e.g. "/autogroup-123 nice 10"
    return int(path.read_text().split()[-1])


@pytest.mark.parametrize("nice", [None, 0, 15])
def test_the_shipper_runs_at_the_configured_priority(tmp_path: Path, nice: int | None) -> None:
    spool = tmp_path / "spool"
    settings = {} if nice is None else {"shipper_nice": nice}
    logger = RiskEventLogger(tmp_path / "lake", spool_dir=spool, **settings).start()
    try:
        pid = _shipper_pid(spool)
        expected = 10 if nice is None else nice
        base = os.getpriority(os.PRIO_PROCESS, 0)
        assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, base + expected)
        group = _autogroup_nice(pid)
        if group is not None:  # Linux with autogroup scheduling: the shipper's session group too
            assert group == expected
    finally:
        assert logger.close()
