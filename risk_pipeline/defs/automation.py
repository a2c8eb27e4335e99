"""What runs the pipeline without anyone pressing a button.

Two triggers, each covering what the other cannot:

* ``bronze_sensor`` (:mod:`.bronze.sensors`) rebuilds silver and gold from the first day new bronze
  commits touched through the latest gold day, within a minute of the commit;
* ``daily_pipeline_schedule`` materialises yesterday's silver and gold at 00:30 UTC (and gold of any day
  built after it, today's so far): the day is complete by then, and one full pass per day is the backstop
  for anything a sensor tick missed (a daemon outage, late events after the last tick, a failed run).

There is no automation-condition sensor. Gold's order is a chain (day D after D-1, a change to D-k
rebuilds D-k through the latest day, :mod:`.ordering`): declarative conditions evaluate each partition
on its own and would launch one run per day, each waiting for the one before, a tick apart. The sensor
asks for the whole chain as one run instead, so no asset carries an automation condition and a sensor
evaluating them would only ever idle.
"""

from __future__ import annotations

from datetime import UTC, date, timedelta
from typing import Final

import dagster as dg

from risk_pipeline.defs.constants import PIPELINE_GROUPS
from risk_pipeline.defs.ordering import PIPELINE_TAGS, gold_through, partition_tags
from risk_pipeline.defs.partitions import daily_partitions
from risk_pipeline.defs.resources import LakeResource

DAILY_CRON: Final = "30 0 * * *"
"""00:30 UTC: half an hour of slack for the shippers' last batches of the previous day."""

daily_pipeline_job: Final = dg.define_asset_job(
    "daily_pipeline_job",
    # By group, not by key: every silver and gold table is in, including ones added later. An empty
    # selection (before those groups exist) is valid and the schedule then has nothing to run.
    selection=dg.AssetSelection.groups(*PIPELINE_GROUPS),
    partitions_def=daily_partitions,
    description="Silver and gold for one UTC day, or a range of days in calendar order.",
)


@dg.schedule(
    name="daily_pipeline_schedule",
    cron_schedule=DAILY_CRON,
    execution_timezone="UTC",
    job=daily_pipeline_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="At 00:30 UTC, materialise yesterday's silver and gold, and gold of any later day already built.",
)
def daily_pipeline_schedule(context: dg.ScheduleEvaluationContext, lake: LakeResource) -> dg.RunRequest | dg.SkipReason:
    """Yesterday through the latest gold day, computed from the tick's scheduled time.

    Not ``build_schedule_from_partitioned_job``: with ``end_offset=1`` (today's partition exists for
    the bronze sensor) that helper requests *today's* partition, the day that has only just begun.
    Today's gold may already be built from yesterday's state as it was; rebuilding yesterday rebuilds it too.
    """
    yesterday = (context.scheduled_execution_time.astimezone(UTC) - timedelta(days=1)).date()
    if not daily_partitions.has_partition_key(yesterday.isoformat()):
        return dg.SkipReason(f"{yesterday} is before the first partition")
    last = gold_through(lake.lake(), yesterday)
    return dg.RunRequest(
        run_key=_run_key(yesterday, last),
        partition_key=yesterday.isoformat() if last == yesterday else None,
        tags={**partition_tags(yesterday, last), **PIPELINE_TAGS},
    )


def _run_key(first: date, last: date) -> str:
    return first.isoformat() if first == last else f"{first.isoformat()}..{last.isoformat()}"
