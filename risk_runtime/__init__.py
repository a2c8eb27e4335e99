"""risk_runtime: the light library trading processes import to record their risk decisions.

It depends on ``deltalake`` and ``pyarrow`` only, never on the pipeline's libraries.
"""

from risk_runtime.events import SCHEMA_VERSION, Component, RiskEvent, RiskEventType
from risk_runtime.logger import LoggerStats, OverflowPolicy, RiskEventLogger
from risk_runtime.sink import EventSink, MemorySink
from risk_runtime.table import RiskEventsTable

__all__ = [
    "SCHEMA_VERSION",
    "Component",
    "EventSink",
    "LoggerStats",
    "MemorySink",
    "OverflowPolicy",
    "RiskEvent",
    "RiskEventLogger",
    "RiskEventType",
    "RiskEventsTable",
]
