"""The sequence-gap check of a range reads the days either side of it, so a hole at the range's edge is found.

One writer's events run over two days; an event is deleted from bronze next to midnight, then each day is
built alone. The hole's other neighbour is on the day outside the range, which the check reads while the range
is built.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from deltalake import DeltaTable

from risk_pipeline.defs.constants import BRONZE_RISK_EVENTS
from risk_pipeline.defs.silver.build import build_silver_days
from risk_pipeline.defs.silver.checks import NO_SEQUENCE_GAPS
from risk_pipeline.lake import Lake
from risk_runtime.encoding import events_to_bronze
from risk_runtime.events import RiskEvent, RiskEventType
from risk_runtime.table import RiskEventsTable

D1, D2 = date(2026, 2, 16), date(2026, 2, 17)
ONE_DAY = timedelta(days=1)


def lake_with_a_hole(tmp_path: Path, missing: int) -> Lake:
    """Sequences 1..5 on D1 (from 22:00), 6..10 on D2 (from 01:00), one writer; ``missing`` deleted from bronze."""
    events = [
        RiskEvent(RiskEventType.CB_FAILURE, timestamp=datetime(d.year, d.month, d.day, h, i, tzinfo=UTC),
                  source="orders", failure_count=i + 1)
        for d, h in ((D1, 22), (D2, 1))
        for i in range(5)
    ]  # fmt: skip
    root = tmp_path / "lake"
    bronze = events_to_bronze(events, writer_id="w-edge", ingested_at=datetime(2026, 2, 18, tzinfo=UTC))
    assert RiskEventsTable(root).append(bronze, app_id="w-edge", version=1)
    lake = Lake(str(root))
    DeltaTable(lake.uri(BRONZE_RISK_EVENTS)).delete(f"sequence = {missing}")
    return lake


@pytest.mark.parametrize(
    ("missing", "built_first", "built_alone"),
    [(5, D1, D2), (6, D2, D1)],
    ids=["lower neighbour on the day before", "upper neighbour on the day after"],
)
def test_a_hole_next_to_the_range_is_found_from_the_day_outside_it(
    tmp_path: Path, missing: int, built_first: date, built_alone: date
) -> None:
    lake = lake_with_a_hole(tmp_path, missing)
    first = build_silver_days(lake, built_first, built_first + ONE_DAY, run_id="first")
    assert first.gaps.is_empty()  # the day built first has no silver beside it yet: its side of the hole is unseen

    built = build_silver_days(lake, built_alone, built_alone + ONE_DAY, run_id="alone")
    gap = next(r for r in built.check_results() if r.check_name == NO_SEQUENCE_GAPS)
    assert not gap.passed
    assert gap.metadata["gaps"].value == [f"w-edge: {missing}..{missing}"]
    assert gap.metadata["missing_events"].value == 1

    both = build_silver_days(lake, D1, D2 + ONE_DAY, run_id="both")  # and inside a range, as before
    assert both.gaps.rows() == [("w-edge", missing, missing)]
