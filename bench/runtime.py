"""What a trading process pays to log its risk decisions, measured in one run (``make bench-runtime``).

The steps, in the order they run (measurement: :mod:`bench.runtime_measure`; printing:
:mod:`bench.runtime_report`; what each figure means and its history: ``bench/README.md``):

1. A component's decision with a logger attached against the same component without one, in
   alternating blocks: a circuit breaker's ``record_failure()``, a trailing stop's ``update()`` and a
   limits ``check_entry()``, every call logging one event; stdlib ``logging`` through a
   ``QueueHandler`` beside them.
2. For reference, the hand-off's two steps on their own: ``RiskEvent(...)`` and ``log()``.
3. A 1 ms asyncio loop making ``record_failure()`` decisions at 1,000 and 10,000 per second, with
   and without a logger, alternating, medians of each mode's p99 lateness.
4. Sustained: ``record_failure()`` as fast as one thread can until bronze holds every event; events/s
   and the CPU this process spent (all its threads; the shipper is another process).

Every logger is real: default settings, the flusher writing the spool, a shipper process committing
to a Delta table in a temporary directory, and bronze read back to check every event landed once.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import sys
import time
from collections.abc import Sequence

from bench import runtime_measure as measure
from bench import runtime_report as report
from bench._report import peak_rss_mb


def _progress(line: str) -> None:
    print(line, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.runtime", description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000, help="timed decisions per component and mode")
    parser.add_argument("--warmup", type=int, default=10_000, help="untimed decisions before them")
    parser.add_argument("--ticks", type=int, default=4_000, help="timed 1 ms ticks per loop run")
    parser.add_argument("--loop-warmup", type=int, default=300, help="untimed ticks before them")
    parser.add_argument("--pairs", type=int, default=5, help="off/on loop pairs per rate (medians reported)")
    parser.add_argument("--events", type=int, default=1_000_000, help="decisions in each sustained run")
    parser.add_argument("--sustained-runs", type=int, default=3, help="sustained runs per placement")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    print(
        f"bench.runtime  python {platform.python_version()}  {os.cpu_count()} cpus  "
        f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}  gc thresholds {gc.get_threshold()}  "
        f"switch interval {sys.getswitchinterval() * 1000:.0f} ms",
        flush=True,
    )
    print(flush=True)

    print(f"[1] decisions: {args.calls:,} timed calls per component and mode, after {args.warmup:,}", flush=True)
    breaker = measure.breaker_decision(args.calls, args.warmup)
    stop = measure.trailing_stop_decision(args.calls, args.warmup)
    limits = measure.limits_decision(args.calls, args.warmup)
    stdlib = measure.stdlib_queue_handler(args.calls, args.warmup)
    report.print_decisions([breaker, stop, limits], stdlib)

    print("[2] the hand-off's steps", flush=True)
    construct, handoff = measure.handoff_costs(args.calls, args.warmup)
    report.print_handoff(construct, handoff)

    pin = measure.pinned_cpus()
    placements: list[tuple[int, int] | None] = [None] if pin is None else [None, pin]
    if pin is None:
        print("(one CPU here: no runs with a CPU each for the trading process and its shipper)", flush=True)

    print(f"[3] 1 ms asyncio loop: {args.pairs} x (off, on) per rate, {args.ticks:,} timed ticks each", flush=True)
    loops: list[dict[float, list[measure.LoopRun]]] = []
    for placement in placements:
        print(f"  {measure.placement_name(placement)}", flush=True)
        loops.append(
            {
                rate: measure.loop_pairs(args.pairs, args.ticks, args.loop_warmup, rate, _progress, placement)
                for rate in (1_000.0, 10_000.0)
            }
        )
        report.print_loops([run for runs in loops[-1].values() for run in runs], measure.placement_name(placement))

    print(
        f"[4] sustained: {args.events:,} record_failure() decisions, one process; "
        f"{args.sustained_runs} runs per placement (the median reported)",
        flush=True,
    )
    sustained = []
    for placement in placements:
        runs = [measure.sustained(args.events, placement) for _ in range(args.sustained_runs)]
        report.print_sustained(runs)
        sustained.append(measure.median_sustained(runs))

    missed = report.print_summary(breaker, stdlib, sustained, loops)
    own, children = peak_rss_mb()
    print(
        f"durability window (longest wait for the spool, median of the 'on' loops): "
        f"{report.durability_window(loops[0][1_000.0]) * 1000:.0f} ms at 1,000/s, "
        f"{report.durability_window(loops[0][10_000.0]) * 1000:.0f} ms at 10,000/s",
        flush=True,
    )
    print(
        f"peak RSS: this process {own:,.0f} MiB, largest reaped child (shipper) {children:,.0f} MiB; "
        f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}; wall time {time.perf_counter() - began:.0f} s"
        + (f"; missed: {', '.join(missed)}" if missed else ""),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
