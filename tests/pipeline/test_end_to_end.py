"""The whole lake, end to end: trading code -> logger -> bronze -> Dagster runs -> silver -> gold -> readers.

Every test drives the real code location's assets through real in-process Dagster runs against real Delta
tables in ``tmp_path``; nothing is mocked. Runs are few and shared (a run costs seconds), so each test
asserts as much as it can about the lake it built.

* the scripted scenario through a real ``RiskEventLogger``: gold equals figures worked out by hand;
* a day of retried batches and malformed rows: every bad row quarantined with its reason, copies gone;
* re-running a day and a range rewrites those days to the same content and leaves the others alone;
* gold tables read back with DuckDB's delta extension (and pandas, when installed).
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import dagster as dg
import duckdb
import polars as pl
import pyarrow as pa
import pytest
from dagster_runs import append_bronze, check_metadata, check_results, materialize

from risk_pipeline.defs.gold.circuit_breaker_transitions import CIRCUIT_BREAKER_STATE, CIRCUIT_BREAKER_TRANSITIONS
from risk_pipeline.defs.gold.limit_rejection_stats import LIMIT_REJECTION_STATS
from risk_pipeline.defs.gold.trailing_stop_outcomes import TRAILING_STOP_OUTCOMES, TRAILING_STOP_STATE
from risk_pipeline.defs.silver.checks import QUARANTINE_RATE_ENV
from risk_pipeline.defs.silver.schema import QUARANTINE, SILVER
from risk_pipeline.lake import Lake, TableRef, conform
from risk_runtime import RiskEvent, RiskEventLogger
from risk_runtime.encoding import events_to_bronze
from risk_runtime.events import BRONZE_SCHEMA, RiskEventType
from risk_runtime.simulation import SCENARIO_START, scripted_scenario

T = RiskEventType

"""Silver and the three gold tables, with bronze as the external source they depend on."""

BRONZE: Final = TableRef("bronze", "risk_events")
ALL_TABLES: Final = (
    BRONZE,
    SILVER,
    QUARANTINE,
    CIRCUIT_BREAKER_TRANSITIONS,
    CIRCUIT_BREAKER_STATE,
    TRAILING_STOP_OUTCOMES,
    TRAILING_STOP_STATE,
    LIMIT_REJECTION_STATS,
)
GOLD_TABLES: Final = (CIRCUIT_BREAKER_TRANSITIONS, TRAILING_STOP_OUTCOMES, LIMIT_REJECTION_STATS)
RUN_COLUMNS: Final = ("run_id", "quarantined_at")
"""Quarantine columns that name the run that wrote a row: they change, by design, when a day is re-run."""


# ----------------------------------------------------------------------------------------------- helpers
def utc(day: date, hh: int = 0, mm: int = 0, ss: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, ss, tzinfo=UTC)


def day_rows(lake: Lake, ref: TableRef, day: date, *, drop: Sequence[str] = ()) -> pl.DataFrame:
    """One day of a table in a canonical order (list columns ride along, they are not sort keys)."""
    frame = lake.read_all(ref)
    if frame.is_empty():
        return frame
    frame = frame.filter(pl.col("event_date") == day).drop([c for c in drop if c in frame.columns])
    keys = [name for name, dtype in frame.schema.items() if not isinstance(dtype, pl.List)]
    return frame.sort(keys, nulls_last=True)


def snapshot(lake: Lake, days: Sequence[date], *, drop: Sequence[str] = ()) -> dict[tuple[str, date], pl.DataFrame]:
    return {(str(ref), day): day_rows(lake, ref, day, drop=drop) for ref in ALL_TABLES for day in days}


def assert_row(actual: dict[str, Any], expected: dict[str, Any], what: object) -> None:
    """Floats to within rounding (they are computed in floating point), everything else exactly."""
    assert set(actual) == set(expected), what
    floats = {k for k, v in expected.items() if isinstance(v, float)}
    assert {k: actual[k] for k in floats} == pytest.approx({k: expected[k] for k in floats}), what
    assert {k: v for k, v in actual.items() if k not in floats} == {
        k: v for k, v in expected.items() if k not in floats
    }, what


def assert_same(before: pl.DataFrame, after: pl.DataFrame, what: str) -> None:
    assert before.height == after.height and before.equals(after), f"{what} changed:\n{before}\n{after}"


# ------------------------------------------------------------------------ 1. the scripted scenario, by hand
D: Final = SCENARIO_START.date()  # 2026-03-02
D1: Final = D + timedelta(days=1)


@dataclass(frozen=True)
class ScenarioLake:
    root: Path
    lake: Lake
    writer_id: str
    runs: list[dg.ExecuteInProcessResult]


@pytest.fixture(scope="module")
def scenario_lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScenarioLake]:
    """The scripted session logged through a real logger and its shipper, then one run per day, in order."""
    tmp = tmp_path_factory.mktemp("scenario")
    root = tmp / "lake"
    logger = RiskEventLogger(root, spool_dir=tmp / "spool", handle_signals=False).start()
    scripted_scenario(logger, start=SCENARIO_START)
    assert logger.close(timeout=120), "the logger did not land every event in bronze"
    stats = logger.stats()
    assert (stats.accepted, stats.committed, stats.dropped) == (23, 23, 0)
    runs = [materialize(root, [day]) for day in (D, D1)]
    yield ScenarioLake(root, Lake(str(root)), logger.writer_id, runs)


EXPECTED_TRANSITIONS: Final = [
    # source, timestamp, old -> new, failure_count, prev_new_state, seconds_in_old_state, is_valid, day
    ("orders", utc(D, 23, 56), "CLOSED", "OPEN", 3, None, None, True, D),
    ("orders", utc(D1, 0, 6, 40), "OPEN", "HALF_OPEN", 3, "OPEN", 640.0, True, D1),  # 23:56:00 -> 00:06:40
    ("orders", utc(D1, 0, 7), "HALF_OPEN", "CLOSED", 0, "HALF_OPEN", 20.0, True, D1),  # 00:06:40 -> 00:07:00
]
_TRANSITION_COLUMNS: Final = (
    "source",
    "timestamp",
    "old_state",
    "new_state",
    "failure_count",
    "prev_new_state",
    "seconds_in_old_state",
    "is_valid",
    "event_date",
)

EXPECTED_OUTCOMES: Final = [
    {
        "execution_id": "E1",
        "symbol": "SPY",
        "underlying": "SPY",
        "option_right": "C",
        "strike": 520.0,
        "expiry": D + timedelta(days=18),
        "entry_option_delta": 0.5,
        "outcome": "triggered",
        "entry_premium": 5.00,
        "added_at": utc(D, 23, 30),
        "activated_at": utc(D, 23, 35),
        "highest_premium": 5.60,
        "stop_premium": 5.516,  # 5.60 * 0.985
        "exit_premium": 5.50,
        "triggered_at": utc(D1, 0, 20),
        "removed_at": None,
        "profit_locked": 0.516,  # 5.516 - 5.00
        "realized_pnl": 0.50,  # 5.50 - 5.00
        "giveback": 0.10,  # 5.60 - 5.50
        "n_updates": 2,  # 23:40 and 00:15
        "n_events": 5,  # add, activate, two ratchets, trigger
        "duration_seconds": 3000.0,  # D 23:30:00 -> D+1 00:20:00
        "last_event_date": D1,
        "event_date": D,  # the day it was added
    },
    {
        "execution_id": "E2",
        "symbol": "QQQ",
        "underlying": "QQQ",
        "option_right": "C",
        "strike": 440.0,
        "expiry": D + timedelta(days=18),
        "entry_option_delta": 0.4,
        "outcome": "removed",
        "entry_premium": 3.00,
        "added_at": utc(D, 23, 31),
        "activated_at": None,  # 3.03 never reached the 3.06 activation
        "highest_premium": 3.03,
        "stop_premium": None,
        "exit_premium": None,
        "triggered_at": None,
        "removed_at": utc(D1, 0, 10),
        "profit_locked": None,
        "realized_pnl": None,
        "giveback": None,
        "n_updates": 0,
        "n_events": 2,  # add, remove
        "duration_seconds": 2340.0,  # D 23:31:00 -> D+1 00:10:00
        "last_event_date": D1,
        "event_date": D,
    },
]

EXPECTED_LIMIT_STATS: Final = [
    # Day D: checks_total = 2 checks + 2 rejections = 4.
    {
        "event_date": D,
        "limit_type": "open_positions",
        "rejection_count": 1,  # E4: 3 / 2
        "avg_current_value": 3.0,
        "avg_limit_value": 2.0,
        "warning_count": 1,  # 23:50, 2 / 2
        "max_utilization": 1.5,  # max(3 / 2, 2 / 2)
        "checks_total": 4,
        "rejection_rate": 0.25,
    },
    {
        "event_date": D,
        "limit_type": "symbol_delta",
        "rejection_count": 1,  # E3: 3.4 / 3
        "avg_current_value": 3.4,
        "avg_limit_value": 3.0,
        "warning_count": 0,
        "max_utilization": 3.4 / 3.0,
        "checks_total": 4,
        "rejection_rate": 0.25,
    },
    # Day D+1: checks_total = 1 check (E7) + 2 rejections = 3.
    {
        "event_date": D1,
        "limit_type": "open_positions",
        "rejection_count": 1,  # E5: 3 / 2
        "avg_current_value": 3.0,
        "avg_limit_value": 2.0,
        "warning_count": 0,
        "max_utilization": 1.5,
        "checks_total": 3,
        "rejection_rate": 1 / 3,
    },
    {
        "event_date": D1,
        "limit_type": "symbol_delta",
        "rejection_count": 1,  # E6: 4 / 3
        "avg_current_value": 4.0,
        "avg_limit_value": 3.0,
        "warning_count": 0,
        "max_utilization": 4.0 / 3.0,
        "checks_total": 3,
        "rejection_rate": 1 / 3,
    },
]

ALL_CHECKS: Final = {
    "no_duplicate_event_ids",
    "bronze_rows_accounted_for",
    "quarantine_rate_below_threshold",
    "no_sequence_gaps",
    "every_transition_valid",
    "transitions_reconcile_with_silver",
    "triggered_stop_at_or_below_highest",
    "triggers_reconcile_with_silver",
    "one_row_per_stop_lifetime",
    "rejections_reconcile_with_silver",
}


def test_scripted_scenario_through_logger_and_dagster_gives_hand_computed_gold(scenario_lake: ScenarioLake) -> None:
    lake = scenario_lake.lake
    for day, run in zip((D, D1), scenario_lake.runs, strict=True):
        assert run.success, day
        assert check_results(run) == dict.fromkeys(ALL_CHECKS, True), day

    # Silver: 13 events on D, 10 on D+1 (the docstring's totals), nothing quarantined, one gapless writer.
    silver = lake.read_all(SILVER)
    assert silver.group_by("event_date").len().sort("event_date").rows() == [(D, 13), (D1, 10)]
    assert lake.read_all(QUARANTINE).is_empty()
    assert silver["writer_id"].unique().to_list() == [scenario_lake.writer_id]
    assert sorted(silver["sequence"].to_list()) == list(range(1, 24))

    transitions = lake.read_all(CIRCUIT_BREAKER_TRANSITIONS).sort("timestamp")
    assert transitions.select(_TRANSITION_COLUMNS).rows() == EXPECTED_TRANSITIONS
    state_changes = silver.filter(pl.col("event_type") == T.CB_STATE_CHANGE.value)
    assert sorted(transitions["event_id"].to_list()) == sorted(state_changes["event_id"].to_list())

    outcomes = lake.read_all(TRAILING_STOP_OUTCOMES).sort("execution_id").to_dicts()
    assert len(outcomes) == len(EXPECTED_OUTCOMES)
    adds = silver.filter(pl.col("event_type") == T.TS_ADD.value)
    for row, expected in zip(outcomes, EXPECTED_OUTCOMES, strict=True):
        (add_id,) = adds.filter(pl.col("execution_id") == row["execution_id"]).get_column("event_id").to_list()
        assert row.pop("lifetime_id") == add_id  # each lifetime is keyed by the event that began it
        assert_row(row, expected, row["execution_id"])

    stats = lake.read_all(LIMIT_REJECTION_STATS).sort("event_date", "limit_type")
    assert stats.height == len(EXPECTED_LIMIT_STATS)
    for row, expected in zip(stats.to_dicts(), EXPECTED_LIMIT_STATS, strict=True):
        assert_row(row, expected, (row["event_date"], row["limit_type"]))


# ---------------------------------------------------------------------------- 4. readers outside the pipeline
def delta_extension_path() -> Path:
    package = importlib.resources.files("duckdb_extension_delta")
    path = Path(str(package / "extensions" / f"v{duckdb.__version__}" / "delta.duckdb_extension"))
    assert path.is_file(), f"no delta extension for duckdb {duckdb.__version__} at {path}"
    return path


def test_gold_tables_read_with_duckdb_delta_extension(scenario_lake: ScenarioLake) -> None:
    lake = scenario_lake.lake
    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    try:
        con.load_extension(str(delta_extension_path()))
        for ref in GOLD_TABLES:
            uri = lake.uri(ref)
            expected = pl.read_delta(uri).height
            (count,) = con.execute(f"SELECT count(*) FROM delta_scan('{uri}')").fetchone() or (None,)
            assert count == expected > 0, ref
        # Not just the count: DuckDB sees the same figures, partition column included.
        rows = con.execute(
            f"SELECT event_date, limit_type, rejection_count, checks_total FROM delta_scan("
            f"'{lake.uri(LIMIT_REJECTION_STATS)}') ORDER BY event_date, limit_type"
        ).fetchall()
    finally:
        con.close()
    assert rows == [
        (s["event_date"], s["limit_type"], s["rejection_count"], s["checks_total"]) for s in EXPECTED_LIMIT_STATS
    ]


@pytest.mark.skipif(importlib.util.find_spec("pandas") is None, reason="pandas is not installed")
def test_gold_tables_read_with_pandas(scenario_lake: ScenarioLake) -> None:
    from deltalake import DeltaTable

    for ref in GOLD_TABLES:
        uri = scenario_lake.lake.uri(ref)
        assert len(DeltaTable(uri).to_pandas()) == pl.read_delta(uri).height > 0, ref


# --------------------------------------------------------------- 2. retried batches and malformed rows, one run
DAY2: Final = date(2026, 2, 24)
_UUIDS: Final = [f"3f1c2a4e-8b7d-4c3e-9a1b-2c3d4e5f6a{i:02x}" for i in range(8)]


def good_events() -> list[RiskEvent]:
    return [
        RiskEvent(T.PL_CHECK, timestamp=utc(DAY2, 9), limit_type="open_positions", current_value=1.0,
                  limit_value=2.0, allowed=True, execution_id="G1"),
        RiskEvent(T.PL_REJECTION, timestamp=utc(DAY2, 9, 1), limit_type="symbol_delta", current_value=4.0,
                  limit_value=3.0, allowed=False, rejection_reason="symbol delta", execution_id="G2"),
        RiskEvent(T.CB_FAILURE, timestamp=utc(DAY2, 9, 2), source="orders", failure_count=1),
        RiskEvent(T.CB_STATE_CHANGE, timestamp=utc(DAY2, 9, 3), source="orders", old_state="CLOSED",
                  new_state="OPEN", failure_count=1),
        RiskEvent(T.TS_ADD, timestamp=utc(DAY2, 9, 4), execution_id="G3", symbol="SPY", entry_premium=2.0,
                  action="ADD"),
        RiskEvent(T.TS_REMOVE, timestamp=utc(DAY2, 9, 5), execution_id="G3", symbol="SPY", entry_premium=2.0,
                  current_premium=1.9, action="REMOVE"),
    ]  # fmt: skip


def malformed_events(reused_id: str) -> list[tuple[object, str]]:
    """Events a trading process could log, each wrong in one way, with the reason silver must give."""
    at = utc(DAY2, 10)
    rejection = {"limit_type": "symbol_delta", "current_value": 4.0, "limit_value": 3.0, "allowed": False}
    return [
        (RiskEvent(T.TS_ADD, timestamp=at, execution_id="x1", entry_premium="abc"),  # type: ignore[arg-type]
         "entry_premium: expected a number, got str 'abc'"),
        (RiskEvent(T.TS_ADD, timestamp=at, execution_id="x2", entry_premium=math.nan),
         "entry_premium: finite and > 0"),
        (RiskEvent(T.CB_FAILURE, timestamp=at, source="o", failure_count=1.5),  # type: ignore[arg-type]
         "failure_count: expected an integer, got float 1.5"),
        (RiskEvent(T.CB_FAILURE, timestamp=datetime(2026, 2, 24, 10), source="o", failure_count=1),
         "timestamp: expected a time-zone-aware datetime"),
        (RiskEvent("bogus_event", timestamp=at), "event_type: a known RiskEventType"),
        (RiskEvent(T.CB_STATE_CHANGE, timestamp=at, source="o", old_state="OPEN", new_state="OPEN",
                   failure_count=1), "old_state != new_state"),
        (RiskEvent(T.CB_STATE_CHANGE, timestamp=at, source="o", old_state="CLOSED", new_state="BROKEN",
                   failure_count=1), "new_state: in {CLOSED, HALF_OPEN, OPEN}"),
        (RiskEvent(T.CB_FAILURE, timestamp=at, source="o", failure_count=-1), "failure_count: >= 0"),
        (RiskEvent(T.PL_REJECTION, timestamp=at, **{**rejection, "allowed": True}, rejection_reason="r"),
         "allowed matches event_type"),
        (RiskEvent(T.PL_REJECTION, timestamp=at, **{**rejection, "limit_type": "concentration"},
                   rejection_reason="r"), "limit_type is a known limit"),
        (RiskEvent(T.PL_REJECTION, timestamp=at, **rejection),
         "rejection_reason required for portfolio_limit_rejection"),
        (RiskEvent(T.CB_FAILURE, timestamp=at, source="o", failure_count=1, metadata="[1, 2]"),
         "metadata: a JSON object"),
        (RiskEvent(T.TS_UPDATE, timestamp=at, execution_id="x3", entry_premium=1.0, highest_premium=5.0,
                   stop_premium=6.0), "stop_premium <= highest_premium"),
        (RiskEvent(T.CB_FAILURE, timestamp=at, source="o", failure_count=1, event_id="not-a-uuid"),
         "event_id: a UUID string"),
        (RiskEvent(T.CB_FAILURE, timestamp=at, source="o", failure_count=1, component="trailing_stop"),
         "component matches event_type"),
        (RiskEvent(T.TS_ADD, timestamp=at, execution_id="x4", entry_premium=1.0, action="TRIGGER"),
         "action matches event_type"),
        ({"not": "an event"}, "not a RiskEvent: dict"),
        (RiskEvent(T.CB_FAILURE, timestamp=at, source="o", failure_count=9, event_id=reused_id),
         "event_id: reused by a different event"),
    ]  # fmt: skip


def raw_rows(ingested_at: datetime) -> list[tuple[dict[str, Any], str]]:
    """Bronze rows no runtime writes, straight as Arrow rows, with the reason silver must give."""
    base = {
        "event_type": T.CB_SUCCESS.value,
        "component": "circuit_breaker",
        "timestamp": utc(DAY2, 11),
        "source": "orders",
        "schema_version": 1,
        "writer_id": "w-raw",
        "event_date": DAY2,
        "ingested_at": ingested_at,
    }
    return [
        ({**base, "event_id": None, "sequence": 1}, "event_id: not_nullable"),
        ({**base, "event_id": _UUIDS[1], "sequence": 2, "timestamp": utc(DAY2 - timedelta(days=1), 23)},
         "timestamp falls on event_date (UTC)"),
        ({**base, "event_id": _UUIDS[2], "sequence": 3, "schema_version": 99},
         "schema_version: a known version {1, 2}"),
        ({**base, "event_id": _UUIDS[3], "sequence": 0}, "sequence: >= 1"),
    ]  # fmt: skip


def test_retried_batch_and_malformed_rows_are_deduplicated_and_quarantined(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(QUARANTINE_RATE_ENV, "1.0")  # this day is mostly bad on purpose
    root = tmp_path / "lake"
    first_landing = utc(DAY2, 12)
    good = good_events()
    # A retried commit: the same batch landed twice, by two shippers (two app ids), a minute apart.
    append_bronze(root, events_to_bronze(good, writer_id="w-good", ingested_at=first_landing), "shipper-a")
    retried = events_to_bronze(good, writer_id="w-good", ingested_at=first_landing + timedelta(minutes=2))
    append_bronze(root, retried, "shipper-b")
    malformed = malformed_events(reused_id=good[2].event_id)
    bad = events_to_bronze(
        [e for e, _ in malformed], writer_id="w-bad", ingested_at=first_landing + timedelta(minutes=1)
    )
    append_bronze(root, bad, "w-bad")
    raw = raw_rows(first_landing)
    raw_table = conform(
        pa.Table.from_pylist([r for r, _ in raw], schema=BRONZE_SCHEMA.remove_metadata()), BRONZE_SCHEMA
    )
    append_bronze(root, raw_table, "w-raw")
    n_bad = len(malformed) + len(raw)
    assert len(malformed) >= 8 and len(raw) >= 2

    result = materialize(root, [DAY2])

    assert result.success
    checks = check_results(result)
    assert checks == {**dict.fromkeys(ALL_CHECKS, True)}, checks
    assert check_metadata(result, "bronze_rows_accounted_for") == {
        "bronze_rows": 2 * len(good) + n_bad,
        "silver_rows": len(good),
        "quarantine_rows": n_bad,
        "duplicates_removed": len(good),
        "days_broken": [],
    }

    lake = Lake(str(root))
    silver = lake.read_all(SILVER)
    assert sorted(silver["event_id"].to_list()) == sorted(e.event_id for e in good)  # one copy of each
    assert silver["ingested_at"].unique().to_list() == [first_landing]  # the first copy to land survives
    assert silver["writer_id"].unique().to_list() == ["w-good"]

    quarantine = lake.read_all(QUARANTINE)
    assert quarantine.height == n_bad
    assert set(quarantine["event_date"].to_list()) == {DAY2}
    reasons = {(r["writer_id"], r["sequence"]): " | ".join(r["reasons"]) for r in quarantine.to_dicts()}
    expected = {("w-bad", i): why for i, (_, why) in enumerate(malformed, start=1)}
    expected |= {("w-raw", row["sequence"]): why for row, why in raw}
    assert set(reasons) == set(expected)
    wrong = {key: (why, reasons[key]) for key, why in expected.items() if why not in reasons[key]}
    assert not wrong, wrong
    assert set(quarantine["run_id"].to_list()) == {result.run_id}

    # Gold saw the good events once: one rejection, one transition, one removed stop.
    stats = lake.read_all(LIMIT_REJECTION_STATS)
    assert stats.select("limit_type", "rejection_count", "checks_total").rows() == [("symbol_delta", 1, 2)]
    assert lake.read_all(CIRCUIT_BREAKER_TRANSITIONS).height == 1
    assert lake.read_all(TRAILING_STOP_OUTCOMES).select("execution_id", "outcome").rows() == [("G3", "removed")]


# ------------------------------------------------------------------ 3. re-running a day and a range, one run each
R: Final = [date(2026, 2, 9) + timedelta(days=i) for i in range(4)]


def four_days() -> list[object]:
    """Four days whose gold carries state across midnight (a breaker and stops living for days), in time order."""
    d1, d2, d3, d4 = R

    def cb(when: datetime, old: str, new: str, failures: int) -> RiskEvent:
        return RiskEvent(T.CB_STATE_CHANGE, timestamp=when, source="orders", old_state=old, new_state=new,
                         failure_count=failures)  # fmt: skip

    def ts(kind: RiskEventType, when: datetime, ex: str, **premiums: float) -> RiskEvent:
        return RiskEvent(kind, timestamp=when, execution_id=ex, symbol="SPY", entry_premium=10.0,
                         current_premium=premiums.get("current"), highest_premium=premiums.get("highest"),
                         stop_premium=premiums.get("stop"))  # fmt: skip

    def pl_event(kind: RiskEventType, when: datetime, limit_type: str, current: float, limit: float) -> RiskEvent:
        return RiskEvent(kind, timestamp=when, limit_type=limit_type, current_value=current, limit_value=limit,
                         allowed=kind == T.PL_CHECK,
                         rejection_reason="over the limit" if kind == T.PL_REJECTION else None)  # fmt: skip

    events: list[object] = [
        cb(utc(d1, 23), "CLOSED", "OPEN", 3),
        cb(utc(d2, 1), "OPEN", "HALF_OPEN", 3),
        cb(utc(d2, 1, 5), "HALF_OPEN", "CLOSED", 0),
        cb(utc(d3, 10), "CLOSED", "OPEN", 3),
        cb(utc(d4, 9), "OPEN", "CLOSED", 0),  # manual reset
        ts(T.TS_ADD, utc(d1, 10), "S1", current=10.0),
        ts(T.TS_ACTIVATE, utc(d1, 11), "S1", current=10.5, highest=10.5, stop=10.3),
        ts(T.TS_UPDATE, utc(d2, 12), "S1", current=11.0, highest=11.0, stop=10.8),
        ts(T.TS_UPDATE, utc(d3, 9), "S1", current=12.0, highest=12.0, stop=11.8),
        ts(T.TS_TRIGGER, utc(d3, 10), "S1", current=11.7, highest=12.0, stop=11.8),
        ts(T.TS_ADD, utc(d2, 10), "S2", current=10.0),
        ts(T.TS_REMOVE, utc(d4, 10), "S2", current=9.0),
        ts(T.TS_ADD, utc(d4, 11), "S3", current=10.0),
    ]
    for i, day in enumerate(R):
        events += [
            pl_event(T.PL_CHECK, utc(day, 8), "portfolio_delta", 1.0 + i, 10.0),
            pl_event(T.PL_REJECTION, utc(day, 8, 30), "portfolio_delta", 11.0 + i, 10.0),
            pl_event(T.PL_WARNING, utc(day, 8, 45), "symbol_delta", 2.5, 3.0),
            RiskEvent(T.CB_FAILURE, timestamp=utc(day, 12), source="data", failure_count=-i),  # bad from day 2 on
        ]
    # A logger numbers events in the order it accepts them, which is time order: a writer's sequence
    # crosses midnight once, which the no_sequence_gaps check relies on when it looks one day either side.
    return sorted(events, key=lambda e: e.timestamp)  # type: ignore[attr-defined]


def test_rerunning_a_day_and_a_range_leaves_other_days_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(QUARANTINE_RATE_ENV, "1.0")
    root = tmp_path / "lake"
    append_bronze(root, events_to_bronze(four_days(), writer_id="w", ingested_at=utc(R[-1], 23)), "w")
    first = materialize(root, R)  # all four days, one run
    assert first.success and all(check_results(first).values()), check_results(first)
    lake = Lake(str(root))
    assert lake.days_present(QUARANTINE) == R[1:]  # the data is what this test thinks it is
    assert [lake.read_all(t).height > 0 for t in GOLD_TABLES] == [True] * 3
    before = snapshot(lake, R)
    before_without_run = snapshot(lake, R, drop=RUN_COLUMNS)

    again = materialize(root, [R[1]])  # day 2 alone
    assert again.success and all(check_results(again).values()), check_results(again)
    after = snapshot(lake, R)
    for (table, day), frame in before.items():
        if day in (R[0], R[3]):
            assert_same(frame, after[table, day], f"{table} {day}")
    # Day 2 is rebuilt to the same rows in every table (stops whose row lives in a later day stay there).
    rebuilt = snapshot(lake, [R[1]], drop=RUN_COLUMNS)
    for (table, day), frame in rebuilt.items():
        assert_same(before_without_run[table, day], frame, f"{table} {day}")

    ranged = materialize(root, R[1:3])  # days 2-3, one run
    assert ranged.success and all(check_results(ranged).values()), check_results(ranged)
    assert {m.materialization.partition for m in ranged.get_asset_materialization_events()} == {
        d.isoformat() for d in R[1:3]
    }
    after = snapshot(lake, R)
    after_without_run = snapshot(lake, R, drop=RUN_COLUMNS)
    # S2 was added on day 2 and removed on day 4, which this range does not re-run: its facts as of day 3 are
    # unchanged, so the row day 4 brought up to date is kept, in day 2's partition, and is the only one.
    outcomes = lake.read_all(TRAILING_STOP_OUTCOMES)
    assert outcomes.get_column("execution_id").is_duplicated().sum() == 0
    for (table, day), frame in before.items():
        if day in (R[0], R[3]):
            assert_same(frame, after[table, day], f"{table} {day}")
        else:
            assert_same(before_without_run[table, day], after_without_run[table, day], f"{table} {day}")
    removed = after[str(TRAILING_STOP_OUTCOMES), R[1]].filter(pl.col("execution_id") == "S2")
    assert removed.select("outcome").rows() == [("removed",)]
    quarantined = lake.read_all(QUARANTINE)
    run_of = dict(zip(quarantined["event_date"].to_list(), quarantined["run_id"].to_list(), strict=True))
    assert run_of == {R[1]: ranged.run_id, R[2]: ranged.run_id, R[3]: first.run_id}
