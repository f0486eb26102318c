"""Tests of the disparities: a pooled two-proportion z-test or Fisher's
exact test for proportions, a Wald test with the bootstrap standard error
for everything else, and the correction of all the p-values of an audit
together (Benjamini-Hochberg or Holm)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .power import rows_for_power

MIN_EXPECTED = 5  # below this expected cell count, Fisher's exact test


def two_proportion_p(x1, n1, x2, n2) -> np.ndarray:
    """Two-sided pooled two-proportion z-test (the chi-squared test of the
    2x2 table without continuity correction), vectorised."""
    from scipy import stats as st
    x1, n1, x2, n2 = (np.asarray(a, dtype=float) for a in (x1, n1, x2, n2))
    with np.errstate(invalid="ignore", divide="ignore"):
        pool = (x1 + x2) / (n1 + n2)
        se = np.sqrt(pool * (1 - pool) * (1 / n1 + 1 / n2))
        z = (x1 / n1 - x2 / n2) / se
        p = 2 * st.norm.sf(np.abs(z))
    p = np.where(se == 0, 1.0, p)  # both groups all 0 or all 1: no evidence
    return np.where((n1 > 0) & (n2 > 0), p, np.nan)


def min_expected(x1, n1, x2, n2) -> np.ndarray:
    """Smallest expected cell count of the 2x2 table [[x1, n1-x1], [x2, n2-x2]]."""
    x1, n1, x2, n2 = (np.asarray(a, dtype=float) for a in (x1, n1, x2, n2))
    tot = n1 + n2
    succ = x1 + x2
    with np.errstate(invalid="ignore", divide="ignore"):
        e = np.minimum(np.minimum(n1, n2) * succ, np.minimum(n1, n2) * (tot - succ)) / tot
    return np.where(tot > 0, e, 0.0)


def fisher_p(x1, n1, x2, n2) -> np.ndarray:
    """Two-sided Fisher's exact test per row (scipy.stats.fisher_exact)."""
    from scipy import stats as st
    out = np.full(len(x1), np.nan)
    cache: dict = {}
    for i, t in enumerate(zip(x1, n1, x2, n2)):
        a, b, c, d = (int(round(v)) for v in t)
        if b <= 0 or d <= 0:
            continue
        key = (a, b, c, d)
        if key not in cache:
            cache[key] = float(st.fisher_exact([[a, b - a], [c, d - c]]).pvalue)
        out[i] = cache[key]
    return out


def adjust_p(p: np.ndarray, method: str = "bh") -> np.ndarray:
    """Adjusted p-values over the defined entries of ``p`` (NaN stays NaN).

    ``bh``: Benjamini-Hochberg (``scipy.stats.false_discovery_control``);
    ``holm``: Holm's step-down (family-wise error).
    """
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if not ok.any():
        return out
    q = p[ok]
    if method == "bh":
        from scipy import stats as st
        adj = st.false_discovery_control(q, method="bh")
    elif method == "holm":
        m = len(q)
        order = np.argsort(q, kind="stable")
        stepped = np.maximum.accumulate((m - np.arange(m)) * q[order])
        adj = np.empty(m)
        adj[order] = np.minimum(stepped, 1.0)
    else:
        raise ValueError(f"unknown correction {method!r}")
    out[ok] = adj
    return out


FINISHED_COLUMNS = ("difference_ci_low", "difference_ci_high", "ratio_ci_low",
                    "ratio_ci_high", "p_value", "p_value_adjusted", "significant", "test",
                    "rows_needed", "more_rows_needed", "reference_rows_needed")


def finish_tests(disp: pd.DataFrame, spec) -> pd.DataFrame:
    """Correct every p-value of an audit together (Benjamini-Hochberg or
    Holm), mark the significant gaps, and estimate the rows needed where a
    gap fails the tolerance without being significant, or cannot be judged.

    ``disp`` carries the columns of :meth:`Uncertainty.disparity_stats`
    with ``adjust=False``; the helper columns are dropped."""
    p = disp["p_value"].to_numpy(dtype=float)
    p_adj = adjust_p(p, spec.correction)
    significant = np.where(np.isnan(p_adj), False, p_adj < spec.alpha)
    verdict = disp["verdict"].to_numpy()
    want = ((verdict == "fail") & ~significant) | (verdict == "insufficient")
    refv = disp["reference_value"].to_numpy(dtype=float)
    val = disp["value"].to_numpy(dtype=float)
    n_g, n_r = disp["n"].to_numpy(), disp["reference_n"].to_numpy()
    d1, d2 = disp["_d1"].to_numpy(dtype=float), disp["_d2"].to_numpy(dtype=float)
    prop = ~np.isnan(d1)
    tol = spec.tolerance
    go_up = (val > refv) & (refv / tol <= 1)
    p_alt = np.where(go_up, np.minimum(refv / tol, 1.0), refv * tol)
    # denominators: for rates known from the counts; share of the group's rows
    with np.errstate(invalid="ignore", divide="ignore"):
        share_g = np.where((d1 > 0) & (n_g > 0), d1 / n_g, np.nan)
        share_r = np.where((d2 > 0) & (n_r > 0), d2 / n_r, np.nan)
    share_g = np.where(np.isnan(share_g), share_r, share_g)
    need_g, need_r = rows_for_power(refv, d2, p_alt, spec.alpha, spec.power)
    with np.errstate(invalid="ignore", divide="ignore"):
        rows_needed = np.ceil(need_g / share_g)
        ref_rows_needed = np.ceil(need_r / share_r)
    rows_needed = np.maximum(rows_needed, spec.min_group_size)
    usable = want & prop & (refv > 0) & np.isfinite(rows_needed)
    out = disp.drop(columns=["_x1", "_d1", "_x2", "_d2"])
    out["p_value_adjusted"] = p_adj
    out["significant"] = significant
    out["rows_needed"] = np.where(usable, rows_needed, np.nan)
    out["more_rows_needed"] = np.where(usable, np.maximum(rows_needed - n_g, 0), np.nan)
    out["reference_rows_needed"] = np.where(usable, np.maximum(ref_rows_needed, n_r), np.nan)
    front = [c for c in out.columns if c not in FINISHED_COLUMNS]
    return out[front + list(FINISHED_COLUMNS)]
