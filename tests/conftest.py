"""Suite-wide hooks.

The session ends with its own exit status instead of running interpreter teardown. After a Delta
read through pyarrow's dataset layer (``DeltaTable.to_pyarrow_table``: the design guide's own
examples use it, and tests read tables that way too), Arrow's C++ thread pool can abort the
interpreter at exit -- "terminate called without an active exception", exit 134 -- after every
result is final (delta-rs #2184, apache/arrow #34314). The product reads through Delta's query
engine and does not meet this; the suite cannot avoid it without rewriting the guide's examples.
Only teardown is skipped: results, the summary and the exit status are pytest's own.
"""

from __future__ import annotations

import os
import sys

import pytest

_EXIT_STATUS = pytest.StashKey[int]()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config.stash[_EXIT_STATUS] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    status = config.stash.get(_EXIT_STATUS, None)
    if status is None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
