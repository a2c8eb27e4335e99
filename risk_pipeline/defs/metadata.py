"""Dagster metadata built from the Arrow schemas the tables are declared with.

Each table's schema is declared once, as a ``pyarrow.Schema`` next to the code that produces the
table; the catalog's column view is derived from it here rather than restated, so the UI can never
drift from what is actually written.
"""

from __future__ import annotations

from typing import Any

import dagster as dg
import pyarrow as pa

from risk_pipeline.columns import description
from risk_pipeline.defs.constants import OWNERS, TABLE_KINDS, asset_key, layer_tags
from risk_pipeline.lake import Lake, TableRef


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
