"""Fault injection across real processes and real Delta tables: the ``bench.faults`` scenarios at CI sizes.

The benchmark (``python -m bench.faults``) runs the same functions at report sizes and prints timings;
here only counts are asserted: every accepted event in bronze and silver exactly once. The kill -9
scenario is tested in ``test_logger_processes.py``; the report sizes run under ``-m slow``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.faults import (
    FULL,
    QUICK,
    ScenarioResult,
    Sizes,
    breaker_recovery,
    kill9,
    maintenance_with_writers,
    many_writers,
    outage,
    read_after_commits,
)

SLOW = pytest.mark.slow
REPORT_SIZE = [SLOW, pytest.mark.timeout(1800)]
"""The benchmark's full sizes: 2,000 commits and 800,000 events take longer than the suite's 300 s limit."""


def assert_exactly_once(result: ScenarioResult) -> None:
    assert result.accepted > 0, result
    assert result.lost == 0, result
    assert result.duplicated == 0, result
    assert result.in_bronze == result.accepted, result
    assert result.in_silver == result.accepted, result
    assert result.notes["quarantined"] == 0, result


@pytest.mark.parametrize("sizes", [QUICK, pytest.param(FULL, marks=REPORT_SIZE)], ids=["ci", "report"])
def test_lake_outage_backlog_drains_exactly_once(tmp_path: Path, sizes: Sizes) -> None:
    result = outage(tmp_path, sizes.outage_seconds)
    assert_exactly_once(result)
    notes = result.notes
    assert notes["rows_before_outage"] > 0  # the writer was landing events before the lake went away
    assert notes["commit_failed_lines"] > 0  # ... and the shipper really hit the outage
    assert notes["outage_samples"] > 0
    assert notes["dropped"] == 0 and notes["landed"]
    assert notes["spool_bytes_peak"] > 0


@pytest.mark.parametrize("shared_spool", [False, True], ids=["spool-per-writer", "shared-spool"])
@pytest.mark.parametrize("sizes", [QUICK, pytest.param(FULL, marks=REPORT_SIZE)], ids=["ci", "report"])
def test_many_writers_into_one_table(tmp_path: Path, sizes: Sizes, shared_spool: bool) -> None:
    result = many_writers(tmp_path, sizes.writers, sizes.writer_events, shared_spool=shared_spool)
    assert_exactly_once(result)
    assert result.accepted == sizes.writers * sizes.writer_events
    assert result.notes["writers_in_bronze"] == sizes.writers
    assert result.notes["all_landed"]
    assert result.notes["tracebacks"] == 0  # retried "commit failed" lines are fine; an escaped error is not


@pytest.mark.parametrize("sizes", [QUICK, pytest.param(FULL, marks=REPORT_SIZE)], ids=["ci", "report"])
def test_maintenance_beside_two_writers(tmp_path: Path, sizes: Sizes) -> None:
    result = maintenance_with_writers(tmp_path / "concurrent", seconds=sizes.maintenance_seconds)
    assert_exactly_once(result)
    assert result.notes["maintain_runs"] > 0
    assert result.notes["maintain_errors"] == 0, result.notes["first_error"]
    assert result.notes["rows_after_final_maintain"] == result.accepted

    reads = read_after_commits(tmp_path / "reads", commits=sizes.read_commits)
    assert reads["rows_ok"]  # many commits, compacted and one commit: the same rows (timings: the benchmark)
    assert reads["files_after"] < reads["files_before"]


def test_breaker_stays_open_across_sigkill_then_half_opens(tmp_path: Path) -> None:
    result = breaker_recovery(tmp_path, reset_timeout=30.0)
    assert_exactly_once(result)
    assert result.accepted == 4  # three failures and the state change to OPEN
    assert result.notes["opened_in_writer"] == "OPEN"
    assert result.notes["opened_at_kept"]
    assert result.notes["failure_count"] == 3
    assert result.notes["states"] == {
        "at_load": "OPEN",
        "half_timeout": "OPEN",
        "just_before": "OPEN",
        "at_timeout": "HALF_OPEN",
    }


@SLOW
@pytest.mark.parametrize("rate", FULL.kill_rates)
@pytest.mark.parametrize("run", range(FULL.kill_repeats))
def test_kill_9_repeated(tmp_path: Path, rate: int, run: int) -> None:
    result = kill9(tmp_path, rate, seed=run)
    assert result.notes["recovery_exit"] == 0, result.notes["recovery_output"]
    assert result.lost == 0 and result.duplicated == 0, result
    assert result.in_silver == result.in_bronze
