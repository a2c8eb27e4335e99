"""``Lake.rows_per_day`` counts what a reader sees, from the Delta log alone, through replaces and appends."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pyarrow as pa

from risk_pipeline.lake import DAY_COLUMN, Lake, TableRef

REF = TableRef("test", "counted")
SCHEMA = pa.schema([pa.field("n", pa.int64()), pa.field(DAY_COLUMN, pa.date32(), nullable=False)])
D1 = date(2026, 3, 2)


def rows(day: date, count: int) -> pl.DataFrame:
    return pl.DataFrame({"n": list(range(count)), DAY_COLUMN: [day] * count})


def test_rows_per_day_follows_replaces_and_matches_a_read(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    end = D1 + timedelta(days=3)
    assert lake.rows_per_day(REF, D1, end) == dict.fromkeys([D1, D1 + timedelta(days=1), D1 + timedelta(days=2)], 0)
    lake.replace_days(REF, pl.concat([rows(D1, 5), rows(D1 + timedelta(days=1), 7)]), D1, end, schema=SCHEMA)
    lake.replace_days(REF, rows(D1, 2), D1, D1 + timedelta(days=1), schema=SCHEMA)  # D1 shrinks; D2 untouched
    counted = lake.rows_per_day(REF, D1, end)
    read = dict(lake.read_days(REF, D1, end, columns=[DAY_COLUMN]).group_by(DAY_COLUMN).len().iter_rows())
    assert counted == {D1: 2, D1 + timedelta(days=1): 7, D1 + timedelta(days=2): 0}
    assert {day: n for day, n in counted.items() if n} == read
    assert lake.rows_per_day(REF, D1 + timedelta(days=1), D1 + timedelta(days=2)) == {D1 + timedelta(days=1): 7}
