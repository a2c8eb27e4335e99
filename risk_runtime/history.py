"""One source's events as they stand: bronze *and* the local spool, without loading Delta here.

:meth:`TradingCircuitBreaker.load_state` folds a breaker's events. Bronze alone is not enough: a
breaker killed right after opening has its OPEN transition on local disk, in a segment no shipper
has committed yet. So :func:`read_source_events` reads

* from **bronze**, only rows with ``component`` and ``source`` equal to the breaker's, and only in
  recent ``event_date`` partitions (``lookback_days``, default 7); if those hold no state change
  (nothing to fold from), the read widens to all partitions -- still filtered by source;
* from the **spool**, every intact frame of every writer's segments, sealed and open (a live
  writer's open segment is read up to its last intact frame), keeping that source's rows;

and drops spool rows bronze already holds (same ``event_id``). The spool is read *before* bronze: the
shipper commits a segment and only then deletes it, so an event is always in at least one of the reads.

Why a subprocess for the bronze read: after a process has used ``deltalake``, a forked child that
touches it dies with a Rust panic (field notes). Trading processes fork (the logger supports it), so
the read runs in a short-lived ``python -m risk_runtime.history`` (fork+exec: nothing of ours is
inherited, nothing of deltalake's stays here) that writes Arrow IPC to its stdout. It costs one
interpreter start (~0.5 s) at restore time, never on the hot path. Reading the spool needs
pyarrow only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from risk_runtime.spool import list_segments, read_segment, writer_dirs
from risk_runtime.storage import STORAGE_OPTIONS_ENV

DEFAULT_LOOKBACK_DAYS: Final = 7


LANDED: Final = "_landed"
"""Column :func:`read_source_events` adds: True for a row read from bronze, False for one still in the spool."""


def read_source_events(
    lake_root: str,
    *,
    component: str,
    source: str,
    columns: Sequence[str],
    spool_dir: Path | None = None,
    storage_options: Mapping[str, str] | None = None,
    lookback_days: int = DEFAULT_LOOKBACK_DAYS,
    complete_when: str | None = None,
) -> pa.Table:
    """Rows of ``component``/``source`` from bronze and the spool (``columns``, ``event_id`` and :data:`LANDED`).

    ``complete_when``: an ``event_type`` whose presence in the recent partitions means older ones
    are not needed; without it in the result, every partition is read.
    """
    wanted = list(dict.fromkeys([*columns, "event_id"]))
    # The spool first, bronze second: a segment the shipper commits and deletes between the two reads
    # is then in both (deduplicated below), never in neither.
    spooled = read_spool_events(spool_dir, component=component, source=source, columns=wanted) if spool_dir else None
    since = (datetime.now(UTC).date() - timedelta(days=lookback_days)).isoformat()
    bronze = _bronze_in_subprocess(lake_root, component, source, wanted, since, storage_options)
    if complete_when is not None and not _has(bronze, complete_when):
        bronze = _bronze_in_subprocess(lake_root, component, source, wanted, None, storage_options)
    bronze = bronze.append_column(LANDED, pa.array([True] * bronze.num_rows, pa.bool_()))
    if spooled is None or spooled.num_rows == 0:
        return bronze
    spooled = spooled.append_column(LANDED, pa.array([False] * spooled.num_rows, pa.bool_()))
    landed = pa.array(bronze.column("event_id").to_pylist(), pa.string()) if bronze.num_rows else None
    if landed is not None:
        spooled = spooled.filter(pc.invert(pc.is_in(spooled.column("event_id"), value_set=landed)))
    schema = pa.schema([f.with_nullable(True) for f in bronze.schema])  # a spooled row may hold nulls
    return pa.concat_tables([bronze.cast(schema), spooled.cast(schema)])


def _has(table: pa.Table, event_type: str) -> bool:
    return table.num_rows > 0 and bool(pc.any(pc.equal(table.column("event_type"), event_type)).as_py())


def read_spool_events(spool_dir: Path, *, component: str, source: str, columns: Sequence[str]) -> pa.Table:
    """Rows of ``component``/``source`` in every intact frame of the spool's segments."""
    from risk_runtime.encoding import SPOOL_SCHEMA

    schema = pa.schema([SPOOL_SCHEMA.field(c) for c in columns])
    pieces: list[pa.Table] = []
    for writer_dir in writer_dirs(spool_dir):
        for segment in list_segments(writer_dir):
            try:
                contents = read_segment(segment.path, sealed=False)
            except FileNotFoundError:  # shipped meanwhile: bronze, read after the spool, has it
                continue
            for batch in contents.batches:
                if not {"component", "source"}.issubset(batch.schema.names):
                    continue
                table = pa.Table.from_batches([batch])
                mask = pc.and_(pc.equal(table.column("component"), component), pc.equal(table.column("source"), source))
                table = table.filter(pc.fill_null(mask, False))
                if table.num_rows:
                    pieces.append(
                        pa.Table.from_arrays(
                            [
                                table.column(f.name).cast(f.type)
                                if f.name in table.column_names
                                else pa.nulls(table.num_rows, f.type)
                                for f in schema
                            ],
                            schema=schema,
                        )
                    )
    return pa.concat_tables(pieces) if pieces else schema.empty_table()


def _bronze_in_subprocess(
    lake_root: str,
    component: str,
    source: str,
    columns: Sequence[str],
    since: str | None,
    storage_options: Mapping[str, str] | None,
) -> pa.Table:
    command = [sys.executable, "-m", "risk_runtime.history", "--lake", lake_root, "--component", component]
    command += ["--source", source, "--columns", ",".join(columns)]
    if since:
        command += ["--since", since]
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    if storage_options:
        env[STORAGE_OPTIONS_ENV] = json.dumps(dict(storage_options))
    result = subprocess.run(command, capture_output=True, env=env, check=False, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise RuntimeError(f"reading bronze at {lake_root} failed: {result.stderr.decode(errors='replace')[-2000:]}")
    return pa.ipc.open_stream(pa.py_buffer(result.stdout)).read_all()


def main(argv: Sequence[str] | None = None) -> int:
    """Write the selected bronze rows to stdout as an Arrow IPC stream."""
    parser = argparse.ArgumentParser(prog="python -m risk_runtime.history")
    parser.add_argument("--lake", required=True)
    parser.add_argument("--component", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--columns", required=True)
    parser.add_argument("--since", default=None, help="first event_date (ISO); default: every partition")
    args = parser.parse_args(argv)
    from risk_runtime.table import RiskEventsTable

    filters: list[tuple[str, str, object]] = [("component", "=", args.component), ("source", "=", args.source)]
    if args.since:
        filters.append(("event_date", ">=", date.fromisoformat(args.since)))
    table = RiskEventsTable(args.lake).read(filters=filters, columns=args.columns.split(","))
    sink = sys.stdout.buffer
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    sink.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
