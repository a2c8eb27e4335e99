"""What ``RiskEventLogger`` costs a trading process, measured in one run (``make bench-runtime``).

1. Per-call ``log()`` cost (p50/p99) against stdlib ``logging`` through a ``QueueHandler`` with a
   ``QueueListener`` draining in a thread; and what constructing a ``RiskEvent`` costs.
2. A 1 ms asyncio loop's wake-up lateness with logging off and on (the loop logs 1,000 events/s, real lake,
   default settings, shipper running), alternating off/on runs and reporting medians.
3. Sustained events/s from one process into bronze: log N pre-built events, ``flush_blocking()``,
   verify the bronze rows.
4. The defaults in use and a short ``sync_interval`` sweep (loop lateness and durability window).

Every figure is measured in this run, printed next to its baseline and target with PASS/MISS.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import inspect
import logging
import logging.handlers
import os
import platform
import queue
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
from deltalake import DeltaTable

from bench._report import (
    Table,
    fmt_int,
    fmt_ms,
    fmt_us,
    median,
    peak_rss_mb,
    percentiles,
    ratio,
    verdict,
)
from risk_runtime.events import Component, RiskEvent, RiskEventType
from risk_runtime.logger import RiskEventLogger
from risk_runtime.spool import SHIPPER_LOCK, is_locked

# ---------------------------------------------------------------------------------------- targets
LOG_P50_TARGET_NS = 3_000
LOG_P99_TARGET_NS = 15_000
STDLIB_SPEEDUP_TARGET = 5.0
LATENESS_RATIO_TARGET = 1.25
THROUGHPUT_TARGET = 250_000
TICK = 0.001
EVENT_RATE = 1_000.0

SOURCE = "bench-stop"
EXECUTION = "exec-0001"
SYMBOL = "SPY"
ACTION = "update"


def make_event(premium: float) -> RiskEvent:
    """A trailing-stop update, built the way ``TrailingStop`` builds its events."""
    return RiskEvent(
        event_type=RiskEventType.TS_UPDATE,
        component=Component.TRAILING_STOP,
        source=SOURCE,
        execution_id=EXECUTION,
        symbol=SYMBOL,
        entry_premium=2.5,
        current_premium=premium,
        highest_premium=premium,
        stop_premium=premium * 0.8,
        action=ACTION,
    )


def logger_defaults() -> dict[str, Any]:
    """``RiskEventLogger``'s constructor defaults, read from its signature."""
    return {
        name: p.default
        for name, p in inspect.signature(RiskEventLogger.__init__).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


def bronze_uri(lake: Path) -> str:
    return str(lake / "bronze" / "risk_events")


@dataclass
class BronzeCheck:
    rows: int
    distinct_sequences: int
    commits: int
    """``WRITE`` entries in the table's history (appends)."""
    history: int
    """All history entries, the table's creation included."""
    first_commit_at: float | None
    """Wall-clock time (s) of the first append."""
    last_commit_at: float | None


def check_bronze(lake: Path) -> BronzeCheck:
    table = DeltaTable(bronze_uri(lake))
    sequences = table.to_pyarrow_table(columns=["writer_id", "sequence"])
    keys = pc.binary_join_element_wise(
        sequences.column("writer_id"), pc.cast(sequences.column("sequence"), "string"), "/"
    )
    history = table.history()
    writes = sorted(h["timestamp"] / 1000 for h in history if h.get("operation") == "WRITE")
    return BronzeCheck(
        rows=sequences.num_rows,
        distinct_sequences=pc.count_distinct(keys).as_py(),
        commits=len(writes),
        history=len(history),
        first_commit_at=writes[0] if writes else None,
        last_commit_at=writes[-1] if writes else None,
    )


def wait_shipper_gone(spool: Path, loggers: Iterable[RiskEventLogger], timeout: float = 20.0) -> bool:
    """Wait for the spool's shipper to exit (it does once no writer is alive and its idle time passed)."""
    deadline = time.monotonic() + timeout
    while is_locked(spool / SHIPPER_LOCK):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    for logger in loggers:  # reap it, so its peak RSS is counted among the children
        process = getattr(logger, "_shipper", None)
        if process is not None:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except Exception:
                return False
    return True


def wait_shipper_running(spool: Path, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while not is_locked(spool / SHIPPER_LOCK):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def new_logger(root: Path, **settings: Any) -> RiskEventLogger:
    return RiskEventLogger(root / "lake", spool_dir=root / "spool", **settings)


# ---------------------------------------------------------------------------------------- 1. per call
@dataclass
class CallCost:
    timer: list[float]
    construct: list[float]
    ours: list[float]
    stdlib: list[float]
    ours_refused: int
    ours_bronze: BronzeCheck
    ours_accepted: int


def time_calls(call: Callable[[Any], object], args: Sequence[Any], warmup: int) -> list[float]:
    """Each ``call(arg)`` timed on its own with ``perf_counter_ns``; the first ``warmup`` are discarded."""
    clock = time.perf_counter_ns
    out = [0] * len(args)
    for i, arg in enumerate(args):
        t0 = clock()
        call(arg)
        out[i] = clock() - t0
    return [float(x) for x in out[warmup:]]


def time_construction(n: int, warmup: int) -> list[float]:
    clock = time.perf_counter_ns
    premiums = [2.5 + (i % 100) * 0.01 for i in range(n + warmup)]
    out = [0] * len(premiums)
    keep: list[RiskEvent] = []
    for i, premium in enumerate(premiums):
        t0 = clock()
        # make_event()'s body, inlined: the figure is the constructor's cost, not a call around it.
        event = RiskEvent(
            event_type=RiskEventType.TS_UPDATE,
            component=Component.TRAILING_STOP,
            source=SOURCE,
            execution_id=EXECUTION,
            symbol=SYMBOL,
            entry_premium=2.5,
            current_premium=premium,
            highest_premium=premium,
            stop_premium=premium * 0.8,
            action=ACTION,
        )
        out[i] = clock() - t0
        keep.append(event)  # as the logger would: construction cost without the free
    return [float(x) for x in out[warmup:]]


def time_timer(n: int) -> list[float]:
    clock = time.perf_counter_ns
    out = [0] * n
    for i in range(n):
        t0 = clock()
        out[i] = clock() - t0
    return [float(x) for x in out]


def bench_call_cost(calls: int, warmup: int) -> CallCost:
    timer = time_timer(calls)
    construct = time_construction(calls, warmup)

    # ours: a real lake, default settings, flusher and shipper running as in production
    with tempfile.TemporaryDirectory(prefix="bench-runtime-") as tmp:
        root = Path(tmp)
        events = [make_event(2.5 + (i % 100) * 0.01) for i in range(calls + warmup)]
        logger = new_logger(root)
        logger.start()
        wait_shipper_running(root / "spool")
        results: list[bool] = []
        log = logger.log

        def log_one(event: RiskEvent) -> None:
            results.append(log(event))

        ours = time_calls(log_one, events, warmup)
        logger.flush_blocking(timeout=120)
        logger.close()
        bronze = check_bronze(root / "lake")
        wait_shipper_gone(root / "spool", [logger])
        refused = results.count(False)
        accepted = len(results) - refused
        del events

    # stdlib: QueueHandler on the caller's side, QueueListener draining into a file, as deployed
    with tempfile.TemporaryDirectory(prefix="bench-stdlib-") as tmp:
        records: queue.Queue[logging.LogRecord] = queue.Queue(-1)
        file_handler = logging.FileHandler(Path(tmp) / "app.log")
        file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        listener = logging.handlers.QueueListener(records, file_handler, respect_handler_level=True)
        std = logging.getLogger("bench.runtime.stdlib")
        std.propagate = False
        std.setLevel(logging.INFO)
        queue_handler = logging.handlers.QueueHandler(records)
        std.addHandler(queue_handler)
        listener.start()
        premiums = [2.5 + (i % 100) * 0.01 for i in range(calls + warmup)]
        info = std.info

        def std_one(premium: float) -> None:
            info("trailing stop %s %s current=%.4f stop=%.4f", SYMBOL, ACTION, premium, premium * 0.8)

        stdlib = time_calls(std_one, premiums, warmup)
        listener.stop()
        std.removeHandler(queue_handler)
        file_handler.close()

    return CallCost(timer, construct, ours, stdlib, refused, bronze, accepted)


# ---------------------------------------------------------------------------------------- 2. the loop
@dataclass
class LoopRun:
    mode: str
    lateness: list[float]
    """Actual minus expected wake time of each timed tick, seconds."""
    seconds: float
    logged: int = 0
    """Events accepted during the timed ticks."""
    accepted: int = 0
    """Events accepted in all, warm-up ticks included (what bronze must hold)."""
    refused: int = 0
    durability: list[float] = field(default_factory=list)
    """Per event: time from ``log()`` to the first tick that saw it written (and fsync'ed) to the spool."""
    bronze_rows: int | None = None
    commits: int | None = None

    @property
    def p50_p99_max(self) -> list[float]:
        return percentiles(self.lateness, (50, 99, 100))

    @property
    def rate(self) -> float:
        return self.logged / self.seconds if self.seconds else 0.0


async def tick_loop(ticks: int, warmup: int, logger: RiskEventLogger | None, rate: float = EVENT_RATE) -> LoopRun:
    """``asyncio.sleep(0.001)`` ticks; with a logger, each tick builds and logs the events due at ``rate``/s.

    A tick lasts a little over 1 ms, so most ticks log one event and some two, keeping the rate.
    """
    clock = time.perf_counter
    sleep = asyncio.sleep
    lateness: list[float] = []
    durability: list[float] = []
    in_flight: collections.deque[tuple[int, float]] = collections.deque()
    accepted = refused = accepted_before = 0
    first = started = clock()
    for i in range(warmup + ticks):
        if i == warmup:
            started, accepted_before = clock(), accepted
            lateness.clear()
            durability.clear()
        expected = clock() + TICK
        await sleep(TICK)
        now = clock()
        lateness.append(now - expected)
        if logger is None:
            continue
        # how far the flusher has got: the segment book's count of events written to the spool (a plain int read)
        spooled = logger._book.spooled
        while in_flight and in_flight[0][0] <= spooled:
            durability.append(now - in_flight.popleft()[1])
        due = int((now - first) * rate) + 1
        while accepted + refused < due:
            if logger.log(make_event(2.5 + (i % 100) * 0.01)):
                accepted += 1
                in_flight.append((accepted, clock()))
            else:
                refused += 1
    run = LoopRun("on" if logger else "off", lateness, clock() - started, durability=durability)
    run.logged, run.accepted, run.refused = accepted - accepted_before, accepted, refused
    return run


def loop_off(ticks: int, warmup: int) -> LoopRun:
    return asyncio.run(tick_loop(ticks, warmup, None))


def loop_on(ticks: int, warmup: int, root: Path, **settings: Any) -> tuple[LoopRun, RiskEventLogger]:
    """A loop logging into the lake under ``root``; the logger is closed (all events committed) on return."""

    async def session() -> tuple[LoopRun, RiskEventLogger]:
        logger = new_logger(root, **settings)
        await logger.initialize()
        await asyncio.to_thread(wait_shipper_running, root / "spool")
        try:
            return await tick_loop(ticks, warmup, logger), logger
        finally:
            await logger.aclose()

    return asyncio.run(session())


def bench_loop(pairs: int, ticks: int, warmup: int) -> list[LoopRun]:
    runs: list[LoopRun] = []
    for _ in range(pairs):
        off = loop_off(ticks, warmup)
        runs.append(off)
        print(f"  loop off: p99 {fmt_ms(off.p50_p99_max[1])}", flush=True)
        with tempfile.TemporaryDirectory(prefix="bench-loop-") as tmp:
            root = Path(tmp)
            on, logger = loop_on(ticks, warmup, root)
            bronze = check_bronze(root / "lake")
            on.bronze_rows, on.commits = bronze.rows, bronze.commits
            wait_shipper_gone(root / "spool", [logger])  # the next "off" run has no shipper beside it
        runs.append(on)
        print(f"  loop on:  p99 {fmt_ms(on.p50_p99_max[1])}", flush=True)
    return runs


def bench_sweep(intervals: Sequence[float], ticks: int, warmup: int) -> list[tuple[float, LoopRun]]:
    """Logging on with each ``sync_interval``; one lake and one shipper for the whole sweep."""
    results: list[tuple[float, LoopRun]] = []
    loggers: list[RiskEventLogger] = []
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        root = Path(tmp)
        rows = commits = 0
        for interval in intervals:
            run, logger = loop_on(ticks, warmup, root, sync_interval=interval)
            loggers.append(logger)
            bronze = check_bronze(root / "lake")
            run.bronze_rows, run.commits = bronze.rows - rows, bronze.commits - commits
            rows, commits = bronze.rows, bronze.commits
            results.append((interval, run))
            print(f"  sweep sync_interval={interval}: p99 {fmt_ms(run.p50_p99_max[1])}", flush=True)
        wait_shipper_gone(root / "spool", loggers)
    return results


# ---------------------------------------------------------------------------------------- 3. throughput
@dataclass
class Throughput:
    events: int
    build_seconds: float
    log_seconds: float
    total_seconds: float
    refused: int
    flushed: bool
    bronze: BronzeCheck
    started_wall: float
    shipper_exited: bool
    buffered_at_end: int
    """Events still in memory (not on disk) when the last ``log()`` returned."""
    spooled_at_end: int

    @property
    def rate(self) -> float:
        return self.events / self.total_seconds


def bench_throughput(n: int) -> Throughput:
    started = time.perf_counter()
    events = [make_event(2.5 + (i % 1000) * 0.001) for i in range(n)]
    build_seconds = time.perf_counter() - started
    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as tmp:
        root = Path(tmp)
        logger = new_logger(root, max_buffer_events=n + 10_000)
        logger.start()
        wait_shipper_running(root / "spool")
        log = logger.log
        refused = 0
        started_wall = time.time()
        t0 = time.perf_counter()
        for event in events:
            if not log(event):
                refused += 1
        t1 = time.perf_counter()
        at_end = logger.stats()
        flushed = logger.flush_blocking(timeout=150)
        t2 = time.perf_counter()
        logger.close()
        del events
        bronze = check_bronze(root / "lake")
        gone = wait_shipper_gone(root / "spool", [logger])
    return Throughput(
        n,
        build_seconds,
        t1 - t0,
        t2 - t0,
        refused,
        flushed,
        bronze,
        started_wall,
        gone,
        at_end.buffered,
        at_end.spooled,
    )


# ---------------------------------------------------------------------------------------- printing
def pct_row(label: str, samples: Sequence[float]) -> list[str]:
    p50, p99, p999, top = percentiles(samples, (50, 99, 99.9, 100))
    return [label, fmt_us(p50), fmt_us(p99), fmt_us(p999), fmt_us(top), fmt_int(len(samples))]


def ms3(values: Sequence[float]) -> list[str]:
    return [fmt_ms(v) for v in values]


def recommend(off_p99: float, sweep: Sequence[tuple[float, LoopRun]], batch_size: int) -> str:
    """The shortest durability window whose loop p99 stays within 10% of the sweep's best p99."""
    if not sweep:
        return "no recommendation: no sweep ran"
    best = min(run.p50_p99_max[1] for _, run in sweep)
    chosen, run = next((i, r) for i, r in sorted(sweep) if r.p50_p99_max[1] <= best * 1.10)
    p99, window = run.p50_p99_max[1], percentiles(run.durability, (100,))[0]
    text = (
        f"sync_interval={chosen} (p99 lateness {fmt_ms(p99)}, {ratio(p99, off_p99)} of off; "
        f"durability window <= {fmt_ms(window, 1)}): the shortest interval within 10% of the sweep's best p99"
    )
    longest, slowest = max(sweep, key=lambda item: item[0])
    if percentiles(slowest.durability, (100,))[0] < 0.75 * longest:
        text += (
            f"; at ~{slowest.rate:,.0f} events/s, batch_size={batch_size} wakes the flusher before a longer "
            "sync_interval would, so longer intervals neither widen the window nor save wake-ups"
        )
    return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.runtime", description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000, help="timed log() calls per path")
    parser.add_argument("--warmup", type=int, default=20_000, help="untimed calls before them")
    parser.add_argument("--ticks", type=int, default=5_000, help="timed 1 ms ticks per loop run")
    parser.add_argument("--loop-warmup", type=int, default=300, help="untimed ticks before them")
    parser.add_argument("--pairs", type=int, default=2, help="off/on loop pairs (medians reported)")
    parser.add_argument("--sweep-ticks", type=int, default=2_000, help="timed ticks per sync_interval")
    parser.add_argument("--events", type=int, default=500_000, help="events for the throughput run")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    defaults = logger_defaults()

    print(
        f"bench.runtime  python {platform.python_version()}  {os.cpu_count()} cpus  "
        f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}  gc thresholds {gc.get_threshold()}  "
        f"switch interval {sys.getswitchinterval() * 1000:.0f} ms",
        flush=True,
    )
    print(flush=True)

    # 1 -------------------------------------------------------------------------------------------
    print(f"[1] per-call cost: {args.calls:,} timed calls each after {args.warmup:,} warm-up", flush=True)
    cost = bench_call_cost(args.calls, args.warmup)
    t = Table("path", "p50", "p99", "p99.9", "max", "calls", title="per call (perf_counter_ns around each call)")
    t.add(*pct_row("RiskEvent(...) construction", cost.construct))
    t.add(*pct_row("RiskEventLogger.log(event)", cost.ours))
    t.add(*pct_row("stdlib logger.info -> QueueHandler (+QueueListener)", cost.stdlib))
    t.add(*pct_row("timer overhead (empty perf_counter_ns pair)", cost.timer))
    t.print()
    ours50, ours99 = percentiles(cost.ours, (50, 99))
    std50, std99 = percentiles(cost.stdlib, (50, 99))
    bronze = cost.ours_bronze
    print(
        f"log(): {cost.ours_accepted:,} accepted, {cost.ours_refused:,} refused; bronze rows {bronze.rows:,} "
        f"({'all landed' if bronze.rows == cost.ours_accepted else 'MISMATCH'}), {bronze.commits} commits",
        flush=True,
    )
    print(flush=True)

    # 2 -------------------------------------------------------------------------------------------
    print(
        f"[2] 1 ms asyncio loop: {args.pairs} x (off, on), {args.ticks:,} timed ticks each "
        f"after {args.loop_warmup} warm-up;\n    on = the loop logs {EVENT_RATE:,.0f} events/s into a temp lake, "
        "default settings, shipper running",
        flush=True,
    )
    runs = bench_loop(args.pairs, args.ticks, args.loop_warmup)
    t = Table("run", "mode", "p50", "p99", "max", "events/s", "durability p50", "p99", "max", "bronze")
    for i, run in enumerate(runs, 1):
        durable = ms3(percentiles(run.durability, (50, 99, 100))) if run.mode == "on" else ["", "", ""]
        landed = "" if run.bronze_rows is None else f"{run.bronze_rows:,}/{run.accepted:,} in {run.commits} commits"
        t.add(i, run.mode, *ms3(run.p50_p99_max), f"{run.rate:,.0f}" if run.logged else "", *durable, landed)
    offs = [r for r in runs if r.mode == "off"]
    ons = [r for r in runs if r.mode == "on"]
    off_med = [median([r.p50_p99_max[k] for r in offs]) for k in range(3)]
    on_med = [median([r.p50_p99_max[k] for r in ons]) for k in range(3)]
    on_durable = [median([percentiles(r.durability, (q,))[0] for r in ons]) for q in (50, 99, 100)]
    t.add("median", "off", *ms3(off_med), "", "", "", "", "")
    t.add("median", "on", *ms3(on_med), f"{median([r.rate for r in ons]):,.0f}", *ms3(on_durable), "")
    t.title = "lateness = actual - expected wake time of asyncio.sleep(0.001)"
    t.print()

    # 4 (sweep runs now, while the process is small; printed after the throughput run) ------------
    intervals = (0.05, 0.2, 0.5)
    print(f"[4] sync_interval sweep {intervals}: {args.sweep_ticks:,} timed ticks each, logging on", flush=True)
    sweep = bench_sweep(intervals, args.sweep_ticks, args.loop_warmup)
    print(flush=True)

    # 3 -------------------------------------------------------------------------------------------
    print(f"[3] sustained throughput: {args.events:,} pre-built events, one process", flush=True)
    thr = bench_throughput(args.events)
    first = (thr.bronze.first_commit_at or thr.started_wall) - thr.started_wall
    last = (thr.bronze.last_commit_at or thr.started_wall) - thr.started_wall
    t = Table("figure", "value")
    t.add("events built (not timed)", f"{thr.events:,} in {thr.build_seconds:.1f} s")
    t.add("log() loop", f"{thr.log_seconds:.2f} s ({thr.events / thr.log_seconds:,.0f} events/s accepted)")
    t.add(
        "first log() -> flush_blocking() returned",
        f"{thr.total_seconds:.2f} s (flush {'ok' if thr.flushed else 'TIMED OUT'})",
    )
    t.add("events/s into bronze", f"{thr.rate:,.0f}")
    t.add("log() refused (backlog full)", fmt_int(thr.refused))
    t.add(
        "when the last log() returned: in memory / on disk",
        f"{thr.buffered_at_end:,} / {thr.spooled_at_end:,} (the rest: being encoded)",
    )
    t.add("bronze rows / distinct (writer, sequence)", f"{thr.bronze.rows:,} / {thr.bronze.distinct_sequences:,}")
    t.add("commits (WRITE) / history length", f"{thr.bronze.commits} / {thr.bronze.history}")
    t.add("first / last commit after first log()", f"{first:.2f} s / {last:.2f} s")
    t.title = "max_buffer_events raised to events + 10,000; other settings default"
    t.print()

    # 4 -------------------------------------------------------------------------------------------
    shown = ("batch_size", "max_batch_age", "sync_interval", "fsync", "max_buffer_events", "overflow")
    print("[4] notes", flush=True)
    print("defaults: " + ", ".join(f"{k}={defaults[k]!r}" for k in shown), flush=True)
    t = Table("sync_interval", "p50", "p99", "max", "p99 vs off", "durability p50", "p99", "max", "commits", "bronze")
    for interval, run in sweep:
        p99 = run.p50_p99_max[1]
        t.add(
            interval,
            *ms3(run.p50_p99_max),
            ratio(p99, off_med[1]),
            *ms3(percentiles(run.durability, (50, 99, 100))),
            run.commits,
            f"{run.bronze_rows:,}/{run.accepted:,}",
        )
    t.title = f"loop lateness and durability window with logging on (off median p99 {fmt_ms(off_med[1])})"
    t.print()
    print("recommendation: " + recommend(off_med[1], sweep, defaults["batch_size"]), flush=True)
    print(flush=True)

    # summary -------------------------------------------------------------------------------------
    lat_ratio = on_med[1] / off_med[1] if off_med[1] else float("inf")
    landed_all = thr.bronze.rows == thr.events == thr.bronze.distinct_sequences
    t = Table(
        "figure", "measured", "baseline", "ratio", "target", "verdict", title="summary (all measured in this run)"
    )
    t.add(
        "log() p50",
        fmt_us(ours50),
        f"stdlib {fmt_us(std50)}",
        ratio(std50, ours50),
        "<= 3 µs",
        verdict(ours50, LOG_P50_TARGET_NS, False),
    )
    t.add(
        "log() p99",
        fmt_us(ours99),
        f"stdlib {fmt_us(std99)}",
        ratio(std99, ours99),
        "<= 15 µs",
        verdict(ours99, LOG_P99_TARGET_NS, False),
    )
    t.add(
        "stdlib/ours p50", ratio(std50, ours50), "", "", ">= 5x", verdict(std50 / ours50, STDLIB_SPEEDUP_TARGET, True)
    )
    t.add(
        "stdlib/ours p99", ratio(std99, ours99), "", "", ">= 5x", verdict(std99 / ours99, STDLIB_SPEEDUP_TARGET, True)
    )
    t.add(
        "loop p99 lateness, logging on",
        fmt_ms(on_med[1]),
        f"off {fmt_ms(off_med[1])}",
        ratio(on_med[1], off_med[1]),
        "<= 1.25x off",
        verdict(lat_ratio, LATENESS_RATIO_TARGET, False),
    )
    t.add(
        "events/s into bronze",
        f"{thr.rate:,.0f}",
        "",
        "",
        ">= 250,000",
        verdict(thr.rate if landed_all and thr.flushed else 0.0, THROUGHPUT_TARGET, True),
    )
    t.add(
        "bronze rows == events",
        f"{thr.bronze.rows:,}",
        f"{thr.events:,}",
        "",
        "equal",
        "PASS" if landed_all else "MISS",
    )
    t.print()
    own, children = peak_rss_mb()
    print(
        f"peak RSS: this process {own:,.0f} MiB, largest reaped child (shipper) {children:,.0f} MiB; "
        f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}; wall time {time.perf_counter() - began:.0f} s",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
