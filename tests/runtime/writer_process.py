"""A trading-process stand-in for the logger's process tests: logs events, then ends as told.

    python tests/runtime/writer_process.py LAKE SPOOL COUNT MODE [RATE]

MODE: ``exit`` (normal interpreter exit, no close()), ``close``, ``sigterm`` (waits to be
terminated), ``hang`` (keeps logging at RATE events/s until killed), ``fork`` (a forked child
logs COUNT events of its own through the inherited logger).
"""

from __future__ import annotations

import os
import sys
import time

from risk_runtime import RiskEvent, RiskEventLogger, RiskEventType


def event(i: int) -> RiskEvent:
    return RiskEvent(RiskEventType.CB_FAILURE, source=f"proc-{os.getpid()}", failure_count=i)


def main() -> None:
    lake, spool, count, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    logger = RiskEventLogger(lake, spool_dir=spool).start()
    if mode == "hang":
        rate = float(sys.argv[5])
        i, started = 0, time.monotonic()
        print("ready", flush=True)
        per_tick = max(1, int(rate / 1000))  # pace in 1 ms ticks: one sleep per event can't reach 50k/s
        while True:
            for _ in range(per_tick):
                i += 1
                logger.log(event(i))
            time.sleep(max(0.0, started + i / rate - time.monotonic()))
    for i in range(count):
        logger.log(event(i))
    if mode == "close":
        logger.close()
    elif mode == "sigterm":
        print("ready", flush=True)
        time.sleep(60)
    elif mode == "fork":
        pid = os.fork()
        if pid == 0:
            for i in range(count):
                logger.log(event(i))
            print(f"child {logger.writer_id}", flush=True)
            logger.close()
            os._exit(0)
        os.waitpid(pid, 0)
        print(f"parent {logger.writer_id}", flush=True)
    # mode "exit": the interpreter's exit hook must flush


if __name__ == "__main__":
    main()
