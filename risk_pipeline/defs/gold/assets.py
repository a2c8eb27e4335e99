"""The gold tables as Dagster assets: one per table, one partition per UTC day.

Each asset calls its table's ``build_days`` for the run's days -- in order, day by day, carrying
state from the day before (see :mod:`.carry`) -- so a single-run range backfill and a one-day run
are the same code. Checks are evaluated in the same step, over the same days.

Gold carries state forward, so re-running an older day leaves later days stale until they are
re-run in order; the daily schedule and the bronze sensor always ask for whole days in order.
"""

from collections.abc import Callable, Iterator, Sequence
from datetime import date, timedelta
from types import ModuleType
from typing import Final

import dagster as dg

from risk_pipeline.defs.constants import GOLD_GROUP, asset_key
from risk_pipeline.defs.gold import (
    circuit_breaker_transitions,
    limit_rejection_stats,
    trailing_stop_outcomes,
)
from risk_pipeline.defs.gold.checks import (
    CIRCUIT_BREAKER_CHECKS,
    LIMIT_CHECKS,
    TRAILING_STOP_CHECKS,
    outcomes_checks,
    rejection_checks,
    transitions_checks,
)
from risk_pipeline.defs.metadata import table_asset
from risk_pipeline.defs.partitions import daily_partitions
from risk_pipeline.defs.resources import LakeResource
from risk_pipeline.defs.silver.assets import partition_days
from risk_pipeline.defs.silver.schema import SILVER
from risk_pipeline.lake import Lake, TableRef

GOLD_CODE_VERSION: Final = "2"
"""Bump when a gold definition changes: the UI then marks its partitions stale.

2: trailing_stop_outcomes gains the stop's option (underlying, option_right, strike, expiry, entry_option_delta)."""

FRESHNESS: Final = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=26), warn_window=timedelta(hours=25))
"""Yesterday's day lands at 00:30 UTC; a day later than that is a failed pipeline, not a slow one."""

Checker = Callable[[Lake, date, date], list[dg.AssetCheckResult]]


def gold_asset(
    module: ModuleType,
    table: TableRef,
    description: str,
    check_specs: Sequence[dg.AssetCheckSpec],
    checker: Checker,
) -> dg.AssetsDefinition:
    """A daily-partitioned gold asset around ``module.build_days``; the shape is the same for all three."""

    @dg.asset(
        deps=[asset_key(SILVER)],
        description=description,
        code_version=GOLD_CODE_VERSION,
        partitions_def=daily_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        check_specs=list(check_specs),
        freshness_policy=FRESHNESS,
        **table_asset(table, module.SCHEMA, GOLD_GROUP),
    )
    def _gold(
        context: dg.AssetExecutionContext, lake: LakeResource
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        the_lake = lake.lake()
        start, end = partition_days(context)
        result = module.build_days(the_lake, start, end, run_id=context.run_id)
        context.log.info(f"{table} {start}..{end}: {result.rows_written} rows")
        yield dg.MaterializeResult(
            metadata={
                "dagster/row_count": result.rows_written,
                "rows_per_day": dg.MetadataValue.json({d.isoformat(): n for d, n in result.per_day.items()}),
                "carried_from": str(result.carried_from) if result.carried_from else "empty state",
            }
        )
        yield from checker(the_lake, start, end)

    return _gold


circuit_breaker_transitions_asset: Final = gold_asset(
    circuit_breaker_transitions,
    circuit_breaker_transitions.CIRCUIT_BREAKER_TRANSITIONS,
    "One row per circuit-breaker state change: `source`, `timestamp`, `old_state` -> `new_state`, "
    "`failure_count`, `seconds_in_old_state` (since the same breaker's previous transition, across days; "
    "null for its first) and `is_valid` (a legal transition continuing from the breaker's previous state).",
    CIRCUIT_BREAKER_CHECKS,
    transitions_checks,
)
trailing_stop_outcomes_asset: Final = gold_asset(
    trailing_stop_outcomes,
    trailing_stop_outcomes.TRAILING_STOP_OUTCOMES,
    "One row per trailing stop (`execution_id`): premiums and times of its add, activation, trigger or removal; "
    "`outcome` (triggered | removed | open), `profit_locked` = stop - entry at trigger, `realized_pnl` = exit - "
    "entry, `giveback` = highest - exit, `n_updates`, `duration_seconds`; the option it protected (`underlying`, "
    "`option_right`, `strike`, `expiry`, `entry_option_delta`; null where its events predate schema version 2). "
    "Partitioned by the day of the stop's last event.",
    TRAILING_STOP_CHECKS,
    outcomes_checks,
)
limit_rejection_stats_asset: Final = gold_asset(
    limit_rejection_stats,
    limit_rejection_stats.LIMIT_REJECTION_STATS,
    "One row per (UTC day, `limit_type`) with rejections or warnings: `rejection_count`, `avg_current_value`, "
    "`avg_limit_value`, `max_utilization` = max |current| / |limit|, `warning_count`, `checks_total` (all entry "
    "checks that day) and `rejection_rate`.",
    LIMIT_CHECKS,
    rejection_checks,
)
