"""The uncertainty layer (fairness_core.stats) checked against independent
computations: scipy for intervals and tests, hand-written multiple-
comparison corrections, a plain row-resampling bootstrap, and simulations
for coverage, error rates and power.

Every number here is compared with something computed without our code
(scipy, a hand count, a formula written out in the test, or a simulation);
nothing is checked against our own output pasted back.  All randomness
comes from seeded numpy Generators, so every run gives the same results.
"""
from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from fairness_core import REGISTRY, AuditSpec, audit
from fairness_core.counts import CELLS
from fairness_core.disparity import SUMMARY_COLUMNS, between, between_summaries
from fairness_core.metrics import DISPARITY_METRICS, metric_values
from fairness_core.stats import (Uncertainty, adjust_p, aggregate, bootstrap_cells, fisher_p,
                                 quantiles, replicate_store, row_quantiles, rows_for_power,
                                 two_proportion_p, wilson_interval)

SEL = "selection_rate"


def _spec(**kw) -> AuditSpec:
    base = dict(label="y", predictions=["pred"], sensitive=["g"], positive="1")
    base.update(kw)
    return AuditSpec(**base)


def _table(groups: dict, rng: np.random.Generator) -> pd.DataFrame:
    """Rows with fixed group sizes: ``groups`` maps name -> (n, base rate,
    selection rate); labels and predictions are independent Bernoullis."""
    parts = []
    for name, (n, base, sel) in groups.items():
        parts.append(pd.DataFrame({
            "g": name,
            "y": (rng.random(n) < base).astype(int),
            "pred": (rng.random(n) < sel).astype(int),
        }))
    return pd.concat(parts, ignore_index=True)


def _exact_table(groups: dict) -> pd.DataFrame:
    """Rows with exact confusion counts: name -> dict(tn=, fp=, fn=, tp=)."""
    parts = []
    for name, cells in groups.items():
        for cell, (y, p) in {"tn": (0, 0), "fp": (0, 1), "fn": (1, 0), "tp": (1, 1)}.items():
            k = cells.get(cell, 0)
            parts.append(pd.DataFrame({"g": [name] * k, "y": [y] * k, "pred": [p] * k}))
    return pd.concat(parts, ignore_index=True)


def _one(df: pd.DataFrame, **match) -> pd.Series:
    sel = np.ones(len(df), dtype=bool)
    for k, v in match.items():
        sel &= (df[k] == v).to_numpy()
    assert sel.sum() == 1, (match, int(sel.sum()))
    return df[sel].iloc[0]


def _pooled_z_p(x1, n1, x2, n2):
    """Two-sided pooled two-proportion z-test, written out independently."""
    x1, n1, x2, n2 = (np.asarray(a, dtype=float) for a in (x1, n1, x2, n2))
    pool = (x1 + x2) / (n1 + n2)
    se = np.sqrt(pool * (1 - pool) * (1 / n1 + 1 / n2))
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.abs(x1 / n1 - x2 / n2) / se
    return np.where(se > 0, 2 * st.norm.sf(z), 1.0)


# ---------------------------------------------------------------------------
# 1. Wilson intervals == scipy
# ---------------------------------------------------------------------------
def test_wilson_interval_equals_scipy():
    grid = []
    for n in (1, 2, 3, 5, 7, 10, 19, 50, 100, 333, 1000, 12345):
        for k in sorted({0, 1, n // 3, n // 2, n - 1, n}):
            if 0 <= k <= n:
                grid.append((k, n))
    for conf in (0.9, 0.95, 0.99):
        ks = np.array([k for k, _ in grid])
        ns = np.array([n for _, n in grid])
        lo_v, hi_v = wilson_interval(ks, ns, conf)  # vectorised call
        for i, (k, n) in enumerate(grid):
            ci = st.binomtest(k, n).proportion_ci(confidence_level=conf, method="wilson")
            lo, hi = wilson_interval(k, n, conf)  # scalar call
            assert abs(float(lo) - ci.low) <= 1e-12, (k, n, conf)
            assert abs(float(hi) - ci.high) <= 1e-12, (k, n, conf)
            assert abs(lo_v[i] - ci.low) <= 1e-12 and abs(hi_v[i] - ci.high) <= 1e-12
            if k == 0:
                assert float(lo) == 0.0
            if k == n:
                assert float(hi) == 1.0
    lo, hi = wilson_interval(0, 0, 0.95)
    assert math.isnan(float(lo)) and math.isnan(float(hi))
    lo, hi = wilson_interval(np.array([0, 3]), np.array([0, 10]), 0.95)
    assert math.isnan(lo[0]) and math.isnan(hi[0])
    ci = st.binomtest(3, 10).proportion_ci(confidence_level=0.95, method="wilson")
    assert abs(lo[1] - ci.low) <= 1e-12 and abs(hi[1] - ci.high) <= 1e-12


# ---------------------------------------------------------------------------
# 2. Tests == scipy
# ---------------------------------------------------------------------------
TABLES = [  # (x1, n1, x2, n2)
    (10, 50, 20, 50), (5, 30, 40, 70), (123, 400, 80, 300), (1, 10, 9, 10),
    (30, 1000, 45, 200), (7, 12, 300, 900), (0, 25, 6, 40), (499, 500, 480, 500),
]


def test_two_proportion_p_equals_chi2_contingency():
    for x1, n1, x2, n2 in TABLES:
        table = [[x1, n1 - x1], [x2, n2 - x2]]
        want = st.chi2_contingency(table, correction=False).pvalue
        got = float(two_proportion_p(x1, n1, x2, n2))
        assert got == pytest.approx(want, rel=1e-9, abs=1e-15), (x1, n1, x2, n2)
    # vectorised over all tables at once
    a = np.array(TABLES, dtype=float).T
    want = [st.chi2_contingency([[x1, n1 - x1], [x2, n2 - x2]], correction=False).pvalue
            for x1, n1, x2, n2 in TABLES]
    np.testing.assert_allclose(two_proportion_p(*a), want, rtol=1e-9, atol=1e-15)
    # an empty group gives no test
    assert math.isnan(float(two_proportion_p(3, 10, 0, 0)))


def test_fisher_p_equals_scipy_fisher_exact():
    a = np.array(TABLES + [(0, 3, 3, 3), (2, 4, 1, 9)], dtype=float).T
    got = fisher_p(*a)
    for i, (x1, n1, x2, n2) in enumerate(a.T.astype(int)):
        want = st.fisher_exact([[x1, n1 - x1], [x2, n2 - x2]]).pvalue
        assert got[i] == pytest.approx(want, rel=1e-12, abs=1e-300), (x1, n1, x2, n2)


# ---------------------------------------------------------------------------
# 3. Multiple-comparison corrections, by hand
# ---------------------------------------------------------------------------
def _bh_by_hand(p):
    """Benjamini-Hochberg step-up written out: sort, p_(i) * m / i, then the
    running minimum from the largest p down, capped at 1."""
    p = list(p)
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    adj = [0.0] * m
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, p[i] * m / rank)
        adj[i] = running
    return adj


def test_adjust_p_bh_by_hand_and_nan_not_counted():
    p = np.array([0.01, 0.04, np.nan, 0.03, 0.5, 0.001, np.nan, 0.2])
    got = adjust_p(p, "bh")
    defined = ~np.isnan(p)
    assert np.isnan(got[~defined]).all()
    want = _bh_by_hand(p[defined])  # m = 6, the NaNs are not tests
    np.testing.assert_allclose(got[defined], want, rtol=1e-12)
    # the same numbers written out: m = 6; sorted 0.001 0.01 0.03 0.04 0.2 0.5
    # p*m/i = 0.006 0.03 0.06 0.06 0.24 0.5 -> running minimum from the top
    np.testing.assert_allclose(got[defined], [0.03, 0.06, 0.06, 0.5, 0.006, 0.24],
                               rtol=1e-12)
    # a second vector with ties and a value that caps at 1
    q = np.array([0.9, 0.02, 0.02, 0.6, 0.049])
    np.testing.assert_allclose(adjust_p(q, "bh"), _bh_by_hand(q), rtol=1e-12)


def test_adjust_p_holm_by_hand_and_nan_not_counted():
    p = np.array([0.01, 0.04, np.nan, 0.03, 0.5, 0.001])
    got = adjust_p(p, "holm")
    # m = 5 defined p-values; sorted 0.001 0.01 0.03 0.04 0.5
    # multiplied by 5 4 3 2 1 -> 0.005 0.04 0.09 0.08 0.5;
    # running maximum -> 0.005 0.04 0.09 0.09 0.5 (capped at 1)
    want = np.array([0.04, 0.09, np.nan, 0.09, 0.5, 0.005])
    np.testing.assert_allclose(got, want, rtol=1e-12, equal_nan=True)
    # capping at 1
    np.testing.assert_allclose(adjust_p(np.array([0.3, 0.6, np.nan]), "holm"),
                               [0.6, 0.6, np.nan], rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(adjust_p(np.array([0.4, 0.7, 0.8]), "holm"),
                               [1.0, 1.0, 1.0], rtol=1e-12)
    assert np.isnan(adjust_p(np.array([np.nan, np.nan]), "holm")).all()


# ---------------------------------------------------------------------------
# 4. Count bootstrap == row bootstrap (within Monte-Carlo error)
# ---------------------------------------------------------------------------
def test_count_bootstrap_matches_row_bootstrap():
    rng = np.random.default_rng(20240501)
    n = 300
    g = rng.choice(3, size=n, p=[0.45, 0.33, 0.22])          # 3 groups
    h = rng.integers(0, 2, size=n)                            # a 2nd column: 6 combinations
    y = (rng.random(n) < np.array([0.5, 0.4, 0.6])[g]).astype(int)
    p = np.where(rng.random(n) < 0.75, y, 1 - y)
    p = np.where(rng.random(n) < np.array([0.0, 0.15, 0.05])[g], 1, p)
    combo = 2 * g + h
    inv = np.arange(6) // 2                                   # combination -> group
    assert CELLS == ("tn", "fp", "fn", "tp")
    cell = 2 * y + p                                          # index in CELLS order
    row_cells = np.zeros((6, 4), dtype=np.int64)
    np.add.at(row_cells, (combo, cell), 1)
    assert row_cells.sum() == n

    B = 4000
    # (a) the library's bootstrap on counts, chained as in stats.Uncertainty
    draws = bootstrap_cells(row_cells, B, np.random.default_rng(1))
    vals = metric_values(aggregate(draws, inv, 3))
    count_boot = {
        "sel0": vals[SEL][:, 0], "sel1": vals[SEL][:, 1], "sel2": vals[SEL][:, 2],
        "tpr1": vals["tpr"][:, 1], "tpr2": vals["tpr"][:, 2],
        "ratio21": vals[SEL][:, 2] / vals[SEL][:, 0],
    }
    # (b) a plain bootstrap that resamples rows with replacement
    rr = np.random.default_rng(2)
    idx = rr.integers(0, n, size=(B, n))
    gb, yb, pb = g[idx], y[idx], p[idx]
    sel = np.stack([(pb * (gb == j)).sum(1) / (gb == j).sum(1) for j in range(3)], axis=1)
    tpr = np.stack([(pb * yb * (gb == j)).sum(1) / (yb * (gb == j)).sum(1)
                    for j in range(3)], axis=1)
    row_boot = {"sel0": sel[:, 0], "sel1": sel[:, 1], "sel2": sel[:, 2],
                "tpr1": tpr[:, 1], "tpr2": tpr[:, 2], "ratio21": sel[:, 2] / sel[:, 0]}

    for key in count_boot:
        a, b = count_boot[key], row_boot[key]
        assert np.isfinite(a).all() and np.isfinite(b).all(), key
        sa, sb = a.std(ddof=1), b.std(ddof=1)
        # The SD of B = 4000 draws has a relative Monte-Carlo error of about
        # 1/sqrt(2B) = 1.1%, so two independent estimates differ by ~1.6%
        # (1 SE); 10% is about 6 SE.
        assert sa == pytest.approx(sb, rel=0.10), (key, sa, sb)
        # Means agree to a few SE of the mean (sd / sqrt(B) each).
        assert abs(a.mean() - b.mean()) < 5 * sb * math.sqrt(2 / B), key
        for q in (0.025, 0.975):
            qa, qb = np.quantile(a, q), np.quantile(b, q)
            # Monte-Carlo SE of a sample q-quantile is sqrt(q(1-q)/B) / f(x_q);
            # with a near-normal f(x_q) = phi(z_q) / sd this is 0.042 sd for
            # q = 2.5% and B = 4000; the difference of two independent
            # bootstraps has SE 0.06 sd.  We allow 5 SE (0.3 sd), plus one
            # lattice step of the discrete statistic (1 / smallest group
            # size, the count bootstrap and the row bootstrap can land on
            # neighbouring values k/n).
            se_q = math.sqrt(2 * q * (1 - q) / B) / st.norm.pdf(st.norm.ppf(q)) * sb
            lattice = 1 / np.bincount(g).min()
            if key.startswith("ratio"):  # a step of the numerator, over the denominator
                lattice /= np.median(sel[:, 0])
            assert abs(qa - qb) < 5 * se_q + lattice, (key, q, qa, qb, se_q)


def test_quantiles_equal_numpy_nanquantile():
    """The vectorised percentile helper behind every bootstrap interval."""
    rng = np.random.default_rng(41)
    x = rng.random((1000, 3, 5))
    x[rng.random(x.shape) < 0.3] = np.nan
    x[:, 0, 0] = np.nan              # never defined
    x[:600, 1, 1] = np.nan           # defined in only 40% of replicates
    lo, hi = quantiles(x, (0.025, 0.975))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = np.nanquantile(x, [0.025, 0.975], axis=0)
    enough = (~np.isnan(x)).mean(axis=0) >= 0.5
    np.testing.assert_allclose(lo[enough], want[0][enough], rtol=1e-12)
    np.testing.assert_allclose(hi[enough], want[1][enough], rtol=1e-12)
    # fewer than half the replicates defined: no interval
    assert np.isnan(lo[~enough]).all() and np.isnan(hi[~enough]).all()
    assert not enough[0, 0] and not enough[1, 1]


def test_row_quantiles_of_fully_defined_rows_equal_numpy_quantile():
    """Rows without NaN take the partition path: the same numbers as numpy's
    quantile, for levels near both ends, the middle and the extremes, with
    ties, infinities, and a mix with rows that have NaN."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((40, 1000))
    x[:5] = rng.integers(0, 3, (5, 1000)) / 7                         # many ties
    x[5] = np.where(rng.random(1000) < 0.05, np.inf, x[5])             # a few inf
    x[6] = np.where(rng.random(1000) < 0.05, -np.inf, x[6])
    x[7] = 1.5                                                         # all equal
    qs = (0.025, 0.975, 0.5, 0.0, 1.0, 0.3, 0.999)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = np.quantile(x, qs, axis=1)
    # by hand: the two sorted values around each quantile, interpolated
    srt = np.sort(x, axis=1)
    for rows in (x, np.vstack([x, np.full((1, 1000), np.nan)])):  # alone, and with a NaN row
        got = row_quantiles(rows.copy(), qs)
        for g, w, q in zip(got, want, qs):
            assert np.isnan(g[len(x):]).all()
            pos = q * 999
            lo = int(np.floor(pos))
            a, b = srt[:, lo], srt[:, min(lo + 1, 999)]
            with np.errstate(invalid="ignore"):
                hand = np.where(a == b, a, a + (b - a) * (pos - lo))
            np.testing.assert_array_equal(g[:len(x)], hand)
            finite = np.isfinite(w)
            np.testing.assert_allclose(g[:len(x)][finite], w[finite], rtol=1e-12, atol=0)
    # a row of one value, and rows split between the cores
    np.testing.assert_array_equal(row_quantiles(np.array([[3.0]]), (0.1, 0.9)), [[3.0], [3.0]])
    big = rng.standard_normal((600, 1000))
    got = row_quantiles(big.copy(), (0.025, 0.975))
    np.testing.assert_allclose(got, np.quantile(big, (0.025, 0.975), axis=1), rtol=1e-12)


def test_row_quantiles_equal_numpy_nanquantile_with_nan_and_inf():
    """The percentile helper on rows (sorted in place): NaN ignored, +-inf
    kept as values, rows with fewer than half defined (or none) give NaN."""
    rng = np.random.default_rng(43)
    x = rng.standard_normal((60, 1000))
    x[rng.random(x.shape) < 0.2] = np.nan
    x[:10] = np.where(rng.random((10, 1000)) < 0.3, np.inf, x[:10])     # ratios over a 0
    x[10:15] = np.where(rng.random((5, 1000)) < 0.3, -np.inf, x[10:15])
    x[15, :990] = np.inf                                               # both ends inf
    x[20] = np.nan                                                     # never defined
    x[21, :600] = np.nan                                               # 40% defined
    x[22] = 0.25                                                       # all equal
    x[23, 1:] = np.nan                                                 # one value
    x[30:] = rng.integers(0, 4, (30, 1000)) / 3                       # many ties
    qs = (0.025, 0.975, 0.05, 0.5)
    got = row_quantiles(x.copy(), qs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = np.nanquantile(x, qs, axis=1)
    enough = (~np.isnan(x)).mean(axis=1) >= 0.5
    assert not enough[20] and not enough[21] and not enough[23] and enough[22]
    for g, w in zip(got, want):
        assert np.isnan(g[~enough]).all()
        both = enough & ~np.isnan(w)
        np.testing.assert_allclose(g[both], w[both], rtol=1e-12, atol=0)
        # numpy interpolates between two equal infinities to NaN; the helper
        # keeps the infinity both neighbours share
        assert np.isinf(g[enough & np.isnan(w)]).all()
    assert np.isinf(got[1][:10]).any() and np.isinf(got[0][15])
    # the same numbers as the helper over axis 0
    for g, q in zip(got, quantiles(x.T, qs)):
        np.testing.assert_array_equal(g, q)


def test_replicate_store_equals_each_attributes_metrics():
    """Every attribute's replicate metrics at once, in the store's layout,
    equal the registry's formulas on each attribute's summed counts, with
    and without sample weights and without a true outcome."""
    rng = np.random.default_rng(44)
    k = 12
    row_cells = rng.integers(0, 40, size=(k, 4))
    row_cells[3] = 0                                                 # an empty combination
    row_cells[5, 2:] = 0                                             # no actual positives
    attributes = [("a", np.arange(k) % 3, ["x", "y", "z"]),
                  ("b", np.arange(k) // 4, ["p", "q", "r", "s"]),    # "s" has no combination
                  ("a & b", np.arange(k), [str(i) for i in range(k)]),
                  ("(overall)", np.zeros(k, dtype=np.int64), ["(all)"])]
    weights = rng.gamma(2.0, 1.0, size=(k, 4)) * row_cells
    for draws, whole in ((bootstrap_cells(row_cells, 300, np.random.default_rng(1)), True),
                         (bootstrap_cells(row_cells, 300, np.random.default_rng(1), weights,
                                          weights ** 2 / np.maximum(row_cells, 1)), False)):
        for labelled in (True, False):
            store = replicate_store(draws, attributes, labelled, whole=whole)
            assert store.shape == (len(REGISTRY), 3 + 4 + k + 1, 300)
            start = 0
            for _name, inv, labels in attributes:
                g = len(labels)
                want = metric_values(aggregate(draws, inv, g), labelled)
                for j, m in enumerate(REGISTRY):
                    got = store[j, start:start + g, :].T                 # (replicates, groups)
                    np.testing.assert_allclose(got, want[m], rtol=1e-13, atol=0,
                                               err_msg=f"{m} {labelled}")
                    np.testing.assert_array_equal(np.isnan(got), np.isnan(want[m]))
                start += g
            assert np.isnan(store[:, 3 + 3]).all()                       # "s": no rows
            if not labelled:
                assert np.isnan(store[list(REGISTRY).index("tpr")]).all()


def test_uncertainty_values_are_the_stores_replicates():
    rc = np.array([[30, 20, 10, 40], [25, 5, 20, 50], [12, 10, 6, 15]])
    spec = _spec(seed=9, n_bootstrap=200)
    attrs = [("g", np.arange(3), ["a", "b", "c"]), ("h", np.array([0, 0, 1]), ["u", "v"])]
    unc = Uncertainty({"pred": rc}, None, attrs, spec)
    draws = bootstrap_cells(rc, 200, np.random.default_rng([9, 0]))
    for name, inv, labels in attrs:
        want = metric_values(aggregate(draws, inv, len(labels)))
        got = unc.values[("pred", name)]                              # (replicates, metrics, groups)
        assert got.shape == (200, len(REGISTRY), len(labels))
        for j, m in enumerate(REGISTRY):
            np.testing.assert_array_equal(got[:, j, :], want[m])


def _between_by_hand(row):
    """fairlearn's between-groups difference and ratio of one replicate,
    written out over its defined values."""
    v = [float(x) for x in row if not math.isnan(x)]
    if len(v) < 2:
        return math.nan, math.nan
    return max(v) - min(v), (min(v) / max(v) if max(v) > 0 else math.nan)


def test_between_on_a_stack_equals_each_replicate():
    rng = np.random.default_rng(31)
    x = rng.random((2, 300, 6))
    x[rng.random(x.shape) < 0.35] = np.nan           # undefined in some groups
    x[:, :20, 1:] = np.nan                           # one defined group: no summary
    x[:, 20:40] = np.where(np.isnan(x[:, 20:40]), np.nan, 0.0)  # all at 0: no ratio
    diff, ratio = between(x)
    assert diff.shape == ratio.shape == (2, 300)
    for idx in np.ndindex(2, 300):
        d, r = between(x[idx])
        assert d.shape == r.shape == ()
        np.testing.assert_array_equal([d, r], [diff[idx], ratio[idx]])
        np.testing.assert_array_equal([d, r], _between_by_hand(x[idx]))
    assert np.isnan(diff[:, :20]).all() and np.isnan(ratio[:, :40]).all()
    two = (~np.isnan(x[:, 20:40])).sum(axis=-1) >= 2
    assert two.sum() > 30 and (diff[:, 20:40][two] == 0).all()
    assert np.isfinite(ratio[:, 40:]).sum() > 500

    values = {"selection_rate": x[0], "tpr": x[1], "fpr": x[1, ::-1]}
    stacked = between_summaries(values)
    assert tuple(stacked) == SUMMARY_COLUMNS
    for b in range(300):
        one = between_summaries({m: v[b] for m, v in values.items()})
        for c in SUMMARY_COLUMNS:
            np.testing.assert_array_equal(stacked[c][b], one[c], err_msg=c)


def test_summary_intervals_are_percentiles_of_each_replicates_summary():
    rc = np.array([[30, 20, 10, 40], [25, 5, 20, 50], [12, 10, 6, 15]])  # CELLS order
    spec = _spec(seed=9, n_bootstrap=500)
    unc = Uncertainty({"pred": rc}, None, [("g", np.arange(3), ["a", "b", "c"])], spec)
    vals = unc.values[("pred", "g")]                 # (replicates, metrics, groups)
    names = list(REGISTRY)
    sel, tpr, fpr = (vals[:, names.index(m), :] for m in (SEL, "tpr", "fpr"))
    summ = pd.DataFrame({"model": ["pred"], "attribute": ["g"],
                         **{c: [0.5] for c in SUMMARY_COLUMNS}})
    got = unc.summary_intervals(summ).iloc[0]
    by_hand = {
        "demographic_parity_difference": [_between_by_hand(r)[0] for r in sel],
        "equal_opportunity_ratio": [_between_by_hand(r)[1] for r in tpr],
        "equalized_odds_difference": [max(_between_by_hand(a)[0], _between_by_hand(b)[0])
                                      for a, b in zip(tpr, fpr)],
        "average_odds_ratio": [(_between_by_hand(a)[1] + _between_by_hand(b)[1]) / 2
                               for a, b in zip(tpr, fpr)],
    }
    for name, reps in by_hand.items():
        lo, hi = np.nanquantile(reps, [0.025, 0.975])
        assert lo < hi, name
        assert got[f"{name}_ci_low"] == pytest.approx(lo, rel=1e-12), name
        assert got[f"{name}_ci_high"] == pytest.approx(hi, rel=1e-12), name
    # an undefined estimate gets no interval
    summ.loc[0, "equalized_odds_ratio"] = np.nan
    got = unc.summary_intervals(summ).iloc[0]
    assert math.isnan(got["equalized_odds_ratio_ci_low"])
    assert np.isfinite(got["equalized_odds_difference_ci_low"])


# ---------------------------------------------------------------------------
# 5. Coverage of the audit's 95% intervals, by simulation
# ---------------------------------------------------------------------------
@pytest.mark.slow
def test_interval_coverage_in_simulation():
    """500 simulated tables with known true rates through the full audit
    (n_bootstrap = 1000, the default; each table its own bootstrap seed).
    The binomial SE of an estimated 95% coverage from 500 tables is
    sqrt(0.95 * 0.05 / 500) = 0.97 percentage points, so 93% to 97% is
    about +-2 SE."""
    true_a, true_b = 0.50, 0.35          # selection rates
    n_a, n_b = 400, 300
    true_ratio = true_b / true_a
    n_sim = 500
    hit_rate = hit_rate_a = hit_ratio = hit_diff = 0
    rng = np.random.default_rng(555)
    for i in range(n_sim):
        df = _table({"a": (n_a, 0.4, true_a), "b": (n_b, 0.4, true_b)}, rng)
        res = audit(df, _spec(seed=10_000 + i))
        gb = _one(res.groups, attribute="g", group="b")
        ga = _one(res.groups, attribute="g", group="a")
        d = _one(res.disparities, metric=SEL, group="b")
        assert d["reference"] == "a"
        hit_rate += gb["selection_rate_ci_low"] <= true_b <= gb["selection_rate_ci_high"]
        hit_rate_a += ga["selection_rate_ci_low"] <= true_a <= ga["selection_rate_ci_high"]
        hit_ratio += d["ratio_ci_low"] <= true_ratio <= d["ratio_ci_high"]
        hit_diff += d["difference_ci_low"] <= true_b - true_a <= d["difference_ci_high"]
    for name, hits in (("wilson b", hit_rate), ("wilson a", hit_rate_a),
                       ("ratio", hit_ratio), ("difference", hit_diff)):
        cov = hits / n_sim
        assert 0.93 <= cov <= 0.97, (name, cov)


# ---------------------------------------------------------------------------
# 6. A planted gap is found
# ---------------------------------------------------------------------------
def test_planted_gap_is_found():
    rng = np.random.default_rng(6)
    df = _table({"A": (1000, 0.5, 0.60), "B": (1000, 0.5, 0.30)}, rng)
    res = audit(df, _spec(seed=1))
    d = _one(res.disparities, metric=SEL, group="B")
    assert d["reference"] == "A"  # tie on size: the first group
    # the numbers themselves, counted by hand
    sa = df.loc[df.g == "A", "pred"].mean()
    sb = df.loc[df.g == "B", "pred"].mean()
    assert d["ratio"] == pytest.approx(sb / sa, rel=1e-12)
    xa, xb = df.loc[df.g == "A", "pred"].sum(), df.loc[df.g == "B", "pred"].sum()
    want_p = st.chi2_contingency([[xb, 1000 - xb], [xa, 1000 - xa]], correction=False).pvalue
    assert d["p_value"] == pytest.approx(want_p, rel=1e-6, abs=1e-300)
    assert d["verdict"] == "fail"
    assert bool(d["significant"]) is True
    assert d["p_value_adjusted"] < 0.05
    assert d["ratio_ci_high"] < 0.8  # the whole interval is outside the band
    high = [f for f in res.findings if f["severity"] == "high" and f["metric"] == SEL
            and f["group"] == "B"]
    assert len(high) == 1
    assert "'B'" in high[0]["text"]
    assert res.findings[0]["severity"] == "high"  # most severe first


# ---------------------------------------------------------------------------
# 7. No gap, 40 intersectional groups: no false discoveries
# ---------------------------------------------------------------------------
def _null_world(seed: int, n: int = 20_000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "s1": rng.choice(["u", "v"], n),
        "s2": rng.choice([f"r{i}" for i in range(5)], n),
        "s3": rng.choice([f"k{i}" for i in range(4)], n),
    })
    df["y"] = (rng.random(n) < 0.4).astype(int)
    df["pred"] = np.where(rng.random(n) < 0.8, df["y"], 1 - df["y"])
    return df


def test_no_gap_world_has_no_significant_disparity():
    sens = ["s1", "s2", "s3"]
    clean = 0
    for run in range(20):
        df = _null_world(seed=7000 + run)
        res = audit(df, _spec(sensitive=sens, intersectional=True, seed=run))
        d = res.disparities
        top = d[d["attribute"] == "s1 & s2 & s3"]
        assert top["group"].nunique() + 1 == 40  # 40 groups, one is the reference
        assert set(d["attribute"]) == {"s1", "s2", "s3", "s1 & s2", "s1 & s3", "s2 & s3",
                                       "s1 & s2 & s3"}
        assert d["p_value"].notna().sum() > 500  # the tests did run
        clean += not d["significant"].any()
    # With no true gaps every discovery is false, so BH's false discovery
    # rate equals P(>= 1 significant) and is <= alpha = 0.05 per run (for
    # independent or positively dependent tests, as overlapping groups are).
    # At 5% per run, P(3 or more of 20 runs not clean) = 7.5%; at the ~0%
    # seen in practice (the smallest adjusted p is far above 0.05) it is nil.
    assert clean >= 18, clean

    res = audit(_null_world(seed=7999), _spec(sensitive=sens, intersectional=True,
                                               correction="holm", seed=3))
    assert not res.disparities["significant"].any()
    assert res.provenance["statistics"]["correction"] == "Holm"


# ---------------------------------------------------------------------------
# 8. A tiny group gets no verdict, and the rows it would need
# ---------------------------------------------------------------------------
def test_tiny_group_is_insufficient():
    rng = np.random.default_rng(8)
    df = _table({"A": (600, 0.5, 0.5), "B": (500, 0.5, 0.45), "C": (12, 0.5, 0.5)}, rng)
    # make sure the tiny group has both outcomes and both decisions
    df.loc[df.index[df.g == "C"], ["y", "pred"]] = np.array(
        [[0, 0], [0, 1], [1, 0], [1, 1]] * 3)
    res = audit(df, _spec(seed=2))
    dc = res.disparities[res.disparities["group"] == "C"]
    assert set(dc["metric"]) == set(DISPARITY_METRICS)
    assert (dc["verdict"] == "insufficient").all()
    assert dc["verdict_reason"].str.contains("12 rows").all()
    need = _one(dc, metric=SEL)["rows_needed"]
    assert np.isfinite(need) and need >= 30
    found = [f for f in res.findings if f["kind"] == "insufficient"]
    assert len(found) == 1
    assert "C" in found[0]["groups"] and "'C'" in found[0]["text"]
    assert "12" in found[0]["text"]


# ---------------------------------------------------------------------------
# 9. Power: rows_for_power agrees with simulation
# ---------------------------------------------------------------------------
def _simulated_power(p_ref, d_ref, p_alt, d_alt, alpha, draws, rng):
    x_ref = rng.binomial(int(d_ref), p_ref, size=draws)
    x_alt = rng.binomial(int(d_alt), p_alt, size=draws)
    pv = two_proportion_p(x_alt, d_alt, x_ref, d_ref)
    # the library's test against an independent one on the same draws
    np.testing.assert_allclose(pv, _pooled_z_p(x_alt, d_alt, x_ref, d_ref), rtol=1e-9)
    return float(np.mean(pv < alpha))


@pytest.mark.parametrize("p_ref,d_ref,p_alt,alpha,power", [
    (0.5, 2000, 0.4, 0.05, 0.8),
    (0.2, 5000, 0.16, 0.05, 0.8),
    (0.3, 100, 0.2, 0.05, 0.8),      # reference too small: equal sizes for both
    (0.6, 800, 0.75, 0.01, 0.8),     # a gap upwards, a stricter alpha
])
def test_rows_for_power_matches_simulation(p_ref, d_ref, p_alt, alpha, power):
    need_g, need_r = rows_for_power(p_ref, d_ref, p_alt, alpha, power)
    need_g, need_r = float(need_g), float(need_r)
    assert np.isfinite(need_g) and need_g > 0
    assert need_r >= d_ref
    rng = np.random.default_rng(int(1000 * p_ref + d_ref))
    sim = _simulated_power(p_ref, need_r, p_alt, need_g, alpha, 4000, rng)
    assert sim == pytest.approx(power, rel=0.20), (need_g, need_r, sim)
    # and at half those rows the power is clearly lower
    sim_half = _simulated_power(p_ref, need_r, p_alt, max(1, need_g // 2), alpha, 4000, rng)
    assert sim_half < sim - 0.1


def test_rows_for_power_no_gap_is_nan():
    g, r = rows_for_power(0.3, 500, 0.3, 0.05, 0.8)
    assert math.isnan(float(g)) and math.isnan(float(r))


def test_audit_rows_needed_gives_the_power():
    # reference: 1000 rows, 50% selected; small group: 40 rows, 35% selected.
    # ratio 0.7 fails the 0.8 band; the pooled z-test gives p = 0.063 (below).
    df = _exact_table({
        "A": dict(tn=250, fp=250, fn=250, tp=250),
        "B": dict(tn=13, fp=7, fn=13, tp=7),
    })
    res = audit(df, _spec(seed=4))
    d = _one(res.disparities, metric=SEL, group="B")
    assert d["verdict"] == "fail"
    assert d["p_value"] == pytest.approx(float(_pooled_z_p(14, 40, 500, 1000)), rel=1e-9)
    assert d["p_value"] > 0.05 and not bool(d["significant"])
    assert d["more_rows_needed"] > 0
    assert d["rows_needed"] == d["more_rows_needed"] + 40
    f = [f for f in res.findings if f["metric"] == SEL and f["group"] == "B"]
    assert len(f) == 1 and f[0]["severity"] == "low"
    # a group of rows_needed rows with a tolerance-sized gap (0.5 * 0.8 = 0.4)
    # against the 1000-row reference is detected at alpha with ~80% power
    rng = np.random.default_rng(99)
    sim = _simulated_power(0.5, 1000, 0.5 * 0.8, int(d["rows_needed"]), 0.05, 4000, rng)
    assert sim == pytest.approx(0.8, rel=0.20), (d["rows_needed"], sim)


# ---------------------------------------------------------------------------
# 10. Reproducibility and the JSON contract
# ---------------------------------------------------------------------------
def _ci_cols(df):
    return [c for c in df.columns if "_ci_" in c]


def _two_group_data(seed=10):
    rng = np.random.default_rng(seed)
    return _table({"A": (500, 0.45, 0.5), "B": (350, 0.4, 0.38), "C": (200, 0.5, 0.45)},
                  rng)


def test_same_seed_same_numbers_different_seed_different_bootstrap():
    df = _two_group_data()
    r1 = audit(df, _spec(seed=123))
    r2 = audit(df.copy(), _spec(seed=123))
    pd.testing.assert_frame_equal(r1.groups, r2.groups)
    pd.testing.assert_frame_equal(r1.disparities, r2.disparities)
    pd.testing.assert_frame_equal(r1.summary.drop(columns="groups_below_min_size"),
                                  r2.summary.drop(columns="groups_below_min_size"))
    assert r1.to_dict()["findings"] == r2.to_dict()["findings"]

    r3 = audit(df, _spec(seed=124))
    # Wilson intervals do not depend on the seed ...
    np.testing.assert_array_equal(r1.groups["selection_rate_ci_low"],
                                  r3.groups["selection_rate_ci_low"])
    # ... bootstrap intervals change, but only by Monte-Carlo noise
    a, b = r1.groups["f1_ci_low"].to_numpy(), r3.groups["f1_ci_low"].to_numpy()
    assert np.isfinite(a).all() and np.isfinite(b).all()
    assert (a != b).any()
    assert np.max(np.abs(a - b)) < 0.02
    a, b = r1.disparities["ratio_ci_low"].to_numpy(), r3.disparities["ratio_ci_low"].to_numpy()
    ok = np.isfinite(a)
    assert ok.sum() > 10 and (a[ok] != b[ok]).any()
    assert np.max(np.abs(a[ok] - b[ok])) < 0.05


def test_balanced_accuracy_has_seed_dependent_bootstrap_interval():
    df = _two_group_data()
    r1, r3 = audit(df, _spec(seed=123)), audit(df, _spec(seed=124))
    a, b = r1.groups["balanced_accuracy_ci_low"], r3.groups["balanced_accuracy_ci_low"]
    assert a.notna().all() and b.notna().all()
    assert (a != b).any() and (a - b).abs().max() < 0.02
    assert (r1.groups["balanced_accuracy_ci_low"] <= r1.groups["balanced_accuracy"]).all()
    assert (r1.groups["balanced_accuracy"] <= r1.groups["balanced_accuracy_ci_high"]).all()


def test_balanced_accuracy_disparity_is_tested():
    res = audit(_two_group_data(), _spec(seed=123))
    d = res.disparities[res.disparities["metric"] == "balanced_accuracy"]
    assert len(d) == 2
    assert d["p_value"].between(0, 1).all()
    assert (d["test"] == "Wald test (bootstrap standard error)").all()


def test_json_contract():
    df = _two_group_data()
    spec = _spec(seed=4242)
    res = audit(df, spec)
    out = res.to_dict()
    text = json.dumps(out, allow_nan=False)  # no NaN / inf leaks into JSON
    assert json.loads(text)["provenance"]["bootstrap_seed"] == 4242
    assert out["provenance"]["bootstrap_seed"] == spec.seed
    assert len(out["groups"]) == 3
    for rec in out["groups"]:
        for m in REGISTRY:
            assert f"{m}_ci_low" in rec and f"{m}_ci_high" in rec, (m, rec["group"])
    assert len(out["disparities"]) == 2 * len(DISPARITY_METRICS)
    for rec in out["disparities"]:
        for k in ("difference_ci_low", "difference_ci_high", "ratio_ci_low",
                  "ratio_ci_high", "p_value", "p_value_adjusted", "significant"):
            assert k in rec, k
        assert isinstance(rec["significant"], bool)
        if rec["p_value"] is not None:
            assert 0 <= rec["p_value"] <= rec["p_value_adjusted"] <= 1
    assert out["findings"]
    for f in out["findings"]:
        for k in ("severity", "text", "attribute", "group", "metric"):
            assert k in f, (k, f)
    # the selection-rate interval in the JSON is scipy's Wilson interval
    for rec in out["groups"]:
        sub = df[df.g == rec["group"]]
        ci = st.binomtest(int(sub.pred.sum()), len(sub)).proportion_ci(0.95, method="wilson")
        assert rec["selection_rate_ci_low"] == pytest.approx(ci.low, abs=1e-12)
        assert rec["selection_rate_ci_high"] == pytest.approx(ci.high, abs=1e-12)


# ---------------------------------------------------------------------------
# 11. Undefined stays undefined
# ---------------------------------------------------------------------------
def test_undefined_rate_has_no_interval_and_no_test():
    df = _exact_table({
        "A": dict(tn=200, fp=100, fn=80, tp=120),
        "B": dict(tn=150, fp=60, fn=50, tp=90),
        "P": dict(fn=40, tp=60),        # no actual negatives: FPR = 0/0
    })
    res = audit(df, _spec(seed=11))
    gp = _one(res.groups, attribute="g", group="P")
    assert math.isnan(gp["fpr"]) and math.isnan(gp["tnr"])
    for m in ("fpr", "tnr"):
        assert math.isnan(gp[f"{m}_ci_low"]) and math.isnan(gp[f"{m}_ci_high"])
    # its TPR is defined: 60 / 100, with scipy's Wilson interval
    ci = st.binomtest(60, 100).proportion_ci(0.95, method="wilson")
    assert gp["tpr"] == pytest.approx(0.6)
    assert gp["tpr_ci_low"] == pytest.approx(ci.low, abs=1e-12)
    for m in ("fpr", "tnr"):
        d = _one(res.disparities, metric=m, group="P")
        assert d["verdict"] == "insufficient"
        assert math.isnan(d["p_value"]) and math.isnan(d["p_value_adjusted"])
        assert bool(d["significant"]) is False
        for c in ("difference_ci_low", "difference_ci_high", "ratio_ci_low", "ratio_ci_high"):
            assert math.isnan(d[c]), c
    # the undefined tests do not count in the correction: the B-vs-A
    # selection-rate test is adjusted over the defined p-values only
    p = res.disparities["p_value"].to_numpy()
    np.testing.assert_allclose(res.disparities["p_value_adjusted"],
                               _bh_with_nan(p), rtol=1e-12, equal_nan=True)
    json.dumps(res.to_dict(), allow_nan=False)


def _bh_with_nan(p):
    out = np.full(len(p), np.nan)
    ok = ~np.isnan(p)
    out[ok] = _bh_by_hand(p[ok])
    return out


# ---------------------------------------------------------------------------
# 12. Sample weights
# ---------------------------------------------------------------------------
def test_weighted_audit_intervals_and_p_values():
    rng = np.random.default_rng(12)
    df = _table({"A": (600, 0.5, 0.5), "B": (400, 0.4, 0.35)}, rng)
    df["w"] = rng.uniform(0.2, 3.0, len(df)).round(3)
    res = audit(df, _spec(weight="w", seed=5))
    assert res.provenance["weighted"] is True
    for name in ("A", "B"):
        sub = df[df.g == name]
        want = float((sub.w * sub.pred).sum() / sub.w.sum())   # weighted, by hand
        row = _one(res.groups, attribute="g", group=name)
        assert row["selection_rate"] == pytest.approx(want, rel=1e-12)
        lo, hi = row["selection_rate_ci_low"], row["selection_rate_ci_high"]
        assert np.isfinite(lo) and np.isfinite(hi)
        assert lo < want < hi
        assert 0 < hi - lo < 0.2
    methods = res.provenance["statistics"]["group_intervals"]
    assert methods[SEL] == "bootstrap percentile"
    p = res.disparities["p_value"].dropna()
    assert len(p) > 0 and p.between(0, 1).all()
    assert res.disparities["p_value_adjusted"].dropna().between(0, 1).all()
    json.dumps(res.to_dict(), allow_nan=False)


def test_weighted_count_bootstrap_matches_weighted_row_bootstrap():
    rng = np.random.default_rng(121)
    n = 400
    g = np.repeat([0, 1], n // 2)
    y = (rng.random(n) < 0.5).astype(int)
    p = (rng.random(n) < 0.4).astype(int)
    w = np.exp(rng.standard_normal(n))          # survey-like weights, CV about 1.3
    cell = 2 * y + p
    row_cells = np.zeros((2, 4), dtype=np.int64)
    np.add.at(row_cells, (g, cell), 1)
    w_cells = np.zeros((2, 4))
    np.add.at(w_cells, (g, cell), w)
    sq_cells = np.zeros((2, 4))
    np.add.at(sq_cells, (g, cell), w ** 2)
    B = 4000
    draws = bootstrap_cells(row_cells, B, np.random.default_rng(1), w_cells, sq_cells)
    sel_count = metric_values(aggregate(draws, np.arange(2), 2))[SEL]
    # resample rows with replacement, each row keeping its own weight
    idx = np.random.default_rng(2).integers(0, n, size=(B, n))
    gb, pb, wb = g[idx], p[idx], w[idx]
    sel_rows = np.stack([(wb * pb * (gb == j)).sum(1) / (wb * (gb == j)).sum(1)
                         for j in range(2)], axis=1)
    for j in range(2):
        # relative MC error of each SD is about 1.1% (see the unweighted test)
        assert sel_count[:, j].std(ddof=1) == pytest.approx(sel_rows[:, j].std(ddof=1),
                                                            rel=0.10), j


def test_finish_tests_with_counts_of_each_part_equals_counting_again():
    """The audit hands each model's disparity counts on to the correction
    of all p-values; the result equals counting them again from the table."""
    from fairness_core.stats import Proportions, finish_tests
    from fairness_core.stats.tests import FINISHED_COLUMNS
    rng = np.random.default_rng(45)
    n = 3000
    df = pd.DataFrame({"g": rng.choice(list("abc"), n, p=[0.6, 0.3, 0.1]),
                       "y": rng.integers(0, 2, n), "p1": rng.integers(0, 2, n),
                       "p2": (rng.random(n) < 0.3).astype(int)})
    result = audit(df, _spec(predictions=["p1", "p2"], sensitive=["g"], n_bootstrap=100))
    # one model's rows, then the other's: the table of two audit parts
    full = result.disparities.sort_values("model", kind="stable").reset_index(drop=True)
    disp = full.drop(columns=["p_value_adjusted", "significant", "rows_needed",
                              "more_rows_needed", "reference_rows_needed"])
    groups = result.groups
    parts = [Proportions.of(disp[disp["model"] == m], groups, False) for m in ("p1", "p2")]
    counts = Proportions.concat(parts)
    assert len(counts.n1) == len(disp) and counts.known.sum() > 10
    again = finish_tests(disp, groups, result.spec, False)
    handed = finish_tests(disp, groups, result.spec, False, counts=counts)
    pd.testing.assert_frame_equal(again, handed)
    pd.testing.assert_frame_equal(handed[list(FINISHED_COLUMNS)], full[list(FINISHED_COLUMNS)])
