"""What the risk-history dashboard shows, read from the lake for a period of UTC days.

Everything here is plain polars frames and numbers, no charts and no HTML, so a test can compare each
figure with one it computes itself from the gold tables. The reads go through the query API and
:class:`~risk_pipeline.lake.Lake` (partition-pruned to the period's days); nothing re-reads Delta by hand.

What the period covers, table by table:

* breaker transitions whose ``timestamp`` falls in the period; each breaker's state at the period's
  start comes from gold's carried state (``gold/_circuit_breaker_state``) as of the day before, so a
  breaker that stayed OPEN across the period's first midnight shows OPEN from its first instant;
* trailing-stop lifetimes that *began* in the period (the table is partitioned by that day), with their
  outcome as gold knows it now -- a stop added on the last day and triggered after it counts as triggered;
* limit rejections and warnings per day of the period;
* silver and quarantine row counts from the Delta logs (no data read), and sequence gaps from silver and
  quarantine together, exactly as the ``no_sequence_gaps`` check finds them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final

import polars as pl

from risk_pipeline import queries
from risk_pipeline.defs.gold import circuit_breaker_transitions as cb
from risk_pipeline.defs.gold import limit_rejection_stats as limits
from risk_pipeline.defs.gold import trailing_stop_outcomes as stops
from risk_pipeline.defs.gold.carry import read_state_before
from risk_pipeline.defs.silver.checks import read_sequence_runs, sequence_gaps
from risk_pipeline.defs.silver.schema import QUARANTINE, SILVER
from risk_pipeline.lake import DAY_COLUMN, Lake, TableRef, days_between

ONE_DAY: Final = timedelta(days=1)
GOLD_REFS: Final[tuple[TableRef, ...]] = (
    cb.CIRCUIT_BREAKER_TRANSITIONS,
    stops.TRAILING_STOP_OUTCOMES,
    limits.LIMIT_REJECTION_STATS,
)
BREAKER_STATES: Final = ("CLOSED", "HALF_OPEN", "OPEN")
TOP_INCIDENTS: Final = 10
"""Rows in each incident table: enough for a post-mortem's first look, short enough to read."""

SPAN_SCHEMA: Final = {
    "source": pl.String,
    "state": pl.String,
    "began": pl.Datetime("us", "UTC"),
    "ended": pl.Datetime("us", "UTC"),
    "seconds": pl.Float64,
    "ongoing": pl.Boolean,
}
"""One band of a breaker's timeline: in ``state`` from ``began`` to ``ended`` (``ongoing``: still, at the
period's end)."""


@dataclass(frozen=True)
class Period:
    """The UTC days ``first`` through ``last``, both included (as ``risk-lake materialize`` counts them)."""

    first: date
    last: date

    def __post_init__(self) -> None:
        if self.first > self.last:
            raise ValueError(f"the period's start {self.first} is after its end {self.last}")

    @property
    def end(self) -> date:
        """The day after the last: the exclusive bound the lake's readers take."""
        return self.last + ONE_DAY

    @property
    def starts_at(self) -> datetime:
        return datetime.combine(self.first, time.min, UTC)

    @property
    def ends_at(self) -> datetime:
        return datetime.combine(self.end, time.min, UTC)

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def __str__(self) -> str:
        return self.first.isoformat() if self.first == self.last else f"{self.first} .. {self.last}"


def gold_days(lake: Lake) -> list[date]:
    """Every day any gold table holds, from the Delta logs."""
    return sorted({day for ref in GOLD_REFS for day in lake.days_present(ref)})


def resolve_period(lake: Lake, start: date | None, end: date | None, *, today: date | None = None) -> Period:
    """The period asked for; an open end falls back to gold's first or last day (else to the other end, or today).

    ``start`` after ``end`` is a ``ValueError``: an empty period is never what someone meant.
    """
    if start is not None and end is not None and start > end:
        raise ValueError(f"start {start} is after end {end}")
    built = gold_days(lake) if start is None or end is None else []
    fallback = today or datetime.now(UTC).date()
    first = start or (built[0] if built else end or fallback)
    last = end or (built[-1] if built else first)
    return Period(first, max(first, last))


@dataclass(frozen=True)
class FailedCheck:
    """A check whose latest evaluation over the period's days failed (see :mod:`.checks`)."""

    asset: str
    check: str
    severity: str
    days: str
    run_id: str
    description: str


@dataclass(frozen=True)
class Totals:
    """The header's counts for the period."""

    events: int
    quarantined: int
    transitions: int
    opens: int
    stop_lifetimes: int
    stops_triggered: int
    profit_locked: float
    rejections: int
    warnings: int

    @property
    def quarantine_rate(self) -> float | None:
        """Quarantined share of the rows the pipeline took in (silver + quarantine); ``None`` without rows."""
        seen = self.events + self.quarantined
        return self.quarantined / seen if seen else None


@dataclass(frozen=True)
class ReportData:
    """Every frame and figure of one report."""

    period: Period
    totals: Totals
    gaps: pl.DataFrame
    """``writer_id, first_missing, last_missing``: sequence numbers no table holds."""
    failed_checks: list[FailedCheck] | None
    """``None`` when no Dagster instance was available to ask (the page says so)."""
    transitions: pl.DataFrame
    spans: pl.DataFrame
    breakers: pl.DataFrame
    """Per breaker: ``opens``, ``invalid``, and ``seconds_<STATE>`` for each state."""
    stops: pl.DataFrame
    limits_daily: pl.DataFrame
    limits_total: pl.DataFrame

    @property
    def missing_events(self) -> int:
        if self.gaps.is_empty():
            return 0
        return int((self.gaps["last_missing"] - self.gaps["first_missing"] + 1).sum())

    def longest_open(self, n: int = TOP_INCIDENTS) -> pl.DataFrame:
        """The longest OPEN bands, longest first (a band still open at the period's end counts as far as it went)."""
        return self.spans.filter(pl.col("state") == "OPEN").sort(["seconds", "began"], descending=[True, False]).head(n)

    def largest_giveback(self, n: int = TOP_INCIDENTS) -> pl.DataFrame:
        """The stops that gave back most of their peak premium, largest first."""
        return (
            self.stops.filter(pl.col("giveback").is_not_null())
            .sort(["giveback", "execution_id"], descending=[True, False])
            .head(n)
        )

    def most_rejected(self, n: int = TOP_INCIDENTS) -> pl.DataFrame:
        """Limit types by rejections in the period, with the day each was rejected most."""
        worst_day = (
            self.limits_daily.sort(["rejection_count", DAY_COLUMN], descending=[True, False])
            .group_by("limit_type", maintain_order=True)
            .first()
            .select(
                "limit_type",
                pl.col(DAY_COLUMN).alias("worst_day"),
                pl.col("rejection_count").alias("worst_day_rejections"),
            )
        )
        return (
            self.limits_total.filter(pl.col("rejection_count") > 0)
            .join(worst_day, on="limit_type", how="left", nulls_equal=True)
            .head(n)
        )


def load(
    lake: Lake, period: Period, *, failed_checks: list[FailedCheck] | None = None, now: datetime | None = None
) -> ReportData:
    """Read and summarise the period; ``now`` caps a band still running today (default: the clock)."""
    first, end = period.first, period.end
    transitions = queries.circuit_breaker_history(lake, start=first, end=end)
    carried, _ = read_state_before(lake, cb.CIRCUIT_BREAKER_STATE, first, cb.STATE_SCHEMA)
    until = min(period.ends_at, now or datetime.now(UTC))
    spans = breaker_spans(transitions, carried, period.starts_at, max(until, period.starts_at))
    stop_rows = lake.read_days(stops.TRAILING_STOP_OUTCOMES, first, end, schema=stops.SCHEMA)
    limits_daily = lake.read_days(limits.LIMIT_REJECTION_STATS, first, end, schema=limits.SCHEMA).sort(
        DAY_COLUMN, "limit_type"
    )
    triggered = stop_rows.filter(pl.col("outcome") == stops.TRIGGERED)
    totals = Totals(
        events=sum(lake.rows_per_day(SILVER, first, end).values()),
        quarantined=sum(lake.rows_per_day(QUARANTINE, first, end).values()),
        transitions=transitions.height,
        opens=transitions.filter(pl.col("new_state") == "OPEN").height,
        stop_lifetimes=stop_rows.height,
        stops_triggered=triggered.height,
        profit_locked=float(triggered["profit_locked"].sum() or 0.0),
        rejections=int(limits_daily["rejection_count"].sum() or 0),
        warnings=int(limits_daily["warning_count"].sum() or 0),
    )
    return ReportData(
        period=period,
        totals=totals,
        gaps=period_gaps(lake, period),
        failed_checks=failed_checks,
        transitions=transitions,
        spans=spans,
        breakers=breaker_summary(transitions, spans),
        stops=stop_rows,
        limits_daily=limits_daily,
        limits_total=queries.rejections_by_limit_type(lake, first, end),
    )


def period_gaps(lake: Lake, period: Period) -> pl.DataFrame:
    """Sequence gaps of the writers seen in the period, silver and quarantine together, a day either side."""
    runs = [read_sequence_runs(lake, day) for day in days_between(period.first - ONE_DAY, period.end + ONE_DAY)]
    return sequence_gaps(pl.concat(runs, how="vertical_relaxed"), period.first, period.end)


def breaker_spans(transitions: pl.DataFrame, carried: pl.DataFrame, starts: datetime, ends: datetime) -> pl.DataFrame:
    """Each breaker's state bands over ``[starts, ends)``.

    The state at ``starts`` is the carried one (the breaker's last transition before the period); a breaker
    without one begins in its first transition's ``old_state``, from ``seconds_in_old_state`` before it
    (clipped to ``starts``), or -- its first transition ever -- only at that transition, since nothing says
    where it was before. The last band runs to ``ends`` and is marked ``ongoing``.

    A breaker that half-opens and fails its trial call at the same instant leaves a HALF_OPEN band of no
    length between two OPEN ones: the band is dropped and the OPEN ones are one, as the desk lived it --
    the venue stayed shut from the first open to the next real state.
    """
    known = {row["source"]: (row["last_state"], row["last_transition_at"]) for row in carried.iter_rows(named=True)}
    ordered = transitions.sort(["source", "timestamp"], nulls_last=True)
    by_source: dict[str, list[dict[str, object]]] = {}
    for row in ordered.iter_rows(named=True):
        by_source.setdefault(row["source"], []).append(row)
    rows: list[dict[str, object]] = []

    def band(source: str, state: str | None, began: datetime | None, ended: datetime, ongoing: bool) -> None:
        if state is None or began is None or ended <= began:
            return
        last = rows[-1] if rows else None
        if last is not None and (last["source"], last["state"], last["ended"]) == (source, state, began):
            began = last["began"]  # type: ignore[assignment]
            rows.pop()
        seconds = (ended - began).total_seconds()
        rows.append(dict(source=source, state=state, began=began, ended=ended, seconds=seconds, ongoing=ongoing))

    for source in sorted(set(by_source) | set(known)):
        events = by_source.get(source, [])
        state: str | None
        since: datetime | None
        if source in known:
            state, since = known[source][0], starts
        elif events and events[0]["seconds_in_old_state"] is not None:
            first = events[0]
            state = str(first["old_state"])
            since = max(starts, first["timestamp"] - timedelta(seconds=float(first["seconds_in_old_state"])))  # type: ignore[operator]
        else:
            state, since = None, None
        for event in events:
            at: datetime = event["timestamp"]  # type: ignore[assignment]
            band(source, state, since, at, ongoing=False)
            state, since = str(event["new_state"]), at
        band(source, state, since, ends, ongoing=True)
    return pl.DataFrame(rows, schema=SPAN_SCHEMA, orient="row") if rows else pl.DataFrame(schema=SPAN_SCHEMA)


def breaker_summary(transitions: pl.DataFrame, spans: pl.DataFrame) -> pl.DataFrame:
    """Per breaker: opens and invalid transitions in the period, and seconds spent in each state."""
    counts = transitions.group_by("source").agg(
        (pl.col("new_state") == "OPEN").sum().cast(pl.Int64).alias("opens"),
        (~pl.col("is_valid")).sum().cast(pl.Int64).alias("invalid"),
    )
    seconds = spans.group_by("source").agg(
        *(
            pl.col("seconds").filter(pl.col("state") == state).sum().alias(f"seconds_{state}")
            for state in BREAKER_STATES
        )
    )
    sources = pl.concat([transitions.select("source"), spans.select("source")]).unique()
    return (
        sources.join(counts, on="source", how="left", nulls_equal=True)
        .join(seconds, on="source", how="left", nulls_equal=True)
        .with_columns(pl.col("opens", "invalid").fill_null(0), pl.col("^seconds_.*$").fill_null(0.0))
        .sort("source", nulls_last=True)
    )
