"""Bronze rows to silver rows, pure and fast: upcast, de-duplicate, validate, route the refused.

No Dagster and no I/O here: :mod:`~risk_pipeline.defs.silver.build` reads each day, calls :func:`build_silver`
on its bronze rows and writes the result, so the rules are testable on plain frames.

The accounting identity ``bronze_rows == silver + quarantine + duplicates_removed`` holds by construction
(every row ends in exactly one of the three) and is checked on every build: a row silver loses silently
is a hole in a post-mortem nobody would notice.

Routing follows pandera's failure report (``SchemaErrors.failure_cases``), grouped by the row position in
its ``index`` column. Three traps of that report are handled explicitly (see the field notes):

* no check sets ``n_failure_cases``, so the report lists every failing row, never a sample;
* a schema-level failure (a column of the wrong dtype, an unexpected column, a check that could not
  run) has a null ``index``; it condemns every row -- it would be wrong to let them pass unchecked;
* ``unique=True`` would flag every copy of a duplicate, so de-duplication is done here, before validation;
* validation is pinned to schema *and* data, whatever ``PANDERA_VALIDATION_*`` the environment sets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Final

import pandera.errors
import polars as pl
from pandera.config import ValidationDepth, config_context

from risk_pipeline.defs.silver.schema import (
    INGEST_ERRORS,
    INGEST_ERRORS_CHECK,
    QUARANTINE_SCHEMA,
    SILVER_SCHEMA,
    RiskEventModel,
    polars_schema,
    rule_settings,
)
from risk_pipeline.defs.silver.upcast import upcast_to_current
from risk_pipeline.lake import DAY_COLUMN
from risk_runtime.events import BRONZE_SCHEMA, EVENT_FIELDS

ROW: Final = "__row"
"""Row position after de-duplication: the ``index`` pandera reports failures at."""
REUSED: Final = "__reused"
_POSITION: Final = "__bronze_position"

DEDUP_ORDER: Final = ("ingested_at", "writer_id", "sequence")
"""Which copy of a duplicated event survives: the first to land, then the lowest writer and sequence."""

SILVER_ORDER: Final = ("timestamp", "writer_id", "sequence")

EVENT_ID_REUSED: Final = "event_id: reused by a different event"
"""Reason for a row sharing its ``event_id`` with an earlier, *different* event: not a retry, so not dropped."""

_MAX_REASON: Final = 300
_SILVER_TYPES: Final = polars_schema(SILVER_SCHEMA)
_QUARANTINE_TYPES: Final = polars_schema(QUARANTINE_SCHEMA)
_BRONZE_COLUMNS: Final = tuple(BRONZE_SCHEMA.names)
_MODEL_NAME: Final = RiskEventModel.to_schema().name


@dataclass(frozen=True)
class SilverBuild:
    """One build's output and its accounting (``bronze_rows == silver + quarantine + duplicates_removed``)."""

    silver: pl.DataFrame
    quarantine: pl.DataFrame
    bronze_rows: int
    duplicates_removed: int
    reason_counts: dict[str, int] = field(default_factory=dict)
    """Quarantined rows per reason (a row with two reasons counts under both)."""


def build_silver(bronze: pl.DataFrame, *, run_id: str, partition: str) -> SilverBuild:
    """Silver and quarantine rows for ``bronze`` (one partition's rows, any bronze schema version).

    ``partition`` is the run's day key (``YYYY-MM-DD``), recorded on each quarantined row.
    """
    rule_settings()  # a mistyped setting raises here: inside a check it would only refuse every row
    bronze_rows = bronze.height
    current = upcast_to_current(bronze)
    deduped, duplicates_removed = _deduplicate(current)
    frame = deduped.with_row_index(ROW)

    row_reasons, frame_reasons = _failures(deduped.drop(REUSED))
    reasons = _reason_lists(frame, row_reasons, frame_reasons)
    refused = pl.repeat(False, frame.height, dtype=pl.Boolean, eager=True).scatter(reasons.get_column(ROW), True)

    if frame_reasons:  # a schema-level failure: no row can be trusted, and columns may be missing
        silver = pl.DataFrame(schema=_SILVER_TYPES)
    else:
        silver = frame.filter(~refused).select(_SILVER_TYPES.names()).cast(dict(_SILVER_TYPES)).sort(SILVER_ORDER)
    quarantine = _quarantine_rows(frame.filter(refused), reasons, run_id=run_id, partition=partition)
    build = SilverBuild(
        silver=silver,
        quarantine=quarantine,
        bronze_rows=bronze_rows,
        duplicates_removed=duplicates_removed,
        reason_counts=_count_reasons(quarantine),
    )
    accounted = silver.height + quarantine.height + duplicates_removed
    if accounted != bronze_rows:  # not `assert`: this must hold under python -O too
        raise AssertionError(
            f"silver accounting broken: {bronze_rows} bronze rows, {silver.height} silver + "
            f"{quarantine.height} quarantined + {duplicates_removed} duplicates = {accounted}"
        )
    return build


EVENT_ID_IN_EARLIER_DAY: Final = "event_id: duplicate of an event already in silver on "
"""Reason (followed by that day) for a row whose ``event_id`` silver already holds on an earlier day."""


def duplicate_of_earlier_day(day: date) -> str:
    return EVENT_ID_IN_EARLIER_DAY + day.isoformat()


def refuse_reused_ids(build: SilverBuild, earlier: pl.DataFrame, *, run_id: str, partition: str) -> SilverBuild:
    """``build`` with the silver rows whose ``event_id`` is in ``earlier`` moved to quarantine.

    ``earlier`` (``event_id``, ``first_day``) names ids silver already holds on an earlier day: that copy
    is the first, so this one is a contradiction, refused with the day of the copy it contradicts. The
    accounting is unchanged (a row moves from silver to quarantine).
    """
    if earlier.is_empty():
        return build
    reused = pl.col("event_id").is_in(earlier.get_column("event_id").implode())
    moving = build.silver.filter(reused).join(earlier, on="event_id", how="left", maintain_order="left")
    reasons = moving.select(
        pl.concat_list(pl.lit(EVENT_ID_IN_EARLIER_DAY) + pl.col("first_day").dt.to_string("%Y-%m-%d")).alias("reasons")
    )
    quarantined = _quarantine_rows(moving.drop("first_day"), reasons, run_id=run_id, partition=partition)
    quarantine = pl.concat([build.quarantine, quarantined], how="vertical_relaxed")
    return SilverBuild(
        silver=build.silver.filter(~reused),
        quarantine=quarantine,
        bronze_rows=build.bronze_rows,
        duplicates_removed=build.duplicates_removed,
        reason_counts=_count_reasons(quarantine),
    )


# -------------------------------------------------------------------------------------- de-duplication
def _deduplicate(df: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """Drop repeated copies of an event (a retried batch landing twice); returns the rest and the count.

    A copy is a repeat when its ``event_id`` *and* every event field equal an earlier copy's ("earlier" by
    :data:`DEDUP_ORDER`). A row reusing an ``event_id`` for a different event is kept and marked
    :data:`REUSED` (it is quarantined, not lost). Null ``event_id``s are never de-duplicated: those rows
    fail validation and are quarantined, every one of them. Rows keep their bronze order.

    Only rows whose ``event_id`` occurs more than once are sorted and compared, so a day without
    duplicates costs one hash pass over one column.
    """
    indexed = df.with_row_index(_POSITION)
    event_id = pl.col("event_id")
    copies = indexed.filter(event_id.is_not_null() & event_id.is_duplicated())
    if copies.is_empty():
        return df.with_columns(pl.lit(False).alias(REUSED)), 0
    payload = [name for name in EVENT_FIELDS if name in df.columns]
    ordered = copies.sort(DEDUP_ORDER, nulls_last=True, maintain_order=True).select(
        _POSITION, event_id, pl.struct(payload).is_first_distinct().alias("first")
    )
    repeats = ordered.filter(~pl.col("first")).get_column(_POSITION).implode()
    survivors = ordered.filter(pl.col("first"))
    reused = survivors.filter(~event_id.is_first_distinct()).get_column(_POSITION).implode()
    kept = (
        indexed.filter(~pl.col(_POSITION).is_in(repeats))
        .with_columns(pl.col(_POSITION).is_in(reused).alias(REUSED))
        .drop(_POSITION)
    )
    return kept, df.height - kept.height


# ------------------------------------------------------------------------------------------ validation
def _failures(df: pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
    """``(ROW, reason)`` pairs for row-level failures, and the reasons that apply to every row."""
    empty = pl.DataFrame(schema={ROW: pl.UInt32, "reason": pl.String})
    try:
        # Pinned here: a deployment setting PANDERA_VALIDATION_ENABLED=False or a schema-only depth would
        # otherwise let every row through unchecked.
        with config_context(validation_enabled=True, validation_depth=ValidationDepth.SCHEMA_AND_DATA):
            RiskEventModel.validate(df, lazy=True)
    except pandera.errors.SchemaErrors as err:
        cases = err.failure_cases
    else:
        return empty, []
    check = pl.col("check").fill_null("unnamed check")  # a nameless failure must still refuse its row
    reason = pl.when(pl.col("column") == _MODEL_NAME).then(check).otherwise(pl.col("column") + ": " + check)
    row_level = (
        cases.filter(pl.col("index").is_not_null())
        .select(pl.col("index").cast(pl.UInt32).alias(ROW), reason.alias("reason"))
        .unique(maintain_order=True)
    )
    schema_level = cases.filter(pl.col("index").is_null()).select(
        reason.alias("reason"), pl.col("failure_case").cast(pl.String)
    )
    frame_reasons = [
        _clip(f"{r}: {case}" if case is not None else r) for r, case in schema_level.iter_rows() if r is not None
    ]
    return row_level, list(dict.fromkeys(frame_reasons))


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 3] + "..."


def _reason_lists(frame: pl.DataFrame, row_reasons: pl.DataFrame, frame_reasons: list[str]) -> pl.DataFrame:
    """``(ROW, reasons)`` for every refused row, by ``ROW``: each with every reason that applied to it."""
    ingest_rule = f"{INGEST_ERRORS}: {INGEST_ERRORS_CHECK}"
    checks = (
        row_reasons.filter(pl.col("reason") != ingest_rule)
        .group_by(ROW, maintain_order=True)
        .agg(pl.col("reason").alias("checks"))
    )
    ingest = _ingest_messages(frame)  # replaces the generic ingest rule with what bronze actually found
    reused = frame.filter(pl.col(REUSED)).select(ROW, pl.lit([EVENT_ID_REUSED]).alias("reused"))
    if frame_reasons:
        refused = frame.select(ROW)
    else:
        refused = pl.concat([checks.select(ROW), ingest.select(ROW), reused.select(ROW)]).unique()
    none = pl.lit([], dtype=pl.List(pl.String))
    everywhere = pl.lit(frame_reasons, dtype=pl.List(pl.String)) if frame_reasons else none
    return (
        refused.join(checks, on=ROW, how="left")
        .join(ingest, on=ROW, how="left")
        .join(reused, on=ROW, how="left")
        .select(
            ROW,
            pl.concat_list(
                pl.col("ingest").fill_null(none),
                pl.col("checks").fill_null(none),
                pl.col("reused").fill_null(none),
                everywhere,
            )
            .list.unique(maintain_order=True)
            .alias("reasons"),
        )
        .sort(ROW)
    )


def _ingest_messages(frame: pl.DataFrame) -> pl.DataFrame:
    """``(ROW, ingest)``: the ingest error texts bronze recorded, as reasons (a JSON list each)."""
    if INGEST_ERRORS not in frame.columns:
        return pl.DataFrame(schema={ROW: pl.UInt32, "ingest": pl.List(pl.String)})
    flagged = frame.select(ROW, pl.col(INGEST_ERRORS).cast(pl.String, strict=False)).filter(
        pl.col(INGEST_ERRORS).is_not_null()
    )
    messages = [_parse_ingest_errors(text) for text in flagged.get_column(INGEST_ERRORS).to_list()]
    return flagged.select(ROW).with_columns(pl.Series("ingest", messages, dtype=pl.List(pl.String)))


def _parse_ingest_errors(text: str) -> list[str]:
    try:
        parsed = json.loads(text)
    except ValueError:
        return [_clip(f"{INGEST_ERRORS}: {text}")]
    if isinstance(parsed, list) and parsed:
        return [_clip(str(message)) for message in parsed]
    return [_clip(f"{INGEST_ERRORS}: {text}")]


# ------------------------------------------------------------------------------------------ quarantine
def _quarantine_rows(rows: pl.DataFrame, reasons: pl.DataFrame, *, run_id: str, partition: str) -> pl.DataFrame:
    """Refused rows as bronze held them (cast leniently: a wrongly typed column is nulled, its reason kept)."""
    columns = [
        pl.col(name).cast(_QUARANTINE_TYPES[name], strict=False)
        if name in rows.columns
        else pl.lit(None, dtype=_QUARANTINE_TYPES[name]).alias(name)
        for name in _BRONZE_COLUMNS
    ]
    out = rows.select(*columns).with_columns(
        reasons.get_column("reasons"),
        pl.lit(run_id, dtype=pl.String).alias("run_id"),
        pl.lit(partition, dtype=pl.String).alias("partition"),
        pl.lit(datetime.now(UTC), dtype=_QUARANTINE_TYPES["quarantined_at"]).alias("quarantined_at"),
    )
    # Filed under the day that refused them, so that re-running the day replaces them: a row's own day,
    # except for an event outside the time window, filed under the day it was ingested (see window.py),
    # and a wrongly typed (null) event_date, which a partition could never hold.
    out = out.with_columns(pl.lit(date.fromisoformat(partition), dtype=pl.Date).alias(DAY_COLUMN))
    return out.select(_QUARANTINE_TYPES.names())


def _count_reasons(quarantine: pl.DataFrame) -> dict[str, int]:
    counts = quarantine.select(pl.col("reasons").explode()).get_column("reasons").drop_nulls().value_counts()
    return dict(sorted(zip(counts.get_column("reasons").to_list(), counts.get_column("count").to_list(), strict=True)))
