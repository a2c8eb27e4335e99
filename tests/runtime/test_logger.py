"""RiskEventLogger in one process: counts, malformed events, overflow, lifecycle, asyncio."""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pyarrow.compute as pc
import pytest
from conftest import bronze

from risk_runtime import OverflowPolicy, RiskEvent, RiskEventLogger, RiskEventType
from risk_runtime.flusher import _MIN_SEAL_INTERVAL
from risk_runtime.spool import WRITERS, is_locked, list_segments, writer_dirs


def failure(i: int, source: str = "orders") -> RiskEvent:
    return RiskEvent(RiskEventType.CB_FAILURE, source=source, failure_count=i)


def test_exact_count_after_flush_and_close(lake: Path, spool: Path) -> None:
    logger = RiskEventLogger(lake, spool_dir=spool).start()
    for i in range(2_500):
        assert logger.log(failure(i))
    assert logger.flush(timeout=60)
    assert bronze(lake).num_rows == 2_500
    for i in range(10):
        logger.log(failure(i))
    assert logger.close(timeout=60)
    table = bronze(lake)
    assert table.num_rows == 2_510
    assert len(set(table.column("event_id").to_pylist())) == 2_510
    assert sorted(table.column("sequence").to_pylist()) == list(range(1, 2_511))
    assert set(table.column("writer_id").to_pylist()) == {logger.writer_id}
    stats = logger.stats()
    assert (stats.accepted, stats.committed, stats.dropped, stats.buffered) == (2_510, 2_510, 0, 0)


def test_malformed_events_do_not_cost_their_neighbours(lake: Path, spool: Path) -> None:
    with RiskEventLogger(lake, spool_dir=spool) as logger:
        logger.log(failure(1))
        logger.log(RiskEvent(RiskEventType.TS_ADD, execution_id="x", entry_premium="abc"))  # type: ignore[arg-type]
        logger.log(RiskEvent(RiskEventType.TS_ADD, execution_id="y", entry_premium=math.nan))
        logger.log(RiskEvent(RiskEventType.CB_FAILURE, failure_count=1.5))  # type: ignore[arg-type]
        logger.log(RiskEvent(RiskEventType.CB_FAILURE, timestamp=datetime(2026, 1, 1)))
        logger.log({"not": "an event"})  # type: ignore[arg-type]
        logger.log(failure(2))
    rows = sorted(bronze(lake).to_pylist(), key=lambda r: r["sequence"])
    assert [r["sequence"] for r in rows] == [1, 2, 3, 4, 5, 6, 7]
    errors = [json.loads(r["ingest_errors"]) if r["ingest_errors"] else [] for r in rows]
    assert errors[0] == [] and errors[6] == []
    assert errors[1] == ["entry_premium: expected a number, got str 'abc'"]
    assert errors[2] == [] and math.isnan(rows[2]["entry_premium"])  # a NaN is a value: silver rejects it
    assert errors[3] == ["failure_count: expected an integer, got float 1.5"]
    assert errors[4][0].startswith("timestamp: expected a time-zone-aware datetime")
    assert errors[5][0] == "not a RiskEvent: dict {'not': 'an event'}"


def test_drop_newest_refuses_counts_and_reports_once_the_sink_recovers(lake: Path, spool: Path) -> None:
    logger = RiskEventLogger(lake, spool_dir=spool, max_buffer_events=10)  # not started: nothing drains
    accepted = [logger.log(failure(i)) for i in range(15)]
    assert accepted == [True] * 10 + [False] * 5
    assert logger.stats().dropped == 5
    assert logger.close(timeout=60)
    table = bronze(lake)
    assert table.num_rows == 11
    (report,) = table.filter(pc.equal(table.column("event_type"), RiskEventType.EVENTS_DROPPED.value)).to_pylist()
    assert report["component"] == "event_logger" and report["current_value"] == 5.0
    assert json.loads(report["metadata"])["dropped"] == 5
    assert sorted(table.column("sequence").to_pylist()) == list(range(1, 12))  # refusals leave no gap


def test_drop_oldest_keeps_the_newest(lake: Path, spool: Path) -> None:
    logger = RiskEventLogger(lake, spool_dir=spool, max_buffer_events=10, overflow=OverflowPolicy.DROP_OLDEST)
    assert all(logger.log(failure(i)) for i in range(15))
    assert logger.close(timeout=60)
    counts = [r["failure_count"] for r in bronze(lake).to_pylist() if r["event_type"] == "circuit_breaker_failure"]
    assert sorted(counts) == list(range(5, 15))


def test_log_never_raises(lake: Path, spool: Path) -> None:
    logger = RiskEventLogger(lake, spool_dir=spool)
    logger._buffer = None  # type: ignore[assignment]  # a broken logger must still not raise
    assert logger.log(failure(1)) is False
    logger._buffer = __import__("collections").deque()
    assert logger.stats().internal_errors == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "batch_size must be a positive integer"),
        ({"sync_interval": 0}, "sync_interval must be a positive number"),
        ({"max_batch_age": math.nan}, "max_batch_age must be a positive number"),
        ({"overflow": "block"}, "overflow must be one of drop_newest, drop_oldest"),
        ({"max_spool_bytes": 10}, "max_spool_bytes must be at least 1 MiB"),
        ({"shipper_nice": 20}, "shipper_nice must be an integer from 0 to 19"),
        ({"shipper_nice": -1}, "shipper_nice must be an integer from 0 to 19"),
        ({"shipper_nice": True}, "shipper_nice must be an integer from 0 to 19"),
    ],
)
def test_bad_configuration_is_a_clear_error(lake: Path, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RiskEventLogger(lake, **kwargs)  # type: ignore[arg-type]


def test_events_before_start_are_kept(lake: Path, spool: Path) -> None:
    logger = RiskEventLogger(lake, spool_dir=spool)
    logger.log(failure(1))
    assert logger.flush(timeout=60)
    assert bronze(lake).num_rows == 1
    logger.close()


def test_batches_seal_at_batch_size(lake: Path, spool: Path) -> None:
    logger = RiskEventLogger(lake, spool_dir=spool, batch_size=5, start_shipper=False).start()
    writer_dir = spool / WRITERS / logger.writer_id
    for i in range(12):
        logger.log(failure(i))
    logger._cycle(seal=False)
    # A full batch younger than the minimum seal interval keeps growing (a seal is a Delta commit) ...
    assert [s.sealed for s in list_segments(writer_dir)] == [False]
    time.sleep(_MIN_SEAL_INTERVAL + 0.05)
    logger._cycle(seal=False)
    # ... and is sealed for shipping once it is old enough.
    assert [s.sealed for s in list_segments(writer_dir)] == [True]
    logger.log(failure(13))
    logger._cycle(seal=False)
    assert [s.sealed for s in list_segments(writer_dir)] == [True, False]  # 1 event: not a batch yet
    logger.start_shipper = True
    assert logger.close(timeout=60)
    assert bronze(lake).num_rows == 13


def test_the_design_guides_async_usage(lake: Path, spool: Path) -> None:
    async def session() -> None:
        logger = RiskEventLogger(lake, spool_dir=spool)
        await logger.initialize()
        for i in range(3):
            logger.log(failure(i))
        assert await logger.flush()
        assert bronze(lake).num_rows == 3
        async with RiskEventLogger(lake, spool_dir=spool) as second:
            second.log(failure(9))
        await logger.aclose()

    asyncio.run(session())
    assert bronze(lake).num_rows == 4


def test_import_stays_light() -> None:
    code = (
        "import sys, risk_runtime;"
        "heavy = {'dagster', 'polars', 'pandas', 'pandera', 'risk_pipeline'} & set(sys.modules);"
        "print(sorted(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ)
    assert result.stdout.strip() == "[]"


def test_a_writer_folder_appears_already_locked(lake: Path, spool: Path) -> None:
    """A shipper removes unlocked, empty writer folders: a starting writer must never look like one."""
    (spool / WRITERS / ".someone.starting").mkdir(parents=True)  # a logger in the middle of start()
    assert list(writer_dirs(spool)) == []
    logger = RiskEventLogger(lake, spool_dir=spool, start_shipper=False).start()
    assert list(writer_dirs(spool)) == [spool / WRITERS / logger.writer_id]
    assert is_locked(spool / WRITERS / logger.writer_id / "lock")
    logger.close(timeout=0.1)  # nothing to commit, and nothing waits for a shipper that is not there
    assert not is_locked(spool / WRITERS / logger.writer_id / "lock")


def test_an_encoding_failure_keeps_the_events_queued(lake: Path, spool: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A library error while encoding (not a bad value: those become ingest errors) loses nothing."""
    from risk_runtime import flusher as flusher_module

    real = flusher_module.pack_events
    failures = iter([True, True, True])  # the first three cycles fail

    def flaky(*args: object) -> object:
        if next(failures, False):
            raise RuntimeError("can't register atexit after shutdown")
        return real(*args)

    monkeypatch.setattr(flusher_module, "pack_events", flaky)
    with RiskEventLogger(lake, spool_dir=spool) as logger:
        for i in range(50):
            assert logger.log(failure(i))
        assert logger.flush_blocking(timeout=60)  # the first cycle fails, a later one lands them all
        stats = logger.stats()
    assert bronze(lake).num_rows == 50
    assert sorted(bronze(lake).column("sequence").to_pylist()) == list(range(1, 51))
    assert stats.internal_errors >= 1
    assert "encoding failed" in (stats.last_error or "")


def test_the_first_encode_happens_at_start(tmp_path: Path) -> None:
    """pyarrow's first conversion (which imports pandas where installed) is made by start(), not later."""
    code = (
        "import sys, risk_runtime, pathlib;"
        f"lake = pathlib.Path({str(tmp_path / 'lake')!r});"
        "logger = risk_runtime.RiskEventLogger(lake, spool_dir=lake.parent / 'spool', start_shipper=False);"
        "before = 'pandas' in sys.modules; logger.start(); after_start = 'pandas' in sys.modules;"
        "logger.close(timeout=0.1); print(before, after_start)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ)
    pandas_installed = subprocess.run([sys.executable, "-c", "import pandas, numpy"], check=False).returncode == 0
    assert result.stdout.split() == ["False", str(pandas_installed)]
