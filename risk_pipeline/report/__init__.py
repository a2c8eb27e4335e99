"""The risk-history dashboard: one self-contained HTML page of a period's breakers, stops and limits.

    summary = build_report(Lake(), date(2026, 3, 2), date(2026, 3, 6), Path("risk_history.html"))

Built by the ``reports/risk_history`` asset after every gold build and by ``risk-lake report``. The page is
read from the gold tables (plus silver's row counts and sequence runs) by :mod:`.data`, drawn by
:mod:`.charts` (plotly, embedded: the file opens offline) and assembled by :mod:`.html`; failed checks come
from the Dagster instance when one is given (:mod:`.checks`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg

from risk_pipeline.lake import Lake
from risk_pipeline.report import charts, checks, data, html
from risk_pipeline.report.data import Period, ReportData, resolve_period
from risk_pipeline.report.location import default_report_path, lake_is_remote

__all__ = ["Period", "ReportData", "ReportSummary", "build_report", "default_report_path", "lake_is_remote"]


@dataclass(frozen=True)
class ReportSummary:
    """What was written: where, how big, for which period, with how many charts, and the headline numbers."""

    path: Path
    size_bytes: int
    period: Period
    charts: int
    data: ReportData

    def headline(self) -> dict[str, object]:
        t = self.data.totals
        failed = self.data.failed_checks
        return {
            "events": t.events,
            "quarantined": t.quarantined,
            "quarantine_rate": t.quarantine_rate,
            "failed_checks": None if failed is None else len(failed),
            "sequence_gaps": self.data.gaps.height,
            "missing_events": self.data.missing_events,
            "breaker_opens": t.opens,
            "stops_begun": t.stop_lifetimes,
            "stops_triggered": t.stops_triggered,
            "profit_locked": round(t.profit_locked, 2),
            "limit_rejections": t.rejections,
        }

    def markdown(self) -> str:
        """The headline numbers as a Markdown table (the asset's ``summary`` metadata)."""
        rows = [f"| {key.replace('_', ' ')} | {_cell(key, value)} |" for key, value in self.headline().items()]
        return "\n".join(
            [f"**Risk history {self.period}** ({self.charts} charts)", "", "| | |", "| --- | ---: |", *rows]
        )


def _cell(key: str, value: object) -> str:
    if value is None:
        return "unknown"
    if isinstance(value, float):
        return f"{value:.2%}" if key.endswith("_rate") else f"{value:,.2f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def build_report(
    lake: Lake,
    start: date | None,
    end: date | None,
    out: Path | str,
    *,
    instance: dg.DagsterInstance | None = None,
    now: datetime | None = None,
) -> ReportSummary:
    """Write the dashboard of the UTC days ``start`` .. ``end`` to ``out``.

    Both days are included; an open end is gold's first or last day.

    ``instance``: the Dagster instance to ask which checks failed; without one the page says it cannot know.
    The file is written to a temporary name beside ``out`` and renamed, so a reader never opens half a page.
    ``start`` after ``end`` is a ``ValueError``; an empty period writes a page saying "no data for ...".
    """
    now = now or datetime.now(UTC)
    period = resolve_period(lake, start, end, today=now.date())
    failed = checks.failed_checks(instance, period) if instance is not None else None
    report = data.load(lake, period, failed_checks=failed, now=now)
    figures = charts.all_charts(report)
    document = html.page(report, figures, lake=lake.location, generated=now)
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")  # opened as any file is: the umask applies
    partial.write_text(document, encoding="utf-8")
    os.replace(partial, target)
    return ReportSummary(
        path=target.resolve(),
        size_bytes=target.stat().st_size,
        period=period,
        charts=sum(c.figure is not None for c in figures),
        data=report,
    )
