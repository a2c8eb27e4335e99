"""What runs the pipeline without anyone pressing a button.

Three triggers, each covering what the others cannot:

* ``bronze_sensor`` (:mod:`.bronze.sensors`) rebuilds silver for the days new bronze commits touched,
  within a minute of the commit;
* ``risk_automation_sensor`` evaluates the assets' automation conditions, so gold follows silver
  without a hand-written dependency table. Dagster's implicit default automation sensor starts
  stopped; this one is declared to start running;
* ``daily_pipeline_schedule`` materialises yesterday's silver and gold partitions at 00:30 UTC: the
  day is complete by then, and one full pass per day is the backstop for anything a sensor tick
  missed (a daemon outage, late events after the last tick, a failed run).
"""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Final

import dagster as dg

from risk_pipeline.defs.constants import PIPELINE_GROUPS
from risk_pipeline.defs.partitions import daily_partitions

DAILY_CRON: Final = "30 0 * * *"
"""00:30 UTC: half an hour of slack for the shippers' last batches of the previous day."""

risk_automation_sensor: Final = dg.AutomationConditionSensorDefinition(
    "risk_automation_sensor",
    target=dg.AssetSelection.all(),  # assets without an automation condition are simply not evaluated
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Evaluates every asset's automation condition (gold following silver).",
)

daily_pipeline_job: Final = dg.define_asset_job(
    "daily_pipeline_job",
    # By group, not by key: every silver and gold table is in, including ones added later. An empty
    # selection (before those groups exist) is valid and the schedule then has nothing to run.
    selection=dg.AssetSelection.groups(*PIPELINE_GROUPS),
    partitions_def=daily_partitions,
    description="One UTC day of every silver and gold table.",
)


@dg.schedule(
    name="daily_pipeline_schedule",
    cron_schedule=DAILY_CRON,
    execution_timezone="UTC",
    job=daily_pipeline_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="At 00:30 UTC, materialise yesterday's partition of every silver and gold table.",
)
def daily_pipeline_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    """Yesterday's partition, computed from the tick's scheduled time.

    Not ``build_schedule_from_partitioned_job``: with ``end_offset=1`` (today's partition exists for
    the bronze sensor) that helper requests *today's* partition, the day that has only just begun.
    """
    yesterday = (context.scheduled_execution_time.astimezone(UTC) - timedelta(days=1)).date().isoformat()
    if not daily_partitions.has_partition_key(yesterday):
        return dg.SkipReason(f"{yesterday} is before the first partition")
    return dg.RunRequest(run_key=yesterday, partition_key=yesterday)
