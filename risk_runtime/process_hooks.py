"""Process-wide hooks for every live ``RiskEventLogger``, installed here and nowhere else.

Three process events must not cost accepted events:

* **Interpreter exit** (``atexit``): every live logger is closed, waiting at most its
  ``exit_timeout`` for bronze; what is not committed by then is on local disk, where the shipper
  (which outlives the process) commits it.
* **fork** (``os.register_at_fork``): in the child every logger becomes a new writer (new id, new
  sequence, none of the parent's backlog or files) and restarts its flusher if it was running.
* **SIGTERM**: the handler writes every logger's backlog to the spool and seals it, then lets the
  signal do what it did before: it calls the handler that was installed before ours (an
  application's, or asyncio's ``loop.add_signal_handler``), or, if there was none, restores the
  default and re-raises SIGTERM so the process still terminates with it. Python only lets the main
  thread install signal handlers, so :func:`install_sigterm_handler` is called, on the main
  thread, when a logger is constructed, and again by ``start()``, ``initialize()`` (on the event
  loop's thread, before it hands ``start()`` to a worker thread) and ``flush()``. A handler the
  application installs *after* ours replaces it; the next of those calls wraps the application's
  handler in ours (ours flushes, then calls it). Until then, an application handler that ends the
  process by returning from ``main`` or ``sys.exit()`` still lands everything through the exit hook.
  ``SIG_IGN`` is respected: a process that ignores SIGTERM keeps ignoring it.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import threading
import weakref
from types import FrameType
from typing import Any, Protocol

log = logging.getLogger(__name__)


class ProcessAware(Protocol):
    def _after_fork_in_child(self) -> None: ...
    def _on_sigterm(self) -> None: ...
    def _at_exit(self) -> None: ...


_live: weakref.WeakSet[Any] = weakref.WeakSet()
_previous_sigterm: Any = None


def register(logger: ProcessAware) -> None:
    _live.add(logger)


def unregister(logger: ProcessAware) -> None:
    _live.discard(logger)


def _after_fork_in_child() -> None:
    for logger in list(_live):
        try:
            logger._after_fork_in_child()
        except Exception:
            log.exception("risk event logger could not restart in a forked child")


def _at_exit() -> None:
    for logger in list(_live):
        try:
            logger._at_exit()
        except Exception:
            log.exception("risk event logger could not flush at exit")


def install_sigterm_handler() -> bool:
    """Make sure our SIGTERM handler is installed, chaining whatever is there; False off the main thread."""
    global _previous_sigterm
    if threading.current_thread() is not threading.main_thread():
        return False
    current = signal.getsignal(signal.SIGTERM)
    if current is _handle_sigterm:
        return True
    if current is signal.SIG_IGN:
        return False  # the process chose to ignore SIGTERM; respect that
    _previous_sigterm = current if callable(current) else None
    signal.signal(signal.SIGTERM, _handle_sigterm)
    return True


_handling = False


def _handle_sigterm(signum: int, frame: FrameType | None) -> None:
    global _handling
    if _handling:  # an application handler that chains back to ours: flush once, don't loop
        return
    _handling = True
    try:
        _flush_and_chain(signum, frame)
    finally:
        _handling = False


def _flush_and_chain(signum: int, frame: FrameType | None) -> None:
    for logger in list(_live):
        with contextlib.suppress(Exception):
            logger._on_sigterm()
    previous = _previous_sigterm
    if callable(previous):
        previous(signum, frame)
        return
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_at_exit)
