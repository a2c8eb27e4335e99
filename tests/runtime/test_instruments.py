"""The option contract and the market at an event: value objects declared once, validated at construction."""

from __future__ import annotations

import ast
import dataclasses
import math
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pytest

import risk_runtime
from risk_runtime.events import BRONZE_SCHEMA, EVENT_FIELDS, OptionRight
from risk_runtime.instruments import NO_CONTRACT, NO_MARKET, MarketSnapshot, OptionContract

REPO = Path(__file__).resolve().parents[2]
EXPIRY = date(2026, 3, 20)


def test_a_contract_keeps_what_it_was_given_with_the_right_as_a_plain_string() -> None:
    contract = OptionContract("SPY", OptionRight.PUT, 520, EXPIRY)
    assert (contract.underlying, contract.right, contract.strike, contract.expiry) == ("SPY", "P", 520.0, EXPIRY)
    assert type(contract.right) is str and type(contract.strike) is float  # encoded as fast as any plain value
    assert contract == OptionContract(underlying="SPY", right="P", strike=520.0, expiry=EXPIRY)
    assert len({contract, OptionContract("SPY", "P", 520.0, EXPIRY)}) == 1  # hashable: a dict key or cache key
    assert OptionContract("SPY", "C").strike is None  # each part optional, as components accepted before
    assert OptionContract() == NO_CONTRACT and MarketSnapshot() == NO_MARKET


def test_value_objects_are_frozen_and_slotted() -> None:
    contract, market = OptionContract("SPY"), MarketSnapshot(0.5, 519.8)
    assert not hasattr(contract, "__dict__") and not hasattr(market, "__dict__")
    with pytest.raises(dataclasses.FrozenInstanceError):
        contract.underlying = "QQQ"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        market.option_delta = 0.1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"underlying": ""}, "underlying"),
        ({"underlying": 7}, "underlying"),
        ({"right": "CALL"}, "right"),
        ({"right": "c"}, "right"),
        ({"right": 1}, "right"),
        ({"strike": 0.0}, "strike"),
        ({"strike": -5.0}, "strike"),
        ({"strike": math.inf}, "strike"),
        ({"strike": math.nan}, "strike"),
        ({"strike": "520"}, "strike"),
        ({"strike": True}, "strike"),
        ({"expiry": datetime(2026, 3, 20, 20, tzinfo=UTC)}, "expiry"),
        ({"expiry": "2026-03-20"}, "expiry"),
        ({"expiry": 20260320}, "expiry"),
    ],
)
def test_every_invalid_contract_field_is_a_value_error_naming_it(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=rf"^OptionContract\.{field} "):
        OptionContract(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"option_delta": 1.5}, "option_delta"),
        ({"option_delta": -1.01}, "option_delta"),
        ({"option_delta": math.nan}, "option_delta"),
        ({"option_delta": "0.5"}, "option_delta"),
        ({"option_delta": False}, "option_delta"),
        ({"underlying_price": 0.0}, "underlying_price"),
        ({"underlying_price": -1.0}, "underlying_price"),
        ({"underlying_price": math.inf}, "underlying_price"),
        ({"underlying_price": "520"}, "underlying_price"),
    ],
)
def test_every_invalid_market_field_is_a_value_error_naming_it(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=rf"^MarketSnapshot\.{field} "):
        MarketSnapshot(**kwargs)  # type: ignore[arg-type]


def test_the_market_accepts_the_bounds_and_converts_ints() -> None:
    assert MarketSnapshot(-1, 520) == MarketSnapshot(-1.0, 520.0)
    assert type(MarketSnapshot(1, 520).underlying_price) is float and MarketSnapshot(option_delta=1.0).option_delta == 1


def test_columns_derive_from_fields_and_name_bronze_columns_of_the_same_type() -> None:
    assert OptionContract.COLUMNS == ("underlying", "option_right", "strike", "expiry")
    assert MarketSnapshot.COLUMNS == ("option_delta", "underlying_price")
    assert OptionContract.COLUMNS.right == "option_right" and MarketSnapshot.COLUMNS.option_delta == "option_delta"
    for cls in (OptionContract, MarketSnapshot):
        assert cls.COLUMNS._fields == tuple(f.name for f in dataclasses.fields(cls))
    expected = {
        "underlying": pa.string(),
        "option_right": pa.string(),
        "strike": pa.float64(),
        "expiry": pa.date32(),
        "option_delta": pa.float64(),
        "underlying_price": pa.float64(),
    }
    columns = (*OptionContract.COLUMNS, *MarketSnapshot.COLUMNS)
    assert {c: BRONZE_SCHEMA.field(c).type for c in columns} == expected
    assert all(BRONZE_SCHEMA.field(c).nullable for c in columns)
    assert set(columns) <= set(EVENT_FIELDS)  # spread into RiskEvent(...) by these names


def test_exported_from_the_package() -> None:
    assert risk_runtime.OptionContract is OptionContract and risk_runtime.MarketSnapshot is MarketSnapshot
    assert risk_runtime.OptionRight is OptionRight


# The analyst's side reads gold's output columns by name (a filter, a chart's axis): it declares no column list.
GOLD_READERS = (
    "risk_pipeline/cli.py",
    "risk_pipeline/queries.py",
    "risk_pipeline/query_sections.py",
    "risk_pipeline/report",
)
# Quoted column names that are not columns: an InMemoryRiskCalculator parameter named in its errors (twice) and
# the key of a `reduces_breach` entry in a limit check's metadata.
NOT_A_COLUMN = {("risk_runtime/portfolio_limits.py", "underlying"): 3}
# The bronze schema names each event column once, beside the RiskEvent fields it types (tested above to agree).
# risk_runtime/instruments.py is the declaration itself: its field names are these names.
DECLARED = {("risk_runtime/events.py", c): 1 for c in (*OptionContract.COLUMNS, *MarketSnapshot.COLUMNS)}
DECLARATION = "risk_runtime/instruments.py"


def _quoted_column_names(names: set[str], root: Path = REPO) -> Counter[tuple[str, str]]:
    """Every string constant (not a docstring's words) equal to one of ``names``, by file, under ``root``."""
    found: Counter[tuple[str, str]] = Counter()
    for directory in ("risk_runtime", "risk_pipeline", "bench"):
        for path in sorted((root / directory).rglob("*.py")):
            if any(str(path.relative_to(root)).startswith(reader) for reader in GOLD_READERS):
                continue
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names:
                    found[(str(path.relative_to(root)), node.value)] += 1
    return found


def test_no_code_spells_a_contract_or_market_column_but_its_declaration() -> None:
    """Every list of these columns derives from the value objects; a new literal is a second declaration."""
    names = {*OptionContract.COLUMNS, *MarketSnapshot.COLUMNS}
    found = Counter({key: n for key, n in _quoted_column_names(names).items() if key[0] != DECLARATION})
    assert found == Counter({**DECLARED, **NOT_A_COLUMN})


def test_the_literal_guard_sees_a_planted_spelling(tmp_path: Path) -> None:
    (tmp_path / "risk_pipeline").mkdir()
    (tmp_path / "risk_pipeline" / "gold.py").write_text(
        '"""strike and expiry, in prose, are fine."""\nCOLUMNS = ["strike", f"{1}"]\nX = pl.col(\'expiry\')\n'
    )
    assert _quoted_column_names({"strike", "expiry"}, tmp_path) == Counter(
        {("risk_pipeline/gold.py", "strike"): 1, ("risk_pipeline/gold.py", "expiry"): 1}
    )
