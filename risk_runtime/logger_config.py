"""The logger's settings, validated once, at construction.

A setting that cannot work must fail where it is written, not in a background thread later: an
infinite ``sync_interval`` used to be accepted and then killed the flusher thread with
``OverflowError`` while ``stats().last_error`` stayed empty. Every interval here is a finite
positive number of seconds, every size a positive integer; anything else is a ``ValueError`` that
names the parameter.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from enum import StrEnum


class OverflowPolicy(StrEnum):
    """What ``log()`` does when the in-memory backlog is full (the sink has fallen behind)."""

    DROP_NEWEST = "drop_newest"
    """Refuse the incoming event (``log()`` returns False). Nothing accepted is ever lost, and
    the writer's sequence stays gapless; the refusals are counted and reported."""
    DROP_OLDEST = "drop_oldest"
    """Discard the oldest waiting event to accept the new one: keeps the most recent decisions,
    at the price of losing accepted events -- each one counted in ``dropped``, and their sequence
    numbers show up as a gap."""


@dataclass(frozen=True, slots=True)
class LoggerConfig:
    """See :class:`~risk_runtime.logger.RiskEventLogger` for what each setting does."""

    batch_size: int = 1_000
    max_batch_age: float = 5.0
    sync_interval: float = 0.5
    fsync: bool = True
    max_buffer_events: int = 1_000_000
    max_spool_bytes: int = 1 << 30
    overflow: OverflowPolicy = OverflowPolicy.DROP_NEWEST
    start_shipper: bool = True
    handle_signals: bool = True
    exit_timeout: float = 10.0
    flush_timeout: float = 30.0
    shipper_nice: int = 10
    shipper_cpus: frozenset[int] | None = None

    def __post_init__(self) -> None:
        for name in ("batch_size", "max_buffer_events"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("max_batch_age", "sync_interval", "exit_timeout", "flush_timeout"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not (math.isfinite(value) and value > 0)
            ):
                raise ValueError(f"{name} must be a positive number of seconds (finite), got {value!r}")
            object.__setattr__(self, name, float(value))
        nice = self.shipper_nice
        if not isinstance(nice, int) or isinstance(nice, bool) or not 0 <= nice <= 19:
            raise ValueError(f"shipper_nice must be an integer from 0 to 19, got {nice!r}")
        if self.shipper_cpus is not None:
            object.__setattr__(self, "shipper_cpus", _cpu_set(self.shipper_cpus))
        if not isinstance(self.max_spool_bytes, int) or self.max_spool_bytes < 1 << 20:
            raise ValueError(f"max_spool_bytes must be at least 1 MiB, got {self.max_spool_bytes!r}")
        try:
            object.__setattr__(self, "overflow", OverflowPolicy(self.overflow))
        except ValueError:
            choices = ", ".join(p.value for p in OverflowPolicy)
            raise ValueError(f"overflow must be one of {choices}, got {self.overflow!r}") from None


def _cpu_set(cpus: object) -> frozenset[int]:
    """``shipper_cpus`` checked here, where it was given: CPUs this machine has, on a system that can pin."""
    if not hasattr(os, "sched_setaffinity"):
        raise ValueError("shipper_cpus needs os.sched_setaffinity, which this platform does not have (Linux does)")
    count = os.cpu_count() or 1
    try:
        chosen = frozenset(cpus)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(f"shipper_cpus must be a set of CPU numbers, got {cpus!r}") from None
    wrong = [c for c in chosen if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < count]
    if not chosen or wrong:
        raise ValueError(f"shipper_cpus must be a non-empty set of CPU numbers from 0 to {count - 1}, got {cpus!r}")
    return chosen
