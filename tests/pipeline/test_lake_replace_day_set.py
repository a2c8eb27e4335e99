"""``Lake.replace_day_set`` replaces exactly the days it lists, in one commit, and refuses rows of other days."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest

from risk_pipeline.lake import DAY_COLUMN, Lake, TableRef

REF = TableRef("test", "scattered")
SCHEMA = pa.schema([pa.field("n", pa.int64()), pa.field(DAY_COLUMN, pa.date32(), nullable=False)])
D1 = date(2026, 3, 2)
DAYS = [D1 + timedelta(days=i) for i in range(5)]


def rows(day: date, values: list[int]) -> pl.DataFrame:
    return pl.DataFrame({"n": values, DAY_COLUMN: [day] * len(values)})


def table(lake: Lake) -> dict[date, list[int]]:
    read = lake.read_all(REF, schema=SCHEMA).sort(DAY_COLUMN, "n")
    return {day: group.get_column("n").to_list() for (day,), group in read.group_by(DAY_COLUMN, maintain_order=True)}


def test_replaces_the_listed_days_only_in_one_commit(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    lake.replace_days(
        REF,
        pl.concat([rows(d, [i, i + 10]) for i, d in enumerate(DAYS)]),
        DAYS[0],
        DAYS[-1] + timedelta(days=1),
        schema=SCHEMA,
    )
    version = lake.table(REF).version()
    # Days 0 and 3 get new rows, day 4 is listed with no rows (emptied); days 1 and 2 are not listed.
    written = lake.replace_day_set(
        REF, pl.concat([rows(DAYS[0], [100]), rows(DAYS[3], [300, 301])]), [DAYS[0], DAYS[3], DAYS[4]], schema=SCHEMA
    )
    assert written == 3
    assert lake.table(REF).version() == version + 1
    assert table(lake) == {DAYS[0]: [100], DAYS[1]: [1, 11], DAYS[2]: [2, 12], DAYS[3]: [300, 301]}


def test_refuses_rows_of_a_day_it_does_not_list(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    lake.replace_days(REF, rows(DAYS[1], [1]), DAYS[0], DAYS[-1], schema=SCHEMA)
    with pytest.raises(ValueError, match="outside the days replaced"):
        lake.replace_day_set(REF, pl.concat([rows(DAYS[0], [0]), rows(DAYS[1], [9])]), [DAYS[0]], schema=SCHEMA)
    with pytest.raises(ValueError, match="no days"):
        lake.replace_day_set(REF, rows(DAYS[0], [0]).clear(), [], schema=SCHEMA)
    assert table(lake) == {DAYS[1]: [1]}
