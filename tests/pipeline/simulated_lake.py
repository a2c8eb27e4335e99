"""One simulated lake, built once per test session the way an operator builds one.

``risk-lake simulate`` (the real logger, spool and shipper) for three days, then ``risk-lake materialize``
(one Dagster run per day, recorded in a real SQLite instance): what the UI and the analyst's CLI read.
The days sit well inside the partitions (``$RISK_PARTITIONS_START`` + 60) and in the past.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Final

import dagster as dg
import pytest
from ordering_lake import REPO, run_cli

from risk_pipeline.defs.partitions import daily_partitions

FIRST_DAY: Final = daily_partitions.start.date() + timedelta(days=60)
DAYS: Final = 3
EVENTS: Final = 4_000


@dataclass(frozen=True)
class SimulatedLake:
    root: Path
    dagster_home: Path
    spool: Path
    first_day: date = FIRST_DAY
    days: int = DAYS

    @property
    def last_day(self) -> date:
        return self.first_day + timedelta(days=self.days - 1)

    def cli(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """``risk-lake --lake <root> *args`` in a subprocess, against this lake's instance."""
        spool = str(self.spool)
        return run_cli("--lake", str(self.root), *args, dagster_home=self.dagster_home, RISK_SPOOL_DIR=spool, **env)

    @contextmanager
    def instance(self) -> Iterator[dg.DagsterInstance]:
        """The lake's Dagster instance (its storage is located by ``$DAGSTER_HOME``, set while it is open)."""
        before = os.environ.get("DAGSTER_HOME")
        os.environ["DAGSTER_HOME"] = str(self.dagster_home)
        try:
            with dg.DagsterInstance.from_config(str(self.dagster_home)) as instance:
                yield instance
        finally:
            if before is None:
                del os.environ["DAGSTER_HOME"]
            else:
                os.environ["DAGSTER_HOME"] = before


_BUILT: dict[str, SimulatedLake] = {}


def simulated_lake(factory: pytest.TempPathFactory) -> SimulatedLake:
    """The session's simulated, materialised lake (built on first use)."""
    if "lake" not in _BUILT:
        base = factory.mktemp("simulated")
        home = base / "dagster_home"
        home.mkdir()
        shutil.copy(REPO / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
        lake = SimulatedLake(base / "lake", home, base / "spool")
        simulated = lake.cli(
            "simulate", "--days", str(DAYS), "--events", str(EVENTS), "--start", FIRST_DAY.isoformat(), "--seed", "11"
        )
        assert simulated.returncode == 0, simulated.stdout + simulated.stderr
        built = lake.cli("materialize")
        assert built.returncode == 0, built.stdout + built.stderr
        _BUILT["lake"] = lake
    return _BUILT["lake"]
