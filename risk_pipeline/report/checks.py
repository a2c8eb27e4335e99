"""Which asset checks failed over the report's period, asked of the Dagster instance that ran them.

Check results live in the instance's event log, not in the lake: the lake records rows, the instance
records verdicts. So the dashboard asks the instance when one is at hand (the asset always has one; the
CLI has one when ``$DAGSTER_HOME`` is set) and otherwise says plainly that it could not know.

A check is counted as failed for the period when its *latest* evaluation in a run covering any of the
period's days failed: a day that failed and was rebuilt cleanly since is no longer a failure, which is
what an analyst reading the page wants to know.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any, Final

import dagster as dg

from risk_pipeline.defs.gold.assets import GOLD_TABLES
from risk_pipeline.defs.ordering import PARTITION_TAG, RANGE_END_TAG, RANGE_START_TAG
from risk_pipeline.defs.silver.checks import CHECK_SPECS as SILVER_CHECK_SPECS
from risk_pipeline.report.data import FailedCheck, Period

HISTORY: Final = 200
"""Evaluations looked at per check, newest first: weeks of daily runs."""

_NOT_RUN_THROUGH: Final = "EXECUTION_FAILED"
"""The status of an evaluation whose step failed before the check produced a result: a failure too."""


def pipeline_check_keys() -> list[dg.AssetCheckKey]:
    """Every check the pipeline evaluates: silver's and each gold table's."""
    specs = [*SILVER_CHECK_SPECS, *(spec for table in GOLD_TABLES for spec in table.check_specs)]
    return [spec.key for spec in specs]


def failed_checks(
    instance: dg.DagsterInstance, period: Period, keys: Iterable[dg.AssetCheckKey] | None = None
) -> list[FailedCheck]:
    """The checks whose latest evaluation over the period's days failed, in asset and check order."""
    runs: dict[str, tuple[date, date] | None] = {}
    failed: list[FailedCheck] = []
    for key in keys if keys is not None else pipeline_check_keys():
        for record in instance.event_log_storage.get_asset_check_execution_history(key, limit=HISTORY):
            outcome = _verdict(record)
            days = _record_days(instance, record.run_id, record.partition, runs) if outcome else None
            if outcome is None or days is None or days[1] < period.first or days[0] > period.last:
                continue
            passed, severity, description = outcome
            if not passed:
                label = days[0].isoformat() if days[0] == days[1] else f"{days[0]} .. {days[1]}"
                asset = key.asset_key.to_user_string()
                failed.append(FailedCheck(asset, key.name, severity, label, record.run_id, description))
            break  # the newest evaluation over the period decides
    return sorted(failed, key=lambda f: (f.asset, f.check))


def _verdict(record: Any) -> tuple[bool, str, str] | None:
    """``(passed, severity, description)`` of one execution record, ``None`` while it has no verdict yet."""
    if record.status.value == _NOT_RUN_THROUGH:
        return False, "ERROR", "its step failed before the check gave a verdict"
    evaluation = record.evaluation if record.event is not None else None
    if not isinstance(evaluation, dg.AssetCheckEvaluation):
        return None  # planned, or still running
    severity = evaluation.severity.value if evaluation.severity is not None else "ERROR"
    return evaluation.passed, severity, evaluation.description or ""


def _record_days(
    instance: dg.DagsterInstance, run_id: str, partition: str | None, cache: dict[str, tuple[date, date] | None]
) -> tuple[date, date] | None:
    """The days an evaluation covered: its partition, else its run's partition or range tags."""
    if partition:
        day = date.fromisoformat(partition)
        return day, day
    if run_id not in cache:
        run = instance.get_run_by_id(run_id)
        tags = run.tags if run is not None else {}
        if PARTITION_TAG in tags:
            day = date.fromisoformat(tags[PARTITION_TAG])
            cache[run_id] = (day, day)
        elif RANGE_START_TAG in tags and RANGE_END_TAG in tags:
            cache[run_id] = (date.fromisoformat(tags[RANGE_START_TAG]), date.fromisoformat(tags[RANGE_END_TAG]))
        else:
            cache[run_id] = None
    return cache[run_id]
