"""A three-day lake built the way production builds it, shared by the dashboard's tests.

The simulator trades 2026-03-02 .. 2026-03-04 (breakers opening during venue outages, stops triggering
and being removed, limits rejecting); its events land in bronze through the runtime's encoder and a
real Delta append, and one real Dagster run builds silver and gold over the three days. Three things
are planted on top, each for a figure the page must show:

* a hole in the simulator's sequence numbers (:data:`GAP`): three events accepted and never landed;
* one bronze row silver must refuse (a breaker entering a state that does not exist): quarantine;
* a breaker whose name is markup (:data:`EVIL_BREAKER`), opening and closing on the second day: every
  place the name reaches must escape it.

Built once per session by ``conftest.py`` (one run of about ten seconds); tests must not change it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Final

import dagster as dg
import pyarrow as pa

from risk_pipeline.defs.bronze.assets import bronze_risk_events
from risk_pipeline.defs.gold.assets import gold_tables
from risk_pipeline.defs.ordering import RANGE_END_TAG, RANGE_START_TAG
from risk_pipeline.defs.resources import LakeResource
from risk_pipeline.defs.silver.assets import silver_risk_events
from risk_pipeline.lake import Lake, conform
from risk_runtime.encoding import events_to_bronze
from risk_runtime.events import BRONZE_SCHEMA, SCHEMA_VERSION, RiskEvent, RiskEventType, new_event_id
from risk_runtime.simulation import simulate_session
from risk_runtime.sink import MemorySink
from risk_runtime.table import RiskEventsTable

FIRST: Final = date(2026, 3, 2)
LAST: Final = date(2026, 3, 4)
WRITER: Final = "sim-writer"
GAP: Final = (1001, 1003)
"""Sequence numbers of :data:`WRITER` that never reach bronze."""
EVIL_BREAKER: Final = 'orders.<b>&"evil"</script><script>alert(1)</script>'
INGESTED_AT: Final = datetime(2026, 3, 5, 6, 0, tzinfo=UTC)
QUIET: Final = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass(frozen=True)
class BuiltLake:
    """The lake, the instance its runs were recorded in, and the resources that reach it."""

    root: Path
    lake: Lake
    instance: dg.DagsterInstance
    resources: dict[str, LakeResource]


def _evil_breaker_events() -> list[RiskEvent]:
    day2 = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)
    steps = [("CLOSED", "OPEN", 3, 0), ("OPEN", "HALF_OPEN", 3, 700), ("HALF_OPEN", "CLOSED", 0, 760)]
    return [
        RiskEvent(
            RiskEventType.CB_STATE_CHANGE,
            timestamp=day2 + timedelta(seconds=offset),
            source=EVIL_BREAKER,
            old_state=old,
            new_state=new,
            failure_count=failures,
        )
        for old, new, failures, offset in steps
    ]


def _refused_row() -> pa.Table:
    """A breaker entering a state that does not exist: bronze takes it, silver quarantines it."""
    row = {
        "event_id": new_event_id(),
        "event_type": RiskEventType.CB_STATE_CHANGE.value,
        "component": "circuit_breaker",
        "timestamp": datetime(2026, 3, 3, 16, 0, tzinfo=UTC),
        "schema_version": SCHEMA_VERSION,
        "writer_id": "raw-writer",
        "sequence": 1,
        "source": "orders.cboe",
        "old_state": "CLOSED",
        "new_state": "EXPLODED",
        "failure_count": 1,
        "event_date": date(2026, 3, 3),
        "ingested_at": INGESTED_AT,
    }
    return conform(pa.Table.from_pylist([row], schema=BRONZE_SCHEMA.remove_metadata()), BRONZE_SCHEMA)


def build_lake(root: Path, instance: dg.DagsterInstance) -> BuiltLake:
    sink = MemorySink()
    simulate_session(sink, seed=7, start=datetime(2026, 3, 2, 14, 30, tzinfo=UTC), days=3, target_events=3_000)
    events = sorted(sink.events + _evil_breaker_events(), key=lambda e: e.timestamp)
    before, after = events[: GAP[0] - 1], events[GAP[0] - 1 :]
    table = RiskEventsTable(root)
    batches = [
        events_to_bronze(before, writer_id=WRITER, first_sequence=1, ingested_at=INGESTED_AT),
        events_to_bronze(after, writer_id=WRITER, first_sequence=GAP[1] + 1, ingested_at=INGESTED_AT),
        _refused_row(),
    ]
    for version, batch in enumerate(batches, start=1):
        assert table.append(batch, app_id="report-fixture", version=version)
    resources = {"lake": LakeResource(root=str(root))}
    result = dg.materialize(
        [bronze_risk_events, silver_risk_events, gold_tables],
        resources=resources,
        instance=instance,
        run_config=QUIET,
        tags={RANGE_START_TAG: FIRST.isoformat(), RANGE_END_TAG: LAST.isoformat()},
        raise_on_error=False,
    )
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    return BuiltLake(root, Lake(str(root)), instance, resources)
