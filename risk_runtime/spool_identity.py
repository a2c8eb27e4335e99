"""Which table a spool feeds: its manifest, and where a lake's spool lives by default.

A spool is a queue in front of exactly one table. Two lakes sharing one spool meant one shipper
committing every writer's events into whichever lake started it, so a spool records, when it is
created, the table it feeds and refuses any other:

    <spool>/spool.json   {"lake": <resolved lake URI>, "storage": {"keys": [...], "digest": ...},
                          "format": <segment format version>, "created_at": ...}

* ``lake`` is the resolved lake root (an absolute path or a URI), the same string
  :func:`risk_runtime.table.resolve_lake_root` gives the logger and the shipper.
* ``storage`` identifies the storage options without holding a secret: their sorted keys, and a
  SHA-256 digest over the keys and the values of the options that are not secrets (a key naming a
  key, secret, token, password, credential, signature or session is a secret: only its name counts).
  Two loggers of one bucket with different endpoints or regions therefore feed different tables.
* The manifest is created atomically (written aside, then hard-linked into place: exactly one
  creator wins, the others read and compare). A logger whose table differs refuses at
  ``start()``/``initialize()`` with :class:`SpoolMismatchError` naming both; the shipper refuses to
  commit anything from such a spool. A spool created before manifests existed is claimed by the
  first logger or shipper that opens it (logged).

Default location (:func:`default_spool_dir`): ``<base>/<lake name>-<digest of the lake URI>``, where
``<base>`` is ``$RISK_SPOOL_DIR`` if set, else ``<parent of the lake>/spool`` for a local lake, else
``$XDG_STATE_HOME/risk-event-lake/spool`` (``~/.local/state/...``) for an object-store lake. So two
lakes in one folder (``data/lake`` and ``data/lake-test``) get ``data/spool/lake-1a2b...`` and
``data/spool/lake-test-3c4d...``, and ``$RISK_SPOOL_DIR`` chooses *where* spools live, never which
lake an explicit ``lake_root`` writes to.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from risk_runtime.spool import FORMAT_VERSION, WRITERS
from risk_runtime.table import is_uri

log = logging.getLogger(__name__)

MANIFEST: Final = "spool.json"
SPOOL_DIR_ENV: Final = "RISK_SPOOL_DIR"
_SECRET_HINTS: Final = ("key", "secret", "token", "password", "credential", "signature", "session", "sas")


class SpoolMismatchError(ValueError):
    """The spool feeds another table than the one asked for."""


@dataclass(frozen=True)
class SpoolIdentity:
    """The table a spool feeds, without any secret."""

    lake: str
    storage_keys: tuple[str, ...] = ()
    storage_digest: str = ""

    def describe(self) -> str:
        if not self.storage_keys:
            return self.lake
        return f"{self.lake} (storage options {', '.join(self.storage_keys)}; digest {self.storage_digest[:12]})"

    def as_json(self) -> dict[str, Any]:
        return {"lake": self.lake, "storage": {"keys": list(self.storage_keys), "digest": self.storage_digest}}


def _is_secret(key: str) -> bool:
    lowered = key.lower()
    return any(hint in lowered for hint in _SECRET_HINTS)


def spool_identity(lake_root: str, storage_options: Mapping[str, str] | None = None) -> SpoolIdentity:
    """The identity of the table at the resolved ``lake_root`` with ``storage_options``."""
    options = dict(storage_options or {})
    if not options:
        return SpoolIdentity(lake_root)
    keys = tuple(sorted(options))
    public = {k: ("<secret>" if _is_secret(k) else str(options[k])) for k in keys}
    digest = hashlib.sha256(json.dumps(public, sort_keys=True).encode()).hexdigest()
    return SpoolIdentity(lake_root, keys, digest)


def default_spool_dir(lake_root: str) -> Path:
    """This lake's own spool (see the module docs): unique per resolved lake URI."""
    digest = hashlib.sha256(lake_root.encode()).hexdigest()[:12]
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", lake_root.rstrip("/").rsplit("/", 1)[-1]) or "lake"
    configured = os.environ.get(SPOOL_DIR_ENV)
    if configured:
        base = Path(configured).expanduser().resolve()
    elif not is_uri(lake_root):
        base = Path(lake_root).parent / "spool"
    else:
        base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "risk-event-lake" / "spool"
    return base / f"{name}-{digest}"


def read_manifest(spool_dir: Path) -> SpoolIdentity | None:
    try:
        raw = json.loads((spool_dir / MANIFEST).read_text())
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise SpoolMismatchError(f"spool {spool_dir} has an unreadable {MANIFEST}: {exc}") from None
    storage = raw.get("storage") or {}
    return SpoolIdentity(str(raw["lake"]), tuple(storage.get("keys") or ()), str(storage.get("digest") or ""))


def check_spool(spool_dir: Path, identity: SpoolIdentity) -> None:
    """Raise if ``spool_dir`` already feeds another table; read-only (a missing spool is fine)."""
    existing = read_manifest(spool_dir)
    if existing is not None and existing != identity:
        raise _mismatch(spool_dir, existing, identity)


def _mismatch(spool_dir: Path, existing: SpoolIdentity | None, identity: SpoolIdentity) -> SpoolMismatchError:
    return SpoolMismatchError(
        f"spool {spool_dir} feeds {existing.describe() if existing else '?'}, not {identity.describe()}; "
        "give this lake its own spool (the default spool_dir is one per lake)"
    )


def claim_spool(spool_dir: Path, identity: SpoolIdentity) -> None:
    """Make ``spool_dir`` feed ``identity``'s table, or raise if it already feeds another one."""
    spool_dir.mkdir(parents=True, exist_ok=True)
    existing = read_manifest(spool_dir)
    if existing is None:
        if (spool_dir / WRITERS).exists():
            log.warning("spool %s predates spool manifests; claiming it for %s", spool_dir, identity.lake)
        body = {**identity.as_json(), "format": FORMAT_VERSION, "created_at": time.time()}
        staging = spool_dir / f".{MANIFEST}.{os.getpid()}.{time.monotonic_ns()}"
        with open(staging, "w") as handle:
            json.dump(body, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(staging, spool_dir / MANIFEST)  # atomic create-if-absent: one creator wins
        except FileExistsError:
            pass
        finally:
            with contextlib.suppress(FileNotFoundError):
                staging.unlink()
        existing = read_manifest(spool_dir)
    if existing != identity:
        raise _mismatch(spool_dir, existing, identity)
