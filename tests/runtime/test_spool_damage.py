"""Damage costs only itself: each kind of spool damage is set aside alone, everything intact ships.

Segments are written by the real writer (``SegmentWriter``) for a writer that has stopped, damaged on
disk, then shipped by the recovery command, ``python -m risk_runtime.shipper --spool DIR --once``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import bronze

from bench.faults import recover
from risk_runtime import RiskEvent, RiskEventLogger, RiskEventType
from risk_runtime.encoding import encode_batch
from risk_runtime.spool import CORRUPT, WRITERS, SegmentWriter, segment_name

FRAME_EVENTS = 10
WRITER_ID = "host-1-deadbeef0000"


def write_segments(spool: Path, frames_per_segment: list[int]) -> tuple[Path, list[list[tuple[int, int]]]]:
    """Sealed segments of a stopped writer; returns its folder and each segment's frame (offset, size)."""
    writer_dir = spool / WRITERS / WRITER_ID
    writer_dir.mkdir(parents=True)
    segments = SegmentWriter(writer_dir, fsync=False)
    sequence = 0
    layout = []
    for frames in frames_per_segment:
        offsets, offset = [], 0
        for _ in range(frames):
            events = [
                RiskEvent(RiskEventType.CB_FAILURE, source="s", failure_count=sequence + i + 1)
                for i in range(FRAME_EVENTS)
            ]
            size = segments.write(encode_batch(events, range(sequence + 1, sequence + FRAME_EVENTS + 1)))
            offsets.append((offset, size))
            offset += size
            sequence += FRAME_EVENTS
        segments.seal()
        layout.append(offsets)
    return writer_dir, layout


def damage(path: Path, frames: list[tuple[int, int]], kind: str) -> None:
    data = bytearray(path.read_bytes())
    _, (o2, s2), (o3, s3) = frames
    if kind == "bad-crc-mid-segment":
        data[o2 + s2 // 2] ^= 0xFF
    elif kind == "bad-magic-mid-segment":
        data[o2 : o2 + 4] = b"XXXX"
    elif kind == "truncated-header":
        data = data[: o3 + 6]
    elif kind == "truncated-payload":
        data = data[: o3 + s3 // 2]
    elif kind == "truncated-at-frame-boundary":
        data = data[:o3]
    elif kind == "garbage-appended":
        data += b"\x00garbage after the end" * 10
    elif kind == "empty":
        data = bytearray()
    path.write_bytes(bytes(data))


# kind -> failure_counts of the damaged segment (frames of 10 events: 1-10, 11-20, 21-30) that must land
INTACT = {
    "bad-crc-mid-segment": [*range(1, 11), *range(21, 31)],
    "bad-magic-mid-segment": [*range(1, 11), *range(21, 31)],
    "truncated-header": list(range(1, 21)),
    "truncated-payload": list(range(1, 21)),
    "truncated-at-frame-boundary": list(range(1, 21)),
    "garbage-appended": list(range(1, 31)),
    "empty": [],
}


@pytest.mark.parametrize("kind", list(INTACT))
def test_damage_costs_only_itself(tmp_path: Path, kind: str) -> None:
    lake, spool = tmp_path / "lake", tmp_path / "spool"
    RiskEventLogger(lake, spool_dir=spool, start_shipper=False).start().close(timeout=0.1)  # claims the spool
    writer_dir, layout = write_segments(spool, [3, 1])  # segment 1 gets damaged; segment 2 is intact
    damage(writer_dir / segment_name(1, sealed=True), layout[0], kind)
    result = recover(spool, lake)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output  # something was set aside: the operator must know
    landed = sorted(bronze(lake).column("failure_count").to_pylist())
    assert landed == [*INTACT[kind], *range(31, 41)], output  # the next segment shipped too
    aside = sorted(p for p in (spool / CORRUPT).rglob("*") if p.is_file())
    reasons = [p for p in aside if p.name.endswith(".reason")]
    assert reasons, "nothing was set aside"
    assert all(str(spool / CORRUPT) in output for _ in reasons)  # it says where
    assert not list(writer_dir.glob("*.seg"))  # nothing left behind, nothing deleted silently


def test_a_missing_segment_is_reported_and_later_segments_ship(tmp_path: Path) -> None:
    lake, spool = tmp_path / "lake", tmp_path / "spool"
    RiskEventLogger(lake, spool_dir=spool, start_shipper=False).start().close(timeout=0.1)
    writer_dir, _ = write_segments(spool, [1, 1, 1])
    (writer_dir / segment_name(2, sealed=True)).unlink()  # a gap: events 11-20 are gone
    result = recover(spool, lake)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "missing" in output and "2" in output
    assert sorted(bronze(lake).column("failure_count").to_pylist()) == [*range(1, 11), *range(21, 31)]


def test_several_damaged_segments_in_one_pass(tmp_path: Path) -> None:
    lake, spool = tmp_path / "lake", tmp_path / "spool"
    RiskEventLogger(lake, spool_dir=spool, start_shipper=False).start().close(timeout=0.1)
    writer_dir, layout = write_segments(spool, [3, 3, 1])
    damage(writer_dir / segment_name(1, sealed=True), layout[0], "bad-crc-mid-segment")
    damage(writer_dir / segment_name(2, sealed=True), layout[1], "empty")
    result = recover(spool, lake)
    assert result.returncode != 0
    assert sorted(bronze(lake).column("failure_count").to_pylist()) == [*range(1, 11), *range(21, 31), *range(61, 71)]
