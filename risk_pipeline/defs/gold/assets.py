"""The gold tables as Dagster assets: one asset per table, one partition per UTC day, one step for all.

Each table's ``build_days`` runs for the run's days -- in order, day by day, carrying state from the
day before (see :mod:`.carry`) -- so a single-run range backfill and a one-day run are the same code.
Checks are evaluated in the same step, over the same days. The three tables are built by one
subsettable ``multi_asset``, concurrently: materialising one of them builds only that one.

Gold carries state forward, so each table depends on its own previous day (:data:`.ordering.PREVIOUS_DAY`)
and the step runs in the :data:`.ordering.GOLD_POOL` pool: one run writes gold at a time, and whoever
requests gold for a changed day asks for every built day after it too (:func:`.ordering.gold_through`).
"""

import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
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
from risk_pipeline.defs.gold.carry import GoldResult
from risk_pipeline.defs.gold.checks import (
    CIRCUIT_BREAKER_CHECKS,
    LIMIT_CHECKS,
    TRAILING_STOP_CHECKS,
    outcomes_checks,
    rejection_checks,
    transitions_checks,
)
from risk_pipeline.defs.gold.preview import preview
from risk_pipeline.defs.metadata import row_counts, table_asset
from risk_pipeline.defs.ordering import GOLD_POOL, PREVIOUS_DAY, gold_missing_before
from risk_pipeline.defs.partitions import daily_partitions
from risk_pipeline.defs.resources import LakeResource
from risk_pipeline.defs.silver.assets import partition_days
from risk_pipeline.defs.silver.schema import SILVER
from risk_pipeline.lake import Lake, TableRef

GOLD_CODE_VERSION: Final = "3"
"""Bump when a gold definition changes: the UI then marks its partitions stale.

2: trailing_stop_outcomes gains the stop's option (underlying, option_right, strike, expiry, entry_option_delta).
3: trailing_stop_outcomes holds one row per stop lifetime (`lifetime_id`, `n_events`), in the partition of the day
   it began, updated in place; backfill it from the first day."""

FRESHNESS: Final = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=26), warn_window=timedelta(hours=25))
"""Yesterday's day lands at 00:30 UTC; a day later than that is a failed pipeline, not a slow one."""

Checker = Callable[[Lake, date, date, GoldResult], list[dg.AssetCheckResult]]
"""Evaluates a table's checks over ``[start, end)`` right after the table's ``build_days`` returned its result."""


def _from_lake(check: Callable[[Lake, date, date], list[dg.AssetCheckResult]]) -> Checker:
    """A table's checks that read everything they compare from the lake."""
    return lambda lake, start, end, _built: check(lake, start, end)


def _stop_checks(lake: Lake, start: date, end: date, built: GoldResult) -> list[dg.AssetCheckResult]:
    """The trailing-stop checks, given the carried state the build started from (read once per step)."""
    return outcomes_checks(lake, start, end, carried=built.carried)


@dataclass(frozen=True)
class GoldTable:
    """One gold table: the module that builds it, its description, its checks and their evaluation."""

    module: ModuleType
    table: TableRef
    description: str
    check_specs: Sequence[dg.AssetCheckSpec]
    checker: Checker

    @property
    def key(self) -> dg.AssetKey:
        return asset_key(self.table)

    def spec(self) -> dg.AssetSpec:
        return dg.AssetSpec(
            deps=[asset_key(SILVER), dg.AssetDep(self.key, partition_mapping=PREVIOUS_DAY)],
            description=self.description,
            code_version=GOLD_CODE_VERSION,
            partitions_def=daily_partitions,
            freshness_policy=FRESHNESS,
            **table_asset(self.table, self.module.SCHEMA, GOLD_GROUP),
        )


GOLD_TABLES: Final = (
    GoldTable(
        circuit_breaker_transitions,
        circuit_breaker_transitions.CIRCUIT_BREAKER_TRANSITIONS,
        "One row per circuit-breaker state change: `source`, `timestamp`, `old_state` -> `new_state`, "
        "`failure_count`, `seconds_in_old_state` (since the same breaker's previous transition, across days; "
        "null for its first) and `is_valid` (a legal transition continuing from the breaker's previous state).",
        CIRCUIT_BREAKER_CHECKS,
        _from_lake(transitions_checks),
    ),
    GoldTable(
        trailing_stop_outcomes,
        trailing_stop_outcomes.TRAILING_STOP_OUTCOMES,
        "One row per trailing-stop lifetime (`execution_id`, `lifetime_id` = the event that began it; an id added "
        "again after its stop ended is a new lifetime): premiums and times of its add, activation, trigger or "
        "removal; `outcome` (triggered | removed | open), `profit_locked` = stop - entry at trigger, `realized_pnl` = "
        "exit - entry, `giveback` = highest - exit, `n_updates`, `n_events`, `duration_seconds`; the option it "
        "protected (`underlying`, `option_right`, `strike`, `expiry`, `entry_option_delta`; null where its events "
        "predate schema version 2). Partitioned by the day the lifetime began; later days update the row in place.",
        TRAILING_STOP_CHECKS,
        _stop_checks,
    ),
    GoldTable(
        limit_rejection_stats,
        limit_rejection_stats.LIMIT_REJECTION_STATS,
        "One row per (UTC day, `limit_type`) with rejections or warnings: `rejection_count`, `avg_current_value`, "
        "`avg_limit_value`, `max_utilization` = max |current| / |limit|, `warning_count`, `checks_total` (all entry "
        "checks that day) and `rejection_rate`.",
        LIMIT_CHECKS,
        _from_lake(rejection_checks),
    ),
)


@dataclass(frozen=True)
class GoldOutcome:
    """What building one table produced: its result and check results, or the error it raised."""

    table: GoldTable
    result: GoldResult | None
    checks: list[dg.AssetCheckResult]
    error: BaseException | None
    seconds: float


def build_gold_tables(
    tables: Sequence[GoldTable], lake: Callable[[], Lake], start: date, end: date, run_id: str
) -> list[GoldOutcome]:
    """Build ``tables`` for ``[start, end)`` side by side, one worker thread and one ``lake()`` each.

    The tables read the same silver days and share nothing else, and their work runs mostly in polars
    and delta-rs outside the GIL, so together they take about as long as the largest alone. Every table
    is built even when another fails; the outcomes come back in the order of ``tables``.
    """

    def build(table: GoldTable) -> GoldOutcome:
        began = time.perf_counter()
        the_lake = lake()
        try:
            result = table.module.build_days(the_lake, start, end, run_id=run_id)
            checks = table.checker(the_lake, start, end, result)
        except Exception as error:  # reported by the caller, after the other tables
            return GoldOutcome(table, None, [], error, time.perf_counter() - began)
        return GoldOutcome(table, result, checks, None, time.perf_counter() - began)

    with ThreadPoolExecutor(max_workers=max(1, len(tables)), thread_name_prefix="gold") as pool:
        return list(pool.map(build, tables))


@dg.multi_asset(
    specs=[table.spec() for table in GOLD_TABLES],
    check_specs=[spec for table in GOLD_TABLES for spec in table.check_specs],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    can_subset=True,
    name="gold_tables",
    pool=GOLD_POOL,
)
def gold_tables(
    context: dg.AssetExecutionContext, lake: LakeResource
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """The selected gold tables for the run's days (:func:`build_gold_tables`).

    Refused when silver holds days before the run's first day that gold was never built for (they would
    be skipped by the carried state): the failure names the days to build first.

    A table that fails does not stop the others: their results are reported, then the step fails with
    the first error.
    """
    start, end = partition_days(context)
    skipped = gold_missing_before(lake.lake(), start)
    if skipped:
        raise dg.Failure(
            description=(
                f"gold {start} would start from state older than {start - timedelta(days=1)}, skipping silver days "
                f"{skipped[0]} .. {skipped[-1]}: materialise gold from {skipped[0]} through {end - timedelta(days=1)}"
            ),
            metadata={"silver_days_without_gold": [d.isoformat() for d in skipped]},
        )
    selected = [table for table in GOLD_TABLES if table.key in context.selected_asset_keys]
    outcomes = build_gold_tables(selected, lake.lake, start, end, context.run_id)
    the_lake = lake.lake()
    for outcome in outcomes:
        name = outcome.table.table
        if outcome.result is None:
            context.log.error(f"{name} {start}..{end} failed: {outcome.error!r}")
            continue
        context.log.info(f"{name} {start}..{end}: {outcome.result.rows_written} rows in {outcome.seconds:.1f}s")
        yield dg.MaterializeResult(
            asset_key=outcome.table.key,
            metadata={
                **row_counts(the_lake, name, start, end, written=outcome.result.rows_written),
                "preview": preview(the_lake, name, start, end),
                "rows_per_day": dg.MetadataValue.json({d.isoformat(): n for d, n in outcome.result.per_day.items()}),
                "carried_from": str(outcome.result.carried_from) if outcome.result.carried_from else "empty state",
            },
        )
        wanted = context.selected_asset_check_keys
        yield from (c for c in outcome.checks if dg.AssetCheckKey(outcome.table.key, c.check_name) in wanted)
    errors = [outcome.error for outcome in outcomes if outcome.error is not None]
    if errors:
        raise errors[0]
