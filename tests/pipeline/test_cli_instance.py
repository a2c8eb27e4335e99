"""Several risk-lake processes opening a fresh Dagster instance at once leave it usable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

REPO = Path(__file__).resolve().parents[2]
OPEN = (
    "from risk_pipeline.materialization import open_instance; "
    "instance = open_instance(); instance.get_runs(); instance.dispose()"
)


def test_processes_opening_a_fresh_instance_at_once_leave_one_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without one opener at a time, SQLite's first stamping races: "more than one head present", for good.
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO / "dagster_home" / "dagster.yaml").read_text())
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    openers = [
        subprocess.Popen([sys.executable, "-c", OPEN], env=env, stderr=subprocess.PIPE, text=True) for _ in range(4)
    ]
    errors = [opener.communicate(timeout=120)[1] for opener in openers]
    assert [opener.returncode for opener in openers] == [0] * 4, errors
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        assert instance.get_runs() == []
