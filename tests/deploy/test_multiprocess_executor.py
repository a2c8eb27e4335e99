"""Runs across processes: every job of the code location under the multiprocess executor (each step in a
process of its own, as run workers on other hosts execute them), and a code location name that does not
depend on the folder the project was checked out into."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.definitions.reconstruct import ReconstructableRepository
from dagster_dg_core.context import DgContext

from risk_pipeline.defs.constants import BRONZE_RISK_EVENTS
from risk_pipeline.defs.silver.schema import QUARANTINE, SILVER
from risk_pipeline.lake import Lake
from risk_runtime import RiskEvent, RiskEventType
from risk_runtime.encoding import events_to_bronze
from risk_runtime.table import LAKE_ROOT_ENV, RiskEventsTable

REPO = Path(__file__).resolve().parents[2]
CODE_LOCATION = "risk-event-lake"


def test_code_location_name_is_fixed(tmp_path: Path) -> None:
    # A checkout under another folder name keeps the name sensor cursors and on/off state are stored under.
    elsewhere = tmp_path / "checkout-2026-11"
    elsewhere.mkdir()
    shutil.copy(REPO / "pyproject.toml", elsewhere / "pyproject.toml")
    for root in (REPO, elsewhere):
        assert DgContext.for_project_environment(root, {}).code_location_name == CODE_LOCATION


def _bronze_day(lake: Path, day: datetime) -> int:
    events = [
        RiskEvent(RiskEventType.CB_FAILURE, source="orders", failure_count=i, timestamp=day + timedelta(minutes=i))
        for i in range(1, 40)
    ]
    RiskEventsTable(lake).append(events_to_bronze(events, writer_id="w", first_sequence=1), app_id="w", version=1)
    return len(events)


def test_every_job_runs_under_the_multiprocess_executor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lake_root = tmp_path / "lake"
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    landed = _bronze_day(lake_root, day + timedelta(hours=14))
    monkeypatch.setenv(LAKE_ROOT_ENV, str(lake_root))  # step processes load the code location from scratch
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))

    repository = ReconstructableRepository.for_module("risk_pipeline.definitions", "defs", working_directory=str(REPO))
    job_names = sorted(job.name for job in repository.get_definition().get_all_jobs())
    assert "lake_maintenance_job" in job_names and "daily_pipeline_job" in job_names
    with dg.DagsterInstance.get() as instance:
        for name in job_names:
            job = repository.get_reconstructable_job(name)
            partitioned = job.get_definition().partitions_def is not None
            tags = {"dagster/partition": day.date().isoformat()} if partitioned else None
            with dg.execute_job(
                job,
                instance=instance,
                tags=tags,
                run_config={"execution": {"config": {"multiprocess": {"max_concurrent": 2}}}},
            ) as result:
                assert result.success, name
                events = result.all_events
                # Each step ran in a process of its own.
                started = [e for e in events if e.event_type == dg.DagsterEventType.STEP_WORKER_STARTED]
                steps = [e for e in events if e.event_type == dg.DagsterEventType.STEP_SUCCESS]
                assert steps and len(started) == len(steps), name
                failed = [
                    e.asset_check_evaluation_data.check_name
                    for e in events
                    if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
                    and not e.asset_check_evaluation_data.passed
                ]
                assert failed == [], (name, failed)

    lake = Lake(str(lake_root))
    assert lake.read_all(BRONZE_RISK_EVENTS, columns=["event_id"]).height == landed
    assert lake.read_all(SILVER, columns=["event_id"]).height == landed
    assert lake.read_all(QUARANTINE, columns=["event_id"]).height == 0
