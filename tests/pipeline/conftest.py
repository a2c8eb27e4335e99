"""Shared fixtures for pipeline tests: a lake in ``tmp_path`` and builders of bronze frames.

Two ways to make bronze, because they test different things:

* :func:`bronze_from_events` -- through the runtime's own encoder (``events_to_bronze``), so the rows are
  exactly what a trading process would land, including its ``ingest_errors`` for malformed values;
* :func:`bronze_from_rows` -- straight Arrow rows on :data:`BRONZE_SCHEMA`, for states the runtime can't
  produce (a null ``event_id``, a ``timestamp`` on another day than ``event_date``, an old schema version).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pytest

from risk_pipeline.lake import Lake, conform
from risk_runtime.encoding import events_to_bronze
from risk_runtime.events import BRONZE_SCHEMA, SCHEMA_VERSION, new_event_id

DAY = date(2026, 1, 28)
"""The default trading day of test data."""

BronzeFromEvents = Callable[..., pl.DataFrame]
BronzeFromRows = Callable[[Iterable[Mapping[str, Any]]], pl.DataFrame]
"""Test modules import nothing from here (two ``conftest`` modules would clash); they take fixtures."""


def at(day: date = DAY, seconds: float = 0.0) -> datetime:
    """A UTC timestamp ``seconds`` after midnight of ``day``."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(seconds=seconds)


@pytest.fixture
def day() -> date:
    """The trading day the builders below default to."""
    return DAY


@pytest.fixture(name="at")
def at_fixture() -> Callable[..., datetime]:
    """``(day, seconds) -> datetime``: UTC timestamps for test events."""
    return at


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(str(tmp_path / "lake"))


@pytest.fixture
def bronze_from_events() -> BronzeFromEvents:
    """``(events, *, writer_id="writer-1", first_sequence=1, ingested_at=None) -> bronze frame``."""

    def build(
        events: Iterable[object],
        *,
        writer_id: str = "writer-1",
        first_sequence: int = 1,
        ingested_at: datetime | None = None,
    ) -> pl.DataFrame:
        table = events_to_bronze(
            events, writer_id=writer_id, first_sequence=first_sequence, ingested_at=ingested_at or at(DAY, 86_000)
        )
        return pl.from_arrow(table)  # type: ignore[return-value]

    return build


def _bronze_row(**values: Any) -> dict[str, Any]:
    timestamp = values.get("timestamp", at(DAY, 3_600))
    row: dict[str, Any] = {
        "event_id": new_event_id(),
        "event_type": "circuit_breaker_success",
        "component": "circuit_breaker",
        "timestamp": timestamp,
        "schema_version": SCHEMA_VERSION,
        "writer_id": "writer-raw",
        "sequence": 1,
        "event_date": timestamp.date() if timestamp is not None else DAY,
        "ingested_at": at(DAY, 86_000),
    }
    row.update(values)
    return row


@pytest.fixture
def bronze_row() -> Callable[..., dict[str, Any]]:
    """``(**columns) -> row``: a valid ``circuit_breaker_success`` bronze row on :data:`DAY`, overridden."""
    return _bronze_row


@pytest.fixture
def bronze_from_rows() -> BronzeFromRows:
    """``(rows) -> bronze frame``: each row is a dict of bronze columns; missing columns are null."""

    def build(rows: Iterable[Mapping[str, Any]]) -> pl.DataFrame:
        table = pa.Table.from_pylist(list(rows), schema=BRONZE_SCHEMA.remove_metadata())
        return pl.from_arrow(conform(table, BRONZE_SCHEMA))  # type: ignore[return-value]

    return build
