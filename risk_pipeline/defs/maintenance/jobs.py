"""``lake_maintenance_job``: compaction, checkpoints and vacuum for every table, on its own schedule.

Not an asset: it changes how tables are stored, never what they hold. Each table's before/after
file counts and bytes are recorded as an observation on that table's asset, so the trend shows on
the asset's page in the UI.
"""

from typing import Final

import dagster as dg

from risk_pipeline.defs.constants import BRONZE_RISK_EVENTS, OWNERS, asset_key
from risk_pipeline.defs.gold.circuit_breaker_transitions import CIRCUIT_BREAKER_TRANSITIONS
from risk_pipeline.defs.gold.limit_rejection_stats import LIMIT_REJECTION_STATS
from risk_pipeline.defs.gold.trailing_stop_outcomes import TRAILING_STOP_OUTCOMES
from risk_pipeline.defs.maintenance.compaction import DEFAULT_RETENTION_HOURS, maintain
from risk_pipeline.defs.resources import LakeResource
from risk_pipeline.defs.silver.schema import QUARANTINE, SILVER

MAINTAINED_TABLES: Final = (
    BRONZE_RISK_EVENTS,
    SILVER,
    QUARANTINE,
    CIRCUIT_BREAKER_TRANSITIONS,
    TRAILING_STOP_OUTCOMES,
    LIMIT_REJECTION_STATS,
)
MAINTENANCE_CRON: Final = "15 3 * * *"
"""03:15 UTC: after the nightly rebuild of yesterday, well before the next session."""


class MaintenanceConfig(dg.Config):
    retention_hours: int = DEFAULT_RETENTION_HOURS
    """Vacuum keeps every file a version younger than this still needs (time-travel window)."""


@dg.op(description="Compact, checkpoint and vacuum every lake table; observe files and bytes before and after.")
def maintain_lake_tables(context: dg.OpExecutionContext, config: MaintenanceConfig, lake: LakeResource) -> None:
    the_lake = lake.lake()
    for ref in MAINTAINED_TABLES:
        if not the_lake.exists(ref):
            context.log.info(f"{ref}: no table yet")
            continue
        report = maintain(
            the_lake.uri(ref), storage_options=the_lake.storage_options, retention_hours=config.retention_hours
        )
        context.log.info(f"{ref}: {report}")
        context.log_event(dg.AssetObservation(asset_key=asset_key(ref), metadata=report.as_metadata()))


@dg.job(description="Lake maintenance: compaction, checkpoints, vacuum.", tags={"owner": OWNERS[0]})
def lake_maintenance_job() -> None:
    maintain_lake_tables()


lake_maintenance_schedule: Final = dg.ScheduleDefinition(
    name="lake_maintenance_schedule",
    job=lake_maintenance_job,
    cron_schedule=MAINTENANCE_CRON,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Nightly compaction, checkpoint and vacuum of every lake table.",
)
