"""Names every part of the pipeline's definitions agrees on, declared once.

Owners, groups, kinds and table references appear on every asset, sensor and schedule; keeping them
here means a rename is one edit and the definitions snapshot test shows its whole reach. Check names
belong here too once more than one module uses them (the check and the code yielding its result).
"""

from __future__ import annotations

from typing import Final

import dagster as dg

from risk_pipeline.lake import TableRef
from risk_runtime.contract import BRONZE_LAYER, BRONZE_NAME

# ---------------------------------------------------------------------------------------------- ownership
OWNERS: Final[tuple[str, ...]] = ("team:risk-platform",)
"""Who is paged for every table of the lake: the desk's risk-platform team."""

DOMAIN_TAGS: Final[dict[str, str]] = {"domain": "risk"}
"""Tags shared by every asset; each layer adds ``layer=<group>``."""

# ---------------------------------------------------------------------------------------------- groups
BRONZE_GROUP: Final = "bronze"
SILVER_GROUP: Final = "silver"
GOLD_GROUP: Final = "gold"
REPORTS_GROUP: Final = "reports"
PIPELINE_GROUPS: Final[tuple[str, ...]] = (SILVER_GROUP, GOLD_GROUP)
"""The groups the pipeline materialises (bronze is written by the trading runtime, not by Dagster)."""

# ---------------------------------------------------------------------------------------------- kinds
BRONZE_KINDS: Final[frozenset[str]] = frozenset({"deltalake", "pyarrow"})
"""Bronze is a Delta table the runtime appends Arrow batches to."""
TABLE_KINDS: Final[frozenset[str]] = frozenset({"deltalake", "polars"})
"""Silver and gold are Delta tables computed with polars."""
REPORT_KINDS: Final[frozenset[str]] = frozenset({"html", "plotly"})
"""Reports are HTML pages drawn with plotly."""

# ---------------------------------------------------------------------------------------------- resources
LAKE_RESOURCE_KEY: Final = "lake"

# ---------------------------------------------------------------------------------------------- tables
BRONZE_RISK_EVENTS: Final = TableRef(BRONZE_LAYER, BRONZE_NAME)
"""Where the runtime writes bronze (:mod:`risk_runtime.contract`)."""


def asset_key(ref: TableRef) -> dg.AssetKey:
    """A table's asset key mirrors where it is stored: ``<layer>/<name>``."""
    return dg.AssetKey(ref.path)


def layer_tags(group: str) -> dict[str, str]:
    """The tags of an asset in ``group``: the shared ones plus its layer."""
    return {**DOMAIN_TAGS, "layer": group}
