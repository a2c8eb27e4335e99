"""Starting the shipper, and hearing from it: the logger's side of the shipper process.

The shipper is a separate process (see :mod:`risk_runtime.shipper` for why); one runs per spool,
guarded by ``shipper.lock``. :class:`ShipperSupervisor` starts one when none holds the lock
(``fork+exec`` through ``subprocess``, in a new session so a Ctrl-C or SIGTERM to the trading
process group spares it, with the storage options in its environment, never in argv).

It runs at a lower CPU priority than the trading process (``shipper_nice``, default 10; see
:func:`risk_runtime.shipper.lower_priority`): decoding, converting and committing a batch takes a
core for tens of milliseconds, and on a host whose cores are all busy that must not delay a trading
thread that wakes up meanwhile. An idle core is still the shipper's, so throughput is unchanged
wherever there is a core to spare.

The shipper reports through ``<spool>/shipper.status.json`` (:class:`ShipperStatus`, replaced
atomically by the shipper after every cycle that changed it, and at least every few seconds while
it runs): its last error (the lake is unreachable, the spool belongs to another table), the
segments it holds back because it does not know their schema version, and the damaged bytes it
set aside. The logger's ``stats()`` reads it, so a shipper that cannot reach its table, or that
stopped, is visible in the trading process.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

from risk_runtime.spool import SHIPPER_LOCK, SHIPPER_LOG, is_locked
from risk_runtime.storage import STORAGE_OPTIONS_ENV

SHIPPER_STATUS: Final = "shipper.status.json"


@dataclass
class ShipperStatus:
    """What the shipper last said about its spool."""

    pid: int = 0
    lake: str = ""
    updated_at: float = 0.0
    last_error: str | None = None
    error_since: float | None = None
    held_back: list[str] = field(default_factory=list)
    """``"<writer>/<segment>: <why>"`` for each segment left in the spool because it cannot be read whole."""
    set_aside: list[str] = field(default_factory=list)
    """Paths under ``corrupt/`` this shipper wrote (most recent last, at most 100)."""

    def write(self, spool_dir: Path) -> None:
        self.updated_at = time.time()
        staging = spool_dir / f".{SHIPPER_STATUS}.{os.getpid()}"
        staging.write_text(json.dumps(asdict(self)))
        os.replace(staging, spool_dir / SHIPPER_STATUS)

    @classmethod
    def read(cls, spool_dir: Path) -> ShipperStatus | None:
        try:
            raw: dict[str, Any] = json.loads((spool_dir / SHIPPER_STATUS).read_text())
        except (OSError, ValueError):
            return None
        known = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
        return cls(**known)


class ShipperSupervisor:
    """Keeps a shipper running for one spool while a logger needs it."""

    def __init__(
        self,
        spool_dir: Path,
        lake_root: str,
        storage_options: Mapping[str, str] | None,
        *,
        enabled: bool,
        nice: int = 0,
        cpus: frozenset[int] | None = None,
    ) -> None:
        self.spool_dir = spool_dir
        self.lake_root = lake_root
        self.storage_options = dict(storage_options) if storage_options else None
        self.enabled = enabled
        self.nice = nice
        self.cpus = cpus
        self._process: subprocess.Popen[bytes] | None = None
        self.last_check = 0.0

    def running(self) -> bool:
        return is_locked(self.spool_dir / SHIPPER_LOCK)

    def ensure_running(self) -> None:
        """Start a shipper unless one serves the spool (ours or another logger's)."""
        self.last_check = time.monotonic()
        if not self.enabled:
            return
        if self._process is not None and self._process.poll() is None:
            return
        if self.running():
            return
        env = dict(os.environ)
        package_root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        if self.storage_options:
            env[STORAGE_OPTIONS_ENV] = json.dumps(self.storage_options)
        command = [sys.executable, "-m", "risk_runtime.shipper", "--spool", str(self.spool_dir)]
        command += ["--lake", self.lake_root, "--nice", str(self.nice)]
        if self.cpus is not None:
            command += ["--cpus", ",".join(map(str, sorted(self.cpus)))]
        with open(self.spool_dir / SHIPPER_LOG, "ab") as shipper_log:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=shipper_log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                close_fds=True,
            )

    def forget(self) -> None:
        """A forked child does not own the parent's shipper process handle."""
        self._process = None

    def exited_with(self) -> int | None:
        """The exit code of the shipper this supervisor started, if it has exited with an error."""
        if self._process is None:
            return None
        code = self._process.poll()
        return code if code not in (None, 0) else None

    def status(self) -> ShipperStatus | None:
        with contextlib.suppress(OSError):
            return ShipperStatus.read(self.spool_dir)
        return None
