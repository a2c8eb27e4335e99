"""Building silver for a range of UTC days: one day at a time, checked as it is written.

The silver asset and the pipeline benchmark both run this, so what is measured is what runs. Each
day is read from bronze, validated, replaced in silver and quarantine, and checked before the next
one is read: memory stays at about one day's worth however long the range, and an interrupted
range is repaired by running it again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Final

import dagster as dg
import polars as pl

from risk_pipeline.defs.constants import BRONZE_RISK_EVENTS
from risk_pipeline.defs.silver.checks import (
    accounting_check,
    duplicate_check,
    duplicate_ids,
    quarantine_rate_check,
    sequence_gap_check,
    sequence_gaps,
)
from risk_pipeline.defs.silver.transform import build_silver, write_silver_days
from risk_pipeline.lake import Lake
from risk_runtime.events import BRONZE_SCHEMA

_DAY: Final = timedelta(days=1)
COUNT_KEYS: Final = ("bronze_rows", "silver_rows", "quarantine_rows", "duplicates_removed")

Stage = Callable[[str], AbstractContextManager[object]]
"""Wraps each step (``stage("silver: validate")``); the benchmark times them, the asset does not."""


def _untimed(_: str) -> AbstractContextManager[object]:
    return contextlib.nullcontext()


@dataclass
class SilverDays:
    """What a range build wrote, per day, and what its checks need."""

    per_day: dict[str, dict[str, int]] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)
    duplicated: list[str] = field(default_factory=list)
    gaps: list[pl.DataFrame] = field(default_factory=list)

    @property
    def totals(self) -> dict[str, int]:
        return {k: sum(c[k] for c in self.per_day.values()) for k in COUNT_KEYS}

    def check_results(self) -> list[dg.AssetCheckResult]:
        return [
            duplicate_check(self.duplicated),
            accounting_check(self.per_day),
            quarantine_rate_check(self.per_day),
            sequence_gap_check(pl.concat(self.gaps)),
        ]


def build_silver_days(
    lake: Lake,
    start: date,
    end: date,
    *,
    run_id: str,
    stage: Stage = _untimed,
    log: Callable[[str], object] | None = None,
) -> SilverDays:
    """Silver and quarantine for every day in ``[start, end)``, in order, each day checked as written."""
    built = SilverDays()
    day = start
    while day < end:
        with stage("silver: read bronze day"):
            bronze = lake.read_days(BRONZE_RISK_EVENTS, day, day + _DAY, schema=BRONZE_SCHEMA)
        with stage("silver: build_silver (upcast, dedup, validate, route)"):
            silver = build_silver(bronze, run_id=run_id, partition=day.isoformat())
        with stage("silver: write silver + quarantine"):
            counts = write_silver_days(lake, silver, day, day + _DAY, run_id=run_id)
        for reason, n in counts.pop("reason_counts").items():
            built.reasons[reason] = built.reasons.get(reason, 0) + n
        built.per_day[day.isoformat()] = counts
        with stage("silver: asset checks"):
            built.duplicated += duplicate_ids(lake, day, day + _DAY)
            built.gaps.append(sequence_gaps(lake, day, day + _DAY))
        if log is not None:
            log(f"silver {day}: {counts}")
        del bronze, silver
        day += _DAY
    return built
