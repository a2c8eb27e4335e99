"""The upcast mechanism: one step per version, applied in order, to exactly the rows that need it."""

from __future__ import annotations

import polars as pl
import pytest

from risk_pipeline.defs.silver.transform import build_silver
from risk_pipeline.defs.silver.upcast import KNOWN_SCHEMA_VERSIONS, UPCASTERS, apply_upcasts, upcast_to_current
from risk_runtime.events import SCHEMA_VERSION


def premiums_were_cents(rows: pl.DataFrame) -> pl.DataFrame:
    """A synthetic v1 -> v2 step: version 1 stored premiums in cents."""
    return rows.with_columns(pl.col("entry_premium") / 100)


def add_venue(rows: pl.DataFrame) -> pl.DataFrame:
    """A synthetic v2 -> v3 step that introduces a column."""
    return rows.with_columns(pl.lit("XCBO").alias("venue"))


def frame(versions: list[int | None]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "event_id": [f"e{i}" for i in range(len(versions))],
            "entry_premium": [10_000.0] * len(versions),
            "schema_version": pl.Series(versions, dtype=pl.Int32),
        }
    )


def test_each_step_applies_to_its_version_only_and_rows_keep_their_order() -> None:
    out = apply_upcasts(frame([1, 2, 1, None, 9]), {1: premiums_were_cents}, current=2)
    assert out.get_column("event_id").to_list() == ["e0", "e1", "e2", "e3", "e4"]
    assert out.get_column("schema_version").to_list() == [2, 2, 2, None, 9]  # null / unknown: left for silver
    assert out.get_column("entry_premium").to_list() == [100.0, 10_000.0, 100.0, 10_000.0, 10_000.0]
    assert out.schema["schema_version"] == pl.Int32


def test_steps_chain_to_the_current_version() -> None:
    out = apply_upcasts(frame([1, 2, 3]), {1: premiums_were_cents, 2: add_venue}, current=3)
    assert out.get_column("schema_version").to_list() == [3, 3, 3]
    assert out.get_column("entry_premium").to_list() == [100.0, 10_000.0, 10_000.0]
    assert out.get_column("venue").to_list() == ["XCBO", "XCBO", None]  # v3 rows never needed the step


def test_a_step_that_loses_rows_is_refused() -> None:
    with pytest.raises(ValueError, match="returned 0 rows for 2"):
        apply_upcasts(frame([1, 1]), {1: lambda rows: rows.head(0)}, current=2)


def test_a_step_at_or_after_the_current_version_is_refused() -> None:
    with pytest.raises(ValueError, match="current version 2"):
        apply_upcasts(frame([1]), {2: add_venue}, current=2)


def test_versions_one_and_two_are_known_and_others_are_quarantined(
    bronze_from_events, bronze_from_rows, bronze_row, day
) -> None:
    assert SCHEMA_VERSION == 2 and set(UPCASTERS) == {1} and frozenset({1, 2}) == KNOWN_SCHEMA_VERSIONS
    bronze = bronze_from_rows(
        [bronze_row(sequence=1), bronze_row(sequence=2, schema_version=0), bronze_row(sequence=3, schema_version=1)]
    )
    assert upcast_to_current(bronze).get_column("schema_version").to_list() == [2, 0, 2]
    build = build_silver(bronze, run_id="r", partition=day.isoformat())
    # A version with no path to the current one is quarantined, never guessed at.
    assert build.quarantine.get_column("reasons").to_list() == [["schema_version: a known version {1, 2}"]]
    assert build.silver.get_column("sequence").to_list() == [1, 3]
    assert build.silver.get_column("schema_version").to_list() == [2, 2]
