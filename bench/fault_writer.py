"""A trading-process stand-in for the logger's process tests and the fault benchmark.

    python bench/fault_writer.py LAKE SPOOL COUNT MODE [RATE] [--progress FILE] [--stop FILE] [--phases FILE]
                                 [--duration SECONDS] [--name BREAKER] [--reset-timeout SECONDS]

Every event is a ``CB_FAILURE`` with ``source=proc-<pid>`` and ``failure_count`` 1, 2, 3, ... in the
order logged (so bronze alone tells which accepted events are missing).

MODE:

* ``exit``: log COUNT events, then a normal interpreter exit (no ``close()``; the exit hook flushes).
* ``close``: log COUNT events, then ``close()``; prints one JSON line with the logger's stats.
* ``sigterm``: log COUNT events, print ``ready``, wait to be terminated.
* ``fork``: a forked child logs COUNT events of its own through the inherited logger.
* ``hang``: print ``ready``, then log at RATE events/s until killed. With ``--progress`` it appends
  ``<accepted> <unix time>`` lines to FILE every 20 ms (one ``write()`` each), which is what the
  kill -9 scenario counts "accepted" from.
* ``paced``: log at RATE events/s until COUNT events (0: no limit), ``--duration`` seconds, or until the
  ``--stop`` file exists; every ``log()`` call is timed. Then ``close()`` and print one JSON line: the
  stats, ``log()`` p50/p99 per phase (phases from the ``--phases`` JSON file ``{"outage_start": t,
  "outage_end": t}``, unix times, written by whoever breaks the lake) and the peak ``spool_bytes``.
* ``breaker``: open the circuit breaker ``--name`` (threshold 3) through the logger, print one JSON
  line (``opened_at``, ``accepted``), then wait to be killed.
* ``load-breaker``: a fresh process with no logger: ``load_state(LAKE)`` on a breaker named ``--name``
  with an injectable clock, and report its state now, just before ``opened_at + reset_timeout`` and at
  it (one JSON line).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from risk_runtime import RiskEvent, RiskEventLogger, RiskEventType
from risk_runtime.circuit_breaker import CircuitBreakerConfig, TradingCircuitBreaker
from risk_runtime.clock import ManualClock
from risk_runtime.events import utc_now

PROGRESS_INTERVAL = 0.02
SPOOL_SAMPLE_INTERVAL = 0.25
BREAKER_THRESHOLD = 3


def event(i: int) -> RiskEvent:
    return RiskEvent(RiskEventType.CB_FAILURE, source=f"proc-{os.getpid()}", failure_count=i)


def _percentiles(values: list[int]) -> dict[str, float]:
    if not values:
        return {"n": 0, "p50_ns": math.nan, "p99_ns": math.nan, "max_ns": math.nan}
    ordered = sorted(values)
    n = len(ordered)

    def rank(q: float) -> float:
        return float(ordered[min(max(1, math.ceil(q / 100 * n)), n) - 1])

    return {"n": n, "p50_ns": rank(50), "p99_ns": rank(99), "max_ns": float(ordered[-1])}


def _stats(logger: RiskEventLogger) -> dict[str, Any]:
    s = logger.stats()
    return {
        "writer_id": s.writer_id,
        "accepted": s.accepted,
        "dropped": s.dropped,
        "spooled": s.spooled,
        "committed": s.committed,
        "spool_errors": s.spool_errors,
        "internal_errors": s.internal_errors,
    }


def run_hang(logger: RiskEventLogger, rate: float, progress: Path | None) -> None:
    fd = os.open(progress, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644) if progress else None
    i, started = 0, time.monotonic()
    next_report = started
    print("ready", flush=True)
    per_tick = max(1, int(rate / 1000))  # pace in 1 ms ticks: one sleep per event can't reach 50k/s
    while True:
        for _ in range(per_tick):
            i += 1
            logger.log(event(i))
        now = time.monotonic()
        if fd is not None and now >= next_report:
            os.write(fd, f"{i} {time.time():.6f}\n".encode())  # i events were accepted by this time
            next_report = now + PROGRESS_INTERVAL
        time.sleep(max(0.0, started + i / rate - time.monotonic()))


def run_paced(logger: RiskEventLogger, args: argparse.Namespace) -> dict[str, Any]:
    """Log at ``args.rate`` until told to stop, timing each ``log()``; stats and latency by phase."""
    rate, limit = args.rate, args.count
    stop = Path(args.stop) if args.stop else None
    deadline = time.monotonic() + args.duration if args.duration else math.inf
    wall: list[float] = []  # one wall time per tick, with the index of the tick's first sample
    first_sample: list[int] = []
    samples: list[int] = []
    per_tick = max(1, int(rate / 1000))
    perf = time.perf_counter_ns
    i, started = 0, time.monotonic()
    next_check, spool_peak = started, 0
    print("ready", flush=True)
    while (not limit or i < limit) and time.monotonic() < deadline:
        wall.append(time.time())
        first_sample.append(len(samples))
        for _ in range(per_tick):
            i += 1
            ev = event(i)
            t0 = perf()
            logger.log(ev)
            samples.append(perf() - t0)
            if limit and i >= limit:
                break
        now = time.monotonic()
        if now >= next_check:
            spool_peak = max(spool_peak, logger.stats().spool_bytes)
            if stop is not None and stop.exists():
                break
            next_check = now + SPOOL_SAMPLE_INTERVAL
        time.sleep(max(0.0, started + i / rate - time.monotonic()))

    phases = json.loads(Path(args.phases).read_text()) if args.phases and Path(args.phases).exists() else {}
    start, end = phases.get("outage_start", math.inf), phases.get("outage_end", math.inf)
    by_phase: dict[str, list[int]] = {"normal": [], "outage": [], "after": []}
    bounds = [*first_sample, len(samples)]
    for tick, t in enumerate(wall):
        phase = "normal" if t < start else "outage" if t < end else "after"
        by_phase[phase].extend(samples[bounds[tick] : bounds[tick + 1]])
    stopped_logging = time.monotonic()
    landed = logger.close(timeout=args.close_timeout)
    return {
        **_stats(logger),
        "landed": landed,
        "drain_seconds": time.monotonic() - stopped_logging,
        "spool_bytes_peak": spool_peak,
        "latency": {phase: _percentiles(values) for phase, values in by_phase.items()},
    }


def run_breaker(logger: RiskEventLogger, name: str, reset_timeout: float) -> None:
    config = CircuitBreakerConfig(failure_threshold=BREAKER_THRESHOLD, reset_timeout=reset_timeout)
    breaker = TradingCircuitBreaker(config, event_logger=logger, name=name)
    for _ in range(BREAKER_THRESHOLD):
        breaker.record_failure()
    opened_at = breaker.opened_at
    result = {"state": str(breaker.state), "opened_at": opened_at.isoformat() if opened_at else None}
    print(json.dumps({**result, **_stats(logger)}), flush=True)
    time.sleep(3600)  # killed from outside


def run_load_breaker(lake: str, name: str, reset_timeout: float) -> dict[str, Any]:
    clock = ManualClock(utc_now())
    config = CircuitBreakerConfig(failure_threshold=BREAKER_THRESHOLD, reset_timeout=reset_timeout)
    breaker = TradingCircuitBreaker(config, name=name, clock=clock)
    snapshot = breaker.load_state(lake)
    if snapshot is None or breaker.opened_at is None:
        return {"loaded": snapshot is not None, "states": {}}
    opened_at = breaker.opened_at
    states = {"at_load": str(breaker.state)}
    for label, offset in (("half_timeout", reset_timeout / 2), ("just_before", reset_timeout - 0.001)):
        if opened_at + timedelta(seconds=offset) > clock():
            clock.set(opened_at + timedelta(seconds=offset))
            states[label] = str(breaker.state)
    clock.set(max(clock(), opened_at + timedelta(seconds=reset_timeout)))
    states["at_timeout"] = str(breaker.state)
    return {
        "loaded": True,
        "snapshot_state": str(snapshot.state),
        "failure_count": snapshot.failure_count,
        "opened_at": opened_at.isoformat(),
        "states": states,
    }


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lake")
    parser.add_argument("spool")
    parser.add_argument("count", type=int)
    parser.add_argument(
        "mode", choices=["exit", "close", "sigterm", "fork", "hang", "paced", "breaker", "load-breaker"]
    )
    parser.add_argument("rate", type=float, nargs="?", default=1_000.0)
    parser.add_argument("--progress", type=Path, default=None)
    parser.add_argument("--stop", default=None)
    parser.add_argument("--phases", default=None)
    parser.add_argument("--duration", type=float, default=0.0)
    parser.add_argument("--close-timeout", type=float, default=300.0)
    parser.add_argument("--name", default="venue-a")
    parser.add_argument("--reset-timeout", type=float, default=30.0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(sys.argv[1:] if argv is None else argv)
    lake, spool, count, mode = args.lake, args.spool, args.count, args.mode
    if mode == "load-breaker":
        print(json.dumps(run_load_breaker(lake, args.name, args.reset_timeout)), flush=True)
        return
    logger = RiskEventLogger(lake, spool_dir=spool).start()
    if mode == "hang":
        run_hang(logger, args.rate, args.progress)
    elif mode == "paced":
        print(json.dumps(run_paced(logger, args)), flush=True)
        return
    elif mode == "breaker":
        run_breaker(logger, args.name, args.reset_timeout)
    for i in range(1, count + 1):
        logger.log(event(i))
    if mode == "close":
        landed = logger.close()
        print(json.dumps({**_stats(logger), "landed": landed}), flush=True)
    elif mode == "sigterm":
        print("ready", flush=True)
        time.sleep(60)
    elif mode == "fork":
        pid = os.fork()
        if pid == 0:
            for i in range(1, count + 1):
                logger.log(event(i))
            print(f"child {logger.writer_id}", flush=True)
            logger.close()
            os._exit(0)
        os.waitpid(pid, 0)
        print(f"parent {logger.writer_id}", flush=True)
    # mode "exit": the interpreter's exit hook must flush


if __name__ == "__main__":
    main()
