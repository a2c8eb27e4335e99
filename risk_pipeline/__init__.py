"""The risk-event lake's Dagster code location: bronze to validated silver to gold.

Importing the package configures polars' allocator for this process, before polars is loaded.
Polars allocates with jemalloc, which by default hands freed pages back to the kernel almost at
once. Building silver allocates and frees a day's worth of Arrow buffers (~100 MB) several times per
day, so every day paid for page faults on fresh memory again: 10 of the 40 CPU-seconds of a 60-day,
10M-event silver build were spent in the kernel. Keeping freed pages for a few seconds halved that
and cost ~100 MB of peak memory. ``setdefault``: an operator's own ``_RJEM_MALLOC_CONF`` wins, and a
process that loaded polars before this package keeps polars' defaults.
"""

import os

os.environ.setdefault("_RJEM_MALLOC_CONF", "background_thread:true,dirty_decay_ms:5000,muzzy_decay_ms:5000")
