"""What faults cost the risk-event lake: events lost or duplicated, and the price of recovering.

Each scenario drives real writer processes (``bench/fault_writer.py``), real shippers and a real
bronze Delta table in a temporary directory, then counts the accepted events against bronze and
against silver (``build_silver`` per bronze day):

1. ``kill -9`` of a writer and its shipper while logging at 1,000 and 50,000 events/s; recovery by a
   fresh ``python -m risk_runtime.shipper --once``. Lost = accepted longer than the durability window
   before the kill and missing; losses inside the window are reported separately.
2. Sink outage: the lake root replaced by a regular file for T seconds while a writer logs at 1,000/s;
   ``log()`` p50/p99 before vs during the outage, peak spool bytes, and the backlog draining after.
3. Eight writer processes into one table, with eight spools (eight shippers contend) and with one
   shared spool (one shipper coalesces); ``commit failed`` lines in the shipper logs are counted.
4. ``maintain(bronze)`` looping beside two appending writers; then bronze read times after many
   default-size commits, after compaction, and for a fresh single-commit table.
5. A circuit breaker opened through a real logger, its process killed with SIGKILL; a new process
   ``load_state()``s it: OPEN until ``opened_at + reset_timeout``, HALF_OPEN from then on.

``python -m bench.faults [--quick]`` (``--quick``: the CI sizes) prints one row per scenario run and
the latency / read-time figures with their ratios and PASS/MISS against the targets.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.faults_measure import (
    DURABILITY_WINDOW,
    SYNC_INTERVAL,
    ScenarioResult,
    break_lake,
    breaker_recovery,
    kill9,
    kill_writer_and_shipper,
    maintenance_with_writers,
    many_writers,
    outage,
    read_after_commits,
    recover,
    restore_lake,
)
from bench.faults_report import print_report

__all__ = [
    "DURABILITY_WINDOW",
    "FULL",
    "QUICK",
    "ScenarioResult",
    "Sizes",
    "break_lake",
    "breaker_recovery",
    "kill9",
    "kill_writer_and_shipper",
    "maintenance_with_writers",
    "many_writers",
    "outage",
    "read_after_commits",
    "recover",
    "restore_lake",
]
"""The scenarios live in :mod:`bench.faults_measure`, the printing in :mod:`bench.faults_report`;
tests import the scenarios from here, where the sizes are chosen."""


@dataclass(frozen=True)
class Sizes:
    kill_repeats: int
    kill_rates: tuple[int, ...]
    outage_seconds: float
    writers: int
    writer_events: int
    maintenance_seconds: float
    read_commits: int


QUICK = Sizes(1, (1_000, 50_000), 3.0, 8, 2_000, 5.0, 200)
FULL = Sizes(5, (1_000, 50_000), 60.0, 8, 100_000, 20.0, 2_000)


def _in_tmp(scenario: Callable[[Path], Any]) -> Any:
    workdir = Path(tempfile.mkdtemp(prefix="bench-faults-"))
    try:
        return scenario(workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the CI sizes (about a minute)")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    started = time.monotonic()
    print(f"bench.faults ({'quick' if args.quick else 'full'}) on {os.cpu_count()} cores, load {os.getloadavg()}")
    print(f"durability window assumed: sync_interval {SYNC_INTERVAL}s + slack = {DURABILITY_WINDOW}s\n", flush=True)

    results: list[ScenarioResult] = []

    def run(scenario: Callable[[Path], ScenarioResult]) -> ScenarioResult:
        result = _in_tmp(scenario)
        results.append(result)
        print(f"  done: {result.name} ({time.monotonic() - started:.0f}s)", flush=True)
        return result

    for rate in sizes.kill_rates:
        for r in range(sizes.kill_repeats):
            run(lambda w, rate=rate, r=r: kill9(w, rate, seed=r))
    outage_result = run(lambda w: outage(w, sizes.outage_seconds))
    for shared in (False, True):
        run(lambda w, shared=shared: many_writers(w, sizes.writers, sizes.writer_events, shared_spool=shared))
    run(lambda w: maintenance_with_writers(w, seconds=sizes.maintenance_seconds))
    run(lambda w: breaker_recovery(w))
    reads = _in_tmp(lambda w: read_after_commits(w, commits=sizes.read_commits))
    print()

    print_report(results, outage_result, reads)
    print(f"wall time {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
