"""The whole product on an S3-compatible object store (``moto[server]`` on loopback), both ways of
giving it credentials: only ``$RISK_STORAGE_OPTIONS`` (how a secret store hands them over), or only the
``AWS_*`` variables deltalake reads by itself.

One test walks the lake's life on ``s3://<bucket>/lake``: four writer processes through the logger and
their shippers, a simulated session through ``risk-lake simulate``, ``risk-lake materialize`` per day and
as one run, ``risk-lake queries``, a bronze sensor tick and the maintenance job -- each checked by
reading the tables back from the store. Data is small: this is about reaching the store, not volume.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import dagster as dg
import pytest
from servers import S3Server, configure_store

from risk_pipeline.defs.bronze.sensors import bronze_sensor, write_cursor
from risk_pipeline.defs.constants import BRONZE_RISK_EVENTS
from risk_pipeline.defs.gold.circuit_breaker_transitions import CIRCUIT_BREAKER_TRANSITIONS
from risk_pipeline.defs.maintenance.jobs import MAINTAINED_TABLES, lake_maintenance_job
from risk_pipeline.defs.ordering import CHANGED_DAYS_TAG
from risk_pipeline.defs.resources import lake_resource_from_env
from risk_pipeline.defs.silver.schema import QUARANTINE, SILVER
from risk_pipeline.lake import Lake

REPO = Path(__file__).resolve().parents[2]
WRITER = REPO / "bench" / "fault_writer.py"
RISK_LAKE = str(Path(sys.executable).with_name("risk-lake"))
WRITERS, EVENTS_PER_WRITER = 4, 400


def cli(*args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [RISK_LAKE, *args], env=env or dict(os.environ), capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, f"risk-lake {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout + done.stderr


def rows(lake: Lake, ref: object) -> int:
    return lake.read_all(ref, columns=["event_id"]).height  # type: ignore[arg-type]


@pytest.mark.parametrize("how", ["storage_options", "aws_env"])
def test_the_lake_on_object_storage(
    s3: S3Server, bucket: str, how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = configure_store(s3, bucket, how, "risk-secret", monkeypatch)
    lake = Lake()
    assert lake.location == root

    # Four trading processes, a spool and a shipper each, racing for the one bronze table.
    writers = [
        subprocess.Popen(
            [sys.executable, str(WRITER), root, str(tmp_path / f"spool-{i}"), str(EVENTS_PER_WRITER), "close"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(WRITERS)
    ]
    outputs = [w.communicate(timeout=300)[0] for w in writers]
    assert [w.returncode for w in writers] == [0] * WRITERS, outputs
    assert all(json.loads(out.splitlines()[-1])["landed"] for out in outputs), outputs
    bronze = lake.read_all(BRONZE_RISK_EVENTS, columns=["event_id", "writer_id", "sequence"])
    assert bronze.height == WRITERS * EVENTS_PER_WRITER
    assert bronze["event_id"].n_unique() == bronze.height
    assert Counter(bronze["writer_id"].to_list()) == dict.fromkeys(set(bronze["writer_id"]), EVENTS_PER_WRITER)

    # A simulated session through the CLI (logger -> spool -> shipper -> bronze), two days before today's.
    cli("simulate", "--days", "2", "--events", "1200")
    days = lake.days_present(BRONZE_RISK_EVENTS)
    assert len(days) == 3
    bronze_rows = rows(lake, BRONZE_RISK_EVENTS)
    assert bronze_rows > WRITERS * EVENTS_PER_WRITER + 500

    # Silver and gold, one run per day, then the same range again as one run: the same tables.
    cli("materialize")
    built = rows(lake, SILVER), rows(lake, QUARANTINE), rows(lake, CIRCUIT_BREAKER_TRANSITIONS)
    assert built[0] + built[1] == bronze_rows
    assert lake.days_present(SILVER) == days
    assert built[2] > 0
    cli("materialize", "--single-run")
    assert (rows(lake, SILVER), rows(lake, QUARANTINE), rows(lake, CIRCUIT_BREAKER_TRANSITIONS)) == built
    assert "Circuit breaker transitions" in cli("queries")

    # The code location's own binding of the lake resource, as a sensor and the maintenance job get it.
    resource = lake_resource_from_env()
    with dg.DagsterInstance.ephemeral() as instance:
        # On a built lake the first tick asks for nothing; from bronze's first version it asks for every day.
        first = bronze_sensor(dg.build_sensor_context(instance=instance, resources={"lake": resource}))
        assert isinstance(first, dg.SensorResult) and not first.run_requests and "up to date" in str(first.skip_reason)
        context = dg.build_sensor_context(instance=instance, resources={"lake": resource}, cursor=write_cursor(0))
        result = bronze_sensor(context)
        assert isinstance(result, dg.SensorResult) and len(result.run_requests or []) == 1
        assert result.run_requests[0].tags[CHANGED_DAYS_TAG] == ",".join(d.isoformat() for d in days)

        maintained = lake_maintenance_job.execute_in_process(resources={"lake": resource}, instance=instance)
    assert maintained.success
    reports = {
        tuple(e.asset_observation_data.asset_observation.asset_key.path): {
            k: v.value for k, v in e.asset_observation_data.asset_observation.metadata.items()
        }
        for e in maintained.all_events
        if e.event_type == dg.DagsterEventType.ASSET_OBSERVATION
    }
    assert set(reports) == {tuple(ref.path) for ref in MAINTAINED_TABLES}
    assert reports[("bronze", "risk_events")]["files_after"] < reports[("bronze", "risk_events")]["files_before"]
    assert reports[("bronze", "risk_events")]["files_after"] == len(days)  # compacted to one file per day
    after = Lake()  # a fresh reader: checkpoint and compacted files, read back from the store
    assert rows(after, BRONZE_RISK_EVENTS) == bronze_rows
    assert (rows(after, SILVER), rows(after, QUARANTINE), rows(after, CIRCUIT_BREAKER_TRANSITIONS)) == built
    assert any(key.endswith(".checkpoint.parquet") for key in s3.objects(bucket, "lake/bronze/risk_events/_delta_log/"))
