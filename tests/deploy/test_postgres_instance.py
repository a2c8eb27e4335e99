"""The Dagster instance on PostgreSQL: ``deploy/postgres/dagster.yaml`` against a real server on loopback.

The committed instance file is used as it is (copied into a temporary ``DAGSTER_HOME``): the CLI
materialises real days into a local lake with its runs recorded in Postgres, the bronze sensor
evaluates against that instance, and the rows the runs and their checks left are counted with SQL.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import yaml
from servers import POSTGRES_INSTALL_HINT, PostgresServer, postgres_bin

from risk_pipeline.defs.bronze.sensors import bronze_sensor, write_cursor
from risk_pipeline.defs.ordering import CHANGED_DAYS_TAG
from risk_pipeline.defs.resources import LakeResource

REPO = Path(__file__).resolve().parents[2]
POSTGRES_INSTANCE = REPO / "deploy" / "postgres" / "dagster.yaml"
EMBEDDED_INSTANCE = REPO / "dagster_home" / "dagster.yaml"
RISK_LAKE = str(Path(sys.executable).with_name("risk-lake"))
PG_PASSWORD = "pg-test-password"  # a throwaway cluster's: proves the password really is read from the env


def test_postgres_instance_keeps_the_embedded_queue_and_telemetry() -> None:
    postgres, embedded = (yaml.safe_load(p.read_text()) for p in (POSTGRES_INSTANCE, EMBEDDED_INSTANCE))
    assert postgres["run_coordinator"] == embedded["run_coordinator"]
    assert postgres["telemetry"] == embedded["telemetry"] == {"enabled": False}
    db = postgres["storage"]["postgres"]["postgres_db"]
    assert db["scheme"] == "postgresql+psycopg2"
    assert {key: value["env"] for key, value in db.items() if isinstance(value, dict)} == {
        "hostname": "DAGSTER_PG_HOST",
        "port": "DAGSTER_PG_PORT",
        "db_name": "DAGSTER_PG_DB",
        "username": "DAGSTER_PG_USERNAME",
        "password": "DAGSTER_PG_PASSWORD",
    }


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    binaries = postgres_bin()
    if binaries is None:
        pytest.skip(POSTGRES_INSTALL_HINT)
    with PostgresServer.running(binaries, PG_PASSWORD) as server:
        yield server


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([RISK_LAKE, *args], env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_pipeline_runs_on_a_postgres_instance(
    postgres: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = postgres.create_database("dagster")
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(POSTGRES_INSTANCE, home / "dagster.yaml")
    instance_env = {
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_HOST": postgres.host,
        "DAGSTER_PG_PORT": str(postgres.port),
        "DAGSTER_PG_DB": database,
        "DAGSTER_PG_USERNAME": postgres.user,
        "DAGSTER_PG_PASSWORD": postgres.password,
        "RISK_LAKE_ROOT": str(tmp_path / "lake"),
    }
    env = {**os.environ, **instance_env}
    _cli("simulate", "--days", "2", "--events", "1500", env=env)
    _cli("materialize", env=env)  # one run per day

    count = postgres.scalar
    assert count(database, "SELECT count(*) FROM runs") == 2
    assert count(database, "SELECT count(*) FROM runs WHERE status = 'SUCCESS'") == 2
    assert count(database, "SELECT count(*) FROM event_logs") > 100
    checks = "SELECT count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_CHECK_EVALUATION'"
    assert count(database, checks) >= 2 * 5  # every run evaluated the silver and gold checks
    assert count(database, "SELECT count(*) FROM asset_check_executions WHERE execution_status = 'SUCCEEDED'") > 0
    assert count(database, "SELECT count(*) FROM asset_check_executions WHERE execution_status = 'FAILED'") == 0
    assert not (home / "history").exists(), "the instance wrote SQLite files beside Postgres"

    # A sensor tick against the same instance: it reads bronze and asks Postgres which days already wait.
    for name, value in instance_env.items():
        monkeypatch.setenv(name, value)
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        context = dg.build_sensor_context(instance=instance, resources={"lake": LakeResource()})
        first = bronze_sensor(context)  # a built lake: nothing to ask for
        assert isinstance(first, dg.SensorResult) and not first.run_requests
        context = dg.build_sensor_context(instance=instance, resources={"lake": LakeResource()}, cursor=write_cursor(0))
        result = bronze_sensor(context)  # every commit since bronze's first version: both days bronze holds
        assert isinstance(result, dg.SensorResult) and len(result.run_requests or []) == 1
        assert len(result.run_requests[0].tags[CHANGED_DAYS_TAG].split(",")) == 2
        assert len(instance.get_runs()) == 2
