"""Just enough market to make premiums behave: GBM underlyings and Black-Scholes option prices.

Stdlib only (``math.erf`` for the normal CDF): the simulator ships inside ``risk_runtime``,
which trading processes import, so it cannot pull in numpy or scipy.

Conventions: ``years`` to expiry in calendar time (365 days), volatility annualised, premiums
per share, deltas per contract share (a call's delta in (0, 1), a put's in (-1, 0)).
"""

from __future__ import annotations

import math
from typing import Final

_SQRT2: Final = math.sqrt(2.0)
MIN_YEARS: Final = 1e-6
"""Time to expiry is floored here so an expiring option prices as intrinsic value, not 0/0."""


def norm_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / _SQRT2))


def black_scholes(
    spot: float, strike: float, years: float, vol: float, rate: float, is_call: bool
) -> tuple[float, float]:
    """European option ``(premium, delta)`` under Black-Scholes with no dividends."""
    t = years if years > MIN_YEARS else MIN_YEARS
    sd = vol * math.sqrt(t)
    d1 = (math.log(spot / strike) + (rate + 0.5 * vol * vol) * t) / sd
    d2 = d1 - sd
    discount = math.exp(-rate * t)
    if is_call:
        nd1 = norm_cdf(d1)
        return spot * nd1 - strike * discount * norm_cdf(d2), nd1
    nd1 = norm_cdf(-d1)
    return strike * discount * norm_cdf(-d2) - spot * nd1, -nd1


def gbm_step(spot: float, drift: float, vol: float, dt_years: float, z: float) -> float:
    """One exact geometric-Brownian-motion step driven by the standard normal draw ``z``."""
    return spot * math.exp((drift - 0.5 * vol * vol) * dt_years + vol * math.sqrt(dt_years) * z)
