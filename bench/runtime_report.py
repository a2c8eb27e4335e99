"""How ``bench.runtime`` prints what it measured: one table per measurement, then the summary.

The summary holds every figure the runtime is held to, each with the figure measured before the
hot path only handed events off (``BEFORE``, from ``bench/README.md``), its target and PASS/MISS.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from bench._report import Table, fmt_int, fmt_ms, fmt_us, median, percentiles, ratio, verdict
from bench.runtime_measure import Decision, LoopRun, Sustained, median_p99


@dataclass(frozen=True)
class Target:
    label: str
    value: float
    higher_is_better: bool
    shown: str
    before: str


ADDED_P50 = Target("added cost of a logged decision, p50", 1_000.0, False, "<= 1.0 µs", "1.62 µs")
ADDED_P99 = Target("added cost of a logged decision, p99", 5_000.0, False, "<= 5 µs", "3.45 µs")
STDLIB_RATIO = Target("stdlib QueueHandler p50 / our added p50", 10.0, True, ">= 10x", "6.55 µs = 4.0x")
CPU_PER_EVENT = Target("trading-process CPU per logged event", 2e-6, False, "<= 2.0 µs", "5.3 µs")
THROUGHPUT = Target("sustained events/s into bronze", 500_000.0, True, ">= 500,000", "158k")
THROUGHPUT_PINNED = Target(
    "the same, trading process and shipper on a CPU each", 500_000.0, True, ">= 500,000", "(not measured)"
)
"""The same measurement with this process on one CPU and ``shipper_cpus`` giving its shipper another."""
LATENESS_1K = Target("1 ms loop p99 lateness on/off, 1,000/s", 1.10, False, "<= 1.10x", "1.44x")
LATENESS_10K = Target("1 ms loop p99 lateness on/off, 10,000/s", 1.25, False, "<= 1.25x", "4.6x")
LATENESS_1K_PINNED = Target("the same at 1,000/s, on a CPU each", 1.10, False, "<= 1.10x", "(not measured)")
LATENESS_10K_PINNED = Target("the same at 10,000/s, on a CPU each", 1.25, False, "<= 1.25x", "(not measured)")


def _pct(samples: Sequence[float]) -> list[str]:
    return [fmt_us(v) for v in percentiles(samples, (50, 99, 99.9))]


def print_decisions(decisions: Sequence[Decision], stdlib: Sequence[float]) -> None:
    t = Table(
        "decision",
        "logged p50",
        "p99",
        "p99.9",
        "no logger p50",
        "p99",
        "p99.9",
        "added p50",
        "added p99",
        "bronze",
        title="a component's decision with a logger attached vs without (perf_counter_ns around each call)",
    )
    for d in decisions:
        added50, added99 = d.added
        landed = f"{d.bronze.rows:,}/{d.events:,}" + ("" if d.bronze.rows == d.events else " MISMATCH")
        t.add(d.name, *_pct(d.logged), *_pct(d.bare), fmt_us(added50), fmt_us(added99), landed)
    t.add("stdlib logger.info -> QueueHandler", *_pct(stdlib), "", "", "", "", "", "")
    t.print()


def print_handoff(construct: Sequence[float], handoff: Sequence[float]) -> None:
    t = Table("step", "p50", "p99", "p99.9", title="for reference: the hand-off's two steps on their own")
    t.add("RiskEvent(...) construction (4 fields)", *_pct(construct))
    t.add("RiskEventLogger.log(event), event built before", *_pct(handoff))
    t.print()


def print_sustained(runs: Sequence[Sustained]) -> None:
    t = Table(
        "run",
        "decision loop",
        "to flush_blocking()",
        "events/s",
        "CPU here / event",
        "of which logging",
        "shipper CPU / event",
        "bronze rows / distinct",
        "commits",
        title=f"sustained: record_failure() as fast as one thread can, logger attached; {runs[0].placement}",
    )
    for i, s in enumerate(runs, 1):
        t.add(
            str(i),
            f"{s.calls_seconds:.2f} s",
            f"{s.total_seconds:.2f} s" + ("" if s.flushed else " TIMED OUT"),
            fmt_int(s.rate),
            fmt_us(s.cpu_per_event * 1e9),
            fmt_us(s.logging_cpu_per_event * 1e9),
            fmt_us(s.shipper_cpu_seconds / s.events * 1e9),
            f"{s.bronze.rows:,} / {s.bronze.distinct_sequences:,}",
            fmt_int(s.bronze.commits),
        )
    t.print()
    bare = median([s.bare_cpu_seconds / s.events for s in runs])
    print(
        f"  the decision itself, no logger: {fmt_us(bare * 1e9)} of CPU; the shipper's CPU includes its start "
        "(imports) and its idle seconds before it exits",
        flush=True,
    )


def print_loops(runs: Sequence[LoopRun], placement: str) -> None:
    t = Table(
        "rate/s",
        "mode",
        "p50",
        "p99",
        "max",
        "durability p50",
        "p99",
        "max",
        "bronze",
        title="1 ms asyncio loop: lateness = actual - expected wake of asyncio.sleep(0.001); "
        f"off = same decisions, no logger; {placement}",
    )
    for run in runs:
        p50, p99, top = percentiles(run.lateness, (50, 99, 100))
        durable = [fmt_ms(v) for v in percentiles(run.durability, (50, 99, 100))] if run.mode == "on" else [""] * 3
        landed = "" if run.bronze is None else f"{run.bronze.rows:,} in {run.bronze.commits} commits"
        t.add(f"{run.rate:,.0f}", run.mode, fmt_ms(p50), fmt_ms(p99), fmt_ms(top), *durable, landed)
    t.print()


def _row(t: Table, target: Target, measured: float, shown: str) -> None:
    t.add(target.label, shown, target.before, target.shown, verdict(measured, target.value, target.higher_is_better))


def print_summary(
    breaker: Decision,
    stdlib: Sequence[float],
    sustained: Sequence[Sustained],
    loops: Sequence[dict[float, list[LoopRun]]],
) -> list[str]:
    """The summary table; returns the labels of the missed targets. ``sustained`` and ``loops`` hold one entry
    per placement: the scheduler's choice first, then (with two CPUs) the trading process and its shipper on
    a CPU each."""
    t = Table("figure", "measured", "before", "target", "verdict", title="summary (all measured in this run)")
    added50, added99 = breaker.added
    std50 = percentiles(stdlib, (50,))[0]
    std_ratio = std50 / added50 if added50 > 0 else math.inf
    _row(t, ADDED_P50, added50, fmt_us(added50))
    _row(t, ADDED_P99, added99, fmt_us(added99))
    _row(t, STDLIB_RATIO, std_ratio, f"{fmt_us(std50)} = {ratio(std50, added50, 1)}")
    s = sustained[0]
    _row(t, CPU_PER_EVENT, s.logging_cpu_per_event, fmt_us(s.logging_cpu_per_event * 1e9))
    for run, target in zip(sustained, (THROUGHPUT, THROUGHPUT_PINNED), strict=False):
        rate = run.rate if run.landed else 0.0
        _row(t, target, rate, fmt_int(run.rate) + ("" if run.landed else " (NOT ALL LANDED)"))
    targets = ((LATENESS_1K, LATENESS_10K), (LATENESS_1K_PINNED, LATENESS_10K_PINNED))
    for placed_loops, pair in zip(loops, targets, strict=False):
        for target, rate_per_s in zip(pair, (1_000.0, 10_000.0), strict=True):
            runs = placed_loops.get(rate_per_s, [])
            off, on = median_p99(runs, "off"), median_p99(runs, "on")
            value = on / off if off else math.inf
            _row(t, target, value, f"{ratio(on, off)} ({fmt_ms(on)} / {fmt_ms(off)})")
    every_loop = [r for placed_loops in loops for rs in placed_loops.values() for r in rs]
    landed = all(r.bronze is None or r.bronze.rows == r.bronze.distinct_sequences for r in every_loop)
    landed = landed and all(run.landed for run in sustained)
    t.add("every logged event in bronze, once", "yes" if landed else "NO", "", "equal", "PASS" if landed else "MISS")
    t.print()
    return [row[0] for row in t.rows if row[-1] == "MISS"]


def durability_window(runs: Sequence[LoopRun]) -> float:
    """The median over "on" runs of the longest time an event waited to reach the spool (seconds)."""
    return median([percentiles(r.durability, (100,))[0] for r in runs if r.mode == "on"])
