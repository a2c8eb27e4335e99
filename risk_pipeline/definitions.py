"""The code location: everything under ``risk_pipeline/defs``, found by where it lives."""

from pathlib import Path

import dagster as dg

defs = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
