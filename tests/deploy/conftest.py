"""Fixtures for the deployment tests: an S3-compatible server for the whole module, a bucket per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import S3Server


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """``moto[server]`` on a free port of 127.0.0.1, stopped when the module's tests are done."""
    log: Path = tmp_path_factory.mktemp("moto") / "moto.log"
    with S3Server.running(log) as server:
        yield server


@pytest.fixture
def bucket(s3: S3Server) -> str:
    return s3.make_bucket(f"lake-{uuid.uuid4().hex[:12]}")
