"""``risk-lake report``: one line with the page's path and size; bad input is one line and a non-zero exit."""

from __future__ import annotations

from pathlib import Path

import pytest
from report_lake import FIRST, LAST, BuiltLake

from risk_pipeline.cli import main
from risk_runtime.table import LAKE_ROOT_ENV


@pytest.fixture(autouse=True)
def _own_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI hands ``--lake`` to the environment; keep that inside each test, and use no Dagster instance."""
    monkeypatch.setenv(LAKE_ROOT_ENV, "/nonexistent-lake-of-the-environment")
    monkeypatch.delenv("DAGSTER_HOME", raising=False)


def test_report_prints_the_path_and_size(built: BuiltLake, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "dash" / "risk_history.html"
    assert main(["report", "--lake", str(built.root), "--start", "2026-03-03", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines == [f"{out.resolve()} ({out.stat().st_size:,} bytes, 2026-03-03 .. {LAST}, 6 charts)"]
    assert "Failed checks: unknown" in out.read_text(encoding="utf-8")  # no $DAGSTER_HOME, no verdicts

    other = tmp_path / "global.html"
    assert main(["--lake", str(built.root), "report", "--out", str(other)]) == 0  # the global --lake works too
    assert f"{FIRST} .. {LAST}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--start", "2026-13-01"], "risk-lake report: error: argument --start: not a day: '2026-13-01'"),
        (["--end", "yesterday"], "risk-lake report: error: argument --end: not a day: 'yesterday'"),
        (
            ["--start", "2026-03-04", "--end", "2026-03-02"],
            "risk-lake report: error: --start 2026-03-04 is after --end 2026-03-02",
        ),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(
    built: BuiltLake, tmp_path: Path, capsys: pytest.CaptureFixture[str], arguments: list[str], message: str
) -> None:
    out = tmp_path / "never.html"
    with pytest.raises(SystemExit) as exited:  # argparse's own exit, with the CLI's one-line message
        main(["report", "--lake", str(built.root), *arguments, "--out", str(out)])
    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1
    assert captured.err.startswith(message)
    assert not out.exists()


def test_a_missing_lake_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "never.html"
    assert main(["report", "--lake", str(tmp_path / "no-lake"), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("risk-lake report: error: no lake at ")
    assert "no-lake" in err[0] and "`risk-lake simulate` writes one" in err[0]
    assert not out.exists()

    under_a_file = tmp_path / "file"
    under_a_file.write_text("not a lake")
    assert main(["report", "--lake", str(under_a_file / "lake"), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "regular file" in err[0]
