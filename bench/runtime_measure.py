"""The measurements of ``bench.runtime``: what a trading process pays for logging its risk decisions.

Every figure goes through the public API the way trading code uses it: a component (a circuit
breaker, a trailing-stop manager, a limits checker) with a :class:`RiskEventLogger` attached, against
the same component with no logger, in the same run. The logger is real: default settings, its
flusher thread writing the local spool, and a shipper process committing to a Delta table in a temp
dir. Nothing here prints; :mod:`bench.runtime_report` does.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import logging.handlers
import os
import queue
import resource
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pyarrow.compute as pc
from deltalake import DeltaTable

from bench._report import median, percentiles
from risk_runtime.circuit_breaker import CircuitBreakerConfig, TradingCircuitBreaker
from risk_runtime.events import Component, RiskEvent, RiskEventType
from risk_runtime.logger import RiskEventLogger
from risk_runtime.portfolio_limits import InMemoryRiskCalculator, PortfolioLimits, PortfolioLimitsChecker
from risk_runtime.spool import SHIPPER_LOCK, is_locked
from risk_runtime.trailing_stop import TrailingStopManager

TICK = 0.001
NEVER_OPENS = CircuitBreakerConfig(failure_threshold=1 << 40)
"""A breaker that stays CLOSED, so every ``record_failure()`` is the same decision and logs one event."""


# ---------------------------------------------------------------------------------------- the lake
def bronze_uri(lake: Path) -> str:
    return str(lake / "bronze" / "risk_events")


@dataclass
class BronzeCheck:
    rows: int
    distinct_sequences: int
    commits: int
    """``WRITE`` entries in the table's history (appends)."""


def check_bronze(lake: Path) -> BronzeCheck:
    """Rows, distinct ``(writer_id, sequence)`` pairs and appends of the bronze table under ``lake``."""
    try:
        table = DeltaTable(bronze_uri(lake))
    except Exception:  # no table: nothing was committed
        return BronzeCheck(0, 0, 0)
    sequences = table.to_pyarrow_table(columns=["writer_id", "sequence"])
    keys = pc.binary_join_element_wise(
        sequences.column("writer_id"), pc.cast(sequences.column("sequence"), "string"), "/"
    )
    writes = [h for h in table.history() if h.get("operation") == "WRITE"]
    return BronzeCheck(sequences.num_rows, pc.count_distinct(keys).as_py(), len(writes))


def wait_shipper_running(spool: Path, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while not is_locked(spool / SHIPPER_LOCK):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def wait_shipper_gone(spool: Path, loggers: Iterable[RiskEventLogger], timeout: float = 20.0) -> bool:
    """Wait for the spool's shipper to exit (it does once no writer is alive and its idle time passed)."""
    deadline = time.monotonic() + timeout
    while is_locked(spool / SHIPPER_LOCK):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    for logger in loggers:  # reap it, so its peak RSS is counted among the children
        process = logger._supervisor._process
        if process is not None:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except Exception:
                return False
    return True


def new_logger(root: Path, **settings: Any) -> RiskEventLogger:
    return RiskEventLogger(root / "lake", spool_dir=root / "spool", **settings)


# ---------------------------------------------------------------------------------------- decisions
@dataclass
class Decision:
    """One component decision timed with a logger attached and without, interleaved in one run."""

    name: str
    logged: list[float]
    """ns per call, logger attached."""
    bare: list[float]
    """ns per call, no logger."""
    events: int
    """Events the logged component handed to its logger (checked against bronze)."""
    bronze: BronzeCheck

    @property
    def added(self) -> tuple[float, float]:
        """Added cost (ns) at p50 and p99: logged minus bare, percentile by percentile."""
        l50, l99 = percentiles(self.logged, (50, 99))
        b50, b99 = percentiles(self.bare, (50, 99))
        return l50 - b50, l99 - b99


def _interleaved(
    logged: Callable[[int], object], bare: Callable[[int], object], calls: int, warmup: int, block: int = 1_000
) -> tuple[list[float], list[float]]:
    """Time ``calls`` calls of each, in alternating blocks, so both meet the same machine state."""
    clock = time.perf_counter_ns
    out_logged: list[float] = []
    out_bare: list[float] = []
    for start in range(0, warmup + calls, block):
        for fn, out in ((logged, out_logged), (bare, out_bare)):
            for i in range(start, min(start + block, warmup + calls)):
                t0 = clock()
                fn(i)
                t1 = clock()
                if i >= warmup:
                    out.append(float(t1 - t0))
    return out_logged, out_bare


def _with_lake(run: Callable[[RiskEventLogger], tuple[list[float], list[float], int]], name: str) -> Decision:
    with tempfile.TemporaryDirectory(prefix="bench-decision-") as tmp:
        root = Path(tmp)
        logger = new_logger(root)
        logger.start()
        wait_shipper_running(root / "spool")
        logged, bare, events = run(logger)
        logger.flush_blocking(timeout=120)
        logger.close()
        bronze = check_bronze(root / "lake")
        wait_shipper_gone(root / "spool", [logger])
    return Decision(name, logged, bare, events, bronze)


def breaker_decision(calls: int, warmup: int) -> Decision:
    """``TradingCircuitBreaker.record_failure()``: one CB_FAILURE event per call."""

    def run(logger: RiskEventLogger) -> tuple[list[float], list[float], int]:
        with_logger = TradingCircuitBreaker(NEVER_OPENS, event_logger=logger, name="orders")
        without = TradingCircuitBreaker(NEVER_OPENS, name="orders")
        fail_logged, fail_bare = with_logger.record_failure, without.record_failure
        logged, bare = _interleaved(lambda _: fail_logged(), lambda _: fail_bare(), calls, warmup)
        return logged, bare, warmup + calls

    return _with_lake(run, "breaker record_failure()")


def trailing_stop_decision(calls: int, warmup: int) -> Decision:
    """``TrailingStopManager.update()`` with a premium that makes a new high each call: one TS_UPDATE each."""

    def run(logger: RiskEventLogger) -> tuple[list[float], list[float], int]:
        logged_manager = TrailingStopManager(event_logger=logger, name="stops")
        bare_manager = TrailingStopManager(name="stops")
        for manager in (logged_manager, bare_manager):
            manager.add_trailing_stop("exec-1", 2.5, symbol="SPY")
            manager.update("exec-1", 3.0)  # activates (+20% > the default activation)
        premiums = [3.0 + (i + 1) * 1e-6 for i in range(warmup + calls)]
        update_logged, update_bare = logged_manager.update, bare_manager.update
        logged, bare = _interleaved(
            lambda i: update_logged("exec-1", premiums[i]), lambda i: update_bare("exec-1", premiums[i]), calls, warmup
        )
        return logged, bare, 2 + warmup + calls

    return _with_lake(run, "trailing stop update()")


def limits_decision(calls: int, warmup: int) -> Decision:
    """``PortfolioLimitsChecker.check_entry()`` that fits every limit: one PL_CHECK event per call."""

    def run(logger: RiskEventLogger) -> tuple[list[float], list[float], int]:
        calculator = InMemoryRiskCalculator()
        limits = PortfolioLimits()
        logged_checker = PortfolioLimitsChecker(calculator, limits, logger, name="book")
        bare_checker = PortfolioLimitsChecker(calculator, limits, name="book")
        check_logged, check_bare = logged_checker.check_entry, bare_checker.check_entry
        logged, bare = _interleaved(
            lambda _: check_logged("SPY", 0.1, execution_id="e1"),
            lambda _: check_bare("SPY", 0.1, execution_id="e1"),
            calls,
            warmup,
        )
        return logged, bare, warmup + calls

    return _with_lake(run, "limits check_entry()")


def stdlib_queue_handler(calls: int, warmup: int) -> list[float]:
    """stdlib ``logger.info`` with four arguments through a ``QueueHandler``, a ``QueueListener`` writing a file."""
    with tempfile.TemporaryDirectory(prefix="bench-stdlib-") as tmp:
        records: queue.Queue[logging.LogRecord] = queue.Queue(-1)
        file_handler = logging.FileHandler(Path(tmp) / "app.log")
        file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        listener = logging.handlers.QueueListener(records, file_handler, respect_handler_level=True)
        std = logging.getLogger("bench.runtime.stdlib")
        std.propagate = False
        std.setLevel(logging.INFO)
        handler = logging.handlers.QueueHandler(records)
        std.addHandler(handler)
        listener.start()
        info = std.info
        clock = time.perf_counter_ns
        out: list[float] = []
        try:
            for i in range(warmup + calls):
                t0 = clock()
                info("circuit breaker %s failure %d state=%s threshold=%d", "orders", i, "closed", 5)
                t1 = clock()
                if i >= warmup:
                    out.append(float(t1 - t0))
        finally:
            listener.stop()
            std.removeHandler(handler)
            file_handler.close()
    return out


def handoff_costs(calls: int, warmup: int) -> tuple[list[float], list[float]]:
    """For reference: ``RiskEvent(...)`` construction, and ``log()`` of events built beforehand (ns per call)."""
    clock = time.perf_counter_ns
    construct: list[float] = []
    keep: list[RiskEvent] = []
    for i in range(warmup + calls):
        t0 = clock()
        event = RiskEvent(
            event_type=RiskEventType.CB_FAILURE,
            component=Component.CIRCUIT_BREAKER,
            source="orders",
            failure_count=i,
        )
        t1 = clock()
        keep.append(event)  # as the logger would: construction without the free
        if i >= warmup:
            construct.append(float(t1 - t0))
    with tempfile.TemporaryDirectory(prefix="bench-log-") as tmp:
        root = Path(tmp)
        logger = new_logger(root)
        logger.start()
        wait_shipper_running(root / "spool")
        log = logger.log
        handoff: list[float] = []
        for i, event in enumerate(keep):
            t0 = clock()
            log(event)
            t1 = clock()
            if i >= warmup:
                handoff.append(float(t1 - t0))
        logger.flush_blocking(timeout=120)
        logger.close()
        wait_shipper_gone(root / "spool", [logger])
    return construct, handoff


# ---------------------------------------------------------------------------------------- sustained
@dataclass
class Sustained:
    """``record_failure()`` as fast as one thread can, logger attached, until bronze holds every event."""

    events: int
    placement: str
    """Where the two processes ran: the scheduler's choice, or a CPU each."""
    calls_seconds: float
    total_seconds: float
    """First call to ``flush_blocking()`` returning with every event committed."""
    cpu_seconds: float
    """``time.process_time()`` over the same span: every thread of this process (the shipper is another)."""
    bare_cpu_seconds: float
    """The same calls on a breaker without a logger."""
    shipper_cpu_seconds: float
    """CPU of the shipper process over the run (it is reaped before this is read)."""
    flushed: bool
    bronze: BronzeCheck

    @property
    def rate(self) -> float:
        return self.events / self.total_seconds

    @property
    def cpu_per_event(self) -> float:
        """Seconds of this process's CPU per logged event, the decision itself included."""
        return self.cpu_seconds / self.events

    @property
    def logging_cpu_per_event(self) -> float:
        """Seconds of this process's CPU per event that logging adds to the decision."""
        return (self.cpu_seconds - self.bare_cpu_seconds) / self.events

    @property
    def landed(self) -> bool:
        return self.flushed and self.bronze.rows == self.bronze.distinct_sequences == self.events


SCHEDULER: Final = "scheduler's choice"


def pinned_cpus() -> tuple[int, int] | None:
    """Two CPUs this process may use (one for it, one for its shipper), or None on a one-CPU machine."""
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    return (allowed[0], allowed[-1]) if len(allowed) >= 2 else None


@contextlib.contextmanager
def placed(pin: tuple[int, int] | None) -> Iterator[dict[str, Any]]:
    """With ``pin``, this process runs on ``pin[0]`` and the loggers made with the settings yielded start their
    shipper on ``pin[1]`` (``shipper_cpus``), as a deployment that gives each its own core would."""
    if pin is None:
        yield {}
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {pin[0]})
    try:
        yield {"shipper_cpus": {pin[1]}}
    finally:
        os.sched_setaffinity(0, before)


def placement_name(pin: tuple[int, int] | None) -> str:
    return SCHEDULER if pin is None else f"this process on CPU {pin[0]}, its shipper on CPU {pin[1]}"


def sustained(events: int, pin: tuple[int, int] | None = None) -> Sustained:
    """One sustained run, placed by :func:`placed`."""
    with placed(pin) as settings:
        return _sustained(events, pin, settings)


def _sustained(events: int, pin: tuple[int, int] | None, settings: dict[str, Any]) -> Sustained:
    bare = TradingCircuitBreaker(NEVER_OPENS, name="orders")
    fail = bare.record_failure
    c0 = time.process_time()
    for _ in range(events):
        fail()
    bare_cpu = time.process_time() - c0
    children_before = _children_cpu()
    placement = placement_name(pin)
    with tempfile.TemporaryDirectory(prefix="bench-sustained-") as tmp:
        root = Path(tmp)
        logger = new_logger(root, max_buffer_events=events + 10_000, **settings)
        logger.start()
        wait_shipper_running(root / "spool")
        breaker = TradingCircuitBreaker(NEVER_OPENS, event_logger=logger, name="orders")
        fail = breaker.record_failure
        c0, t0 = time.process_time(), time.perf_counter()
        for _ in range(events):
            fail()
        t1 = time.perf_counter()
        flushed = logger.flush_blocking(timeout=300)
        t2, c1 = time.perf_counter(), time.process_time()
        logger.close()
        bronze = check_bronze(root / "lake")
        wait_shipper_gone(root / "spool", [logger])
    shipper_cpu = _children_cpu() - children_before
    return Sustained(events, placement, t1 - t0, t2 - t0, c1 - c0, bare_cpu, shipper_cpu, flushed, bronze)


def median_sustained(runs: Sequence[Sustained]) -> Sustained:
    """The run with the median rate (every run must have landed all its events to count as landed)."""
    ordered = sorted(runs, key=lambda r: r.rate)
    middle = ordered[(len(ordered) - 1) // 2]
    if all(r.landed for r in runs):
        return middle
    return next(r for r in runs if not r.landed)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# ---------------------------------------------------------------------------------------- the loop
@dataclass
class LoopRun:
    mode: str
    rate: float
    lateness: list[float]
    """Actual minus expected wake time of each timed tick, seconds."""
    logged: int = 0
    durability: list[float] = field(default_factory=list)
    """Per event: time from the decision to the first tick that saw it written to the spool."""
    bronze: BronzeCheck | None = None

    @property
    def p99(self) -> float:
        return percentiles(self.lateness, (99,))[0]


async def tick_loop(
    ticks: int, warmup: int, breaker: TradingCircuitBreaker, rate: float, logger: RiskEventLogger | None
) -> LoopRun:
    """``asyncio.sleep(0.001)`` ticks; each tick makes the ``record_failure()`` decisions due at ``rate``/s.

    "Off" runs the same decisions on a breaker without a logger, so on/off differ by logging alone.
    """
    clock = time.perf_counter
    sleep = asyncio.sleep
    fail = breaker.record_failure
    lateness: list[float] = []
    durability: list[float] = []
    in_flight: collections.deque[tuple[int, float]] = collections.deque()
    done = done_before = 0
    first = clock()
    for i in range(warmup + ticks):
        if i == warmup:
            done_before = done
            lateness.clear()
            durability.clear()
        expected = clock() + TICK
        await sleep(TICK)
        now = clock()
        lateness.append(now - expected)
        if logger is not None:
            spooled = logger._book.spooled  # events written to the spool so far (a plain int read)
            while in_flight and in_flight[0][0] <= spooled:
                durability.append(now - in_flight.popleft()[1])
        due = int((now - first) * rate) + 1
        while done < due:
            fail()
            done += 1
            if logger is not None:
                in_flight.append((done, clock()))
    return LoopRun("on" if logger else "off", rate, lateness, done - done_before, durability)


def loop_off(ticks: int, warmup: int, rate: float, **_: Any) -> LoopRun:
    breaker = TradingCircuitBreaker(NEVER_OPENS, name="orders")
    return asyncio.run(tick_loop(ticks, warmup, breaker, rate, None))


def loop_on(ticks: int, warmup: int, rate: float, **settings: Any) -> LoopRun:
    """The loop with a logger into a temp lake (default settings, shipper running), committed on return."""
    with tempfile.TemporaryDirectory(prefix="bench-loop-") as tmp:
        root = Path(tmp)

        async def session() -> tuple[LoopRun, RiskEventLogger]:
            logger = new_logger(root, **settings)
            await logger.initialize()
            await asyncio.to_thread(wait_shipper_running, root / "spool")
            breaker = TradingCircuitBreaker(NEVER_OPENS, event_logger=logger, name="orders")
            try:
                return await tick_loop(ticks, warmup, breaker, rate, logger), logger
            finally:
                await logger.aclose()

        run, logger = asyncio.run(session())
        run.bronze = check_bronze(root / "lake")
        wait_shipper_gone(root / "spool", [logger])  # the next "off" run has no shipper beside it
    return run


def loop_pairs(
    pairs: int,
    ticks: int,
    warmup: int,
    rate: float,
    progress: Callable[[str], None],
    pin: tuple[int, int] | None = None,
) -> list[LoopRun]:
    """``pairs`` alternating (off, on) runs at ``rate`` decisions/s, both placed by :func:`placed`."""
    runs: list[LoopRun] = []
    with placed(pin) as settings:
        for _ in range(pairs):
            for run_one in (loop_off, loop_on):
                run = run_one(ticks, warmup, rate, **settings)
                runs.append(run)
                progress(f"  {rate:,.0f}/s loop {run.mode:>3}: p99 {run.p99 * 1000:.3f} ms")
    return runs


def median_p99(runs: Sequence[LoopRun], mode: str) -> float:
    """The median of the runs' p99 lateness in ``mode`` ("off" or "on")."""
    return median([r.p99 for r in runs if r.mode == mode])
