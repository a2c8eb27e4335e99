"""``risk-lake queries`` for analysts, on a real simulated lake: 80 columns, summaries first, filters that
narrow to exactly the right rows, CSV and JSON for machines, and one line for a bad argument."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest
from simulated_lake import SimulatedLake, simulated_lake

from risk_pipeline.cli import build_parser
from risk_pipeline.defs.gold.circuit_breaker_transitions import CIRCUIT_BREAKER_TRANSITIONS
from risk_pipeline.defs.gold.trailing_stop_outcomes import TRAILING_STOP_OUTCOMES
from risk_pipeline.defs.partitions import PARTITIONS_START_ENV
from risk_pipeline.lake import Lake
from risk_pipeline.query_sections import SECTIONS

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TITLES = (
    "Circuit breakers: opens and time spent OPEN",
    "Trailing stops",
    "Trailing stops by underlying (profit locked and giveback over triggered stops)",
    "Portfolio limit rejections by limit type",
    "Circuit breaker transitions",
    "Triggered trailing stops",
)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> SimulatedLake:
    return simulated_lake(tmp_path_factory)


def _gold(built: SimulatedLake, ref: object) -> pl.DataFrame:
    return pl.read_delta(Lake(str(built.root)).uri(ref))  # type: ignore[arg-type]


def _json(built: SimulatedLake, *args: str) -> dict[str, list[dict[str, object]]]:
    result = built.cli("queries", "--format", "json", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_table_format_fits_80_columns_and_leads_with_summaries(built: SimulatedLake) -> None:
    result = built.cli("queries")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert not [line for line in lines if len(line) > 80], "lines wider than 80 columns"
    positions = [_title(lines, title) for title in TITLES]
    assert positions == sorted(positions), "summaries first, then the detail rows"
    assert "prev_new_state" not in result.stdout and "event_date" not in result.stdout
    assert not UUID.search(result.stdout), "ids are shortened"
    assert re.search(r"^ \d{4}-\d\d-\d\d \d\d:\d\d:\d\d  ", result.stdout, re.MULTILINE), "one-line UTC timestamps"
    assert "trigger rate" in result.stdout and "profit locked: total" in result.stdout
    transitions = lines.index(next(line for line in lines if line.startswith("Circuit breaker transitions")))
    assert "first 10 of" in lines[transitions]
    limited = built.cli("queries", "--table", "transitions", "--limit", "3").stdout.splitlines()
    assert len([line for line in limited if re.match(r"^ \d{4}-", line)]) == 3


def _title(lines: list[str], title: str) -> int:
    """Where ``title`` heads a section (alone, or followed by how many rows are shown), asserting it does once."""
    where = [i for i, line in enumerate(lines) if line == title or line.startswith(f"{title} (")]
    assert len(where) == 1, (title, where)
    return where[0]


def test_csv_has_every_row_with_full_ids_and_iso_timestamps(built: SimulatedLake) -> None:
    stops = built.cli("queries", "--format", "csv", "--table", "triggered_stops")
    assert stops.returncode == 0, stops.stderr
    rows = list(csv.DictReader(io.StringIO(stops.stdout)))
    triggered = _gold(built, TRAILING_STOP_OUTCOMES).filter(pl.col("outcome") == "triggered")
    assert len(rows) == triggered.height > 10  # every row, not --limit of them
    assert sorted(r["execution_id"] for r in rows) == sorted(triggered["execution_id"].to_list())
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", r["triggered_at"]) for r in rows)

    transitions = pl.read_csv(io.StringIO(built.cli("queries", "--format", "csv", "--table", "transitions").stdout))
    expected = _gold(built, CIRCUIT_BREAKER_TRANSITIONS)
    assert sorted(transitions["event_id"].to_list()) == sorted(expected["event_id"].to_list())
    assert all(UUID.fullmatch(event_id) for event_id in transitions["event_id"])

    everything = built.cli("queries", "--format", "csv").stdout.strip()
    blocks = everything.split("\n\n")
    assert [block.splitlines()[0] for block in blocks] == [f"# {name}" for name in SECTIONS]
    for block in blocks:
        table = list(csv.reader(io.StringIO(block.split("\n", 1)[1])))
        assert len({len(row) for row in table}) == 1  # a header and rows of its width


def test_json_parses_with_every_section(built: SimulatedLake) -> None:
    document = _json(built)
    assert set(SECTIONS) <= set(document)
    assert len(document["transitions"]) == _gold(built, CIRCUIT_BREAKER_TRANSITIONS).height
    (overall,) = document["stops"]
    assert overall["stops"] == _gold(built, TRAILING_STOP_OUTCOMES).height


def test_each_filter_narrows_to_exactly_the_expected_rows(built: SimulatedLake) -> None:
    transitions, outcomes = _gold(built, CIRCUIT_BREAKER_TRANSITIONS), _gold(built, TRAILING_STOP_OUTCOMES)
    triggered = outcomes.filter(pl.col("outcome") == "triggered")
    second, third = built.first_day + timedelta(days=1), built.first_day + timedelta(days=2)

    # --start/--end: UTC days, inclusive
    narrowed = _json(built, "--start", second.isoformat(), "--end", third.isoformat())
    in_days = transitions.filter(pl.col("event_date").is_between(second, third))
    assert 0 < len(narrowed["transitions"]) < transitions.height
    assert sorted(r["event_id"] for r in narrowed["transitions"]) == sorted(in_days["event_id"].to_list())  # type: ignore[index]
    one_day = _json(built, "--start", second.isoformat(), "--end", second.isoformat())
    stops_that_day = outcomes.filter(pl.col("event_date") == second)
    assert one_day["stops"][0]["stops"] == stops_that_day.height

    # --source: one breaker
    source = transitions["source"].mode().sort()[0]
    only = _json(built, "--source", source)
    assert {r["source"] for r in only["transitions"]} == {source}  # type: ignore[index]
    assert len(only["transitions"]) == transitions.filter(pl.col("source") == source).height
    assert [r["source"] for r in only["breakers"]] == [source]  # type: ignore[index]

    # --symbol: the stops on one underlying
    symbol = triggered["underlying"].mode().sort()[0]
    on_symbol = _json(built, "--symbol", symbol)
    expected = triggered.filter(pl.col("underlying") == symbol)
    assert sorted(r["execution_id"] for r in on_symbol["triggered_stops"]) == sorted(expected["execution_id"])  # type: ignore[index]
    assert on_symbol["stops"][0]["stops"] == outcomes.filter(pl.col("underlying") == symbol).height
    assert [r["underlying"] for r in on_symbol["stops_by_underlying"]] == [symbol]  # type: ignore[index]

    # --execution-id: one stop
    execution_id = triggered["execution_id"][0]
    one = _json(built, "--execution-id", execution_id)
    assert [r["execution_id"] for r in one["triggered_stops"]] == [execution_id]  # type: ignore[index]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["simulate", "--days", "0"], "--days: must be at least 1"),
        (["simulate", "--events", "-5"], "--events: must be at least 1"),
        (["queries", "--start", "2026-3-2"], "expected YYYY-MM-DD"),
        (["materialize", "--end", "yesterday"], "expected YYYY-MM-DD"),
        (["queries", "--start", "2026-03-05", "--end", "2026-03-02"], "--start 2026-03-05 is after --end 2026-03-02"),
        (["queries", "--limit", "0"], "--limit: must be at least 1"),
        (["queries", "--format", "xml"], "invalid choice"),
    ],
)
def test_a_bad_argument_is_one_line_and_a_non_zero_exit(built: SimulatedLake, args: list[str], says: str) -> None:
    result = built.cli(*args)
    assert result.returncode == 2, result.stdout
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert says in result.stderr


@pytest.mark.parametrize("command", ["queries", "materialize"])
def test_a_lake_that_does_not_exist_is_an_error(tmp_path: Path, command: str) -> None:
    lake = SimulatedLake(tmp_path / "nowhere", tmp_path / "home", tmp_path / "spool")
    result = lake.cli(command)
    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert f"no lake at {tmp_path / 'nowhere'}" in result.stderr
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize("command", ["simulate", "materialize", "queries", "demo"])
def test_every_subcommand_takes_lake_before_or_after_its_name(command: str) -> None:
    parser = build_parser()
    assert parser.parse_args([command, "--lake", "/srv/after"]).lake == "/srv/after"
    assert parser.parse_args(["--lake", "/srv/before", command]).lake == "/srv/before"
    assert parser.parse_args([command]).lake is None


def test_help_shows_the_date_format_and_an_example(built: SimulatedLake) -> None:
    text = built.cli("queries", "--help").stdout
    assert "YYYY-MM-DD" in text and "e.g. 2026-03-02" in text
    assert "risk-lake queries --start 2026-03-02 --end 2026-03-04" in text
    for command in ("materialize", "simulate"):
        assert "YYYY-MM-DD" in build_parser()._subparsers._group_actions[0].choices[command].format_help()  # type: ignore[union-attr]


def test_demo_sets_the_partitions_start_and_ends_with_the_summary(tmp_path: Path) -> None:
    lake = SimulatedLake(tmp_path / "lake", tmp_path / "home", tmp_path / "spool")
    (tmp_path / "home").mkdir()
    first = date.today() - timedelta(days=2)  # the default: two days ending yesterday
    result = lake.cli("demo", "--days", "2", "--events", "1500", **{PARTITIONS_START_ENV: ""})
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert f"{PARTITIONS_START_ENV}={first.isoformat()}" in out
    summary = out[out.index("Risk lake ") :]
    for title in TITLES:
        _title(out.splitlines(), title)  # each table printed once
    assert "prev_new_state" not in out
    paths = {line for line in summary.splitlines() if Path(line.strip()).is_file()}  # a path cannot wrap
    assert not [line for line in summary.splitlines() if len(line) > 80 and line not in paths]
