"""``reports/risk_history``: the risk-history dashboard as an asset, rebuilt after every gold build.

Unpartitioned and downstream of the three gold tables: one page over a period of days (by default every
day gold holds), written to a local HTML file (:func:`risk_pipeline.report.default_report_path`, or the
``out`` config). :mod:`.sensors` requests it when any gold table is materialised, so the page follows gold
without anyone pressing a button. Its metadata carries the file's path and size, the period and the
headline numbers as Markdown; check verdicts on the page come from this run's own Dagster instance.
"""

from datetime import date
from pathlib import Path
from typing import Final

import dagster as dg
from pydantic import Field

from risk_pipeline.defs.constants import OWNERS, REPORT_KINDS, REPORTS_GROUP, layer_tags
from risk_pipeline.defs.gold.assets import GOLD_TABLES
from risk_pipeline.defs.resources import LakeResource
from risk_pipeline.report import build_report, default_report_path, lake_is_remote
from risk_pipeline.report.location import REPORTS_DIR_ENV

RISK_HISTORY_KEY: Final = dg.AssetKey(["reports", "risk_history"])


class RiskHistoryConfig(dg.Config):
    """The period and the file; every field optional."""

    start: str | None = Field(default=None, description="First UTC day, YYYY-MM-DD (default: gold's first day).")
    end: str | None = Field(default=None, description="Last UTC day, inclusive, YYYY-MM-DD (default: gold's last day).")
    out: str | None = Field(
        default=None,
        description=f"The HTML file (default: ${REPORTS_DIR_ENV}/risk_history.html, else reports/ beside a local lake, "
        "else data/reports/).",
    )


def _day(text: str | None, name: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise dg.Failure(description=f"{name} {text!r} is not a day (YYYY-MM-DD)") from None


@dg.asset(
    key=RISK_HISTORY_KEY,
    deps=[table.key for table in GOLD_TABLES],
    group_name=REPORTS_GROUP,
    kinds=set(REPORT_KINDS),
    owners=list(OWNERS),
    tags=layer_tags(REPORTS_GROUP),
    description="The risk-history dashboard: one self-contained HTML page (plotly embedded, opens offline) with the "
    "period's totals and data quality, each breaker's state timeline, trailing-stop outcomes and profit locked, "
    "limit rejections and utilisation per day, and the top incidents. Rebuilt after every gold build.",
)
def risk_history_report(
    context: dg.AssetExecutionContext, config: RiskHistoryConfig, lake: LakeResource
) -> dg.MaterializeResult:
    the_lake = lake.lake()
    out = Path(config.out) if config.out else default_report_path(the_lake)
    try:
        summary = build_report(
            the_lake, _day(config.start, "start"), _day(config.end, "end"), out, instance=context.instance
        )
    except ValueError as error:  # a period that cannot be: say so as the step's failure
        raise dg.Failure(description=str(error)) from error
    remote = lake_is_remote(the_lake)
    context.log.info(f"wrote {summary.path} ({summary.size_bytes:,} bytes) for {summary.period}")
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(summary.path)),
            "size_bytes": summary.size_bytes,
            "period_start": summary.period.first.isoformat(),
            "period_end": summary.period.last.isoformat(),
            "charts": summary.charts,
            "summary": dg.MetadataValue.md(summary.markdown()),
            "written_locally": dg.MetadataValue.text(
                f"the lake is on object storage ({the_lake.location}); the report is a local file on the run's host"
                if remote
                else "beside the lake"
            ),
        }
    )


risk_history_job: Final = dg.define_asset_job(
    "risk_history_report_job",
    selection=dg.AssetSelection.assets(RISK_HISTORY_KEY),
    description="The risk-history dashboard over every day gold holds.",
)
