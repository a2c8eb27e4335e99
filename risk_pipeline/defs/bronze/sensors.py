"""``bronze_sensor``: rebuild exactly the silver days that new bronze commits touched.

Bronze is appended to all day by trading processes outside Dagster, and a late batch can land in an
old day. Polling row counts or timestamps would miss those or rebuild everything; the Delta log says
precisely what changed. The sensor keeps the last bronze version it has seen in its cursor and, on
each tick, turns the commits after it into one silver run per touched UTC day:

* a ``WRITE`` commit from the runtime's shipper names its days in the ``risk_event_dates`` commit
  metadata -- free to read, no file listing;
* any other data commit (another writer, a manual fix, a ``DELETE``) is diffed: the files added or
  removed between the snapshots around it, and their ``event_date`` partition values;
* maintenance commits (``OPTIMIZE``, ``VACUUM``, property changes) rewrite files but not rows, and
  request nothing.

Run keys name the day and the version range, so a tick that is evaluated twice (a crash before the
cursor was saved) asks for the same runs and Dagster drops the duplicates. A day whose previous run
is still queued is not asked for again: that run reads bronze when it starts and sees the new commits.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any, Final

import dagster as dg
import pyarrow as pa
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError, TableNotFoundError

from risk_pipeline.defs.constants import (
    BRONZE_RISK_EVENTS,
    GOLD_GROUP,
    RISK_EVENT_DATES_KEY,
    SILVER_GROUP,
    asset_key,
)
from risk_pipeline.defs.partitions import daily_partitions
from risk_pipeline.defs.resources import LakeResource
from risk_pipeline.defs.silver.schema import SILVER
from risk_pipeline.defs.silver.window import days_to_build
from risk_pipeline.lake import DAY_COLUMN

log = logging.getLogger(__name__)

CURSOR_VERSION: Final = "version"
"""The cursor is ``{"version": <last bronze version seen>}``."""

MAINTENANCE_OPERATIONS: Final[frozenset[str]] = frozenset(
    {
        "OPTIMIZE",
        "VACUUM START",
        "VACUUM END",
        "SET TBLPROPERTIES",
        "UNSET TBLPROPERTIES",
        "ADD COLUMN",
        "ADD CONSTRAINT",
        "DROP CONSTRAINT",
        "ADD FEATURE",
        "UPDATE FIELD METADATA",
        "UPDATE TABLE METADATA",
        "CREATE TABLE",
    }
)
"""Delta operations that never change which rows a day holds (``CREATE TABLE`` of an empty table
included; a create that also wrote rows is logged as a ``WRITE``)."""

SILVER_KEY: Final = asset_key(SILVER)
SILVER_TARGET: Final = dg.AssetSelection.groups(SILVER_GROUP, GOLD_GROUP)
"""Silver and gold of a touched day, in one run: gold reads that day of silver, so a late event reaches
the gold tables with the same run instead of waiting for the nightly schedule. Gold carries state
from day to day; a late event in an older day leaves later gold days as they were until they are
rebuilt (the daily schedule, or a backfill)."""
PARTITION_TAG: Final = "dagster/partition"
SENSOR_NAME_TAG: Final = "dagster/sensor_name"
BRONZE_VERSIONS_TAG: Final = "risk/bronze_versions"
"""Run tag: the bronze version range a sensor run was requested for."""

_PARTITION_FIELD: Final = f"partition.{DAY_COLUMN}"


# ---------------------------------------------------------------------------------------------- the Delta log
def days_touched(
    table_uri: str,
    since_version: int | None,
    storage_options: Mapping[str, str] | None = None,
) -> tuple[int, set[date]]:
    """The table's current version and the UTC days whose rows changed in ``(since_version, current]``.

    ``since_version=None`` means nothing was seen yet: every day the table holds is touched. So is
    every day when ``since_version`` is ahead of the table (it was re-created) or the log no longer
    reaches back to it -- re-running a day is idempotent, missing one is not.
    """
    options = dict(storage_options) if storage_options else None
    table = DeltaTable(table_uri, storage_options=options)
    current = table.version()
    if since_version is None or since_version > current:
        return current, _days_in_snapshot(table)
    if since_version == current:
        return current, set()

    commits = {c["version"]: c for c in table.history(limit=current - since_version) if "version" in c}
    days: set[date] = set()
    undeclared: list[int] = []  # consecutive data commits whose days only their file actions tell
    try:
        for version in range(since_version + 1, current + 1):
            commit = commits.get(version)
            declared = _declared_days(commit)
            if declared is None and not _is_maintenance(commit):
                undeclared.append(version)
                continue
            days |= declared or set()
            days |= _diff_days(table_uri, undeclared, options)
            undeclared = []
        days |= _diff_days(table_uri, undeclared, options)
    except (DeltaError, OSError) as exc:  # a snapshot we need is gone (log cleaned up, vacuumed)
        log.warning(
            "cannot diff bronze versions %s..%s (%s); treating every day as touched", since_version, current, exc
        )
        return current, _days_in_snapshot(table)
    return current, days


def _declared_days(commit: Mapping[str, Any] | None) -> set[date] | None:
    """The days a runtime ``WRITE`` commit declared, or None if it declared none (or garbled them)."""
    if commit is None or commit.get("operation") != "WRITE" or RISK_EVENT_DATES_KEY not in commit:
        return None
    value = commit[RISK_EVENT_DATES_KEY]
    try:
        return {date.fromisoformat(day.strip()) for day in str(value).split(",") if day.strip()}
    except ValueError:
        log.warning(
            "bronze version %s: unreadable %s=%r; diffing its files", commit.get("version"), RISK_EVENT_DATES_KEY, value
        )
        return None


def _is_maintenance(commit: Mapping[str, Any] | None) -> bool:
    return commit is not None and commit.get("operation") in MAINTENANCE_OPERATIONS


def _diff_days(table_uri: str, versions: list[int], options: dict[str, str] | None) -> set[date]:
    """Days of the files added or removed by the consecutive commits ``versions``.

    One diff spans the whole run of commits: between maintenance commits, which are excluded, so an
    ``OPTIMIZE`` rewriting every day does not make every day look new.
    """
    if not versions:
        return set()
    before = _files_by_day(table_uri, versions[0] - 1, options)
    after = _files_by_day(table_uri, versions[-1], options)
    return {day for _, day in before.items() ^ after.items()}


def _files_by_day(table_uri: str, version: int, options: dict[str, str] | None) -> dict[str, date]:
    if version < 0:  # before the table's first commit
        return {}
    table = DeltaTable(table_uri, version=version, storage_options=options)
    actions = pa.table(table.get_add_actions(flatten=True))
    if actions.num_rows == 0:
        return {}
    if _PARTITION_FIELD not in actions.column_names:
        raise ValueError(f"{table_uri} is not partitioned by {DAY_COLUMN}; cannot tell which days changed")
    return dict(zip(actions["path"].to_pylist(), actions[_PARTITION_FIELD].to_pylist(), strict=True))


def _days_in_snapshot(table: DeltaTable) -> set[date]:
    return {date.fromisoformat(p[DAY_COLUMN]) for p in table.partitions() if p.get(DAY_COLUMN)}


# ---------------------------------------------------------------------------------------------- the sensor
def read_cursor(cursor: str | None) -> int | None:
    """The last bronze version seen, from the sensor's JSON cursor (None before the first tick)."""
    if not cursor:
        return None
    return int(json.loads(cursor)[CURSOR_VERSION])


def write_cursor(version: int) -> str:
    return json.dumps({CURSOR_VERSION: version})


def version_range(since_version: int | None, version: int) -> str:
    """``<since>-<version>``, or ``start-<version>`` for a first look at the whole table."""
    return f"{'start' if since_version is None else since_version}-{version}"


def run_key(day: date, since_version: int | None, version: int) -> str:
    """Unique per (day, version range): a re-evaluated tick repeats it and Dagster de-duplicates."""
    return f"bronze-risk_events:{day.isoformat()}:{version_range(since_version, version)}"


WAITING: Final = (dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED)


def days_already_waiting(instance: dg.DagsterInstance, sensor_name: str, days: list[date]) -> set[date]:
    """Days this sensor already has a run queued for that has not started.

    Such a run reads bronze when it starts, so it will see the new commits too: asking again would
    only queue a duplicate. Shippers commit every few seconds, so without this each tick would add
    another run for today behind the one still waiting (runs of one day go one at a time).
    """
    if not days:
        return set()
    waiting = instance.get_runs(
        filters=dg.RunsFilter(
            statuses=list(WAITING),
            tags={PARTITION_TAG: [d.isoformat() for d in days], SENSOR_NAME_TAG: sensor_name},
        )
    )
    return {date.fromisoformat(run.tags[PARTITION_TAG]) for run in waiting if PARTITION_TAG in run.tags}


def _in_partitions(days: Iterable[date]) -> tuple[list[date], list[date]]:
    inside, outside = [], []
    for day in sorted(days):
        (inside if daily_partitions.has_partition_key(day.isoformat()) else outside).append(day)
    return inside, outside


SENSOR_NAME: Final = "bronze_sensor"


@dg.sensor(
    name=SENSOR_NAME,
    description="Requests a silver and gold run for every UTC day that new bronze Delta commits touched.",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    target=SILVER_TARGET,
)
def bronze_sensor(context: dg.SensorEvaluationContext, lake: LakeResource) -> dg.SensorResult | dg.SkipReason:
    """One silver run per day touched since the cursor's bronze version; the cursor moves to the new one."""
    store = lake.lake()
    uri = store.uri(BRONZE_RISK_EVENTS)
    since = read_cursor(context.cursor)
    try:
        version, days = days_touched(uri, since, store.storage_options)
    except TableNotFoundError:
        return dg.SkipReason(f"no bronze table at {uri} yet")
    if version == since:
        return dg.SkipReason(f"bronze unchanged at version {version}")

    versions = version_range(since, version)
    days = set(days_to_build(store, days))  # out-of-window days are filed under their ingestion days
    requested, outside = _in_partitions(days)
    if outside:
        context.log.warning(
            "bronze versions %s touched days outside the partitions (%s onwards, up to today): %s",
            versions,
            daily_partitions.start.date().isoformat(),
            ", ".join(d.isoformat() for d in outside),
        )
    waiting = days_already_waiting(context.instance, SENSOR_NAME, requested)
    if waiting:
        context.log.info(
            "runs still queued for %s will read these commits", ", ".join(d.isoformat() for d in sorted(waiting))
        )
    runs = [
        dg.RunRequest(
            run_key=run_key(day, since, version),
            partition_key=day.isoformat(),
            tags={BRONZE_VERSIONS_TAG: versions},
        )
        for day in requested
        if day not in waiting
    ]
    if not runs:
        reason = "changed no rows" if not requested else "touched only days with a run still queued"
        return dg.SensorResult(skip_reason=f"bronze versions {versions} {reason}", cursor=write_cursor(version))
    context.log.info("bronze versions %s: requesting %s", versions, ", ".join(r.partition_key or "" for r in runs))
    return dg.SensorResult(run_requests=runs, cursor=write_cursor(version))
