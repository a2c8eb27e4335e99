"""The code location as a whole: a snapshot of its graph and triggers, and Dagster's own checks.

The snapshot makes every change to the graph visible in review: a new asset, a dependency, an owner,
a schedule's cron or a sensor that would start stopped all fail here until EXPECTED_* says so. When
the failure is intended, the assertion message prints the current value to paste over the old one.
"""

from __future__ import annotations

import os
import pprint
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from risk_pipeline.definitions import defs
from risk_pipeline.defs.automation import daily_pipeline_job, daily_pipeline_schedule
from risk_pipeline.defs.bronze.assets import bronze_risk_events
from risk_pipeline.defs.constants import GOLD_GROUP, SILVER_GROUP, asset_key
from risk_pipeline.defs.partitions import daily_partitions
from risk_pipeline.defs.resources import LakeResource
from risk_pipeline.defs.silver.schema import SILVER
from risk_runtime.events import BRONZE_SCHEMA
from risk_runtime.table import DEFAULT_LAKE_ROOT, LAKE_ROOT_ENV

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent

RUNNING = "RUNNING"

# ---------------------------------------------------------------------------------------------- the snapshot
_SILVER = {
    "deps": ["bronze/risk_events"],
    "group": "silver",
    "owners": ["team:risk-platform"],
    "tags": {"domain": "risk", "layer": "silver"},
    "kinds": ["deltalake", "polars"],
    "partitioned": True,
    "automation_condition": None,
}
_GOLD = {
    "deps": ["silver/risk_events"],  # each gold table also depends on itself: its previous day
    "group": "gold",
    "owners": ["team:risk-platform"],
    "tags": {"domain": "risk", "layer": "gold"},
    "kinds": ["deltalake", "polars"],
    "partitioned": True,
    "automation_condition": None,
}

EXPECTED_ASSETS: dict[str, dict[str, Any]] = {
    "bronze/risk_events": {
        "deps": [],
        "group": "bronze",
        "owners": ["team:risk-platform"],
        "tags": {"domain": "risk", "layer": "bronze"},
        "kinds": ["deltalake", "pyarrow"],
        "partitioned": False,
        "automation_condition": None,
    },
    "silver/risk_events": _SILVER,
    "silver/risk_events_quarantine": _SILVER,
    "gold/circuit_breaker_transitions": {**_GOLD, "deps": ["gold/circuit_breaker_transitions", "silver/risk_events"]},
    "gold/limit_rejection_stats": {**_GOLD, "deps": ["gold/limit_rejection_stats", "silver/risk_events"]},
    "gold/trailing_stop_outcomes": {**_GOLD, "deps": ["gold/trailing_stop_outcomes", "silver/risk_events"]},
    "reports/risk_history": {
        "deps": ["gold/circuit_breaker_transitions", "gold/limit_rejection_stats", "gold/trailing_stop_outcomes"],
        "group": "reports",
        "owners": ["team:risk-platform"],
        "tags": {"domain": "risk", "layer": "reports"},
        "kinds": ["html", "plotly"],
        "partitioned": False,
        "automation_condition": None,
    },
}

SILVER_AND_GOLD = sorted(key for key, spec in EXPECTED_ASSETS.items() if spec["group"] in ("silver", "gold"))

EXPECTED_SCHEDULES: dict[str, dict[str, Any]] = {
    "daily_pipeline_schedule": {
        "cron": "30 0 * * *",
        "timezone": "UTC",
        "default_status": RUNNING,
        "job": "daily_pipeline_job",
        "assets": SILVER_AND_GOLD,
    },
    "lake_maintenance_schedule": {
        "cron": "15 3 * * *",
        "timezone": "UTC",
        "default_status": RUNNING,
        "job": "lake_maintenance_job",
        "assets": [],  # an op job: compaction, checkpoints and vacuum change files, not rows
    },
}

EXPECTED_SENSORS: dict[str, dict[str, Any]] = {
    "bronze_sensor": {
        "default_status": RUNNING,
        "type": "SensorDefinition",
        "assets": [
            "gold/circuit_breaker_transitions",
            "gold/limit_rejection_stats",
            "gold/trailing_stop_outcomes",
            "silver/risk_events",
            "silver/risk_events_quarantine",
        ],
    },
    "risk_history_after_gold": {
        "default_status": RUNNING,
        "type": "SensorDefinition",
        "assets": ["reports/risk_history"],
    },
}

EXPECTED_RESOURCES = ["lake"]


def condition_summary(condition: dg.AutomationCondition | None) -> str | None:
    """A condition as its labels (``eager``, ``AND(eager, NOT(in_progress))``): short, and exact enough."""
    if condition is None:
        return None
    if condition.get_label():
        return condition.get_label()
    children = [condition_summary(child) for child in condition.children]
    return f"{condition.name}({', '.join(c or '' for c in children)})" if children else condition.name


def asset_snapshot(definitions: dg.Definitions) -> dict[str, dict[str, Any]]:
    return {
        spec.key.to_user_string(): {
            "deps": sorted(dep.asset_key.to_user_string() for dep in spec.deps),
            "group": spec.group_name,
            "owners": list(spec.owners),
            "tags": {k: v for k, v in spec.tags.items() if not k.startswith("dagster/kind/")},
            "kinds": sorted(spec.kinds),
            "partitioned": spec.partitions_def is not None,
            "automation_condition": condition_summary(spec.automation_condition),
        }
        for spec in sorted(definitions.resolve_all_asset_specs(), key=lambda s: s.key.to_user_string())
    }


def trigger_snapshot(definitions: dg.Definitions) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    repository = definitions.get_repository_def()

    def assets_run_by(job_name: str) -> list[str]:
        return sorted(k.to_user_string() for k in repository.get_job(job_name).asset_layer.executable_asset_keys)

    schedules = {
        s.name: {
            "cron": s.cron_schedule,
            "timezone": s.execution_timezone,
            "default_status": s.default_status.value,
            "job": s.job_name,
            "assets": assets_run_by(s.job_name),
        }
        for s in repository.schedule_defs
    }
    sensors = {
        s.name: {
            "default_status": s.default_status.value,
            "type": type(s).__name__,
            "assets": None if isinstance(s, dg.AutomationConditionSensorDefinition) else assets_run_by(s.job_name),
        }
        for s in repository.sensor_defs
    }
    return schedules, sensors


def _paste(value: object) -> str:
    return "\nIf the change is intended, the current value is:\n" + pprint.pformat(value, sort_dicts=True, width=110)


def test_asset_specs_match_the_snapshot() -> None:
    actual = asset_snapshot(defs)
    assert actual == EXPECTED_ASSETS, _paste(actual)


def test_schedules_and_sensors_match_the_snapshot() -> None:
    schedules, sensors = trigger_snapshot(defs)
    assert schedules == EXPECTED_SCHEDULES, _paste(schedules)
    assert sensors == EXPECTED_SENSORS, _paste(sensors)


def test_resources_match_the_snapshot() -> None:
    assert sorted(defs.get_repository_def().get_top_level_resources()) == EXPECTED_RESOURCES


def test_every_asset_has_an_owner_a_group_and_kinds() -> None:
    for spec in defs.resolve_all_asset_specs():
        assert spec.owners and spec.group_name and spec.kinds, spec.key


def test_bronze_metadata_describes_the_table() -> None:
    metadata = bronze_risk_events.metadata
    columns = {c.name: c for c in metadata["dagster/column_schema"].columns}
    assert list(columns) == BRONZE_SCHEMA.names
    assert columns["event_date"].type == "date32[day]"
    assert columns["event_type"].constraints.nullable is False
    assert columns["symbol"].constraints.nullable is True
    assert metadata["dagster/uri"].endswith("/bronze/risk_events")


# ---------------------------------------------------------------------------------------------- resources
def test_lake_resource_defaults_to_data_lake_without_the_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(LAKE_ROOT_ENV, raising=False)
    assert LakeResource().root == DEFAULT_LAKE_ROOT == "data/lake"


def test_lake_resource_reaches_assets_with_the_root_from_the_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(LAKE_ROOT_ENV, str(tmp_path))
    seen: list[str] = []

    @dg.asset
    def probe(lake: LakeResource) -> None:
        seen.append(lake.lake().location)

    result = dg.materialize([probe], resources={"lake": LakeResource()})

    assert result.success
    assert seen == [str(tmp_path)]


# ---------------------------------------------------------------------------------------------- the schedule
@dg.asset(key=asset_key(SILVER), partitions_def=daily_partitions, group_name=SILVER_GROUP)
def silver_stand_in() -> None:
    """Stands in for silver so the schedule's job resolves to something."""


@dg.asset(key=["gold", "stand_in"], deps=[silver_stand_in], partitions_def=daily_partitions, group_name=GOLD_GROUP)
def gold_stand_in() -> None:
    """Stands in for a gold table."""


def test_daily_schedule_runs_yesterday_for_silver_and_gold(tmp_path: Path) -> None:
    lake = LakeResource(root=str(tmp_path / "lake"))
    stand_ins = dg.Definitions(
        assets=[bronze_risk_events, silver_stand_in, gold_stand_in],
        jobs=[daily_pipeline_job],
        schedules=[daily_pipeline_schedule],
        resources={"lake": lake},
    )
    job = stand_ins.resolve_job_def(daily_pipeline_job.name)
    with dg.DagsterInstance.ephemeral() as instance:
        context = dg.build_schedule_context(
            instance=instance,
            scheduled_execution_time=datetime(2026, 3, 2, 0, 30, tzinfo=UTC),
            repository_def=stand_ins.get_repository_def(),
            resources={"lake": lake},
        )
        data = daily_pipeline_schedule.evaluate_tick(context)

    (run,) = data.run_requests
    assert run.partition_key == "2026-03-01"
    assert job.asset_layer.executable_asset_keys == {silver_stand_in.key, gold_stand_in.key}


def test_daily_schedule_skips_before_the_first_partition(tmp_path: Path) -> None:
    first = daily_partitions.start
    with dg.DagsterInstance.ephemeral() as instance:
        context = dg.build_schedule_context(
            instance=instance,
            scheduled_execution_time=first.replace(minute=30),
            resources={"lake": LakeResource(root=str(tmp_path / "lake"))},
        )
        data = daily_pipeline_schedule.evaluate_tick(context)
    assert not data.run_requests
    assert "before the first partition" in data.skip_message


# ---------------------------------------------------------------------------------------------- the instance
@pytest.fixture
def dagster_home(tmp_path: Path) -> Path:
    """A copy of the committed instance config, so checks never write into the repo's instance."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    return home


def test_committed_instance_config(dagster_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    with dg.DagsterInstance.get() as instance:
        concurrency = instance.get_concurrency_config()
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert concurrency.run_queue_config.max_concurrent_runs == 2
        assert {"key": "risk/pipeline", "limit": 1} in concurrency.run_queue_config.tag_concurrency_limits
        assert concurrency.pool_config.default_pool_limit == 1  # the silver and the gold pool: one step each
        assert not instance.telemetry_enabled
        instance.get_runs()  # touches the run storage
    assert (dagster_home / "history" / "runs.db").exists()


def _run(args: list[str], dagster_home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "VIRTUAL_ENV": str(VENV_BIN.parent)}
    return subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_dg_check_defs(dagster_home: Path) -> None:
    result = _run([str(VENV_BIN / "dg"), "check", "defs"], dagster_home)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All definitions loaded successfully" in result.stdout + result.stderr


def test_dagster_definitions_validate(dagster_home: Path) -> None:
    result = _run(
        [str(VENV_BIN / "dagster"), "definitions", "validate", "-m", "risk_pipeline.definitions"], dagster_home
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All code locations passed validation" in result.stdout + result.stderr
