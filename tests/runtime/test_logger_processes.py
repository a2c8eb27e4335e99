"""RiskEventLogger across real processes: exit, SIGTERM, kill -9, fork, concurrent writers."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pyarrow.compute as pc
import pytest
from conftest import bronze, run_writer, wait_for_rows

from bench.faults import DURABILITY_WINDOW, kill9


def assert_gapless(table, writers: int) -> None:  # type: ignore[no-untyped-def]
    by_writer: dict[str, list[int]] = {}
    for row in table.select(["writer_id", "sequence"]).to_pylist():
        by_writer.setdefault(row["writer_id"], []).append(row["sequence"])
    assert len(by_writer) == writers
    for sequences in by_writer.values():
        assert sorted(sequences) == list(range(1, len(sequences) + 1))


def test_normal_exit_lands_every_event(lake: Path, spool: Path) -> None:
    writer = run_writer(lake, spool, 3_000, "exit")
    assert writer.wait(timeout=120) == 0
    table = wait_for_rows(lake, 3_000)
    assert table.num_rows == 3_000
    assert_gapless(table, 1)


def test_sigterm_lands_every_event(lake: Path, spool: Path) -> None:
    writer = run_writer(lake, spool, 2_000, "sigterm")
    assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
    writer.send_signal(signal.SIGTERM)
    assert writer.wait(timeout=60) == -signal.SIGTERM  # the signal still terminates the process
    table = wait_for_rows(lake, 2_000)
    assert table.num_rows == 2_000
    assert_gapless(table, 1)


def test_four_writer_processes_into_one_table(lake: Path, tmp_path: Path) -> None:
    # Separate spools, so four shippers race for the same Delta table, as separate hosts would.
    writers = [run_writer(lake, tmp_path / f"spool-{i}", 2_000, "close") for i in range(4)]
    assert [w.wait(timeout=180) for w in writers] == [0, 0, 0, 0]
    table = wait_for_rows(lake, 8_000)
    assert table.num_rows == 8_000
    assert len(set(table.column("event_id").to_pylist())) == 8_000
    assert_gapless(table, 4)


def test_forked_child_gets_its_own_writer(lake: Path, spool: Path) -> None:
    writer = run_writer(lake, spool, 500, "fork")
    out, _ = writer.communicate(timeout=120)
    assert writer.returncode == 0
    ids = dict(line.split() for line in out.splitlines())
    assert ids["child"] != ids["parent"]
    table = wait_for_rows(lake, 1_000)
    assert table.num_rows == 1_000
    assert Counter(table.column("writer_id").to_pylist()) == {ids["parent"]: 500, ids["child"]: 500}
    assert_gapless(table, 2)


@pytest.mark.parametrize("rate", [1_000, 50_000])
def test_kill_9_loses_nothing_older_than_the_durability_window(tmp_path: Path, rate: int) -> None:
    """Kill the writer (and its shipper) with SIGKILL mid-stream; a recovery shipper commits the rest."""
    window = timedelta(seconds=DURABILITY_WINDOW)  # sync_interval plus scheduling slack on a loaded machine
    # The same scenario the fault benchmark repeats; the kill point stays random, late enough that a
    # loaded CI machine has logged plenty before the durability window.
    result = kill9(tmp_path, rate, run_for=random.uniform(1.5, 2.5))
    killed_at = result.notes["killed_at"]
    assert result.notes["recovery_exit"] == 0, result.notes["recovery_output"]
    table = bronze(tmp_path / "lake")
    timestamps = table.column("timestamp")
    must_have = pc.sum(pc.less(timestamps, killed_at - window)).as_py() or 0
    assert must_have > rate * 0.2  # the writer really was logging for a while
    counts = [r["failure_count"] for r in table.select(["failure_count"]).to_pylist()]
    assert len(counts) == len(set(counts)), "an event landed twice"
    # The writer logs failure_count 1, 2, 3, ...: every event before the window is present.
    assert sorted(counts)[:must_have] == list(range(1, must_have + 1))
    assert_gapless(table, 1)
    # By the writer's own progress reports: nothing accepted before the window is missing.
    assert result.lost == 0 and result.duplicated == 0, result


def test_a_logger_never_started_lands_its_events_at_exit(lake: Path, spool: Path) -> None:
    """log() before start() is accepted; the exit hook starts the logger, with pyarrow's first
    conversion (which imports pandas here, and fails during interpreter shutdown) retried."""
    script = (
        "import sys\n"
        "from risk_runtime import RiskEventLogger, RiskEvent, RiskEventType\n"
        "logger = RiskEventLogger(sys.argv[1], spool_dir=sys.argv[2], handle_signals=False)\n"
        "for i in range(25):\n"
        "    assert logger.log(RiskEvent(RiskEventType.CB_FAILURE, source='never-started', failure_count=i))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(lake), str(spool)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "not written" not in done.stderr and "could not flush" not in done.stderr, done.stderr
    assert wait_for_rows(lake, 25).num_rows == 25
