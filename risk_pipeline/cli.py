"""``risk-lake``: the operator's and analyst's command line.

    risk-lake simulate      a simulated trading session into bronze, through the real logger
    risk-lake materialize   silver and gold for every day bronze holds, or a date range
    risk-lake queries       the design guide's post-mortem queries over gold: summaries, then rows
    risk-lake report        the risk-history dashboard: one self-contained HTML file
    risk-lake demo          all three in a row, ending with the queries' summary and the dashboard

Every command takes ``--lake`` (default ``$RISK_LAKE_ROOT``, else ``data/lake``), before or after
the command's name, with the same meaning (``simulate`` writes through that lake's own spool), and, for an
object-store lake, ``--storage-option KEY=VALUE`` (repeatable) on top of ``$RISK_STORAGE_OPTIONS``
(credentials belong in the variable: a command line is visible to every user of the host). Runs happen
in-process (:mod:`risk_pipeline.materialization`); with ``$DAGSTER_HOME`` set they are recorded in that
instance, so the Dagster UI shows them next to scheduled runs, and their silver and gold steps take turns
with every other run of that instance (its concurrency pools, see :mod:`risk_pipeline.defs.ordering`).

A failure is never exit 0: ``materialize`` (and ``demo``) exit 1 when a run or any check fails,
blocking or not, after printing each failed check with its facts; ``--allow-check-failures`` lets
failed checks (not failed runs) exit 0. ``queries`` on a lake without gold exits 1.

``queries`` is for analysts: by default a report for an 80-column terminal (summaries per breaker, of the
trailing stops and of limit rejections first, then a few detail rows, ids shortened, one-line UTC
timestamps; :mod:`risk_pipeline.report_text` shapes it), filtered by UTC days (``--start/--end``,
inclusive), breaker, stop or underlying; ``--format csv|json`` gives every row, full ids and ISO
timestamps. A bad argument, or a lake that does not exist, is one line on stderr and a non-zero exit
(2 for the arguments, 1 for the lake), never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Final, NoReturn

from risk_pipeline.defs.constants import BRONZE_RISK_EVENTS
from risk_pipeline.defs.gold.circuit_breaker_transitions import CIRCUIT_BREAKER_TRANSITIONS
from risk_pipeline.defs.gold.limit_rejection_stats import LIMIT_REJECTION_STATS
from risk_pipeline.defs.gold.trailing_stop_outcomes import TRAILING_STOP_OUTCOMES
from risk_pipeline.defs.metadata import table_rows
from risk_pipeline.defs.partitions import PARTITIONS_START_ENV
from risk_pipeline.defs.silver.schema import QUARANTINE, SILVER
from risk_pipeline.defs.silver.window import days_to_build
from risk_pipeline.lake import Lake, TableRef
from risk_pipeline.materialization import exit_code, materialize_days, open_instance
from risk_pipeline.query_sections import SECTIONS, QueryFilters, query_sections
from risk_pipeline.report import build_report, default_report_path
from risk_pipeline.report_text import FORMATS, render_csv, render_json, render_table
from risk_runtime.logger import RiskEventLogger
from risk_runtime.simulation.session import simulate_session
from risk_runtime.storage import STORAGE_OPTIONS_ENV, parse_option_flags, storage_options_from_env
from risk_runtime.table import LAKE_ROOT_ENV


def _lake(args: argparse.Namespace) -> Lake:
    """The lake the command works on; the root and options also go to the environment, because the code
    location (loaded later, in this process) and the shipper (a child process) read them from there."""
    if args.lake:
        os.environ[LAKE_ROOT_ENV] = args.lake
    options = {**(storage_options_from_env() or {}), **parse_option_flags(args.storage_option)}
    if options:
        os.environ[STORAGE_OPTIONS_ENV] = json.dumps(options)
    return Lake(args.lake, storage_options=options or None)


# ---------------------------------------------------------------------------------------------- simulate
def first_simulated_day(start: date | None, days: int, today: date | None = None) -> date:
    """``start``, or by default the day that makes the last simulated day yesterday.

    A simulated session trades 13:30-20:00 UTC; a day that has not happened yet would carry timestamps
    ahead of their ingestion, which silver rightly quarantines (``$RISK_MAX_EVENT_AHEAD``).
    """
    return start if start is not None else (today or datetime.now(UTC).date()) - timedelta(days=days)


def simulate(args: argparse.Namespace) -> int:
    lake = _lake(args)
    args.start = first_simulated_day(args.start, args.days)
    start = datetime.combine(args.start, datetime.min.time(), UTC) + timedelta(hours=13, minutes=30)
    print(f"simulating {args.days} day(s) from {start:%Y-%m-%d}, ~{args.events:,} events, into {lake.location}")
    began = time.monotonic()
    logger = RiskEventLogger(lake.location, storage_options=lake.storage_options)
    with logger:
        summary = simulate_session(
            logger, seed=args.seed, start=start, days=args.days, target_events=args.events, progress=True
        )
        landed = logger.flush_blocking(timeout=300)
    stats = logger.stats()
    print(
        f"logged {stats.accepted:,} events ({stats.dropped} dropped) in {time.monotonic() - began:.1f}s; "
        f"committed to bronze: {stats.committed:,}{'' if landed else ' (the rest is still in the spool)'}"
    )
    for kind, count in sorted(summary.events.items()):
        print(f"  {kind:<34} {count:>9,}")
    return 0 if landed else 1


# ---------------------------------------------------------------------------------------------- materialize
def _days(lake: Lake, start: date | None, end: date | None) -> list[date]:
    present = days_to_build(lake, lake.days_present(BRONZE_RISK_EVENTS))  # never a day dated 1999 or 2099
    return [d for d in present if (start is None or d >= start) and (end is None or d <= end)]


def materialize(args: argparse.Namespace) -> int:
    lake = _lake(args)
    require_lake(lake, [BRONZE_RISK_EVENTS])
    days = _days(lake, args.start, args.end)
    if not days:
        print(f"bronze at {lake.uri(BRONZE_RISK_EVENTS)} holds no days in that range", file=sys.stderr)
        return 1
    print(f"materialising {len(days)} day(s) of bronze: {days[0]} .. {days[-1]}")
    began = time.monotonic()
    outcome = materialize_days(days, lake=lake, single_run=args.single_run)
    print(f"done in {time.monotonic() - began:.1f}s")
    return exit_code(outcome, allow_check_failures=args.allow_check_failures)


# ---------------------------------------------------------------------------------------------- queries
GOLD_TABLES: Final = (CIRCUIT_BREAKER_TRANSITIONS, TRAILING_STOP_OUTCOMES, LIMIT_REJECTION_STATS)


class CliError(Exception):
    """A request the command cannot serve (a missing lake, an empty range): one line on stderr, exit 1."""


def require_lake(lake: Lake, tables: Sequence[TableRef]) -> None:
    """Refuse a lake that does not exist, or lacks ``tables``, naming what is missing and what to run."""
    missing = [ref for ref in tables if not lake.exists(ref)]
    if not missing:
        return
    if not any(lake.exists(ref) for ref in (BRONZE_RISK_EVENTS, SILVER, *GOLD_TABLES)):
        raise CliError(
            f"no lake at {lake.location} (check --lake or ${LAKE_ROOT_ENV}; `risk-lake simulate` writes one)"
        )
    names = ", ".join(str(ref) for ref in missing)
    after = "run `risk-lake materialize` first" if BRONZE_RISK_EVENTS not in missing else "nothing has landed yet"
    raise CliError(f"the lake at {lake.location} has no {names}: {after}")


def run_queries(args: argparse.Namespace) -> int:
    lake = _lake(args)
    require_lake(lake, GOLD_TABLES)
    filters = QueryFilters(args.start, args.end, args.source, args.execution_id, args.symbol)
    chosen = [s for s in query_sections(lake, filters) if args.table in ("all", s.name)]
    if args.format == "csv":
        print(render_csv(chosen))
    elif args.format == "json":
        print(render_json(chosen, {"lake": lake.location, "filters": filters.as_json()}))
    else:
        print(render_table(chosen, [f"Risk lake {lake.location}", *filters.describe()], args.limit))
    return 0


def show_counts(lake: Lake) -> None:
    """How many rows silver and its quarantine hold (from the Delta log)."""
    for ref in (SILVER, QUARANTINE):
        print(f"{ref}: {table_rows(lake, ref):,} rows")


# ---------------------------------------------------------------------------------------------- demo
def demo(args: argparse.Namespace) -> int:
    lake = _lake(args)
    if simulate(args) != 0:
        return 1
    first_day = args.start.isoformat()
    if not os.environ.get(PARTITIONS_START_ENV):
        # The lake's first day is the partitions' first day, so the UI's partition bars are about this lake.
        os.environ[PARTITIONS_START_ENV] = first_day
    days = _days(lake, args.start, None)
    print(f"\nmaterialising silver and gold for {len(days)} day(s)")
    code = exit_code(materialize_days(days, lake=lake))
    if code != 0:
        return code
    print()
    show_counts(lake)
    code = run_queries(args)
    dashboard = build_report(lake, None, None, default_report_path(lake), instance=open_instance())
    print(f"\ndashboard ({dashboard.period}, {dashboard.size_bytes / 1e6:.1f} MB), open it in a browser:")
    print(f"  {dashboard.path}")
    print(f"Dagster UI: {PARTITIONS_START_ENV}={os.environ[PARTITIONS_START_ENV]} make dev")
    return code


# ---------------------------------------------------------------------------------------------- report
def report(args: argparse.Namespace) -> int:
    """Write the dashboard for ``--start`` .. ``--end`` and print its path and size."""
    lake = _lake(args)
    require_lake(lake, GOLD_TABLES)
    instance = open_instance() if os.environ.get("DAGSTER_HOME") else None  # failed checks live in the instance
    summary = build_report(lake, args.start, args.end, args.out, instance=instance)
    print(f"{summary.path} ({summary.size_bytes:,} bytes, {summary.period}, {summary.charts} charts)")
    return 0


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a day: {text!r} (expected YYYY-MM-DD, e.g. 2026-03-02)") from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _storage_option(text: str) -> str:
    try:
        parse_option_flags([text])
    except ValueError as exc:  # its message never echoes the argument, which may be a secret
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


class _Parser(argparse.ArgumentParser):
    """Bad arguments are one line on stderr and exit 2: what was wrong, and where the help is."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


DAY_METAVAR: Final = "YYYY-MM-DD"
QUERIES_EXAMPLES: Final = """\
examples:
  risk-lake queries --start 2026-03-02 --end 2026-03-04
  risk-lake queries --source orders.cboe --limit 50
  risk-lake queries --symbol SPY --format csv --table triggered_stops > spy_stops.csv
  risk-lake queries --format json > report.json

Days are UTC, inclusive. --source narrows the breakers, --execution-id and --symbol (the option's
underlying) the trailing stops; limit rejections are per limit type and day, so only days narrow them.
csv and json carry every row with full ids and ISO 8601 UTC timestamps; csv of several tables writes
one block per table, each after a "# <table>" line (--table picks one: plain CSV)."""


def build_parser() -> argparse.ArgumentParser:
    lake_help = f"lake root (default: ${LAKE_ROOT_ENV}, else data/lake); the spool follows it"
    parser = _Parser(prog="risk-lake", description=__doc__.splitlines()[0])
    parser.add_argument("--lake", default=None, help=lake_help)
    parser.add_argument(
        "--storage-option",
        action="append",
        default=[],
        type=_storage_option,
        metavar="KEY=VALUE",
        help=f"a deltalake storage option, over ${STORAGE_OPTIONS_ENV} (repeatable; keep secrets in the variable)",
    )
    # The same option after the subcommand, meaning the same thing (SUPPRESS: absent there, the
    # value given before the subcommand stands).
    lake_option = argparse.ArgumentParser(add_help=False)
    lake_option.add_argument("--lake", default=argparse.SUPPRESS, help=lake_help)
    commands = parser.add_subparsers(dest="command", required=True)

    def simulation_options(command: argparse.ArgumentParser) -> None:
        command.add_argument("--days", type=_positive, default=3, help="simulated trading days (default 3)")
        command.add_argument("--events", type=_positive, default=20_000, help="about this many events in all")
        command.add_argument("--seed", type=int, default=7)
        command.add_argument(
            "--start",
            type=_date,
            default=None,
            metavar=DAY_METAVAR,
            help="first UTC day, e.g. 2026-03-02 (default: the last day simulated is yesterday)",
        )

    def day_range(command: argparse.ArgumentParser, first: str, last: str) -> None:
        command.add_argument("--start", type=_date, default=None, metavar=DAY_METAVAR, help=first)
        command.add_argument("--end", type=_date, default=None, metavar=DAY_METAVAR, help=last)

    simulation_options(
        commands.add_parser("simulate", parents=[lake_option], help="a simulated trading session into bronze")
    )
    mat = commands.add_parser("materialize", parents=[lake_option], help="silver and gold for the days bronze holds")
    day_range(
        mat,
        "first UTC day, e.g. 2026-03-02 (default: the earliest in bronze)",
        "last UTC day, inclusive, e.g. 2026-03-04 (default: the latest)",
    )
    mat.add_argument("--single-run", action="store_true", help="one run for the whole range (a backfill)")
    mat.add_argument(
        "--allow-check-failures",
        action="store_true",
        help="exit 0 when every run succeeded even if checks failed (they are still printed)",
    )
    qry = commands.add_parser(
        "queries",
        parents=[lake_option],
        help="the post-mortem queries over gold: summaries, then rows",
        description="Summaries first (per breaker, trailing stops, limit rejections), then the detail rows.",
        epilog=QUERIES_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    day_range(qry, "first UTC day, e.g. 2026-03-02 (default: all days)", "last UTC day, inclusive, e.g. 2026-03-04")
    qry.add_argument("--source", default=None, metavar="BREAKER", help="only this circuit breaker, e.g. orders.cboe")
    qry.add_argument("--execution-id", default=None, metavar="ID", help="only this trailing stop (its full id)")
    qry.add_argument("--symbol", default=None, metavar="UNDERLYING", help="only stops on this underlying, e.g. SPY")
    qry.add_argument(
        "--limit", type=_positive, default=10, metavar="N", help="detail rows shown in table format (default 10)"
    )
    qry.add_argument("--format", choices=FORMATS, default="table", help="table (default, 80 columns), csv or json")
    qry.add_argument("--table", choices=("all", *SECTIONS), default="all", help="only this table (default: all)")
    rep = commands.add_parser(
        "report",
        parents=[lake_option],
        help="the risk-history dashboard as one HTML file that opens offline",
        epilog="example: risk-lake report --start 2026-03-02 --end 2026-03-06 --out risk_history.html",
    )
    day_range(
        rep, "first UTC day, e.g. 2026-03-02 (default: gold's first)", "last UTC day, inclusive (default: gold's last)"
    )
    rep.add_argument("--out", required=True, type=Path, metavar="FILE.html", help="where to write the page")
    dem = commands.add_parser(
        "demo", parents=[lake_option], help="simulate, materialise, then the queries' summary and the dashboard"
    )
    simulation_options(dem)
    dem.set_defaults(end=None, source=None, execution_id=None, symbol=None, limit=5, format="table", table="all")
    return parser


COMMANDS = {"simulate": simulate, "materialize": materialize, "queries": run_queries, "report": report, "demo": demo}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    start, end = getattr(args, "start", None), getattr(args, "end", None)
    if start is not None and end is not None and start > end:
        parser.exit(2, f"risk-lake {args.command}: error: --start {start} is after --end {end}\n")
    try:
        return COMMANDS[args.command](args)
    except (CliError, ValueError) as exc:  # a request the lake cannot serve, or a bad root or setting
        print(f"risk-lake {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # the reader left (`| head`): not an error of ours, and no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
