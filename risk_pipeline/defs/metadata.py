"""Dagster metadata built from the Arrow schemas the tables are declared with.

Each table's schema is declared once, as a ``pyarrow.Schema`` next to the code that produces the
table; the catalog's column view is derived from it here rather than restated, so the UI can never
drift from what is actually written.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Final

import dagster as dg
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from risk_pipeline.columns import description
from risk_pipeline.defs.constants import OWNERS, TABLE_KINDS, asset_key, layer_tags
from risk_pipeline.lake import Lake, TableRef

ROW_COUNT: Final = "dagster/row_count"
"""The table's total rows after the write: what the catalog and the asset's plots show as its size."""
ROWS_WRITTEN: Final = "risk/rows_written"
"""Rows the run wrote (for gold, into every partition it touched)."""
PARTITION_ROWS: Final = "risk/partition_rows"
"""Rows the run's partitions (its days) hold after the write."""


def column_schema(schema: pa.Schema) -> dg.TableSchema:
    """The ``dagster/column_schema`` of a table with Arrow ``schema``.

    Types are Arrow's own names (``string``, ``timestamp[us, tz=UTC]``, ``date32[day]``) because
    those are what readers of the Delta table get back; non-nullable fields carry that constraint,
    and a field's ``description`` metadata (if any) becomes the column description.
    """
    return dg.TableSchema(columns=[_column(field) for field in schema])


def _column(field: pa.Field) -> dg.TableColumn:
    return dg.TableColumn(
        name=field.name,
        type=str(field.type),
        description=description(field),
        constraints=None if field.nullable else dg.TableColumnConstraints(nullable=False),
    )


def table_asset(ref: TableRef, schema: pa.Schema, group: str, *, kinds: frozenset[str] = TABLE_KINDS) -> dict[str, Any]:
    """The attributes every lake table's asset carries, from where it lives and its declared schema.

    Key, group, kinds, owners and tags, and the catalog metadata: column schema, table name and the
    URI the deployment's ``$RISK_LAKE_ROOT`` resolves it to. Spread into ``AssetSpec``/``@asset``.
    """
    return {
        "key": asset_key(ref),
        "group_name": group,
        "kinds": set(kinds),
        "owners": list(OWNERS),
        "tags": layer_tags(group),
        "metadata": {
            "dagster/column_schema": column_schema(schema),
            "dagster/table_name": str(ref),
            "dagster/uri": Lake().uri(ref),
        },
    }


DELTA_VERSION: Final = "delta_version"
FILE_COUNT: Final = "file_count"


def snapshot_facts(lake: Lake, ref: TableRef) -> dict[str, int]:
    """The table's current Delta version, rows (``dagster/row_count``) and data files, from one snapshot.

    Rows are summed from the Delta log's record counts, as :meth:`Lake.rows_per_day` does: no data file
    is opened however large the table. A file written without statistics has no count; then one column of
    the table is read instead.
    """
    table = lake.table(ref)
    actions = pa.table(table.get_add_actions(flatten=True))
    counts = actions.column("num_records")
    unknown = counts.null_count > 0  # a file written without statistics: count its rows instead
    rows = pl.scan_delta(table).select(pl.len()).collect().item() if unknown else pc.sum(counts).as_py() or 0
    return {DELTA_VERSION: table.version(), ROW_COUNT: int(rows), FILE_COUNT: actions.num_rows}


def table_rows(lake: Lake, ref: TableRef) -> int:
    """Rows in the table's current snapshot (0 when it does not exist yet); see :func:`snapshot_facts`."""
    return snapshot_facts(lake, ref)[ROW_COUNT] if lake.exists(ref) else 0


def row_counts(lake: Lake, ref: TableRef, start: date, end: date, *, written: int) -> dict[str, int]:
    """A materialisation's row figures: the table's total (``dagster/row_count``), what the run wrote, and
    what its days ``[start, end)`` hold now.

    ``dagster/row_count`` used to be the rows the run wrote, so a one-day run of a 49-row table said 6: the
    catalog shows that key as the table's size, so it is the size.
    """
    return {
        ROW_COUNT: table_rows(lake, ref),
        ROWS_WRITTEN: written,
        PARTITION_ROWS: sum(lake.rows_per_day(ref, start, end).values()),
    }
