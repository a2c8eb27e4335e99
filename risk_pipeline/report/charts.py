"""The dashboard's figures, built with plotly's graph objects from :mod:`.data`'s frames.

Why plotly: its Python package carries plotly.js (``plotly.offline.get_plotlyjs()``), so one HTML file holds
the library and every chart and opens offline, with no CDN -- what a post-mortem on a locked-down desk
machine needs. It draws SVG (the state timeline is horizontal bars on a date axis, as ``px.timeline`` does),
gives hover, zoom and legend toggling for free, and ``graph_objects`` takes plain lists, so neither pandas
nor numpy is needed here. The price is size: plotly.js is ~4.8 MB, so every report is about 5 MB whatever
its period (the demo's three days of 20,000 events: 5.0 MB). Nothing here uses WebGL (``scattergl``),
which a browser without a GPU may refuse to draw.

Each chart is a :class:`Chart`: an id, a title, and a figure -- or, when the period has nothing to draw,
no figure and the sentence the page shows instead ("no data for ...").
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

import plotly.graph_objects as go
import polars as pl

from risk_pipeline.defs.gold import trailing_stop_outcomes as stops
from risk_pipeline.lake import DAY_COLUMN
from risk_pipeline.report.data import BREAKER_STATES, ReportData

STATE_COLOURS: Final = {"CLOSED": "#2e7d32", "HALF_OPEN": "#f9a825", "OPEN": "#c62828"}
OUTCOME_COLOURS: Final = {stops.TRIGGERED: "#1565c0", stops.REMOVED: "#78909c", stops.OPEN: "#ffb300"}
TEMPLATE: Final = "plotly_white"


@dataclass(frozen=True)
class Chart:
    """One chart of the page: drawn from ``figure``, or ``empty`` said instead when there is nothing to draw."""

    chart_id: str
    title: str
    figure: go.Figure | None
    empty: str = ""


def labels(values: Iterable[object]) -> list[str]:
    """Names from the lake as plotly text: plotly reads ``<b>``, ``<br>`` and entities in labels as markup, so a
    name is entity-escaped to show as written (``orders.<b>`` stays ``orders.<b>``, not a bold ``orders.``)."""
    return [html.escape(str(value), quote=False) for value in values]


def _layout(figure: go.Figure, *, height: int = 380, **layout: object) -> go.Figure:
    figure.update_layout(template=TEMPLATE, height=height, margin={"l": 60, "r": 20, "t": 30, "b": 50}, **layout)
    return figure


def _underlying() -> pl.Expr:
    """A stop's underlying; version-1 stops have only their symbol."""
    return pl.coalesce(pl.col("underlying"), pl.col("symbol"), pl.lit("(unknown)")).alias("underlying")


def breaker_timeline(data: ReportData) -> Chart:
    """CLOSED / HALF_OPEN / OPEN bands per breaker over the period (one trace per state)."""
    title = "Circuit breaker states over time"
    spans = data.spans
    if spans.is_empty():
        return Chart("breaker-timeline", title, None, f"no data for circuit-breaker states in {data.period}")
    figure = go.Figure()
    for state in BREAKER_STATES:
        part = spans.filter(pl.col("state") == state)
        if part.is_empty():
            continue
        figure.add_trace(
            go.Bar(
                name=state,
                orientation="h",
                y=labels(part["source"]),
                base=[t.isoformat() for t in part["began"].to_list()],
                x=[s * 1000 for s in part["seconds"].to_list()],  # a date axis measures bar lengths in ms
                marker_color=STATE_COLOURS[state],
                customdata=[
                    [b.isoformat(), e.isoformat(), s / 60]
                    for b, e, s in part.select("began", "ended", "seconds").iter_rows()
                ],
                hovertemplate="%{y}: "
                + state
                + "<br>%{customdata[0]} → %{customdata[1]}<br>%{customdata[2]:.1f} min<extra></extra>",
            )
        )
    sources = spans["source"].unique().to_list()
    return Chart(
        "breaker-timeline",
        title,
        _layout(
            figure,
            height=max(220, 60 + 45 * len(sources)),
            barmode="overlay",
            xaxis={"type": "date", "range": [data.period.starts_at.isoformat(), data.period.ends_at.isoformat()]},
            yaxis={"categoryorder": "category descending", "type": "category"},
            legend={"orientation": "h", "y": 1.08},
        ),
    )


def stop_outcomes(data: ReportData) -> Chart:
    """Trailing-stop lifetimes by underlying, stacked by outcome."""
    title = "Trailing-stop outcomes by underlying"
    if data.stops.is_empty():
        return Chart("stop-outcomes", title, None, f"no data for trailing stops begun in {data.period}")
    counts = data.stops.select(_underlying(), "outcome").group_by("underlying", "outcome").len().sort("underlying")
    figure = go.Figure()
    for outcome, colour in OUTCOME_COLOURS.items():
        part = counts.filter(pl.col("outcome") == outcome)
        if part.height:
            figure.add_trace(
                go.Bar(name=outcome, x=labels(part["underlying"]), y=part["len"].to_list(), marker_color=colour)
            )
    return Chart(
        "stop-outcomes",
        title,
        _layout(figure, barmode="stack", yaxis_title="stops", legend={"orientation": "h", "y": 1.1}),
    )


def stop_profit_distribution(data: ReportData) -> Chart:
    """Histograms of profit locked and of giveback over the period's triggered stops."""
    title = "Profit locked and giveback per triggered stop (premium points)"
    triggered = data.stops.filter(pl.col("outcome") == stops.TRIGGERED)
    locked = triggered["profit_locked"].drop_nulls().to_list()
    giveback = triggered["giveback"].drop_nulls().to_list()
    if not locked and not giveback:
        return Chart("stop-profit", title, None, f"no data for triggered trailing stops in {data.period}")
    figure = go.Figure()
    figure.add_trace(go.Histogram(name="profit locked", x=locked, opacity=0.7, marker_color="#1565c0"))
    figure.add_trace(go.Histogram(name="giveback", x=giveback, opacity=0.7, marker_color="#ef6c00"))
    return Chart(
        "stop-profit", title, _layout(figure, barmode="overlay", xaxis_title="premium points", yaxis_title="stops")
    )


def stop_profit_by_underlying(data: ReportData) -> Chart:
    """Profit locked per triggered stop, one box per underlying."""
    title = "Profit locked by underlying"
    triggered = data.stops.filter(pl.col("outcome") == stops.TRIGGERED, pl.col("profit_locked").is_not_null())
    if triggered.is_empty():
        return Chart("stop-profit-by-underlying", title, None, f"no data for triggered trailing stops in {data.period}")
    frame = triggered.select(_underlying(), "profit_locked").sort("underlying")
    figure = go.Figure()
    for (name,), part in frame.group_by("underlying", maintain_order=True):
        figure.add_trace(go.Box(name=labels([name])[0], y=part["profit_locked"].to_list(), boxmean=True))
    return Chart("stop-profit-by-underlying", title, _layout(figure, showlegend=False, yaxis_title="profit locked"))


def rejections_per_day(data: ReportData) -> Chart:
    """Rejections per UTC day, stacked by limit type."""
    title = "Limit rejections per day by limit type"
    daily = data.limits_daily.filter(pl.col("rejection_count") > 0)
    if daily.is_empty():
        return Chart("rejections-per-day", title, None, f"no data for limit rejections in {data.period}")
    figure = go.Figure()
    for (limit_type,), part in daily.sort("limit_type", DAY_COLUMN).group_by("limit_type", maintain_order=True):
        figure.add_trace(
            go.Bar(
                name=labels([limit_type])[0],
                x=[d.isoformat() for d in part[DAY_COLUMN]],
                y=part["rejection_count"].to_list(),
            )
        )
    return Chart(
        "rejections-per-day",
        title,
        _layout(figure, barmode="stack", xaxis={"type": "category"}, yaxis_title="rejections"),
    )


def utilisation_per_day(data: ReportData) -> Chart:
    """The worst ``|current| / |limit|`` per day and limit type; 1.0 is the limit itself."""
    title = "Worst limit utilisation per day (1.0 = at the limit)"
    daily = data.limits_daily.filter(pl.col("max_utilization").is_not_null())
    if daily.is_empty():
        return Chart("utilisation-per-day", title, None, f"no data for limit utilisation in {data.period}")
    figure = go.Figure()
    for (limit_type,), part in daily.sort("limit_type", DAY_COLUMN).group_by("limit_type", maintain_order=True):
        figure.add_trace(
            go.Scatter(
                name=labels([limit_type])[0],
                mode="lines+markers",
                x=[d.isoformat() for d in part[DAY_COLUMN]],
                y=part["max_utilization"].to_list(),
            )
        )
    figure.add_hline(y=1.0, line_dash="dash", line_color="#c62828")
    return Chart(
        "utilisation-per-day", title, _layout(figure, xaxis={"type": "category"}, yaxis_title="max utilisation")
    )


def all_charts(data: ReportData) -> Sequence[Chart]:
    """The page's charts in page order."""
    return (
        breaker_timeline(data),
        stop_outcomes(data),
        stop_profit_distribution(data),
        stop_profit_by_underlying(data),
        rejections_per_day(data),
        utilisation_per_day(data),
    )
