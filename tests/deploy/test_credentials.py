"""Credentials stay in the environment: a sentinel secret, given through ``$RISK_STORAGE_OPTIONS``,
is looked for after a real run everywhere the product writes -- the spool and the shipper's log, every
Delta log of the lake (``commitInfo`` included), the Dagster instance's run and event-log storage and
compute logs, the CLI's output and the shipper's command line -- and must be in none of them.
Also: how ``$RISK_STORAGE_OPTIONS`` and ``--storage-option`` are read, and that a malformed value is
refused without being echoed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from servers import S3Server, configure_store

from risk_pipeline.cli import build_parser
from risk_pipeline.defs.bronze.sensors import bronze_sensor, write_cursor
from risk_pipeline.defs.constants import BRONZE_RISK_EVENTS
from risk_pipeline.defs.maintenance.jobs import lake_maintenance_job
from risk_pipeline.defs.resources import LakeResource, lake_resource_from_env
from risk_pipeline.defs.silver.schema import SILVER
from risk_pipeline.lake import Lake
from risk_runtime import RiskEvent, RiskEventLogger, RiskEventType
from risk_runtime.storage import (
    STORAGE_OPTIONS_ENV,
    parse_option_flags,
    parse_storage_options,
    storage_options_from_env,
)

REPO = Path(__file__).resolve().parents[2]
RISK_LAKE = str(Path(sys.executable).with_name("risk-lake"))


# ---------------------------------------------------------------------------------------------- reading
def test_storage_options_come_from_the_environment_as_a_json_object() -> None:
    env = {STORAGE_OPTIONS_ENV: '{"aws_region": "eu-west-1", "aws_allow_http": true, "timeout": 30}'}
    assert storage_options_from_env(env) == {"aws_region": "eu-west-1", "aws_allow_http": "true", "timeout": "30"}
    assert storage_options_from_env({}) is None
    assert storage_options_from_env({STORAGE_OPTIONS_ENV: "  "}) is None


@pytest.mark.parametrize(
    "text",
    ['{"aws_secret_access_key": "s3cr3t-value"', '["s3cr3t-value"]', '{"aws_secret_access_key": ["s3cr3t-value"]}'],
)
def test_malformed_storage_options_are_refused_without_echoing_them(text: str) -> None:
    with pytest.raises(ValueError, match=STORAGE_OPTIONS_ENV) as refused:
        parse_storage_options(text)
    assert "s3cr3t" not in str(refused.value)


def test_command_line_options_are_key_value_pairs_without_echo() -> None:
    assert parse_option_flags(["aws_region=eu-west-1", "endpoint=http://h:1/?a=b"]) == {
        "aws_region": "eu-west-1",
        "endpoint": "http://h:1/?a=b",
    }
    with pytest.raises(ValueError) as refused:
        parse_option_flags(["s3cr3t-value"])
    assert "s3cr3t" not in str(refused.value)
    args = build_parser().parse_args(["--storage-option", "a=1", "--storage-option", "b=2", "queries"])
    assert args.storage_option == ["a=1", "b=2"]


def test_lake_and_resource_read_the_one_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(STORAGE_OPTIONS_ENV, '{"aws_region": "eu-west-1"}')
    assert Lake("s3://b/lake").storage_options == {"aws_region": "eu-west-1"}
    assert Lake("s3://b/lake", storage_options={}).storage_options == {}  # explicit wins, even when empty
    resource = lake_resource_from_env()
    assert isinstance(resource.storage_options_json, dg.EnvVar)  # Dagster records the name, not the value
    assert resource.storage_options_json.env_var_name == STORAGE_OPTIONS_ENV
    plain = LakeResource(storage_options_json='{"a": "1", "b": "1"}', storage_options={"b": "2"})
    assert plain.resolved_storage_options() == {"a": "1", "b": "2"}
    monkeypatch.delenv(STORAGE_OPTIONS_ENV)
    assert lake_resource_from_env().storage_options_json is None  # no EnvVar that would fail every run


# ---------------------------------------------------------------------------------------------- the sentinel
def _shipper_cmdlines(spool: Path) -> dict[int, bytes]:
    found: dict[int, bytes] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            cmdline = (entry / "cmdline").read_bytes()
            if b"risk_runtime.shipper" in cmdline and str(spool).encode() in cmdline:
                found[int(entry.name)] = cmdline
    return found


def _sqlite_texts(path: Path) -> Iterator[bytes]:
    """Every value of every table, zlib-compressed blobs (Dagster's snapshots) decompressed."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for row in db.execute(f'SELECT * FROM "{table}"'):
                for value in row:
                    if isinstance(value, bytes):
                        yield value
                        with contextlib.suppress(zlib.error):
                            yield zlib.decompress(value)
                    elif value is not None:
                        yield str(value).encode()


def _files_holding(secret: bytes, root: Path) -> list[str]:
    hits = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        texts: list[bytes] = [path.read_bytes()]
        if path.suffix == ".db":
            texts += list(_sqlite_texts(path))
        if any(secret in text for text in texts):
            hits.append(str(path))
    return hits


def test_credentials_never_leave_the_environment(
    s3: S3Server, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = f"sentinel-{uuid.uuid4().hex}"
    root = configure_store(s3, bucket, "storage_options", secret, monkeypatch)
    options = storage_options_from_env()
    assert options is not None and options["aws_secret_access_key"] == secret

    # The logger hands its options to the shipper it starts (through the environment, not argv).
    monkeypatch.delenv(STORAGE_OPTIONS_ENV)
    spool = tmp_path / "spool"
    logger = RiskEventLogger(root, spool_dir=spool, storage_options=options).start()
    for i in range(300):
        logger.log(RiskEvent(RiskEventType.CB_FAILURE, source="orders", failure_count=i + 1))
    assert logger.flush_blocking(timeout=120)
    deadline = time.monotonic() + 10
    while not (shippers := _shipper_cmdlines(spool)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert shippers, "no shipper process found for the spool"
    assert all(secret.encode() not in cmdline for cmdline in shippers.values())
    logger.close()
    monkeypatch.setenv(STORAGE_OPTIONS_ENV, json.dumps(options))

    # The CLI and the code location, recording in a real (SQLite) instance.
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    printed = ""
    for args in (
        ["--storage-option", "aws_region=us-east-1", "simulate", "--days", "1", "--events", "400"],
        ["materialize"],
    ):
        done = subprocess.run([RISK_LAKE, *args], capture_output=True, text=True, timeout=600, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        printed += done.stdout + done.stderr
    with dg.DagsterInstance.get() as instance:
        resource = lake_resource_from_env()
        context = dg.build_sensor_context(instance=instance, resources={"lake": resource}, cursor=write_cursor(0))
        tick = bronze_sensor(context)  # from bronze's first version: it reads every commit since
        assert isinstance(tick, dg.SensorResult) and tick.run_requests
        assert lake_maintenance_job.execute_in_process(instance=instance, resources={"lake": resource}).success
        runs = instance.get_runs()  # the CLI's materialise runs (one per day) and one maintenance run
        assert [r.job_name for r in runs].count("lake_maintenance_job") == 1 and len(runs) >= 2
        assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)

    lake = Lake()
    assert lake.read_all(BRONZE_RISK_EVENTS, columns=["event_id"]).height > 300
    assert lake.read_all(SILVER, columns=["event_id"]).height > 0

    needle = secret.encode()
    assert secret not in printed
    assert _files_holding(needle, spool) == []  # segments, writer ledgers, shipper.log
    assert (spool / "shipper.log").exists()
    delta_logs = {key: body for key, body in s3.objects(bucket, "lake/").items() if "/_delta_log/" in key}
    assert len(delta_logs) > 10
    assert [key for key, body in delta_logs.items() if needle in body] == []
    assert _files_holding(needle, home) == []  # runs, event logs, snapshots, schedules, compute logs
    assert os.environ[STORAGE_OPTIONS_ENV] == json.dumps(options)  # the secret was there all along
