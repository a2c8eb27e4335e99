"""Event schema version 2: the option contract on trailing-stop and limit events, and how it is encoded."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pyarrow as pa
import pytest

from risk_runtime.clock import ManualClock
from risk_runtime.encoding import encode_batch, events_to_bronze, finish_bronze
from risk_runtime.events import BRONZE_SCHEMA, SCHEMA_VERSION, OptionRight, RiskEvent, RiskEventType
from risk_runtime.instruments import MarketSnapshot, OptionContract
from risk_runtime.portfolio_limits import InMemoryRiskCalculator, PortfolioLimits, PortfolioLimitsChecker
from risk_runtime.simulation import simulate_session
from risk_runtime.sink import MemorySink
from risk_runtime.trailing_stop import TrailingStopManager

T = RiskEventType
T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
EXPIRY = date(2026, 3, 20)
CONTRACT = {"underlying": "SPY", "option_right": "C", "strike": 520.0, "expiry": EXPIRY}
SPY_CALL = OptionContract("SPY", "C", 520.0, EXPIRY)


def contract_of(event: RiskEvent) -> dict[str, object]:
    return {name: getattr(event, name) for name in CONTRACT}


def test_schema_version_two_adds_nullable_option_columns() -> None:
    assert SCHEMA_VERSION == 2 and RiskEvent(T.CB_SUCCESS).schema_version == 2
    added = ["underlying", "option_right", "strike", "expiry", "option_delta", "underlying_price"]
    for name in added:
        assert BRONZE_SCHEMA.field(name).nullable, name
        assert getattr(RiskEvent(T.CB_SUCCESS), name) is None
    assert str(BRONZE_SCHEMA.field("expiry").type) == "date32[day]"


def test_a_stop_puts_its_contract_on_every_event_and_the_market_where_known() -> None:
    sink = MemorySink()
    manager = TrailingStopManager(event_logger=sink, clock=ManualClock(T0))
    manager.add_trailing_stop("e1", 5.0, symbol="SPY", contract=SPY_CALL, market=MarketSnapshot(0.52, 519.8))  # ADD
    manager.update("e1", 5.2, market=MarketSnapshot(underlying_price=521.0, option_delta=0.55))  # ACTIVATE
    manager.update("e1", 5.4)  # UPDATE, market not given
    manager.update("e1", 5.0, market=MarketSnapshot(underlying_price=518.0))  # TRIGGER
    manager.add_trailing_stop("e2", 3.0, contract=OptionContract(right=OptionRight.PUT))  # no contract but the right
    manager.remove_stop("e2")
    e1 = [e for e in sink.events if e.execution_id == "e1"]
    assert [e.action for e in e1] == ["ADD", "ACTIVATE", "UPDATE", "TRIGGER"]
    assert all(contract_of(e) == CONTRACT for e in e1)
    assert [(e.option_delta, e.underlying_price) for e in e1] == [
        (0.52, 519.8), (0.55, 521.0), (None, None), (None, 518.0)
    ]  # fmt: skip
    e2 = [e for e in sink.events if e.execution_id == "e2"]
    assert [(e.option_right, type(e.option_right), e.underlying, e.strike) for e in e2] == [("P", str, None, None)] * 2


def test_limit_events_carry_the_entry_contract() -> None:
    sink = MemorySink()
    limits = PortfolioLimits(max_portfolio_delta=10.0, max_symbol_delta=1.0, max_open_positions=3)
    checker = PortfolioLimitsChecker(InMemoryRiskCalculator(), limits, sink, clock=ManualClock(T0))
    market = MarketSnapshot(option_delta=0.52, underlying_price=519.8)
    assert checker.check_entry("SPY", 0.52, execution_id="e1", contract=SPY_CALL, market=market) == (True, None)
    allowed, _ = checker.check_entry("SPY", 0.52, quantity=3, execution_id="e2", contract=SPY_CALL, market=market)
    assert not allowed
    checker.check_entry("QQQ", 0.3)  # a version-1 style call: no contract
    check, rejection, bare = sink.events
    assert (check.event_type, rejection.event_type) == (T.PL_CHECK, T.PL_REJECTION)
    for event in (check, rejection):
        assert contract_of(event) == CONTRACT
        assert (event.option_delta, event.underlying_price) == (0.52, 519.8)
    assert json.loads(rejection.metadata or "")["delta"] == 0.52
    assert contract_of(bare) == dict.fromkeys(CONTRACT) and bare.option_delta is None


@pytest.mark.parametrize(
    ("expiry", "kind"),
    [(datetime(2026, 3, 20, 20, 0, tzinfo=UTC), "datetime"), ("2026-03-20", "str"), (20260320, "int")],
)
def test_expiry_must_be_a_date_not_coerced(expiry: object, kind: str) -> None:
    good = RiskEvent(T.TS_ADD, timestamp=T0, execution_id="ok", entry_premium=1.0, expiry=EXPIRY)
    bad = RiskEvent(T.TS_ADD, timestamp=T0, execution_id="bad", entry_premium=1.0, expiry=expiry)  # type: ignore[arg-type]
    rows = events_to_bronze([good, bad], writer_id="w").to_pylist()
    assert rows[0]["expiry"] == EXPIRY and rows[0]["ingest_errors"] is None
    assert rows[1]["expiry"] is None  # nulled, never truncated or parsed
    (error,) = json.loads(rows[1]["ingest_errors"])
    assert error.startswith(f"expiry: expected a date, got {kind} ")


def test_the_simulator_logs_the_contracts_it_prices() -> None:
    sink = MemorySink()
    simulate_session(sink, days=1, target_events=1_500)
    adds = [e for e in sink.events if e.event_type == T.TS_ADD]
    entries = [e for e in sink.events if e.event_type in (T.PL_CHECK, T.PL_REJECTION) and e.execution_id]
    assert adds and entries
    for event in adds + entries:
        assert event.underlying == event.symbol and event.option_right in ("C", "P")
        assert event.strike is not None and event.strike > 0
        assert event.expiry is not None and event.expiry > event.timestamp.date()
        assert event.option_delta is not None and -1 <= event.option_delta <= 1
        assert (event.option_delta > 0) == (event.option_right == "C")
        assert event.underlying_price is not None and event.underlying_price > 0
    stops = [e for e in sink.events if e.component == "trailing_stop"]
    first_of = {e.execution_id: e for e in reversed(stops)}
    assert all(contract_of(e) == contract_of(first_of[e.execution_id]) for e in stops)


def test_a_segment_spooled_before_version_two_ships_with_null_option_columns() -> None:
    frame = encode_batch([RiskEvent(T.TS_ADD, timestamp=T0, execution_id="e1", entry_premium=1.0)], [1])
    v1_frame = pa.Table.from_batches([frame]).drop_columns(
        ["underlying", "option_right", "strike", "expiry", "option_delta", "underlying_price"]
    )
    bronze = finish_bronze(v1_frame, writer_id="w", ingested_at=T0)
    assert bronze.schema == BRONZE_SCHEMA
    (row,) = bronze.to_pylist()
    assert row["execution_id"] == "e1" and row["strike"] is None and row["expiry"] is None
