"""The one partitioning of the lake: a UTC calendar day of ``event_date``.

Every table is partitioned by the UTC day of its events, so one Dagster partition is one Delta
partition and re-running a day replaces exactly that day. ``end_offset=1`` makes *today's*
partition exist: trading processes write today's events all day and the bronze sensor must be
able to refresh today's silver, not only yesterday's.
"""

from __future__ import annotations

import os
from datetime import date
from typing import Final

import dagster as dg

PARTITIONS_START_ENV: Final = "RISK_PARTITIONS_START"
DEFAULT_PARTITIONS_START: Final = "2026-01-01"


def partitions_start() -> str:
    """The first day of the lake: ``$RISK_PARTITIONS_START`` (``YYYY-MM-DD``), else 2026-01-01.

    Configurable so a deployment with older history (or a test lake) can extend the range without a
    code change; days before it are never requested. Set it near the lake's first day: the UI's partition
    bars count every day from it, so a start months before the data reads "0% filled". Read when the
    code location loads (``risk-lake demo`` sets it to its first simulated day when unset). A value that
    is not an ISO day is refused with the variable's name, not deep inside Dagster.
    """
    value = os.environ.get(PARTITIONS_START_ENV) or DEFAULT_PARTITIONS_START
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        message = f"${PARTITIONS_START_ENV} must be a day as YYYY-MM-DD, e.g. 2026-03-02; got {value!r}"
        raise ValueError(message) from None


daily_partitions: Final = dg.DailyPartitionsDefinition(
    start_date=partitions_start(),
    timezone="UTC",
    end_offset=1,
)
