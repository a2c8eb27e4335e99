"""``risk-lake``: the operator's and analyst's command line.

    risk-lake simulate      a simulated trading session into bronze, through the real logger
    risk-lake materialize   silver and gold for every day bronze holds, or a date range
    risk-lake queries       the design guide's three post-mortem queries, over gold
    risk-lake demo          all three in a row, then the gold tables

Every command takes ``--lake`` (default ``$RISK_LAKE_ROOT``, else ``data/lake``), before or after
the command's name, with the same meaning (``simulate`` writes through that lake's own spool), and, for an
object-store lake, ``--storage-option KEY=VALUE`` (repeatable) on top of ``$RISK_STORAGE_OPTIONS``
(credentials belong in the variable: a command line is visible to every user of the host). Runs happen
in-process; with ``$DAGSTER_HOME`` set they are recorded in that instance, so the Dagster UI shows
them next to scheduled runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

import dagster as dg
import polars as pl

from risk_pipeline import queries
from risk_pipeline.defs.constants import BRONZE_RISK_EVENTS, GOLD_GROUP, SILVER_GROUP
from risk_pipeline.defs.gold.circuit_breaker_transitions import CIRCUIT_BREAKER_TRANSITIONS
from risk_pipeline.defs.gold.limit_rejection_stats import LIMIT_REJECTION_STATS
from risk_pipeline.defs.gold.trailing_stop_outcomes import TRAILING_STOP_OUTCOMES
from risk_pipeline.defs.silver.schema import QUARANTINE, SILVER
from risk_pipeline.defs.silver.window import days_to_build
from risk_pipeline.lake import Lake
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
def simulate(args: argparse.Namespace) -> int:
    lake = _lake(args)
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


def _instance() -> dg.DagsterInstance:
    return dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()


def materialize_days(days: Sequence[date], *, single_run: bool = False, quiet: bool = False) -> bool:
    """Materialise silver and gold for ``days`` in order: one run per day, or one range run."""
    from risk_pipeline.definitions import defs  # loaded after --lake is applied to the environment

    job = defs.resolve_implicit_global_asset_job_def().get_subset(
        asset_selection=dg.AssetSelection.groups(SILVER_GROUP, GOLD_GROUP).resolve(defs.resolve_asset_graph())
    )
    instance = _instance()
    batches: list[list[date]] = [list(days)] if single_run else [[d] for d in days]
    ok = True
    for batch in _progress(batches, disable=quiet):
        first, last = batch[0].isoformat(), batch[-1].isoformat()
        tags = (
            {"dagster/partition": first}
            if first == last
            else {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
        )
        result = job.execute_in_process(instance=instance, tags=tags, raise_on_error=False, run_config=_QUIET)
        failed_checks = [
            event.asset_check_evaluation_data.check_name
            for event in result.all_events
            if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
            and not event.asset_check_evaluation_data.passed
        ]
        if not result.success or failed_checks:
            ok = ok and result.success
            status = "ok" if result.success else "FAILED"
            print(f"  {first}..{last}: {status}; failed checks: {failed_checks or 'none'}")
    return ok


_QUIET: Final = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
"""Step-by-step logs belong in the Dagster UI; the terminal shows progress and failures."""


def _progress(items: list[Any], *, disable: bool) -> Any:
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is in the pipeline extra; without it, no bar
        return items
    return tqdm(items, desc="materialising", unit="run", disable=disable)


def materialize(args: argparse.Namespace) -> int:
    lake = _lake(args)
    days = _days(lake, args.start, args.end)
    if not days:
        print(f"bronze at {lake.uri(BRONZE_RISK_EVENTS)} holds no days in that range")
        return 1
    print(f"materialising silver and gold for {len(days)} day(s): {days[0]} .. {days[-1]}")
    began = time.monotonic()
    ok = materialize_days(days, single_run=args.single_run)
    print(f"done in {time.monotonic() - began:.1f}s")
    return 0 if ok else 1


# ---------------------------------------------------------------------------------------------- queries
def _show(title: str, frame: pl.DataFrame, rows: int = 20) -> None:
    print(f"\n== {title} ({frame.height} rows)")
    with pl.Config(tbl_rows=rows, tbl_cols=16, tbl_width_chars=160, fmt_str_lengths=24):
        print(frame.head(rows) if frame.height else "(empty)")


def run_queries(args: argparse.Namespace) -> int:
    lake = _lake(args)
    _show("Circuit breaker state history", queries.circuit_breaker_history(lake, source=args.source))
    _show("Trailing stop profit locked", queries.trailing_stop_profit(lake, execution_id=args.execution_id))
    _show("Portfolio limit rejections by limit type", queries.rejections_by_limit_type(lake))
    return 0


def show_tables(lake: Lake) -> None:
    for ref in (SILVER, QUARANTINE):
        print(f"{ref}: {lake.read_all(ref, columns=['event_id']).height:,} rows")
    for ref in (CIRCUIT_BREAKER_TRANSITIONS, TRAILING_STOP_OUTCOMES, LIMIT_REJECTION_STATS):
        _show(str(ref), lake.read_all(ref), rows=12)


# ---------------------------------------------------------------------------------------------- demo
def demo(args: argparse.Namespace) -> int:
    lake = _lake(args)
    if simulate(args) != 0:
        return 1
    days = _days(lake, args.start, None)
    print(f"\nmaterialising silver and gold for {len(days)} day(s)")
    if not materialize_days(days):
        return 1
    print()
    show_tables(lake)
    return run_queries(args)


def _date(text: str) -> date:
    return date.fromisoformat(text)


def _storage_option(text: str) -> str:
    try:
        parse_option_flags([text])
    except ValueError as exc:  # its message never echoes the argument, which may be a secret
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def build_parser() -> argparse.ArgumentParser:
    lake_help = f"lake root (default: ${LAKE_ROOT_ENV}, else data/lake); the spool follows it"
    parser = argparse.ArgumentParser(prog="risk-lake", description=__doc__.splitlines()[0])
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
        today = datetime.now(UTC).date()
        command.add_argument("--days", type=int, default=3, help="simulated trading days (default 3)")
        command.add_argument("--events", type=int, default=20_000, help="about this many events in all")
        command.add_argument("--seed", type=int, default=7)
        command.add_argument(
            "--start", type=_date, default=today - timedelta(days=2), help="first day (default: two days ago)"
        )

    simulation_options(
        commands.add_parser("simulate", parents=[lake_option], help="a simulated trading session into bronze")
    )
    mat = commands.add_parser("materialize", parents=[lake_option], help="silver and gold for the days bronze holds")
    mat.add_argument("--start", type=_date, default=None, help="first day (default: the earliest in bronze)")
    mat.add_argument("--end", type=_date, default=None, help="last day, inclusive (default: the latest)")
    mat.add_argument("--single-run", action="store_true", help="one run for the whole range (a backfill)")
    qry = commands.add_parser("queries", parents=[lake_option], help="the post-mortem queries over gold")
    qry.add_argument("--source", default=None, help="only this circuit breaker")
    qry.add_argument("--execution-id", default=None, help="only this trailing stop")
    dem = commands.add_parser(
        "demo", parents=[lake_option], help="simulate, materialise, print the gold tables and the queries"
    )
    simulation_options(dem)
    dem.set_defaults(source=None, execution_id=None)
    return parser


COMMANDS = {"simulate": simulate, "materialize": materialize, "queries": run_queries, "demo": demo}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return COMMANDS[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
