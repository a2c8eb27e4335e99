"""Where the lake lives, and the bronze ``risk_events`` Delta table.

Every table lives at ``<lake_root>/<layer>/<name>``. The lake root is a local path today and
may be an object-store URI (``s3://bucket/lake``) tomorrow; nothing here assumes a file system
beyond what ``deltalake`` itself abstracts, and ``storage_options`` travel with the root.

Appends to bronze are the one write path that several trading processes share, so this module
owns the two facts measured on our machines (see the field notes):

* concurrent appends raise ``CommitFailedError`` after delta-rs's own 15 retries: we retry again
  with jittered exponential back-off;
* a retried commit whose outcome is unknown may already have landed, and delta-rs does *not*
  de-duplicate on ``app_transactions``: before every retry we read the table's transaction
  version for the writer and skip a batch it has already committed.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
from deltalake import (
    ColumnProperties,
    CommitProperties,
    DeltaTable,
    QueryBuilder,
    Transaction,
    WriterProperties,
    write_deltalake,
)
from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError

from risk_runtime.contract import BRONZE_LAYER, BRONZE_NAME, sql_identifier, sql_literal
from risk_runtime.events import BRONZE_PARTITION_COLUMNS, BRONZE_SCHEMA
from risk_runtime.storage import storage_options_from_env

log = logging.getLogger(__name__)

LAKE_ROOT_ENV: Final = "RISK_LAKE_ROOT"
DEFAULT_LAKE_ROOT: Final = "data/lake"


OBJECT_STORE_SCHEMES: Final = frozenset(
    {"s3", "s3a", "gs", "gcs", "az", "azure", "abfs", "abfss", "adl", "hdfs", "viewfs", "lakefs", "oss"}
)
"""URI schemes a lake root may use besides ``file://``: stores ``deltalake`` opens whose URI names a
bucket, container or cluster in its authority (``s3://bucket/lake``, ``abfss://container@account...``).

Anything else is refused when the root is resolved rather than by a shipper retrying in the background:
schemes ``deltalake`` does not know (``ftp``, ``http``), and ``memory://``, which it knows but which lives
inside one process -- the shipper that commits bronze is another process, so events would vanish.
"""


def resolve_lake_root(lake_root: str | os.PathLike[str] | None = None) -> str:
    """The lake root: the argument, else ``$RISK_LAKE_ROOT``, else ``data/lake`` -- validated.

    Local paths are made absolute (a process that changes directory keeps writing to the same
    lake), and so is a ``file://`` URI, which names the same local lake. Object-store URIs
    (:data:`OBJECT_STORE_SCHEMES`) are returned unchanged but for a trailing ``/``. An empty
    ``$RISK_LAKE_ROOT`` counts as unset.

    Every entry point (the logger, :class:`RiskEventsTable`, the shipper, the pipeline's lake)
    resolves its root here, so a bad one is refused at construction, with a ``ValueError`` that
    names where it came from and what is wrong: an empty root, a URI without a bucket or container,
    an unsupported scheme, or a local path that is (or lies under) a regular file.
    """
    if lake_root is not None:
        origin = "lake_root"
        if not isinstance(lake_root, str | os.PathLike):
            raise ValueError(f"{origin} must be a path or a URI string, got {type(lake_root).__name__} {lake_root!r}")
        root = os.fspath(lake_root)
        if not isinstance(root, str):
            raise ValueError(f"{origin} must be a text path, got {root!r}")
    elif os.environ.get(LAKE_ROOT_ENV):
        origin, root = f"lake_root from ${LAKE_ROOT_ENV}", os.environ[LAKE_ROOT_ENV]
    else:
        origin, root = "lake_root (default)", DEFAULT_LAKE_ROOT
    if not root.strip():
        raise ValueError(f"{origin} is empty; give a local path or an object-store URI such as s3://bucket/lake")
    if is_uri(root):
        scheme, _, rest = root.partition("://")
        scheme = scheme.lower()
        authority = rest.split("/", 1)[0]
        if scheme == "file":
            if authority not in ("", "localhost"):
                raise ValueError(f"{origin} {root!r} names host {authority!r}; a file:// lake must be on this machine")
            return _local_root(origin, rest[len(authority) :] or "/")
        if scheme not in OBJECT_STORE_SCHEMES:
            supported = ", ".join(sorted({"file", *OBJECT_STORE_SCHEMES}))
            why = " (it lives inside one process; the shipper is another)" if scheme == "memory" else ""
            raise ValueError(f"{origin} {root!r} has an unsupported scheme {scheme!r}{why}; use one of: {supported}")
        if not authority:
            raise ValueError(f"{origin} {root!r} has no bucket or container (expected {scheme}://<bucket>/<path>)")
        return f"{scheme}://{rest}".rstrip("/")
    return _local_root(origin, root)


def _local_root(origin: str, root: str) -> str:
    """An absolute local lake path, refused if it or a parent is something other than a directory."""
    path = Path(root).expanduser().resolve()
    for candidate in (path, *path.parents):
        if candidate.exists():
            if not candidate.is_dir():
                what = "is a regular file" if candidate.is_file() else "is not a directory"
                if candidate == path:
                    raise ValueError(f"{origin} {root!r} {what}; a local lake root must be a directory")
                raise ValueError(f"{origin} {root!r} lies under {str(candidate)!r}, which {what}")
            break
    return str(path)


def is_uri(location: str) -> bool:
    return "://" in location


def table_uri(lake_root: str, layer: str, name: str) -> str:
    """``<lake_root>/<layer>/<name>`` for a local root or an object-store URI alike."""
    return f"{lake_root.rstrip('/')}/{layer}/{name}"


_REPEATING: Final = (pa.types.is_string, pa.types.is_boolean, pa.types.is_date32)
_DISTINCT: Final = frozenset({"event_id"})
BRONZE_WRITER_PROPERTIES: Final = WriterProperties(
    compression="SNAPPY",  # delta-rs's default, which passing any WriterProperties would turn off
    default_column_properties=ColumnProperties(dictionary_enabled=False, statistics_enabled="CHUNK"),
    column_properties={
        f.name: ColumnProperties(dictionary_enabled=True, statistics_enabled="CHUNK")
        for f in BRONZE_SCHEMA
        if f.name not in _DISTINCT and any(is_type(f.type) for is_type in _REPEATING)
    },
)
"""Parquet settings for bronze appends: dictionary encoding only where values repeat.

The default dictionary-encodes every column; ids, timestamps, sequences and prices are nearly all
distinct, so their dictionaries were built and thrown away. Measured on 76k shipped events: 0.32-0.38 µs
of CPU per event to write against 0.47-0.58 µs with the defaults. Enum-like text, flags and the day keep it.
"""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Caller-side retries for Delta commits that lost a race (jittered exponential back-off)."""

    max_attempts: int = 12
    initial_backoff: float = 0.01
    max_backoff: float = 1.0

    def delays(self) -> Sequence[float]:
        return [
            random.uniform(0, min(self.max_backoff, self.initial_backoff * 2**attempt))
            for attempt in range(self.max_attempts - 1)
        ]


class RiskEventsTable:
    """The bronze ``risk_events`` Delta table, created on first use.

    >>> table = RiskEventsTable("/tmp/lake")          # doctest: +SKIP
    >>> table.append(batch, app_id=writer_id, version=7)  # doctest: +SKIP
    """

    LAYER: Final = BRONZE_LAYER
    NAME: Final = BRONZE_NAME

    def __init__(
        self,
        lake_root: str | os.PathLike[str] | None = None,
        *,
        storage_options: Mapping[str, str] | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.lake_root = resolve_lake_root(lake_root)
        self.uri = table_uri(self.lake_root, self.LAYER, self.NAME)
        # None: $RISK_STORAGE_OPTIONS, the one configuration path every part of the product reads.
        options = storage_options if storage_options is not None else storage_options_from_env()
        self.storage_options = dict(options) if options else None
        self.retry = retry or RetryPolicy()
        self._table: DeltaTable | None = None

    # ------------------------------------------------------------------ lifecycle
    def exists(self) -> bool:
        return DeltaTable.is_deltatable(self.uri, storage_options=self.storage_options)

    def ensure_exists(self) -> DeltaTable:
        """Open the table, creating it if needed; safe when several processes race to create it."""
        if self._table is not None:
            return self._table
        for delay in [*self.retry.delays(), None]:
            try:
                self._table = DeltaTable(self.uri, storage_options=self.storage_options)
                return self._table
            except TableNotFoundError:
                pass
            if not is_uri(self.uri):
                Path(self.uri).mkdir(parents=True, exist_ok=True)
            try:
                self._table = DeltaTable.create(
                    self.uri,
                    BRONZE_SCHEMA,
                    mode="ignore",
                    partition_by=list(BRONZE_PARTITION_COLUMNS),
                    name=BRONZE_NAME,
                    description="Bronze: raw risk events as trading processes emitted them.",
                    storage_options=self.storage_options,
                )
                return self._table
            except (CommitFailedError, DeltaError) as exc:  # lost the creation race
                if delay is None:
                    raise
                log.debug("bronze table creation raced (%s); retrying", exc)
                time.sleep(delay)
        raise AssertionError("unreachable")

    def open(self) -> DeltaTable:
        """The table, refreshed to its latest version."""
        table = self.ensure_exists()
        table.update_incremental()
        return table

    # ------------------------------------------------------------------ writes
    def append(
        self,
        data: pa.Table,
        *,
        app_id: str | None = None,
        version: int | None = None,
        transactions: Mapping[str, int] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> bool:
        """Append ``data`` once per writer batch; True if this call committed it.

        Name the batch either as ``app_id`` + ``version`` or as ``transactions`` (several
        writers' batches coalesced into one commit). Versions of one ``app_id`` must be committed
        in increasing order. A batch whose versions the table already records is skipped
        (False), which makes re-sending after a crash or an unknown commit outcome safe. Raises
        the last error once retries run out; the caller keeps the batch and tries again later.
        """
        txns = dict(transactions or {})
        if app_id is not None and version is not None:
            txns[app_id] = version
        if not txns:
            raise ValueError("append needs app_id and version, or transactions, to stay idempotent")
        delays = self.retry.delays()
        for attempt in range(len(delays) + 1):
            table = self.open()
            landed = {a: v for a, v in txns.items() if (table.transaction_version(a) or 0) >= v}
            if len(landed) == len(txns):
                return False
            if landed:  # one commit carries all of them: part of it cannot have landed alone
                raise RuntimeError(f"bronze already holds part of this commit ({sorted(landed)}); re-split it")
            try:
                write_deltalake(
                    table,
                    data,
                    mode="append",
                    partition_by=list(BRONZE_PARTITION_COLUMNS),
                    schema_mode="merge",
                    writer_properties=BRONZE_WRITER_PROPERTIES,
                    commit_properties=CommitProperties(
                        app_transactions=[Transaction(a, v) for a, v in txns.items()],
                        custom_metadata={k: str(v) for k, v in (metadata or {}).items()},
                    ),
                )
                return True
            except CommitFailedError as exc:
                if attempt == len(delays):
                    raise
                log.debug("bronze commit %s lost a race (%s); retrying", txns, exc)
                time.sleep(delays[attempt])
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ reads
    def read(
        self,
        *,
        filters: list[tuple[str, str, Any]] | None = None,
        columns: list[str] | None = None,
    ) -> pa.Table:
        """Rows of bronze as Arrow, typed as :data:`BRONZE_SCHEMA`.

        ``filters`` are ANDed ``(column, op, value)`` tuples such as ``("source", "=", "orders")``
        (ops ``= != < <= > >= in``). The read runs in Delta's own query engine: pyarrow's dataset
        layer, behind ``to_pyarrow_table``, can abort the interpreter at exit from its C++ threads
        after a Delta read (delta-rs #2184, apache/arrow #34314) -- not a risk for a trading process.
        """
        wanted = columns or BRONZE_SCHEMA.names
        schema = pa.schema([BRONZE_SCHEMA.field(c) for c in wanted])
        if not self.exists():
            return schema.empty_table()
        table = self.open()
        present = {f.name for f in table.schema().fields}
        selected = ", ".join(sql_identifier(c) for c in wanted if c in present)
        sql = f"SELECT {selected} FROM t"
        if filters:
            sql += " WHERE " + " AND ".join(_condition(*f) for f in filters)
        result = pa.table(QueryBuilder().register("t", table).execute(sql).read_all())
        return pa.Table.from_arrays(
            [
                result.column(f.name).cast(f.type) if f.name in result.column_names else pa.nulls(len(result), f.type)
                for f in schema
            ],
            schema=schema,
        )


_OPERATORS: Final = frozenset({"=", "!=", "<", "<=", ">", ">=", "in"})


def _condition(column: str, op: str, value: Any) -> str:
    if op not in _OPERATORS:
        raise ValueError(f"unsupported filter operator {op!r}; use one of {sorted(_OPERATORS)}")
    if op == "in":
        return f"{sql_identifier(column)} IN ({', '.join(sql_literal(v) for v in value)})"
    return f"{sql_identifier(column)} {op} {sql_literal(value)}"
