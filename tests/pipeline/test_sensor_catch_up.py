"""The bronze sensor's first tick starts where the lake is, not from nothing.

Without a cursor (a new Dagster instance, a reset sensor) the sensor compares each bronze day with
the silver built from it: only days whose silver is missing or older than their bronze are requested.
Afterwards it follows bronze's Delta versions from the version it saw.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from ordering_lake import D0, D1, D2, bronze, late_batch

from risk_pipeline import cli
from risk_pipeline.definitions import defs
from risk_pipeline.defs.bronze.sensors import SENSOR_NAME, read_cursor
from risk_pipeline.defs.ordering import CHANGED_DAYS_TAG, RANGE_END_TAG, RANGE_START_TAG
from risk_pipeline.defs.resources import LakeResource
from risk_pipeline.defs.silver.schema import SILVER
from risk_pipeline.lake import Lake
from risk_runtime.table import LAKE_ROOT_ENV


@pytest.fixture(autouse=True)
def _own_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LAKE_ROOT_ENV, "unused")
    monkeypatch.delenv("DAGSTER_HOME", raising=False)


def first_tick(root: Path) -> dg.SensorResult:
    repository = defs.get_repository_def()
    with dg.DagsterInstance.ephemeral() as instance:
        context = dg.build_sensor_context(
            instance=instance, cursor=None, repository_def=repository, resources={"lake": LakeResource(root=str(root))}
        )
        return repository.get_sensor_def(SENSOR_NAME).evaluate_tick(context)


def test_first_tick_on_a_built_lake_requests_nothing(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    version = bronze(root)
    assert cli.main(["--lake", str(root), "materialize"]) == 0

    data = first_tick(root)

    assert data.run_requests == []
    assert read_cursor(data.cursor) == version
    assert "up to date" in (data.skip_message or "")


def test_first_tick_requests_days_whose_silver_is_missing_or_older_than_bronze(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    bronze(root)
    assert cli.main(["--lake", str(root), "materialize", "--end", D1.isoformat()]) == 0  # D2 never built
    version = late_batch(root)  # D0's bronze is now newer than its silver
    assert Lake(str(root)).days_present(SILVER) == [D0, D1]

    data = first_tick(root)

    (run,) = data.run_requests
    assert run.tags[CHANGED_DAYS_TAG] == f"{D0},{D2}"  # D1 is up to date
    assert (run.tags[RANGE_START_TAG], run.tags[RANGE_END_TAG]) == (D0.isoformat(), D2.isoformat())
    assert read_cursor(data.cursor) == version
