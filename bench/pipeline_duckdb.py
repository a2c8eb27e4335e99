"""The reference build: silver, quarantine and the three gold tables written as DuckDB SQL over the same bronze.

A user comparing our pipeline with "just write it in DuckDB" would write roughly this: read bronze with the
delta extension, de-duplicate, refuse rows that break the rules, and compute the gold tables with window
functions and aggregates. It runs in its own process (the bench's ``--phase duckdb``), so its wall time and
peak RSS are its own, and it writes its tables as Parquet (partitioned by ``event_date``) into a directory of
its own: the delta extension reads Delta but this DuckDB version does not write it.

The rules are generated from the same constants silver's pandera model is built from
(:mod:`risk_pipeline.defs.silver.schema`), so tightening a rule tightens both. What SQL here leaves out, and
why it does not change the generated bench's row counts:

* **home days** (:mod:`risk_pipeline.defs.silver.window`): a row dated outside its window is filed under its
  ingestion day; here every row stays on its ``event_date`` (the generated bronze has no such rows);
* **schema-level failures** (a wrongly typed column): DuckDB reads bronze with its declared types;
* **quarantine reasons from ``ingest_errors``' JSON text**: refused under the generic rule name instead;
* **the sequence-gap, accounting and index checks**: gold here is not checked at all;
* **gold lifetimes reopened after the 7-day retention**: an event long after its stop ended joins that
  stop's lifetime here instead of beginning one (none in the generated bronze).

The extension is loaded from the ``duckdb-extension-delta`` wheel's own file, offline: ``INSTALL delta``
would go to the network.
"""

from __future__ import annotations

import importlib.util
import math
import os
import time
from datetime import date
from pathlib import Path
from typing import Any, Final

from risk_runtime.instruments import MarketSnapshot, OptionContract

SKIPPED_RULES: Final = (
    "DuckDB's silver applies every row rule of silver's pandera model, generated from the same constants; it "
    "skips home days (a row dated outside its window is not refiled under its ingestion day), schema-level "
    "failures, ingest_errors' own texts as reasons, the sequence-gap / accounting / index checks and all gold "
    "checks, and the reopening of a stop's lifetime after the 7-day retention."
)
"""What the reference leaves out, printed beside its figures (see the module docstring)."""

DEDUP_ORDER: Final = "ingested_at, writer_id, sequence"
EVENT_ORDER: Final = "timestamp, writer_id, sequence"


def delta_extension_path() -> Path:
    """The delta extension file shipped inside the ``duckdb-extension-delta`` wheel for this DuckDB version."""
    import duckdb

    spec = importlib.util.find_spec("duckdb_extension_delta")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("duckdb-extension-delta is not installed (it is in the dev dependency group)")
    base = Path(next(iter(spec.submodule_search_locations)))
    path = base / "extensions" / f"v{duckdb.__version__}" / "delta.duckdb_extension"
    if not path.is_file():
        found = sorted(str(p) for p in base.rglob("*.duckdb_extension"))
        raise RuntimeError(f"no delta extension for DuckDB {duckdb.__version__} at {path}; the wheel has {found}")
    return path


def _q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _in(column: str, values: Any) -> str:
    return f"{column} IN ({', '.join(_q(str(v)) for v in sorted(values))})"


def _finite_positive(column: str) -> str:
    return f"(isfinite({column}) AND {column} > 0)"


def _at_most(low: str, high: str) -> str:
    from risk_pipeline.defs.silver.schema import PREMIUM_TOLERANCE

    return f"(isnan({low}) OR isnan({high}) OR {low} <= {high} * (1.0 + {PREMIUM_TOLERANCE!r}))"


def rules() -> list[tuple[str, str]]:
    """``(reason, SQL that is true or null when the row passes)``: silver's rules, named as pandera names them."""
    from risk_pipeline.defs.silver.schema import (
        ACTION_BY_EVENT_TYPE,
        ALLOWED_BY_EVENT_TYPE,
        CIRCUIT_STATES,
        INGEST_ERRORS,
        INGEST_ERRORS_CHECK,
        KNOWN_SCHEMA_VERSIONS,
        LIMIT_TYPES_BY_EVENT_TYPE,
        MIN_FAILURE_COUNT,
        MIN_SEQUENCE,
        OPTION_DELTA_RANGE,
        OPTION_RIGHTS,
        PREMIUM_COLUMNS,
        REQUIRED_FIELDS,
        UUID_PATTERN,
        RiskEventModel,
        max_premium,
    )
    from risk_pipeline.defs.silver.window import exchange_timezone, first_day, max_event_ahead
    from risk_runtime.events import EVENT_COMPONENT, RiskEventType

    out: list[tuple[str, str]] = []
    columns = RiskEventModel.to_schema().columns
    for name, column in columns.items():
        if not column.nullable:
            out.append((f"{name}: not_nullable", f"{name} IS NOT NULL"))
    out.append(("event_id: a UUID string", f"regexp_full_match(event_id, {_q(UUID_PATTERN.strip('^$'))})"))
    out.append(("event_type: a known RiskEventType", _in("event_type", [t.value for t in RiskEventType])))
    states = "{" + ", ".join(sorted(CIRCUIT_STATES)) + "}"
    for col in ("old_state", "new_state"):
        out.append((f"{col}: in {states}", _in(col, CIRCUIT_STATES)))
    out.append((f"failure_count: >= {MIN_FAILURE_COUNT}", f"failure_count >= {MIN_FAILURE_COUNT}"))
    for col in ("entry_premium", "current_premium", "highest_premium", "stop_premium"):
        out.append((f"{col}: finite and > 0", _finite_positive(col)))
    cap = max_premium()
    if not math.isinf(cap):
        out += [(f"{col}: <= $RISK_MAX_PREMIUM", f"(isnan({col}) OR {col} <= {cap!r})") for col in PREMIUM_COLUMNS]
    right = OptionContract.COLUMNS.right
    out.append((f"{right}: in {{C, P}}", _in(right, OPTION_RIGHTS)))
    for col in (OptionContract.COLUMNS.strike, MarketSnapshot.COLUMNS.underlying_price):
        out.append((f"{col}: finite and > 0", _finite_positive(col)))
    low, high = OPTION_DELTA_RANGE
    out.append((f"option_delta: in [{low:g}, {high:g}]", f"option_delta BETWEEN {low!r} AND {high!r}"))
    for col in ("current_value", "limit_value"):
        out.append((f"{col}: finite", f"isfinite({col})"))
    out.append(("metadata: a JSON object", "metadata IS NULL OR (ltrim(metadata) LIKE '{%' AND json_valid(metadata))"))
    out.append((f"sequence: >= {MIN_SEQUENCE}", f"sequence >= {MIN_SEQUENCE}"))
    versions = ", ".join(str(v) for v in sorted(KNOWN_SCHEMA_VERSIONS))
    out.append((f"schema_version: a known version {{{versions}}}", f"schema_version IN ({versions})"))
    out.append((f"{INGEST_ERRORS}: {INGEST_ERRORS_CHECK}", f"{INGEST_ERRORS} IS NULL"))
    component_of = " ".join(f"WHEN {_q(t.value)} THEN {_q(c.value)}" for t, c in EVENT_COMPONENT.items())
    expected_component = f"(CASE event_type {component_of} END)"
    out.append(
        (
            "component matches event_type",
            f"{expected_component} IS NULL OR coalesce(component = {expected_component}, false)",
        )
    )
    change = RiskEventType.CB_STATE_CHANGE.value
    out.append(("old_state != new_state", f"event_type <> {_q(change)} OR old_state <> new_state"))
    out.append(("highest_premium >= entry_premium", _at_most("entry_premium", "highest_premium")))
    out.append(("highest_premium >= current_premium", _at_most("current_premium", "highest_premium")))
    out.append(("stop_premium <= highest_premium", _at_most("stop_premium", "highest_premium")))
    trigger = RiskEventType.TS_TRIGGER.value
    out.append(
        (
            f"{trigger}: current_premium <= stop_premium",
            f"event_type <> {_q(trigger)} OR {_at_most('current_premium', 'stop_premium')}",
        )
    )
    action_of = " ".join(f"WHEN {_q(t.value)} THEN {_q(a)}" for t, a in ACTION_BY_EVENT_TYPE.items())
    known_types = _in("event_type", [t.value for t in RiskEventType])
    out.append(
        (
            "action matches event_type",
            f"action IS NULL OR NOT ({known_types}) OR coalesce(action = (CASE event_type {action_of} END), false)",
        )
    )
    allowed_of = " ".join(f"WHEN {_q(t.value)} THEN {str(v).lower()}" for t, v in ALLOWED_BY_EVENT_TYPE.items())
    expected_allowed = f"(CASE event_type {allowed_of} END)"
    allowed_name = ", ".join(f"{t.value}: {v}" for t, v in ALLOWED_BY_EVENT_TYPE.items())
    out.append(
        (
            f"allowed matches event_type ({allowed_name})",
            f"{expected_allowed} IS NULL OR coalesce(allowed = {expected_allowed}, false)",
        )
    )
    limit_name = "; ".join(f"{t.value}: {{{', '.join(sorted(v))}}}" for t, v in LIMIT_TYPES_BY_EVENT_TYPE.items())
    limit_ok = " AND ".join(
        f"(event_type <> {_q(t.value)} OR coalesce({_in('limit_type', v)}, false))"
        for t, v in LIMIT_TYPES_BY_EVENT_TYPE.items()
    )
    out.append((f"limit_type is a known limit ({limit_name})", limit_ok))
    zone = exchange_timezone()
    out.append(
        (
            "expiry not before the event's day in $RISK_EXCHANGE_TZ",
            f"expiry IS NULL OR coalesce(expiry >= CAST(timezone({_q(zone)}, timestamp) AS DATE), true)",
        )
    )
    first = first_day().isoformat()
    out.append(
        (
            "timestamp: not before $RISK_PARTITIONS_START",
            f"CAST(timestamp AS DATE) >= DATE {_q(first)} AND event_date >= DATE {_q(first)}",
        )
    )
    ahead = int(max_event_ahead().total_seconds() * 1_000_000)
    out.append(
        (
            "timestamp: at most $RISK_MAX_EVENT_AHEAD after ingested_at",
            f"timestamp <= ingested_at + to_microseconds({ahead})",
        )
    )
    out.append(("timestamp falls on event_date (UTC)", "CAST(timestamp AS DATE) = event_date"))
    for field, types in REQUIRED_FIELDS.items():
        names = sorted(t.value for t in types)
        out.append((f"{field} required", f"NOT ({_in('event_type', names)}) OR {field} IS NOT NULL"))
    return out


def _silver_sql(bronze_uri: str, start: date, end: date, columns: list[str]) -> list[str]:
    """Statements that leave ``silver`` and ``quarantine`` tables (and ``counts``) in the connection.

    Written the way a careful DuckDB user would: copies are compared only among rows whose ``event_id``
    occurs more than once (a few thousand), every rule is one boolean over the whole frame, and the list of
    reasons is spelled out only for the rows that fail.
    """
    from risk_runtime.events import EVENT_FIELDS

    checks = rules()
    passes = " AND ".join(f"coalesce({sql}, true)" for _, sql in checks)
    reason_items = ", ".join(f"CASE WHEN NOT coalesce({sql}, true) THEN {_q(name)} END" for name, sql in checks)
    payload = ", ".join(f for f in EVENT_FIELDS if f != "event_id")
    upcast = ", ".join(
        "CASE WHEN schema_version = 1 THEN coalesce(underlying, symbol) ELSE underlying END AS underlying"
        if c == OptionContract.COLUMNS.underlying
        else "CASE WHEN schema_version = 1 THEN 2 ELSE schema_version END AS schema_version"
        if c == "schema_version"
        else c
        for c in columns
    )
    silver_columns = ", ".join(c for c in columns if c != "ingest_errors")
    day_range = f"event_date >= DATE {_q(start.isoformat())} AND event_date < DATE {_q(end.isoformat())}"
    return [
        # 1. Bronze for the range, version-1 rows upcast (underlying from symbol), each row numbered.
        f"""CREATE TEMP TABLE bronze AS SELECT *, row_number() OVER () AS _row, {passes} AS _ok
            FROM (SELECT {upcast} FROM delta_scan({_q(bronze_uri)}) WHERE {day_range})""",
        # 2. Rows sharing an event_id with another row: retried copies (same day, same payload; the first to
        #    land survives) and reuses (a different payload, or another day).
        f"""CREATE TEMP TABLE shared AS
            WITH copies AS (
                SELECT *, row_number() OVER (PARTITION BY event_date, event_id, {payload}
                                             ORDER BY {DEDUP_ORDER}) AS copy
                FROM bronze WHERE event_id IN (
                    SELECT event_id FROM bronze WHERE event_id IS NOT NULL GROUP BY event_id HAVING count(*) > 1))
            SELECT _row, copy > 1 AS repeat,
                   copy = 1 AND row_number() OVER (PARTITION BY event_date, event_id, copy = 1
                                                   ORDER BY {DEDUP_ORDER}) > 1 AS reused,
                   _ok AS passes, event_id, event_date
            FROM copies""",
        # 3. Among the copies that pass every rule, the one on the earliest day is silver's; later ones are not.
        """CREATE TEMP TABLE refused_ids AS
            SELECT _row, reused,
                   NOT reused AND passes AND row_number() OVER (
                       PARTITION BY event_id, NOT reused AND passes ORDER BY event_date) > 1 AS later_day
            FROM shared WHERE NOT repeat""",
        "CREATE TEMP TABLE counts AS SELECT (SELECT count(*) FROM bronze) AS bronze_rows, "
        "(SELECT count(*) FROM shared WHERE repeat) AS duplicates_removed",
        f"""CREATE TEMP TABLE silver AS SELECT {silver_columns} FROM bronze
            WHERE _ok AND _row NOT IN (SELECT _row FROM shared WHERE repeat)
              AND _row NOT IN (SELECT _row FROM refused_ids WHERE reused OR later_day)
            ORDER BY event_date, {EVENT_ORDER}""",
        f"""CREATE TEMP TABLE quarantine AS
            SELECT b.* EXCLUDE (_row, _ok), list_filter([{reason_items},
                CASE WHEN r.reused THEN 'event_id: reused by a different event' END,
                CASE WHEN r.later_day THEN 'event_id: duplicate of an event already in silver' END],
                x -> x IS NOT NULL) AS reasons
            FROM bronze b LEFT JOIN refused_ids r USING (_row)
            WHERE (NOT b._ok OR r.reused OR r.later_day)
              AND b._row NOT IN (SELECT _row FROM shared WHERE repeat)""",
        "DROP TABLE bronze",
    ]


def _gold_sql() -> list[str]:
    """Statements that leave the three gold tables in the connection, computed from ``silver``."""
    from risk_pipeline.defs.gold.circuit_breaker_transitions import LEGAL_TRANSITIONS
    from risk_runtime.events import RiskEventType as T

    legal = ", ".join(_q(f"{a}->{b}") for a, b in sorted(LEGAL_TRANSITIONS))
    ts = {t.name: _q(t.value) for t in T}
    return [
        f"""CREATE TEMP TABLE circuit_breaker_transitions AS
            WITH ordered AS (
                SELECT event_id, source, timestamp, old_state, new_state, failure_count, event_date, writer_id,
                       sequence,
                       lag(new_state) OVER w AS prev_new_state, lag(timestamp) OVER w AS prev_at
                FROM silver WHERE event_type = {ts["CB_STATE_CHANGE"]}
                WINDOW w AS (PARTITION BY source ORDER BY {EVENT_ORDER}))
            SELECT event_id, source, timestamp, old_state, new_state, failure_count, prev_new_state,
                   epoch_us(timestamp - prev_at) / 1e6 AS seconds_in_old_state,
                   coalesce(old_state || '->' || new_state IN ({legal})
                            AND (prev_new_state IS NULL OR prev_new_state = old_state), false) AS is_valid,
                   event_date
            FROM ordered ORDER BY event_date, {EVENT_ORDER}, source""",
        f"""CREATE TEMP TABLE limit_rejection_stats AS
            WITH checks AS (
                SELECT event_date, count(*) AS checks_total FROM silver
                WHERE event_type IN ({ts["PL_CHECK"]}, {ts["PL_REJECTION"]}) GROUP BY event_date),
            per_type AS (
                SELECT event_date, limit_type,
                       count(*) FILTER (event_type = {ts["PL_REJECTION"]}) AS rejection_count,
                       avg(current_value) FILTER (event_type = {ts["PL_REJECTION"]}) AS avg_current_value,
                       avg(limit_value) FILTER (event_type = {ts["PL_REJECTION"]}) AS avg_limit_value,
                       count(*) FILTER (event_type = {ts["PL_WARNING"]}) AS warning_count,
                       max(CASE WHEN abs(limit_value) > 0 THEN abs(current_value) / abs(limit_value) END)
                           AS max_utilization
                FROM silver WHERE event_type IN ({ts["PL_REJECTION"]}, {ts["PL_WARNING"]})
                GROUP BY event_date, limit_type)
            SELECT p.limit_type, p.rejection_count, p.avg_current_value, p.avg_limit_value, p.warning_count,
                   p.max_utilization, coalesce(c.checks_total, 0) AS checks_total,
                   CASE WHEN c.checks_total > 0 THEN p.rejection_count / c.checks_total END AS rejection_rate,
                   p.event_date
            FROM per_type p LEFT JOIN checks c USING (event_date)
            ORDER BY p.event_date, p.limit_type""",
        # A TS_ADD begins a lifetime, and so does an id's first event; every other event joins the one before.
        f"""CREATE TEMP TABLE trailing_stop_outcomes AS
            WITH events AS (
                SELECT *, sum(CASE WHEN event_type = {ts["TS_ADD"]} OR _prev IS NULL THEN 1 ELSE 0 END)
                          OVER (PARTITION BY execution_id ORDER BY _ord ROWS UNBOUNDED PRECEDING) AS lifetime
                FROM (SELECT *, row_number() OVER w AS _ord, lag(event_id) OVER w AS _prev
                      FROM silver WHERE component = 'trailing_stop' AND execution_id IS NOT NULL
                      WINDOW w AS (PARTITION BY execution_id ORDER BY {EVENT_ORDER}))),
            folded AS (
                SELECT execution_id,
                       arg_min(event_id, _ord) AS lifetime_id,
                       arg_max(symbol, _ord) FILTER (symbol IS NOT NULL) AS symbol,
                       arg_min(underlying, _ord)
                           FILTER (underlying IS NOT NULL) AS underlying,
                       arg_min(option_right, _ord)
                           FILTER (option_right IS NOT NULL) AS option_right,
                       arg_min(strike, _ord) FILTER (strike IS NOT NULL) AS strike,
                       arg_min(expiry, _ord) FILTER (expiry IS NOT NULL) AS expiry,
                       arg_min(option_delta, _ord)
                           FILTER (option_delta IS NOT NULL) AS entry_option_delta,
                       coalesce(
                           arg_min(entry_premium, _ord)
                               FILTER (event_type = {ts["TS_ADD"]} AND entry_premium IS NOT NULL),
                           arg_min(entry_premium, _ord)
                               FILTER (entry_premium IS NOT NULL)) AS entry_premium,
                       min(timestamp) FILTER (event_type = {ts["TS_ADD"]}) AS added_at,
                       min(timestamp) FILTER (event_type = {ts["TS_ACTIVATE"]}) AS activated_at,
                       max(highest_premium) AS highest_premium,
                       arg_max(stop_premium, _ord)
                           FILTER (stop_premium IS NOT NULL) AS stop_premium,
                       arg_min(stop_premium, _ord)
                           FILTER (event_type = {ts["TS_TRIGGER"]}) AS stop_at_trigger,
                       arg_min(current_premium, _ord)
                           FILTER (event_type = {ts["TS_TRIGGER"]}) AS exit_premium,
                       min(timestamp) FILTER (event_type = {ts["TS_TRIGGER"]}) AS triggered_at,
                       min(timestamp) FILTER (event_type = {ts["TS_REMOVE"]}) AS removed_at,
                       count(*) FILTER (event_type = {ts["TS_UPDATE"]}) AS n_updates,
                       count(*) AS n_events,
                       max(event_date) AS last_event_date,
                       min(event_date) AS event_date
                FROM events GROUP BY execution_id, lifetime)
            SELECT execution_id, lifetime_id, symbol,
                   CASE WHEN triggered_at IS NOT NULL THEN 'triggered'
                        WHEN removed_at IS NOT NULL THEN 'removed' ELSE 'open' END AS outcome,
                   entry_premium, added_at, activated_at, highest_premium, stop_premium, exit_premium,
                   triggered_at, removed_at,
                   CASE WHEN triggered_at IS NOT NULL
                        THEN coalesce(stop_at_trigger, stop_premium) - entry_premium END AS profit_locked,
                   CASE WHEN triggered_at IS NOT NULL THEN exit_premium - entry_premium END AS realized_pnl,
                   CASE WHEN triggered_at IS NOT NULL THEN highest_premium - exit_premium END AS giveback,
                   n_updates, n_events,
                   epoch_us(coalesce(triggered_at, removed_at) - added_at) / 1e6 AS duration_seconds,
                   underlying, option_right, strike, expiry, entry_option_delta,
                   last_event_date, event_date
            FROM folded ORDER BY event_date, execution_id, lifetime_id""",
    ]


GOLD_TABLES: Final = ("circuit_breaker_transitions", "limit_rejection_stats", "trailing_stop_outcomes")


def duckdb_build(
    bronze_uri: str, out_dir: str, start: date, end: date, *, threads: int | None = None
) -> dict[str, Any]:
    """Build silver, quarantine and gold for ``[start, end)`` with DuckDB; times per stage and row counts."""
    import duckdb

    stages: dict[str, float] = {}
    t0 = time.perf_counter()
    con = duckdb.connect(config={"allow_unsigned_extensions": "true", "autoinstall_known_extensions": "false"})
    con.execute("SET TimeZone = 'UTC'")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    con.load_extension(str(delta_extension_path()))
    columns = [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM delta_scan({_q(bronze_uri)})").fetchall()]
    stages["open + load delta extension"] = time.perf_counter() - t0

    def run(label: str, statements: list[str]) -> None:
        t = time.perf_counter()
        for sql in statements:
            t1 = time.perf_counter()
            con.execute(sql)
            if os.environ.get("BENCH_DUCKDB_TRACE"):
                print(f"{time.perf_counter() - t1:7.2f} s  {' '.join(sql.split())[:90]}", flush=True)
        stages[label] = stages.get(label, 0.0) + time.perf_counter() - t

    run("silver: read, upcast, dedup, validate, route (SQL)", _silver_sql(bronze_uri, start, end, columns))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    def write(table: str) -> None:
        target = out / table
        con.execute(
            f"COPY {table} TO {_q(str(target))} (FORMAT parquet, PARTITION_BY (event_date), OVERWRITE_OR_IGNORE)"
        )

    run("silver: write silver + quarantine (Parquet)", [])
    t = time.perf_counter()
    write("silver")
    write("quarantine")
    stages["silver: write silver + quarantine (Parquet)"] = time.perf_counter() - t
    run("gold: 3 tables (SQL)", _gold_sql())
    t = time.perf_counter()
    for table in GOLD_TABLES:
        write(table)
    stages["gold: write 3 tables (Parquet)"] = time.perf_counter() - t
    counts = con.execute("SELECT * FROM counts").fetchone()
    assert counts is not None
    rows = {
        "bronze_rows": int(counts[0]),
        "silver_rows": _count(con, "silver"),
        "quarantine_rows": _count(con, "quarantine"),
        "duplicates_removed": int(counts[1]),
    }
    gold_rows = {table: _count(con, table) for table in GOLD_TABLES}
    reasons = con.execute(
        "SELECT r, count(*) FROM (SELECT unnest(reasons) AS r FROM quarantine) GROUP BY r ORDER BY 2 DESC LIMIT 5"
    ).fetchall()
    con.close()
    return {
        "stages": stages,
        "work_seconds": time.perf_counter() - t0,
        "totals": rows,
        "gold_rows": gold_rows,
        "top_reasons": {str(r): int(n) for r, n in reasons},
        "rules": len(rules()),
        "duckdb_version": _version(),
        "threads": threads or os.cpu_count(),
    }


def _count(con: Any, table: str) -> int:
    row = con.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


def _version() -> str:
    import duckdb

    return str(duckdb.__version__)
