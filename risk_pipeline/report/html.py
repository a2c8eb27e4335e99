"""One self-contained HTML page from :mod:`.data`'s figures and :mod:`.charts`' figures.

The page embeds plotly.js in its ``<head>`` once and each chart's data in a ``<script>`` beside its ``<div>``,
so the file opens from disk with no network. Every string that reaches the page from the lake -- a
breaker's name, a symbol, a limit type, a check's description -- goes through :func:`html.escape` in
tables and text, and through plotly's JSON encoder (which writes ``<``, ``>`` and ``/`` as ``\\u`` escapes)
inside scripts, so no value can close a tag or open a script.

The page declares how many charts it drew (``<meta name="risk-report-charts">`` and the ``<body>``'s
``data-chart-count``), and every chart sits in a ``<figure class="chart" data-chart=...>``: a reader in a
browser can check that each one rendered.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Final

import plotly.io as pio
import polars as pl
from plotly.offline import get_plotlyjs

from risk_pipeline.defs.gold import trailing_stop_outcomes as stops
from risk_pipeline.report.charts import Chart
from risk_pipeline.report.data import BREAKER_STATES, ReportData
from risk_pipeline.report_text import duration as text_duration

CHART_COUNT_META: Final = "risk-report-charts"
MISSING: Final = "\N{EN DASH}"
"""What a table cell shows for a value that is not known."""
MAX_GAP_ROWS: Final = 20

_PLOT_CONFIG: Final = {"displaylogo": False, "responsive": True}
_STYLE: Final = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1200px;
       padding: 1rem 2rem 3rem; color: #212121; background: #fafafa; }
h1 { margin-bottom: .2rem; } h2 { border-bottom: 2px solid #e0e0e0; padding-bottom: .2rem; margin-top: 2.2rem; }
.sub { color: #616161; margin-top: 0; }
.cards { display: flex; flex-wrap: wrap; gap: .8rem; margin: 1rem 0; }
.card { background: #fff; border: 1px solid #e0e0e0; border-radius: 6px; padding: .6rem .9rem; min-width: 9rem; }
.card .value { font-size: 1.5rem; font-weight: 600; } .card .label { color: #616161; font-size: .85rem; }
.card.bad { border-color: #c62828; } .card.bad .value { color: #c62828; }
figure.chart { background: #fff; border: 1px solid #e0e0e0; border-radius: 6px; margin: 1rem 0; padding: .5rem; }
figure.chart figcaption { font-weight: 600; padding: .2rem .4rem; }
table { border-collapse: collapse; background: #fff; margin: .6rem 0 1.2rem; font-size: .9rem; }
th, td { border: 1px solid #e0e0e0; padding: .3rem .6rem; text-align: left; } td.num { text-align: right; }
th { background: #f5f5f5; }
.no-data { color: #757575; font-style: italic; background: #fff; border: 1px dashed #bdbdbd; padding: .8rem; }
"""


def esc(value: object) -> str:
    """Any value as HTML text: ``None`` as a dash, everything else escaped (quotes too)."""
    return MISSING if value is None else html.escape(str(value), quote=True)


def duration(seconds: float | None) -> str:
    """A duration as the command line shows it (:func:`risk_pipeline.report_text.duration`), a dash if unknown."""
    return text_duration(seconds, MISSING)


def number(value: float | int | None, digits: int = 2) -> str:
    if value is None:
        return MISSING
    return f"{value:,}" if isinstance(value, int) else f"{value:,.{digits}f}"


def percent(value: float | None) -> str:
    return MISSING if value is None else f"{value:.2%}"


def when(value: datetime | None) -> str:
    return MISSING if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], *, numeric: Sequence[int] = ()) -> str:
    """An HTML table; every cell escaped, the ``numeric`` columns right-aligned."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(f"<td{' class=num' if i in numeric else ''}>{esc(c)}</td>" for i, c in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def no_data(what: str, data: ReportData, *, attribute: str = "") -> str:
    return f'<p class="no-data"{attribute}>no data for {esc(what)} in {esc(data.period)}</p>'


def chart_html(chart: Chart) -> str:
    """The chart's container: its figure drawn by plotly.js, or its "no data" sentence."""
    if chart.figure is None:
        return f'<p class="no-data" data-empty-chart="{esc(chart.chart_id)}">{esc(chart.empty)}</p>'
    height = chart.figure.layout.height or 380
    plot = pio.to_html(
        chart.figure,
        include_plotlyjs=False,
        full_html=False,
        div_id=chart.chart_id,
        config=_PLOT_CONFIG,
        default_height=f"{height}px",
        default_width="100%",
    )
    return (
        f'<figure class="chart" data-chart="{esc(chart.chart_id)}">'
        f"<figcaption>{esc(chart.title)}</figcaption>{plot}</figure>"
    )


def _card(label: str, value: str, *, bad: bool = False) -> str:
    value_html = f'<div class="value">{esc(value)}</div><div class="label">{esc(label)}</div>'
    return f'<div class="card{" bad" if bad else ""}">{value_html}</div>'


def header(data: ReportData, *, lake: str, generated: datetime) -> str:
    t = data.totals
    failed = data.failed_checks
    cards = [
        _card("events in silver", number(t.events)),
        _card("quarantine rate", percent(t.quarantine_rate), bad=bool(t.quarantined)),
        _card("failed checks", "unknown" if failed is None else number(len(failed)), bad=bool(failed)),
        _card("sequence gaps", f"{data.gaps.height:,} ({data.missing_events:,} events)", bad=data.gaps.height > 0),
        _card("breaker opens", number(t.opens)),
        _card("stops begun", number(t.stop_lifetimes)),
        _card("stops triggered", number(t.stops_triggered)),
        _card("profit locked", number(t.profit_locked)),
        _card("limit rejections", number(t.rejections)),
        _card("limit warnings", number(t.warnings)),
    ]
    return (
        f"<header><h1>Risk history: {esc(data.period)}</h1>"
        f'<p class="sub">{data.period.days} UTC day(s) · lake {esc(lake)} · generated {esc(when(generated))}</p>'
        f'<div class="cards" id="totals">{"".join(cards)}</div></header>'
    )


def quality(data: ReportData) -> str:
    t = data.totals
    parts = [
        '<section id="quality"><h2>Data quality</h2>',
        f"<p>{t.quarantined:,} of {t.events + t.quarantined:,} rows quarantined "
        f"({esc(percent(t.quarantine_rate))}).</p>",
    ]
    if data.failed_checks is None:
        parts.append("<p>Failed checks: unknown (no Dagster instance was available to ask).</p>")
    elif not data.failed_checks:
        parts.append("<p>Failed checks: none (the latest evaluation of every check over these days passed).</p>")
    else:
        parts.append("<h3>Failed checks</h3>")
        parts.append(
            table(
                ["asset", "check", "severity", "days", "run"],
                ((f.asset, f.check, f.severity, f.days, f.run_id[:8]) for f in data.failed_checks),
            )
        )
    if data.gaps.is_empty():
        parts.append("<p>Sequence gaps: none (every writer's sequence numbers are contiguous).</p>")
    else:
        parts.append(
            f"<h3>Sequence gaps: {data.gaps.height:,} ({data.missing_events:,} events never reached the lake)</h3>"
        )
        rows = data.gaps.head(MAX_GAP_ROWS).iter_rows()
        parts.append(
            table(
                ["writer", "first missing", "last missing", "events"],
                ((w, a, b, b - a + 1) for w, a, b in rows),
                numeric=(1, 2, 3),
            )
        )
    parts.append("</section>")
    return "".join(parts)


def breakers(data: ReportData, timeline: Chart) -> str:
    parts = ['<section id="breakers"><h2>Circuit breakers</h2>', chart_html(timeline)]
    if data.breakers.is_empty():
        parts.append(no_data("circuit-breaker transitions", data))
    else:
        rows = (
            (r["source"], r["opens"], r["invalid"], *(duration(r[f"seconds_{s}"]) for s in BREAKER_STATES))
            for r in data.breakers.iter_rows(named=True)
        )
        parts.append(
            table(
                ["breaker", "opens", "invalid transitions", *(f"time {s}" for s in BREAKER_STATES)],
                rows,
                numeric=(1, 2, 3, 4, 5),
            )
        )
    parts.append("</section>")
    return "".join(parts)


def trailing_stops(data: ReportData, charts: Sequence[Chart]) -> str:
    parts = ['<section id="stops"><h2>Trailing stops</h2>', *(chart_html(c) for c in charts)]
    if data.stops.is_empty():
        parts.append(no_data("trailing stops", data))
    else:
        underlying = pl.coalesce(pl.col("underlying"), pl.col("symbol"), pl.lit("(unknown)"))
        triggered = pl.col("outcome") == stops.TRIGGERED
        summary = (
            data.stops.group_by(underlying.alias("u"))
            .agg(
                pl.len().alias("n"),
                triggered.sum().alias("t"),
                pl.col("profit_locked").filter(triggered).sum().alias("locked"),
                pl.col("profit_locked").filter(triggered).mean().alias("mean_locked"),
                pl.col("giveback").filter(triggered).mean().alias("mean_giveback"),
            )
            .sort("u")
        )
        rows = (
            (u, n, t, percent(t / n if n else None), number(locked), number(mean), number(give))
            for u, n, t, locked, mean, give in summary.iter_rows()
        )
        headers = ["underlying", "stops", "triggered", "trigger rate", "profit locked", "mean locked", "mean giveback"]
        parts.append(table(headers, rows, numeric=(1, 2, 3, 4, 5, 6)))
    parts.append("</section>")
    return "".join(parts)


def limits(data: ReportData, charts: Sequence[Chart]) -> str:
    return '<section id="limits"><h2>Portfolio limits</h2>' + "".join(chart_html(c) for c in charts) + "</section>"


def incidents(data: ReportData) -> str:
    parts = ['<section id="incidents"><h2>Top incidents</h2><h3>Longest OPEN</h3>']
    longest = data.longest_open()
    if longest.is_empty():
        parts.append(no_data("OPEN breakers", data, attribute=' data-incidents="longest-open"'))
    else:
        rows = (
            (r["source"], when(r["began"]), "still open" if r["ongoing"] else when(r["ended"]), duration(r["seconds"]))
            for r in longest.iter_rows(named=True)
        )
        parts.append(table(["breaker", "opened (or period start)", "until", "time OPEN"], rows, numeric=(3,)))
    parts.append("<h3>Largest giveback</h3>")
    giveback = data.largest_giveback()
    if giveback.is_empty():
        parts.append(no_data("stops with a giveback", data, attribute=' data-incidents="largest-giveback"'))
    else:
        rows = (
            (
                r["execution_id"],
                r["underlying"] or r["symbol"],
                r["outcome"],
                number(r["entry_premium"]),
                number(r["highest_premium"]),
                number(r["exit_premium"]),
                number(r["giveback"]),
                number(r["profit_locked"]),
                when(r["triggered_at"]),
            )
            for r in giveback.iter_rows(named=True)
        )
        headers = [
            "execution",
            "underlying",
            "outcome",
            "entry",
            "highest",
            "exit",
            "giveback",
            "profit locked",
            "triggered",
        ]
        parts.append(table(headers, rows, numeric=(3, 4, 5, 6, 7)))
    parts.append("<h3>Most-rejected limits</h3>")
    rejected = data.most_rejected()
    if rejected.is_empty():
        parts.append(no_data("limit rejections", data, attribute=' data-incidents="most-rejected"'))
    else:
        rows = (
            (
                r["limit_type"],
                r["rejection_count"],
                r["warning_count"],
                number(r["avg_current_value"]),
                number(r["avg_limit_value"]),
                number(r["max_utilization"], 3),
                r["worst_day"],
                r["worst_day_rejections"],
            )
            for r in rejected.iter_rows(named=True)
        )
        headers = [
            "limit type",
            "rejections",
            "warnings",
            "avg value",
            "avg limit",
            "max utilisation",
            "worst day",
            "that day",
        ]
        parts.append(table(headers, rows, numeric=(1, 2, 3, 4, 5, 7)))
    parts.append("</section>")
    return "".join(parts)


def page(data: ReportData, charts: Sequence[Chart], *, lake: str, generated: datetime) -> str:
    """The whole document; ``charts`` in :func:`.charts.all_charts` order."""
    timeline, outcomes, profit, by_underlying, per_day, utilisation = charts
    drawn = sum(c.figure is not None for c in charts)
    body = "".join(
        [
            header(data, lake=lake, generated=generated),
            quality(data),
            breakers(data, timeline),
            trailing_stops(data, [outcomes, profit, by_underlying]),
            limits(data, [per_day, utilisation]),
            incidents(data),
        ]
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="{CHART_COUNT_META}" content="{drawn}">'
        f"<title>Risk history {esc(data.period)}</title><style>{_STYLE}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script></head>'
        f'<body data-chart-count="{drawn}">{body}</body></html>\n'
    )
