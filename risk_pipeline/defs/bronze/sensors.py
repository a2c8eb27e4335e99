"""``bronze_sensor``: rebuild the days new bronze commits touched, and gold from there on.

Bronze is appended to all day by trading processes outside Dagster, and a late batch can land in an
old day. Polling row counts or timestamps would miss those or rebuild everything; the Delta log says
precisely what changed. The sensor keeps the last bronze version it has seen in its cursor and, on
each tick, turns the commits after it into the UTC days they touched:

* a ``WRITE`` commit from the runtime's shipper names its days in the ``risk_event_dates`` commit
  metadata -- free to read, no file listing;
* any other data commit (another writer, a manual fix, a ``DELETE``) is diffed: the files added or
  removed between the snapshots around it, and their ``event_date`` partition values;
* maintenance commits (``OPTIMIZE``, ``VACUUM``, property changes) rewrite files but not rows, and
  request nothing.

**First tick** (no cursor: a new instance, a reset sensor): the lake may already be built, so the
sensor compares each bronze day with what silver made of it (:func:`days_behind`) and asks only for days
whose silver is missing or older than their bronze; then it follows versions from the current one.

**Bronze is observed.** Dagster never materialises bronze (trading processes write it), so each tick that
finds a new version also records an ``AssetObservation`` of the table -- its Delta version, rows and data
files, from the log -- the intended way to report an external asset: its page then has a history of sizes
instead of "Never materialized".

**One run per tick, in order.** Gold day D starts from gold D-1's carried state, so a change to day
D-k must rebuild gold D-k through the latest gold day built (:mod:`risk_pipeline.defs.ordering`). The
sensor asks for one run over that range -- silver and gold, built day by day in calendar order -- tagged
with the range and the changed days. Its runs start one at a time in request order (the run queue's
``risk/pipeline`` limit). Run keys name the range and the bronze versions, so a tick evaluated twice (a
crash before the cursor was saved) asks for the same run and Dagster drops the duplicate. A range that a
run still queued already covers is not asked for again: that run reads bronze when it starts.
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
    SILVER_GROUP,
    asset_key,
)
from risk_pipeline.defs.metadata import snapshot_facts
from risk_pipeline.defs.ordering import (
    CHANGED_DAYS_TAG,
    PARTITION_TAG,
    PIPELINE_TAGS,
    RANGE_END_TAG,
    RANGE_START_TAG,
    gold_through,
    partition_tags,
)
from risk_pipeline.defs.partitions import daily_partitions
from risk_pipeline.defs.resources import LakeResource
from risk_pipeline.defs.silver.schema import QUARANTINE, SILVER
from risk_pipeline.defs.silver.window import days_to_build
from risk_pipeline.lake import DAY_COLUMN, Lake, TableRef
from risk_runtime.contract import COMMIT_EVENT_DATES, parse_event_dates

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

SILVER_TARGET: Final = dg.AssetSelection.groups(SILVER_GROUP, GOLD_GROUP)
"""Silver and gold in one run: gold reads the run's days of silver, so a late event reaches the gold
tables with the same run instead of waiting for the nightly schedule, and gold's later days with it."""
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
    if commit is None or commit.get("operation") != "WRITE" or COMMIT_EVENT_DATES not in commit:
        return None
    value = commit[COMMIT_EVENT_DATES]
    try:
        return parse_event_dates(value)
    except ValueError:
        log.warning(
            "bronze version %s: unreadable %s=%r; diffing its files", commit.get("version"), COMMIT_EVENT_DATES, value
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


# ---------------------------------------------------------------------------------------------- the lake as built
def newest_file_per_day(lake: Lake, ref: TableRef) -> dict[date, int]:
    """Per ``event_date``, the modification time (ms) of the newest file the table's snapshot holds for it.

    From the Delta log's add actions: no data is read. Silver replaces a day's files in one commit, so
    its newest file dates the day's last build; bronze's newest file dates the day's last append.
    """
    if not lake.exists(ref):
        return {}
    actions = pa.table(lake.table(ref).get_add_actions(flatten=True))
    if actions.num_rows == 0:
        return {}
    newest: dict[date, int] = {}
    days = actions[_PARTITION_FIELD].to_pylist()
    for day, modified in zip(days, actions["modification_time"].to_pylist(), strict=True):
        day = date.fromisoformat(day) if isinstance(day, str) else day
        if day is not None and modified is not None:
            newest[day] = max(newest.get(day, modified), modified)
    return newest


def days_behind(lake: Lake) -> set[date]:
    """Bronze days whose silver is missing or older than their newest bronze file.

    A day counts as built when silver or its quarantine holds a file written at or after the day's
    newest bronze file (a day whose every row was refused has quarantine files only). Compacting bronze
    rewrites a day's files, so a day compacted after its silver was built is asked for once more: a
    rebuild is idempotent, a missed day is not.
    """
    bronze = newest_file_per_day(lake, BRONZE_RISK_EVENTS)
    built = newest_file_per_day(lake, SILVER)
    for day, modified in newest_file_per_day(lake, QUARANTINE).items():
        built[day] = max(built.get(day, modified), modified)
    return {day for day, modified in bronze.items() if built.get(day, -1) < modified}


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


def run_key(first: date, last: date, since_version: int | None, version: int) -> str:
    """Unique per (range, version range): a re-evaluated tick repeats it and Dagster de-duplicates."""
    days = first.isoformat() if first == last else f"{first.isoformat()}..{last.isoformat()}"
    return f"bronze-risk_events:{days}:{version_range(since_version, version)}"


WAITING: Final = (dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED)


def run_days(tags: Mapping[str, str]) -> tuple[date, date] | None:
    """The first and last day a run covers, from its partition or partition-range tags."""
    if PARTITION_TAG in tags:
        day = date.fromisoformat(tags[PARTITION_TAG])
        return day, day
    if RANGE_START_TAG in tags and RANGE_END_TAG in tags:
        return date.fromisoformat(tags[RANGE_START_TAG]), date.fromisoformat(tags[RANGE_END_TAG])
    return None


def already_waiting(instance: dg.DagsterInstance, sensor_name: str, first: date, last: date) -> bool:
    """Whether a run of this sensor that has not started yet covers ``first .. last`` already.

    Such a run reads bronze when it starts, so it will see the new commits too: asking again would
    only queue a duplicate. Shippers commit every few seconds, so without this each tick would add
    another run for today behind the one still waiting.
    """
    waiting = instance.get_runs(filters=dg.RunsFilter(statuses=list(WAITING), tags={SENSOR_NAME_TAG: sensor_name}))
    for run in waiting:
        covered = run_days(run.tags)
        if covered is not None and covered[0] <= first and last <= covered[1]:
            return True
    return False


def _in_partitions(days: Iterable[date]) -> tuple[list[date], list[date]]:
    inside, outside = [], []
    for day in sorted(days):
        (inside if daily_partitions.has_partition_key(day.isoformat()) else outside).append(day)
    return inside, outside


SENSOR_NAME: Final = "bronze_sensor"


@dg.sensor(
    name=SENSOR_NAME,
    description=(
        "Requests one silver and gold run from the first UTC day new bronze Delta commits touched through the "
        "latest gold day built; on its first tick, only days whose silver is missing or older than bronze."
    ),
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    target=SILVER_TARGET,
)
def bronze_sensor(context: dg.SensorEvaluationContext, lake: LakeResource) -> dg.SensorResult | dg.SkipReason:
    """One run from the first changed day through the latest gold day; the cursor moves to the new version."""
    store = lake.lake()
    uri = store.uri(BRONZE_RISK_EVENTS)
    since = read_cursor(context.cursor)
    try:
        if since is None:
            version, days = DeltaTable(uri, storage_options=store.storage_options).version(), days_behind(store)
        else:
            version, days = days_touched(uri, since, store.storage_options)
    except TableNotFoundError:
        return dg.SkipReason(f"no bronze table at {uri} yet")
    if version == since:
        return dg.SkipReason(f"bronze unchanged at version {version}")
    observed = [observe_bronze(store)]

    versions = version_range(since, version)
    days = set(days_to_build(store, days))  # out-of-window days are filed under their ingestion days
    changed, outside = _in_partitions(days)
    if outside:
        context.log.warning(
            "bronze versions %s touched days outside the partitions (%s onwards, up to today): %s",
            versions,
            daily_partitions.start.date().isoformat(),
            ", ".join(d.isoformat() for d in outside),
        )
    if not changed:
        reason = (
            f"first look at bronze version {version}: silver is up to date with every bronze day"
            if since is None
            else f"bronze versions {versions} changed no rows"
        )
        return dg.SensorResult(skip_reason=reason, cursor=write_cursor(version), asset_events=observed)
    first, last = changed[0], gold_through(store, changed[-1])
    if already_waiting(context.instance, SENSOR_NAME, first, last):
        context.log.info("a run still queued for %s .. %s will read these commits", first, last)
        return dg.SensorResult(
            skip_reason=f"bronze versions {versions} touched only days a run still queued covers",
            cursor=write_cursor(version),
            asset_events=observed,
        )
    run = dg.RunRequest(
        run_key=run_key(first, last, since, version),
        partition_key=first.isoformat() if first == last else None,
        tags={
            **partition_tags(first, last),
            **PIPELINE_TAGS,
            BRONZE_VERSIONS_TAG: versions,
            CHANGED_DAYS_TAG: ",".join(d.isoformat() for d in changed),
        },
    )
    context.log.info(
        "bronze versions %s changed %s: requesting silver and gold %s .. %s",
        versions,
        ", ".join(d.isoformat() for d in changed),
        first,
        last,
    )
    return dg.SensorResult(run_requests=[run], cursor=write_cursor(version), asset_events=observed)


def observe_bronze(lake: Lake) -> dg.AssetObservation:
    """An observation of bronze as it is now: Delta version, row count and file count (the log only)."""
    facts = snapshot_facts(lake, BRONZE_RISK_EVENTS)
    return dg.AssetObservation(asset_key=asset_key(BRONZE_RISK_EVENTS), metadata=dict(facts))
