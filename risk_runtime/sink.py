"""What a risk component needs from an event logger: somewhere to hand events to.

Components depend on this narrow protocol, not on :class:`~risk_runtime.logger.RiskEventLogger`,
so they can be used with no logger at all, with the Delta-backed logger, or with
:class:`MemorySink` (tests, simulations, what-if analysis).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from risk_runtime.events import RiskEvent


@runtime_checkable
class EventSink(Protocol):
    def log(self, event: RiskEvent) -> bool:
        """Accept ``event`` without blocking or raising; False if it was refused."""
        ...

    def flush_blocking(self, timeout: float | None = None) -> bool:
        """Wait until every accepted event is durable in the lake; False on timeout."""
        ...


class MemorySink:
    """Keeps events in a list: an in-process sink for tests and simulations."""

    def __init__(self) -> None:
        self.events: list[RiskEvent] = []

    def log(self, event: RiskEvent) -> bool:
        self.events.append(event)
        return True

    def flush_blocking(self, timeout: float | None = None) -> bool:
        return True

    def of_type(self, *event_types: str) -> list[RiskEvent]:
        return [e for e in self.events if e.event_type in event_types]
