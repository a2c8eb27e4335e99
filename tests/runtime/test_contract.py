"""The runtime-pipeline contract is declared once and means the same on both sides."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from risk_runtime.contract import (
    COMMIT_EVENT_DATES,
    format_event_dates,
    parse_event_dates,
    sql_identifier,
    sql_literal,
    sql_string,
)

REPO = Path(__file__).resolve().parents[2]


def test_event_dates_round_trip_sorted_and_distinct() -> None:
    days = [date(2026, 3, 3), date(2026, 3, 2), date(2026, 3, 3)]
    text = format_event_dates(days)
    assert text == "2026-03-02,2026-03-03"
    assert parse_event_dates(text) == {date(2026, 3, 2), date(2026, 3, 3)}
    assert parse_event_dates(" 2026-03-02 , ") == {date(2026, 3, 2)}
    with pytest.raises(ValueError):
        parse_event_dates("yesterday")


def test_sql_literals_quote_and_compare_instants() -> None:
    assert sql_identifier('a"b') == '"a""b"'
    assert sql_string("o'brien") == "'o''brien'"
    assert sql_literal("o'brien") == "'o''brien'"
    assert sql_literal(date(2026, 3, 2)) == "'2026-03-02'"
    assert sql_literal(True) == "true" and sql_literal(3) == "3"
    new_york = timezone(timedelta(hours=-5))
    assert "2026-03-03T01:30:00+00:00" in sql_literal(datetime(2026, 3, 2, 20, 30, tzinfo=new_york))
    assert sql_literal(datetime(2026, 3, 3, 1, 30, tzinfo=UTC)) == sql_literal(
        datetime(2026, 3, 2, 20, 30, tzinfo=new_york)
    )
    for bad in (None, datetime(2026, 3, 2, 20, 30)):
        with pytest.raises(ValueError):
            sql_literal(bad)


def test_each_contract_literal_is_spelled_in_one_place() -> None:
    """A second spelling of a contract key or quoting rule is how the two halves drift apart."""
    sources = [p for d in ("risk_runtime", "risk_pipeline", "bench") for p in (REPO / d).rglob("*.py")]
    spelled = {
        f'"{COMMIT_EVENT_DATES}"': [],
        "def sql_string": [],
        "def sql_identifier": [],
        "def storage_options_from_env": [],
        '= "RISK_STORAGE_OPTIONS"': [],
        "def commit_metadata": [],
    }
    for path in sources:
        text = path.read_text()
        for needle, found in spelled.items():
            found.extend([str(path.relative_to(REPO))] * len(re.findall(re.escape(needle), text)))
    assert {needle: len(found) for needle, found in spelled.items()} == dict.fromkeys(spelled, 1), spelled
