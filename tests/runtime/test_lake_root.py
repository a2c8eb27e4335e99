"""A lake root is validated where it is resolved, so every entry point refuses a bad one the same way.

Before, ``''`` became the current directory, ``'s3://'`` a local folder named ``s3:``, and ``ftp://``
or a path that is a regular file left a shipper retrying forever in the background.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from risk_runtime.encoding import events_to_bronze
from risk_runtime.events import RiskEvent, RiskEventType
from risk_runtime.logger import RiskEventLogger
from risk_runtime.table import LAKE_ROOT_ENV, RiskEventsTable, resolve_lake_root


def _regular_file(tmp_path: Path) -> str:
    path = tmp_path / "lake.txt"
    path.write_text("not a lake")
    return str(path)


def _under_regular_file(tmp_path: Path) -> str:
    return str(Path(_regular_file(tmp_path)) / "data" / "lake")


BAD_ROOTS: dict[str, tuple[Callable[[Path], str], str]] = {
    "empty": (lambda _: "", "empty"),
    "blank": (lambda _: "   ", "empty"),
    "scheme-only": (lambda _: "s3://", "no bucket or container"),
    "no-bucket": (lambda _: "s3:///lake", "no bucket or container"),
    "azure-no-container": (lambda _: "abfss:///lake", "no bucket or container"),
    "unsupported-scheme": (lambda _: "ftp://example.com/lake", "unsupported scheme 'ftp'"),
    "http": (lambda _: "https://example.com/lake", "unsupported scheme 'https'"),
    "in-memory": (lambda _: "memory:///lake", "unsupported scheme 'memory'"),
    "regular-file": (_regular_file, "is a regular file"),
    "under-regular-file": (_under_regular_file, "is a regular file"),
    "file-uri-of-regular-file": (lambda p: "file://" + _regular_file(p), "is a regular file"),
    "file-uri-remote-host": (lambda _: "file://otherhost/lake", "names host 'otherhost'"),
}


@pytest.fixture(params=sorted(BAD_ROOTS))
def bad_root(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    make, problem = BAD_ROOTS[request.param]
    return make(tmp_path), problem


def test_resolve_lake_root_refuses(bad_root: tuple[str, str]) -> None:
    root, problem = bad_root
    with pytest.raises(ValueError, match="lake_root") as info:
        resolve_lake_root(root)
    assert problem in str(info.value)


def test_logger_refuses_at_construction(bad_root: tuple[str, str], tmp_path: Path) -> None:
    root, problem = bad_root
    with pytest.raises(ValueError, match="lake_root") as info:
        RiskEventLogger(lake_root=root, spool_dir=tmp_path / "spool")
    assert problem in str(info.value)
    assert not (tmp_path / "spool").exists()  # refused before anything was created


def test_events_table_refuses_at_construction(bad_root: tuple[str, str]) -> None:
    root, problem = bad_root
    with pytest.raises(ValueError, match="lake_root") as info:
        RiskEventsTable(root)
    assert problem in str(info.value)


def test_pipeline_lake_refuses_at_construction(bad_root: tuple[str, str]) -> None:
    from risk_pipeline.lake import Lake

    root, problem = bad_root
    with pytest.raises(ValueError, match="lake_root") as info:
        Lake(root)
    assert problem in str(info.value)


def test_a_bad_environment_root_fails_the_same_way_and_names_the_variable(
    bad_root: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, problem = bad_root
    if root == "":
        pytest.skip("an empty variable means unset (see test_an_empty_environment_variable_means_unset)")
    monkeypatch.setenv(LAKE_ROOT_ENV, root)
    for construct in (resolve_lake_root, RiskEventsTable, lambda: RiskEventLogger(spool_dir=tmp_path / "spool")):
        with pytest.raises(ValueError, match=f"\\${LAKE_ROOT_ENV}") as info:
            construct()
        assert problem in str(info.value)


def test_an_empty_environment_variable_means_unset(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(LAKE_ROOT_ENV, "")
    assert resolve_lake_root() == str(tmp_path / "data" / "lake")


def test_wrong_typed_root_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="lake_root"):
        resolve_lake_root(42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "root",
    [
        "s3://bucket/lake",
        "s3a://bucket/lake/",
        "gs://bucket/lake",
        "az://container/lake",
        "abfss://container@account.dfs.core.windows.net/lake",
    ],
)
def test_object_store_roots_pass_unchanged(root: str) -> None:
    assert resolve_lake_root(root) == root.rstrip("/")


def test_a_local_root_that_does_not_exist_yet_is_fine(tmp_path: Path) -> None:
    assert resolve_lake_root(tmp_path / "new" / "lake") == str(tmp_path / "new" / "lake")


def test_file_uri_is_the_local_lake_it_names(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    assert resolve_lake_root(f"file://{lake}") == str(lake)
    assert resolve_lake_root(f"file://localhost{lake}/") == str(lake)
    event = RiskEvent(event_type=RiskEventType.CB_FAILURE, timestamp=datetime(2026, 3, 2, tzinfo=UTC), failure_count=1)
    assert RiskEventsTable(f"file://{lake}").append(events_to_bronze([event], writer_id="w"), app_id="w", version=1)
    assert RiskEventsTable(lake).read(columns=["event_id"]).column("event_id").to_pylist() == [event.event_id]


def test_the_shipper_refuses_a_bad_lake_and_exits_non_zero(bad_root: tuple[str, str], tmp_path: Path) -> None:
    """The recovery command, a real process: it stops at once and says why, instead of retrying forever."""
    root, problem = bad_root
    result = subprocess.run(
        [sys.executable, "-m", "risk_runtime.shipper", "--spool", str(tmp_path / "spool"), "--lake", root, "--once"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "ValueError: lake_root" in result.stderr and problem in result.stderr
