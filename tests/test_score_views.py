"""Score views per group, checked against a computation of each group alone:
scikit-learn's ``roc_auc_score``, ``brier_score_loss`` and
``calibration_curve``, and plain sums over the rows at each curve threshold.

The table is large enough for the fine bins to be summed in many steps (and
its counts, scaled up, for the double-precision route), with weights, three
sensitive columns and their intersections, a score counted per distinct
value, one counted in 65,536 fine bins and one outside [0, 1].
"""
from __future__ import annotations

import dataclasses
import itertools
import warnings

import numpy as np
import pandas as pd
import pytest
import sklearn.metrics as skm
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.calibration import calibration_curve

import ibis
from fairness_core import AuditSpec, audit, charts
from fairness_core.audit import Auditor, run_audit
from fairness_core.counts import GroupIndex
from fairness_core.engine import engine_records, prepare_records
from fairness_core.formatting import pct
from fairness_core.prepare import prepare
from fairness_core.scores import (FINE_BINS, N_DIST_BINS, bin_scores, count_scores, even_edges,
                                  even_points, even_width, fine_bins, fine_edges, score_analysis,
                                  split_edges)

COLS = ["sex", "race", "age"]
MAX_EXACT = 1000  # "exact" has 201 distinct values, "fine" about 20,000


def _table(weighted: bool, n: int = 20_000, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    race = rng.choice(["A", "B", "C"], n, p=[0.7, 0.2, 0.1])
    z = rng.normal(size=n) + 0.3 * (race == "B")
    y = (z + rng.normal(0, 1, n) > 0.4).astype(int)
    fine = 1 / (1 + np.exp(-1.5 * z))
    df = pd.DataFrame({
        "y": y, "fine": fine, "exact": np.round(fine * 200) / 200,
        "wide": np.round(z * 3, 1),  # outside [0, 1]: no calibration, no Brier score
        "sex": rng.choice(["f", "m"], n), "race": race,
        "age": rng.choice(["18-30", "31-50", "51-70", "71+"], n, p=[0.3, 0.4, 0.25, 0.05]),
    })
    if weighted:
        df["w"] = np.round(rng.uniform(0.2, 4.0, n), 2)
    return df


def _spec(weighted: bool) -> AuditSpec:
    return AuditSpec(label="y", positive="1", scores=["fine", "exact", "wide"], threshold=0.5,
                     sensitive=COLS, intersectional=True, weight="w" if weighted else None)


def _groups(df: pd.DataFrame) -> list:
    """(attribute, group, row mask) for every group of every attribute."""
    out = []
    for r in range(1, len(COLS) + 1):
        for cols in itertools.combinations(COLS, r):
            keys = df[cols[0]].astype(str)
            for c in cols[1:]:
                keys = keys + " & " + df[c].astype(str)
            keys = keys.to_numpy()
            out += [(" & ".join(cols), g, keys == g) for g in sorted(set(keys))]
    return out + [("(overall)", "(all)", np.ones(len(df), bool))]


def _by_group(frame: pd.DataFrame) -> dict:
    """(model, attribute, group) -> that group's rows of ``frame``."""
    return {k: frame.iloc[i] for k, i in
            frame.groupby(["model", "attribute", "group"], sort=False).indices.items()}


def _below(s, y, w, thresholds):
    """Negatives and positives scored below each threshold, by sorting the
    group's rows (weights summed)."""
    order = np.argsort(s, kind="stable")
    s, y, w = s[order], y[order], w[order]
    cut = np.searchsorted(s, thresholds, side="left")
    cum_n = np.r_[0.0, np.cumsum(w * (y == 0))]
    cum_p = np.r_[0.0, np.cumsum(w * (y == 1))]
    return cum_n[cut], cum_p[cut]


def _check(res: dict, df: pd.DataFrame, weighted: bool, scale: float = 1.0) -> None:
    y = df["y"].to_numpy()
    w_all = df["w"].to_numpy() if weighted else np.ones(len(df))
    auc, curves, cal, sums, dist = (_by_group(res[k]) for k in (
        "auc", "curves", "calibration", "sums", "distribution"))
    groups = _groups(df)
    n_groups = 0
    for model in ("fine", "exact", "wide"):
        s_all = df[model].to_numpy()
        lo, hi = s_all.min(), s_all.max()
        fine = model == "fine"
        if fine:  # the reference AUC is that of each row's fine bin; the tie bound too
            edges = fine_edges(lo, hi, 0.5, FINE_BINS, split_edges(lo, hi))
            bin_all = np.searchsorted(edges, s_all, side="right")
        for attr, grp, m in groups:
            n_groups += 1
            s, yt, w = s_all[m], y[m], w_all[m]
            wt = w if weighted else None
            key = (model, attr, grp)
            assert len(auc[key]) == 1
            r = auc[key].iloc[0]
            assert r["positives"] == pytest.approx(scale * w[yt == 1].sum(), rel=1e-12)
            assert r["negatives"] == pytest.approx(scale * w[yt == 0].sum(), rel=1e-12)
            if fine:
                b = bin_all[m]
                want = skm.roc_auc_score(yt, b, sample_weight=wt)
                per_bin = pd.DataFrame({"b": b, "p": w * yt, "n": w * (1 - yt)}) \
                    .groupby("b").sum()
                bound = 0.5 * (per_bin["p"] * per_bin["n"]).sum() \
                    / (w[yt == 1].sum() * w[yt == 0].sum())
                assert r["auc_error_bound"] == pytest.approx(bound, rel=1e-12, abs=1e-15)
                true_auc = skm.roc_auc_score(yt, s, sample_weight=wt)
                assert abs(r["auc"] - true_auc) <= r["auc_error_bound"] + 1e-12
            else:
                want = skm.roc_auc_score(yt, s, sample_weight=wt)
                assert r["auc_error_bound"] == 0
            assert abs(r["auc"] - want) <= 1e-12, (model, attr, grp)
            if model != "wide":
                assert r["brier"] == pytest.approx(
                    skm.brier_score_loss(yt, s, sample_weight=wt), rel=1e-12)
            else:
                assert np.isnan(r["brier"])

            # the confusion counts at every curve threshold
            c = curves[key]
            assert (c["threshold"] == 0.5).any() or not lo <= 0.5 <= hi
            t = c["threshold"].to_numpy()
            neg_below, pos_below = _below(s, yt, w, t)
            tot = scale * w.sum()
            np.testing.assert_allclose(c["tn"], scale * neg_below, rtol=1e-12, atol=1e-12 * tot)
            np.testing.assert_allclose(c["fn"], scale * pos_below, rtol=1e-12, atol=1e-12 * tot)
            np.testing.assert_allclose(c["fp"], scale * (w[yt == 0].sum() - neg_below),
                                       rtol=1e-12, atol=1e-12 * tot)
            np.testing.assert_allclose(c["tp"], scale * (w[yt == 1].sum() - pos_below),
                                       rtol=1e-12, atol=1e-12 * tot)

            # the mean score's sufficient statistics
            sm = sums[key].iloc[0]
            assert sm["n"] == round(scale * m.sum())
            assert sm["weight"] == pytest.approx(scale * w.sum(), rel=1e-12)
            assert sm["sum_score"] == pytest.approx(scale * (w * s).sum(), rel=1e-12)
            assert sm["sum_score_sq"] == pytest.approx(scale * (w * s * s).sum(), rel=1e-12)
            assert sm["sum_weight_sq"] == pytest.approx(
                scale * ((w * w).sum() if weighted else m.sum()), rel=1e-12)

            # the score distribution: even bins of the range, a fine-binned score
            # placed by its bin's lower edge, the last bin holding its upper edge
            d_edges = np.linspace(lo, hi, N_DIST_BINS + 1)
            placed = edges[bin_all[m] - 1] if fine else s
            d_bin = np.clip(np.searchsorted(d_edges, placed, side="right") - 1, 0,
                            N_DIST_BINS - 1)
            d = dist[key].sort_values("bin")
            np.testing.assert_allclose(
                d["weight"], scale * np.bincount(d_bin, weights=w, minlength=N_DIST_BINS),
                rtol=1e-12, atol=1e-12 * tot)

            # calibration: scikit-learn's uniform bins
            if model == "wide":
                assert key not in cal
                continue
            cg = cal[key].sort_values("bin")
            cal_bin = np.searchsorted(np.linspace(0, 1, 11)[1:-1], s)
            nonempty = np.flatnonzero(np.bincount(cal_bin, minlength=10))
            np.testing.assert_array_equal(cg["bin"], nonempty)
            np.testing.assert_array_equal(
                cg["n"], np.round(scale * np.bincount(cal_bin, minlength=10)[nonempty]))
            if not weighted:
                prob_true, prob_pred = calibration_curve(yt, s, n_bins=10, strategy="uniform")
                np.testing.assert_allclose(cg["observed_rate"], prob_true, rtol=1e-12)
                np.testing.assert_allclose(cg["mean_score"], prob_pred, rtol=1e-12)
            else:
                bw = np.bincount(cal_bin, weights=w, minlength=10)[nonempty]
                np.testing.assert_allclose(cg["weight"], scale * bw, rtol=1e-12)
                np.testing.assert_allclose(
                    cg["observed_rate"],
                    np.bincount(cal_bin, weights=w * yt, minlength=10)[nonempty] / bw,
                    rtol=1e-12)
                np.testing.assert_allclose(
                    cg["mean_score"],
                    np.bincount(cal_bin, weights=w * s, minlength=10)[nonempty] / bw,
                    rtol=1e-12)
    assert len(res["auc"]) == n_groups  # every group once, nothing more


@pytest.mark.parametrize("weighted", [False, True])
def test_score_views_equal_each_group_computed_alone(weighted):
    df = _table(weighted)
    prepared = prepare(df, _spec(weighted))
    res = score_analysis(prepared, max_exact_values=MAX_EXACT)
    index = GroupIndex.build(prepared)
    counted = count_scores(prepared, index, "fine", max_exact_values=MAX_EXACT)
    assert not counted.exact and counted.n_bins > FINE_BINS
    assert count_scores(prepared, index, "exact", max_exact_values=MAX_EXACT).exact
    _check(res, df, weighted)


def test_score_views_of_large_counts_are_exact():
    """Counts too large for single precision (every row counted 3,000 times)
    take the double-precision route: the AUC, its bound and the calibration
    are unchanged, every count 3,000 times larger."""
    df = _table(False, n=6000, seed=11)
    prepared = prepare(df, _spec(False))
    index = GroupIndex.build(prepared)
    scale = 3000
    counts = {}
    for m in prepared.scores:
        sc = count_scores(prepared, index, m, max_exact_values=MAX_EXACT)
        cal = None if sc.calibration is None else tuple(c * scale for c in sc.calibration)
        counts[m] = dataclasses.replace(sc, counts=sc.counts * scale, calibration=cal,
                                        moments=tuple(x * scale for x in sc.moments))
    assert counts["fine"].counts.sum() > 1 << 24
    res = score_analysis(prepared, index, counts=counts)
    _check(res, df, False, scale=scale)


def test_score_views_from_running_sums():
    """Score counts that keep only their running sums (as once an auditor
    moved a threshold) give the same views."""
    df = _table(True, n=4000, seed=5)
    prepared = prepare(df, _spec(True))
    index = GroupIndex.build(prepared)
    counts = {m: count_scores(prepared, index, m, max_exact_values=MAX_EXACT)
              for m in prepared.scores}
    for sc in counts.values():
        sc.cumulative()
        assert sc.counts is None
    _check(score_analysis(prepared, index, counts=counts), df, True)


def test_binning_scores_whose_edges_lie_a_few_floats_apart_raises_no_warning():
    """Edges a few floats apart (a score that barely varies) make the grid's
    step tiny, so the first guess overflows; it is clipped, the bins are
    still exact, and no numpy warning reaches the user."""
    lo = 1e6
    edges = np.array([lo, np.nextafter(lo, np.inf), np.nextafter(np.nextafter(lo, np.inf),
                                                                 np.inf)])
    s = np.array([-1e308, lo, edges[1], edges[2], 1e308])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = bin_scores(s, edges)
    np.testing.assert_array_equal(got, np.searchsorted(edges, s, side="right"))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=300),
       st.floats(-1e6, 1e6, allow_nan=False), st.integers(1, 5000), st.booleans(),
       st.integers(0, 3))
def test_fine_bins_equal_a_binary_search(values, threshold, n_bins, unit, copies):
    """Scores placed in fine bins by arithmetic land where a binary search
    over the edges puts them: also right on an edge, one float either side
    of it, on the threshold and on the calibration edges."""
    s = np.asarray(values)
    if unit:  # scores in [0, 1], whose calibration edges are fine edges too
        s = np.abs(s) / (np.abs(s).max() or 1.0)
        threshold = abs(threshold) / 1e6
    lo, hi = float(s.min()), float(s.max())
    extra = split_edges(lo, hi)
    edges = fine_edges(lo, hi, threshold, n_bins, extra)
    on = edges[(edges >= lo) & (edges <= hi)][::max(1, len(edges) // 50)]
    near = np.concatenate([on, np.nextafter(on, -np.inf), np.nextafter(on, np.inf)])
    s = np.concatenate([s] + [near[(near >= lo) & (near <= hi)]] * copies)
    got = fine_bins(s, edges, lo, hi, n_bins, np.r_[threshold, extra])
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, np.searchsorted(edges, s, side="right"))


def _stretched(n: int, extremes, seed: int = 5) -> pd.DataFrame:
    """Informative scores in [0, 1] for two groups, a few of them replaced
    by ``extremes`` (huge values, or a code for a missing score)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    s = np.clip(rng.normal(0.4 + 0.2 * y, 0.2), 0, 1)
    s[rng.choice(n, len(extremes), replace=False)] = extremes
    return pd.DataFrame({"y": y, "s": s, "g": rng.choice(["a", "b"], n)})


@pytest.mark.parametrize("extremes", [[-1.7e308, 1.7e308], [-999.0] * 40],
                         ids=["beyond the largest span", "a missing-value code"])
def test_scores_stretched_by_extreme_values_get_an_honest_auc_and_a_warning(extremes):
    df = _stretched(100_000, extremes)
    spec = AuditSpec(label="y", positive=1, scores=["s"], threshold=0.5, sensitive=["g"])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no numpy overflow reaches the user
        results = {"memory": audit(df, spec),
                   "duckdb": run_audit(prepare_records(*engine_records(ibis.memtable(df), spec),
                                                       spec))}
    for where, r in results.items():
        auc = r.scores["auc"]
        for group, rows in [("(all)", df), *df.groupby("g")]:
            a = auc[auc["group"] == group].iloc[0]
            truth = skm.roc_auc_score(rows["y"], rows["s"])
            assert 0.0005 <= a["auc_error_bound"] <= 0.25, (where, group)
            assert abs(a["auc"] - truth) <= a["auc_error_bound"] + 1e-12, (where, group)
        g = r.groups.set_index(["attribute", "group"])
        for group, rows in df.groupby("g"):
            assert g.loc[("g", group), "selection_rate"] == (rows["s"] >= 0.5).mean()
        said = [w for w in r.warnings if "AUC of the score column 's' is known only" in w]
        assert len(said) == 1 and "missing value" in said[0], where
        lo, hi = min(extremes), max(1.0, max(extremes))
        assert f"from {lo:g} to {hi:g}" in said[0]
        # the ROC legend writes each group's AUC with its bound
        roc = charts.roc_chart(r.scores["curves"], r.groups, model="s", attribute="g",
                               auc=auc)
        names = [t.name for t in roc.data if t.name]
        for group in ("a", "b"):
            a = auc[(auc["attribute"] == "g") & (auc["group"] == group)].iloc[0]
            shown = f"{group} (AUC {a['auc']:.3f} ± {a['auc_error_bound']:.3f})"
            assert shown in names, (where, names)
        if max(map(abs, extremes)) < 1e10:  # (a sum through 1.7e308 depends on its order)
            means = r.scores["means"].set_index("group")
            assert np.isclose(means.loc["(all)", "mean_score"], df["s"].mean(), rtol=1e-9)


def test_ordinary_scores_get_no_auc_warning():
    df = _stretched(100_000, [])
    r = audit(df, AuditSpec(label="y", positive=1, scores=["s"], threshold=0.5,
                            sensitive=["g"]))
    assert r.scores["auc"]["auc_error_bound"].max() < 0.0005
    assert not [w for w in r.warnings if "AUC" in w]


def test_even_edges_equal_the_plain_formula_and_stay_finite_beyond_the_largest_span():
    steps = np.arange(FINE_BINS)
    for lo, hi in [(0.0, 1.0), (-3.5, 812.25), (300.0, 850.0), (1e-9, 2e-9)]:
        width = (hi - lo) / FINE_BINS
        assert even_width(lo, hi, FINE_BINS) == width
        assert np.array_equal(even_points(lo, width, steps), lo + width * steps)
        assert np.array_equal(fine_edges(lo, hi, lo, FINE_BINS), lo + width * steps)
        assert np.array_equal(even_edges(lo, hi, 20), np.linspace(lo, hi, 21))
    lo, hi = -1.7e308, 1.75e308
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        edges = fine_edges(lo, hi, 0.5, FINE_BINS)
        dist = even_edges(lo, hi, 20)
    for e in (edges, dist):
        assert np.isfinite(e).all() and (np.diff(e) > 0).all()
    assert edges[0] == lo and dist[0] == lo and dist[-1] == hi and 0.5 in edges
    # the same edges as at full scale, where the full scale does not overflow
    width = even_width(lo, hi, FINE_BINS)
    small = steps[:FINE_BINS // 4]
    assert np.array_equal(edges[:len(small)], lo + width * small)


def test_an_automatic_threshold_stretched_by_a_missing_value_code_is_questioned():
    df = _stretched(20_000, [-999.0] * 30)
    spec = AuditSpec(label="y", positive=1, scores=["s"], sensitive=["g"])
    for r in (audit(df, spec), Auditor(df, spec).run()):  # the library, the dashboard
        thr = r.provenance["thresholds"]["s"]["threshold"]
        assert thr == (-999 + df["s"].max()) / 2  # the middle of the range
        share = (df["s"] >= thr).mean()
        said = [w for w in r.warnings if w.startswith("The threshold of the score column 's'")]
        assert len(said) == 1 and f"gives {pct(share, 2)} of the rows" in said[0], said
        assert "(-999 to 1)" in said[0]
    # a given threshold, or one that splits the rows, is not questioned
    deciles = df.assign(s=np.ceil(df["s"].clip(0.001, 1) * 10))
    for data, kw in ((df, {"threshold": 0.5}), (deciles, {})):
        r = audit(data, AuditSpec(label="y", positive=1, scores=["s"], sensitive=["g"], **kw))
        assert not [w for w in r.warnings if w.startswith("The threshold of")], kw
