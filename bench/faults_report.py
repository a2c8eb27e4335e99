"""How ``bench.faults`` prints what its scenarios counted: one row per scenario, then the figures.

The figures hold the outage's ``log()`` latency and the bronze read times, each with its baseline,
ratio, target and PASS/MISS; the last line says whether every accepted event landed exactly once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench._report import Table, fmt_int, fmt_ms, fmt_us, ratio, verdict
from bench.faults_measure import COMPACTED_READ_TARGET, OUTAGE_P99_TARGET, ScenarioResult


def _notes(notes: dict[str, Any]) -> str:
    skip = {"log_p50_normal_ns", "log_p99_normal_ns", "log_p50_outage_ns", "log_p99_outage_ns", "log_p99_after_ns"}
    skip |= {"killed_at", "recovery_exit", "recovery_output"}
    return ", ".join(f"{k}={v}" for k, v in notes.items() if k not in skip and v is not None)


def print_report(results: Sequence[ScenarioResult], outage_result: ScenarioResult, reads: dict[str, Any]) -> bool:
    """Print the scenario table and the figures; True when no scenario lost or duplicated an event."""
    table = Table("scenario", "accepted", "in bronze", "in silver", "lost", "duplicated", "notes", title="Faults")
    table.align = "lrrrrrl"
    for r in results:
        table.add(
            r.name,
            fmt_int(r.accepted),
            fmt_int(r.in_bronze),
            fmt_int(r.in_silver),
            r.lost,
            r.duplicated,
            _notes(r.notes),
        )
    table.print()

    figures = Table("figure", "value", "baseline", "ratio", "target", "verdict", title="Figures")
    n = outage_result.notes
    figures.add(
        "log() p50 during outage",
        fmt_us(n["log_p50_outage_ns"]),
        fmt_us(n["log_p50_normal_ns"]),
        ratio(n["log_p50_outage_ns"], n["log_p50_normal_ns"]),
        "",
        "",
    )
    p99_ratio = n["log_p99_outage_ns"] / n["log_p99_normal_ns"] if n["log_p99_normal_ns"] else float("nan")
    figures.add(
        "log() p99 during outage",
        fmt_us(n["log_p99_outage_ns"]),
        fmt_us(n["log_p99_normal_ns"]),
        ratio(n["log_p99_outage_ns"], n["log_p99_normal_ns"]),
        f"<= {OUTAGE_P99_TARGET:g}x normal",
        verdict(p99_ratio, OUTAGE_P99_TARGET, higher_is_better=False),
    )
    figures.add(
        "log() p99 after restore",
        fmt_us(n["log_p99_after_ns"]),
        fmt_us(n["log_p99_normal_ns"]),
        ratio(n["log_p99_after_ns"], n["log_p99_normal_ns"]),
        "",
        "",
    )
    figures.add("spool bytes peak (outage)", fmt_int(n["spool_bytes_peak"]), "", "", "", "")
    figures.add("backlog drain after restore", f"{n['drain_s']:.2f} s", "", "", "", "")
    fresh, rotten, compacted = reads["fresh"], reads["many_commits"], reads["compacted"]
    for reader in ("pyarrow", "polars"):
        label = "to_pyarrow_table" if reader == "pyarrow" else "pl.read_delta"
        figures.add(
            f"{label}, {reads['commits']:,} commits",
            fmt_ms(rotten[reader]),
            fmt_ms(fresh[reader]),
            ratio(rotten[reader], fresh[reader]),
            "",
            "",
        )
        figures.add(
            f"{label}, after maintain()",
            fmt_ms(compacted[reader]),
            fmt_ms(fresh[reader]),
            ratio(compacted[reader], fresh[reader]),
            f"<= {COMPACTED_READ_TARGET:g}x 1 commit",
            verdict(compacted[reader] / fresh[reader], COMPACTED_READ_TARGET, higher_is_better=False),
        )
    figures.print()
    print(
        f"reads: {fmt_int(reads['rows'])} rows; baseline = the same rows written as one commit; "
        f"{reads['commits']:,} commits took {reads['write_s']:.1f} s to write, maintain() {reads['maintain_s']:.2f} s "
        f"({reads['files_before']} -> {reads['files_after']} files); rows identical: {reads['rows_ok']}"
    )
    clean = all(r.lost == 0 and r.duplicated == 0 for r in results)
    print(f"every accepted event in bronze exactly once, none lost: {'PASS' if clean else 'MISS'}")
    return clean
