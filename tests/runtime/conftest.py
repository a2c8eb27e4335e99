from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest

from risk_runtime.table import RiskEventsTable

WRITER = Path(__file__).resolve().parents[2] / "bench" / "fault_writer.py"
"""The writer process stand-in, shared with the fault benchmark (``bench.faults``)."""


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    return tmp_path / "lake"


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    return tmp_path / "spool"


def bronze(lake: Path) -> pa.Table:
    return RiskEventsTable(lake).read()


def wait_for_rows(lake: Path, expected: int, timeout: float = 60.0) -> pa.Table:
    """Poll bronze until it holds ``expected`` rows (the shipper may outlive the writer)."""
    deadline = time.monotonic() + timeout
    while True:
        table = bronze(lake)
        if table.num_rows >= expected or time.monotonic() > deadline:
            return table
        time.sleep(0.1)


def run_writer(lake: Path, spool: Path, count: int, mode: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WRITER), str(lake), str(spool), str(count), mode, *extra],
        stdout=subprocess.PIPE,
        text=True,
    )
