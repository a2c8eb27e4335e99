"""``bronze/risk_events``: the raw risk events, as trading processes wrote them.

Bronze is written by the trading runtime (:class:`risk_runtime.table.RiskEventsTable`), never by
Dagster, so it is declared as an external asset: it appears in the lineage as silver's source and
carries its schema and location, while :mod:`.sensors` follows its Delta versions to decide what
to rebuild.
"""

from __future__ import annotations

from typing import Final

import dagster as dg

from risk_pipeline.defs.constants import (
    BRONZE_GROUP,
    BRONZE_KINDS,
    BRONZE_RISK_EVENTS,
    OWNERS,
    asset_key,
    layer_tags,
)
from risk_pipeline.defs.metadata import column_schema
from risk_pipeline.lake import Lake
from risk_runtime.events import BRONZE_PARTITION_COLUMNS, BRONZE_SCHEMA

bronze_risk_events: Final = dg.AssetSpec(
    key=asset_key(BRONZE_RISK_EVENTS),
    description=(
        "Raw risk events appended by trading processes (circuit breakers, trailing stops, portfolio "
        "limits), partitioned by the UTC day of the event. Bad values are nulled and explained in "
        "`ingest_errors` rather than dropped; silver validates and de-duplicates."
    ),
    group_name=BRONZE_GROUP,
    kinds=set(BRONZE_KINDS),
    owners=list(OWNERS),
    tags=layer_tags(BRONZE_GROUP),
    metadata={
        "dagster/column_schema": column_schema(BRONZE_SCHEMA),
        "dagster/table_name": str(BRONZE_RISK_EVENTS),
        # Resolved at load time from $RISK_LAKE_ROOT: shows where this deployment's bronze lives.
        "dagster/uri": Lake().uri(BRONZE_RISK_EVENTS),
        "partition_columns": list(BRONZE_PARTITION_COLUMNS),
    },
)
