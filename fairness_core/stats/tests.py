"""Tests of the disparities: a pooled two-proportion z-test or Fisher's
exact test for proportions, a Wald test with the bootstrap standard error
for everything else, Welch's t-test of two means from their standard
errors (the regression audit), and the correction of all the p-values of
an audit together (Benjamini-Hochberg or Holm)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..counts import CELLS, row_positions
from ..metrics import REGISTRY
from .power import rows_needed

MIN_EXPECTED = 5  # below this expected cell count, Fisher's exact test
Z_TEST, FISHER, WALD = ("two-proportion z-test", "Fisher's exact test",
                        "Wald test (bootstrap standard error)")


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


def wald_p(diff, se) -> np.ndarray:
    """Two-sided Wald test of a difference with standard error ``se``,
    vectorised.  A zero standard error gives 1 for no difference and NaN
    otherwise."""
    from scipy import stats as st
    diff, se = np.asarray(diff, dtype=float), np.asarray(se, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = 2 * st.norm.sf(np.abs(diff) / se)
    return np.where(se == 0, np.where(diff == 0, 1.0, np.nan), p)


def welch(scale1, se1, df1, scale2, se2, df2):
    """Welch's t-test of ``scale1 - scale2`` from two standard errors:
    ``(t statistic, Welch-Satterthwaite degrees of freedom, two-sided p)``,
    vectorised.  Two exact values (both standard errors 0) give p = 1 when
    equal and NaN (no test) otherwise."""
    from scipy import stats as st
    a = [np.asarray(x, dtype=float) for x in (scale1, se1, df1, scale2, se2, df2)]
    scale1, se1, df1, scale2, se2, df2 = a
    with np.errstate(invalid="ignore", divide="ignore"):
        var = se1 ** 2 + se2 ** 2
        df = var ** 2 / (se1 ** 4 / df1 + se2 ** 4 / df2)
        t = (scale1 - scale2) / np.sqrt(var)
        p = 2 * st.t.sf(np.abs(t), df)
    p = np.where(var == 0, np.where(scale1 == scale2, 1.0, np.nan), p)
    return t, df, p


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


# ---------------------------------------------------------------------------
# Per disparity
# ---------------------------------------------------------------------------
_RATE_NUM = np.stack([m.num_vector if m.is_rate else np.full(len(CELLS), np.nan)
                      for m in REGISTRY.values()])
_RATE_DEN = np.stack([m.den_vector if m.is_rate else np.full(len(CELLS), np.nan)
                      for m in REGISTRY.values()])


@dataclass(frozen=True)
class Proportions:
    """The counts behind each disparity row whose metric is a proportion
    of rows: ``x1`` of ``n1`` in the group, ``x2`` of ``n2`` in the
    reference.  NaN on the other rows (balanced accuracy, F1, and every
    row of weighted data)."""

    x1: np.ndarray
    n1: np.ndarray
    x2: np.ndarray
    n2: np.ndarray

    @property
    def known(self) -> np.ndarray:
        """The rows whose metric is a proportion of rows."""
        return ~np.isnan(self.n1)

    @classmethod
    def concat(cls, parts) -> Proportions:
        """The counts of disparity tables put one after the other."""
        parts = list(parts)
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) if parts else np.zeros(0)
                     for f in ("x1", "n1", "x2", "n2")))

    @classmethod
    def of(cls, disp: pd.DataFrame, groups: pd.DataFrame, weighted: bool) -> Proportions:
        """The group's and the reference's cells of each disparity row,
        times the coefficients of the row's metric.

        Parameters
        ----------
        disp : DataFrame
            Disparity rows (``model, attribute, metric, group, reference``).
        groups : DataFrame
            The group table they come from (its cells in :data:`CELLS`).
        weighted : bool
            The cells hold sample weights, not rows: no proportion is known.
        """
        n = len(disp)
        if weighted:
            return cls(*(np.full(n, np.nan) for _ in range(4)))
        cells = np.vstack([groups[list(CELLS)].to_numpy(dtype=float),
                           np.full((1, len(CELLS)), np.nan)])  # row -1: not found
        gi = row_positions(disp, groups)
        ri = row_positions(disp, groups, row_keys=("model", "attribute", "reference"))
        g_cells, r_cells = cells[gi], cells[ri]
        pos = {m: i for i, m in enumerate(REGISTRY)}
        mi = np.fromiter((pos[m] for m in disp["metric"].to_numpy(dtype=object)), dtype=np.intp,
                         count=n)
        num, den = _RATE_NUM[mi], _RATE_DEN[mi]
        return cls((g_cells * num).sum(axis=1), (g_cells * den).sum(axis=1),
                   (r_cells * num).sum(axis=1), (r_cells * den).sum(axis=1))


def disparity_tests(disp: pd.DataFrame, counts: Proportions, boot_se: np.ndarray,
                    min_group_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The unadjusted p-value and the name of its test, per disparity row.

    Proportions: the pooled two-proportion z-test, or Fisher's exact test
    when an expected cell count is below :data:`MIN_EXPECTED`.  Every other
    row: a Wald test with the bootstrap standard error ``boot_se``, for
    groups and references of at least ``min_group_size`` rows.  NaN and no
    test where either value is undefined.
    """
    n = len(disp)
    p = np.full(n, np.nan)
    test = np.full(n, "", dtype=object)
    prop = counts.known
    n_g, n_r = disp["n"].to_numpy(), disp["reference_n"].to_numpy()
    # the normal approximation needs groups of a fair size
    big = (n_g >= min_group_size) & (n_r >= min_group_size)
    pw = np.where(big, wald_p(disp["difference"].to_numpy(dtype=float), boot_se), np.nan)
    p[~prop] = pw[~prop]
    test[~prop] = np.where(np.isnan(pw[~prop]), "", WALD)
    if prop.any():
        x1, n1, x2, n2 = counts.x1, counts.n1, counts.x2, counts.n2
        small = prop & (min_expected(x1, n1, x2, n2) < MIN_EXPECTED)
        z_rows = prop & ~small
        p[z_rows] = two_proportion_p(x1[z_rows], n1[z_rows], x2[z_rows], n2[z_rows])
        test[z_rows] = Z_TEST
        if small.any():
            idx = np.flatnonzero(small)
            p[idx] = fisher_p(x1[idx], n1[idx], x2[idx], n2[idx])
            test[idx] = FISHER
        test[prop & np.isnan(p)] = ""
    defined = disp["value"].notna().to_numpy() & disp["reference_value"].notna().to_numpy()
    p[~defined] = np.nan
    test[~defined] = ""
    return p, test


# ---------------------------------------------------------------------------
# Over the whole audit
# ---------------------------------------------------------------------------
FINISHED_COLUMNS = ("difference_ci_low", "difference_ci_high", "ratio_ci_low",
                    "ratio_ci_high", "p_value", "p_value_adjusted", "significant", "test",
                    "rows_needed", "more_rows_needed", "reference_rows_needed")


def finish_tests(disp: pd.DataFrame, groups: pd.DataFrame, spec, weighted: bool,
                 counts: Proportions | None = None) -> pd.DataFrame:
    """Correct every p-value of an audit together (Benjamini-Hochberg or
    Holm), mark the significant gaps, and estimate the rows needed where a
    gap fails the tolerance without being significant, or cannot be judged.

    Parameters
    ----------
    disp : DataFrame
        The disparities of every model of the audit, with the columns of
        :meth:`Uncertainty.disparity_stats`.
    groups : DataFrame
        The group table they come from (rows of other attributes, such as
        ``(overall)``, are ignored).
    spec : AuditSpec
    weighted : bool
        The group table's cells hold sample weights.
    counts : Proportions, optional
        ``Proportions.of(disp, groups, weighted)`` when already known (see
        :meth:`Proportions.concat`).

    Returns
    -------
    DataFrame
        ``disp`` with :data:`FINISHED_COLUMNS` last.
    """
    p_adj = adjust_p(disp["p_value"].to_numpy(dtype=float), spec.correction)
    significant = np.where(np.isnan(p_adj), False, p_adj < spec.alpha)
    if counts is None:
        counts = Proportions.of(disp, groups, weighted)
    needed = rows_needed(disp, counts, significant, spec)
    out = disp.assign(p_value_adjusted=p_adj, significant=significant, **needed)
    front = [c for c in out.columns if c not in FINISHED_COLUMNS]
    return out[front + list(FINISHED_COLUMNS)]
