"""The analyst's view of the gold queries as text: for a terminal of 80 columns, or for a machine.

:mod:`risk_pipeline.queries` answers the questions as polars frames; this module only shapes them for
reading, so the Python API stays what the guide and the README show. Two audiences:

* **people** (``table``): summaries first (per breaker, the stops' headline numbers, rejections by limit
  type), then a few rows of each detail table. Every line fits in :data:`WIDTH` columns: UUIDs shortened
  to their first :data:`ID_CHARS` characters, timestamps on one line as ``YYYY-MM-DD HH:MM:SS`` (UTC),
  numbers rounded, internal columns (``prev_new_state``, ``event_date``) left out;
* **machines** (``csv``, ``json``): every row and column a query returns, full ids, ISO 8601 timestamps,
  written by polars' own CSV and JSON writers.

The gold assets' Markdown previews in the Dagster UI use the same shortening (:func:`for_people`).
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import polars as pl

WIDTH: Final = 80
ID_CHARS: Final = 8
TIME_FORMAT: Final = "%Y-%m-%d %H:%M:%S"
FORMATS: Final = ("table", "csv", "json")
_UUID: Final = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


@dataclass(frozen=True)
class Section:
    """One block of the report: its name (the CSV/JSON key, ``--table``), its title, every row as the query
    returned it (``frame``, for machines), and what people see of it (``view``: chosen, renamed columns)."""

    name: str
    title: str
    frame: pl.DataFrame
    view: pl.DataFrame | str
    """What people see: a frame (shaped by :func:`for_people`) or lines of text."""
    detail: bool = False
    """A detail table: ``--limit`` rows of it are shown (summaries are shown whole)."""


def for_people(frame: pl.DataFrame, decimals: int = 2) -> pl.DataFrame:
    """``frame`` with UUIDs cut to :data:`ID_CHARS`, timestamps as one-line UTC text, floats rounded."""
    shaped = []
    for name, dtype in frame.schema.items():
        column = pl.col(name)
        if isinstance(dtype, pl.Datetime):
            zone = column.dt.convert_time_zone("UTC") if dtype.time_zone else column
            shaped.append(zone.dt.strftime(TIME_FORMAT))
        elif dtype == pl.String:
            shaped.append(pl.when(column.str.contains(_UUID)).then(column.str.slice(0, ID_CHARS)).otherwise(column))
        elif dtype.is_float():
            shaped.append(column.round(decimals))
        else:
            shaped.append(column)
    return frame.select(shaped)


def duration(seconds: float | None, missing: str = "-") -> str:
    """``3d 04h``, ``2h 05m``, ``4m 10s`` or ``12s``: durations a reader compares at a glance."""
    if seconds is None:
        return missing
    whole = round(seconds)
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def table_text(frame: pl.DataFrame, limit: int | None = None) -> str:
    """``frame`` (up to ``limit`` rows) as an aligned text table no wider than :data:`WIDTH`."""
    shown = frame if limit is None else frame.head(limit)
    if shown.is_empty():
        return "  (none)"
    with pl.Config(
        tbl_formatting="NOTHING",
        tbl_hide_column_data_types=True,
        tbl_hide_dataframe_shape=True,
        tbl_hide_dtype_separator=True,
        tbl_rows=-1,
        tbl_cols=-1,
        tbl_width_chars=WIDTH,
        fmt_str_lengths=WIDTH,
        float_precision=2,
        thousands_separator=",",
    ):
        text = str(shown)
    return "\n".join(line.rstrip() for line in text.splitlines())


def render_table(sections: Sequence[Section], headline: Sequence[str], limit: int) -> str:
    """The people's report: ``headline`` lines, then each section's table (details cut to ``limit`` rows)."""
    lines = [*headline]
    for section in sections:
        if isinstance(section.view, str):
            lines += ["", section.title, section.view]
            continue
        shown = for_people(section.view)
        title = section.title
        if section.detail and section.frame.height > limit:
            title += f" (first {limit} of {section.frame.height:,}; --limit N for more)"
        lines += ["", title, table_text(shown, limit if section.detail else None)]
    return "\n".join(lines)


def render_csv(sections: Sequence[Section]) -> str:
    """Every row of every section as CSV: one section is plain CSV; several are blocks, each introduced by a
    ``# name`` line and separated by a blank line (``--table`` picks one)."""
    if len(sections) == 1:
        return sections[0].frame.write_csv(datetime_format="%Y-%m-%dT%H:%M:%S%.6fZ").rstrip("\n")
    blocks = []
    for section in sections:
        body = section.frame.write_csv(datetime_format="%Y-%m-%dT%H:%M:%S%.6fZ").rstrip("\n")
        blocks.append(f"# {section.name}\n{body}")
    return "\n\n".join(blocks)


def render_json(sections: Sequence[Section], extra: Mapping[str, Any]) -> str:
    """One JSON object: ``extra`` (the filters, the stops' headline numbers) and each section's rows."""
    document: dict[str, Any] = dict(extra)
    for section in sections:
        buffer = io.StringIO()
        section.frame.write_json(buffer)
        document[section.name] = json.loads(buffer.getvalue())
    return json.dumps(document, indent=2, default=str)
