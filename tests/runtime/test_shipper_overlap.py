"""The shipper prepares the next commit while the previous one is written, and never lets that reorder or
lose anything: a failed write drops the batch prepared on top of it, and a writer seen for the first time
while a commit is in flight waits for the table.

Real spools written by real loggers, real Delta tables; the one planted fault is a write that fails once,
raised by our own table wrapper before it calls Delta.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from conftest import bronze

from risk_runtime import RiskEvent, RiskEventLogger, RiskEventType
from risk_runtime.shipper import Shipper
from risk_runtime.spool import WRITERS, list_segments
from risk_runtime.table import RiskEventsTable

PER_SEGMENT = 300


def _spool_segments(lake: Path, spool: Path, segments: int) -> str:
    """A dead writer's spool holding ``segments`` sealed segments of ``PER_SEGMENT`` events each."""
    settings = {"batch_size": 10 * PER_SEGMENT, "sync_interval": 60, "start_shipper": False}
    logger = RiskEventLogger(lake, spool_dir=spool, **settings).start()
    try:
        for s in range(segments):
            for i in range(PER_SEGMENT):
                logger.log(RiskEvent(RiskEventType.CB_FAILURE, source=f"venue-{s}", failure_count=i))
            logger._cycle(seal=True)
    finally:
        logger.close(timeout=0)  # no shipper runs: the segments stay, and the writer's lock is let go
    assert len(list_segments(spool / WRITERS / logger.writer_id)) == segments
    return logger.writer_id


class _FailsOnce(RiskEventsTable):
    """Bronze whose first append fails before anything is written (a lake that blinked)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.appends = 0

    def append(self, data: pa.Table, **kwargs: Any) -> bool:
        self.appends += 1
        if self.appends == 1:
            raise OSError("the lake blinked")
        return super().append(data, **kwargs)


def _every_event_once(lake: Path, segments: int) -> None:
    rows = bronze(lake)
    assert rows.num_rows == segments * PER_SEGMENT
    keys = pc.binary_join_element_wise(rows.column("writer_id"), pc.cast(rows.column("sequence"), pa.string()), ":")
    assert pc.count_distinct(keys).as_py() == rows.num_rows


def test_a_failed_write_drops_the_batch_prepared_on_top_of_it(lake: Path, spool: Path) -> None:
    """Segment 1's commit fails while segment 2 is prepared beside it: committing 2 would record the writer as
    landed through 2, and segment 1 would then be deleted as already in bronze."""
    _spool_segments(lake, spool, 3)
    shipper = Shipper(spool, str(lake), max_commit_events=PER_SEGMENT)  # one segment per commit
    flaky = _FailsOnce(str(lake))
    shipper.table = flaky
    shipper.run(poll_interval=0.01, idle_exit=0.2, max_backoff=0.05)
    assert flaky.appends == 4  # the failed one, then segments 1, 2 and 3
    assert shipper.stats.errors == 1 and shipper.stats.commits == 3
    _every_event_once(lake, segments=3)
    assert not list(spool.glob("writers/*/*.seg"))


def test_a_writer_first_seen_while_a_commit_is_in_flight_waits_for_the_table(tmp_path: Path, lake: Path) -> None:
    spool = tmp_path / "spool"
    first = _spool_segments(lake, spool, 2)
    shipper = Shipper(spool, str(lake), max_commit_events=PER_SEGMENT)
    with ThreadPoolExecutor(max_workers=1) as writer:
        shipped, in_flight = shipper._overlapped_cycle(writer, None)
        assert shipped == 0 and in_flight is not None  # segment 1 is being written
        second = _spool_segments(lake, spool, 1)  # a new writer appears meanwhile
        shipped, in_flight = shipper._overlapped_cycle(writer, in_flight)
        assert in_flight is None  # segment 2 was committed at once, so the next cycle may read the table
        assert shipped == 2 * PER_SEGMENT
        assert second not in shipper._landed
        while True:
            shipped, in_flight = shipper._overlapped_cycle(writer, in_flight)
            if not shipped and in_flight is None:
                break
    assert shipper._landed == {first: 2, second: 1}
    _every_event_once(lake, segments=3)
