"""A gold materialisation's Markdown preview: the headline numbers of the run's days and a few rows.

What an operator looking at the asset in the Dagster UI wants before opening a notebook: did the days
just built look like a normal day (how many opens, what trigger rate, which limit rejected most)? Built
from the query API over the run's days only (a few partitions, already written), shaped for people as
the CLI shapes them (:func:`risk_pipeline.report_text.for_people`: short ids, one-line UTC timestamps).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Final

import dagster as dg
import polars as pl

from risk_pipeline import queries
from risk_pipeline.defs.gold.circuit_breaker_transitions import CIRCUIT_BREAKER_TRANSITIONS
from risk_pipeline.defs.gold.limit_rejection_stats import LIMIT_REJECTION_STATS
from risk_pipeline.defs.gold.trailing_stop_outcomes import TRAILING_STOP_OUTCOMES
from risk_pipeline.lake import Lake, TableRef
from risk_pipeline.report_text import duration, for_people

ROWS: Final = 5
"""Rows shown in a preview."""


def markdown_table(frame: pl.DataFrame) -> str:
    """``frame`` as a Markdown table (polars' own formatter)."""
    if frame.is_empty():
        return "_no rows_"
    with pl.Config(
        tbl_formatting="MARKDOWN",
        tbl_hide_column_data_types=True,
        tbl_hide_dataframe_shape=True,
        tbl_rows=-1,
        tbl_cols=-1,
        fmt_str_lengths=40,
    ):
        return str(for_people(frame))


def _period(start: date, end: date) -> str:
    last = end - timedelta(days=1)
    return f"{start}" if start == last else f"{start} .. {last}"


def _number(value: float | None, spec: str = ",.2f") -> str:
    return "-" if value is None else format(value, spec)


def _transitions(lake: Lake, start: date, end: date) -> str:
    history = queries.circuit_breaker_history(lake, start=start, end=end)
    summary = queries.breaker_summary(history)
    opens, seconds = int(summary["opens"].sum()), summary["seconds_open"].sum()
    invalid = int(summary["invalid"].sum())
    headline = (
        f"**{history.height:,} transitions** of {summary.height} breaker(s) · **opens** {opens:,} · "
        f"**time OPEN** {duration(seconds)} · **illegal** {invalid:,}"
    )
    rows = history.head(ROWS).select(
        pl.col("timestamp").alias("time (UTC)"),
        pl.col("source").alias("breaker"),
        pl.col("old_state").alias("from"),
        pl.col("new_state").alias("to"),
        pl.col("is_valid").alias("legal"),
    )
    return f"{headline}\n\n{markdown_table(rows)}"


def _stops(lake: Lake, start: date, end: date) -> str:
    outcomes = queries.trailing_stop_outcomes(lake, start=start, end=end)
    s = queries.stop_summary(outcomes).row(0, named=True)
    headline = (
        f"**{s['stops']:,} stops** · **triggered** {s['triggered']:,} · "
        f"**trigger rate** {_number(s['trigger_rate'], '.1%')} · "
        f"**total profit locked** {_number(s['profit_locked_total'])} (mean {_number(s['profit_locked_mean'])}) · "
        f"**giveback** {_number(s['giveback_total'])}"
    )
    triggered = queries.trailing_stop_profit(lake, start=start, end=end)
    rows = triggered.head(ROWS).select(
        pl.col("triggered_at").alias("triggered (UTC)"),
        pl.col("execution_id").alias("stop"),
        pl.col("symbol"),
        pl.col("entry_premium").alias("entry"),
        pl.col("profit_locked").alias("locked"),
        pl.col("giveback"),
    )
    return f"{headline}\n\n{markdown_table(rows)}"


def _rejections(lake: Lake, start: date, end: date) -> str:
    by_type = queries.rejections_by_limit_type(lake, start, end)
    worst = by_type["max_utilization"].max() if by_type.height else None
    headline = (
        f"**{int(by_type['rejection_count'].sum()):,} rejections** · **warnings** "
        f"{int(by_type['warning_count'].sum()):,} · **worst utilisation** {_number(worst)}"  # type: ignore[arg-type]
    )
    rows = by_type.head(ROWS).select(
        pl.col("limit_type").alias("limit type"),
        pl.col("rejection_count").alias("rejected"),
        pl.col("warning_count").alias("warned"),
        pl.col("max_utilization").alias("worst util"),
    )
    return f"{headline}\n\n{markdown_table(rows)}"


_BUILDERS: Final[dict[TableRef, Callable[[Lake, date, date], str]]] = {
    CIRCUIT_BREAKER_TRANSITIONS: _transitions,
    TRAILING_STOP_OUTCOMES: _stops,
    LIMIT_REJECTION_STATS: _rejections,
}


def preview(lake: Lake, ref: TableRef, start: date, end: date) -> dg.MarkdownMetadataValue:
    """The preview of gold table ``ref`` for the run's days ``[start, end)``."""
    body = _BUILDERS[ref](lake, start, end)
    return dg.MetadataValue.md(f"{ref}, UTC days {_period(start, end)}\n\n{body}")
