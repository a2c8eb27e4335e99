"""``risk-lake``: the operator's and analyst's command line.

    risk-lake simulate      a simulated trading session into bronze, through the real logger
    risk-lake materialize   silver and gold for every day bronze holds, or a date range
    risk-lake queries       the design guide's three post-mortem queries, over gold
    risk-lake report        the risk-history dashboard: one self-contained HTML file
    risk-lake demo          all three in a row, then the gold tables and the dashboard

Every command takes ``--lake`` (default ``$RISK_LAKE_ROOT``, else ``data/lake``), before or after
the command's name, with the same meaning (``simulate`` writes through that lake's own spool), and, for an
object-store lake, ``--storage-option KEY=VALUE`` (repeatable) on top of ``$RISK_STORAGE_OPTIONS``
(credentials belong in the variable: a command line is visible to every user of the host). Runs happen
in-process; with ``$DAGSTER_HOME`` set they are recorded in that instance, so the Dagster UI shows
them next to scheduled runs, and their silver and gold steps take turns with every other run of that
instance (its concurrency pools, see :mod:`risk_pipeline.defs.ordering`).

A failure is never exit 0: ``materialize`` (and ``demo``) exit 1 when a run or any check fails,
blocking or not, after printing each failed check with its facts; ``--allow-check-failures`` lets
failed checks (not failed runs) exit 0. ``queries`` on a lake without gold exits 1.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import dagster as dg
import polars as pl

from risk_pipeline import queries
from risk_pipeline.defs.constants import BRONZE_RISK_EVENTS, GOLD_GROUP, SILVER_GROUP
from risk_pipeline.defs.gold.circuit_breaker_transitions import CIRCUIT_BREAKER_TRANSITIONS
from risk_pipeline.defs.gold.limit_rejection_stats import LIMIT_REJECTION_STATS
from risk_pipeline.defs.gold.trailing_stop_outcomes import TRAILING_STOP_OUTCOMES
from risk_pipeline.defs.ordering import gold_through, partition_tags
from risk_pipeline.defs.resources import lake_resource_from_env
from risk_pipeline.defs.silver.schema import QUARANTINE, SILVER
from risk_pipeline.defs.silver.window import days_to_build
from risk_pipeline.lake import Lake, days_between
from risk_pipeline.report import build_report, default_report_path
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


def _instance() -> dg.DagsterInstance:
    home = os.environ.get("DAGSTER_HOME")
    if home:
        # Opening a SQLite instance for the first time creates and stamps its databases; two risk-lake
        # processes doing that at once leave two schema heads behind ("more than one head present"), and
        # every later open fails. One opener at a time per instance folder (a no-op cost once it exists).
        Path(home).mkdir(parents=True, exist_ok=True)
        with open(Path(home) / ".risk-lake-open.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            return dg.DagsterInstance.get()
    print(
        "note: $DAGSTER_HOME is not set: these runs use a temporary Dagster instance, so they are not recorded "
        "and do not take turns with runs of other processes on the same lake",
        file=sys.stderr,
    )
    return dg.DagsterInstance.ephemeral()


HOST_TAG: Final = "risk/cli_host"
PID_TAG: Final = "risk/cli_pid"
"""Tags of every run the CLI executes in its own process: who to ask whether the run is still alive."""


def release_abandoned_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed the CLI runs of this host whose process is gone, freeing their concurrency slots.

    An in-process run killed outright (``kill -9``, a power cut) stays "started" and keeps its pool's slot,
    so every later silver or gold step would wait for it forever. Only runs this CLI started on this host
    are looked at, and only when their process no longer exists.
    """
    host = socket.gethostname()
    running = instance.get_runs(
        filters=dg.RunsFilter(
            statuses=[dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED], tags={HOST_TAG: host}
        )
    )
    released = []
    for run in running:
        pid = int(run.tags.get(PID_TAG, "0"))
        if pid and not _alive(pid):
            instance.report_run_failed(run, f"the risk-lake process {pid} that ran it on {host} is gone")
            if instance.event_log_storage.supports_global_concurrency_limits:
                instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
            released.append(run.run_id)
    return released


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


@dataclass(frozen=True)
class FailedCheck:
    """A check that did not pass, with the facts its metadata gives (a gap's writer and range, days broken)."""

    days: str
    asset: str
    name: str
    severity: str
    facts: dict[str, Any]

    def __str__(self) -> str:
        facts = "; ".join(f"{key}: {_short(value)}" for key, value in self.facts.items())
        return f"  FAILED CHECK {self.asset} {self.name} ({self.severity}) for {self.days}: {facts or 'no details'}"


def _short(value: Any, limit: int = 300) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class Materialized:
    """What a materialisation ended with: the runs that failed (and why) and every failed check."""

    failed_runs: list[str] = field(default_factory=list)
    failed_checks: list[FailedCheck] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed_runs and not self.failed_checks


Step = tuple[str, date, date]
"""One run of the plan: which layers (``silver+gold`` or ``gold``), its first and last day."""


def plan_runs(days: Sequence[date], through: date, *, single_run: bool) -> list[Step]:
    """The runs that rebuild silver for ``days`` and gold from the first of them through ``through``.

    Gold day D starts from D-1's carried state, so every gold day from the first day asked to the latest
    built one is rebuilt, in calendar order, after the silver it reads. One run per day (silver and gold
    for a day asked, gold alone for the days between and after them), or with ``single_run`` one silver
    run over the days asked and one gold run over the whole range.
    """
    first, last = days[0], days[-1]
    if single_run:
        return [("silver", first, last), ("gold", first, through)]
    asked = set(days)
    return [("silver+gold" if d in asked else "gold", d, d) for d in days_between(first, through + timedelta(days=1))]


def materialize_days(
    days: Sequence[date], *, lake: Lake | None = None, single_run: bool = False, quiet: bool = False
) -> Materialized:
    """Materialise silver for ``days`` and gold from the first of them through the latest gold day, in order."""
    from risk_pipeline.definitions import defs  # loaded after --lake is applied to the environment

    the_lake = lake or Lake()
    graph = defs.resolve_asset_graph()
    implicit = defs.resolve_implicit_global_asset_job_def()
    groups = {"silver": (SILVER_GROUP,), "gold": (GOLD_GROUP,), "silver+gold": (SILVER_GROUP, GOLD_GROUP)}
    jobs = {
        name: implicit.get_subset(asset_selection=dg.AssetSelection.groups(*g).resolve(graph))
        for name, g in groups.items()
    }
    if (the_lake.storage_options or None) != storage_options_from_env():
        # Plain resource config is stored with every run: credentials reach runs through the variable only.
        raise ValueError(f"storage options reach pipeline runs through ${STORAGE_OPTIONS_ENV} only; set it")
    resources = {"lake": lake_resource_from_env(root=the_lake.location)}
    through = gold_through(the_lake, days[-1])
    runs = plan_runs(days, through, single_run=single_run)
    if not quiet:
        print(f"silver for {len(days)} day(s): {days[0]} .. {days[-1]}")
        later = f" (gold carries state from day to day: every gold day built after {days[-1]} is rebuilt too)"
        print(f"gold from {days[0]} through {through}{later if through > days[-1] else ''}")
    instance = _instance()
    for run_id in release_abandoned_runs(instance):
        print(f"marked failed run {run_id}: the process running it is gone; its concurrency slots are free")
    outcome = Materialized()
    own = {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}
    for layers, first, last in _progress(runs, disable=quiet):
        label = first.isoformat() if first == last else f"{first}..{last}"
        result = jobs[layers].execute_in_process(
            instance=instance,
            tags={**partition_tags(first, last), **own},
            raise_on_error=False,
            run_config=_QUIET,
            resources=resources,
        )
        for event in result.all_events:
            if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
                check = event.asset_check_evaluation_data
                if not check.passed:
                    facts = {key: getattr(value, "value", value) for key, value in check.metadata.items()}
                    severity = check.severity.value if check.severity else "ERROR"
                    failed = FailedCheck(label, check.asset_key.to_user_string(), check.check_name, severity, facts)
                    outcome.failed_checks.append(failed)
                    print(failed)
            elif event.event_type == dg.DagsterEventType.STEP_FAILURE:
                error = event.step_failure_data.error
                message = error.message.strip().splitlines()[0] if error else "no error recorded"
                outcome.failed_runs.append(f"{layers} {label}: {event.step_key}: {message}")
        if not result.success and not any(f.startswith(f"{layers} {label}:") for f in outcome.failed_runs):
            outcome.failed_runs.append(f"{layers} {label}: run {result.run_id} failed")
    for failure in outcome.failed_runs:
        print(f"  FAILED RUN {failure}")
    return outcome


_QUIET: Final = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
"""Step-by-step logs belong in the Dagster UI; the terminal shows progress and failures."""


def _progress(items: list[Any], *, disable: bool) -> Any:
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is in the pipeline extra; without it, no bar
        return items
    return tqdm(items, desc="materialising", unit="run", disable=disable)


def exit_code(outcome: Materialized, *, allow_check_failures: bool = False) -> int:
    """0 only when every run succeeded and every check passed (or check failures are explicitly allowed)."""
    if outcome.failed_runs:
        print(f"{len(outcome.failed_runs)} run(s) failed", file=sys.stderr)
        return 1
    if outcome.failed_checks:
        names = sorted({f"{c.asset} {c.name}" for c in outcome.failed_checks})
        if allow_check_failures:
            print(f"{len(outcome.failed_checks)} check(s) failed, allowed by --allow-check-failures: {names}")
            return 0
        print(f"{len(outcome.failed_checks)} check(s) failed: {names}", file=sys.stderr)
        return 1
    return 0


def materialize(args: argparse.Namespace) -> int:
    lake = _lake(args)
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


def _show(title: str, frame: pl.DataFrame, rows: int = 20) -> None:
    print(f"\n== {title} ({frame.height} rows)")
    with pl.Config(tbl_rows=rows, tbl_cols=16, tbl_width_chars=160, fmt_str_lengths=24):
        print(frame.head(rows) if frame.height else "(empty)")


def run_queries(args: argparse.Namespace) -> int:
    lake = _lake(args)
    missing = [lake.uri(ref) for ref in GOLD_TABLES if not lake.exists(ref)]
    if missing:
        print(f"no gold table at {', '.join(missing)}: run `risk-lake materialize` first", file=sys.stderr)
        return 1
    _show("Circuit breaker state history", queries.circuit_breaker_history(lake, source=args.source))
    _show("Trailing stop profit locked", queries.trailing_stop_profit(lake, execution_id=args.execution_id))
    _show("Portfolio limit rejections by limit type", queries.rejections_by_limit_type(lake))
    return 0


def show_tables(lake: Lake) -> None:
    for ref in (SILVER, QUARANTINE):
        print(f"{ref}: {lake.read_all(ref, columns=['event_id']).height:,} rows")
    for ref in GOLD_TABLES:
        _show(str(ref), lake.read_all(ref), rows=12)


# ---------------------------------------------------------------------------------------------- demo
def demo(args: argparse.Namespace) -> int:
    lake = _lake(args)
    if simulate(args) != 0:
        return 1
    days = _days(lake, args.start, None)
    print(f"\nmaterialising silver and gold for {len(days)} day(s)")
    code = exit_code(materialize_days(days, lake=lake))
    if code != 0:
        return code
    print()
    show_tables(lake)
    code = run_queries(args)
    dashboard = build_report(lake, None, None, default_report_path(lake), instance=_instance())
    print(f"\ndashboard ({dashboard.period}, {dashboard.size_bytes / 1e6:.1f} MB): {dashboard.path}")
    return code


# ---------------------------------------------------------------------------------------------- report
def report(args: argparse.Namespace) -> int:
    """Write the dashboard for ``--start`` .. ``--end``; print its path and size. Bad input: one line, exit 2."""
    days: dict[str, date | None] = {}
    for name, text in (("--start", args.start), ("--end", args.end)):
        try:
            days[name] = None if text is None else _date(text)
        except ValueError:
            print(f"risk-lake report: {name} {text!r} is not a day: use YYYY-MM-DD, e.g. 2026-03-02", file=sys.stderr)
            return 2
    start, end = days["--start"], days["--end"]
    try:
        lake = _lake(args)
    except ValueError as error:
        print(f"risk-lake report: {error}", file=sys.stderr)
        return 2
    if start is not None and end is not None and start > end:
        print(f"risk-lake report: --start {start} is after --end {end}", file=sys.stderr)
        return 2
    missing = [lake.uri(ref) for ref in GOLD_TABLES if not lake.exists(ref)]
    if missing:
        print(f"no gold table at {', '.join(missing)}: run `risk-lake materialize` first", file=sys.stderr)
        return 1
    instance = _instance() if os.environ.get("DAGSTER_HOME") else None  # failed checks live in the instance
    summary = build_report(lake, start, end, args.out, instance=instance)
    print(f"{summary.path} ({summary.size_bytes:,} bytes, {summary.period}, {summary.charts} charts)")
    return 0


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
        command.add_argument("--days", type=int, default=3, help="simulated trading days (default 3)")
        command.add_argument("--events", type=int, default=20_000, help="about this many events in all")
        command.add_argument("--seed", type=int, default=7)
        command.add_argument(
            "--start", type=_date, default=None, help="first day (default: the last day simulated is yesterday)"
        )

    simulation_options(
        commands.add_parser("simulate", parents=[lake_option], help="a simulated trading session into bronze")
    )
    mat = commands.add_parser("materialize", parents=[lake_option], help="silver and gold for the days bronze holds")
    mat.add_argument("--start", type=_date, default=None, help="first day (default: the earliest in bronze)")
    mat.add_argument("--end", type=_date, default=None, help="last day, inclusive (default: the latest)")
    mat.add_argument("--single-run", action="store_true", help="one run for the whole range (a backfill)")
    mat.add_argument(
        "--allow-check-failures",
        action="store_true",
        help="exit 0 when every run succeeded even if checks failed (they are still printed)",
    )
    qry = commands.add_parser("queries", parents=[lake_option], help="the post-mortem queries over gold")
    qry.add_argument("--source", default=None, help="only this circuit breaker")
    qry.add_argument("--execution-id", default=None, help="only this trailing stop")
    rep = commands.add_parser(
        "report",
        parents=[lake_option],
        help="the risk-history dashboard as one HTML file that opens offline",
        epilog="example: risk-lake report --start 2026-03-02 --end 2026-03-06 --out risk_history.html",
    )
    rep.add_argument("--start", default=None, metavar="YYYY-MM-DD", help="first UTC day (default: gold's first day)")
    rep.add_argument("--end", default=None, metavar="YYYY-MM-DD", help="last UTC day, inclusive (default: gold's last)")
    rep.add_argument("--out", required=True, type=Path, metavar="FILE.html", help="where to write the page")
    dem = commands.add_parser(
        "demo",
        parents=[lake_option],
        help="simulate, materialise, print the gold tables and the queries, then build the dashboard",
    )
    simulation_options(dem)
    dem.set_defaults(source=None, execution_id=None)
    return parser


COMMANDS = {"simulate": simulate, "materialize": materialize, "queries": run_queries, "report": report, "demo": demo}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return COMMANDS[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
