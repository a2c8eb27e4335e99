"""The fault scenarios of ``bench.faults``: real writer processes, shippers and Delta tables, counted.

Each function runs one scenario in a work directory and returns what it counted (a
:class:`ScenarioResult`, or a dict of read timings); :mod:`bench.faults` chooses the sizes and runs
them, :mod:`bench.faults_report` prints them. The scenarios, and what "lost" means, are described
in :mod:`bench.faults`.
"""

from __future__ import annotations

import inspect
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake

from risk_pipeline.defs.maintenance.compaction import maintain
from risk_pipeline.defs.silver.transform import build_silver
from risk_runtime.encoding import events_to_bronze
from risk_runtime.events import BRONZE_PARTITION_COLUMNS, RiskEvent, RiskEventType
from risk_runtime.logger import RiskEventLogger
from risk_runtime.spool import SHIPPER_LOCK, SHIPPER_LOG, is_locked
from risk_runtime.table import RiskEventsTable

WRITER = Path(__file__).with_name("fault_writer.py")
SYNC_INTERVAL: float = inspect.signature(RiskEventLogger).parameters["sync_interval"].default
"""The logger's default durability window; the scenarios judge losses against it."""
DURABILITY_WINDOW = SYNC_INTERVAL + 0.3
"""The logger's sync_interval plus scheduling slack on a loaded machine."""
OUTAGE_P99_TARGET = 2.0
"""log() p99 during a lake outage, as a multiple of its p99 in normal operation."""
COMPACTED_READ_TARGET = 2.0
"""A bronze read after compaction, as a multiple of a freshly written single-commit table's."""
COMMIT_FAILED = "commit failed"
MAINTAIN_PAUSE = 0.2
"""Between maintain() runs beside the writers, so small files accumulate between compactions."""


@dataclass
class ScenarioResult:
    name: str
    accepted: int
    in_bronze: int
    in_silver: int
    lost: int
    duplicated: int
    notes: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------ helpers
def start_writer(lake: Path, spool: Path, count: int, mode: str, *extra: str) -> subprocess.Popen[str]:
    """A writer process (``bench/fault_writer.py``); its stdout is a text pipe."""
    return subprocess.Popen(
        [sys.executable, str(WRITER), str(lake), str(spool), str(count), mode, *extra],
        stdout=subprocess.PIPE,
        text=True,
    )


def expect_line(process: subprocess.Popen[str], expected: str | None = None) -> str:
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if expected is not None and line != expected:
        raise RuntimeError(f"writer printed {line!r}, expected {expected!r} (exit code {process.poll()})")
    return line


def last_json(process: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    """Wait for the writer to exit; its last stdout line, parsed as JSON."""
    out, _ = process.communicate(timeout=timeout)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if process.returncode != 0 or not lines:
        raise RuntimeError(f"writer exited with {process.returncode}: {out[-2000:]}")
    return json.loads(lines[-1])


def shipper_pids(spool: Path) -> list[int]:
    result = subprocess.run(["pgrep", "-f", f"risk_runtime.shipper --spool {spool}"], capture_output=True, text=True)
    return [int(p) for p in result.stdout.split()]


def kill_writer_and_shipper(writer: subprocess.Popen[str], spool: Path) -> datetime:
    """SIGKILL the spool's shipper(s) and the writer; returns the time the writer was dead."""
    for pid in shipper_pids(spool):
        os.kill(pid, signal.SIGKILL)
    writer.kill()
    killed_at = datetime.now(UTC)
    writer.wait(timeout=30)
    deadline = time.monotonic() + 10
    while is_locked(spool / SHIPPER_LOCK) and time.monotonic() < deadline:
        time.sleep(0.05)
    return killed_at


def recover(spool: Path, lake: Path) -> subprocess.CompletedProcess[str]:
    """A fresh shipper with ``--once``: what an operator (or the next logger) runs after a crash."""
    return subprocess.run(
        [sys.executable, "-m", "risk_runtime.shipper", "--spool", str(spool), "--lake", str(lake), "--once"],
        capture_output=True,
        text=True,
        timeout=300,
    )


def read_bronze(lake: Path) -> pa.Table:
    return RiskEventsTable(lake).read()


def wait_for_rows(lake: Path, expected: int, timeout: float = 120.0) -> pa.Table:
    """Poll bronze until it holds ``expected`` rows (the shipper may outlive the writer)."""
    deadline = time.monotonic() + timeout
    while True:
        table = read_bronze(lake)
        if table.num_rows >= expected or time.monotonic() > deadline:
            return table
        time.sleep(0.1)


def wait_for_table(lake: Path, timeout: float = 60.0) -> None:
    table = RiskEventsTable(lake)
    deadline = time.monotonic() + timeout
    while not table.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"no bronze table at {table.uri} after {timeout:.0f}s")
        time.sleep(0.05)


def distinct(table: pa.Table, columns: Sequence[str]) -> int:
    return table.group_by(list(columns)).aggregate([]).num_rows if table.num_rows else 0


def bronze_duplicates(table: pa.Table) -> int:
    """Rows beyond the first copy of each event id."""
    return table.num_rows - distinct(table, ["event_id"])


def silver_summary(table: pa.Table) -> dict[str, int]:
    """``build_silver`` over every bronze day: silver rows, duplicates in silver, quarantined, removed."""
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    silver = quarantined = removed = duplicates = 0
    for (day,), rows in frame.partition_by("event_date", as_dict=True).items():
        build = build_silver(rows, run_id="bench-faults", partition=str(day))
        silver += build.silver.height
        duplicates += build.silver.height - build.silver.get_column("event_id").n_unique()
        quarantined += build.quarantine.height
        removed += build.duplicates_removed
    return {"silver": silver, "silver_duplicates": duplicates, "quarantined": quarantined, "removed": removed}


def shipper_log_lines(spools: Sequence[Path], needle: str) -> int:
    count = 0
    for spool in spools:
        log = spool / SHIPPER_LOG
        if log.exists():
            count += sum(needle in line for line in log.read_text(errors="replace").splitlines())
    return count


def account(name: str, accepted: int, table: pa.Table, notes: dict[str, Any]) -> ScenarioResult:
    """Accepted events vs bronze (each writer's sequence numbers) and silver."""
    summary = silver_summary(table)
    present = distinct(table, ["writer_id", "sequence"])
    notes = {**notes, "quarantined": summary["quarantined"]}
    return ScenarioResult(
        name=name,
        accepted=accepted,
        in_bronze=table.num_rows,
        in_silver=summary["silver"],
        lost=max(0, accepted - present),
        duplicated=bronze_duplicates(table) + summary["silver_duplicates"],
        notes=notes,
    )


# ------------------------------------------------------------------------------------- 1. kill -9
def read_progress(path: Path) -> list[tuple[int, float]]:
    """``(accepted, unix time)`` lines the writer appended; a torn last line is ignored."""
    points = []
    for line in path.read_text().splitlines() if path.exists() else []:
        parts = line.split()
        if len(parts) == 2:
            try:
                points.append((int(parts[0]), float(parts[1])))
            except ValueError:
                continue
    return points


def kill9(workdir: Path, rate: int, *, run_for: float | None = None, seed: int | None = None) -> ScenarioResult:
    """Log at ``rate``/s, SIGKILL the writer and its shipper at a random point, recover with ``--once``.

    The bronze table stays at ``workdir/lake`` for the caller to inspect (the spool at ``workdir/spool``).
    """
    workdir = workdir.resolve()
    lake, spool, progress = workdir / "lake", workdir / "spool", workdir / "progress.txt"
    rng = random.Random(seed)
    writer = start_writer(lake, spool, 0, "hang", str(rate), "--progress", str(progress))
    expect_line(writer, "ready")
    time.sleep(run_for if run_for is not None else rng.uniform(0.8, 1.6))
    killed_at = kill_writer_and_shipper(writer, spool)

    recovery = recover(spool, lake)
    table = read_bronze(lake)
    horizon = killed_at - timedelta(seconds=DURABILITY_WINDOW)
    points = read_progress(progress)
    # Accepted by the horizon: the last progress report written before it.
    old = max((n for n, t in points if t <= horizon.timestamp()), default=0)
    counts = pc.unique(table.column("failure_count")) if table.num_rows else pa.array([], pa.int64())
    present_old = pc.sum(pc.less_equal(counts, old)).as_py() or 0
    present_new = len(counts) - present_old
    max_landed = (pc.max(counts).as_py() or 0) if len(counts) else 0
    accepted = max(points[-1][0] if points else 0, max_landed)
    result = account(
        f"kill -9 @ {rate:,}/s",
        accepted,
        table,
        {
            "older_than_window": old,
            "lost_in_window": max(0, accepted - old - present_new),
            "before_window_by_timestamp": pc.sum(pc.less(table.column("timestamp"), horizon)).as_py() or 0,
            "killed_at": killed_at,
            "recovery_exit": recovery.returncode,
            "recovery_output": (recovery.stdout + recovery.stderr)[-2000:] if recovery.returncode else None,
        },
    )
    result.lost = old - present_old  # only what was accepted before the window counts as lost
    return result


# --------------------------------------------------------------------------------- 2. sink outage
def break_lake(lake: Path) -> Path:
    """Make every path under ``lake`` fail (NotADirectoryError), even for root: a file where the lake was."""
    away = lake.with_name(lake.name + ".away")
    os.rename(lake, away)
    lake.write_text("the lake is unreachable\n")
    return away


def restore_lake(lake: Path, away: Path) -> None:
    lake.unlink()
    os.rename(away, lake)


def outage(
    workdir: Path, seconds: float, *, rate: int = 1_000, normal: float | None = None, after: float | None = None
) -> ScenarioResult:
    """The lake is unreachable for ``seconds`` while a writer logs at ``rate``/s; then it comes back."""
    workdir = workdir.resolve()
    lake, spool = workdir / "lake", workdir / "spool"
    stop, phases = workdir / "stop", workdir / "phases.json"
    normal = normal if normal is not None else max(3.0, seconds / 4)
    after = after if after is not None else max(2.0, seconds / 10)
    writer = start_writer(lake, spool, 0, "paced", str(rate), "--stop", str(stop), "--phases", str(phases))
    try:
        expect_line(writer, "ready")
        wait_for_table(lake)
        time.sleep(normal)
        rows_before = read_bronze(lake).num_rows
        away = break_lake(lake)
        start = time.time()
        time.sleep(seconds)
        failures_during = shipper_log_lines([spool], COMMIT_FAILED)
        restore_lake(lake, away)
        end = time.time()
        tmp = phases.with_suffix(".tmp")
        tmp.write_text(json.dumps({"outage_start": start, "outage_end": end}))
        os.rename(tmp, phases)
        time.sleep(after)
        stop.touch()
        report = last_json(writer, timeout=seconds + 300)
    finally:
        if writer.poll() is None:
            writer.kill()
    table = wait_for_rows(lake, report["accepted"])
    latency = report["latency"]
    normal_p99, outage_p99 = latency["normal"]["p99_ns"], latency["outage"]["p99_ns"]
    return account(
        f"lake outage {seconds:g}s @ {rate:,}/s",
        report["accepted"],
        table,
        {
            "dropped": report["dropped"],
            "rows_before_outage": rows_before,
            "commit_failed_lines": failures_during,
            "spool_bytes_peak": report["spool_bytes_peak"],
            "drain_s": round(report["drain_seconds"], 2),
            "landed": report["landed"],
            "log_p50_normal_ns": latency["normal"]["p50_ns"],
            "log_p99_normal_ns": normal_p99,
            "log_p50_outage_ns": latency["outage"]["p50_ns"],
            "log_p99_outage_ns": outage_p99,
            "log_p99_after_ns": latency["after"]["p99_ns"],
            "outage_samples": latency["outage"]["n"],
        },
    )


# ---------------------------------------------------------------------------------- 3. many writers
def many_writers(workdir: Path, writers: int, events: int, *, shared_spool: bool) -> ScenarioResult:
    """``writers`` processes log ``events`` each and close(); one spool each, or one spool for all."""
    workdir = workdir.resolve()
    lake = workdir / "lake"
    spools = [workdir / "spool"] if shared_spool else [workdir / f"spool-{i}" for i in range(writers)]
    processes = [start_writer(lake, spools[i % len(spools)], events, "close") for i in range(writers)]
    reports = [last_json(p, timeout=600) for p in processes]
    accepted = sum(r["accepted"] for r in reports)
    table = wait_for_rows(lake, accepted)
    commits = len(DeltaTable(RiskEventsTable(lake).uri).history())
    kind = "1 shared spool" if shared_spool else f"{writers} spools"
    return account(
        f"{writers} writers x {events:,}, {kind}",
        accepted,
        table,
        {
            "commit_failed_lines": shipper_log_lines(spools, COMMIT_FAILED),
            "tracebacks": shipper_log_lines(spools, "Traceback"),
            "writers_in_bronze": distinct(table, ["writer_id"]),
            "delta_versions": commits,
            "all_landed": all(r["landed"] for r in reports),
        },
    )


# ------------------------------------------------------------------------------ 4. maintenance
def maintenance_with_writers(workdir: Path, *, seconds: float, rate: int = 2_000) -> ScenarioResult:
    """``maintain(bronze)`` in a loop while two writers (two spools, two shippers) append for ``seconds``."""
    workdir = workdir.resolve()
    lake = workdir / "lake"
    spools = [workdir / "spool-0", workdir / "spool-1"]
    processes = [start_writer(lake, s, 0, "paced", str(rate), "--duration", str(seconds)) for s in spools]
    for p in processes:
        expect_line(p, "ready")
    uri = RiskEventsTable(lake).uri
    wait_for_table(lake)
    runs, errors, compacted = 0, [], 0
    while any(p.poll() is None for p in processes):
        try:
            report = maintain(uri)
            compacted += report.partitions_compacted
        except Exception as exc:  # counted and reported: maintenance must not break writers
            errors.append(f"{type(exc).__name__}: {exc}")
        runs += 1
        time.sleep(MAINTAIN_PAUSE)
    reports = [last_json(p, timeout=300) for p in processes]
    accepted = sum(r["accepted"] for r in reports)
    table = wait_for_rows(lake, accepted)
    final = maintain(uri)
    after = read_bronze(lake)
    return account(
        f"maintain() x{runs} beside 2 writers",
        accepted,
        table,
        {
            "maintain_runs": runs,
            "maintain_errors": len(errors),
            "first_error": errors[0][:120] if errors else None,
            "partitions_compacted": compacted,
            "rows_after_final_maintain": after.num_rows,
            "files_after": final.files_after,
            "commit_failed_lines": shipper_log_lines(spools, COMMIT_FAILED),
        },
    )


def _rows(commit: int, rows: int) -> pa.Table:
    events = [
        RiskEvent(RiskEventType.CB_FAILURE, source="bench-reads", failure_count=commit * rows + i) for i in range(rows)
    ]
    return events_to_bronze(events, writer_id="bench-reads", first_sequence=commit * rows + 1)


def timed_reads(uri: str, repeats: int = 3) -> dict[str, float]:
    """Best of ``repeats`` for a whole-table read: ``DeltaTable.to_pyarrow_table`` and ``pl.read_delta``."""
    best = {"pyarrow": float("inf"), "polars": float("inf"), "rows": 0.0}
    for _ in range(repeats):
        t0 = time.perf_counter()
        rows = DeltaTable(uri).to_pyarrow_table().num_rows
        t1 = time.perf_counter()
        pl.read_delta(uri)
        t2 = time.perf_counter()
        best["pyarrow"], best["polars"], best["rows"] = (
            min(best["pyarrow"], t1 - t0),
            min(best["polars"], t2 - t1),
            rows,
        )
    return best


def read_after_commits(workdir: Path, *, commits: int, rows: int = 100) -> dict[str, Any]:
    """Bronze read times after ``commits`` default-size commits, after compaction, and for one commit."""
    workdir = workdir.resolve()
    many, single = RiskEventsTable(workdir / "many"), RiskEventsTable(workdir / "single")
    table = many.ensure_exists()  # one DeltaTable object reused, as the shipper does
    t0 = time.perf_counter()
    for k in range(commits):
        write_deltalake(
            table,
            _rows(k, rows),
            mode="append",
            partition_by=list(BRONZE_PARTITION_COLUMNS),
            commit_properties=CommitProperties(app_transactions=[Transaction("bench-reads", k + 1)]),
        )
    write_s = time.perf_counter() - t0
    single.append(pa.concat_tables([_rows(k, rows) for k in range(commits)]), app_id="bench-reads", version=1)
    fresh = timed_reads(single.uri)
    rotten = timed_reads(many.uri)
    t0 = time.perf_counter()
    report = maintain(many.uri)
    maintain_s = time.perf_counter() - t0
    compacted = timed_reads(many.uri)
    return {
        "commits": commits,
        "rows": commits * rows,
        "write_s": write_s,
        "maintain_s": maintain_s,
        "files_before": report.files_before,
        "files_after": report.files_after,
        "fresh": fresh,
        "many_commits": rotten,
        "compacted": compacted,
        "rows_ok": fresh["rows"] == rotten["rows"] == compacted["rows"] == commits * rows,
    }


# ------------------------------------------------------------------------------ 5. circuit breaker
def breaker_recovery(workdir: Path, *, reset_timeout: float = 30.0, name: str = "venue-a") -> ScenarioResult:
    """Open a breaker through a real logger, SIGKILL the process, ``load_state()`` it in a new one."""
    workdir = workdir.resolve()
    lake, spool = workdir / "lake", workdir / "spool"
    extra = ("--name", name, "--reset-timeout", str(reset_timeout))
    writer = start_writer(lake, spool, 0, "breaker", *extra)
    opened = json.loads(expect_line(writer))
    time.sleep(2 * DURABILITY_WINDOW)
    kill_writer_and_shipper(writer, spool)
    recovery = recover(spool, lake)
    if recovery.returncode != 0:
        raise RuntimeError(f"recovery shipper failed: {recovery.stdout}{recovery.stderr}")
    loader = start_writer(lake, spool, 0, "load-breaker", *extra)
    loaded = last_json(loader, timeout=120)
    table = read_bronze(lake)
    return account(
        f"breaker '{name}' across SIGKILL",
        opened["accepted"],
        table,
        {
            "opened_in_writer": opened["state"],
            "states": loaded.get("states"),
            "opened_at_kept": loaded.get("opened_at") == opened["opened_at"],
            "failure_count": loaded.get("failure_count"),
            "reset_timeout_s": reset_timeout,
        },
    )
