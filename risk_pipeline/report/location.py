"""Where a report is written when nobody says: beside the lake, or in ``$RISK_REPORTS_DIR``.

A local lake at ``data/lake`` gets ``data/reports/risk_history.html``, its sibling. An object-store lake has
no local sibling and a browser opens files, not ``s3://`` keys, so its report is written to
``$RISK_REPORTS_DIR`` or, without it, ``data/reports/`` under the working directory -- and the asset's
metadata says the report is local while the lake is not.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

from risk_pipeline.lake import Lake
from risk_runtime.table import OBJECT_STORE_SCHEMES

REPORTS_DIR_ENV: Final = "RISK_REPORTS_DIR"
DEFAULT_REPORTS_DIR: Final = "data/reports"
REPORT_FILE: Final = "risk_history.html"


def lake_is_remote(lake: Lake) -> bool:
    """An object-store lake (a local root, ``file://`` included, resolves to a plain absolute path)."""
    return lake.location.split("://", 1)[0] in OBJECT_STORE_SCHEMES


def default_report_path(lake: Lake) -> Path:
    """``$RISK_REPORTS_DIR/risk_history.html``, else the local lake's sibling ``reports/``, else ``data/reports/``."""
    configured = os.environ.get(REPORTS_DIR_ENV, "").strip()
    if configured:
        return Path(configured) / REPORT_FILE
    if lake_is_remote(lake):
        return Path(DEFAULT_REPORTS_DIR) / REPORT_FILE
    return Path(lake.location).parent / "reports" / REPORT_FILE
