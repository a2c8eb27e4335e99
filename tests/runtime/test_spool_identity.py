"""A spool belongs to one table: two lakes side by side never share one, and a mismatch is refused loudly."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow.compute as pc
import pytest
from conftest import bronze

from risk_runtime import RiskEvent, RiskEventLogger, RiskEventType
from risk_runtime.spool import WRITERS, list_segments


def failure(i: int, source: str) -> RiskEvent:
    return RiskEvent(RiskEventType.CB_FAILURE, source=source, failure_count=i)


def sources(lake: Path) -> dict[str, int]:
    table = bronze(lake)
    counts = pc.value_counts(table.column("source")).to_pylist() if table.num_rows else []
    return {c["values"]: c["counts"] for c in counts}


def test_two_lakes_in_one_folder_in_one_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RISK_SPOOL_DIR", raising=False)
    lake_a, lake_b = tmp_path / "data" / "lake", tmp_path / "data" / "lake-test"
    a, b = RiskEventLogger(lake_a).start(), RiskEventLogger(lake_b).start()
    assert a.spool_dir != b.spool_dir
    for i in range(300):
        a.log(failure(i, "lake-a"))
    for i in range(200):
        b.log(failure(i, "lake-b"))
    assert a.flush(timeout=60) and b.flush(timeout=60)
    assert a.close(timeout=60) and b.close(timeout=60)
    assert sources(lake_a) == {"lake-a": 300}
    assert sources(lake_b) == {"lake-b": 200}


_WRITER = textwrap.dedent(
    """
    import sys
    from risk_runtime import RiskEvent, RiskEventLogger, RiskEventType
    lake, source, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    logger = RiskEventLogger(lake).start()
    for i in range(count):
        logger.log(RiskEvent(RiskEventType.CB_FAILURE, source=source, failure_count=i))
    sys.exit(0 if logger.close(timeout=120) else 1)
    """
)


def test_two_lakes_in_one_folder_in_separate_processes(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("RISK_SPOOL_DIR", "RISK_LAKE_ROOT")}
    lake_a, lake_b = tmp_path / "data" / "lake", tmp_path / "data" / "lake-test"
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(lake), source, str(n)], env=env)
        for lake, source, n in ((lake_a, "lake-a", 700), (lake_b, "lake-b", 400))
    ]
    assert [w.wait(timeout=180) for w in writers] == [0, 0]
    assert sources(lake_a) == {"lake-a": 700}
    assert sources(lake_b) == {"lake-b": 400}


def test_an_explicit_lake_beats_risk_spool_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lake_x, lake_y = tmp_path / "x" / "lake", tmp_path / "y" / "lake"
    monkeypatch.setenv("RISK_LAKE_ROOT", str(lake_x))
    monkeypatch.setenv("RISK_SPOOL_DIR", str(tmp_path / "spool-for-x"))
    with RiskEventLogger() as x:  # the environment's lake and spool
        x.log(failure(1, "x"))
    with RiskEventLogger(lake_root=lake_y) as y:  # an explicit lake: never X's spool
        assert y.spool_dir != x.spool_dir
        y.log(failure(1, "y"))
        y.log(failure(2, "y"))
    assert sources(lake_x) == {"x": 1}
    assert sources(lake_y) == {"y": 2}


def test_a_spool_that_feeds_another_table_is_refused(tmp_path: Path) -> None:
    spool, lake_a, lake_b = tmp_path / "spool", tmp_path / "a" / "lake", tmp_path / "b" / "lake"
    with RiskEventLogger(lake_a, spool_dir=spool) as a:
        a.log(failure(1, "a"))
    with pytest.raises(ValueError) as refused:  # at construction: before log() accepts anything for it
        RiskEventLogger(lake_b, spool_dir=spool)
    assert str(lake_a) in str(refused.value) and str(lake_b) in str(refused.value)


def test_a_spool_claimed_by_another_table_after_construction_is_refused_at_start(tmp_path: Path) -> None:
    spool, lake_a, lake_b = tmp_path / "spool", tmp_path / "a" / "lake", tmp_path / "b" / "lake"
    late = RiskEventLogger(lake_b, spool_dir=spool)  # the spool has no owner yet
    with RiskEventLogger(lake_a, spool_dir=spool) as a:  # ... until lake A's logger claims it
        a.log(failure(1, "a"))
    with pytest.raises(ValueError, match="feeds"):
        asyncio.run(late.initialize())
    with pytest.raises(RuntimeError, match="closed"):
        late.start()
    assert late.log(failure(2, "b")) is False  # never accepted for a spool it cannot write to
    stats = late.stats()
    assert (stats.accepted, stats.refused_after_close) == (0, 1)
    assert str(lake_a) in (stats.last_error or "")


def test_the_shipper_never_commits_a_spool_meant_for_another_table(tmp_path: Path) -> None:
    spool, lake_a, lake_b = tmp_path / "spool", tmp_path / "a" / "lake", tmp_path / "b" / "lake"
    logger = RiskEventLogger(lake_a, spool_dir=spool, start_shipper=False).start()
    for i in range(5):
        logger.log(failure(i, "a"))
    logger._cycle(seal=True)
    writer_dir = spool / WRITERS / logger.writer_id
    assert [s.sealed for s in list_segments(writer_dir)] == [True]
    result = subprocess.run(
        [sys.executable, "-m", "risk_runtime.shipper", "--spool", str(spool), "--lake", str(lake_b), "--once"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert str(lake_a) in result.stdout + result.stderr and str(lake_b) in result.stdout + result.stderr
    assert bronze(lake_b).num_rows == 0
    assert [s.sealed for s in list_segments(writer_dir)] == [True]  # still waiting for its own table
    logger.start_shipper = True
    assert logger.close(timeout=60)
    assert sources(lake_a) == {"a": 5}


@pytest.mark.parametrize("where", ["before", "after"])
def test_cli_lake_means_the_same_for_every_subcommand(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    from risk_pipeline import cli

    env_lake, lake = tmp_path / "env" / "lake", tmp_path / "chosen" / "lake"
    monkeypatch.setenv("RISK_LAKE_ROOT", str(env_lake))
    monkeypatch.setenv("RISK_SPOOL_DIR", str(tmp_path / "spool-for-env-lake"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    options = ["simulate", "--days", "1", "--events", "300"]
    argv = ["--lake", str(lake), *options] if where == "before" else [*options, "--lake", str(lake)]
    assert cli.main(argv) == 0
    assert bronze(lake).num_rows > 0
    assert bronze(env_lake).num_rows == 0
