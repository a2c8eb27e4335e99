"""The Dagster UI tells the truth: row counts are the tables' totals, every column is described, bronze
has a history of observations, the partitions start where the lake does, and gold carries a preview."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from deltalake import DeltaTable
from ordering_lake import REPO, bronze
from simulated_lake import SimulatedLake, simulated_lake

from risk_pipeline.defs.bronze.sensors import bronze_sensor
from risk_pipeline.defs.constants import BRONZE_RISK_EVENTS, REPORTS_GROUP, asset_key
from risk_pipeline.defs.gold.circuit_breaker_transitions import CIRCUIT_BREAKER_TRANSITIONS
from risk_pipeline.defs.gold.limit_rejection_stats import LIMIT_REJECTION_STATS
from risk_pipeline.defs.gold.trailing_stop_outcomes import TRAILING_STOP_OUTCOMES
from risk_pipeline.defs.partitions import PARTITIONS_START_ENV
from risk_pipeline.defs.resources import LakeResource
from risk_pipeline.defs.silver.schema import QUARANTINE, SILVER
from risk_pipeline.lake import Lake

GOLD = (CIRCUIT_BREAKER_TRANSITIONS, TRAILING_STOP_OUTCOMES, LIMIT_REJECTION_STATS)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> SimulatedLake:
    return simulated_lake(tmp_path_factory)


def _latest_metadata(instance: dg.DagsterInstance, key: dg.AssetKey) -> dict[str, object]:
    event = instance.get_latest_materialization_event(key)
    assert event is not None and event.asset_materialization is not None, f"{key} never materialised"
    return {name: getattr(value, "value", value) for name, value in event.asset_materialization.metadata.items()}


def test_row_count_is_each_tables_total_after_a_multi_day_build(built: SimulatedLake) -> None:
    lake = Lake(str(built.root))
    with built.instance() as instance:
        for ref in (*GOLD, SILVER, QUARANTINE):
            metadata = _latest_metadata(instance, asset_key(ref))
            total = len(DeltaTable(lake.uri(ref)).to_pyarrow_table())
            assert metadata["dagster/row_count"] == total, ref
            assert "risk/rows_written" in metadata, ref
        # one run per day: the last run wrote one day, far less than the whole table
        stops = _latest_metadata(instance, asset_key(TRAILING_STOP_OUTCOMES))
        assert stops["risk/rows_written"] < stops["dagster/row_count"]
        assert stops["risk/partition_rows"] == sum(stops["rows_per_day"].values())  # type: ignore[union-attr]


def test_gold_materialisations_carry_a_markdown_preview(built: SimulatedLake) -> None:
    with built.instance() as instance:
        for ref in GOLD:
            event = instance.get_latest_materialization_event(asset_key(ref))
            assert event is not None and event.asset_materialization is not None
            preview = event.asset_materialization.metadata["preview"]
            assert isinstance(preview, dg.MarkdownMetadataValue), ref
            text = preview.value
            assert "| " in text and "**" in text, text  # a table of rows and bold headline numbers
            rows = [line for line in text.splitlines() if line.startswith("|")]
            assert len(rows) >= 3, text  # a header, its rule, at least one row
            assert all(len(cell.strip()) <= 40 for line in rows for cell in line.split("|")), text  # short ids
        stops = instance.get_latest_materialization_event(asset_key(TRAILING_STOP_OUTCOMES))
        assert stops is not None and stops.asset_materialization is not None
        text = stops.asset_materialization.metadata["preview"].value
        assert "trigger rate" in text and "profit locked" in text, text


def test_every_column_of_every_table_has_a_description() -> None:
    from risk_pipeline.definitions import defs

    graph = defs.resolve_asset_graph()
    seen = set()
    for key in graph.get_all_asset_keys():
        if graph.get(key).group_name == REPORTS_GROUP:  # a report is a page, not a table
            continue
        schema = graph.get(key).metadata.get("dagster/column_schema")
        assert schema is not None, f"{key.to_user_string()} has no column schema"
        empty = [column.name for column in schema.columns if not (column.description or "").strip()]
        assert not empty, f"{key.to_user_string()}: columns without a description: {empty}"
        seen.add(key.to_user_string())
    assert {str(ref) for ref in (BRONZE_RISK_EVENTS, SILVER, QUARANTINE, *GOLD)} <= seen


def test_the_bronze_sensor_records_an_observation_of_the_table(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    version = bronze(root)
    table = DeltaTable(str(root / "bronze" / "risk_events"))
    rows, files = len(table.to_pyarrow_table()), len(table.file_uris())
    with dg.DagsterInstance.ephemeral() as instance:
        context = dg.build_sensor_context(instance=instance, resources={"lake": LakeResource(root=str(root))})
        result = bronze_sensor.evaluate_tick(context)
        for event in result.asset_events:  # what the sensor daemon does with a tick's asset events
            instance.report_runless_asset_event(event)
        records = instance.fetch_observations(asset_key(BRONZE_RISK_EVENTS), limit=10).records
        assert len(records) == 1
        observation = records[0].asset_observation
        assert observation is not None
        metadata = {name: value.value for name, value in observation.metadata.items()}
        assert metadata["delta_version"] == version
        assert metadata["dagster/row_count"] == rows
        assert metadata["file_count"] == files
        # an unchanged table is not observed again on the next tick
        again = bronze_sensor.evaluate_tick(
            dg.build_sensor_context(
                instance=instance, cursor=result.cursor, resources={"lake": LakeResource(root=str(root))}
            )
        )
        assert not again.asset_events


def _partitions_start(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = "from risk_pipeline.defs.partitions import daily_partitions as p; print(p.start.date())"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_partitions_start_on_risk_partitions_start() -> None:
    env = {**os.environ, PARTITIONS_START_ENV: "2026-10-03"}
    assert _partitions_start(env).stdout.strip() == "2026-10-03"
    unset = {k: v for k, v in os.environ.items() if k != PARTITIONS_START_ENV}
    assert _partitions_start(unset).stdout.strip() == "2026-01-01"
    bad = _partitions_start({**os.environ, PARTITIONS_START_ENV: "3 Oct 2026"})
    assert bad.returncode != 0 and PARTITIONS_START_ENV in bad.stderr
