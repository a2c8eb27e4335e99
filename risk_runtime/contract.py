"""The contract between the runtime and the pipeline, declared once.

The runtime writes bronze; the pipeline reads it and follows its commits. Whatever both halves must
agree on lives here, so that a change to it is one edit that both sides see:

* where bronze lives in a lake (:data:`BRONZE_LAYER`, :data:`BRONZE_NAME`); its schema and partition
  columns are the event model's (:mod:`risk_runtime.events`), next to the dataclass they store;
* the ``commitInfo`` keys a shipper's append carries (:data:`COMMIT_EVENT_DATES`,
  :data:`COMMIT_WRITERS`), and how the days are written and read back
  (:func:`format_event_dates`, :func:`parse_event_dates`) -- the pipeline's bronze sensor rebuilds
  exactly the days a commit declares;
* the SQL literals both halves hand to Delta's query engine (:func:`sql_identifier`,
  :func:`sql_string`, :func:`sql_literal`): one quoting rule, so a source name with a quote in it
  selects the same rows in a breaker's recovery and in an analyst's query.

It imports nothing beyond the standard library: the trading process loads it too.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any, Final

BRONZE_LAYER: Final = "bronze"
BRONZE_NAME: Final = "risk_events"
"""Bronze is ``<lake_root>/bronze/risk_events``."""

COMMIT_EVENT_DATES: Final = "risk_event_dates"
"""``commitInfo`` key of a bronze append: the UTC days it wrote rows for, as :func:`format_event_dates` writes them."""
COMMIT_WRITERS: Final = "risk_event_writers"
"""``commitInfo`` key of a bronze append: how many writers' segments the commit carries."""


def format_event_dates(days: Iterable[date]) -> str:
    """The value of :data:`COMMIT_EVENT_DATES`: distinct ISO days, sorted, comma-separated."""
    return ",".join(sorted({day.isoformat() for day in days}))


def parse_event_dates(value: object) -> set[date]:
    """The days a :data:`COMMIT_EVENT_DATES` value names; ``ValueError`` if any of it is not an ISO day."""
    return {date.fromisoformat(day.strip()) for day in str(value).split(",") if day.strip()}


def sql_identifier(name: str) -> str:
    """A quoted SQL identifier (quotes doubled)."""
    return '"' + name.replace('"', '""') + '"'


def sql_string(value: str) -> str:
    """A SQL string literal (quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


def sql_literal(value: Any) -> str:
    """A SQL literal for a Python value: a bool, a number, an aware datetime, a date or a string.

    A datetime is compared as its UTC instant; a naive one has no instant and is refused, as is None
    (SQL's ``= NULL`` is never true: say ``IS NULL`` instead).
    """
    if value is None:
        raise ValueError("a filter cannot compare with None")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise ValueError(f"a filter cannot compare with a naive datetime ({value!r}): give it a time zone")
        return f"arrow_cast({sql_string(value.astimezone(UTC).isoformat())}, 'Timestamp(Microsecond, Some(\"UTC\"))')"
    if isinstance(value, date):
        return sql_string(value.isoformat())
    return sql_string(str(value))
