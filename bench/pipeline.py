"""What building the lake costs, measured in one run (``make bench-pipeline``).

For each size (default 1M and 10M events over 60 UTC days):

1. Generate bronze column-wise (:mod:`bench._bronze_gen`: realistic event mix, stops living across days,
   legal breaker chains, ~0.1% duplicates and ~0.1% malformed rows) into a temporary lake, in a handful of
   large commits; one more day is held back in a separate 1-day lake. Generation is timed, not measured.
2. Full build, bronze -> silver -> gold for every day, the way the assets do it: per day ``Lake.read_days``
   + ``build_silver`` + ``write_silver_days``, then the silver checks, then each gold module's
   ``build_days`` over the range followed by its checks. Wall time per stage and peak RSS.
3. The held-back day lands in bronze; one incremental day is built on the 60-day lake and the same day on
   the 1-day lake (alternating, three times each; once with --quick): wall time, peak RSS and the ratio.
4. The seed's approach on the same bronze: a full read of the table per query, then the guide's three
   post-mortem queries. Then the same three questions answered from gold (``risk_pipeline.queries``).

Each measured phase runs in a fresh subprocess (``--phase ...``) so its ``ru_maxrss`` is its own peak.
Every figure is measured in this run and printed next to its target with PASS/MISS.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from bench._report import Table, fmt_int, ratio, verdict

# ---------------------------------------------------------------------------------------- targets
FULL_SECONDS_TARGET = 30.0
FULL_RSS_MB_TARGET = 2048.0
TARGET_SIZE = (10_000_000, 60)
INCREMENTAL_RATIO_TARGET = 1.3
SEED_SPEEDUP_TARGET = 10.0

DEFAULT_SIZES = "1000000,10000000"
DEFAULT_DAYS = 60
QUICK = (200_000, 10)
INCREMENTAL_REPEATS = 3
QUICK_INCREMENTAL_REPEATS = 1
RESULT_MARK = "@@RESULT "
ONE_DAY = timedelta(days=1)
REPO = Path(__file__).resolve().parents[1]

SEED_LABEL = "seed"
SEED_NOTE = (
    "The seed's approach is run as the guide writes it: for each post-mortem query, "
    "`pl.from_pandas(DeltaTable(bronze).to_pandas())`, then a polars filter/sort/group_by over the whole table."
)


# =========================================================================================== child side
def _rss_now_mb() -> float:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


class Stages:
    """Accumulated time per named stage, in first-seen order; safe to use from worker threads.

    A stage timed on several threads at once adds up their times (thread-seconds), so only stages
    timed on the calling thread are wall time.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._lock = threading.Lock()

    @contextmanager
    def time(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            with self._lock:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days)]


def build_range(root: str, start: date, end: date, run_id: str) -> dict[str, Any]:
    """Silver then gold for ``[start, end)``, as the assets run them: wall time per phase, check outcomes.

    ``phases`` are wall times on this thread and add up to ``work_seconds``; ``stages`` break the silver
    phase down in thread-seconds (its days are built on several threads at once).
    """
    from risk_pipeline.defs.gold.assets import GOLD_TABLES, build_gold_tables
    from risk_pipeline.defs.silver.build import SILVER_THREADS, build_silver_days
    from risk_pipeline.lake import Lake

    lake = Lake(root)
    stages, phases = Stages(), Stages()
    # The silver asset's own code: days read, validated and replaced on worker threads, checked as written.
    with phases.time(f"silver: {(end - start).days} days on {SILVER_THREADS} threads (incl. per-day checks)"):
        built = build_silver_days(lake, start, end, run_id=run_id, stage=stages.time)
    checks: dict[str, bool] = {}
    with phases.time("silver: check results"):
        for result in built.check_results():
            checks[f"silver.{result.check_name}"] = bool(result.passed)
    # The gold step's own code: the three tables built side by side, each followed by its checks.
    with phases.time(f"gold: {len(GOLD_TABLES)} tables side by side, each with its checks"):
        outcomes = build_gold_tables(GOLD_TABLES, lambda: Lake(root), start, end, run_id)
    gold_rows: dict[str, int] = {}
    for outcome in outcomes:
        name = outcome.table.table.name
        if outcome.result is None:
            raise RuntimeError(f"gold {name} failed") from outcome.error
        stages.seconds[f"gold: {name} incl. checks"] = outcome.seconds
        gold_rows[name] = outcome.result.rows_written
        for check in outcome.checks:
            checks[f"{name}.{check.check_name}"] = bool(check.passed)
    work = sum(phases.seconds.values())
    return {
        "phases": phases.seconds,
        "stages": stages.seconds,
        "work_seconds": work,
        "totals": built.totals,
        "gold_rows": gold_rows,
        "checks": checks,
        "top_reasons": dict(sorted(built.reasons.items(), key=lambda kv: -kv[1])[:5]),
    }


def seed_queries(root: str, execution_id: str) -> dict[str, Any]:
    """The guide's post-mortem queries, each over a full read of bronze (as the guide writes them)."""
    import polars as pl
    from deltalake import DeltaTable

    uri = f"{os.path.abspath(root)}/bronze/risk_events"  # the product's layout, without importing it
    stages = Stages()

    def full_read(label: str) -> pl.DataFrame:
        with stages.time(f"{label}: DeltaTable.to_pandas() + pl.from_pandas"):
            return pl.from_pandas(DeltaTable(uri).to_pandas())

    df = full_read("query 1")
    with stages.time("query 1: filter + sort"):
        q1 = df.filter(pl.col("event_type") == "circuit_breaker_state_change").sort("timestamp")
    rows = df.height
    del df
    df = full_read("query 2")
    with stages.time("query 2: filter + sort + profit"):
        q2 = (
            df.filter((pl.col("event_type") == "trailing_stop_trigger") & (pl.col("execution_id") == execution_id))
            .sort("timestamp")
            .with_columns((pl.col("stop_premium") - pl.col("entry_premium")).alias("profit_locked"))
        )
    del df
    df = full_read("query 3")
    with stages.time("query 3: filter + sort + group_by"):
        q3 = (
            df.filter(pl.col("event_type") == "portfolio_limit_rejection")
            .sort("timestamp")
            .group_by("limit_type")
            .agg(
                pl.len().alias("rejection_count"),
                pl.col("current_value").mean().alias("avg_current_value"),
                pl.col("limit_value").mean().alias("avg_limit_value"),
            )
            .sort("limit_type")
        )
    del df
    return {
        "stages": stages.seconds,
        "work_seconds": sum(stages.seconds.values()),
        "bronze_rows": rows,
        "q1_rows": q1.height,
        "q2_profit_locked": q2.get_column("profit_locked").to_list(),
        "q3": {r["limit_type"]: r["rejection_count"] for r in q3.to_dicts()},
    }


def gold_queries(root: str, execution_id: str) -> dict[str, Any]:
    """The same three questions answered from gold (``risk_pipeline.queries``), over the whole lake."""
    from risk_pipeline.lake import Lake
    from risk_pipeline.queries import circuit_breaker_history, rejections_by_limit_type, trailing_stop_profit

    lake = Lake(root)
    stages = Stages()
    with stages.time("query 1: circuit_breaker_history"):
        q1 = circuit_breaker_history(lake)
    with stages.time("query 2: trailing_stop_profit(execution_id)"):
        q2 = trailing_stop_profit(lake, execution_id)
    with stages.time("query 3: rejections_by_limit_type"):
        q3 = rejections_by_limit_type(lake)
    return {
        "stages": stages.seconds,
        "work_seconds": sum(stages.seconds.values()),
        "q1_rows": q1.height,
        "q1_invalid": int((~q1.get_column("is_valid")).sum()) if q1.height else 0,
        "q2_profit_locked": q2.get_column("profit_locked").to_list(),
        "q3": {r["limit_type"]: r["rejection_count"] for r in q3.to_dicts()},
    }


def generate(root: str, one_day_root: str, events: int, days: int) -> dict[str, Any]:
    from bench._bronze_gen import BronzeSpec, write_bronze
    from risk_pipeline.defs.constants import BRONZE_RISK_EVENTS
    from risk_pipeline.lake import Lake

    spec = BronzeSpec(events=events, days=days)
    t0 = time.perf_counter()
    stats = write_bronze(spec, Lake(root).uri(BRONZE_RISK_EVENTS), Lake(one_day_root).uri(BRONZE_RISK_EVENTS))
    return {
        "work_seconds": time.perf_counter() - t0,
        "stats": asdict(stats),
        "first_day": spec.first_day.isoformat(),
        "end": spec.end.isoformat(),
    }


def land(root: str, one_day_root: str) -> dict[str, Any]:
    from bench._bronze_gen import land_held_back
    from risk_pipeline.defs.constants import BRONZE_RISK_EVENTS
    from risk_pipeline.lake import Lake

    t0 = time.perf_counter()
    rows = land_held_back(Lake(one_day_root).uri(BRONZE_RISK_EVENTS), Lake(root).uri(BRONZE_RISK_EVENTS))
    return {"work_seconds": time.perf_counter() - t0, "rows": rows}


def _import_for(phase: str) -> float:
    """Import what ``phase`` uses before its clock starts; seconds (the seed needs deltalake, pandas, polars)."""
    t0 = time.perf_counter()
    if phase == "seed":
        import deltalake  # noqa: F401
        import pandas  # noqa: F401
        import polars  # noqa: F401
    else:
        import risk_pipeline.defs.gold.checks
        import risk_pipeline.defs.silver.checks
        import risk_pipeline.defs.silver.transform
        import risk_pipeline.queries  # noqa: F401
    return time.perf_counter() - t0


def run_phase(args: argparse.Namespace) -> None:
    import_s = _import_for(args.phase)
    rss_after_import = _rss_now_mb()
    start, end = date.fromisoformat(args.start or "1970-01-01"), date.fromisoformat(args.end or "1970-01-01")
    jobs: dict[str, Callable[[], dict[str, Any]]] = {
        "generate": lambda: generate(args.lake, args.one_day_lake, args.events, args.days),
        "land": lambda: land(args.lake, args.one_day_lake),
        "build": lambda: build_range(args.lake, start, end, run_id=args.run_id),
        "seed": lambda: seed_queries(args.lake, args.execution_id),
        "gold-queries": lambda: gold_queries(args.lake, args.execution_id),
    }
    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    result = jobs[args.phase]()
    if profiler:
        profiler.disable()
        for order in ("cumulative", "tottime"):
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(args.profile)
            print(f"--- profile of phase {args.phase}, by {order} ---", file=sys.stderr)
            print(out.getvalue(), file=sys.stderr)
    result.update(import_seconds=import_s, rss_after_import_mb=rss_after_import, peak_rss_mb=_peak_rss_mb())
    print(RESULT_MARK + json.dumps(result, default=str), flush=True)
    sys.stderr.flush()
    # The result is out. Skip interpreter teardown: after a pyarrow-dataset read of Delta (the seed's
    # to_pandas) it can abort the process (delta-rs #2184, apache/arrow #34314), failing a finished phase.
    os._exit(0)


# =========================================================================================== parent side
def child(phase: str, *extra: str, profile: int = 0) -> dict[str, Any]:
    """Run one phase in a fresh interpreter; its result plus the process's wall time."""
    cmd = [sys.executable, "-m", "bench.pipeline", "--phase", phase, *extra]
    if profile:
        cmd += ["--profile", str(profile)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-5000:] + proc.stderr[-10000:])
        raise SystemExit(f"phase {phase} failed (exit {proc.returncode})")
    if profile:
        sys.stdout.write(proc.stderr)
    line = next(x for x in reversed(proc.stdout.splitlines()) if x.startswith(RESULT_MARK))
    result: dict[str, Any] = json.loads(line[len(RESULT_MARK) :])
    result["process_wall_seconds"] = wall
    return result


def s(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds >= 0.1 else f"{seconds * 1000:.1f} ms"


def mb(value: float) -> str:
    return f"{value:,.0f} MiB"


def _stage_table(title: str, result: dict[str, Any]) -> Table:
    table = Table("phase", "wall", "share", title=title)
    total = result["work_seconds"]
    for name, seconds in result["phases"].items():
        table.add(name, s(seconds), f"{seconds / total:.0%}" if total else "")
    for name, seconds in result["stages"].items():
        table.add(f"    {name} (thread-seconds)", s(seconds), "")
    table.add("total (work, imports excluded)", s(total), "100%")
    table.add("imports (dagster, pandera, polars, deltalake)", s(result["import_seconds"]), "")
    table.add("process wall (interpreter + imports + work)", s(result["process_wall_seconds"]), "")
    table.add(
        "peak RSS (ru_maxrss) / RSS after imports",
        f"{mb(result['peak_rss_mb'])} / {mb(result['rss_after_import_mb'])}",
        "",
    )
    return table


def bench_size(events: int, days: int, workdir: Path, profile: int, repeats: int) -> dict[str, Any]:
    label = f"{fmt_int(events)} events / {days} days"
    print(f"=== {label} " + "=" * max(0, 100 - len(label)), flush=True)
    root = workdir / f"lake-{events}-{days}"
    one_day = workdir / f"lake-{events}-{days}-one-day"
    for path in (root, one_day):
        shutil.rmtree(path, ignore_errors=True)
    lake, lake1 = ["--lake", str(root), "--one-day-lake", str(one_day)], ["--lake", str(one_day)]

    gen = child("generate", *lake, "--events", str(events), "--days", str(days))
    st = gen["stats"]
    first, end = date.fromisoformat(gen["first_day"]), date.fromisoformat(gen["end"])
    execution_id = st["sample_execution_id"]
    table = Table("bronze (generated, not measured)", "value", title=f"Generated bronze: {label}", align="ll")
    table.add(f"rows in the {days}-day range (incl. copies)", fmt_int(st["rows_in_range"]))
    table.add("re-sent copies / malformed rows", f"{fmt_int(st['duplicates'])} / {fmt_int(st['malformed'])}")
    table.add(
        "trailing stops / crossing midnight", f"{fmt_int(st['stops'])} / {fmt_int(st['stops_crossing_midnight'])}"
    )
    by_type = sorted(st["by_type"].items(), key=lambda kv: -kv[1])
    total_rows = sum(st["by_type"].values())
    table.add("mix", ", ".join(f"{k} {v / total_rows:.1%}" for k, v in by_type[:6]))
    table.add("rest of mix", ", ".join(f"{k} {v / total_rows:.2%}" for k, v in by_type[6:]))
    table.add("commits / data files", f"{st['commits']} / {st['files']}")
    table.add("held-back day (1-day lake)", f"{end} ({fmt_int(st['rows_held_back'])} rows)")
    table.add("generation time (written to Delta)", s(gen["work_seconds"]))
    table.print()

    full = child(
        "build", *lake, "--start", first.isoformat(), "--end", end.isoformat(), "--run-id", "full", profile=profile
    )
    _stage_table(f"Full build bronze -> silver -> gold, {days} days (one fresh process)", full).print()
    totals = full["totals"]
    counts = Table("accounting", "rows", title="Full build: rows and checks")
    for key in ("bronze_rows", "silver_rows", "quarantine_rows", "duplicates_removed"):
        counts.add(key, fmt_int(totals[key]))
    for name, n in full["gold_rows"].items():
        counts.add(f"gold {name}", fmt_int(n))
    failed = [k for k, ok in full["checks"].items() if not ok]
    counts.add("asset checks passed", f"{len(full['checks']) - len(failed)}/{len(full['checks'])}")
    if failed:
        counts.add("failed checks", ", ".join(failed))
    counts.print()

    seed = child("seed", *lake, "--execution-id", execution_id)
    ours = child("gold-queries", *lake, "--execution-id", execution_id)

    child("land", *lake)
    runs: dict[str, list[dict[str, Any]]] = {"60": [], "1": []}
    for i in range(repeats):
        args = ["--start", end.isoformat(), "--end", (end + ONE_DAY).isoformat(), "--run-id", f"day-{i}"]
        runs["60"].append(child("build", *lake, *args))
        runs["1"].append(child("build", *lake1, *args))
    inc = Table(
        "run",
        f"{days}-day lake: work",
        "process",
        "peak RSS",
        "1-day lake: work",
        "process",
        "peak RSS",
        title=f"One incremental day ({end}, {fmt_int(st['rows_held_back'])} rows): {days}-day lake vs 1-day lake "
        "(work = silver and gold built and checked, imports excluded)",
    )
    for i, (a, b) in enumerate(zip(runs["60"], runs["1"], strict=True)):
        inc.add(
            "first (new day)" if i == 0 else f"re-run {i}",
            s(a["work_seconds"]),
            s(a["process_wall_seconds"]),
            mb(a["peak_rss_mb"]),
            s(b["work_seconds"]),
            s(b["process_wall_seconds"]),
            mb(b["peak_rss_mb"]),
        )

    def med(which: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[which])

    inc.add(
        "median",
        s(med("60", "work_seconds")),
        s(med("60", "process_wall_seconds")),
        mb(med("60", "peak_rss_mb")),
        s(med("1", "work_seconds")),
        s(med("1", "process_wall_seconds")),
        mb(med("1", "peak_rss_mb")),
    )
    inc.print()
    stage_cmp = Table(
        "stage (median of runs)", f"{days}-day lake", "1-day lake", "ratio", title="Incremental day per stage"
    )
    for kind in ("phases", "stages"):  # wall time, then per-thread time inside the parallel phases
        for name in runs["60"][0][kind]:
            a = statistics.median(r[kind][name] for r in runs["60"])
            b = statistics.median(r[kind][name] for r in runs["1"])
            stage_cmp.add(name if kind == "phases" else f"    {name}", s(a), s(b), ratio(a, b))
    stage_cmp.print()

    cmp = Table("approach", "wall (work)", "process wall", "peak RSS", title="Seed's approach vs ours, same bronze")
    for name, seconds in seed["stages"].items():
        cmp.add(f"  {SEED_LABEL} {name}", s(seconds), "", "")
    cmp.add(
        f"{SEED_LABEL}: 3 queries, 3 full reads",
        s(seed["work_seconds"]),
        s(seed["process_wall_seconds"]),
        mb(seed["peak_rss_mb"]),
    )
    cmp.add(
        "ours: full build bronze -> gold incl. checks",
        s(full["work_seconds"]),
        s(full["process_wall_seconds"]),
        mb(full["peak_rss_mb"]),
    )
    cmp.add(
        "ours: one incremental day incl. checks (median)",
        s(med("60", "work_seconds")),
        s(med("60", "process_wall_seconds")),
        mb(med("60", "peak_rss_mb")),
    )
    for name, seconds in ours["stages"].items():
        cmp.add(f"  ours {name}", s(seconds), "", "")
    cmp.add(
        "ours: the 3 queries answered from gold",
        s(ours["work_seconds"]),
        s(ours["process_wall_seconds"]),
        mb(ours["peak_rss_mb"]),
    )
    cmp.print()

    answers = Table(
        "question",
        SEED_LABEL + " (raw bronze)",
        "ours (gold)",
        title="Same questions, same answers? (seed counts include malformed rows and copies)",
    )
    answers.add(
        "Q1 breaker transitions", fmt_int(seed["q1_rows"]), f"{fmt_int(ours['q1_rows'])} ({ours['q1_invalid']} invalid)"
    )
    answers.add(
        f"Q2 profit_locked of {execution_id}", _floats(seed["q2_profit_locked"]), _floats(ours["q2_profit_locked"])
    )
    answers.add("Q3 rejections per limit type", _counts(seed["q3"]), _counts(ours["q3"]))
    answers.print()

    return {
        "label": label,
        "events": events,
        "days": days,
        "full": full,
        "seed": seed,
        "ours": ours,
        "inc_60": med("60", "work_seconds"),
        "inc_1": med("1", "work_seconds"),
        "inc_60_first": runs["60"][0]["work_seconds"],
        "inc_1_first": runs["1"][0]["work_seconds"],
        "inc_60_rss": med("60", "peak_rss_mb"),
        "inc_1_rss": med("1", "peak_rss_mb"),
    }


def _floats(values: Sequence[float]) -> str:
    return ", ".join(f"{v:.4f}" for v in values) or "(none)"


def _counts(values: dict[str, int]) -> str:
    return ", ".join(f"{k}={v:,}" for k, v in sorted(values.items(), key=lambda kv: str(kv[0])))


def print_targets(results: list[dict[str, Any]]) -> None:
    table = Table("size", "target", "measured", "verdict", title="Targets")
    for r in results:
        full, seed = r["full"], r["seed"]
        is_target_size = (r["events"], r["days"]) == TARGET_SIZE
        tag = "" if is_target_size else " (info: target is for 10M/60d)"

        def v(value: float, target: float, higher: bool, tag: str = tag) -> str:
            return verdict(value, target, higher) + tag

        lbl = f"{r['events'] / 1e6:g}M/{r['days']}d"
        table.add(
            lbl,
            f"bronze->gold full build incl. asset checks <= {FULL_SECONDS_TARGET:g} s",
            s(full["work_seconds"]),
            v(full["work_seconds"], FULL_SECONDS_TARGET, False),
        )
        table.add(lbl, "  same, whole process incl. imports (info)", s(full["process_wall_seconds"]), "")
        table.add(
            lbl,
            f"full build peak RSS <= {FULL_RSS_MB_TARGET:,.0f} MiB",
            mb(full["peak_rss_mb"]),
            v(full["peak_rss_mb"], FULL_RSS_MB_TARGET, False),
        )
        inc_ratio = r["inc_60"] / r["inc_1"] if r["inc_1"] else float("nan")
        table.add(
            lbl,
            f"incremental day / same day on 1-day lake <= {INCREMENTAL_RATIO_TARGET}x (median, incl. checks)",
            ratio(r["inc_60"], r["inc_1"]),
            v(inc_ratio, INCREMENTAL_RATIO_TARGET, False),
        )
        first_ratio = r["inc_60_first"] / r["inc_1_first"] if r["inc_1_first"] else float("nan")
        table.add(
            lbl,
            f"  same, first run only <= {INCREMENTAL_RATIO_TARGET}x",
            ratio(r["inc_60_first"], r["inc_1_first"]),
            v(first_ratio, INCREMENTAL_RATIO_TARGET, False),
        )
        table.add(
            lbl,
            f"  peak RSS {r['days']}-day lake vs 1-day lake",
            f"{mb(r['inc_60_rss'])} vs {mb(r['inc_1_rss'])}",
            ratio(r["inc_60_rss"], r["inc_1_rss"]),
        )
        # The seed answers the post-mortem questions by reading all of bronze for each one. We keep gold up to
        # date one day at a time and answer from gold: after a new day lands, that is our cost of the answers.
        answered = r["inc_60"] + r["ours"]["work_seconds"]
        table.add(
            lbl,
            f"seed's answers / ours (new day + queries from gold) >= {SEED_SPEEDUP_TARGET:g}x",
            ratio(seed["work_seconds"], answered),
            v(seed["work_seconds"] / answered if answered else float("nan"), SEED_SPEEDUP_TARGET, True),
        )
        table.add(
            lbl,
            "  seed's answers / ours from gold alone (info)",
            ratio(seed["work_seconds"], r["ours"]["work_seconds"]),
            "",
        )
        table.add(
            lbl,
            "  seed's answers / our whole full build (info: the build also validates, quarantines, checks)",
            ratio(seed["work_seconds"], full["work_seconds"]),
            "",
        )
        table.add(
            lbl, "  seed peak RSS / our full-build peak RSS (info)", ratio(seed["peak_rss_mb"], full["peak_rss_mb"]), ""
        )
    table.print()


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
    parser.add_argument(
        "--phase", choices=["generate", "land", "build", "seed", "gold-queries"], help=argparse.SUPPRESS
    )
    parser.add_argument("--lake", help=argparse.SUPPRESS)
    parser.add_argument("--one-day-lake", help=argparse.SUPPRESS)
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
        f"Python {platform.python_version()}, polars {pl.__version__}; lakes under {workdir}",
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
        "ours builds validated silver, quarantine and three gold tables and runs the assets' checks. Silver days "
        "and the gold tables are built on worker threads in one process, by the assets' own code. Dagster's own "
        f"run overhead is not included. Benchmark wall time {s(time.perf_counter() - t0)}.",
        flush=True,
    )


if __name__ == "__main__":
    main()
