"""The pipeline benchmark's measurements: each phase, run in a fresh process of its own.

``python -m bench.pipeline --phase NAME`` runs one of :data:`PHASES` here and prints its result as one JSON
line (:data:`RESULT_MARK`); the parent (:mod:`bench.pipeline`) launches it and reads the process's own wall
time and peak RSS from ``wait4``. Imports a phase needs are made before its clock starts, so ``work_seconds``
is the work alone and ``import_seconds`` is shown beside it.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import resource
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Final

RESULT_MARK: Final = "@@RESULT "
PHASES: Final = ("generate", "land", "build", "seed", "gold-queries", "duckdb")


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


def duckdb_reference(root: str, out_dir: str, start: date, end: date) -> dict[str, Any]:
    """Silver, quarantine and gold for ``[start, end)`` as DuckDB SQL over the same bronze (:mod:`.pipeline_duckdb`)."""
    from bench.pipeline_duckdb import duckdb_build

    uri = f"{os.path.abspath(root)}/bronze/risk_events"
    return duckdb_build(uri, out_dir, start, end)


def gold_row_counts(root: str) -> dict[str, int]:
    """Rows each gold table holds, from its Delta log's record counts (what a reader sees, no data read)."""
    from deltalake import DeltaTable

    counts: dict[str, int] = {}
    for name in ("circuit_breaker_transitions", "trailing_stop_outcomes", "limit_rejection_stats"):
        uri = Path(root) / "gold" / name
        if not (uri / "_delta_log").is_dir():
            counts[name] = 0
            continue
        actions = DeltaTable(str(uri)).get_add_actions(flatten=True)
        counts[name] = int(sum(n or 0 for n in actions.column("num_records").to_pylist()))
    return counts


def _import_for(phase: str) -> float:
    """Import what ``phase`` uses before its clock starts; seconds."""
    t0 = time.perf_counter()
    if phase == "seed":
        import deltalake  # noqa: F401
        import pandas  # noqa: F401
        import polars  # noqa: F401
    elif phase == "duckdb":
        import duckdb  # noqa: F401

        import risk_pipeline.defs.gold.circuit_breaker_transitions
        import risk_pipeline.defs.silver.schema
    else:
        import risk_pipeline.defs.gold.checks
        import risk_pipeline.defs.silver.checks
        import risk_pipeline.defs.silver.transform
        import risk_pipeline.queries  # noqa: F401
    return time.perf_counter() - t0


def run_phase(args: argparse.Namespace) -> None:
    """Run ``args.phase`` in this process and print its result (with this process's peak RSS) as JSON."""
    import_s = _import_for(args.phase)
    rss_after_import = _rss_now_mb()
    start, end = date.fromisoformat(args.start or "1970-01-01"), date.fromisoformat(args.end or "1970-01-01")
    jobs: dict[str, Callable[[], dict[str, Any]]] = {
        "generate": lambda: generate(args.lake, args.one_day_lake, args.events, args.days),
        "land": lambda: land(args.lake, args.one_day_lake),
        "build": lambda: build_range(args.lake, start, end, run_id=args.run_id),
        "seed": lambda: seed_queries(args.lake, args.execution_id),
        "gold-queries": lambda: gold_queries(args.lake, args.execution_id),
        "duckdb": lambda: duckdb_reference(args.lake, args.out, start, end),
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
