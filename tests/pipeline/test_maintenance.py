"""Lake maintenance on real tables: compaction keeps every row, shrinks the file count, keeps time travel."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
from deltalake import DeltaTable

from risk_pipeline.defs.maintenance.compaction import maintain
from risk_pipeline.defs.maintenance.jobs import lake_maintenance_job
from risk_pipeline.defs.resources import LakeResource
from risk_runtime import RiskEvent, RiskEventType
from risk_runtime.encoding import events_to_bronze
from risk_runtime.table import RiskEventsTable


def _small_commits(lake: Path, commits: int, rows: int) -> RiskEventsTable:
    table = RiskEventsTable(lake)
    start = datetime(2026, 11, 20, 12, tzinfo=UTC)
    for n in range(commits):
        events = [
            RiskEvent(RiskEventType.CB_FAILURE, source="orders", failure_count=i, timestamp=start + timedelta(hours=n))
            for i in range(rows)
        ]
        table.append(events_to_bronze(events, writer_id="w", first_sequence=n * rows + 1), app_id="w", version=n + 1)
    return table


def test_compaction_keeps_rows_and_time_travel(tmp_path: Path) -> None:
    table = _small_commits(tmp_path / "lake", commits=30, rows=20)
    before = table.read()
    version_before = table.open().version()

    report = maintain(table.uri)

    assert report.files_before == 30 and report.files_after < report.files_before
    assert report.partitions_compacted == 2  # 30 hourly commits from 12:00 span two UTC days
    after = table.read()
    assert after.num_rows == before.num_rows == 600
    assert sorted(after.column("sequence").to_pylist()) == list(range(1, 601))
    # Within the retention window, vacuum removed nothing an older version needs.
    assert report.files_vacuumed == 0
    assert DeltaTable(table.uri, version=version_before).to_pyarrow_table().num_rows == 600


def test_maintenance_job_observes_every_table(tmp_path: Path) -> None:
    _small_commits(tmp_path / "lake", commits=5, rows=10)
    result = lake_maintenance_job.execute_in_process(
        resources={"lake": LakeResource(root=str(tmp_path / "lake"))}, instance=dg.DagsterInstance.ephemeral()
    )
    assert result.success
    observations = [
        e.asset_observation_data.asset_observation
        for e in result.all_events
        if e.event_type == dg.DagsterEventType.ASSET_OBSERVATION
    ]
    assert [o.asset_key.path for o in observations] == [["bronze", "risk_events"]]  # the only table that exists
    metadata = observations[0].metadata
    assert metadata["files_before"].value == 5 and metadata["files_after"].value == 1
