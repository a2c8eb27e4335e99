"""The shipper's bell: a writer that sealed a segment wakes its shipper, which otherwise polls slowly.

Why: a shipper that looks at its spool every 50 ms wakes twenty times a second on a trading host, to
find nothing most of the time, and each wake takes a core for a moment beside the trading threads (a
1 ms asyncio loop's p99 lateness at 10,000 events/s went from 0.20 to 0.25-0.32 ms with the shipper
polling at 50 ms rather than 250 ms). A segment is sealed at most about once a second per writer,
so the shipper can wait long between looks, provided the writer tells it when there is something
to ship.

How: a named pipe, ``<spool>/shipper.bell``. The shipper makes it and holds it open for reading (and
for writing, so the pipe never reports end-of-file when the last writer closes it); it waits on it
with ``select`` instead of sleeping, backing off while idle. A writer that sealed a segment writes
one byte without blocking (:func:`ring`). Nothing depends on the bell for correctness: a ring that
finds no shipper, a full pipe or a platform without named pipes (``os.mkfifo``) leaves the shipper
to find the segment on its next look, at most :data:`IDLE_POLL` later.
"""

from __future__ import annotations

import contextlib
import os
import select
import stat
from pathlib import Path
from typing import Final

BELL: Final = "shipper.bell"
IDLE_POLL: Final = 1.0
"""Longest wait between two looks at the spool while nothing rings and nothing was shipped."""


def ring(spool_dir: Path) -> bool:
    """Wake the shipper of ``spool_dir`` if one listens; True if the byte went into its bell.

    Never blocks and never raises: no bell, no listener or a full pipe all mean the shipper finds
    the work on its next look anyway.
    """
    try:
        fd = os.open(spool_dir / BELL, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:  # ENOENT: no shipper made it yet; ENXIO: nobody listens
        return False
    try:
        os.write(fd, b"\0")
        return True
    except OSError:  # EAGAIN: the pipe is full of rings the shipper has not read yet
        return False
    finally:
        os.close(fd)


class Bell:
    """The shipper's end of the bell: wait for a ring or a timeout, whichever comes first."""

    def __init__(self, spool_dir: Path) -> None:
        self.path = spool_dir / BELL
        self._read_fd: int | None = None
        self._write_fd: int | None = None
        if not hasattr(os, "mkfifo"):
            return
        try:
            self._make()
            self._read_fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            self._write_fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:  # no bell: the shipper polls, as it would without one
            self.close()

    def _make(self) -> None:
        try:
            os.mkfifo(self.path, 0o600)
        except FileExistsError:
            if not stat.S_ISFIFO(os.stat(self.path).st_mode):  # something else took the name: replace it
                os.unlink(self.path)
                os.mkfifo(self.path, 0o600)

    @property
    def listening(self) -> bool:
        return self._read_fd is not None

    def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds; True if the bell rang (the rings so far are consumed)."""
        fd = self._read_fd
        if fd is None:
            select.select([], [], [], timeout)
            return False
        ready, _, _ = select.select([fd], [], [], timeout)  # a signal does not cut it short (PEP 475)
        if not ready:
            return False
        with contextlib.suppress(BlockingIOError):
            while os.read(fd, 4096):
                pass
        return True

    def close(self) -> None:
        for fd in (self._read_fd, self._write_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._read_fd = self._write_fd = None


def next_poll(current: float, *, rang: bool, fastest: float, slowest: float = IDLE_POLL) -> float:
    """How long the shipper waits before its next look: ``fastest`` after a ring, doubling while idle."""
    if rang:
        return fastest
    return max(fastest, min(slowest, current * 2))


__all__ = ["BELL", "IDLE_POLL", "Bell", "next_poll", "ring"]
