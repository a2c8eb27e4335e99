"""A failure is never exit 0: the real ``risk-lake`` in a subprocess, as ``cron`` would run it.

A lost event (a gap in a writer's sequence) fails a blocking check; a quarantine rate over its
threshold fails a warning check. Either makes ``materialize`` exit non-zero and print the failed
check with its facts, unless the operator opts out with ``--allow-check-failures``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from ordering_lake import D0, at, run_cli, ship

from risk_pipeline import cli
from risk_pipeline.defs.silver.checks import NO_SEQUENCE_GAPS, QUARANTINE_RATE, QUARANTINE_RATE_ENV
from risk_runtime.events import RiskEvent, RiskEventType
from risk_runtime.table import LAKE_ROOT_ENV


def _success(hour: int) -> RiskEvent:
    return RiskEvent(RiskEventType.CB_SUCCESS, timestamp=at(D0, hour), source="cb-orders")


def _bad_transition(hour: int) -> RiskEvent:
    return RiskEvent(
        RiskEventType.CB_STATE_CHANGE, timestamp=at(D0, hour), source="cb-orders", old_state="CLOSED",
        new_state="MELTED", failure_count=1,
    )  # fmt: skip


def test_a_sequence_gap_exits_non_zero_naming_the_writer_and_range(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    ship(root, [_success(9), _success(10)], writer="desk-1", batch=1, first_sequence=1)
    ship(root, [_success(11)], writer="desk-1", batch=2, first_sequence=4)  # 3 was lost

    result = run_cli("--lake", str(root), "materialize")

    assert result.returncode == 1, result.stdout + result.stderr
    assert NO_SEQUENCE_GAPS in result.stdout
    assert "desk-1: 3..3" in result.stdout


def test_a_failing_warning_check_exits_non_zero(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    ship(root, [_success(9), _bad_transition(10)], writer="desk-1", batch=1)

    result = run_cli("--lake", str(root), "materialize", **{QUARANTINE_RATE_ENV: "0.1"})

    assert result.returncode == 1, result.stdout + result.stderr
    assert QUARANTINE_RATE in result.stdout
    assert f"days_over: ['{D0}']" in result.stdout or f"days_over: [{D0!r}]" in result.stdout


def test_allow_check_failures_reports_them_and_exits_zero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(LAKE_ROOT_ENV, "unused")
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv(QUARANTINE_RATE_ENV, "0.1")
    root = tmp_path / "lake"
    ship(root, [_success(9), _bad_transition(10)], writer="desk-1", batch=1)

    assert cli.main(["--lake", str(root), "materialize", "--allow-check-failures"]) == 0
    assert QUARANTINE_RATE in capsys.readouterr().out
    assert cli.main(["--lake", str(root), "materialize"]) == 1


def test_queries_on_a_lake_that_does_not_exist_fail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(LAKE_ROOT_ENV, "unused")
    missing = tmp_path / "nowhere"

    assert cli.main(["--lake", str(missing), "queries"]) == 1
    assert "no lake at" in capsys.readouterr().err
    assert cli.main(["--lake", str(missing), "materialize"]) == 1
