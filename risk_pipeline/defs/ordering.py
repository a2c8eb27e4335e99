"""Who builds which days, in what order: the rules every run of silver and gold follows.

Gold day D starts from the state carried out of D-1 (:mod:`.gold.carry`), so gold is only right when
its days are built in calendar order and a change to day D-k is followed by D-k+1 … the latest built
day. Three mechanisms enforce that, each where it can:

* **The graph.** Every gold table depends on its own previous day (:data:`PREVIOUS_DAY`); Dagster's
  backfills launch a self-dependent asset's days in order (and with the single-run policy, as one run
  that :mod:`.gold.assets` builds day by day), and the UI shows the chain.
* **What is asked for.** Whoever requests gold for a changed day -- the bronze sensor, the nightly
  schedule, ``risk-lake materialize`` -- asks for gold from that day through the latest gold day
  already built (:func:`gold_through`), as one run in calendar order.
* **One writer at a time.** The gold step runs in the :data:`GOLD_POOL` concurrency pool and silver's
  in :data:`SILVER_POOL`; the instance's ``concurrency.pools.default_limit: 1`` (``dagster_home/dagster.yaml``)
  admits one step of each pool at a time across *all* runs of the instance -- daemon runs and the CLI's
  in-process runs alike, since the in-process executor claims the same slots. Runs the daemon launches
  carry :data:`PIPELINE_TAGS`, limited to one at a time in the run queue, so they also *start* in the
  order they were requested.
"""

from __future__ import annotations

from datetime import date
from typing import Final

import dagster as dg

from risk_pipeline.defs.gold.circuit_breaker_transitions import CIRCUIT_BREAKER_STATE, CIRCUIT_BREAKER_TRANSITIONS
from risk_pipeline.defs.gold.limit_rejection_stats import LIMIT_REJECTION_STATS
from risk_pipeline.defs.gold.trailing_stop_outcomes import TRAILING_STOP_OUTCOMES, TRAILING_STOP_STATE
from risk_pipeline.defs.partitions import daily_partitions
from risk_pipeline.defs.silver.schema import SILVER
from risk_pipeline.lake import Lake

PREVIOUS_DAY: Final = dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=-1)
"""Gold day D depends on gold day D-1 (the first day depends on nothing)."""

GOLD_POOL: Final = "risk_gold"
"""Concurrency pool of the gold step: one run writes gold at a time."""
SILVER_POOL: Final = "risk_silver"
"""Concurrency pool of the silver step: two runs replacing the same day would race on its commit."""

PIPELINE_TAG: Final = "risk/pipeline"
PIPELINE_TAGS: Final[dict[str, str]] = {PIPELINE_TAG: "silver_gold"}
"""Tag of every run the sensor and the schedule request; the run queue starts one at a time, in order."""

PARTITION_TAG: Final = "dagster/partition"
RANGE_START_TAG: Final = "dagster/asset_partition_range_start"
RANGE_END_TAG: Final = "dagster/asset_partition_range_end"
CHANGED_DAYS_TAG: Final = "risk/changed_days"
"""Run tag: the days whose bronze changed, which the run's range starts from (comma-separated)."""

_GOLD_WRITES: Final = (
    CIRCUIT_BREAKER_TRANSITIONS,
    CIRCUIT_BREAKER_STATE,
    TRAILING_STOP_OUTCOMES,
    TRAILING_STOP_STATE,
    LIMIT_REJECTION_STATS,
)
"""Every table the gold step writes: a day present in any of them has been built."""


def partition_tags(first: date, last: date) -> dict[str, str]:
    """Run tags of one day (``dagster/partition``) or of a range (the range start and end tags)."""
    if first == last:
        return {PARTITION_TAG: first.isoformat()}
    return {RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: last.isoformat()}


def latest_gold_day(lake: Lake) -> date | None:
    """The latest day any gold table (or carried state) holds, read from the Delta logs (no data scan)."""
    days = [day for ref in _GOLD_WRITES for day in lake.days_present(ref)[-1:]]
    return max(days, default=None)


def gold_missing_before(lake: Lake, start: date) -> list[date]:
    """Silver days before ``start`` that gold has not been built for since the last gold day before it.

    Gold ``start`` would carry its state from an older day than the one before it, skipping those days'
    events: the gold step refuses to run rather than write that. Days whose silver is empty (no rows)
    change no state and never count.
    """
    built = {day for ref in _GOLD_WRITES for day in lake.days_present(ref) if day < start}
    last_built = max(built, default=None)
    return [day for day in lake.days_present(SILVER) if day < start and (last_built is None or day > last_built)]


def gold_through(lake: Lake, last: date) -> date:
    """The last gold day to rebuild after a change up to ``last``: the latest built day, if later.

    Never past the partitions' last day (today): a gold day beyond it cannot be requested.
    """
    built = latest_gold_day(lake)
    through = max(last, built) if built else last
    final = date.fromisoformat(daily_partitions.get_last_partition_key() or last.isoformat())
    return max(last, min(through, final))
