"""How the flusher cuts the backlog into spool frames: short while it keeps up, long while it catches up.

Packing a frame holds the GIL. Short frames keep a trading loop in the same process from waiting
behind the flusher; long frames let a flusher that fell behind a burst catch up, since a busy trading
thread gives it one turn per switch interval. Both are read back from a real spool segment.
"""

from __future__ import annotations

from pathlib import Path

from risk_runtime import RiskEvent, RiskEventLogger, RiskEventType
from risk_runtime.flusher import _BURST_BACKLOG, _BURST_FRAME_EVENTS, _BURST_TURN_EVENTS, _FRAME_EVENTS
from risk_runtime.spool import WRITERS, list_segments, read_segment


def _frame_sizes(lake: Path, spool: Path, events: int) -> list[int]:
    # Nothing wakes the flusher thread on its own here (no batch fills, a minute between syncs): the
    # test's one cycle sees the whole backlog.
    settings = {"batch_size": events + 1, "sync_interval": 60, "max_buffer_events": events + 1}
    logger = RiskEventLogger(lake, spool_dir=spool, start_shipper=False, **settings).start()
    try:
        for i in range(events):
            logger.log(RiskEvent(RiskEventType.CB_FAILURE, source="orders", failure_count=i))
        logger._cycle(seal=True)
        segments = list_segments(spool / WRITERS / logger.writer_id)
        return [frame.events for segment in segments for frame in read_segment(segment.path).frames]
    finally:
        logger._flusher.stop()


def test_a_backlog_the_flusher_keeps_up_with_goes_out_in_short_frames(tmp_path: Path) -> None:
    sizes = _frame_sizes(tmp_path / "lake", tmp_path / "spool", 1_000)
    assert sum(sizes) == 1_000
    assert max(sizes) == _FRAME_EVENTS


def test_a_backlog_the_flusher_fell_behind_goes_out_in_long_frames_until_it_caught_up(tmp_path: Path) -> None:
    events = _BURST_BACKLOG + 2 * _BURST_TURN_EVENTS
    sizes = _frame_sizes(tmp_path / "lake", tmp_path / "spool", events)
    assert sum(sizes) == events
    long_frames = [size for size in sizes if size == _BURST_FRAME_EVENTS]
    # two turns, until the backlog is back at the burst mark, each cut into frames the shipper converts cheaply
    assert len(long_frames) == 2 * _BURST_TURN_EVENTS // _BURST_FRAME_EVENTS
    assert sizes[: len(long_frames)] == long_frames
    assert max(sizes[len(long_frames) :]) == _FRAME_EVENTS
