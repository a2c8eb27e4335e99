"""Bringing bronze rows written by older runtimes up to the current event schema, in one place.

Bronze is append-only history: rows keep the ``schema_version`` their runtime wrote. When the event model
changes, the runtime bumps :data:`~risk_runtime.events.SCHEMA_VERSION` and this module gains one function
``v -> v + 1`` in :data:`UPCASTERS`. Silver then validates every row against the *current* model only, and
a backfill re-runs old days through the whole chain -- no rule anywhere needs to know about old versions.

A step receives only the rows of its version, shaped like the bronze frame, and returns them changed; the
mechanism, not the step, stamps the new ``schema_version`` and checks that no row was lost or invented.
Rows of a version with no path to the current one are left alone: silver's ``schema_version`` rule
quarantines them with a reason rather than guessing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

import polars as pl

from risk_runtime.events import SCHEMA_VERSION

UpcastStep = Callable[[pl.DataFrame], pl.DataFrame]
"""Rows of version ``v`` in, the same rows as version ``v + 1`` out (``schema_version`` is stamped for it)."""

UPCASTERS: Final[dict[int, UpcastStep]] = {}
"""``{from_version: step}``. Empty while version 1 is the only one the runtime has ever written."""

VERSION_COLUMN: Final = "schema_version"
_ORDER: Final = "__upcast_order"


def upcast_to_current(df: pl.DataFrame) -> pl.DataFrame:
    """``df`` with every row of an older known version upcast to :data:`SCHEMA_VERSION`."""
    return apply_upcasts(df, UPCASTERS, current=SCHEMA_VERSION)


def apply_upcasts(df: pl.DataFrame, steps: Mapping[int, UpcastStep], *, current: int) -> pl.DataFrame:
    """Apply ``steps`` in version order until no row is older than ``current``; rows keep their order.

    Columns a step adds appear as nulls on rows that did not need it (``diagonal_relaxed`` concat).
    """
    too_new = sorted(v for v in steps if v >= current)
    if too_new:
        raise ValueError(f"upcast steps {too_new} start at or after the current version {current}")
    if not steps or df.is_empty() or VERSION_COLUMN not in df.columns:
        return df
    versions = set(df.get_column(VERSION_COLUMN).drop_nulls().unique().to_list())
    if not versions & set(steps):
        return df  # the common case: nothing old in this partition

    version_dtype = df.schema[VERSION_COLUMN]
    frame = df.with_row_index(_ORDER)
    for version in sorted(steps):
        is_old = pl.col(VERSION_COLUMN) == version
        old = frame.filter(is_old)
        if old.is_empty():
            continue
        upgraded = steps[version](old.drop(_ORDER))
        if upgraded.height != old.height:
            raise ValueError(f"upcast step {version} -> {version + 1} returned {upgraded.height} rows for {old.height}")
        upgraded = upgraded.with_columns(
            old.get_column(_ORDER), pl.lit(version + 1, dtype=version_dtype).alias(VERSION_COLUMN)
        )
        frame = pl.concat([frame.filter(~is_old | pl.col(VERSION_COLUMN).is_null()), upgraded], how="diagonal_relaxed")
    return frame.sort(_ORDER).drop(_ORDER)
