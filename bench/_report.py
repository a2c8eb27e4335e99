"""Small helpers shared by the benchmarks: tables, ratios, verdicts, percentiles and peak memory."""

from __future__ import annotations

import math
import resource
import sys
from collections.abc import Sequence
from typing import TextIO


class Table:
    """A plain-text table: add rows, then ``print()``; columns are sized to their widest cell.

    >>> t = Table("metric", "value", title="example")
    >>> t.add("p50", "1.2 µs")
    >>> t.print()  # doctest: +SKIP
    """

    def __init__(self, *headers: str, title: str | None = None, align: str | None = None) -> None:
        self.headers = [str(h) for h in headers]
        self.title = title
        # one character per column: "l" (left) or "r" (right); the first column left, others right
        self.align = align or "l" + "r" * (len(headers) - 1)
        self.rows: list[list[str]] = []

    def add(self, *cells: object) -> None:
        if len(cells) != len(self.headers):
            raise ValueError(f"expected {len(self.headers)} cells, got {len(cells)}")
        self.rows.append(["" if c is None else str(c) for c in cells])

    def render(self) -> str:
        widths = [max(len(r[i]) for r in [self.headers, *self.rows]) for i in range(len(self.headers))]

        def line(cells: Sequence[str]) -> str:
            parts = [c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(cells, widths, self.align, strict=True)]
            return "  ".join(parts).rstrip()

        out = []
        if self.title:
            out.append(self.title)
        out.append(line(self.headers))
        out.append("  ".join("-" * w for w in widths))
        out.extend(line(r) for r in self.rows)
        return "\n".join(out)

    def print(self, file: TextIO | None = None) -> None:
        print(self.render(), file=file or sys.stdout, flush=True)
        print(file=file or sys.stdout, flush=True)


def ratio(a: float, b: float, digits: int = 2) -> str:
    """``a / b`` as ``"3.10x"``; ``"n/a"`` when ``b`` is zero or either value is not finite."""
    if not b or not math.isfinite(a) or not math.isfinite(b):
        return "n/a"
    return f"{a / b:.{digits}f}x"


def verdict(value: float, target: float, higher_is_better: bool) -> str:
    """``"PASS"`` if ``value`` meets ``target`` (``>=`` or ``<=`` as stated), else ``"MISS"``."""
    if not math.isfinite(value):
        return "MISS"
    met = value >= target if higher_is_better else value <= target
    return "PASS" if met else "MISS"


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by nearest rank; values need not be sorted."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return float(ordered[min(rank, len(ordered)) - 1])


def percentiles(values: Sequence[float], qs: Sequence[float] = (50, 99)) -> list[float]:
    """Several nearest-rank percentiles of one sample, sorting it once."""
    if not values:
        return [math.nan for _ in qs]
    ordered = sorted(values)
    n = len(ordered)
    return [float(ordered[min(max(1, math.ceil(q / 100 * n)), n) - 1]) for q in qs]


def median(values: Sequence[float]) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    mid = len(ordered) // 2
    return float(ordered[mid]) if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def peak_rss_mb() -> tuple[float, float]:
    """Peak resident set size in MiB of this process and of its reaped children (``ru_maxrss``).

    The children figure is the largest single child that has exited and been waited for.
    """
    divisor = 1024 * 1024 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return own / divisor, children / divisor


def fmt_us(ns: float, digits: int = 2) -> str:
    """Nanoseconds as microseconds: ``"1.23 µs"``."""
    return "n/a" if not math.isfinite(ns) else f"{ns / 1000:.{digits}f} µs"


def fmt_ms(seconds: float, digits: int = 3) -> str:
    """Seconds as milliseconds: ``"0.123 ms"``."""
    return "n/a" if not math.isfinite(seconds) else f"{seconds * 1000:.{digits}f} ms"


def fmt_int(n: float) -> str:
    return f"{n:,.0f}"
