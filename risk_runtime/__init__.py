"""risk_runtime: the light library trading processes import to record their risk decisions.

It depends on ``deltalake`` and ``pyarrow`` only, never on the pipeline's libraries. Everything a
trading process needs is importable from here, as in the design guide::

    from risk_runtime import TradingCircuitBreaker, RiskEventLogger
"""

from risk_runtime.circuit_breaker import (
    BreakerSnapshot,
    CircuitBreakerConfig,
    CircuitBreakerState,
    TradingCircuitBreaker,
)
from risk_runtime.events import SCHEMA_VERSION, Component, OptionRight, RiskEvent, RiskEventType
from risk_runtime.instruments import MarketSnapshot, OptionContract
from risk_runtime.logger import LoggerStats, OverflowPolicy, RiskEventLogger
from risk_runtime.portfolio_limits import (
    InMemoryRiskCalculator,
    LimitType,
    PortfolioLimits,
    PortfolioLimitsChecker,
    RiskCalculator,
)
from risk_runtime.sink import EventSink, MemorySink
from risk_runtime.table import RiskEventsTable
from risk_runtime.trailing_stop import TrailingStop, TrailingStopConfig, TrailingStopManager, TriggeredStop

__all__ = [
    "SCHEMA_VERSION",
    "BreakerSnapshot",
    "CircuitBreakerConfig",
    "CircuitBreakerState",
    "Component",
    "EventSink",
    "InMemoryRiskCalculator",
    "LimitType",
    "LoggerStats",
    "MarketSnapshot",
    "MemorySink",
    "OptionContract",
    "OptionRight",
    "OverflowPolicy",
    "PortfolioLimits",
    "PortfolioLimitsChecker",
    "RiskCalculator",
    "RiskEvent",
    "RiskEventLogger",
    "RiskEventType",
    "RiskEventsTable",
    "TradingCircuitBreaker",
    "TrailingStop",
    "TrailingStopConfig",
    "TrailingStopManager",
    "TriggeredStop",
]
