"""``bronze/risk_events``: the raw risk events, as trading processes wrote them.

Bronze is written by the trading runtime (:class:`risk_runtime.table.RiskEventsTable`), never by
Dagster, so it is declared as an external asset: it appears in the lineage as silver's source and
carries its schema and location, while :mod:`.sensors` follows its Delta versions to decide what
to rebuild.
"""

from __future__ import annotations

from typing import Final

import dagster as dg

from risk_pipeline.columns import described
from risk_pipeline.defs.constants import (
    BRONZE_GROUP,
    BRONZE_KINDS,
    BRONZE_RISK_EVENTS,
)
from risk_pipeline.defs.metadata import table_asset
from risk_runtime.events import BRONZE_COLUMN_DESCRIPTIONS, BRONZE_PARTITION_COLUMNS, BRONZE_SCHEMA

_BRONZE = table_asset(
    BRONZE_RISK_EVENTS,
    described(BRONZE_SCHEMA, BRONZE_COLUMN_DESCRIPTIONS),
    BRONZE_GROUP,
    kinds=BRONZE_KINDS,
)

bronze_risk_events: Final = dg.AssetSpec(
    description=(
        "Raw risk events appended by trading processes (circuit breakers, trailing stops, portfolio "
        "limits), partitioned by the UTC day of the event. Bad values are nulled and explained in "
        "`ingest_errors` rather than dropped; silver validates and de-duplicates."
    ),
    **{**_BRONZE, "metadata": {**_BRONZE["metadata"], "partition_columns": list(BRONZE_PARTITION_COLUMNS)}},
)
