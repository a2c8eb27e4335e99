"""The lake as a Dagster resource, bound once under the key ``lake``.

Assets ask for ``lake: LakeResource`` instead of reading the environment themselves, so a test or
a deployment points the whole pipeline at another root (or an object store with its credentials)
in one place.

Storage options (credentials included) reach the resource through ``dg.EnvVar("RISK_STORAGE_OPTIONS")``
when the code location starts with that variable set: Dagster resolves it in every process that builds
the resource -- the code server evaluating sensors and schedules, each run worker -- and records only the
variable's *name* in the job snapshot, never its value. A value given as plain config (the
``storage_options`` field, e.g. in a run's launchpad config) would be stored with the run, so it is for
non-secret settings only.
"""

from __future__ import annotations

import os

import dagster as dg
from pydantic import Field

from risk_pipeline.defs.constants import LAKE_RESOURCE_KEY
from risk_pipeline.lake import Lake
from risk_runtime.storage import STORAGE_OPTIONS_ENV, parse_storage_options
from risk_runtime.table import DEFAULT_LAKE_ROOT, LAKE_ROOT_ENV


def _root_from_env() -> str:
    # Read when the resource is built, not at import: the same code location serves any lake.
    return os.environ.get(LAKE_ROOT_ENV) or DEFAULT_LAKE_ROOT


class LakeResource(dg.ConfigurableResource):
    """Where the lake lives: a local path or an object-store URI, and its storage options."""

    root: str = Field(
        default_factory=_root_from_env,
        description=f"Lake root (local path or URI); defaults to ${LAKE_ROOT_ENV}, else {DEFAULT_LAKE_ROOT}.",
    )
    storage_options_json: str | None = Field(
        default=None,
        description=f"deltalake storage options as a JSON object; bound to ${STORAGE_OPTIONS_ENV} when it is set.",
    )
    storage_options: dict[str, str] | None = Field(
        default=None,
        description="More deltalake storage options (non-secret: config is stored with each run); override the JSON.",
    )

    def resolved_storage_options(self) -> dict[str, str] | None:
        """The JSON options overlaid with the plain ones; ``None`` when neither is given."""
        options = parse_storage_options(self.storage_options_json) if self.storage_options_json else {}
        options.update(self.storage_options or {})
        return options or None

    def lake(self) -> Lake:
        return Lake(root=self.root, storage_options=self.resolved_storage_options())


def lake_resource_from_env(root: str | None = None) -> LakeResource:
    """The resource the code location binds (and the CLI's runs use): options through ``EnvVar`` when set.

    Only when set: an ``EnvVar`` whose variable is missing fails every run and sensor tick, while a lake
    on local disk needs no options at all. ``root`` overrides ``$RISK_LAKE_ROOT``; it is no secret.
    """
    where = {"root": root} if root is not None else {}
    if os.environ.get(STORAGE_OPTIONS_ENV, "").strip():
        return LakeResource(storage_options_json=dg.EnvVar(STORAGE_OPTIONS_ENV), **where)
    return LakeResource(**where)


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(resources={LAKE_RESOURCE_KEY: lake_resource_from_env()})
