"""Column descriptions travel with the Arrow schemas, as each field's ``description`` metadata.

A table's schema is declared once, beside the code that writes it; its columns' meanings are written
there too, so the Dagster catalog (:mod:`risk_pipeline.defs.metadata`), the Delta table's own schema and
any reader of it say the same thing, and a column added without a description is caught by a test
rather than shipped as a blank in the UI.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import pyarrow as pa

DESCRIPTION_KEY: Final = b"description"


def described(schema: pa.Schema, descriptions: Mapping[str, str]) -> pa.Schema:
    """``schema`` with each named field's ``description`` metadata set (other metadata kept).

    A name that is not a field is an error: a renamed column must not leave its description behind.
    """
    unknown = set(descriptions) - set(schema.names)
    if unknown:
        raise ValueError(f"descriptions for columns the schema lacks: {sorted(unknown)}")
    fields = []
    for field in schema:
        text = descriptions.get(field.name)
        if text is not None:
            field = field.with_metadata({**(field.metadata or {}), DESCRIPTION_KEY: text.encode()})
        fields.append(field)
    return pa.schema(fields, metadata=schema.metadata)


def description(field: pa.Field) -> str | None:
    """The field's description, or None."""
    text = (field.metadata or {}).get(DESCRIPTION_KEY)
    return text.decode() if text else None
