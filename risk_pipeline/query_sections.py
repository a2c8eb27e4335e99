"""The analyst's view of gold: the sections ``risk-lake queries`` prints, for a set of filters.

The query API (:mod:`risk_pipeline.queries`) answers the design guide's questions as frames; this module
picks the summaries an analyst reads first (per breaker, trailing stops, limit rejections) and the detail
rows after them, with the columns renamed for people. :mod:`risk_pipeline.report_text` lays them out as a
table, CSV or JSON; the command line only parses arguments.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Any, Final

import polars as pl

from risk_pipeline import queries
from risk_pipeline.lake import Lake
from risk_pipeline.report_text import Section, duration

SECTIONS: Final = ("breakers", "stops", "stops_by_underlying", "rejections", "transitions", "triggered_stops")
"""The sections, in order (``--table`` picks one): summaries first, then the detail rows."""


@dataclass(frozen=True)
class QueryFilters:
    """What an analyst narrowed the queries to; ``start`` and ``end`` are UTC days, both included."""

    start: date | None = None
    end: date | None = None
    source: str | None = None
    execution_id: str | None = None
    symbol: str | None = None

    def describe(self) -> list[str]:
        """The lines saying which days and filters a table-format report covers."""
        if self.start is None and self.end is None:
            days = "every day the lake holds"
        else:
            first = self.start.isoformat() if self.start else "the first day"
            days = f"{first} .. {self.end.isoformat() if self.end else 'the last day'} (inclusive)"
        lines = [f"UTC days: {days}"]
        named = (("breaker", self.source), ("stop", self.execution_id), ("underlying", self.symbol))
        narrowed = [f"{name} {value}" for name, value in named if value]
        if narrowed:
            lines.append(f"only {', '.join(narrowed)}")
        return lines

    def as_json(self) -> dict[str, Any]:
        """The filters as JSON values (days as ISO dates)."""
        return {k: v.isoformat() if isinstance(v, date) else v for k, v in asdict(self).items()}


def query_sections(lake: Lake, filters: QueryFilters) -> list[Section]:
    """The sections for ``filters``, in :data:`SECTIONS` order: summaries first, then the detail rows."""
    start, end = filters.start, filters.end + timedelta(days=1) if filters.end else None
    history = queries.circuit_breaker_history(lake, source=filters.source, start=start, end=end)
    stops = {"underlying": filters.symbol, "start": start, "end": end}
    outcomes = queries.trailing_stop_outcomes(lake, filters.execution_id, **stops)
    triggered = queries.trailing_stop_profit(lake, filters.execution_id, **stops)
    rejections = queries.rejections_by_limit_type(lake, start, end)
    breakers = queries.breaker_summary(history)
    overall = queries.stop_summary(outcomes)
    by_underlying = queries.stop_summary(outcomes, by="underlying")
    col = pl.col
    sections = [
        Section(
            "breakers",
            "Circuit breakers: opens and time spent OPEN",
            breakers,
            breakers.select(
                col("source").alias("breaker"),
                col("opens"),
                _durations("seconds_open").alias("time OPEN"),
                _durations("longest_open_seconds").alias("longest OPEN"),
                col("transitions"),
                col("invalid"),
            ),
        ),
        Section("stops", "Trailing stops", overall, _stops_text(overall.row(0, named=True))),
        Section(
            "stops_by_underlying",
            "Trailing stops by underlying (profit locked and giveback over triggered stops)",
            by_underlying,
            by_underlying.select(
                col("underlying"),
                col("stops"),
                col("triggered"),
                (col("trigger_rate") * 100).round(1).alias("trig %"),
                col("profit_locked_total").alias("locked"),
                col("profit_locked_mean").alias("mean"),
                col("giveback_total").alias("giveback"),
                col("giveback_mean").alias("mean gb"),
            ),
        ),
        Section(
            "rejections",
            "Portfolio limit rejections by limit type",
            rejections,
            rejections.select(
                col("limit_type").alias("limit type"),
                col("rejection_count").alias("rejected"),
                col("warning_count").alias("warned"),
                col("avg_current_value").alias("avg value"),
                col("avg_limit_value").alias("avg limit"),
                col("max_utilization").alias("worst util"),
            ),
        ),
        Section(
            "transitions",
            "Circuit breaker transitions",
            history,
            history.select(
                col("timestamp").alias("time (UTC)"),
                col("source").alias("breaker"),
                col("old_state").alias("from"),
                col("new_state").alias("to"),
                _durations("seconds_in_old_state").alias("after"),
                pl.when(col("is_valid")).then(pl.lit("")).otherwise(pl.lit("NO")).alias("legal"),
            ),
            detail=True,
        ),
        Section(
            "triggered_stops",
            "Triggered trailing stops",
            triggered,
            triggered.select(
                col("triggered_at").alias("triggered (UTC)"),
                col("execution_id").alias("stop"),
                col("symbol"),
                col("entry_premium").alias("entry"),
                col("profit_locked").alias("locked"),
                col("giveback"),
            ),
            detail=True,
        ),
    ]
    return sections


def _durations(column: str) -> pl.Expr:
    return pl.col(column).map_elements(duration, return_dtype=pl.String).fill_null("-")


def _stops_text(stops: dict[str, Any]) -> str:
    rate = "-" if stops["trigger_rate"] is None else f"{stops['trigger_rate']:.1%}"
    return "\n".join(
        [
            f" {stops['stops']:,} stops: {stops['triggered']:,} triggered, {stops['removed']:,} removed, "
            f"{stops['open']:,} open",
            f" trigger rate {rate} (of the stops that ended)",
            f" profit locked: total {stops['profit_locked_total']:,.2f}, mean {_number(stops['profit_locked_mean'])}",
            f" giveback from the peak: total {stops['giveback_total']:,.2f}, mean {_number(stops['giveback_mean'])}",
        ]
    )


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"
