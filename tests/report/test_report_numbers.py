"""The dashboard's figures against the same figures worked out here, from the Delta tables themselves.

Each expected value is computed in the test from ``pl.read_delta`` of the gold (or silver) table, not
through the report's code or the query API, then found both in :class:`ReportData` and on the page.
"""

from __future__ import annotations

import html
import os
import re
import stat
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from report_lake import EVIL_BREAKER, FIRST, GAP, LAST, WRITER, BuiltLake

from risk_pipeline.report import ReportSummary, build_report
from risk_pipeline.report.data import Period
from risk_pipeline.report.html import CHART_COUNT_META, duration

START = datetime(2026, 3, 2, tzinfo=UTC)
END = datetime(2026, 3, 5, tzinfo=UTC)


def gold(built: BuiltLake, name: str) -> pl.DataFrame:
    frame = pl.read_delta(str(built.root / "gold" / name))
    return frame.filter(pl.col("event_date").is_between(FIRST, LAST))


@pytest.fixture(scope="module")
def report(built: BuiltLake, tmp_path_factory: pytest.TempPathFactory) -> tuple[ReportSummary, str]:
    out = tmp_path_factory.mktemp("report") / "risk_history.html"
    summary = build_report(built.lake, FIRST, LAST, out, instance=built.instance)
    return summary, out.read_text(encoding="utf-8")


def card(page: str, label: str) -> str:
    """The value of the header card labelled ``label``."""
    match = re.search(r'<div class="value">([^<]*)</div><div class="label">' + re.escape(label) + "</div>", page)
    assert match, label
    return html.unescape(match.group(1))


def table_rows(page: str, after: str) -> list[list[str]]:
    """The body rows of the first table after the text ``after``, cells unescaped."""
    start = page.index(after)
    body = page[page.index("<tbody>", start) : page.index("</tbody>", start)]
    return [
        [html.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row)]
        for row in re.findall(r"<tr>(.*?)</tr>", body)
    ]


def test_header_totals_match_the_tables(built: BuiltLake, report: tuple[ReportSummary, str]) -> None:
    summary, page = report
    transitions = gold(built, "circuit_breaker_transitions")
    stops = gold(built, "trailing_stop_outcomes")
    limits = gold(built, "limit_rejection_stats")
    silver = pl.read_delta(str(built.root / "silver" / "risk_events")).filter(
        pl.col("event_date").is_between(FIRST, LAST)
    )
    quarantined = pl.read_delta(str(built.root / "silver" / "risk_events_quarantine")).height

    triggered = stops.filter(pl.col("outcome") == "triggered")
    expected = {
        "events": silver.height,
        "quarantined": quarantined,
        "breaker_opens": transitions.filter(pl.col("new_state") == "OPEN").height,
        "stops_begun": stops.height,
        "stops_triggered": triggered.height,
        "profit_locked": round(triggered["profit_locked"].sum(), 2),
        "limit_rejections": int(limits["rejection_count"].sum()),
        "sequence_gaps": 1,
        "missing_events": GAP[1] - GAP[0] + 1,
        "failed_checks": 1,  # no_sequence_gaps, from the instance the build ran in
    }
    headline = summary.headline()
    assert {k: headline[k] for k in expected} == expected
    assert quarantined == 1 and headline["quarantine_rate"] == pytest.approx(1 / (silver.height + 1))

    assert card(page, "events in silver") == f"{silver.height:,}"
    assert card(page, "breaker opens") == str(expected["breaker_opens"])
    assert card(page, "stops triggered") == f"{triggered.height:,}"
    assert card(page, "profit locked") == f"{triggered['profit_locked'].sum():,.2f}"
    assert card(page, "limit rejections") == str(expected["limit_rejections"])
    assert card(page, "failed checks") == "1"
    assert card(page, "sequence gaps") == "1 (3 events)"
    assert table_rows(page, "Sequence gaps:")[0] == [WRITER, str(GAP[0]), str(GAP[1]), "3"]
    assert table_rows(page, "<h3>Failed checks</h3>")[0][:4] == [
        "silver/risk_events",
        "no_sequence_gaps",
        "ERROR",
        f"{FIRST} .. {LAST}",
    ]
    assert f'<meta name="{CHART_COUNT_META}" content="6">' in page


def test_opens_per_breaker_counted_from_transitions(built: BuiltLake, report: tuple[ReportSummary, str]) -> None:
    summary, page = report
    transitions = gold(built, "circuit_breaker_transitions")
    opens = dict(
        transitions.group_by("source")
        .agg((pl.col("new_state") == "OPEN").sum().alias("opens"))
        .sort("source")
        .iter_rows()
    )
    assert dict(summary.data.breakers.select("source", "opens").iter_rows()) == opens
    assert len(opens) >= 3 and opens[EVIL_BREAKER] == 1
    rows = table_rows(page, '<section id="breakers">')
    assert {r[0]: int(r[1]) for r in rows} == opens


def test_time_in_each_state_covers_the_period(built: BuiltLake, report: tuple[ReportSummary, str]) -> None:
    """Each breaker's bands tile the period from its first known state to the end, without overlap."""
    summary, _ = report
    transitions = gold(built, "circuit_breaker_transitions").sort("timestamp")
    for row in summary.data.breakers.iter_rows(named=True):
        first = transitions.filter(pl.col("source") == row["source"]).row(0, named=True)
        known_from = (
            max(START, first["timestamp"] - timedelta(seconds=first["seconds_in_old_state"]))
            if first["seconds_in_old_state"] is not None
            else first["timestamp"]
        )
        total = row["seconds_CLOSED"] + row["seconds_HALF_OPEN"] + row["seconds_OPEN"]
        assert total == pytest.approx((END - known_from).total_seconds()), row["source"]
    evil = summary.data.breakers.filter(pl.col("source") == EVIL_BREAKER).row(0, named=True)
    assert (evil["seconds_OPEN"], evil["seconds_HALF_OPEN"]) == (700.0, 60.0)


def open_episodes(transitions: pl.DataFrame) -> list[tuple[str, float]]:
    """Each breaker's stretches in OPEN, worked out from its transitions one by one.

    A trial call that fails as the breaker half-opens leaves OPEN -> HALF_OPEN -> OPEN at one instant:
    the venue never reopened, so the stretch goes on.
    """
    episodes: list[tuple[str, float]] = []
    for (source,), rows in transitions.sort("timestamp").group_by("source", maintain_order=True):
        opened: datetime | None = None
        last_left: datetime | None = None
        for r in rows.iter_rows(named=True):
            if r["new_state"] == "OPEN" and opened is None:
                opened = last_left if last_left == r["timestamp"] else r["timestamp"]
            elif r["old_state"] == "OPEN" and opened is not None:
                last_left = r["timestamp"]
                episodes.append((str(source), (r["timestamp"] - opened).total_seconds()))
                opened = None
            if r["new_state"] == "OPEN" and last_left == r["timestamp"] and episodes and episodes[-1][0] == source:
                _, seconds = episodes.pop()  # the half-open failed at once: the same stretch continues
                opened = r["timestamp"] - timedelta(seconds=seconds)
        if opened is not None:
            episodes.append((str(source), (END - opened).total_seconds()))
    return episodes


def test_longest_open_matches_the_transitions(built: BuiltLake, report: tuple[ReportSummary, str]) -> None:
    summary, page = report
    expected = sorted(open_episodes(gold(built, "circuit_breaker_transitions")), key=lambda e: -e[1])
    longest = summary.data.longest_open()
    assert longest["seconds"].to_list() == [s for _, s in expected[: longest.height]]
    assert longest.row(0, named=True)["source"] == expected[0][0]
    rows = table_rows(page, "<h3>Longest OPEN</h3>")
    assert (rows[0][0], rows[0][3]) == (expected[0][0], duration(expected[0][1]))


def test_largest_giveback_and_most_rejected_match(built: BuiltLake, report: tuple[ReportSummary, str]) -> None:
    _, page = report
    stops = gold(built, "trailing_stop_outcomes").filter(pl.col("giveback").is_not_null())
    top = stops.sort(["giveback", "execution_id"], descending=[True, False]).row(0, named=True)
    rows = table_rows(page, "<h3>Largest giveback</h3>")
    assert rows[0][0] == top["execution_id"] and rows[0][6] == f"{top['giveback']:,.2f}"

    limits = gold(built, "limit_rejection_stats")
    per_type = (
        limits.group_by("limit_type")
        .agg(pl.col("rejection_count").sum())
        .sort(["rejection_count", "limit_type"], descending=[True, False])
    )
    worst = per_type.row(0, named=True)
    rows = table_rows(page, "<h3>Most-rejected limits</h3>")
    assert (rows[0][0], int(rows[0][1])) == (worst["limit_type"], worst["rejection_count"])
    worst_day = limits.filter(pl.col("limit_type") == worst["limit_type"]).sort(
        ["rejection_count", "event_date"], descending=[True, False]
    )
    assert rows[0][6] == worst_day.row(0, named=True)["event_date"].isoformat()


def test_every_lake_string_is_escaped(report: tuple[ReportSummary, str]) -> None:
    _, page = report
    assert EVIL_BREAKER not in page
    assert "<script>alert(1)" not in page and "<b>&" not in page
    assert html.escape(EVIL_BREAKER, quote=True) in page  # in the breaker and incident tables
    # In the timeline's data: entity-escaped for plotly's label markup, then JSON-escaped inside its script.
    assert 'orders.&lt;b&gt;&amp;\\"evil\\"&lt;\\u002fscript&gt;' in page


def test_an_empty_period_says_so(built: BuiltLake, tmp_path: Path) -> None:
    out = tmp_path / "empty.html"
    summary = build_report(built.lake, date(2026, 2, 1), date(2026, 2, 3), out, instance=built.instance)
    page = out.read_text(encoding="utf-8")
    assert summary.charts == 0 and summary.headline()["events"] == 0
    assert f'<meta name="{CHART_COUNT_META}" content="0">' in page and 'class="chart"' not in page
    for chart_id in ("breaker-timeline", "stop-outcomes", "stop-profit", "stop-profit-by-underlying",
                     "rejections-per-day", "utilisation-per-day"):  # fmt: skip
        assert f'data-empty-chart="{chart_id}">no data for ' in page
    for incidents in ("longest-open", "largest-giveback", "most-rejected"):
        assert f'data-incidents="{incidents}">no data for ' in page
    assert "2026-02-01 .. 2026-02-03" in page


def test_a_lake_without_gold_builds_an_empty_page_and_a_bad_period_is_refused(tmp_path: Path) -> None:
    from risk_pipeline.lake import Lake

    empty = Lake(str(tmp_path / "nothing"))
    summary = build_report(empty, None, None, tmp_path / "r.html", now=datetime(2026, 3, 9, 12, tzinfo=UTC))
    assert summary.period == Period(date(2026, 3, 9), date(2026, 3, 9)) and summary.charts == 0
    assert "Failed checks: unknown" in (tmp_path / "r.html").read_text(encoding="utf-8")
    with pytest.raises(ValueError, match="after"):
        build_report(empty, date(2026, 3, 5), date(2026, 3, 4), tmp_path / "r.html")


def test_the_page_is_written_whole_and_readable_like_any_file(built: BuiltLake, tmp_path: Path) -> None:
    """Written to a temporary name and renamed, with the process's umask: a web server's user can read it."""
    previous = os.umask(0o022)
    try:
        summary = build_report(built.lake, FIRST, FIRST, tmp_path / "r.html")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(summary.path.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]
