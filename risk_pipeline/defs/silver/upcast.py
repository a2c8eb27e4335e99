"""Bringing bronze rows written by older runtimes up to the current event schema, in one place.

Bronze is append-only history: rows keep the ``schema_version`` their runtime wrote. When the event model
changes, the runtime bumps :data:`~risk_runtime.events.SCHEMA_VERSION` and this module gains one function
``v -> v + 1`` in :data:`UPCASTERS`. Silver then validates every row against the *current* model only, and
a backfill re-runs old days through the whole chain -- no rule anywhere needs to know about old versions.

A step receives only the rows of its version, shaped like the bronze frame, and returns them changed; the
mechanism, not the step, stamps the new ``schema_version`` and checks that no row was lost or invented.
Rows of a version with no path to the current one are left alone: silver's ``schema_version`` rule
quarantines them with a reason rather than guessing.

**What ``schema_version`` means in silver.** After upcasting, a row's ``schema_version`` is the shape it is
*now* in -- always :data:`SCHEMA_VERSION` in silver -- so every reader and rule sees one shape. The version
the writer used is not lost: bronze keeps every row as written (find it by ``event_id``), and quarantine
keeps the raw row too. We do not add a second "written version" column: it would be a silver column that
bronze does not have, and a rule or a gold table branching on it is exactly what upcasting exists to avoid.

Steps:

* **1 -> 2** (:func:`v1_to_v2`): version 2 added the option contract and market fields, the columns of
  :class:`~risk_runtime.instruments.OptionContract` and :class:`~risk_runtime.instruments.MarketSnapshot`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

import polars as pl
import pyarrow as pa

from risk_pipeline.lake import polars_types
from risk_runtime.events import BRONZE_SCHEMA, SCHEMA_VERSION
from risk_runtime.instruments import MarketSnapshot, OptionContract

UpcastStep = Callable[[pl.DataFrame], pl.DataFrame]
"""Rows of version ``v`` in, the same rows as version ``v + 1`` out (``schema_version`` is stamped for it)."""

VERSION_COLUMN: Final = "schema_version"

V2_COLUMNS: Final[dict[str, pl.DataType]] = polars_types(
    pa.schema([BRONZE_SCHEMA.field(c) for c in (*OptionContract.COLUMNS, *MarketSnapshot.COLUMNS)])
)
"""The columns version 2 added -- the option contract's and the market's -- as silver types them (bronze's types).

Should a later version add a field to either value object, this step adds its column too, as null: harmless,
since the later version's own step adds the same nulls to these rows."""


def v1_to_v2(rows: pl.DataFrame) -> pl.DataFrame:
    """Version-1 rows as version 2: ``underlying`` from ``symbol``, the other new fields null.

    Why ``underlying = symbol``: every version-1 emitter put the *underlying's* ticker in ``symbol`` --
    the limits checker bounds delta per underlying (``symbol_delta``), and stops were added with the
    underlying of the option they protect -- because version 1 had no way to name the contract itself.
    So for a v1 event with a symbol the underlying is known exactly; events without one (breaker events,
    portfolio-wide warnings) have no underlying. A v1 writer could not know the strike, right, expiry,
    delta or underlying price, so those stay null rather than being guessed. A value already present is
    kept (a version-1 writer cannot produce one, but nothing is overwritten).
    """
    missing = [pl.lit(None, dtype=dtype).alias(name) for name, dtype in V2_COLUMNS.items() if name not in rows.columns]
    rows = rows.with_columns(missing) if missing else rows
    symbol = pl.col("symbol") if "symbol" in rows.columns else pl.lit(None, dtype=pl.String())
    underlying = OptionContract.COLUMNS.underlying
    return rows.with_columns(pl.coalesce(pl.col(underlying), symbol).alias(underlying))


UPCASTERS: Final[dict[int, UpcastStep]] = {1: v1_to_v2}
"""``{from_version: step}``: one function per version step, ``v -> v + 1``, up to :data:`SCHEMA_VERSION`."""

KNOWN_SCHEMA_VERSIONS: Final = frozenset({*UPCASTERS, SCHEMA_VERSION})
"""Every version bronze may hold that silver can handle: the current one and each with an upcast path."""
if frozenset(range(1, SCHEMA_VERSION + 1)) != KNOWN_SCHEMA_VERSIONS:  # not assert: must hold under -O too
    raise AssertionError(f"upcast steps {sorted(UPCASTERS)} must chain every version from 1 to {SCHEMA_VERSION}")

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
