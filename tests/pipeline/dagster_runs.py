"""Running the pipeline's assets in-process, the way the end-to-end and fault tests need to."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any, Final

import dagster as dg
import pyarrow as pa

from risk_pipeline.defs.bronze.assets import bronze_risk_events
from risk_pipeline.defs.gold.assets import gold_tables
from risk_pipeline.defs.resources import LakeResource
from risk_pipeline.defs.silver.assets import silver_risk_events
from risk_runtime.table import RiskEventsTable

PIPELINE: Final = [
    bronze_risk_events,
    silver_risk_events,
    gold_tables,
]
"""Every asset of the code location, bronze included as the external source."""

QUIET: Final = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def materialize(
    lake_root: Path,
    days: Sequence[date],
    assets: Sequence[Any] = PIPELINE,
    selection: dg.AssetSelection | None = None,
) -> dg.ExecuteInProcessResult:
    """One in-process run of ``assets`` (or the ``selection`` of them) for one day, or a range as one run."""
    first, last = days[0].isoformat(), days[-1].isoformat()
    partition: dict[str, Any] = (
        {"partition_key": first}
        if first == last
        else {"tags": {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}}
    )
    return dg.materialize(
        list(assets),
        resources={"lake": LakeResource(root=str(lake_root))},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
        run_config=QUIET,
        selection=selection,
        **partition,
    )


def check_results(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def check_metadata(result: dg.ExecuteInProcessResult, name: str) -> dict[str, Any]:
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == name]
    return {key: value.value for key, value in evaluation.metadata.items()}


def append_bronze(lake_root: Path, table: pa.Table, app_id: str) -> None:
    assert RiskEventsTable(lake_root).append(table, app_id=app_id, version=1)
