"""A small lake whose gold depends on the order days are built in, for the ordering tests.

Three consecutive days of bronze, shipped the way the runtime's shipper commits (``risk_event_dates``
commit metadata): a circuit breaker and a trailing stop whose state crosses both midnights, so gold of
a later day is only right when it was built after the day before it. :func:`late_batch` lands two
events in the first day afterwards; they change the state every later day starts from.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Final

import polars as pl

from risk_pipeline.defs.constants import BRONZE_RISK_EVENTS
from risk_pipeline.defs.gold.circuit_breaker_transitions import CIRCUIT_BREAKER_TRANSITIONS
from risk_pipeline.defs.gold.limit_rejection_stats import LIMIT_REJECTION_STATS
from risk_pipeline.defs.gold.trailing_stop_outcomes import TRAILING_STOP_OUTCOMES
from risk_pipeline.defs.partitions import daily_partitions
from risk_pipeline.lake import Lake, TableRef
from risk_runtime.contract import COMMIT_EVENT_DATES
from risk_runtime.encoding import events_to_bronze
from risk_runtime.events import RiskEvent, RiskEventType
from risk_runtime.table import RiskEventsTable

REPO: Final = Path(__file__).resolve().parents[2]
D0: Final = daily_partitions.start.date() + timedelta(days=40)
D1: Final = D0 + timedelta(days=1)
D2: Final = D0 + timedelta(days=2)
DAYS: Final = (D0, D1, D2)
GOLD: Final[tuple[TableRef, ...]] = (CIRCUIT_BREAKER_TRANSITIONS, TRAILING_STOP_OUTCOMES, LIMIT_REJECTION_STATS)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def event_id(kind: RiskEventType, when: datetime) -> str:
    """The same id for the same event in every lake, so lakes built apart compare row for row."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{kind}/{when.isoformat()}"))


def _breaker(day: date, hour: int, old: str, new: str) -> RiskEvent:
    kind, when = RiskEventType.CB_STATE_CHANGE, at(day, hour)
    return RiskEvent(
        kind, timestamp=when, event_id=event_id(kind, when), source="cb-orders", old_state=old, new_state=new,
        failure_count=3,
    )  # fmt: skip


def _stop(kind: RiskEventType, day: date, hour: int, current: float, highest: float, stop: float) -> RiskEvent:
    when = at(day, hour)
    return RiskEvent(
        kind, timestamp=when, event_id=event_id(kind, when), execution_id="stop-x", symbol="SPY", entry_premium=2.0,
        current_premium=current, highest_premium=highest, stop_premium=stop,
    )  # fmt: skip


def day_events(day: date) -> list[RiskEvent]:
    """Each day: a breaker transition continuing from the day before, and the stop's next step."""
    if day == D0:
        return [
            _breaker(D0, 10, "CLOSED", "OPEN"),
            _stop(RiskEventType.TS_ADD, D0, 11, 2.0, 2.0, 1.8),
        ]
    if day == D1:
        return [
            _breaker(D1, 9, "OPEN", "HALF_OPEN"),
            _stop(RiskEventType.TS_UPDATE, D1, 11, 2.5, 2.5, 2.25),
        ]
    return [
        _breaker(D2, 9, "HALF_OPEN", "CLOSED"),
        _stop(RiskEventType.TS_REMOVE, D2, 11, 2.4, 2.5, 2.25),
    ]


def late_events() -> list[RiskEvent]:
    """Late for D0: the breaker half-opened and re-opened in the evening, so D1 starts from a later open."""
    return [_breaker(D0, 20, "OPEN", "HALF_OPEN"), _breaker(D0, 21, "HALF_OPEN", "OPEN")]


def ship(root: Path, events: list[RiskEvent], *, writer: str, batch: int, first_sequence: int = 1) -> int:
    """Commit ``events`` as the shipper does; returns bronze's new version."""
    table = RiskEventsTable(root)
    rows = events_to_bronze(events, writer_id=writer, first_sequence=first_sequence)
    days = ",".join(sorted({e.timestamp.date().isoformat() for e in events}))
    assert table.append(rows, app_id=writer, version=batch, metadata={COMMIT_EVENT_DATES: days})
    return Lake(str(root)).table(BRONZE_RISK_EVENTS).version()


def bronze(root: Path) -> int:
    """The three days, one shipper commit each, numbered on as one writer; returns the last version."""
    version, sequence = -1, 1
    for batch, day in enumerate(DAYS, start=1):
        events = day_events(day)
        version = ship(root, events, writer="desk-1", batch=batch, first_sequence=sequence)
        sequence += len(events)
    return version


def late_batch(root: Path) -> int:
    return ship(root, late_events(), writer="desk-late", batch=1)


def gold_tables(lake: Lake) -> dict[str, list[dict[str, object]]]:
    """Every gold table's rows in a canonical order, comparable across lakes."""
    tables = {}
    for ref in GOLD:
        frame = lake.read_all(ref) if lake.exists(ref) else pl.DataFrame()
        frame = frame.select(sorted(frame.columns))
        keys = [name for name, dtype in frame.schema.items() if not isinstance(dtype, pl.List)]
        tables[str(ref)] = frame.sort(keys, nulls_last=True).to_dicts()
    return tables


def risk_lake(*args: str) -> list[str]:
    """The ``risk-lake`` command line as a subprocess argv."""
    return [sys.executable, "-m", "risk_pipeline.cli", *args]


def cli_env(dagster_home: Path | None, **extra: str) -> dict[str, str]:
    """This environment with ``DAGSTER_HOME`` as given (unset: an ephemeral instance) and ``extra``."""
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    if dagster_home is not None:
        env["DAGSTER_HOME"] = str(dagster_home)
    return {**env, **extra}


def run_cli(*args: str, dagster_home: Path | None = None, **extra: str) -> subprocess.CompletedProcess[str]:
    """``risk-lake *args`` in a subprocess, to its exit code and output."""
    return subprocess.run(
        risk_lake(*args), cwd=REPO, env=cli_env(dagster_home, **extra), capture_output=True, text=True,
        timeout=240, check=False,
    )  # fmt: skip
