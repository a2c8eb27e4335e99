"""What a ``RiskEventLogger`` tells its caller: the accounting snapshot, the fault tally, a blocking result.

:class:`LoggerStats` is the immutable snapshot ``stats()`` returns. :class:`Faults` is the mutable
tally it is built from: the hot path and the flusher thread both count into it, so it lives with
neither. :class:`_Done` is what ``flush()`` returns outside an event loop (awaitable too).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

__all__ = ["Faults", "LoggerStats"]


@dataclass(frozen=True)
class LoggerStats:
    """A snapshot of the logger's accounting.

    Every accepted event is in exactly one of: ``buffered``, spooled but not yet committed,
    ``committed``, ``dropped`` (``drop_oldest`` only) or ``damaged`` (set aside by the shipper).
    """

    writer_id: str
    accepted: int
    """Events ``log()`` took (each has a sequence number)."""
    dropped: int
    """Events refused (``drop_newest``) or discarded (``drop_oldest``) because the backlog was full."""
    buffered: int
    """Accepted, still in memory."""
    spooled: int
    """Accepted and written to the local spool (committed or not)."""
    committed: int
    """Written to the spool and since committed to bronze."""
    spool_bytes: int
    spool_errors: int
    last_error: str | None
    """The latest problem, this process's or the shipper's (unreachable lake, held-back or damaged segments)."""
    shipper_running: bool
    internal_errors: int
    refused_after_close: int = 0
    """``log()`` calls after ``close()``: refused (False), never written."""
    damaged: int = 0
    """Spooled events the shipper could not read back (damaged on disk) and set aside."""
    held_back_segments: int = 0
    """Segments in this spool the shipper leaves alone because it does not know their schema version."""
    flusher_running: bool = False
    oldest_unshipped_age: float | None = None
    """Seconds since the oldest accepted event not yet in bronze was written or logged (None: none)."""


class Faults:
    """One writer's problems, counted where they happen: nothing fails silently, ``stats()`` shows it.

    ``log()`` counts its internal errors here and the flusher its encoding, spool and cycle
    errors; ``last_error`` is whichever problem came last. A forked child starts a fresh tally.
    """

    __slots__ = ("internal_errors", "last_error", "spool_errors")

    def __init__(self) -> None:
        self.internal_errors = 0
        self.spool_errors = 0
        self.last_error: str | None = None


class _Done:
    """The result of a blocking ``flush()``/``initialize()`` outside an event loop; awaitable too."""

    __slots__ = ("value",)

    def __init__(self, value: bool) -> None:
        self.value = value

    def __bool__(self) -> bool:
        return self.value

    def __await__(self) -> Generator[Any, None, bool]:
        return self.value
        yield  # pragma: no cover  (makes this a generator)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.value})"
