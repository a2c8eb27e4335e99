"""Materialising days through real in-process Dagster runs: the plan, the runs, and what failed.

``risk-lake materialize`` and ``demo`` build silver for the days asked and gold from the first of them
through the latest gold day, in order (:func:`plan_runs`), as jobs executed in this process against the
instance in ``$DAGSTER_HOME`` (:func:`open_instance`), so the UI shows them beside scheduled runs and they
take turns with them in the instance's concurrency pools. Every failed run and every failed check is
collected with its facts (:class:`Materialized`), and :func:`exit_code` turns that into the command's exit
status: a failure is never 0. A run whose process was killed outright keeps its pool's slot until
:func:`release_abandoned_runs` marks it failed.
"""

from __future__ import annotations

import fcntl
import os
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Final

import dagster as dg

from risk_pipeline.defs.constants import GOLD_GROUP, SILVER_GROUP
from risk_pipeline.defs.ordering import gold_through, partition_tags
from risk_pipeline.defs.resources import lake_resource_from_env
from risk_pipeline.lake import Lake, days_between
from risk_runtime.storage import STORAGE_OPTIONS_ENV, storage_options_from_env


def open_instance() -> dg.DagsterInstance:
    """The instance runs are recorded in: ``$DAGSTER_HOME``'s, else a temporary one (and a note saying so)."""
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
    instance = open_instance()
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
