"""Every spool frame format this build reads (RSF3 packed, RSF2 Arrow, RSF1 legacy Arrow), byte for byte.

One parser serves the three: each keeps its length, checksum, schema version and payload format in a
different place, and each checksum covers different header bytes. A segment written by each format's own
encoder must read back whole; a flipped bit in any byte its checksum covers, a cut header and a cut
payload must each be reported as damage, never read as events.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest

from risk_runtime import RiskEvent, RiskEventType
from risk_runtime.encoding import encode_batch
from risk_runtime.events import SCHEMA_VERSION
from risk_runtime.packing import PAYLOAD_MSGPACK, pack_events
from risk_runtime.spool import LEGACY_FRAME_MAGIC, encode_frame, encode_packed_frame, read_segment

EVENTS = [RiskEvent(RiskEventType.CB_FAILURE, source="orders", failure_count=i) for i in range(3)]
SEQUENCES = [1, 2, 3]


def _rsf3() -> bytes:
    return encode_packed_frame(pack_events(list(zip(SEQUENCES, EVENTS, strict=True))))


def _rsf2() -> bytes:
    return encode_frame(encode_batch(EVENTS, SEQUENCES))


def _rsf1() -> bytes:
    """The first format: a length and a checksum of the payload alone, no version."""
    sink = pa.BufferOutputStream()
    batch = encode_batch(EVENTS, SEQUENCES)
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    payload = sink.getvalue().to_pybytes()
    return LEGACY_FRAME_MAGIC + struct.pack("<II", len(payload), zlib.crc32(payload)) + payload


FORMATS: dict[str, tuple[Callable[[], bytes], int, int, range]] = {
    # name: (encoder, schema version read back, header size, header bytes the checksum covers)
    "RSF3": (_rsf3, SCHEMA_VERSION, 16, range(0, 12)),
    "RSF2": (_rsf2, SCHEMA_VERSION, 16, range(4, 12)),
    "RSF1": (_rsf1, 0, 12, range(0)),
}


def _read(tmp_path: Path, data: bytes):  # type: ignore[no-untyped-def]
    path = tmp_path / "000000000001.open"
    path.write_bytes(data)
    return read_segment(path, sealed=False)


@pytest.mark.parametrize("name", FORMATS)
def test_each_format_reads_back_whole(tmp_path: Path, name: str) -> None:
    encode, version, _, _ = FORMATS[name]
    contents = _read(tmp_path, encode())
    assert not contents.torn
    assert [(frame.schema_version, frame.events) for frame in contents.frames] == [(version, 3)]
    assert contents.batches[0].column("failure_count").to_pylist() == [0, 1, 2]


@pytest.mark.parametrize("name", FORMATS)
def test_a_flipped_bit_the_checksum_covers_is_damage(tmp_path: Path, name: str) -> None:
    encode, _, header_size, covered = FORMATS[name]
    frame = encode()
    for at in [*covered, header_size, len(frame) - 1]:  # header bytes it covers, first and last payload byte
        damaged = bytearray(frame)
        damaged[at] ^= 0x01
        contents = _read(tmp_path, bytes(damaged))
        assert contents.frames == [], f"{name}: byte {at} flipped, read as events"
        assert contents.torn


@pytest.mark.parametrize("name", FORMATS)
@pytest.mark.parametrize("cut", ["header", "payload"])
def test_a_cut_frame_is_damage_with_its_reason(tmp_path: Path, name: str, cut: str) -> None:
    encode, _, header_size, _ = FORMATS[name]
    frame = encode()
    keep = header_size - 2 if cut == "header" else len(frame) - 5
    contents = _read(tmp_path, frame[:keep])
    assert contents.frames == []
    assert [damage.reason.split(" (")[0] for damage in contents.damage] == [f"truncated frame {cut}"]


def test_the_packed_frames_header_names_its_payload_format() -> None:
    assert _rsf3()[4:6] == struct.pack("<H", PAYLOAD_MSGPACK)
