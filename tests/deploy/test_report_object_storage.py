"""The dashboard of a lake on object storage: read from ``s3://``, written as a local file, and said so.

A browser opens files, not bucket keys, so the ``reports/risk_history`` asset writes the page on the run's
host (``$RISK_REPORTS_DIR`` here) and its metadata says the lake is remote. The gold rows are written
straight into the store through the lake's own writer: this is about reaching the store, not the pipeline.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pytest
from servers import S3Server, configure_store

from risk_pipeline.defs.gold import circuit_breaker_transitions as cb
from risk_pipeline.defs.gold import limit_rejection_stats as limits
from risk_pipeline.defs.gold import trailing_stop_outcomes as stops
from risk_pipeline.defs.reports.assets import risk_history_report
from risk_pipeline.defs.resources import lake_resource_from_env
from risk_pipeline.lake import Lake
from risk_pipeline.report.location import REPORTS_DIR_ENV

DAY = date(2026, 3, 3)


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(DAY.year, DAY.month, DAY.day, hour, minute, tzinfo=UTC)


def write_gold(lake: Lake) -> None:
    transitions = [
        {"event_id": "e1", "source": "orders.cboe", "timestamp": at(15), "old_state": "CLOSED", "new_state": "OPEN",
         "failure_count": 3, "is_valid": True, "event_date": DAY},
        {"event_id": "e2", "source": "orders.cboe", "timestamp": at(15, 10), "old_state": "OPEN",
         "new_state": "HALF_OPEN", "failure_count": 3, "prev_new_state": "OPEN", "seconds_in_old_state": 600.0,
         "is_valid": True, "event_date": DAY},
    ]  # fmt: skip
    stop = {"execution_id": "ex-1", "lifetime_id": "l1", "symbol": "SPY", "underlying": "SPY", "outcome": "triggered",
            "entry_premium": 2.0, "highest_premium": 3.0, "stop_premium": 2.7, "exit_premium": 2.6,
            "triggered_at": at(16), "profit_locked": 0.7, "realized_pnl": 0.6, "giveback": 0.4, "n_updates": 2,
            "n_events": 5, "last_event_date": DAY, "event_date": DAY}  # fmt: skip
    limit = {"limit_type": "portfolio_delta", "rejection_count": 4, "avg_current_value": 120.0,
             "avg_limit_value": 100.0, "warning_count": 1, "max_utilization": 1.3, "checks_total": 40,
             "rejection_rate": 0.1, "event_date": DAY}  # fmt: skip
    for ref, schema, rows in (
        (cb.CIRCUIT_BREAKER_TRANSITIONS, cb.SCHEMA, transitions),
        (stops.TRAILING_STOP_OUTCOMES, stops.SCHEMA, [stop]),
        (limits.LIMIT_REJECTION_STATS, limits.SCHEMA, [limit]),
    ):
        lake.replace_days(ref, pa.Table.from_pylist(rows, schema=schema), DAY, date(2026, 3, 4), schema=schema)


def test_the_report_of_an_s3_lake_is_a_local_file(
    s3: S3Server, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = configure_store(s3, bucket, "storage_options", "risk-secret", monkeypatch)
    monkeypatch.setenv(REPORTS_DIR_ENV, str(tmp_path / "reports"))
    write_gold(Lake(root))

    result = dg.materialize(
        [risk_history_report], resources={"lake": lake_resource_from_env()}, instance=dg.DagsterInstance.ephemeral()
    )
    assert result.success
    (materialization,) = result.asset_materializations_for_node("reports__risk_history")
    metadata = materialization.metadata
    page = tmp_path / "reports" / "risk_history.html"
    assert metadata["path"] == dg.MetadataValue.path(str(page))
    assert "object storage" in metadata["written_locally"].value and root in metadata["written_locally"].value
    assert (metadata["period_start"].value, metadata["period_end"].value) == (DAY.isoformat(), DAY.isoformat())
    text = page.read_text(encoding="utf-8")
    assert '<div class="value">1</div><div class="label">breaker opens</div>' in text
    assert '<div class="value">0.70</div><div class="label">profit locked</div>' in text
    assert not [key for key in s3.objects(bucket) if key.endswith(".html")]  # nothing written into the store
