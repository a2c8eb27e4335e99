"""Silver's validation: every malformed bronze row lands in quarantine with the right reasons, duplicates
vanish, good rows all reach silver, and ``bronze == silver + quarantine + duplicates`` on every build."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import polars as pl
import pytest
from pandera.config import ValidationDepth, config_context

from risk_pipeline.defs.silver.schema import SILVER_SCHEMA, polars_schema
from risk_pipeline.defs.silver.transform import EVENT_ID_REUSED, SilverBuild, build_silver
from risk_runtime.events import RiskEvent, RiskEventType

T = RiskEventType
ALLOWED_RULE = "allowed matches event_type (portfolio_limit_check: True, portfolio_limit_rejection: False)"
LIMIT_RULE = "limit_type is a known limit (portfolio_limit_rejection: {open_positions, portfolio_delta, symbol_delta})"


def good_events(day: date, at: Callable[..., datetime], *, start: float = 0.0) -> list[RiskEvent]:
    """One valid event of every type, as the runtime would log them."""
    ts = iter(at(day, start + i) for i in range(100))
    return [
        RiskEvent(T.CB_FAILURE, timestamp=next(ts), source="orders", failure_count=1),
        RiskEvent(T.CB_STATE_CHANGE, timestamp=next(ts), old_state="CLOSED", new_state="OPEN", failure_count=5),
        RiskEvent(T.CB_SUCCESS, timestamp=next(ts), metadata='{"latency_ms": 12}'),
        RiskEvent(T.CB_MANUAL_RESET, timestamp=next(ts), old_state="OPEN", new_state="CLOSED", failure_count=0),
        RiskEvent(T.TS_ADD, timestamp=next(ts), execution_id="x1", entry_premium=100.0, action="ADD"),
        RiskEvent(
            T.TS_ACTIVATE,
            timestamp=next(ts),
            execution_id="x1",
            entry_premium=100.0,
            current_premium=103.0,
            highest_premium=103.0,
            stop_premium=101.5,
            action="ACTIVATE",
        ),
        RiskEvent(
            T.TS_UPDATE,
            timestamp=next(ts),
            execution_id="x1",
            entry_premium=100.0,
            current_premium=106.0,
            highest_premium=106.0,
            stop_premium=104.4,
        ),
        RiskEvent(
            T.TS_TRIGGER,
            timestamp=next(ts),
            execution_id="x1",
            entry_premium=100.0,
            current_premium=104.0,
            highest_premium=106.0,
            stop_premium=104.4,
            action="TRIGGER",
        ),
        RiskEvent(T.TS_REMOVE, timestamp=next(ts), execution_id="x1", entry_premium=100.0),
        RiskEvent(T.PL_CHECK, timestamp=next(ts), symbol="SPY", allowed=True, current_value=10.0, limit_value=50.0),
        RiskEvent(
            T.PL_REJECTION,
            timestamp=next(ts),
            symbol="SPY",
            allowed=False,
            limit_type="symbol_delta",
            current_value=61.0,
            limit_value=50.0,
            rejection_reason="symbol delta 61 > 50",
        ),
        RiskEvent(T.PL_WARNING, timestamp=next(ts), limit_type="portfolio_delta", current_value=41.0, limit_value=50.0),
        RiskEvent(T.EVENTS_DROPPED, timestamp=next(ts), metadata='{"dropped": 17}'),
    ]


def reasons_by_source(build: SilverBuild) -> dict[str, list[str]]:
    """Quarantine reasons keyed by the ``source`` column the test uses to label each bad row."""
    rows = build.quarantine.select("source", "reasons").rows()
    labels = [source for source, _ in rows]
    assert len(labels) == len(set(labels)), f"labels must be unique: {labels}"
    return {source: reasons for source, reasons in rows}


def assert_identity(build: SilverBuild) -> None:
    assert build.bronze_rows == build.silver.height + build.quarantine.height + build.duplicates_removed


def test_every_valid_event_type_reaches_silver_with_silver_types(bronze_from_events, day, at) -> None:
    events = good_events(day, at)
    assert {e.event_type for e in events} == set(RiskEventType)
    build = build_silver(bronze_from_events(events), run_id="r1", partition=day.isoformat())

    assert build.quarantine.height == 0, build.quarantine.select("event_type", "reasons").rows()
    assert build.silver.height == len(events)
    assert build.silver.schema == polars_schema(SILVER_SCHEMA)
    assert build.silver.get_column("event_id").to_list() == [e.event_id for e in events]  # sorted by timestamp
    assert build.reason_counts == {}
    assert_identity(build)


def malformed(day: date, at: Callable[..., datetime]) -> dict[str, tuple[RiskEvent, list[str]]]:
    """Bad events the runtime can produce, each labelled by ``source``, with the reasons silver must give."""
    ts = at(day, 7_200)
    ok_stop = {"execution_id": "x9", "entry_premium": 100.0, "current_premium": 103.0}
    cases: dict[str, tuple[dict[str, Any], list[str]]] = {
        "unknown-type": ({"event_type": "circuit_breaker_exploded"}, ["event_type: a known RiskEventType"]),
        "component-mismatch": (
            {"event_type": T.CB_FAILURE, "component": "trailing_stop", "failure_count": 2},
            ["component matches event_type"],
        ),
        "trigger-without-current": (
            {
                **ok_stop,
                "event_type": T.TS_TRIGGER,
                "current_premium": None,
                "highest_premium": 106.0,
                "stop_premium": 104.0,
            },
            ["current_premium required for trailing_stop_trigger"],
        ),
        "stop-without-execution": (
            {"event_type": T.TS_ADD, "entry_premium": 100.0},
            ["execution_id required for trailing_stop events"],
        ),
        "negative-premium": (
            {**ok_stop, "event_type": T.TS_ADD, "entry_premium": -1.0},
            ["entry_premium: finite and > 0"],
        ),
        "nan-premium": (
            {
                **ok_stop,
                "event_type": T.TS_UPDATE,
                "current_premium": math.nan,
                "highest_premium": 105.0,
                "stop_premium": 103.0,
            },
            ["current_premium: finite and > 0"],
        ),
        "stop-above-high": (
            {**ok_stop, "event_type": T.TS_ACTIVATE, "highest_premium": 105.0, "stop_premium": 110.0},
            ["stop_premium <= highest_premium"],
        ),
        "wrong-action": (
            {
                **ok_stop,
                "event_type": T.TS_ACTIVATE,
                "highest_premium": 105.0,
                "stop_premium": 103.0,
                "action": "TRIGGER",
            },
            ["action matches event_type"],
        ),
        "rejection-allowed": (
            {
                "event_type": T.PL_REJECTION,
                "allowed": True,
                "limit_type": "portfolio_delta",
                "current_value": 60.0,
                "limit_value": 50.0,
                "rejection_reason": "delta",
            },
            [ALLOWED_RULE],
        ),
        "check-without-allowed": ({"event_type": T.PL_CHECK}, [ALLOWED_RULE]),
        "unknown-limit": (
            {
                "event_type": T.PL_REJECTION,
                "allowed": False,
                "limit_type": "gamma",
                "current_value": 60.0,
                "limit_value": 50.0,
                "rejection_reason": "gamma",
            },
            [LIMIT_RULE],
        ),
        "warning-inf-limit": (
            {"event_type": T.PL_WARNING, "limit_type": "open_positions", "current_value": 9.0, "limit_value": math.inf},
            ["limit_value: finite"],
        ),
        "non-json-metadata": ({"event_type": T.CB_SUCCESS, "metadata": "latency=12ms"}, ["metadata: a JSON object"]),
        "json-array-metadata": ({"event_type": T.CB_SUCCESS, "metadata": "[1, 2]"}, ["metadata: a JSON object"]),
        "bad-state": (
            {"event_type": T.CB_STATE_CHANGE, "old_state": "CLOSED", "new_state": "BROKEN", "failure_count": 5},
            ["new_state: in {CLOSED, HALF_OPEN, OPEN}"],
        ),
        "same-state": (
            {"event_type": T.CB_STATE_CHANGE, "old_state": "OPEN", "new_state": "OPEN", "failure_count": 5},
            ["old_state != new_state"],
        ),
        "state-change-no-count": (
            {"event_type": T.CB_STATE_CHANGE, "old_state": "OPEN", "new_state": "HALF_OPEN"},
            ["failure_count required for circuit_breaker_failure, circuit_breaker_state_change"],
        ),
        "negative-count": ({"event_type": T.CB_FAILURE, "failure_count": -3}, ["failure_count: >= 0"]),
        "not-a-uuid": ({"event_type": T.CB_SUCCESS, "event_id": "evt-42"}, ["event_id: a UUID string"]),
        "wrong-typed-symbol": (
            {"event_type": T.CB_SUCCESS, "symbol": 123},
            ["symbol: expected a string, got int 123"],  # the ingest error text itself
        ),
        "two-rules": (
            {
                **ok_stop,
                "event_type": T.TS_ACTIVATE,
                "entry_premium": -5.0,
                "highest_premium": 105.0,
                "stop_premium": 110.0,
            },
            ["entry_premium: finite and > 0", "stop_premium <= highest_premium"],
        ),
    }
    return {
        label: (RiskEvent(**{"timestamp": ts + timedelta(seconds=i), **values, "source": label}), reasons)
        for i, (label, (values, reasons)) in enumerate(cases.items())
    }


def test_malformed_day_is_routed_row_by_row(bronze_from_events, bronze_from_rows, bronze_row, day, at) -> None:
    good = good_events(day, at)
    bad = malformed(day, at)
    first = bronze_from_events([*good, *(event for event, _ in bad.values())], writer_id="w1")
    # The shipper retried the whole batch: it landed a second time, later.
    retried = bronze_from_events(
        [*good, *(event for event, _ in bad.values())], writer_id="w1", ingested_at=at(day, 86_300)
    )
    sequence_zero = bronze_from_events(
        [RiskEvent(T.CB_SUCCESS, timestamp=at(day, 50), source="sequence-zero")], writer_id="w2", first_sequence=0
    )
    # States the runtime never writes, straight into bronze.
    raw = bronze_from_rows(
        [
            bronze_row(source="other-day", timestamp=at(day, -1), event_date=day, sequence=1),
            bronze_row(source="null-id-1", event_id=None, sequence=2),
            bronze_row(source="null-id-2", event_id=None, sequence=3),
            bronze_row(source="future-version", schema_version=7, sequence=4),
        ]
    )
    raw_reasons = {
        "sequence-zero": ["sequence: >= 1"],
        "other-day": ["timestamp falls on event_date (UTC)"],
        "null-id-1": ["event_id: not_nullable"],
        "null-id-2": ["event_id: not_nullable"],
        "future-version": ["schema_version: a known version {1, 2}"],
    }
    bronze = pl.concat([first, retried, sequence_zero, raw])

    build = build_silver(bronze, run_id="run-1", partition=day.isoformat())

    assert_identity(build)
    assert build.duplicates_removed == len(good) + len(bad)
    expected = {label: reasons for label, (_, reasons) in bad.items()} | raw_reasons
    assert len(expected) >= 10
    assert reasons_by_source(build) == expected
    assert sorted(build.silver.get_column("event_id").to_list()) == sorted(e.event_id for e in good)
    assert build.silver.schema == polars_schema(SILVER_SCHEMA)
    # The kept copy is the first to land.
    assert build.silver.get_column("ingested_at").unique().to_list() == [at(day, 86_000)]
    assert build.reason_counts["metadata: a JSON object"] == 2
    assert build.reason_counts["event_id: not_nullable"] == 2
    assert sum(build.reason_counts.values()) == sum(len(r) for r in expected.values())
    quarantine = build.quarantine
    assert quarantine.get_column("run_id").unique().to_list() == ["run-1"]
    assert quarantine.get_column("partition").unique().to_list() == [day.isoformat()]
    assert quarantine.get_column("event_date").unique().to_list() == [day]
    # Quarantine keeps the bronze row as it was, ingest errors included.
    symbol_row = quarantine.filter(pl.col("source") == "wrong-typed-symbol")
    assert symbol_row.get_column("ingest_errors").item() is not None
    assert symbol_row.get_column("symbol").item() is None


def test_one_bad_row_never_costs_its_neighbours(bronze_from_events, day, at) -> None:
    events = good_events(day, at)
    events.insert(5, RiskEvent(T.TS_ADD, timestamp=at(day, 4.5), execution_id="x2", entry_premium=math.nan))
    build = build_silver(bronze_from_events(events), run_id="r", partition=day.isoformat())
    assert build.silver.height == len(events) - 1
    assert build.quarantine.get_column("reasons").to_list() == [["entry_premium: finite and > 0"]]


def test_failure_report_is_not_truncated(bronze_from_events, day, at) -> None:
    bad = [RiskEvent(T.CB_FAILURE, timestamp=at(day, i / 10), failure_count=-1) for i in range(5_000)]
    build = build_silver(bronze_from_events(bad), run_id="r", partition=day.isoformat())
    assert build.quarantine.height == 5_000
    assert build.silver.height == 0
    assert build.reason_counts == {"failure_count: >= 0": 5_000}


def test_wrongly_typed_column_quarantines_every_row(bronze_from_events, day, at) -> None:
    bronze = bronze_from_events(good_events(day, at)).with_columns(pl.col("failure_count").cast(pl.String))
    build = build_silver(bronze, run_id="r", partition=day.isoformat())
    assert build.silver.height == 0
    assert build.quarantine.height == bronze.height
    assert all("failure_count: dtype('Int64'): String" in reasons for reasons in build.quarantine["reasons"])
    # Values that still read as the bronze type are kept as they were.
    assert build.quarantine.get_column("failure_count").drop_nulls().to_list() == [1, 5, 0]
    assert_identity(build)


def test_unknown_column_quarantines_every_row(bronze_from_events, day, at) -> None:
    bronze = bronze_from_events(good_events(day, at)).with_columns(pl.lit(1.0).alias("vega"))
    build = build_silver(bronze, run_id="r", partition=day.isoformat())
    assert build.silver.height == 0
    assert build.reason_counts == {"column_in_schema: vega": bronze.height}


def test_reused_event_id_for_a_different_event_is_quarantined_not_dropped(bronze_from_events, day, at) -> None:
    original = RiskEvent(T.CB_FAILURE, timestamp=at(day, 10), failure_count=1)
    impostor = RiskEvent(T.CB_FAILURE, timestamp=at(day, 20), failure_count=2, event_id=original.event_id)
    first = bronze_from_events([original], ingested_at=at(day, 100))
    second = bronze_from_events([impostor], first_sequence=2, ingested_at=at(day, 200))
    build = build_silver(pl.concat([second, first]), run_id="r", partition=day.isoformat())
    assert build.duplicates_removed == 0
    assert build.silver.get_column("failure_count").to_list() == [1]
    assert build.quarantine.select("failure_count", "reasons").rows() == [(2, [EVENT_ID_REUSED])]


def test_runtime_non_event_is_quarantined_with_its_ingest_errors(bronze_from_events, day, at) -> None:
    build = build_silver(bronze_from_events([object(), *good_events(day, at)]), run_id="r", partition=day.isoformat())
    (reasons,) = build.quarantine.get_column("reasons").to_list()
    assert reasons[0].startswith("not a RiskEvent:")
    assert {"event_type: required, got null", "timestamp: required, got null"} <= set(reasons)
    assert "timestamp: not_nullable" in reasons
    assert_identity(build)


def test_empty_bronze_builds_empty_tables(bronze_from_events, day) -> None:
    build = build_silver(bronze_from_events([]), run_id="r", partition=day.isoformat())
    assert (build.bronze_rows, build.silver.height, build.quarantine.height, build.duplicates_removed) == (0, 0, 0, 0)


@pytest.mark.parametrize("rows", [1, 3])
def test_identical_copies_collapse_to_one(bronze_from_events, day, at, rows: int) -> None:
    events = good_events(day, at)[:rows]
    copies = [bronze_from_events(events, ingested_at=at(day, 86_000 + i)) for i in range(3)]
    build = build_silver(pl.concat(copies), run_id="r", partition=day.isoformat())
    assert build.silver.height == rows
    assert build.duplicates_removed == 2 * rows


@pytest.mark.parametrize(
    "setting", [{"validation_depth": ValidationDepth.SCHEMA_ONLY}, {"validation_enabled": False}], ids=str
)
def test_ambient_pandera_settings_cannot_switch_the_rules_off(bronze_from_events, day, at, setting) -> None:
    bad = bronze_from_events([RiskEvent(T.CB_FAILURE, timestamp=at(day, 1), failure_count=-1)])
    with config_context(**setting):  # what PANDERA_VALIDATION_DEPTH / _ENABLED in a deployment would do
        build = build_silver(bad, run_id="r", partition=day.isoformat())
    assert build.reason_counts == {"failure_count: >= 0": 1}
