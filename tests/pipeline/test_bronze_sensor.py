"""The bronze sensor against real bronze Delta tables and real Dagster sensor evaluation.

Bronze is written the way the runtime writes it (``RiskEventsTable.append`` with the shipper's
``risk_event_dates`` commit metadata), by another writer without that metadata, and maintained with
``OPTIMIZE``; every case checks exactly which silver days get requested.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from risk_pipeline.defs.bronze.assets import bronze_risk_events
from risk_pipeline.defs.bronze.sensors import (
    BRONZE_VERSIONS_TAG,
    bronze_sensor,
    days_touched,
    read_cursor,
    write_cursor,
)
from risk_pipeline.defs.ordering import CHANGED_DAYS_TAG, RANGE_END_TAG, RANGE_START_TAG
from risk_pipeline.defs.partitions import daily_partitions
from risk_pipeline.defs.resources import LakeResource
from risk_pipeline.defs.silver.checks import SILVER_KEY
from risk_runtime.contract import COMMIT_EVENT_DATES
from risk_runtime.encoding import events_to_bronze
from risk_runtime.events import BRONZE_PARTITION_COLUMNS, RiskEvent, RiskEventType
from risk_runtime.table import RiskEventsTable

# Days relative to the partitions' first day, so the tests hold whatever RISK_PARTITIONS_START says.
START = daily_partitions.start.date()
OLD_DAY = START + timedelta(days=33)
OTHER_DAY = START + timedelta(days=40)
THIRD_DAY = START + timedelta(days=47)
BEFORE_START = START - timedelta(days=1)
FAR_FUTURE = date(2099, 1, 1)


class Bronze:
    """A bronze table in ``tmp_path`` and the writers that append to it."""

    def __init__(self, root: Path) -> None:
        self.table = RiskEventsTable(root)
        self.uri = self.table.uri
        self._batches: dict[str, int] = {}
        self._next_sequence: dict[str, int] = {}

    def rows(self, writer: str, days: list[date]) -> pa.Table:
        """One event at noon UTC of each of ``days``, numbered on from the writer's last one."""
        first = self._next_sequence.get(writer, 1)
        self._next_sequence[writer] = first + len(days)
        noon = [datetime(d.year, d.month, d.day, 12, tzinfo=UTC) for d in days]
        events = [RiskEvent(RiskEventType.CB_FAILURE, timestamp=t) for t in noon]
        return events_to_bronze(events, writer_id=writer, first_sequence=first)

    def ship(self, *days: date, writer: str = "shipper-1") -> int:
        """Append as the runtime's shipper does: one idempotent commit declaring its days."""
        batch = self._batches.get(writer, 0) + 1
        rows = self.rows(writer, list(days))
        declared = ",".join(sorted({d.isoformat() for d in days}))
        assert self.table.append(rows, app_id=writer, version=batch, metadata={COMMIT_EVENT_DATES: declared})
        self._batches[writer] = batch
        return self.version()

    def write_undeclared(self, *days: date) -> int:
        """Append as a writer that knows nothing of the commit metadata (a backfill tool, a notebook)."""
        rows = self.rows("other-writer", list(days))
        write_deltalake(self.uri, rows, mode="append", partition_by=list(BRONZE_PARTITION_COLUMNS))
        return self.version()

    def optimize(self) -> int:
        DeltaTable(self.uri).optimize.compact()
        return self.version()

    def version(self) -> int:
        return DeltaTable(self.uri).version()


@pytest.fixture
def bronze(tmp_path: Path) -> Bronze:
    return Bronze(tmp_path / "lake")


# ---------------------------------------------------------------------------------------------- days_touched
def test_first_look_touches_every_day_the_table_holds(bronze: Bronze) -> None:
    bronze.ship(OLD_DAY, OTHER_DAY)
    version = bronze.ship(THIRD_DAY)

    assert days_touched(bronze.uri, None) == (version, {OLD_DAY, OTHER_DAY, THIRD_DAY})


def test_declared_days_of_new_commits_only(bronze: Bronze) -> None:
    seen = bronze.ship(OLD_DAY)
    version = bronze.ship(OTHER_DAY, THIRD_DAY)

    assert days_touched(bronze.uri, seen) == (version, {OTHER_DAY, THIRD_DAY})
    assert days_touched(bronze.uri, version) == (version, set())


def test_commit_without_metadata_is_diffed_to_its_days(bronze: Bronze) -> None:
    seen = bronze.ship(OLD_DAY, OTHER_DAY)
    version = bronze.write_undeclared(THIRD_DAY)

    assert days_touched(bronze.uri, seen) == (version, {THIRD_DAY})


def test_undeclared_first_commit_of_a_new_table(tmp_path: Path) -> None:
    # Another writer created bronze itself: its very first commit already holds rows.
    bronze = Bronze(tmp_path / "lake")
    Path(bronze.uri).mkdir(parents=True)
    version = bronze.write_undeclared(OLD_DAY)

    assert days_touched(bronze.uri, -1) == (version, {OLD_DAY})


def test_optimize_touches_nothing(bronze: Bronze) -> None:
    bronze.ship(OLD_DAY)
    seen = bronze.ship(OLD_DAY, OTHER_DAY)
    version = bronze.optimize()

    assert version > seen
    assert days_touched(bronze.uri, seen) == (version, set())


def test_optimize_between_undeclared_writes_does_not_leak_its_rewrites(bronze: Bronze) -> None:
    # OPTIMIZE rewrites OLD_DAY's files; only the writes around it may count.
    bronze.ship(OLD_DAY)
    seen = bronze.ship(OLD_DAY)
    bronze.write_undeclared(OTHER_DAY)
    bronze.optimize()
    version = bronze.write_undeclared(THIRD_DAY)

    assert days_touched(bronze.uri, seen) == (version, {OTHER_DAY, THIRD_DAY})


def test_delete_by_another_writer_touches_the_days_it_removed_rows_from(bronze: Bronze) -> None:
    seen = bronze.ship(OLD_DAY, OTHER_DAY)
    DeltaTable(bronze.uri).delete(f"event_date = '{OTHER_DAY.isoformat()}'")

    assert days_touched(bronze.uri, seen) == (bronze.version(), {OTHER_DAY})


def test_unreadable_metadata_falls_back_to_the_files(bronze: Bronze) -> None:
    seen = bronze.ship(OLD_DAY)
    rows = bronze.rows("garbled", [OTHER_DAY])
    bronze.table.append(rows, app_id="garbled", version=1, metadata={COMMIT_EVENT_DATES: "yesterday"})

    assert days_touched(bronze.uri, seen) == (bronze.version(), {OTHER_DAY})


def test_cursor_ahead_of_a_recreated_table_rereads_every_day(bronze: Bronze) -> None:
    version = bronze.ship(OLD_DAY)

    assert days_touched(bronze.uri, version + 10) == (version, {OLD_DAY})


# ---------------------------------------------------------------------------------------------- the sensor
QUARANTINE_KEY = dg.AssetKey(["silver", "risk_events_quarantine"])


@dg.multi_asset(
    specs=[
        dg.AssetSpec(SILVER_KEY, deps=[bronze_risk_events], group_name="silver"),
        dg.AssetSpec(QUARANTINE_KEY, deps=[bronze_risk_events], group_name="silver"),
    ],
    partitions_def=daily_partitions,
)
def silver_stand_in():  # no return annotation: Dagster would read it as the outputs' types
    """Stands in for silver's shape (one step writing silver and its quarantine, not subsettable),
    so run requests resolve against a graph where silver exists."""


class Ticks:
    """Evaluates ``bronze_sensor`` as the daemon does, carrying the cursor from tick to tick."""

    def __init__(self, lake_root: Path, instance: dg.DagsterInstance) -> None:
        self.lake = LakeResource(root=str(lake_root))
        self.instance = instance
        self.defs = dg.Definitions(
            assets=[bronze_risk_events, silver_stand_in], sensors=[bronze_sensor], resources={"lake": self.lake}
        )
        self.cursor: str | None = None

    def tick(self, cursor: str | None = ...) -> dg.SensorResult:  # type: ignore[assignment]
        context = dg.build_sensor_context(
            instance=self.instance,
            cursor=self.cursor if cursor is ... else cursor,
            definitions=self.defs,
            resources={"lake": self.lake},
        )
        data = bronze_sensor.evaluate_tick(context)
        if data.cursor is not None:
            self.cursor = data.cursor
        return data


@pytest.fixture
def ticks(tmp_path: Path) -> Iterator[Ticks]:
    with dg.DagsterInstance.ephemeral() as instance:
        yield Ticks(tmp_path / "lake", instance)


def requested(data) -> dict[str, str]:
    return {r.partition_key: r.run_key for r in data.run_requests}


def test_no_bronze_table_yet_skips(ticks: Ticks) -> None:
    data = ticks.tick()

    assert data.run_requests == []
    assert "no bronze table" in data.skip_message
    assert ticks.cursor is None


def test_new_commits_for_an_old_day_request_exactly_that_day(ticks: Ticks, bronze: Bronze) -> None:
    bronze.ship(OTHER_DAY)
    ticks.tick()  # first look: catches up with everything
    seen = read_cursor(ticks.cursor)

    version = bronze.ship(OLD_DAY)  # late events for an old day
    data = ticks.tick()

    assert list(requested(data)) == [OLD_DAY.isoformat()]
    (run,) = data.run_requests
    assert run.asset_selection is None  # the sensor's target: silver and what is computed with it
    target = ticks.defs.get_repository_def().get_job(bronze_sensor.job_name)
    assert target.asset_layer.executable_asset_keys == {SILVER_KEY, QUARANTINE_KEY}
    assert run.run_key == f"bronze-risk_events:{OLD_DAY.isoformat()}:{seen}-{version}"
    assert run.tags[BRONZE_VERSIONS_TAG] == f"{seen}-{version}"
    assert read_cursor(ticks.cursor) == version


def test_first_tick_on_unbuilt_silver_requests_every_day_in_one_run(ticks: Ticks, bronze: Bronze) -> None:
    bronze.ship(OLD_DAY, OTHER_DAY)
    version = bronze.ship(THIRD_DAY)

    data = ticks.tick()

    (run,) = data.run_requests  # one run, oldest day first, so gold's days are built in order
    assert (run.tags[RANGE_START_TAG], run.tags[RANGE_END_TAG]) == (OLD_DAY.isoformat(), THIRD_DAY.isoformat())
    assert run.tags[CHANGED_DAYS_TAG] == ",".join(d.isoformat() for d in (OLD_DAY, OTHER_DAY, THIRD_DAY))
    assert ticks.cursor == write_cursor(version)


def test_second_tick_without_new_commits_requests_nothing(ticks: Ticks, bronze: Bronze) -> None:
    bronze.ship(OLD_DAY)
    ticks.tick()
    cursor = ticks.cursor

    data = ticks.tick()

    assert data.run_requests == []
    assert "unchanged" in data.skip_message
    assert ticks.cursor == cursor


def test_commit_without_metadata_is_requested(ticks: Ticks, bronze: Bronze) -> None:
    bronze.ship(OLD_DAY)
    ticks.tick()

    bronze.write_undeclared(OTHER_DAY)
    data = ticks.tick()

    assert list(requested(data)) == [OTHER_DAY.isoformat()]


def test_optimize_requests_nothing_but_moves_the_cursor(ticks: Ticks, bronze: Bronze) -> None:
    bronze.ship(OLD_DAY)
    bronze.ship(OLD_DAY)
    ticks.tick()

    version = bronze.optimize()
    data = ticks.tick()

    assert data.run_requests == []
    assert read_cursor(ticks.cursor) == version
    assert ticks.tick().run_requests == []


def test_days_outside_the_partitions_are_not_requested(ticks: Ticks, bronze: Bronze) -> None:
    bronze.ship(OLD_DAY)
    ticks.tick()

    bronze.ship(BEFORE_START, OTHER_DAY, FAR_FUTURE)
    data = ticks.tick()

    # Rows dated outside the window are quarantined under the day they were ingested (today here).
    ingested = datetime.now(UTC).date()
    (run,) = data.run_requests
    assert run.tags[CHANGED_DAYS_TAG] == ",".join(sorted({OTHER_DAY.isoformat(), ingested.isoformat()}))
    assert run.tags[RANGE_START_TAG] == OTHER_DAY.isoformat()  # never BEFORE_START, never FAR_FUTURE
    assert run.tags[RANGE_END_TAG] == ingested.isoformat()


def test_a_day_with_a_run_still_queued_is_not_requested_again(ticks: Ticks, bronze: Bronze) -> None:
    # Shippers commit every few seconds: a silver run for today that has not started yet will read
    # the newer commits anyway, so the next tick must not queue another one behind it.
    bronze.ship(OLD_DAY)
    (first,) = ticks.tick().run_requests
    # NOT_STARTED stands for both waiting states: a QUEUED run needs a code-server origin to exist.
    queue(ticks, first, dg.DagsterRunStatus.NOT_STARTED)

    bronze.ship(OLD_DAY, OTHER_DAY)
    (data,) = ticks.tick().run_requests  # the queued run does not reach OTHER_DAY: ask for both, in order

    assert (data.tags[RANGE_START_TAG], data.tags[RANGE_END_TAG]) == (OLD_DAY.isoformat(), OTHER_DAY.isoformat())
    queue(ticks, data, dg.DagsterRunStatus.NOT_STARTED)
    bronze.ship(OLD_DAY)
    data = ticks.tick()
    assert data.run_requests == []
    assert "still queued" in data.skip_message
    assert read_cursor(ticks.cursor) == bronze.version()


def test_a_day_whose_run_already_started_is_requested_again(ticks: Ticks, bronze: Bronze) -> None:
    # A started run may have read bronze before the new commit: only a new run is sure to see it.
    bronze.ship(OLD_DAY)
    (first,) = ticks.tick().run_requests
    queue(ticks, first, dg.DagsterRunStatus.STARTED)

    bronze.ship(OLD_DAY)

    assert list(requested(ticks.tick())) == [OLD_DAY.isoformat()]


def queue(ticks: Ticks, request: dg.RunRequest, status: dg.DagsterRunStatus) -> None:
    """Record the run the daemon would have created for ``request``, in ``status``."""
    job = ticks.defs.get_repository_def().get_job(bronze_sensor.job_name)
    tags = {**request.tags, "dagster/sensor_name": bronze_sensor.name}
    ticks.instance.create_run_for_job(job_def=job, status=status, tags=tags)


def test_reevaluating_a_tick_repeats_its_run_keys(ticks: Ticks, bronze: Bronze) -> None:
    # A tick whose cursor was never stored (daemon crash) asks again with the same keys, which
    # Dagster de-duplicates; a later range gets new keys for the same day.
    bronze.ship(OLD_DAY)
    ticks.tick()
    before = ticks.cursor
    bronze.ship(OTHER_DAY)

    first = requested(ticks.tick(cursor=before))
    again = requested(ticks.tick(cursor=before))
    bronze.ship(OTHER_DAY)
    later = requested(ticks.tick())

    assert first == again
    assert later[OTHER_DAY.isoformat()] != first[OTHER_DAY.isoformat()]


def test_requested_run_materialises_silver_for_that_day(tmp_path: Path, bronze: Bronze) -> None:
    # The whole path on the real code location: bronze commit -> tick -> the run it asks for.
    from risk_pipeline.definitions import defs

    repository = defs.get_repository_def()
    lake = LakeResource(root=str(tmp_path / "lake"))
    seen = bronze.ship(OTHER_DAY)
    bronze.ship(OLD_DAY)
    with dg.DagsterInstance.ephemeral() as instance:
        context = dg.build_sensor_context(
            instance=instance, cursor=write_cursor(seen), repository_def=repository, resources={"lake": lake}
        )

        (run,) = repository.get_sensor_def("bronze_sensor").evaluate_tick(context).run_requests
        result = repository.get_job(bronze_sensor.job_name).execute_in_process(
            instance=instance, partition_key=run.partition_key, resources={"lake": lake}, tags=run.tags
        )

    assert result.success
    materialised = {(m.asset_key, m.partition) for m in result.asset_materializations_for_node("silver_risk_events")}
    assert (SILVER_KEY, OLD_DAY.isoformat()) in materialised
    assert {partition for _, partition in materialised} == {OLD_DAY.isoformat()}
