"""``risk_history_after_gold``: rebuild the dashboard once gold has changed.

Gold is written by runs of several kinds -- the bronze sensor's, the daily schedule's, ``risk-lake
materialize`` with ``$DAGSTER_HOME`` set, a backfill from the UI -- so the report follows the *result*,
not any one trigger: the sensor reads the newest materialisation of each gold table from the instance's
event log and, when one is newer than the last it acted on (the cursor, a storage id), requests one report
run. The run key is that storage id, so a tick evaluated twice asks for the same run and Dagster drops
the duplicate; several gold runs between two ticks make one report. Why not an automation condition: the
code location has no automation-condition sensor (see :mod:`risk_pipeline.defs.automation`), and an
unpartitioned asset's ``eager()`` over daily-partitioned parents waits on every missing calendar day.
"""

from __future__ import annotations

from typing import Final

import dagster as dg

from risk_pipeline.defs.gold.assets import GOLD_TABLES
from risk_pipeline.defs.reports.assets import risk_history_job

SENSOR_NAME: Final = "risk_history_after_gold"


def latest_gold_storage_id(instance: dg.DagsterInstance) -> int | None:
    """The event-log storage id of the newest materialisation of any gold table, or ``None`` before the first."""
    latest: int | None = None
    for table in GOLD_TABLES:
        records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=table.key), limit=1, ascending=False)
        for record in records.records:
            latest = record.storage_id if latest is None else max(latest, record.storage_id)
    return latest


@dg.sensor(
    name=SENSOR_NAME,
    job=risk_history_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests the risk-history dashboard when any gold table has been materialised since the last request.",
)
def risk_history_after_gold(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    latest = latest_gold_storage_id(context.instance)
    seen = int(context.cursor) if context.cursor else None
    if latest is None:
        return dg.SkipReason("no gold table has been materialised yet")
    if seen is not None and latest <= seen:
        return dg.SkipReason(f"no gold materialisation since storage id {seen}")
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key=f"gold-{latest}")], cursor=str(latest))
