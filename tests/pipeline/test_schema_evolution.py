"""Schema evolution end to end: bronze merging version 2 beside version-1 writers, and backfills over both.

One lake is built once for the module -- 30 days written by a version-1 writer, then 5 days on which a
version-2 writer and the still-running version-1 writer both append -- and copied where a test needs a
lake of its own:

* bronze takes a v2 append into a v1 table, and v1-shaped appends after it, and reads both back;
* one single-run backfill over all 35 days: silver holds every event of both versions once, every day
  accounts for its bronze rows, gold uses the contract where events had one and nulls (with the same P&L)
  where they did not;
* the same backfill started from the command line, killed with SIGKILL part-way and run again, ends with
  tables equal, day by day, to the uninterrupted one's;
* tightening ``$RISK_MAX_PREMIUM`` and backfilling 30 days moves exactly the dear stops' events to
  quarantine with the new reason; relaxing it and backfilling again moves them back.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import dagster as dg
import polars as pl
import pyarrow as pa
import pytest
from deltalake import DeltaTable
from test_end_to_end import ALL_CHECKS, check_metadata, check_results, materialize

from risk_pipeline.defs.gold.circuit_breaker_transitions import CIRCUIT_BREAKER_STATE, CIRCUIT_BREAKER_TRANSITIONS
from risk_pipeline.defs.gold.limit_rejection_stats import LIMIT_REJECTION_STATS
from risk_pipeline.defs.gold.trailing_stop_outcomes import TRAILING_STOP_OUTCOMES, TRAILING_STOP_STATE
from risk_pipeline.defs.silver.checks import ACCOUNTING_IDENTITY, QUARANTINE_RATE_ENV
from risk_pipeline.defs.silver.schema import MAX_PREMIUM_ENV, QUARANTINE, SILVER
from risk_pipeline.lake import Lake, TableRef
from risk_runtime.encoding import events_to_bronze
from risk_runtime.events import TIMESTAMP, RiskEvent, RiskEventType
from risk_runtime.table import RiskEventsTable

T = RiskEventType
REPO: Final = Path(__file__).resolve().parents[2]
BRONZE: Final = TableRef("bronze", "risk_events")

V1_BRONZE_SCHEMA: Final = pa.schema(
    [
        pa.field("event_id", pa.string()),
        pa.field("event_type", pa.string(), nullable=False),
        pa.field("component", pa.string()),
        pa.field("timestamp", TIMESTAMP),
        pa.field("source", pa.string()),
        pa.field("execution_id", pa.string()),
        pa.field("symbol", pa.string()),
        pa.field("old_state", pa.string()),
        pa.field("new_state", pa.string()),
        pa.field("failure_count", pa.int64()),
        pa.field("entry_premium", pa.float64()),
        pa.field("current_premium", pa.float64()),
        pa.field("highest_premium", pa.float64()),
        pa.field("stop_premium", pa.float64()),
        pa.field("action", pa.string()),
        pa.field("limit_type", pa.string()),
        pa.field("current_value", pa.float64()),
        pa.field("limit_value", pa.float64()),
        pa.field("allowed", pa.bool_()),
        pa.field("rejection_reason", pa.string()),
        pa.field("metadata", pa.string()),
        pa.field("schema_version", pa.int32()),
        pa.field("writer_id", pa.string(), nullable=False),
        pa.field("sequence", pa.int64(), nullable=False),
        pa.field("event_date", pa.date32(), nullable=False),
        pa.field("ingest_errors", pa.string()),
        pa.field("ingested_at", TIMESTAMP, nullable=False),
    ]
)
"""Bronze as the version-1 runtime wrote it, frozen here: what an older writer still sends."""

V2_COLUMNS: Final = ("underlying", "option_right", "strike", "expiry", "option_delta", "underlying_price")

FIRST: Final = date(2026, 4, 1)
DAYS: Final = [FIRST + timedelta(days=i) for i in range(35)]
V1_DAYS: Final = DAYS[:30]
V2_DAYS: Final = DAYS[30:]
V1_WRITER, V2_WRITER = "w-v1", "w-v2"
CHECKS_PER_DAY: Final = 15
DEAR_PREMIUM: Final = 80.0
"""Premium of the "dear" stops (every fifth day per writer): what a 50.0 cap refuses."""

PIPELINE_TABLES: Final = (
    SILVER,
    QUARANTINE,
    CIRCUIT_BREAKER_TRANSITIONS,
    CIRCUIT_BREAKER_STATE,
    TRAILING_STOP_OUTCOMES,
    TRAILING_STOP_STATE,
    LIMIT_REJECTION_STATS,
)
RUN_COLUMNS: Final = ("run_id", "quarantined_at")


def utc(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=UTC)


# ----------------------------------------------------------------------------------------------- the data
@dataclass
class Writer:
    """One writer's events over the days it ran, and which of them silver must refuse."""

    name: str
    v2: bool
    events: list[RiskEvent] = field(default_factory=list)
    bad: set[str] = field(default_factory=set)
    dear: set[str] = field(default_factory=set)


def contract(v2: bool, underlying: str, right: str, strike: float, expiry: date) -> dict[str, Any]:
    if not v2:
        return {"schema_version": 1}
    return {"underlying": underlying, "option_right": right, "strike": strike, "expiry": expiry}


def write_days(writer: Writer, days: Sequence[date]) -> None:
    """Each day: limit checks and a rejection, a stop triggered that day, a stop removed the next day, a
    breaker opening and closing, every fifth day a dear stop, and now and then one malformed event."""
    v2, w = writer.v2, writer.name[-2:]
    log = writer.events.append
    for i, day in enumerate(days):
        n = DAYS.index(day)
        spy = contract(v2, "SPY", "C", 520.0, day + timedelta(days=14))
        qqq = contract(v2, "QQQ", "P", 440.0, day + timedelta(days=21))
        market = {"option_delta": 0.5, "underlying_price": 519.0} if v2 else {}
        for k in range(CHECKS_PER_DAY):
            log(RiskEvent(T.PL_CHECK, timestamp=utc(day, 9, k), symbol="SPY", execution_id=f"{w}{n}-c{k}",
                          limit_type="open_positions", current_value=1.0, limit_value=10.0, allowed=True,
                          **spy, **market))  # fmt: skip
        log(RiskEvent(T.PL_REJECTION, timestamp=utc(day, 9, 30), symbol="SPY", execution_id=f"{w}{n}-r",
                      limit_type="symbol_delta", current_value=4.0, limit_value=3.0, allowed=False,
                      rejection_reason="symbol_delta over 3", **spy, **market))  # fmt: skip

        yesterdays_qqq = contract(v2, "QQQ", "P", 440.0, day - timedelta(days=1) + timedelta(days=21))
        if i:  # yesterday's second stop is removed this morning (a stop logs its contract on every event)
            log(stop_event(T.TS_REMOVE, utc(day, 8), f"{w}{n - 1}-2", 2.0, yesterdays_qqq, current_premium=1.9,
                           highest_premium=2.0))  # fmt: skip
        s1 = f"{w}{n}-1"
        log(stop_event(T.TS_ADD, utc(day, 9, 45), s1, 5.0, spy, current_premium=5.0, highest_premium=5.0, **market))
        log(
            stop_event(
                T.TS_ACTIVATE, utc(day, 10), s1, 5.0, spy, current_premium=5.5, highest_premium=5.5, stop_premium=5.4
            )
        )
        log(
            stop_event(
                T.TS_TRIGGER, utc(day, 11), s1, 5.0, spy, current_premium=5.3, highest_premium=5.5, stop_premium=5.4
            )
        )
        delta2 = {**market, "option_delta": -0.35} if v2 else {}
        log(
            stop_event(
                T.TS_ADD, utc(day, 12), f"{w}{n}-2", 2.0, qqq, current_premium=2.0, highest_premium=2.0, **delta2
            )
        )
        source = f"orders-{w}"
        log(RiskEvent(T.CB_STATE_CHANGE, timestamp=utc(day, 13), source=source, old_state="CLOSED", new_state="OPEN",
                      failure_count=3, **({} if v2 else {"schema_version": 1})))  # fmt: skip
        log(RiskEvent(T.CB_STATE_CHANGE, timestamp=utc(day, 13, 10), source=source, old_state="OPEN",
                      new_state="HALF_OPEN", failure_count=3, **({} if v2 else {"schema_version": 1})))  # fmt: skip
        log(RiskEvent(T.CB_STATE_CHANGE, timestamp=utc(day, 13, 11), source=source, old_state="HALF_OPEN",
                      new_state="CLOSED", failure_count=0, **({} if v2 else {"schema_version": 1})))  # fmt: skip
        if n % 5 == 0:
            dear = f"{w}{n}-d"
            add = stop_event(T.TS_ADD, utc(day, 14), dear, DEAR_PREMIUM, spy, current_premium=DEAR_PREMIUM)
            remove = stop_event(T.TS_REMOVE, utc(day, 15), dear, DEAR_PREMIUM, spy, current_premium=79.0,
                                highest_premium=DEAR_PREMIUM)  # fmt: skip
            writer.events += [add, remove]
            writer.dear |= {add.event_id, remove.event_id}
        if n % 7 == 3:
            bad = (
                RiskEvent(T.PL_CHECK, timestamp=utc(day, 16), symbol="SPY", allowed=True, **spy, option_delta=1.7)
                if v2
                else RiskEvent(T.CB_FAILURE, timestamp=utc(day, 16), source=source, failure_count=-1, schema_version=1)
            )
            log(bad)
            writer.bad.add(bad.event_id)


def stop_event(
    kind: RiskEventType, when: datetime, ex: str, entry: float, terms: dict[str, Any], **kw: Any
) -> RiskEvent:
    """A trailing-stop event: stops ``-1`` and ``-d`` protect a SPY call, ``-2`` a QQQ put (``terms``)."""
    on_spy = ex.endswith(("-1", "-d"))
    action = kind.value.removeprefix("trailing_stop_").upper()
    return RiskEvent(kind, timestamp=when, execution_id=ex, symbol="SPY" if on_spy else "QQQ", entry_premium=entry,
                     action=action, **terms, **kw)  # fmt: skip


def bronze_rows(writer: Writer, ingested_at: datetime) -> pa.Table:
    table = events_to_bronze(writer.events, writer_id=writer.name, ingested_at=ingested_at)
    assert table.column("ingest_errors").null_count == table.num_rows
    if writer.v2:
        return table
    return table.select(V1_BRONZE_SCHEMA.names).cast(V1_BRONZE_SCHEMA)  # the shape a v1 runtime sends


def on_days(table: pa.Table, days: Sequence[date]) -> pa.Table:
    return pl.from_arrow(table).filter(pl.col("event_date").is_in(list(days))).to_arrow().cast(table.schema)  # type: ignore[union-attr]


@dataclass(frozen=True)
class EvolvedLake:
    pristine: Path
    """Bronze only, never materialised: copy it for a lake of your own."""
    built: Path
    """The same bronze after one uninterrupted single-run backfill of all 35 days."""
    run: dg.ExecuteInProcessResult
    writers: tuple[Writer, Writer]

    @property
    def all_ids(self) -> set[str]:
        return {e.event_id for w in self.writers for e in w.events}

    @property
    def bad(self) -> set[str]:
        return set().union(*(w.bad for w in self.writers))

    @property
    def dear(self) -> set[str]:
        return set().union(*(w.dear for w in self.writers))


def build_bronze(root: Path) -> tuple[Writer, Writer]:
    """A v1 table written for 30 days, then 5 days of v2 appends interleaved with v1-shaped ones."""
    old, new = Writer(V1_WRITER, v2=False), Writer(V2_WRITER, v2=True)
    write_days(old, DAYS)
    write_days(new, V2_DAYS)
    old.events.sort(key=lambda e: e.timestamp)  # a logger numbers events in time order
    new.events.sort(key=lambda e: e.timestamp)
    landed = utc(DAYS[-1] + timedelta(days=1), 1)
    old_rows, new_rows = bronze_rows(old, landed), bronze_rows(new, landed)

    bronze = RiskEventsTable(root)
    DeltaTable.create(bronze.uri, V1_BRONZE_SCHEMA, partition_by=["event_date"], name="risk_events")
    assert bronze.append(on_days(old_rows, V1_DAYS), app_id=V1_WRITER, version=1)
    for k, day in enumerate(V2_DAYS):
        assert bronze.append(on_days(new_rows, [day]), app_id=V2_WRITER, version=k + 1)
        assert bronze.append(on_days(old_rows, [day]), app_id=V1_WRITER, version=k + 2)
    return old, new


@pytest.fixture(scope="module")
def evolved(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EvolvedLake]:
    base = tmp_path_factory.mktemp("evolution")
    pristine, built = base / "pristine", base / "built"
    writers = build_bronze(pristine)
    shutil.copytree(pristine, built)
    with pytest.MonkeyPatch.context() as env:
        env.delenv(MAX_PREMIUM_ENV, raising=False)
        run = materialize(built, DAYS)
    yield EvolvedLake(pristine, built, run, writers)


# ---------------------------------------------------------------------------------------------- helpers
def table_by_day(lake: Lake, ref: TableRef) -> dict[date, pl.DataFrame]:
    """Each day of a table in a canonical order, run columns dropped (one read per table)."""
    frame = lake.read_all(ref)
    if frame.is_empty():
        return {}
    frame = frame.drop([c for c in RUN_COLUMNS if c in frame.columns])
    frame = frame.select(sorted(frame.columns))
    keys = [name for name, dtype in frame.schema.items() if not isinstance(dtype, pl.List)]
    frame = frame.sort(keys, nulls_last=True)
    return {day: part for (day,), part in frame.partition_by("event_date", as_dict=True).items()}


def assert_same_tables(actual: Lake, expected: Lake) -> None:
    for ref in PIPELINE_TABLES:
        mine, theirs = table_by_day(actual, ref), table_by_day(expected, ref)
        assert sorted(mine) == sorted(theirs), ref
        for day, frame in theirs.items():
            assert frame.equals(mine[day]), f"{ref} {day}:\n{mine[day]}\nexpected\n{frame}"


def bronze_per_day(lake: Lake) -> dict[date, int]:
    counts = lake.read_all(BRONZE, columns=["event_date"]).group_by("event_date").len()
    return dict(counts.iter_rows())


def per_day_identity_holds(lake: Lake) -> None:
    """bronze = silver + quarantine on every day (this data has no duplicate copies)."""
    silver = dict(lake.read_all(SILVER, columns=["event_date"]).group_by("event_date").len().iter_rows())
    quarantine = dict(lake.read_all(QUARANTINE, columns=["event_date"]).group_by("event_date").len().iter_rows())
    for day, n in bronze_per_day(lake).items():
        assert n == silver.get(day, 0) + quarantine.get(day, 0), day


def outcome(lake: Lake, execution_id: str) -> dict[str, Any]:
    (row,) = lake.read_all(TRAILING_STOP_OUTCOMES).filter(pl.col("execution_id") == execution_id).to_dicts()
    return row


# ------------------------------------------------------------------------------------------------ bronze
def test_bronze_takes_a_v2_append_into_a_v1_table_and_v1_appends_after_it(evolved: EvolvedLake) -> None:
    table = DeltaTable(RiskEventsTable(evolved.pristine).uri)
    names = [f.name for f in table.schema().fields]
    assert set(names) == set(V1_BRONZE_SCHEMA.names) | set(V2_COLUMNS)  # merged: nothing renamed or dropped
    history = [c for c in table.history() if c.get("operation") == "WRITE"]
    assert len(history) == 1 + 2 * len(V2_DAYS)  # every append of both shapes committed

    bronze = RiskEventsTable(evolved.pristine).read()
    frame = pl.from_arrow(bronze)
    assert isinstance(frame, pl.DataFrame) and frame.height == len(evolved.all_ids)
    by_writer = {w: frame.filter(pl.col("writer_id") == w) for w in (V1_WRITER, V2_WRITER)}
    old, new = by_writer[V1_WRITER], by_writer[V2_WRITER]
    assert old.get_column("schema_version").unique().to_list() == [1]
    assert new.get_column("schema_version").unique().to_list() == [2]
    # v1 rows appended after the merge read back with the new columns null, on every day they were written.
    assert sorted(set(old.get_column("event_date").to_list())) == DAYS
    for name in V2_COLUMNS:
        assert old.get_column(name).null_count() == old.height, name
    stops = new.filter(pl.col("component") == "trailing_stop")
    assert stops.get_column("strike").null_count() == 0 and stops.get_column("expiry").null_count() == 0
    assert sorted(set(new.get_column("event_date").to_list())) == V2_DAYS


# --------------------------------------------------------------------------------------------- backfills
def test_full_backfill_over_both_versions(evolved: EvolvedLake) -> None:
    run, lake = evolved.run, Lake(str(evolved.built))
    assert run.success
    assert check_results(run) == dict.fromkeys(ALL_CHECKS, True), check_results(run)
    assert check_metadata(run, ACCOUNTING_IDENTITY)["days_broken"] == []
    assert lake.days_present(SILVER) == DAYS
    per_day_identity_holds(lake)

    silver = lake.read_all(SILVER)
    ids = silver.get_column("event_id")
    assert ids.is_duplicated().sum() == 0
    assert set(ids.to_list()) == evolved.all_ids - evolved.bad  # every good event of both versions, once
    assert set(lake.read_all(QUARANTINE).get_column("event_id").to_list()) == evolved.bad
    assert silver.get_column("schema_version").unique().to_list() == [2]  # v1 rows were upcast
    v1_checks = silver.filter((pl.col("writer_id") == V1_WRITER) & (pl.col("event_type") == T.PL_CHECK.value))
    assert v1_checks.get_column("underlying").unique().to_list() == ["SPY"]  # from symbol
    assert v1_checks.get_column("strike").null_count() == v1_checks.height

    # A v2 stop: its contract, from its events; the delta only its ADD carried.
    day31 = DAYS.index(V2_DAYS[0])
    v2_stop = outcome(lake, f"v2{day31}-1")
    assert (v2_stop["underlying"], v2_stop["option_right"], v2_stop["strike"]) == ("SPY", "C", 520.0)
    assert (v2_stop["expiry"], v2_stop["entry_option_delta"]) == (V2_DAYS[0] + timedelta(days=14), 0.5)
    assert v2_stop["profit_locked"] == pytest.approx(0.4) and v2_stop["realized_pnl"] == pytest.approx(0.3)
    # Added on one day, removed the next: the entry delta reached the row through the carried state.
    carried = outcome(lake, f"v2{day31}-2")
    assert (carried["outcome"], carried["event_date"], carried["last_event_date"]) == ("removed", *V2_DAYS[:2])
    assert (carried["option_right"], carried["strike"], carried["entry_option_delta"]) == ("P", 440.0, -0.35)
    # v1 stops, before and across the version boundary: no contract, the same P&L.
    for execution_id in ("v10-1", f"v1{day31}-1"):
        v1_stop = outcome(lake, execution_id)
        assert v1_stop["underlying"] == "SPY"  # the upcast's, from symbol
        assert [v1_stop[c] for c in ("option_right", "strike", "expiry", "entry_option_delta")] == [None] * 4
        assert v1_stop["profit_locked"] == pytest.approx(0.4) and v1_stop["realized_pnl"] == pytest.approx(0.3)
    crossing = outcome(lake, f"v1{day31 - 1}-2")  # added by v1 on day 30, removed on day 31
    assert (crossing["outcome"], crossing["added_at"], crossing["event_date"], crossing["last_event_date"]) == (
        "removed",
        utc(DAYS[day31 - 1], 12),
        DAYS[day31 - 1],
        V2_DAYS[0],
    )
    open_stops = lake.read_all(TRAILING_STOP_OUTCOMES).filter(pl.col("outcome") == "open")
    assert sorted(open_stops.get_column("execution_id").to_list()) == [f"v1{len(DAYS) - 1}-2", f"v2{len(DAYS) - 1}-2"]


def cli(lake_root: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", MAX_PREMIUM_ENV)}
    command = [sys.executable, "-m", "risk_pipeline.cli", "--lake", str(lake_root), "materialize", "--single-run",
               "--start", DAYS[0].isoformat(), "--end", DAYS[-1].isoformat()]  # fmt: skip
    with log.open("ab") as out:
        return subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)


def test_an_interrupted_backfill_run_again_equals_an_uninterrupted_one(evolved: EvolvedLake, tmp_path: Path) -> None:
    root, log = tmp_path / "lake", tmp_path / "cli.log"
    shutil.copytree(evolved.pristine, root)
    lake = Lake(str(root))

    process = cli(root, log)
    try:
        deadline = time.monotonic() + 120
        while len(lake.days_present(SILVER)) < 8:
            assert process.poll() is None, f"the backfill ended before it was killed:\n{log.read_text()}"
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    written = lake.days_present(SILVER)
    assert 8 <= len(written) < len(DAYS), written
    assert lake.days_present(TRAILING_STOP_OUTCOMES) == []  # gold runs after silver: not reached

    again = cli(root, log)
    assert again.wait(timeout=240) == 0, log.read_text()
    assert_same_tables(lake, Lake(str(evolved.built)))


def test_tightening_a_rule_and_backfilling_moves_rows_and_relaxing_moves_them_back(
    evolved: EvolvedLake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "lake"
    shutil.copytree(evolved.built, root)
    lake, reference = Lake(str(root)), Lake(str(evolved.built))
    monkeypatch.setenv(QUARANTINE_RATE_ENV, "1.0")  # a dear day refuses more than 5% of its rows, on purpose
    backfill = DAYS[5:]  # 30 days
    before = {ref: table_by_day(lake, ref) for ref in (SILVER, QUARANTINE)}

    monkeypatch.setenv(MAX_PREMIUM_ENV, "50")
    tightened = materialize(root, backfill)
    assert tightened.success, tightened
    assert check_results(tightened)[ACCOUNTING_IDENTITY] is True
    assert check_metadata(tightened, ACCOUNTING_IDENTITY)["days_broken"] == []
    per_day_identity_holds(lake)
    dear_in_range = {e.event_id for w in evolved.writers for e in w.events if e.event_id in w.dear
                     and e.timestamp.date() in backfill}  # fmt: skip
    assert dear_in_range and dear_in_range != evolved.dear  # the range holds some, not all
    quarantine = lake.read_all(QUARANTINE)
    moved = quarantine.filter(pl.col("event_id").is_in(list(evolved.dear)))
    assert set(moved.get_column("event_id").to_list()) == dear_in_range
    reasons = {tuple(r) for r in moved.get_column("reasons").to_list()}
    assert reasons <= {
        (f"entry_premium: <= ${MAX_PREMIUM_ENV}",),
        (f"entry_premium: <= ${MAX_PREMIUM_ENV}", f"current_premium: <= ${MAX_PREMIUM_ENV}"),
        (f"entry_premium: <= ${MAX_PREMIUM_ENV}", f"current_premium: <= ${MAX_PREMIUM_ENV}",
         f"highest_premium: <= ${MAX_PREMIUM_ENV}"),
    }, reasons  # fmt: skip
    assert set(quarantine.get_column("event_id").to_list()) == evolved.bad | dear_in_range
    silver_ids = set(lake.read_all(SILVER).get_column("event_id").to_list())
    assert silver_ids == evolved.all_ids - evolved.bad - dear_in_range
    outcomes = set(lake.read_all(TRAILING_STOP_OUTCOMES).get_column("execution_id").to_list())
    assert {f"v1{DAYS.index(d)}-d" for d in backfill if DAYS.index(d) % 5 == 0}.isdisjoint(outcomes)
    assert "v10-d" in outcomes  # day 1 was not backfilled: untouched
    for ref in (SILVER, QUARANTINE):  # days outside the range are untouched
        now = table_by_day(lake, ref)
        for day in DAYS[:5]:
            if day in before[ref]:
                assert now[day].equals(before[ref][day]), (ref, day)

    monkeypatch.delenv(MAX_PREMIUM_ENV)
    relaxed = materialize(root, backfill)
    assert relaxed.success and check_results(relaxed)[ACCOUNTING_IDENTITY] is True
    per_day_identity_holds(lake)
    assert_same_tables(lake, reference)  # every row back where the uninterrupted backfill put it
