"""Gold's order of days is the orchestrator's: real Dagster runs, the real CLI, the real sensor.

Gold day D reads the state carried from D-1, so D must be built after D-1 and rebuilt whenever D-1
changes. These tests build the same bronze in the wrong order, twice at once, and with a late event,
and require the gold tables of a lake built once, in order.
"""

from __future__ import annotations

import socket
import subprocess
from datetime import UTC, date, datetime, time
from pathlib import Path

import dagster as dg
import dagster_runs
import pytest
from ordering_lake import D0, D1, D2, DAYS, bronze, cli_env, gold_tables, late_batch, risk_lake, run_cli

from risk_pipeline import cli, materialization
from risk_pipeline.definitions import defs
from risk_pipeline.defs.bronze.sensors import SENSOR_NAME, write_cursor
from risk_pipeline.defs.constants import GOLD_GROUP, SILVER_GROUP
from risk_pipeline.defs.gold.assets import GOLD_TABLES
from risk_pipeline.defs.gold.assets import gold_tables as gold_asset
from risk_pipeline.defs.gold.circuit_breaker_transitions import CIRCUIT_BREAKER_TRANSITIONS
from risk_pipeline.defs.ordering import GOLD_POOL, PIPELINE_TAG, PIPELINE_TAGS, RANGE_END_TAG, RANGE_START_TAG
from risk_pipeline.defs.resources import LakeResource
from risk_pipeline.lake import Lake
from risk_runtime.table import LAKE_ROOT_ENV

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _own_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI sets ``$RISK_LAKE_ROOT`` for the code location; monkeypatch puts it back afterwards."""
    monkeypatch.setenv(LAKE_ROOT_ENV, "unused")
    monkeypatch.delenv("DAGSTER_HOME", raising=False)


def materialize(root: Path, *days: date) -> int:
    """``risk-lake materialize`` in this process, for ``days`` (first..last) or all of bronze."""
    span = ["--start", days[0].isoformat(), "--end", days[-1].isoformat()] if days else []
    return cli.main(["--lake", str(root), "materialize", *span])


def built_in_order(root: Path) -> dict[str, list[dict[str, object]]]:
    """The oracle: one real Dagster run per day, in calendar order, independent of the CLI and the sensor."""
    for day in DAYS:
        assert dagster_runs.materialize(root, [day]).success
    tables = gold_tables(Lake(str(root)))
    assert tables[str(CIRCUIT_BREAKER_TRANSITIONS)], "the oracle built no gold"
    return tables


@pytest.fixture(scope="module")
def in_order(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, object]]]:
    """Gold of the three days, built once, in order."""
    root = tmp_path_factory.mktemp("in_order") / "lake"
    bronze(root)
    return built_in_order(root)


@pytest.fixture(scope="module")
def in_order_with_late_event(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, object]]]:
    """The same with the late batch for D0 in bronze from the start."""
    root = tmp_path_factory.mktemp("in_order_late") / "lake"
    bronze(root)
    late_batch(root)
    return built_in_order(root)


# ---------------------------------------------------------------------------------------------- the graph
def test_gold_day_depends_on_its_own_previous_day() -> None:
    graph = defs.resolve_asset_graph()
    for table in GOLD_TABLES:
        assert table.key in graph.get(table.key).parent_keys
        mapping = graph.get_partition_mapping(table.key, table.key)
        assert mapping == dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=-1)
    assert gold_asset.op.pool == GOLD_POOL


# ---------------------------------------------------------------------------------------------- the CLI
def test_days_materialised_out_of_order_end_as_in_order(tmp_path: Path, in_order: dict) -> None:
    root = tmp_path / "lake"
    bronze(root)

    def materialize_day(day: date) -> subprocess.CompletedProcess[str]:
        return run_cli("--lake", str(root), "materialize", "--start", day.isoformat(), "--end", day.isoformat())

    materialize_day(D2)  # gold D2 from no state
    materialize_day(D0)  # rebuilds gold D0 .. D2, the latest built day; D2 without D1's silver may fail a check
    last = materialize_day(D1)  # rebuilds gold D1 .. D2

    assert last.returncode == 0, last.stdout + last.stderr

    assert gold_tables(Lake(str(root))) == in_order


def test_materialising_an_old_day_rebuilds_gold_through_the_latest_day_and_says_so(
    tmp_path: Path, in_order_with_late_event: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "lake"
    bronze(root)
    assert materialize(root) == 0
    late_batch(root)
    capsys.readouterr()

    assert materialize(root, D0) == 0

    out = capsys.readouterr().out
    assert f"silver for 1 day(s): {D0} .. {D0}" in out
    assert f"gold from {D0} through {D2}" in out
    assert gold_tables(Lake(str(root))) == in_order_with_late_event


def _gold_step_intervals(instance: dg.DagsterInstance) -> list[tuple[float, float]]:
    intervals = []
    for run in instance.get_runs():
        events = instance.all_logs(
            run.run_id, of_type={dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS}
        )
        times = {e.dagster_event.event_type: e.timestamp for e in events if e.step_key == gold_asset.op.name}
        if times:
            intervals.append((times[dg.DagsterEventType.STEP_START], times[dg.DagsterEventType.STEP_SUCCESS]))
    return sorted(intervals)


def bronze_and_instance(tmp_path: Path) -> tuple[Path, Path]:
    """The three days of bronze, and a Dagster home with the committed instance config (its pools)."""
    root = tmp_path / "lake"
    bronze(root)
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO / "dagster_home" / "dagster.yaml").read_text())
    return root, home


def test_two_cli_processes_at_once_take_turns_on_gold_and_end_as_in_order(
    tmp_path: Path, in_order: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, home = bronze_and_instance(tmp_path)
    args = ["--lake", str(root), "materialize", "--single-run"]

    first, second = (
        subprocess.Popen(
            risk_lake(*args), cwd=REPO, env=cli_env(home), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for _ in range(2)
    )
    outputs = [process.communicate(timeout=240)[0] for process in (first, second)]

    assert [first.returncode, second.returncode] == [0, 0], outputs
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        intervals = _gold_step_intervals(instance)
    assert len(intervals) == 2, outputs
    (_, first_end), (second_start, _) = intervals
    assert first_end <= second_start, f"gold steps overlapped: {intervals}"
    assert gold_tables(Lake(str(root))) == in_order


# ---------------------------------------------------------------------------------------------- the sensor
def test_a_late_event_is_rebuilt_through_the_latest_day_by_the_sensor_alone(
    tmp_path: Path, in_order_with_late_event: dict
) -> None:
    root = tmp_path / "lake"
    built = bronze(root)
    repository = defs.get_repository_def()
    sensor = repository.get_sensor_def(SENSOR_NAME)
    job = repository.get_job(sensor.job_name)
    lake = LakeResource(root=str(root))
    with dg.DagsterInstance.ephemeral() as instance:

        def tick_and_run(cursor: str | None) -> tuple[list[dg.RunRequest], str | None]:
            context = dg.build_sensor_context(
                instance=instance, cursor=cursor, repository_def=repository, resources={"lake": lake}
            )
            data = sensor.evaluate_tick(context)
            for run in data.run_requests:
                result = job.execute_in_process(
                    instance=instance, tags=run.tags, partition_key=run.partition_key, resources={"lake": lake}
                )
                assert result.success
            return data.run_requests, data.cursor

        first, cursor = tick_and_run(None)  # a lake with bronze only: every day, in one run
        assert cursor == write_cursor(built)
        late_batch(root)
        (late,) = tick_and_run(cursor)[0]

    assert [r.tags.get(RANGE_START_TAG) for r in first] == [D0.isoformat()]
    assert (late.tags[RANGE_START_TAG], late.tags[RANGE_END_TAG]) == (D0.isoformat(), D2.isoformat())
    assert gold_tables(Lake(str(root))) == in_order_with_late_event


def test_a_killed_cli_run_does_not_hold_the_gold_pool_for_ever(
    tmp_path: Path, in_order: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A run killed outright keeps its pool slot; the next risk-lake on this host marks it failed and goes on.
    root, home = bronze_and_instance(tmp_path)
    gone = subprocess.Popen(["true"])
    gone.wait()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        job = defs.resolve_implicit_global_asset_job_def()
        tags = {materialization.HOST_TAG: socket.gethostname(), materialization.PID_TAG: str(gone.pid)}
        dead = instance.create_run_for_job(job_def=job, status=dg.DagsterRunStatus.STARTED, tags=tags)
        instance.event_log_storage.initialize_concurrency_limit_to_default(GOLD_POOL)
        claim = instance.event_log_storage.claim_concurrency_slot(GOLD_POOL, dead.run_id, gold_asset.op.name)
        assert claim.is_claimed

    result = subprocess.run(
        risk_lake("--lake", str(root), "materialize"), cwd=REPO, env=cli_env(home), capture_output=True, text=True,
        timeout=180, check=False,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"marked failed run {dead.run_id}" in result.stdout
    assert gold_tables(Lake(str(root))) == in_order
    with dg.DagsterInstance.get() as instance:
        assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE


def test_the_nightly_schedule_rebuilds_yesterday_through_the_latest_gold_day(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    bronze(root)
    assert materialize(root) == 0
    repository = defs.get_repository_def()
    with dg.DagsterInstance.ephemeral() as instance:
        context = dg.build_schedule_context(
            instance=instance,
            scheduled_execution_time=datetime.combine(D1, time(0, 30), UTC),
            repository_def=repository,
            resources={"lake": LakeResource(root=str(root))},
        )
        (run,) = repository.get_schedule_def("daily_pipeline_schedule").evaluate_tick(context).run_requests

    assert (run.tags[RANGE_START_TAG], run.tags[RANGE_END_TAG]) == (D0.isoformat(), D2.isoformat())
    assert run.tags[PIPELINE_TAG] == PIPELINE_TAGS[PIPELINE_TAG]


def test_gold_refuses_a_day_whose_previous_silver_days_have_no_gold_then_converges(
    tmp_path: Path, in_order: dict
) -> None:
    root = tmp_path / "lake"
    bronze(root)
    silver = dg.AssetSelection.groups(SILVER_GROUP)
    gold = dg.AssetSelection.groups(GOLD_GROUP)
    assert dagster_runs.materialize(root, [D0, D2], selection=silver).success

    refused = dagster_runs.materialize(root, [D2], selection=gold)

    assert not refused.success
    (failure,) = [e for e in refused.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert f"skipping silver days {D0} .. {D1}: materialise gold from {D0}" in failure.step_failure_data.error.message
    assert Lake(str(root)).days_present(CIRCUIT_BREAKER_TRANSITIONS) == []  # nothing written
    assert dagster_runs.materialize(root, [D0, D2], selection=gold).success
    assert gold_tables(Lake(str(root))) == in_order
