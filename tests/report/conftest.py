"""The session's three-day lake for the dashboard's tests (:mod:`report_lake` says what it holds)."""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg
import pytest
from report_lake import BuiltLake, build_lake


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuiltLake]:
    home = tmp_path_factory.mktemp("dagster_home")
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        yield build_lake(tmp_path_factory.mktemp("report_lake") / "lake", instance)
