"""The lake as a Dagster resource, bound once under the key ``lake``.

Assets ask for ``lake: LakeResource`` instead of reading the environment themselves, so a test or
a deployment points the whole pipeline at another root (or an object store with its credentials)
in one place.
"""

from __future__ import annotations

import os

import dagster as dg
from pydantic import Field

from risk_pipeline.defs.constants import LAKE_RESOURCE_KEY
from risk_pipeline.lake import Lake
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
    storage_options: dict[str, str] | None = Field(
        default=None,
        description="deltalake storage options, e.g. credentials and endpoint of an object store.",
    )

    def lake(self) -> Lake:
        return Lake(root=self.root, storage_options=self.storage_options)


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(resources={LAKE_RESOURCE_KEY: LakeResource()})
