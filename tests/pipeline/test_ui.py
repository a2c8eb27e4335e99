"""``dg dev`` serves the code location on loopback with the whole lineage (a real webserver process)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LINEAGE_QUERY = "{ assetNodes { assetKey { path } dependencyKeys { path } } }"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _graphql(port: int, query: str) -> dict[str, object]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_dg_dev_serves_the_lineage(tmp_path: Path) -> None:
    port = _free_port()
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO / "dagster_home" / "dagster.yaml").read_text())
    env = {**os.environ, "DAGSTER_HOME": str(home), "RISK_LAKE_ROOT": str(tmp_path / "lake")}
    env["VIRTUAL_ENV"] = str(Path(sys.executable).parent.parent)
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("dg")), "dev", "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        nodes = None
        while nodes is None:
            if server.poll() is not None:
                pytest.fail(f"dg dev exited with {server.returncode}")
            if time.monotonic() > deadline:
                pytest.fail("dg dev did not serve the code location within 120 s")
            try:
                nodes = _graphql(port, LINEAGE_QUERY)["data"]["assetNodes"]  # type: ignore[index]
            except (OSError, KeyError, TypeError, ValueError):
                time.sleep(1)
        lineage = {
            "/".join(n["assetKey"]["path"]): sorted("/".join(d["path"]) for d in n["dependencyKeys"]) for n in nodes
        }
        assert lineage == {  # each gold table also depends on itself: its previous day
            "bronze/risk_events": [],
            "silver/risk_events": ["bronze/risk_events"],
            "silver/risk_events_quarantine": ["bronze/risk_events"],
            "gold/circuit_breaker_transitions": ["gold/circuit_breaker_transitions", "silver/risk_events"],
            "gold/trailing_stop_outcomes": ["gold/trailing_stop_outcomes", "silver/risk_events"],
            "gold/limit_rejection_stats": ["gold/limit_rejection_stats", "silver/risk_events"],
            "reports/risk_history": [
                "gold/circuit_breaker_transitions",
                "gold/limit_rejection_stats",
                "gold/trailing_stop_outcomes",
            ],
        }
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
