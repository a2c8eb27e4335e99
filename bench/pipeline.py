"""What building the lake costs, measured in one run (``make bench-pipeline``): the orchestration.

For each size (default 1M and 10M events over 60 UTC days):

1. Generate bronze column-wise (:mod:`bench._bronze_gen`) into a temporary lake; one more day is held back
   in a separate 1-day lake, and a copy of the same bronze goes into a third lake for the CLI. Not timed.
2. ``risk-lake materialize --single-run`` (a real Dagster run, every check on) over the copy, against the
   same work written as DuckDB SQL over the same bronze (:mod:`bench.pipeline_duckdb`): process wall, peak
   RSS, and the gold row counts of both, which must agree.
3. Full build by the assets' own code without Dagster, per phase and stage (where the time goes).
4. The seed's approach and our answers from gold; then the held-back day lands in bronze and one
   incremental day is built on the 60-day lake and the same day on the 1-day lake (alternating).

Where things live: this module launches the phases and decides their order; :mod:`bench.pipeline_phases`
holds what each phase measures (it runs in a fresh process, ``--phase NAME``); :mod:`bench.pipeline_report`
prints the tables and the targets. Every measured process is waited for with ``wait4``, so its peak RSS is
its own (the CLI's and DuckDB's alike).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Final

from bench._report import fmt_int
from bench.pipeline_phases import PHASES, RESULT_MARK, gold_row_counts, run_phase
from bench.pipeline_report import (
    SEED_NOTE,
    bronze_table,
    build_counts_table,
    duckdb_tables,
    incremental_tables,
    print_targets,
    s,
    seed_tables,
    stage_table,
)

DEFAULT_SIZES: Final = "1000000,10000000"
DEFAULT_DAYS: Final = 60
QUICK: Final = (200_000, 10)
INCREMENTAL_REPEATS: Final = 3
QUICK_INCREMENTAL_REPEATS: Final = 1
ONE_DAY: Final = timedelta(days=1)
REPO: Final = Path(__file__).resolve().parents[1]
RISK_LAKE: Final = Path(sys.executable).parent / "risk-lake"


def launch(cmd: list[str], *, env: dict[str, str] | None = None) -> tuple[int, str, str, float, float, float]:
    """Run ``cmd`` to its end: exit code, stdout, stderr, wall seconds, peak RSS in MiB and CPU seconds (``wait4``).

    CPU seconds (user + system, every thread) are shown beside wall time: on a machine shared with other
    work, wall time measures the neighbours too, CPU time much less so.
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=out, stderr=err, text=True, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        peak = usage.ru_maxrss / (1024 * 1024) if sys.platform == "darwin" else usage.ru_maxrss / 1024
        cpu = usage.ru_utime + usage.ru_stime
        return proc.returncode, out.read(), err.read(), wall, peak, cpu


def child(phase: str, *extra: str, profile: int = 0) -> dict[str, Any]:
    """Run one phase in a fresh interpreter; its result plus the process's wall time."""
    cmd = [sys.executable, "-m", "bench.pipeline", "--phase", phase, *extra]
    if profile:
        cmd += ["--profile", str(profile)]
    code, stdout, stderr, wall, peak, cpu = launch(cmd)
    if code != 0:
        sys.stderr.write(stdout[-5000:] + stderr[-10000:])
        raise SystemExit(f"phase {phase} failed (exit {code})")
    if profile:
        sys.stdout.write(stderr)
    line = next(x for x in reversed(stdout.splitlines()) if x.startswith(RESULT_MARK))
    result: dict[str, Any] = json.loads(line[len(RESULT_MARK) :])
    result["process_wall_seconds"] = wall
    result["process_peak_rss_mb"] = peak
    result["process_cpu_seconds"] = cpu
    return result


def materialize_cli(root: Path, first: date, last: date, dagster_home: Path) -> dict[str, Any]:
    """``risk-lake materialize --single-run`` over ``root``, as an operator runs it: its own process, timed.

    ``--allow-check-failures`` keeps every check running and printed; it only stops a failed check (the
    generated bronze plants invalid breaker transitions on purpose) from turning the exit code to 1. A
    failed *run* still exits 1 and fails the benchmark's cross-check.
    """
    dagster_home.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", dagster_home / "dagster.yaml")  # the product's instance
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home)}
    cmd = [str(RISK_LAKE), "materialize", "--lake", str(root), "--start", first.isoformat()]
    cmd += ["--end", last.isoformat(), "--single-run", "--allow-check-failures"]
    code, stdout, stderr, wall, peak, cpu = launch(cmd, env=env)
    lines = [line.strip() for line in (stdout + stderr).splitlines() if line.strip() and "%|" not in line]
    return {
        "returncode": code,
        "process_wall_seconds": wall,
        "peak_rss_mb": peak,
        "process_cpu_seconds": cpu,
        "output": [line[:200] for line in lines[-6:]],
    }


def bench_size(events: int, days: int, workdir: Path, profile: int, repeats: int) -> dict[str, Any]:
    label = f"{fmt_int(events)} events / {days} days"
    print(f"=== {label} " + "=" * max(0, 100 - len(label)), flush=True)
    root = workdir / f"lake-{events}-{days}"
    one_day = workdir / f"lake-{events}-{days}-one-day"
    cli_root = workdir / f"lake-{events}-{days}-cli"
    duck_out = workdir / f"duckdb-{events}-{days}"
    for path in (root, one_day, cli_root, duck_out):
        shutil.rmtree(path, ignore_errors=True)
    lake, lake1 = ["--lake", str(root), "--one-day-lake", str(one_day)], ["--lake", str(one_day)]

    gen = child("generate", *lake, "--events", str(events), "--days", str(days))
    first, end = date.fromisoformat(gen["first_day"]), date.fromisoformat(gen["end"])
    execution_id = gen["stats"]["sample_execution_id"]
    bronze_table(label, days, gen)
    shutil.copytree(root / "bronze", cli_root / "bronze")
    span = ["--start", first.isoformat(), "--end", end.isoformat()]

    # The same bronze, built by our CLI and by DuckDB SQL, back to back in this run.
    cli = materialize_cli(cli_root, first, end - ONE_DAY, workdir / "dagster_home")
    duck = child("duckdb", "--lake", str(root), "--out", str(duck_out), *span)
    duck["peak_rss_mb"] = duck["process_peak_rss_mb"]
    cli_gold = gold_row_counts(str(cli_root))
    shutil.rmtree(cli_root, ignore_errors=True)
    shutil.rmtree(duck_out, ignore_errors=True)

    full = child("build", *lake, *span, "--run-id", "full", profile=profile)
    from bench.pipeline_duckdb import SKIPPED_RULES

    duckdb_tables(cli, duck, cli_gold, full["totals"], SKIPPED_RULES)
    stage_table(f"Full build bronze -> silver -> gold, {days} days, assets' code without Dagster", full)
    build_counts_table(full)

    seed = child("seed", *lake, "--execution-id", execution_id)
    ours = child("gold-queries", *lake, "--execution-id", execution_id)

    child("land", *lake)
    runs: dict[str, list[dict[str, Any]]] = {"60": [], "1": []}
    for i in range(repeats):
        args = ["--start", end.isoformat(), "--end", (end + ONE_DAY).isoformat(), "--run-id", f"day-{i}"]
        runs["60"].append(child("build", *lake, *args))
        runs["1"].append(child("build", *lake1, *args))
    incremental_tables(days, end.isoformat(), gen["stats"]["rows_held_back"], runs)

    def med(which: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[which])

    result = {
        "label": label,
        "events": events,
        "days": days,
        "full": full,
        "seed": seed,
        "ours": ours,
        "cli": cli,
        "duckdb": duck,
        "cli_gold": cli_gold,
        "inc_60": med("60", "work_seconds"),
        "inc_1": med("1", "work_seconds"),
        "inc_60_first": runs["60"][0]["work_seconds"],
        "inc_1_first": runs["1"][0]["work_seconds"],
        "inc_60_rss": med("60", "peak_rss_mb"),
        "inc_1_rss": med("1", "peak_rss_mb"),
    }
    seed_tables(result, execution_id)
    return result


def _parse_sizes(args: argparse.Namespace) -> list[tuple[int, int]]:
    if args.quick:
        return [QUICK]
    if args.events:
        return [(args.events, args.days)]
    return [(_count(x), args.days) for x in args.sizes.split(",") if x.strip()]


def _count(text: str) -> int:
    """An event count as written in the help: ``10000000``, ``1e7``, ``10M`` or ``500k``."""
    text = text.strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text[:-1] if scale > 1 else text) * scale)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--events", type=int, help="one size: N events (with --days)")
    parser.add_argument("--days", type=int, default=DEFAULT_DAYS, help="UTC days in the range (default 60)")
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help="comma-separated event counts (default 1M,10M)")
    parser.add_argument("--quick", action="store_true", help=f"smoke test: {QUICK[0]:,} events over {QUICK[1]} days")
    parser.add_argument("--workdir", help="where the temporary lakes go (default: a fresh temp dir, removed after)")
    parser.add_argument("--keep", action="store_true", help="keep the lakes")
    parser.add_argument("--profile", type=int, default=0, help="cProfile the full build, print the top N functions")
    # child-phase arguments
    parser.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)
    parser.add_argument("--lake", help=argparse.SUPPRESS)
    parser.add_argument("--one-day-lake", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--start", help=argparse.SUPPRESS)
    parser.add_argument("--end", help=argparse.SUPPRESS)
    parser.add_argument("--run-id", default="bench", help=argparse.SUPPRESS)
    parser.add_argument("--execution-id", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phase:
        run_phase(args)
        return

    sizes = _parse_sizes(args)
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="risk-lake-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    import polars as pl

    print(
        f"pipeline benchmark: sizes {', '.join(f'{n:,}/{d}d' for n, d in sizes)}; {os.cpu_count()} CPUs, "
        f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}, Python {platform.python_version()}, "
        f"polars {pl.__version__}; lakes under {workdir}",
        flush=True,
    )
    print(SEED_NOTE + "\n", flush=True)
    t0 = time.perf_counter()
    results = []
    try:
        for events, days in sizes:
            repeats = QUICK_INCREMENTAL_REPEATS if args.quick else INCREMENTAL_REPEATS
            results.append(bench_size(events, days, workdir, args.profile, repeats))
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    print_targets(results)
    print(
        "Notes: the seed answers three queries over raw bronze with no validation, de-duplication or quarantine; "
        "ours builds validated silver, quarantine and three gold tables and runs the assets' checks. The full "
        "build runs the assets' own code on worker threads in one process, without Dagster; risk-lake "
        "materialize is the same code inside real Dagster runs. "
        f"Load average at the end {', '.join(f'{x:.2f}' for x in os.getloadavg())}. "
        f"Benchmark wall time {s(time.perf_counter() - t0)}.",
        flush=True,
    )


if __name__ == "__main__":
    main()
