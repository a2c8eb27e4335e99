"""``silver/risk_events`` and ``silver/risk_events_quarantine``: one UTC day of bronze, validated.

One computation produces both tables (every bronze row goes to exactly one of them, or is a
removed duplicate), so they are one ``multi_asset``. A run covers one day or, with the single-run
backfill policy, a whole range; either way each day is read, validated and replaced on its own (a few
at a time, see :mod:`.build`), so memory stays at a few days' worth and an interrupted range is
repaired by running it again.
"""

from collections.abc import Iterator
from datetime import date
from typing import Final

import dagster as dg

from risk_pipeline.defs.constants import (
    BRONZE_RISK_EVENTS,
    SILVER_GROUP,
    asset_key,
)
from risk_pipeline.defs.metadata import row_counts, table_asset
from risk_pipeline.defs.ordering import SILVER_POOL
from risk_pipeline.defs.partitions import daily_partitions
from risk_pipeline.defs.resources import LakeResource
from risk_pipeline.defs.silver.build import build_silver_days
from risk_pipeline.defs.silver.checks import CHECK_SPECS
from risk_pipeline.defs.silver.schema import QUARANTINE, QUARANTINE_SCHEMA, SILVER, SILVER_SCHEMA, rule_settings

SILVER_CODE_VERSION: Final = "3"
"""Bump when validation rules or the silver model change: the UI then marks every day stale.

2: event schema version 2 (option contract fields, their rules, the v1 -> v2 upcast), ``$RISK_MAX_PREMIUM``.
3: ``event_id`` unique across days, the time window (``$RISK_MAX_EVENT_AHEAD``), trailing-stop premium
   consistency, expiry in the exchange's calendar (``$RISK_EXCHANGE_TZ``)."""


def _specs() -> list[dg.AssetSpec]:
    """Built in a function: a module-level AssetSpec would itself be loaded as an external asset."""
    common = {"deps": [asset_key(BRONZE_RISK_EVENTS)], "code_version": SILVER_CODE_VERSION}
    silver = dg.AssetSpec(
        description=(
            "Validated, typed, de-duplicated risk events; one partition per UTC day (`event_date`). "
            "Rows failing the pandera model `RiskEventModel` go to the quarantine table with every reason; "
            "copies of an `event_id` (retried batches) are removed, and an id another day already holds is "
            "quarantined. Per day: bronze = silver + quarantine + duplicates."
        ),
        partitions_def=daily_partitions,
        **common,
        **table_asset(SILVER, SILVER_SCHEMA, SILVER_GROUP),
    )
    quarantine = dg.AssetSpec(
        description=(
            "Bronze rows silver refused, with their raw values, `reasons` (every rule that failed), the `run_id` "
            "and `partition` that refused them, filed under their own day -- or, for an event dated outside the time "
            "window (before the lake's first day, or after its ingestion plus $RISK_MAX_EVENT_AHEAD), under the day "
            "it was ingested. Re-materialising a day replaces its quarantine too."
        ),
        partitions_def=daily_partitions,
        **common,
        **table_asset(QUARANTINE, QUARANTINE_SCHEMA, SILVER_GROUP),
    )
    return [silver, quarantine]


def partition_days(context: dg.AssetExecutionContext) -> tuple[date, date]:
    """The run's UTC days as ``[start, end)``, for one partition or a single-run range."""
    window = context.partition_time_window
    return window.start.date(), window.end.date()


@dg.multi_asset(
    specs=_specs(),
    check_specs=CHECK_SPECS,
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    name="silver_risk_events",
    pool=SILVER_POOL,  # one run replaces silver days at a time (see risk_pipeline.defs.ordering)
)
def silver_risk_events(
    context: dg.AssetExecutionContext, lake: LakeResource
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    the_lake = lake.lake()
    start, end = partition_days(context)
    settings = rule_settings()  # read (and a bad value refused) before any day is replaced
    context.log.info(f"silver rules: {settings}")
    built = build_silver_days(the_lake, start, end, run_id=context.run_id, log=context.log.info)
    totals = built.totals
    yield dg.MaterializeResult(
        asset_key=asset_key(SILVER),
        metadata={
            **row_counts(the_lake, SILVER, start, end, written=totals["silver_rows"]),
            "bronze_rows": totals["bronze_rows"],
            "duplicates_removed": totals["duplicates_removed"],
            "days": len(built.per_day),
            "rule_settings": dg.MetadataValue.json(settings),
        },
    )
    yield dg.MaterializeResult(
        asset_key=asset_key(QUARANTINE),
        metadata={
            **row_counts(the_lake, QUARANTINE, start, end, written=totals["quarantine_rows"]),
            "reasons": dg.MetadataValue.json(dict(sorted(built.reasons.items(), key=lambda kv: -kv[1])[:50])),
        },
    )
    yield from built.check_results()
