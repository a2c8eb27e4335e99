"""``reports/risk_history``: materialised with its metadata, and requested again after every gold build."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from report_lake import FIRST, LAST, QUIET, BuiltLake

from risk_pipeline.definitions import defs
from risk_pipeline.defs.gold.assets import gold_tables
from risk_pipeline.defs.reports.assets import RISK_HISTORY_KEY, risk_history_report
from risk_pipeline.defs.reports.sensors import SENSOR_NAME
from risk_pipeline.lake import Lake
from risk_pipeline.report import default_report_path
from risk_pipeline.report.location import REPORTS_DIR_ENV

OP = "reports__risk_history"


def report_config(out: Path, **fields: str) -> dict[str, object]:
    return {**QUIET, "ops": {OP: {"config": {"out": str(out), **fields}}}}


def test_the_asset_writes_the_page_and_describes_it(built: BuiltLake, tmp_path: Path) -> None:
    out = tmp_path / "risk_history.html"
    result = dg.materialize(
        [risk_history_report], instance=built.instance, resources=built.resources, run_config=report_config(out)
    )
    assert result.success
    (materialization,) = result.asset_materializations_for_node(OP)
    metadata = materialization.metadata
    assert metadata["path"] == dg.MetadataValue.path(str(out.resolve()))
    assert metadata["size_bytes"].value == out.stat().st_size > 1_000_000  # plotly.js is in the file
    assert (metadata["period_start"].value, metadata["period_end"].value) == (FIRST.isoformat(), LAST.isoformat())
    assert metadata["charts"].value == 6
    opens = (
        pl.read_delta(str(built.root / "gold" / "circuit_breaker_transitions"))
        .filter(pl.col("new_state") == "OPEN")
        .height
    )
    summary = metadata["summary"]
    assert isinstance(summary, dg.MarkdownMetadataValue)
    assert f"| breaker opens | {opens} |" in summary.value and "| sequence gaps | 1 |" in summary.value
    assert metadata["written_locally"].value == "beside the lake"


def test_a_bad_period_fails_the_step_and_says_why(built: BuiltLake, tmp_path: Path) -> None:
    for fields, reason in (
        ({"start": "2026-13-01"}, "not a day"),
        ({"start": "2026-03-04", "end": "2026-03-02"}, "after"),
    ):
        result = dg.materialize(
            [risk_history_report],
            instance=built.instance,
            resources=built.resources,
            run_config=report_config(tmp_path / "x.html", **fields),
            raise_on_error=False,
        )
        assert not result.success
        (failure,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
        assert reason in failure.step_failure_data.error.message
        assert not (tmp_path / "x.html").exists()


def test_a_gold_build_is_followed_by_a_report(built: BuiltLake, tmp_path: Path) -> None:
    """The sensor asks for one report per gold change it has not acted on, and the run it asks for builds it."""
    sensor = defs.resolve_sensor_def(SENSOR_NAME)
    first = sensor(dg.build_sensor_context(instance=built.instance))
    assert isinstance(first, dg.SensorResult)
    (request,) = first.run_requests or []
    assert first.cursor and request.run_key == f"gold-{first.cursor}"

    quiet = sensor(dg.build_sensor_context(instance=built.instance, cursor=first.cursor))
    assert isinstance(quiet, dg.SkipReason)

    rebuilt = dg.materialize(
        [gold_tables],
        instance=built.instance,
        resources=built.resources,
        partition_key=LAST.isoformat(),
        run_config=QUIET,
    )
    assert rebuilt.success
    after = sensor(dg.build_sensor_context(instance=built.instance, cursor=first.cursor))
    assert isinstance(after, dg.SensorResult) and int(after.cursor or 0) > int(first.cursor)
    (request,) = after.run_requests or []

    out = tmp_path / "after_gold.html"
    job = defs.resolve_job_def(sensor.job_name)
    run = job.execute_in_process(
        instance=built.instance, resources=built.resources, run_config=report_config(out), tags=request.tags
    )
    assert run.success and out.stat().st_size > 1_000_000
    latest = built.instance.get_latest_materialization_event(RISK_HISTORY_KEY)
    assert latest is not None and latest.run_id == run.run_id


def test_the_sensor_waits_for_gold(tmp_path: Path) -> None:
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        result = defs.resolve_sensor_def(SENSOR_NAME)(dg.build_sensor_context(instance=instance))
    assert isinstance(result, dg.SkipReason) and "no gold" in (result.skip_message or "")


def test_where_the_report_goes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REPORTS_DIR_ENV, raising=False)
    local = Lake(str(tmp_path / "data" / "lake"))
    assert default_report_path(local) == tmp_path / "data" / "reports" / "risk_history.html"
    remote = Lake("s3://bucket/lake", storage_options={})
    assert default_report_path(remote) == Path("data/reports/risk_history.html")  # a browser opens local files
    monkeypatch.setenv(REPORTS_DIR_ENV, str(tmp_path / "elsewhere"))
    assert default_report_path(local) == default_report_path(remote) == tmp_path / "elsewhere" / "risk_history.html"
