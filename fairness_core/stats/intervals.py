"""Closed-form intervals: the normal quantile of a confidence level, the
Wilson score interval of a proportion and the skewness-corrected t-interval
of a mean."""
from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=16)
def z_value(confidence: float) -> float:
    """The two-sided normal quantile of ``confidence`` (1.96 for 0.95)."""
    from scipy import stats as st
    return float(st.norm.ppf(0.5 + confidence / 2))


def wilson_interval(k, n, confidence: float = 0.95):
    """Wilson score interval for k successes out of n, vectorised.

    Equal to ``scipy.stats.binomtest(k, n).proportion_ci(confidence,
    method="wilson")``; NaN where n = 0.
    """
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    z = z_value(confidence)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        denom = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
        lo = np.where(n > 0, np.clip(centre - half, 0, 1), np.nan)
        hi = np.where(n > 0, np.clip(centre + half, 0, 1), np.nan)
    # exact ends where the formula rounds: k = 0 -> 0, k = n -> 1
    lo = np.where((n > 0) & (k == 0), 0.0, lo)
    hi = np.where((n > 0) & (k == n), 1.0, hi)
    return lo, hi


def hall_interval(m, se, df, skew, n_eff, confidence: float = 0.95):
    """A t-interval for a mean with Hall's (1992) skewness correction.

    With ``t = (mean - mu) / se``, Hall's monotone transformation
    ``g(t) = t + a t**2 + a**2 t**3 / 3 + b`` (``a = skew / (3 sqrt(n))``,
    ``b = skew / (6 sqrt(n))``) removes the skewness of ``t``; the interval
    inverts ``g`` at the t quantiles.  ``skew = 0`` gives the t-interval.

    Parameters
    ----------
    m, se : arrays
        The mean and its standard error.
    df : array
        Degrees of freedom of the t quantile (rows - 1).
    skew : array
        Skewness of one row's value (third central moment / sd**3).
    n_eff : array
        The (effective) number of rows.
    """
    m, se, df, skew, n_eff = (np.asarray(x, dtype=float) for x in (m, se, df, skew, n_eff))
    from scipy import stats as st
    q = st.t.ppf(0.5 + confidence / 2, df)
    with np.errstate(invalid="ignore", divide="ignore"):
        a = skew / (3 * np.sqrt(n_eff))
        b = skew / (6 * np.sqrt(n_eff))

        def inverse(z):
            small = np.abs(a) < 1e-12
            safe = np.where(small, 1.0, a)
            return np.where(small, z - b, (np.cbrt(1 + 3 * safe * (z - b)) - 1) / safe)

        lo = m - se * inverse(q)
        hi = m - se * inverse(-q)
    return lo, hi
