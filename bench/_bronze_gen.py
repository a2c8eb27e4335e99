"""Synthetic bronze ``risk_events`` for the pipeline benchmark, built column-wise (never through the logger).

The mix follows what the runtime's components emit:

* trailing stops (~72% of events): each stop lives minutes to days (many cross midnight) and emits
  ADD, ACTIVATE, a run of UPDATEs (ratchets), then TRIGGER (70%), REMOVE (20%) or nothing yet (open);
  premiums follow the stop's rules (activation 2% over entry, stop 1.5% under the highest premium);
* portfolio limits: entry checks, rejections over a limit (with reason and metadata), health warnings;
* circuit breakers: failures, successes, a few manual resets, and per breaker a legal chain of state
  changes (CLOSED->OPEN->HALF_OPEN->...) spread over the whole period, so state carries across days.

Every event belongs to a writer (trading process) whose ``sequence`` is contiguous across days. About
0.1% of rows are re-sent copies (same event, later ``ingested_at``: a retried batch) and about 0.1% are
malformed (half carry an ``ingest_errors`` entry, half an unparsable ``metadata``), so silver has real
duplicates and quarantine work to do while keeping ~99.9% of rows.

Randomness comes from ``pyarrow.compute.random`` with fixed seeds: a spec always yields the same rows.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Final

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import CommitProperties, DeltaTable, write_deltalake

from risk_pipeline.lake import conform
from risk_runtime.contract import COMMIT_EVENT_DATES, format_event_dates
from risk_runtime.events import BRONZE_PARTITION_COLUMNS, BRONZE_SCHEMA, EVENT_COMPONENT, RiskEventType

T = RiskEventType
US_PER_DAY: Final = 86_400_000_000
US_PER_HOUR: Final = 3_600_000_000

TS_SHARE: Final = 0.72
"""Share of events that are trailing-stop events."""
MEAN_EVENTS_PER_STOP: Final = 20
STATE_CHANGE_SHARE: Final = 0.0004
DUPLICATE_SHARE: Final = 0.001
MALFORMED_SHARE: Final = 0.001
WRITERS: Final = 6
BREAKERS: Final = 6
SYMBOLS: Final = ("SPY", "QQQ", "IWM", "AAPL", "MSFT", "NVDA", "AMZN", "TSLA", "META", "GOOG", "AMD", "NFLX")
ACTIVATION: Final = 0.02
KEEP: Final = 1 - 0.015
LIMITS: Final = (("portfolio_delta", 500.0), ("symbol_delta", 200.0), ("open_positions", 20.0))

# Other (non-stop) event types and their cumulative shares among the non-stop events.
OTHER_MIX: Final = (
    (T.PL_CHECK, 0.78),
    (T.PL_REJECTION, 0.85),
    (T.PL_WARNING, 0.92),
    (T.CB_FAILURE, 0.96),
    (T.CB_SUCCESS, 0.995),
    (T.CB_MANUAL_RESET, 1.0),
)
# A legal cycle of breaker transitions (with a failed half-open probe), and the failure count each carries.
CYCLE: Final = (
    ("CLOSED", "OPEN", 5),
    ("OPEN", "HALF_OPEN", 5),
    ("HALF_OPEN", "CLOSED", 0),
    ("CLOSED", "OPEN", 5),
    ("OPEN", "HALF_OPEN", 5),
    ("HALF_OPEN", "OPEN", 5),
    ("OPEN", "HALF_OPEN", 5),
    ("HALF_OPEN", "CLOSED", 0),
)
_COMPONENT: Final = {t.value: c.value for t, c in EVENT_COMPONENT.items()}
_ACTION: Final = {
    T.TS_ADD.value: "ADD",
    T.TS_ACTIVATE.value: "ACTIVATE",
    T.TS_UPDATE.value: "UPDATE",
    T.TS_TRIGGER.value: "TRIGGER",
    T.TS_REMOVE.value: "REMOVE",
}
_TS_UTC: Final = pl.Datetime("us", "UTC")


@dataclass(frozen=True)
class BronzeSpec:
    """``events`` spread over ``days`` UTC days from ``first_day``, plus ``extra_days`` held back after them."""

    events: int
    days: int
    first_day: date = date(2026, 1, 5)
    extra_days: int = 1
    seed: int = 20260105

    @property
    def per_day(self) -> float:
        return self.events / self.days

    @property
    def end(self) -> date:
        """First day after the measured range (the first held-back day)."""
        return self.first_day + timedelta(days=self.days)

    def day(self, i: int) -> date:
        return self.first_day + timedelta(days=i)


@dataclass
class BronzeStats:
    """What was generated: rows per event type, the injected faults, and a triggered stop to query."""

    rows_in_range: int = 0
    rows_held_back: int = 0
    duplicates: int = 0
    malformed: int = 0
    by_type: dict[str, int] = field(default_factory=dict)
    stops: int = 0
    stops_crossing_midnight: int = 0
    sample_execution_id: str = ""
    commits: int = 0
    files: int = 0


def _uniform(n: int, seed: int) -> pl.Series:
    return pl.Series(pc.random(n, initializer=seed & 0x7FFFFFFF))


def _epoch_us(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * 1_000_000


def _stops(spec: BronzeSpec) -> pl.DataFrame:
    """One row per trailing stop of the whole period (held-back days included)."""
    span_days = spec.days + spec.extra_days
    n = max(1, round(TS_SHARE * spec.per_day * span_days / MEAN_EVENTS_PER_STOP))
    u = [_uniform(n, spec.seed * 31 + k) for k in range(6)]
    t0 = _epoch_us(spec.first_day)
    return (
        pl.DataFrame({"stop": pl.int_range(n, eager=True, dtype=pl.Int64)})
        .with_columns(u0=u[0], u1=u[1], u2=u[2], u3=u[3], u4=u[4], u5=u[5])
        .select(
            "stop",
            (t0 + (pl.col("u0") * span_days * US_PER_DAY).floor().cast(pl.Int64)).alias("start"),
            (
                (5 * 60_000_000 + (-(1 - pl.col("u1")).log() * 4 * US_PER_HOUR))
                .clip(upper_bound=3 * US_PER_DAY)
                .cast(pl.Int64)
                .alias("dur")
            ),
            (3 + (-(1 - pl.col("u2")).log() * (MEAN_EVENTS_PER_STOP - 3)).floor().cast(pl.Int64)).alias("n"),
            pl.when(pl.col("u3") < 0.7)
            .then(pl.lit(T.TS_TRIGGER.value))
            .when(pl.col("u3") < 0.9)
            .then(pl.lit(T.TS_REMOVE.value))
            .otherwise(pl.lit(T.TS_UPDATE.value))
            .alias("end_kind"),
            (1 + 9 * pl.col("u4")).round(2).alias("entry"),
            (0.002 + 0.01 * pl.col("u5")).alias("step"),
            pl.concat_str(pl.lit("exec-"), pl.col("stop").cast(pl.String).str.zfill(9)).alias("execution_id"),
            pl.lit(pl.Series(SYMBOLS)).get(pl.col("stop") % len(SYMBOLS)).alias("symbol"),
            (pl.col("stop") % WRITERS).alias("writer"),
        )
        .with_columns(pl.concat_str(pl.lit("stops-w"), pl.col("writer").cast(pl.String)).alias("source"))
    )


def _stop_events(stops: pl.DataFrame, ds: int, de: int, seed: int) -> pl.DataFrame:
    """The events of every stop alive in ``[ds, de)`` (microseconds) that fall inside it."""
    k_of = (pl.col("n") - 1).cast(pl.Float64) / pl.col("dur").cast(pl.Float64)
    live = stops.filter((pl.col("start") < de) & (pl.col("start") + pl.col("dur") >= ds)).with_columns(
        pl.int_ranges(
            ((ds - pl.col("start")) * k_of).floor().cast(pl.Int64).clip(0) - 1,
            ((de - pl.col("start")) * k_of).ceil().cast(pl.Int64).clip(upper_bound=pl.col("n") - 1) + 1,
        ).alias("k")
    )
    ev = (
        live.explode("k")
        .filter((pl.col("k") >= 0) & (pl.col("k") < pl.col("n")))
        .with_columns((pl.col("start") + pl.col("dur") * pl.col("k") // (pl.col("n") - 1)).alias("ts"))
        .filter((pl.col("ts") >= ds) & (pl.col("ts") < de))
    )
    ev = ev.with_columns(_uniform(ev.height, seed).alias("u"))
    k, last = pl.col("k"), pl.col("k") == pl.col("n") - 1
    event_type = (
        pl.when(k == 0)
        .then(pl.lit(T.TS_ADD.value))
        .when(k == 1)
        .then(pl.lit(T.TS_ACTIVATE.value))
        .when(last)
        .then(pl.col("end_kind"))
        .otherwise(pl.lit(T.TS_UPDATE.value))
    )
    ev = ev.with_columns(event_type.alias("event_type"))
    closing = pl.col("event_type").is_in([T.TS_TRIGGER.value, T.TS_REMOVE.value])
    high_at = pl.col("entry") * (1 + ACTIVATION + pl.col("step") * (k - pl.when(closing).then(2).otherwise(1)))
    highest = pl.when(k == 0).then(pl.col("entry")).otherwise(high_at)
    ev = ev.with_columns(highest.alias("highest_premium"))
    stop = pl.when(k == 0).then(None).otherwise(pl.col("highest_premium") * KEEP)
    ev = ev.with_columns(stop.alias("stop_premium"))
    current = (
        pl.when(k == 0)
        .then(pl.col("entry"))
        .when(pl.col("event_type") == T.TS_TRIGGER.value)
        .then(pl.col("stop_premium") * (1 - 0.005 * pl.col("u")))
        .when(pl.col("event_type") == T.TS_REMOVE.value)
        .then((pl.col("stop_premium") + pl.col("highest_premium")) / 2)
        .otherwise(pl.col("highest_premium"))
    )
    return ev.select(
        "ts",
        "writer",
        "event_type",
        "source",
        "execution_id",
        "symbol",
        pl.col("entry").alias("entry_premium"),
        current.alias("current_premium"),
        "highest_premium",
        "stop_premium",
        pl.col("event_type").replace_strict(_ACTION, return_dtype=pl.String).alias("action"),
        pl.when(k == 0)
        .then(pl.lit(f'{{"activation_pct": {ACTIVATION}, "trailing_pct": {1 - KEEP:.3f}}}'))
        .alias("metadata"),
    )


def _other_events(n: int, ds: int, seed: int) -> pl.DataFrame:
    """Portfolio-limit events and breaker failures/successes/resets, uniformly over the day."""
    u = [_uniform(n, seed + k) for k in range(6)]
    df = pl.DataFrame({"u0": u[0], "u1": u[1], "u2": u[2], "u3": u[3], "u4": u[4], "u5": u[5]})
    kind = pl.lit(OTHER_MIX[-1][0].value)
    for event_type, upper in reversed(OTHER_MIX[:-1]):
        kind = pl.when(pl.col("u1") < upper).then(pl.lit(event_type.value)).otherwise(kind)
    df = df.with_columns(
        (ds + (pl.col("u0") * US_PER_DAY).floor().cast(pl.Int64)).alias("ts"),
        kind.alias("event_type"),
        (pl.col("u2") * len(LIMITS)).floor().cast(pl.Int64).alias("limit_ix"),
        (pl.col("u3") * len(SYMBOLS)).floor().cast(pl.Int64).alias("symbol_ix"),
        (pl.col("u5") * BREAKERS).floor().cast(pl.Int64).alias("breaker"),
    )
    is_pl = pl.col("event_type").str.starts_with("portfolio_limit_")
    check, reject, warn = (pl.col("event_type") == t.value for t in (T.PL_CHECK, T.PL_REJECTION, T.PL_WARNING))
    limit_value = pl.lit(pl.Series([v for _, v in LIMITS])).get(pl.col("limit_ix"))
    limit_type = pl.lit(pl.Series([name for name, _ in LIMITS])).get(pl.col("limit_ix"))
    current = (
        pl.when(check)
        .then(limit_value * (0.1 + 0.85 * pl.col("u4")))
        .when(reject)
        .then(limit_value * (1.001 + 0.3 * pl.col("u4")))
        .otherwise(limit_value * (0.8 + 0.19 * pl.col("u4")))
        .round(4)
    )
    df = df.with_columns(current.alias("current_value"), limit_value.alias("limit_value"))
    symbol = pl.lit(pl.Series(SYMBOLS)).get(pl.col("symbol_ix"))
    is_cb = ~is_pl
    failure_count = (
        pl.when(pl.col("event_type") == T.CB_FAILURE.value).then(1 + (pl.col("u4") * 4).floor().cast(pl.Int64))
    ).otherwise(0)
    metadata = (
        pl.when(reject)
        .then(
            pl.concat_str(
                pl.lit('{"delta": '), (pl.col("u4") * 50).round(2).cast(pl.String), pl.lit(', "quantity": 1}')
            )
        )
        .when(warn)
        .then(pl.lit('{"threshold": 0.8}'))
        .when(pl.col("event_type") == T.CB_SUCCESS.value)
        .then(pl.lit('{"failures_cleared": 2}'))
        .when(pl.col("event_type") == T.CB_MANUAL_RESET.value)
        .then(pl.lit('{"reason": "operator reset"}'))
    )
    return df.select(
        "ts",
        pl.when(is_pl)
        .then((pl.col("u5") * WRITERS).floor().cast(pl.Int64))
        .otherwise(pl.col("breaker") % WRITERS)
        .alias("writer"),
        "event_type",
        pl.when(is_pl)
        .then(pl.lit("portfolio-limits"))
        .otherwise(pl.concat_str(pl.lit("breaker-"), pl.col("breaker").cast(pl.String)))
        .alias("source"),
        pl.when(check | reject)
        .then(pl.concat_str(pl.lit("entry-"), (pl.col("u3") * 1e9).cast(pl.Int64).cast(pl.String)))
        .alias("execution_id"),
        pl.when(is_pl & ~(warn & (pl.col("limit_ix") != 1))).then(symbol).alias("symbol"),
        pl.when(is_cb).then(failure_count).alias("failure_count"),
        pl.when(is_pl).then(limit_type).alias("limit_type"),
        pl.when(is_pl).then(pl.col("current_value")).alias("current_value"),
        pl.when(is_pl).then(pl.col("limit_value")).alias("limit_value"),
        pl.when(check).then(pl.lit(True)).when(reject).then(pl.lit(False)).alias("allowed"),
        pl.when(reject)
        .then(
            pl.concat_str(
                limit_type,
                pl.lit(" would be "),
                pl.col("current_value").cast(pl.String),
                pl.lit(", limit "),
                pl.col("limit_value").cast(pl.String),
            )
        )
        .alias("rejection_reason"),
        metadata.alias("metadata"),
    )


def _transitions(spec: BronzeSpec) -> pl.DataFrame:
    """Every breaker's state changes over the whole period: a legal chain, in time order per breaker."""
    span_days = spec.days + spec.extra_days
    per_breaker = max(len(CYCLE), round(STATE_CHANGE_SHARE * spec.per_day * span_days / BREAKERS))
    n = per_breaker * BREAKERS
    spacing = span_days * US_PER_DAY / per_breaker
    t0 = _epoch_us(spec.first_day)
    cycle = pl.DataFrame(
        {
            "step": list(range(len(CYCLE))),
            "old_state": [c[0] for c in CYCLE],
            "new_state": [c[1] for c in CYCLE],
            "failure_count": [c[2] for c in CYCLE],
        },
        schema_overrides={"step": pl.Int64},
    )
    return (
        pl.DataFrame({"i": pl.int_range(n, eager=True, dtype=pl.Int64), "u": _uniform(n, spec.seed * 97)})
        .with_columns((pl.col("i") // per_breaker).alias("breaker"), (pl.col("i") % per_breaker).alias("j"))
        .with_columns(
            (t0 + ((pl.col("j") + 0.5 + 0.8 * (pl.col("u") - 0.5)) * spacing).floor().cast(pl.Int64)).alias("ts"),
            ((pl.col("j") + pl.col("breaker")) % len(CYCLE)).alias("step"),
        )
        .join(cycle, on="step", how="left")
        .select(
            "ts",
            (pl.col("breaker") % WRITERS).alias("writer"),
            pl.lit(T.CB_STATE_CHANGE.value).alias("event_type"),
            pl.concat_str(pl.lit("breaker-"), pl.col("breaker").cast(pl.String)).alias("source"),
            "old_state",
            "new_state",
            "failure_count",
        )
    )


def _hex(values: pl.Series) -> pl.Series:
    arrow = values.to_arrow()
    if isinstance(arrow, pa.ChunkedArray):
        arrow = arrow.combine_chunks()
    return pl.Series(pl.from_arrow(arrow.view(pa.binary(8)))).bin.encode("hex")


def _event_ids(n: int, day_index: int, seed: int) -> pl.Series:
    """Random-looking v4-shaped UUID strings, unique per (day, row), from two 64-bit hashes."""
    base = pl.int_range(n, eager=True, dtype=pl.UInt64) + day_index * 1_000_000_000
    h1, h2 = _hex(base.hash(seed)), _hex(base.hash(seed + 1))
    ids = pl.DataFrame({"a": h1, "b": h2}).select(
        pl.concat_str(
            pl.col("a").str.slice(0, 8),
            pl.lit("-"),
            pl.col("a").str.slice(8, 4),
            pl.lit("-4"),
            pl.col("a").str.slice(13, 3),
            pl.lit("-a"),
            pl.col("b").str.slice(1, 3),
            pl.lit("-"),
            pl.col("b").str.slice(4, 12),
        )
    )
    return ids.to_series()


class BronzeGenerator:
    """Yields one bronze day at a time (Arrow, :data:`BRONZE_SCHEMA`), carrying writers' sequences across days."""

    def __init__(self, spec: BronzeSpec) -> None:
        self.spec = spec
        self.stops = _stops(spec)
        self.transitions = _transitions(spec)
        self.next_sequence = [1] * WRITERS
        self.stats = BronzeStats(stops=self.stops.height)
        day0 = _epoch_us(spec.first_day)
        crossing = self.stops.filter(
            (pl.col("start") - day0) // US_PER_DAY != (pl.col("start") + pl.col("dur") - day0) // US_PER_DAY
        )
        self.stats.stops_crossing_midnight = crossing.height
        range_end = _epoch_us(spec.end)
        sample = self.stops.filter(
            (pl.col("end_kind") == T.TS_TRIGGER.value) & (pl.col("start") + pl.col("dur") < range_end)
        )
        self.stats.sample_execution_id = sample.get_column("execution_id")[0] if sample.height else ""

    def day(self, i: int) -> pa.Table:
        spec = self.spec
        day = spec.day(i)
        ds = _epoch_us(day)
        de = ds + US_PER_DAY
        seed = spec.seed * 1_000_003 + i * 7919
        stop_events = _stop_events(self.stops, ds, de, seed)
        n_other = round((1 - TS_SHARE - STATE_CHANGE_SHARE) * spec.per_day)
        other = _other_events(n_other, ds, seed + 11)
        changes = self.transitions.filter((pl.col("ts") >= ds) & (pl.col("ts") < de))
        frame = pl.concat([stop_events, other, changes], how="diagonal_relaxed").sort("writer", "ts")
        offsets = pl.Series(self.next_sequence, dtype=pl.Int64)
        frame = frame.with_columns(
            (pl.int_range(pl.len(), dtype=pl.Int64).over("writer") + pl.lit(offsets).get(pl.col("writer"))).alias(
                "sequence"
            )
        )
        counts = frame.group_by("writer").len()
        for writer, count in counts.iter_rows():
            self.next_sequence[writer] += count
        n = frame.height
        frame = frame.sort("ts").with_columns(
            _event_ids(n, i, spec.seed).alias("event_id"),
            _uniform(n, seed + 23).alias("u"),
            _uniform(n, seed + 29).alias("fault"),
        )
        frame = frame.with_columns(
            pl.from_epoch("ts", time_unit="us").dt.replace_time_zone("UTC").alias("timestamp"),
            pl.col("event_type").replace_strict(_COMPONENT, return_dtype=pl.String).alias("component"),
            pl.concat_str(pl.lit("trader-"), pl.col("writer").cast(pl.String), pl.lit("-4f1c9e02aa")).alias(
                "writer_id"
            ),
            pl.lit(day).alias("event_date"),
            pl.lit(1, dtype=pl.Int32).alias("schema_version"),
            pl.from_epoch(pl.col("ts") + 200_000 + (pl.col("u") * 1_800_000).cast(pl.Int64), time_unit="us")
            .dt.replace_time_zone("UTC")
            .alias("ingested_at"),
        )
        # ~0.1% malformed, in place (their sequence numbers stay taken): half flagged by ingestion, half bad JSON.
        malformed = pl.col("fault") < MALFORMED_SHARE
        frame = frame.with_columns(
            pl.when(malformed & (pl.col("fault") < MALFORMED_SHARE / 2))
            .then(pl.lit("[\"metadata: expected a string, got dict {'k': 1}\"]"))
            .alias("ingest_errors"),
            pl.when(malformed & (pl.col("fault") < MALFORMED_SHARE / 2))
            .then(None)
            .when(malformed)
            .then(pl.lit('{"truncated": '))
            .otherwise(pl.col("metadata"))
            .alias("metadata"),
        )
        # ~0.1% re-sent copies of events (a retried batch): identical event, landed again a little later.
        copies = frame.filter(pl.col("fault") >= 1 - DUPLICATE_SHARE).with_columns(
            (pl.col("ingested_at") + pl.duration(seconds=30)).alias("ingested_at")
        )
        frame = pl.concat([frame, copies])
        self.stats.duplicates += copies.height
        self.stats.malformed += int(frame.select(malformed.sum()).item())
        for event_type, count in frame.group_by("event_type").len().iter_rows():
            self.stats.by_type[event_type] = self.stats.by_type.get(event_type, 0) + count
        arrow = frame.sort("ingested_at").to_arrow()
        return conform(arrow, BRONZE_SCHEMA)

    def days(self, first: int, last: int) -> Iterator[pa.Table]:
        for i in range(first, last):
            yield self.day(i)


def _create(uri: str) -> None:
    DeltaTable.create(
        uri,
        BRONZE_SCHEMA,
        mode="ignore",
        partition_by=list(BRONZE_PARTITION_COLUMNS),
        name="risk_events",
        description="Bronze: raw risk events as trading processes emitted them.",
    )


def _append(uri: str, tables: list[pa.Table], days: list[date]) -> None:
    write_deltalake(
        uri,
        pa.concat_tables(tables),
        mode="append",
        partition_by=list(BRONZE_PARTITION_COLUMNS),
        commit_properties=CommitProperties(custom_metadata={COMMIT_EVENT_DATES: format_event_dates(days)}),
    )


def write_bronze(spec: BronzeSpec, main_uri: str, held_back_uri: str, *, commits: int = 6) -> BronzeStats:
    """Write the range's days to ``main_uri`` in ``commits`` large appends, the held-back days to ``held_back_uri``."""
    gen = BronzeGenerator(spec)
    _create(main_uri)
    per_commit = max(1, math.ceil(spec.days / commits))
    for first in range(0, spec.days, per_commit):
        last = min(spec.days, first + per_commit)
        tables = list(gen.days(first, last))
        gen.stats.rows_in_range += sum(len(t) for t in tables)
        _append(main_uri, tables, [spec.day(i) for i in range(first, last)])
        gen.stats.commits += 1
    _create(held_back_uri)
    held = list(gen.days(spec.days, spec.days + spec.extra_days))
    gen.stats.rows_held_back = sum(len(t) for t in held)
    _append(held_back_uri, held, [spec.day(i) for i in range(spec.days, spec.days + spec.extra_days)])
    gen.stats.files = len(DeltaTable(main_uri).file_uris())
    return gen.stats


def land_held_back(held_back_uri: str, main_uri: str) -> int:
    """Append the held-back days to the main bronze table (the next day's events arriving); returns rows."""
    table = DeltaTable(held_back_uri).to_pyarrow_table()
    _append(main_uri, [table], sorted(set(table.column("event_date").to_pylist())))
    return len(table)
