"""A newer writer's frames wait in the spool for a shipper that knows them, and then land whole."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
from conftest import bronze
from deltalake import DeltaTable

from risk_runtime import RiskEvent, RiskEventLogger, RiskEventType
from risk_runtime.encoding import encode_batch
from risk_runtime.events import SCHEMA_VERSION
from risk_runtime.spool import WRITERS, SegmentWriter, list_segments

NEWER = SCHEMA_VERSION + 1
NEW_COLUMN = "venue_latency_ms"

_NEWER_BUILD = textwrap.dedent(
    f"""
    # This interpreter runs a build whose bronze schema is one version ahead: the column
    # {NEW_COLUMN!r} added as the runbook says (nullable, appended), SCHEMA_VERSION bumped.
    import sys
    import pyarrow as pa
    import risk_runtime, risk_runtime.shipper
    newer = risk_runtime.events.BRONZE_SCHEMA.append(pa.field({NEW_COLUMN!r}, pa.float64(), nullable=True))
    for name, module in list(sys.modules.items()):
        if name.startswith("risk_runtime"):
            if hasattr(module, "BRONZE_SCHEMA"):
                module.BRONZE_SCHEMA = newer
            if hasattr(module, "SCHEMA_VERSION"):
                module.SCHEMA_VERSION = {NEWER}
    sys.exit(risk_runtime.shipper.main(sys.argv[1:]))
    """
)


def newer_frame(count: int) -> pa.RecordBatch:
    """What a newer writer spools: this version's columns, the new one, stamped with its version."""
    events = [RiskEvent(RiskEventType.CB_FAILURE, source="newer", failure_count=i) for i in range(count)]
    batch = encode_batch(events, range(1, count + 1))
    batch = batch.append_column(NEW_COLUMN, pa.array([0.5 * i for i in range(count)], pa.float64()))
    return batch.replace_schema_metadata({**(batch.schema.metadata or {}), b"risk.schema_version": str(NEWER).encode()})


def ship_once(spool: Path, lake: Path, *prefix: str) -> subprocess.CompletedProcess[str]:
    command = [*prefix] if prefix else [sys.executable, "-m", "risk_runtime.shipper"]
    return subprocess.run(
        [*command, "--spool", str(spool), "--lake", str(lake), "--once"], capture_output=True, text=True, timeout=180
    )


def test_a_newer_writers_frame_waits_for_a_shipper_that_knows_it(tmp_path: Path) -> None:
    lake, spool = tmp_path / "lake", tmp_path / "spool"
    logger = RiskEventLogger(lake, spool_dir=spool, start_shipper=False).start()  # claims the spool, stays up
    writer_dir = spool / WRITERS / "newer-host-1-0123456789ab"
    writer_dir.mkdir(parents=True)
    segments = SegmentWriter(writer_dir, fsync=False, schema_version=NEWER)
    segments.write(newer_frame(5))
    segments.seal()

    older = ship_once(spool, lake)  # this build's shipper is the older one here
    output = older.stdout + older.stderr
    assert older.returncode != 0, output  # it left something behind, and says so
    assert f"version {NEWER}" in output, output
    assert [s.sealed for s in list_segments(writer_dir)] == [True]  # left in the spool, whole
    assert bronze(lake).num_rows == 0
    stats = logger.stats()
    assert stats.held_back_segments == 1
    assert f"version {NEWER}" in (stats.last_error or "")

    newer = ship_once(spool, lake, sys.executable, "-c", _NEWER_BUILD)
    assert newer.returncode == 0, newer.stdout + newer.stderr
    assert list_segments(writer_dir) == []
    rows = DeltaTable(str(lake / "bronze" / "risk_events")).to_pyarrow_table().to_pylist()
    assert sorted((r["failure_count"], r[NEW_COLUMN]) for r in rows) == [(i, 0.5 * i) for i in range(5)]
    logger.close(timeout=0.1)


def test_a_frame_with_columns_the_shipper_does_not_know_is_never_cut_down(tmp_path: Path) -> None:
    """Even without a version stamp, an unknown column keeps its segment in the spool."""
    lake, spool = tmp_path / "lake", tmp_path / "spool"
    RiskEventLogger(lake, spool_dir=spool, start_shipper=False).start().close(timeout=0.1)
    writer_dir = spool / WRITERS / "odd-host-1-0123456789ab"
    writer_dir.mkdir(parents=True)
    segments = SegmentWriter(writer_dir, fsync=False)
    segments.write(newer_frame(3).replace_schema_metadata({}))
    segments.seal()
    result = ship_once(spool, lake)
    assert result.returncode != 0
    assert NEW_COLUMN in result.stdout + result.stderr
    assert [s.sealed for s in list_segments(writer_dir)] == [True]
