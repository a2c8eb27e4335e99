"""The pipeline benchmark's tables: what one run measured, next to its baseline and target (PASS/MISS).

Pure formatting of the results :mod:`bench.pipeline` gathered from its phases (:mod:`bench.pipeline_phases`,
:mod:`bench.pipeline_duckdb`); nothing here measures anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from bench._report import Table, fmt_int, ratio, verdict

FULL_SECONDS_TARGET: Final = 30.0
FULL_RSS_MB_TARGET: Final = 2048.0
DUCKDB_RATIO_TARGET: Final = 1.0
TARGET_SIZE: Final = (10_000_000, 60)
INCREMENTAL_RATIO_TARGET: Final = 1.3
SEED_SPEEDUP_TARGET: Final = 10.0

SEED_LABEL: Final = "seed"
SEED_NOTE: Final = (
    "The seed's approach is run as the guide writes it: for each post-mortem query, "
    "`pl.from_pandas(DeltaTable(bronze).to_pandas())`, then a polars filter/sort/group_by over the whole table."
)


def s(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds >= 0.1 else f"{seconds * 1000:.1f} ms"


def mb(value: float) -> str:
    return f"{value:,.0f} MiB"


def _floats(values: Sequence[float]) -> str:
    return ", ".join(f"{v:.4f}" for v in values) or "(none)"


def _counts(values: dict[str, int]) -> str:
    return ", ".join(f"{k}={v:,}" for k, v in sorted(values.items(), key=lambda kv: str(kv[0])))


def bronze_table(label: str, days: int, gen: dict[str, Any]) -> None:
    st = gen["stats"]
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
    table.add("held-back day (1-day lake)", f"{gen['end']} ({fmt_int(st['rows_held_back'])} rows)")
    table.add("generation time (written to Delta)", s(gen["work_seconds"]))
    table.print()


def stage_table(title: str, result: dict[str, Any]) -> None:
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
    table.print()


def build_counts_table(full: dict[str, Any]) -> None:
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


def duckdb_tables(
    cli: dict[str, Any], duck: dict[str, Any], cli_gold: dict[str, int], totals: dict[str, int], duck_rules: str
) -> None:
    """``risk-lake materialize --single-run`` against the DuckDB reference: time, memory and the row cross-check.

    ``totals`` (silver's accounting) come from the full build of the same bronze by the same code; the
    gold counts from the tables the CLI wrote.
    """
    table = Table(
        "same bronze, same run",
        "process wall",
        "work",
        "CPU (user+sys)",
        "peak RSS",
        title="risk-lake materialize --single-run (a real Dagster run, every check on) vs DuckDB SQL",
    )
    table.add(
        "ours: risk-lake materialize --single-run",
        s(cli["process_wall_seconds"]),
        "",
        s(cli["process_cpu_seconds"]),
        mb(cli["peak_rss_mb"]),
    )
    for name, seconds in duck["stages"].items():
        table.add(f"    DuckDB {name}", "", s(seconds), "", "")
    table.add(
        f"DuckDB {duck['duckdb_version']} ({duck['threads']} threads), delta_scan + SQL, Parquet out",
        s(duck["process_wall_seconds"]),
        s(duck["work_seconds"]),
        s(duck["process_cpu_seconds"]),
        mb(duck["peak_rss_mb"]),
    )
    table.add(
        "ours / DuckDB",
        ratio(cli["process_wall_seconds"], duck["process_wall_seconds"]),
        "",
        ratio(cli["process_cpu_seconds"], duck["process_cpu_seconds"]),
        ratio(cli["peak_rss_mb"], duck["peak_rss_mb"]),
    )
    table.print()
    if cli.get("output"):
        print("risk-lake said: " + " | ".join(cli["output"]) + "\n")
    rows = Table("table", "ours", "DuckDB", "agree", title="Cross-check: rows per table (gold: a difference is a MISS)")
    for key in ("bronze_rows", "silver_rows", "quarantine_rows", "duplicates_removed"):
        a, b = totals[key], duck["totals"][key]
        rows.add(key, fmt_int(a), fmt_int(b), "yes" if a == b else "no")
    for name in sorted(duck["gold_rows"]):
        a, b = cli_gold.get(name, -1), duck["gold_rows"][name]
        rows.add(f"gold {name}", fmt_int(a), fmt_int(b), "yes" if a == b else "NO")
    rows.print()
    print(duck_rules + "\n")


def incremental_tables(days: int, end: str, held_back: int, runs: dict[str, list[dict[str, Any]]]) -> None:
    import statistics

    inc = Table(
        "run",
        f"{days}-day lake: work",
        "process",
        "peak RSS",
        "1-day lake: work",
        "process",
        "peak RSS",
        title=f"One incremental day ({end}, {fmt_int(held_back)} rows): {days}-day lake vs 1-day lake "
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
        *(
            f(med(which, key))
            for which in ("60", "1")
            for key, f in (("work_seconds", s), ("process_wall_seconds", s), ("peak_rss_mb", mb))
        ),
    )
    inc.add(
        "median CPU (user+sys)",
        s(med("60", "process_cpu_seconds")),
        "",
        "",
        s(med("1", "process_cpu_seconds")),
        "",
        f"ratio {ratio(med('60', 'process_cpu_seconds'), med('1', 'process_cpu_seconds'))} (whole process)",
    )
    inc.print()
    stage_cmp = Table(
        "stage (median of runs)", f"{days}-day lake", "1-day lake", "ratio", title="Incremental day per stage"
    )
    for kind in ("phases", "stages"):  # wall time, then per-thread time inside the parallel phases
        for name in runs["60"][0][kind]:
            a = statistics.median(r[kind][name] for r in runs["60"])
            b = statistics.median(r[kind].get(name, 0.0) for r in runs["1"])
            stage_cmp.add(name if kind == "phases" else f"    {name}", s(a), s(b), ratio(a, b))
    stage_cmp.print()


def seed_tables(r: dict[str, Any], execution_id: str) -> None:
    seed, ours, full = r["seed"], r["ours"], r["full"]
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
    cmp.add("ours: one incremental day incl. checks (median)", s(r["inc_60"]), "", mb(r["inc_60_rss"]))
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


def print_targets(results: list[dict[str, Any]]) -> None:
    """Every target of the run, with its measured figure and PASS/MISS (MISS is for the 10M/60-day size only)."""
    table = Table("size", "target", "measured", "verdict", title="Targets")
    for r in results:
        full, seed = r["full"], r["seed"]
        is_target_size = (r["events"], r["days"]) == TARGET_SIZE
        tag = "" if is_target_size else " (info: target is for 10M/60d)"

        def v(value: float, target: float, higher: bool, tag: str = tag) -> str:
            return verdict(value, target, higher) + tag

        lbl = f"{r['events'] / 1e6:g}M/{r['days']}d"
        if r.get("cli") is not None:
            cli, duck = r["cli"], r["duckdb"]
            cli_s, duck_s = cli["process_wall_seconds"], duck["process_wall_seconds"]
            table.add(
                lbl,
                f"risk-lake materialize --single-run / DuckDB SQL, process wall <= {DUCKDB_RATIO_TARGET:g}x",
                f"{s(cli_s)} / {s(duck_s)} = {ratio(cli_s, duck_s)}",
                v(cli_s / duck_s if duck_s else float("nan"), DUCKDB_RATIO_TARGET, False),
            )
            cli_cpu, duck_cpu = cli["process_cpu_seconds"], duck["process_cpu_seconds"]
            table.add(
                lbl,
                "  same, CPU seconds user+sys (info: less sensitive to a busy machine)",
                f"{s(cli_cpu)} / {s(duck_cpu)} = {ratio(cli_cpu, duck_cpu)}",
                "",
            )
            table.add(
                lbl,
                f"risk-lake materialize --single-run peak RSS <= {FULL_RSS_MB_TARGET:,.0f} MiB",
                f"{mb(cli['peak_rss_mb'])} (DuckDB {mb(duck['peak_rss_mb'])})",
                v(cli["peak_rss_mb"], FULL_RSS_MB_TARGET, False),
            )
            agree = all(r["cli_gold"].get(k) == n for k, n in duck["gold_rows"].items())
            table.add(
                lbl,
                "gold row counts: ours == DuckDB's (cross-check)",
                "agree" if agree else "DISAGREE",
                "PASS" if agree else "MISS",
            )
            table.add(
                lbl,
                "risk-lake materialize exit code (0: every run succeeded, checks as allowed)",
                str(cli["returncode"]),
                "PASS" if cli["returncode"] == 0 else "MISS",
            )
        table.add(
            lbl,
            f"bronze->gold full build (assets' code, no Dagster) incl. asset checks <= {FULL_SECONDS_TARGET:g} s",
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
            f"{s(r['inc_60'])} / {s(r['inc_1'])} = {ratio(r['inc_60'], r['inc_1'])}",
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
