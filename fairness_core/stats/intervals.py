"""Closed-form intervals: the normal quantile of a confidence level and the
Wilson score interval of a proportion."""
from __future__ import annotations

import numpy as np


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
