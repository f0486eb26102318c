"""Differential tests: every number equals fairlearn's / scikit-learn's on
the same data, to 1e-9, over random tables with tiny groups, empty cells,
weights, string labels and intersections (hypothesis).

Deliberate, documented difference: where a rate is 0/0 (e.g. the TPR of a
group with no actual positives) scikit-learn and fairlearn report 0; we
report it as undefined and leave that group out of between-group
summaries.  Those cases are checked against fairlearn run on the groups
where the rate is defined.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fairlearn.metrics as flm
import sklearn.metrics as skm
from sklearn.calibration import calibration_curve

from fairness_core import AuditSpec, audit
from fairness_core.disparity import between, between_summaries

TOL = 1e-9
LABELS = {  # representation -> (positive, negative)
    "int": (1, 0), "bool": (True, False), "yesno": ("yes", "no"), "adult": (">50K", "<=50K"),
}


@st.composite
def tables(draw):
    n = draw(st.integers(2, 60))
    rep = draw(st.sampled_from(sorted(LABELS)))
    pos, neg = LABELS[rep]
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    base = draw(st.floats(0.0, 1.0))
    y = rng.random(n) < base
    n_models = draw(st.integers(1, 2))
    preds = {}
    for m in range(n_models):
        flip = draw(st.floats(0.0, 1.0))
        preds[f"model_{m}"] = np.where(rng.random(n) < flip, ~y, y)
    ga = draw(st.integers(1, 4))
    gb = draw(st.integers(1, 3))
    pa = rng.dirichlet(np.ones(ga) * 0.5)
    sex = rng.choice([f"g{i}" for i in range(ga)], size=n, p=pa)
    grp = rng.choice(np.arange(gb), size=n)
    # scores with ties: a coarse grid
    score = np.round(rng.random(n) * draw(st.sampled_from([4, 10, 1000])), 0)
    score = score / score.max() if score.max() > 0 else score
    weighted = draw(st.booleans())
    df = pd.DataFrame({
        "label": np.where(y, pos, neg).astype(object) if rep != "int" else y.astype(int),
        **{m: (np.where(p, pos, neg).astype(object) if rep != "int" else p.astype(int))
           for m, p in preds.items()},
        "score": score, "sex": sex, "grp": grp,
    })
    if rep == "bool":
        df["label"] = y
        for m, p in preds.items():
            df[m] = p
    w = None
    if weighted:
        w = np.round(rng.uniform(0.1, 5.0, n), 3)
        df["w"] = w
    return df, y.astype(int), {m: p.astype(int) for m, p in preds.items()}, w, pos


def _spec(df, pos, weighted, models, **kw):
    return AuditSpec(label="label", predictions=models, scores=["score"], threshold=0.5,
                     sensitive=["sex", "grp"], intersectional=True,
                     positive=str(pos), weight="w" if weighted else None,
                     min_group_size=1, **kw)


def _close(a, b):
    a, b = float(a), float(b)
    if np.isnan(a) or np.isnan(b):
        return np.isnan(a) and np.isnan(b)
    return abs(a - b) <= TOL


SK_METRICS = {
    "selection_rate": lambda yt, yp, w: flm.selection_rate(yt, yp, sample_weight=w),
    "tpr": lambda yt, yp, w: flm.true_positive_rate(yt, yp, sample_weight=w, pos_label=1),
    "fpr": lambda yt, yp, w: flm.false_positive_rate(yt, yp, sample_weight=w, pos_label=1),
    "tnr": lambda yt, yp, w: flm.true_negative_rate(yt, yp, sample_weight=w, pos_label=1),
    "fnr": lambda yt, yp, w: flm.false_negative_rate(yt, yp, sample_weight=w, pos_label=1),
    "accuracy": lambda yt, yp, w: skm.accuracy_score(yt, yp, sample_weight=w),
    "ppv": lambda yt, yp, w: skm.precision_score(yt, yp, sample_weight=w, zero_division=np.nan),
    "npv": lambda yt, yp, w: skm.precision_score(yt, yp, sample_weight=w, pos_label=0,
                                                 zero_division=np.nan),
    "f1": lambda yt, yp, w: skm.f1_score(yt, yp, sample_weight=w, zero_division=np.nan),
    "balanced_accuracy": lambda yt, yp, w: skm.balanced_accuracy_score(yt, yp,
                                                                       sample_weight=w),
    "base_rate": lambda yt, yp, w: np.average(yt, weights=w),
}
# the denominator of each rate, as a row mask within a group
DEFINED_BY = {"tpr": lambda yt, yp: yt == 1, "fnr": lambda yt, yp: yt == 1,
              "fpr": lambda yt, yp: yt == 0, "tnr": lambda yt, yp: yt == 0,
              "ppv": lambda yt, yp: yp == 1, "fdr": lambda yt, yp: yp == 1,
              "npv": lambda yt, yp: yp == 0, "for": lambda yt, yp: yp == 0,
              "f1": lambda yt, yp: (yt == 1) | (yp == 1)}

ATTRS = {"sex": ["sex"], "grp": ["grp"], "sex & grp": ["sex", "grp"]}


def _group_masks(df, cols):
    key = df[cols].astype(str).agg(" & ".join, axis=1)
    return {k: (key == k).to_numpy() for k in key.unique()}


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(tables())
def test_group_metrics_and_counts_equal_sklearn_fairlearn(data):
    df, yt, preds, w, pos = data
    res = audit(df, _spec(df, pos, w is not None, list(preds)))
    g = res.group_metrics
    for model, yp in list(preds.items()) + [("score", (df["score"] >= 0.5).astype(int)
                                                      .to_numpy())]:
        for attr, cols in ATTRS.items():
            rows = g[(g["model"] == model) & (g["attribute"] == attr)].set_index("group")
            masks = _group_masks(df, cols)
            assert set(rows.index) == set(masks)
            for grp, m in masks.items():
                r = rows.loc[grp]
                wt = w[m] if w is not None else None
                cm = skm.confusion_matrix(yt[m], yp[m], labels=[0, 1], sample_weight=wt)
                assert _close(r["tn"], cm[0, 0]) and _close(r["fp"], cm[0, 1])
                assert _close(r["fn"], cm[1, 0]) and _close(r["tp"], cm[1, 1])
                assert r["n"] == m.sum()
                for metric, fn in SK_METRICS.items():
                    ours = r[metric]
                    defined_mask = DEFINED_BY.get(metric)
                    if defined_mask is not None and not defined_mask(yt[m], yp[m]).any():
                        assert np.isnan(ours), (metric, grp)
                        continue
                    assert _close(ours, fn(yt[m], yp[m], wt)), (model, attr, grp, metric)
                if not np.isnan(r["ppv"]):
                    assert _close(r["fdr"], 1 - r["ppv"])
                if not np.isnan(r["npv"]):
                    assert _close(r["for"], 1 - r["npv"])
                assert _close(r["error_rate"], 1 - r["accuracy"])


def _fl_between(values: dict):
    v = [x for x in values.values() if not np.isnan(x)]
    if len(v) < 2:
        return np.nan, np.nan
    return max(v) - min(v), (min(v) / max(v) if max(v) > 0 else np.nan)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(tables())
def test_summaries_equal_fairlearn(data):
    df, yt, preds, w, pos = data
    res = audit(df, _spec(df, pos, w is not None, list(preds)))
    s = res.summary.set_index(["model", "attribute"])
    for model, yp in preds.items():
        for attr, cols in ATTRS.items():
            sf = df[cols] if len(cols) > 1 else df[cols[0]]
            row = s.loc[(model, attr)]
            kw = dict(sensitive_features=sf, sample_weight=w)
            n_groups = len(_group_masks(df, cols))
            if n_groups >= 2:
                assert _close(row["demographic_parity_difference"],
                              flm.demographic_parity_difference(yt, yp, **kw))
                fl_r = flm.demographic_parity_ratio(yt, yp, **kw)
                assert _close(row["demographic_parity_ratio"], fl_r)
            masks = _group_masks(df, cols)
            all_defined = all((yt[m] == 1).any() and (yt[m] == 0).any() for m in masks.values())
            if all_defined and n_groups >= 2:
                for agg, d_col, r_col in [("worst_case", "equalized_odds_difference",
                                           "equalized_odds_ratio"),
                                          ("mean", "average_odds_difference",
                                           "average_odds_ratio")]:
                    assert _close(row[d_col], flm.equalized_odds_difference(yt, yp, agg=agg,
                                                                             **kw))
                    parts = flm.MetricFrame(
                        metrics={"tpr": flm.true_positive_rate, "fpr": flm.false_positive_rate},
                        y_true=yt, y_pred=yp, sensitive_features=sf,
                        sample_params={"tpr": {"sample_weight": w},
                                       "fpr": {"sample_weight": w}}).ratio()
                    if parts.isna().any():
                        # a rate is 0 in every group: 0/0. fairlearn then returns the other
                        # part (or NaN, depending on order); we report undefined.
                        assert np.isnan(row[r_col])
                    else:
                        assert _close(row[r_col], flm.equalized_odds_ratio(yt, yp, agg=agg,
                                                                            **kw))
                assert _close(row["equal_opportunity_difference"],
                              flm.equal_opportunity_difference(yt, yp, **kw))
                assert _close(row["equal_opportunity_ratio"],
                              flm.equal_opportunity_ratio(yt, yp, **kw))
            else:
                # fairlearn on only the groups where each rate is defined
                def restricted(fl_fn, cls):
                    keep = np.zeros(len(df), bool)
                    for m in masks.values():
                        if (yt[m] == cls).any():
                            keep |= m
                    if not keep.any():
                        return np.nan
                    sub = sf[keep]
                    if pd.Series(sub.astype(str).agg(" & ".join, axis=1) if len(cols) > 1
                                 else sub).nunique() < 2:
                        return np.nan
                    return fl_fn(yt[keep], yp[keep], sensitive_features=sub,
                                 sample_weight=None if w is None else w[keep])
                tpr_d = restricted(flm.equal_opportunity_difference, 1)
                tpr_r = restricted(flm.equal_opportunity_ratio, 1)
                assert _close(row["equal_opportunity_difference"], tpr_d)
                assert _close(row["equal_opportunity_ratio"], tpr_r)
                fpr_d = restricted(lambda a, b, **k: flm.MetricFrame(
                    metrics=flm.false_positive_rate, y_true=a, y_pred=b,
                    sensitive_features=k["sensitive_features"],
                    sample_params={"sample_weight": k["sample_weight"]}).difference(), 0)
                expect = max(tpr_d, fpr_d) if not (np.isnan(tpr_d) or np.isnan(fpr_d)) \
                    else np.nan
                assert _close(row["equalized_odds_difference"], expect)


@pytest.mark.parametrize("seed,weighted", [(0, False), (1, True), (2, False), (3, True)])
def test_between_group_reducer_equals_metricframe(seed, weighted):
    """The reducer behind the summaries and their intervals, on one table's
    per-group values, equals fairlearn's MetricFrame.difference() and
    ratio() (between groups), and the summaries table equals fairlearn's
    summary functions."""
    rng = np.random.default_rng(seed)
    n = 400
    sf = rng.choice([f"g{i}" for i in range(5)], size=n, p=[0.4, 0.25, 0.2, 0.1, 0.05])
    yt = (rng.random(n) < 0.45).astype(int)
    yp = np.where(rng.random(n) < 0.7, yt, 1 - yt)
    w = rng.uniform(0.2, 4.0, n) if weighted else None
    fns = {"selection_rate": flm.selection_rate, "tpr": flm.true_positive_rate,
           "fpr": flm.false_positive_rate, "accuracy": skm.accuracy_score}
    mf = flm.MetricFrame(metrics=fns, y_true=yt, y_pred=yp, sensitive_features=sf,
                         sample_params={k: {"sample_weight": w} for k in fns})
    by_group = mf.by_group[list(fns)].to_numpy(dtype=float)  # (groups, metrics)
    assert by_group.shape == (5, 4) and (by_group > 0).all()  # every rate defined
    diff, ratio = between(by_group.T)  # groups on the last axis
    want_d = mf.difference(method="between_groups")[list(fns)].to_numpy(dtype=float)
    want_r = mf.ratio(method="between_groups")[list(fns)].to_numpy(dtype=float)
    np.testing.assert_allclose(diff, want_d, rtol=0, atol=TOL)
    np.testing.assert_allclose(ratio, want_r, rtol=0, atol=TOL)

    got = between_summaries({m: by_group[:, j] for j, m in enumerate(fns)})
    kw = dict(sensitive_features=sf, sample_weight=w)
    want = {
        "demographic_parity_difference": flm.demographic_parity_difference(yt, yp, **kw),
        "demographic_parity_ratio": flm.demographic_parity_ratio(yt, yp, **kw),
        "equalized_odds_difference": flm.equalized_odds_difference(yt, yp, **kw),
        "equalized_odds_ratio": flm.equalized_odds_ratio(yt, yp, **kw),
        "average_odds_difference": flm.equalized_odds_difference(yt, yp, agg="mean", **kw),
        "average_odds_ratio": flm.equalized_odds_ratio(yt, yp, agg="mean", **kw),
        "equal_opportunity_difference": flm.equal_opportunity_difference(yt, yp, **kw),
        "equal_opportunity_ratio": flm.equal_opportunity_ratio(yt, yp, **kw),
    }
    assert list(got) == list(want)
    for name, value in want.items():
        assert _close(got[name], value), (name, float(got[name]), value)


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(tables())
def test_auc_calibration_brier_equal_sklearn(data):
    df, yt, preds, w, pos = data
    res = audit(df, _spec(df, pos, w is not None, list(preds)))
    g = res.groups[res.groups["model"] == "score"]
    cal = res.scores["calibration"]
    score = df["score"].to_numpy()
    for attr, cols in list(ATTRS.items()) + [("(overall)", None)]:
        masks = _group_masks(df, cols) if cols else {"(all)": np.ones(len(df), bool)}
        for grp, m in masks.items():
            r = g[(g["attribute"] == attr) & (g["group"] == grp)].iloc[0]
            wt = w[m] if w is not None else None
            if len(np.unique(yt[m])) == 2:
                assert _close(r["auc"], skm.roc_auc_score(yt[m], score[m], sample_weight=wt))
            else:
                assert np.isnan(r["auc"])
            assert _close(r["brier"], skm.brier_score_loss(yt[m], score[m], sample_weight=wt))
            if w is None:
                prob_true, prob_pred = calibration_curve(yt[m], score[m], n_bins=10,
                                                         strategy="uniform")
                c = cal[(cal["model"] == "score") & (cal["attribute"] == attr)
                        & (cal["group"] == grp)].sort_values("bin")
                np.testing.assert_allclose(c["observed_rate"], prob_true, atol=TOL)
                np.testing.assert_allclose(c["mean_score"], prob_pred, atol=TOL)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(tables())
def test_threshold_curves_equal_confusion_matrix_at_every_threshold(data):
    df, yt, preds, w, pos = data
    res = audit(df, _spec(df, pos, w is not None, list(preds)))
    curves = res.scores["curves"]
    score = df["score"].to_numpy()
    for attr, cols in ATTRS.items():
        for grp, m in _group_masks(df, cols).items():
            c = curves[(curves["attribute"] == attr) & (curves["group"] == grp)]
            assert len(c) > 0
            assert (c["threshold"] == 0.5).any()  # the audit's own threshold is a point
            picked = c.iloc[np.unique(np.linspace(0, len(c) - 1, 25).astype(int))]
            for row in picked.itertuples(index=False):
                yp = (score[m] >= row.threshold).astype(int)
                cm = skm.confusion_matrix(yt[m], yp, labels=[0, 1],
                                          sample_weight=w[m] if w is not None else None)
                assert _close(row.tn, cm[0, 0]) and _close(row.fp, cm[0, 1])
                assert _close(row.fn, cm[1, 0]) and _close(row.tp, cm[1, 1])


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(tables(), st.sampled_from(["largest", "best"]))
def test_disparities_against_reference_by_hand(data, strategy):
    df, yt, preds, w, pos = data
    res = audit(df, _spec(df, pos, w is not None, list(preds), reference_strategy=strategy))
    d = res.disparities
    model, yp = next(iter(preds.items()))
    masks = _group_masks(df, ["sex"])
    sel = {k: flm.selection_rate(yt[m], yp[m], sample_weight=None if w is None else w[m])
           for k, m in masks.items()}
    sizes = {k: int(m.sum()) for k, m in masks.items()}
    if strategy == "largest":
        ref = max(sizes, key=lambda k: (sizes[k], -sorted(sizes).index(k)))
    else:
        # the best value; values within rounding (1e-12) of it tie, and a
        # tie goes to the first group in order
        top = max(sel.values())
        ref = min(k for k, v in sel.items() if v >= top - 1e-12)
    rows = d[(d["model"] == model) & (d["attribute"] == "sex")
             & (d["metric"] == "selection_rate")]
    assert set(rows["group"]) == set(masks) - {ref}
    # a model that gives everyone (or no one) the positive decision is not judged
    everyone_or_no_one = len(set(np.asarray(yp, dtype=bool).tolist())) == 1
    for r in rows.itertuples(index=False):
        assert r.reference == ref
        assert _close(r.difference, sel[r.group] - sel[ref])
        if everyone_or_no_one:
            assert r.verdict == "insufficient"
            assert "the positive decision" in r.verdict_reason
        elif sel[ref] > 0:
            ratio = sel[r.group] / sel[ref]
            assert _close(r.ratio, ratio)
            inside = 0.8 - 1e-12 <= ratio <= 1.25 + 1e-12
            assert r.verdict == ("pass" if inside else "fail")
        else:
            assert np.isnan(r.ratio)
            assert r.verdict == ("pass" if sel[r.group] == 0 else "fail")


def test_min_group_size_makes_verdict_insufficient():
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"label": rng.integers(0, 2, 112), "pred": rng.integers(0, 2, 112),
                       "sex": ["a"] * 100 + ["b"] * 12})
    res = audit(df, AuditSpec(label="label", predictions=["pred"], sensitive=["sex"]))
    rows = res.disparities[res.disparities["group"] == "b"]
    assert len(rows) > 0 and (rows["verdict"] == "insufficient").all()
    assert rows["verdict_reason"].str.contains("12 rows").all()
    assert res.summary.iloc[0]["groups_below_min_size"] == ["b"]


def test_undefined_rate_is_reported_not_zero():
    df = pd.DataFrame({"label": [1, 1, 0, 0, 1, 1], "pred": [1, 0, 1, 0, 1, 1],
                       "sex": ["a", "a", "a", "a", "b", "b"]})
    res = audit(df, AuditSpec(label="label", predictions=["pred"], sensitive=["sex"],
                              min_group_size=1))
    b = res.group_metrics.set_index("group").loc["b"]
    assert np.isnan(b["fpr"]) and np.isnan(b["tnr"])  # group b has no actual negatives
    rec = next(r for r in res.to_dict()["groups"] if r["group"] == "b")
    assert rec["fpr"] is None and "no actual negatives" in rec["undefined"]["fpr"]
    fpr_rows = res.disparities[(res.disparities["metric"] == "fpr")
                               & (res.disparities["group"] == "b")]
    assert (fpr_rows["verdict"] == "insufficient").all()


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(tables())
def test_binned_auc_is_within_its_bound_of_sklearn(data):
    from fairness_core.prepare import prepare
    from fairness_core.scores import score_analysis
    df, yt, preds, w, pos = data
    # continuous scores, so that bins can hold several distinct values
    df = df.assign(score=np.random.default_rng(len(df)).random(len(df)) ** 3)
    spec = _spec(df, pos, w is not None, list(preds))
    auc = score_analysis(prepare(df, spec), max_exact_values=0)["auc"]
    score = df["score"].to_numpy()
    for attr, cols in ATTRS.items():
        for grp, m in _group_masks(df, cols).items():
            r = auc[(auc["attribute"] == attr) & (auc["group"] == grp)].iloc[0]
            if len(np.unique(yt[m])) < 2:
                assert np.isnan(r["auc"])
                continue
            ref = skm.roc_auc_score(yt[m], score[m], sample_weight=None if w is None else w[m])
            assert abs(r["auc"] - ref) <= r["auc_error_bound"] + TOL


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=200),
       st.floats(-1e6, 1e6, allow_nan=False), st.integers(1, 5000))
def test_bin_scores_equals_a_binary_search(values, threshold, n_bins):
    from fairness_core.scores import bin_scores, fine_edges
    s = np.asarray(values)
    edges = fine_edges(s.min(), s.max(), threshold, n_bins)
    np.testing.assert_array_equal(bin_scores(s, edges),
                                  np.searchsorted(edges, s, side="right"))
