"""Failed checks on the page come from the Dagster instance: the newest verdict over the period's days wins."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from risk_pipeline.defs.ordering import PARTITION_TAG
from risk_pipeline.report.checks import failed_checks
from risk_pipeline.report.data import Period

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
KEY = dg.AssetCheckKey(dg.AssetKey(["probe"]), "probe_holds")
DAY = date(2026, 3, 3)


def run_probe(instance: dg.DagsterInstance, day: date, *, passes: bool) -> None:
    """One real run of an asset whose check passes or fails, tagged with ``day`` as the pipeline's runs are."""

    @dg.asset(key=KEY.asset_key, check_specs=[dg.AssetCheckSpec(KEY.name, asset=KEY.asset_key)])
    def probe() -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        yield dg.MaterializeResult()
        yield dg.AssetCheckResult(check_name=KEY.name, passed=passes, description="the probe's verdict")

    result = dg.materialize([probe], instance=instance, tags={PARTITION_TAG: day.isoformat()}, run_config=QUIET)
    assert result.success


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test(temp_dir=str(tmp_path)) as the_instance:
        yield the_instance


def test_a_failure_counts_until_a_later_run_passes(instance: dg.DagsterInstance) -> None:
    period = Period(DAY, DAY)
    assert failed_checks(instance, period, [KEY]) == []  # never evaluated: nothing to report

    run_probe(instance, DAY, passes=False)
    (failure,) = failed_checks(instance, period, [KEY])
    assert (failure.asset, failure.check, failure.severity, failure.days) == (
        "probe",
        "probe_holds",
        "ERROR",
        "2026-03-03",
    )
    assert failure.description == "the probe's verdict"

    run_probe(instance, date(2026, 3, 9), passes=True)  # another day's verdict says nothing about this one
    assert len(failed_checks(instance, period, [KEY])) == 1
    assert failed_checks(instance, Period(date(2026, 3, 9), date(2026, 3, 9)), [KEY]) == []

    run_probe(instance, DAY, passes=True)  # the day rebuilt cleanly
    assert failed_checks(instance, period, [KEY]) == []
