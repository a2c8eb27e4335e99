"""The design guide's examples, run as written (``risk_runtime`` for ``v6.risk``, paths aside)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from deltalake import DeltaTable

from risk_runtime import (
    CircuitBreakerConfig,
    InMemoryRiskCalculator,
    PortfolioLimitsChecker,
    RiskEventLogger,
    TradingCircuitBreaker,
    TrailingStopManager,
)


@pytest.fixture(autouse=True)
def lake_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("RISK_LAKE_ROOT", str(tmp_path / "lake"))
    monkeypatch.setenv("RISK_SPOOL_DIR", str(tmp_path / "spool"))
    return tmp_path / "lake"


def test_manual_test_block(lake_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async def test() -> None:
        # Initialize logger
        logger = RiskEventLogger()
        await logger.initialize()

        # Create circuit breaker with logging
        config = CircuitBreakerConfig(failure_threshold=3)
        cb = TradingCircuitBreaker(config, event_logger=logger)

        # Trigger some failures
        for i in range(3):
            cb.record_failure()
            print(f"Failure {i + 1}, state: {cb.state.name}")

        # Flush events
        await logger.flush()

        # Query Delta Lake
        dt = DeltaTable(str(lake_env / "bronze" / "risk_events"))
        print(f"Total events: {dt.to_pyarrow_table().num_rows}")
        await logger.aclose()

    asyncio.run(test())
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "Failure 1, state: CLOSED",
        "Failure 2, state: CLOSED",
        "Failure 3, state: OPEN",
        "Total events: 4",  # three failures and the CLOSED -> OPEN state change
    ]


def test_component_examples(lake_env: Path) -> None:
    async def session() -> tuple[list[object], tuple[bool, str | None]]:
        event_logger = RiskEventLogger()
        await event_logger.initialize()

        manager = TrailingStopManager(event_logger=event_logger)
        manager.add_trailing_stop("abc123", entry_premium=100.0)
        triggered = await manager.update_stops({"abc123": 103.0})  # Logs ACTIVATE

        checker = PortfolioLimitsChecker(InMemoryRiskCalculator(), event_logger=event_logger)
        allowed = await checker.check_entry_allowed("SPY", 5.0)

        await event_logger.flush()
        await event_logger.aclose()
        return triggered, allowed

    triggered, (allowed, reason) = asyncio.run(session())
    assert triggered == [] and allowed and reason is None
    rows = DeltaTable(str(lake_env / "bronze" / "risk_events")).to_pyarrow_table().to_pylist()
    kinds = sorted(r["event_type"] for r in rows)
    assert kinds == ["portfolio_limit_check", "trailing_stop_activate", "trailing_stop_add"]
    activate = next(r for r in rows if r["event_type"] == "trailing_stop_activate")
    assert (activate["execution_id"], activate["current_premium"], activate["action"]) == ("abc123", 103.0, "ACTIVATE")
