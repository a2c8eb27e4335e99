"""The shipper a logger starts runs below the trading process in the CPU scheduler.

Converting and committing a batch takes a core for tens of milliseconds; on a host whose cores are
busy, a shipper at normal priority takes the CPU a trading thread is waking up to. These tests start
real shippers through real loggers and read the priority the kernel holds for them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from risk_runtime import RiskEvent, RiskEventLogger, RiskEventType
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


# ------------------------------------------------------------------ the CPUs the shipper runs on
@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="CPU affinity is Linux's (os.sched_setaffinity)")
def test_the_shipper_runs_on_the_cpus_it_was_given_not_the_trading_process_pin(tmp_path: Path) -> None:
    """A trading process pinned to one CPU hands that pin to its children; the shipper takes the CPUs it is given."""
    cpus = sorted(os.sched_getaffinity(0))
    trading_cpu, shipper_cpu = cpus[0], cpus[-1]
    spool = tmp_path / "spool"
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {trading_cpu})
    try:
        logger = RiskEventLogger(tmp_path / "lake", spool_dir=spool, shipper_cpus={shipper_cpu}).start()
        try:
            pid = _shipper_pid(spool)
            deadline = time.monotonic() + 30
            while os.sched_getaffinity(pid) != {shipper_cpu} and time.monotonic() < deadline:
                time.sleep(0.05)  # the shipper pins itself once it holds the spool
            assert os.sched_getaffinity(pid) == {shipper_cpu}
            assert os.sched_getaffinity(0) == {trading_cpu}  # the trading process keeps its own
        finally:
            assert logger.close()
    finally:
        os.sched_setaffinity(0, before)


def test_without_shipper_cpus_the_shipper_inherits_the_trading_process_cpus(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    logger = RiskEventLogger(tmp_path / "lake", spool_dir=spool).start()
    try:
        pid = _shipper_pid(spool)
        assert os.sched_getaffinity(pid) == os.sched_getaffinity(0)
    finally:
        assert logger.close()


@pytest.mark.parametrize("cpus", [set(), {-1}, {4096}, {True}, {"0"}, 0, "0,1"])
def test_shipper_cpus_that_cannot_be_are_refused_at_construction(tmp_path: Path, cpus: object) -> None:
    with pytest.raises(ValueError, match="shipper_cpus"):
        RiskEventLogger(tmp_path / "lake", spool_dir=tmp_path / "spool", shipper_cpus=cpus)  # type: ignore[arg-type]


def test_a_shipper_that_cannot_take_its_cpus_says_so_and_ships_nothing(tmp_path: Path) -> None:
    """A CPU outside the process's cpuset is refused by the kernel: the shipper exits 2 and says why, in its
    output and in the status the trading process's ``stats()`` reads; the events wait in the spool."""
    lake, spool = tmp_path / "lake", tmp_path / "spool"
    with RiskEventLogger(lake, spool_dir=spool, start_shipper=False) as logger:
        logger.log(RiskEvent(RiskEventType.CB_FAILURE, source="orders"))
    absent = (os.cpu_count() or 1) + 64  # no such CPU here
    command = [sys.executable, "-m", "risk_runtime.shipper", "--spool", str(spool), "--lake", str(lake)]
    result = subprocess.run([*command, "--cpus", str(absent)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"cannot run on CPUs [{absent}]" in result.stderr
    status = ShipperStatus.read(spool)
    assert status is not None and status.last_error is not None and "cannot run on CPUs" in status.last_error
    assert list(spool.glob("writers/*/*.seg"))  # nothing shipped, nothing lost
    assert not (lake / "bronze" / "risk_events" / "_delta_log").exists()
