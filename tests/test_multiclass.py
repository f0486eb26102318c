"""The multiclass audit on counts against independent computations:
scikit-learn's confusion matrix and metrics, fairlearn's MetricFrame and
summaries on the one-vs-rest labels, scipy's intervals, tests and
corrections, DuckDB's GROUP BY, and hand counts.

As in the binary audit, a rate whose denominator is empty (0/0) is
undefined (NaN) where scikit-learn and fairlearn report 0; those cases are
checked by the rows that would make the denominator, and the other cases
against the libraries.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fairlearn.metrics as flm
import sklearn.metrics as skm
from scipy import stats as sps

from fairness_core import AuditSpec
from fairness_core.errors import InputError
from fairness_core.multiclass import (CLASS_METRICS, audit_multiclass, class_group_table,
                                      cube_from_engine, group_summary, merge_cubes,
                                      multiclass_audit, multiclass_cube)

TOL = 1e-12
#: how the classes are written: label values, and the prediction's own spelling
REPS = {
    "int": lambda i: i,
    "text": lambda i: f"tier {chr(65 + i)}",
    "float": lambda i: float(i),
}


@st.composite
def tables(draw):
    k = draw(st.integers(3, 6))
    n = draw(st.integers(k, 80))
    rep = draw(st.sampled_from(sorted(REPS)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    p_true = rng.dirichlet(np.ones(k) * 0.7)
    y = rng.choice(k, size=n, p=p_true)
    y[rng.choice(n, size=k, replace=False)] = np.arange(k)  # every class occurs
    flip = draw(st.floats(0.0, 1.0))
    pred = np.where(rng.random(n) < flip, rng.choice(k, size=n), y)
    ga = draw(st.integers(1, 4))
    sex = rng.choice([f"g{i}" for i in range(ga)], size=n).astype(object)
    sex[rng.random(n) < draw(st.sampled_from([0.0, 0.1]))] = None  # missing groups
    grp = rng.choice(draw(st.integers(1, 3)), size=n)
    to = REPS[rep]
    df = pd.DataFrame({"label": [to(int(v)) for v in y], "pred": [to(int(v)) for v in pred],
                       "sex": sex, "grp": grp})
    if rep == "int" and draw(st.booleans()):  # the same classes written as text
        df["pred"] = df["pred"].astype(str)
    w = None
    if draw(st.booleans()):
        w = np.round(rng.uniform(0.1, 5.0, n), 3)
        df["w"] = w
    return df, y, pred, w


def _spec(weighted: bool, **kw) -> AuditSpec:
    kw.setdefault("n_bootstrap", 0)
    return AuditSpec(label="label", predictions=["pred"], sensitive=["sex", "grp"],
                     intersectional=True, weight="w" if weighted else None, min_group_size=1,
                     **kw)


ATTRS = {"sex": ["sex"], "grp": ["grp"], "sex & grp": ["sex", "grp"]}


def _group_keys(df: pd.DataFrame, cols: list) -> np.ndarray:
    parts = [df[c].astype(object).where(df[c].notna(), "(missing)").astype(str) for c in cols]
    return parts[0].to_numpy() if len(parts) == 1 else \
        pd.concat(parts, axis=1).agg(" & ".join, axis=1).to_numpy()


def _close(a, b) -> bool:
    a, b = float(a), float(b)
    if np.isnan(a) or np.isnan(b):
        return np.isnan(a) and np.isnan(b)
    return abs(a - b) <= TOL


FL_METRICS = {
    "selection_rate": flm.selection_rate,
    "tpr": flm.true_positive_rate,
    "fpr": flm.false_positive_rate,
    "fnr": flm.false_negative_rate,
    "tnr": flm.true_negative_rate,
}
# the others from the one-vs-rest cells of scikit-learn's confusion matrix
FROM_CELLS = {"accuracy": (("tn", "tp"), ("tn", "fp", "fn", "tp")),
              "ppv": (("tp",), ("tp", "fp")), "npv": (("tn",), ("tn", "fn"))}
# the rows that make each rate's denominator
DEFINED_BY = {"tpr": lambda yt, yp: yt == 1, "fnr": lambda yt, yp: yt == 1,
              "fpr": lambda yt, yp: yt == 0, "tnr": lambda yt, yp: yt == 0,
              "ppv": lambda yt, yp: yp == 1, "npv": lambda yt, yp: yp == 0}


def _one_vs_rest(cm, i) -> dict:
    tp = cm[i, i]
    out = {"tp": tp, "fn": cm[i].sum() - tp, "fp": cm[:, i].sum() - tp}
    out["tn"] = cm.sum() - out["tp"] - out["fn"] - out["fp"]
    return out


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(tables())
def test_rates_equal_fairlearn_metricframe_and_sklearn_confusion_matrix(data):
    df, y, pred, w = data
    spec = _spec(w is not None)
    cube = multiclass_cube(df, spec)
    k_all = sorted(set(y) | set(pred))
    assert len(cube.classes) == len(k_all)
    names = dict(zip(k_all, cube.classes))  # classes keep their numeric order
    conf = cube.confusion_table().set_index(["attribute", "group", "true_class",
                                             "predicted_class"])
    g = class_group_table(cube, spec).set_index(["class", "attribute", "group"])
    assert set(g.columns) >= set(CLASS_METRICS)
    for attr, cols in ATTRS.items():
        keys = _group_keys(df, cols)
        assert set(conf.loc[attr].index.get_level_values(0)) == set(keys)
        for grp in np.unique(keys):
            m = keys == grp
            wt = w[m] if w is not None else None
            cm = skm.confusion_matrix(y[m], pred[m], labels=k_all, sample_weight=wt)
            rows = skm.confusion_matrix(y[m], pred[m], labels=k_all)
            for i, ci in enumerate(k_all):
                for j, cj in enumerate(k_all):
                    r = conf.loc[(attr, grp, names[ci], names[cj])]
                    assert _close(r["weight"], cm[i, j]) and r["n"] == rows[i, j]
                cells, n_cells = _one_vs_rest(cm, i), _one_vs_rest(rows, i)
                ours = g.loc[(names[ci], attr, grp)]
                for metric, (num, den) in FROM_CELLS.items():
                    d = sum(cells[x] for x in den)
                    defined = sum(n_cells[x] for x in den) > 0
                    want = sum(cells[x] for x in num) / d if defined else np.nan
                    assert _close(ours[metric], want), (ci, attr, grp, metric)
        for c in k_all:
            yt, yp = (y == c).astype(int), (pred == c).astype(int)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                mf = flm.MetricFrame(metrics=FL_METRICS, y_true=yt, y_pred=yp,
                                     sensitive_features=pd.Series(keys, name="g"),
                                     sample_params={k: {"sample_weight": w} for k in FL_METRICS}
                                     if w is not None else None)
            for grp, fl in mf.by_group.iterrows():
                ours = g.loc[(names[c], attr, grp)]
                m = keys == grp
                for metric in FL_METRICS:
                    defined = DEFINED_BY.get(metric)
                    if defined is not None and not defined(yt[m], yp[m]).any():
                        assert np.isnan(ours[metric]), (c, attr, grp, metric)
                        continue
                    assert _close(ours[metric], fl[metric]), (c, attr, grp, metric)


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(tables())
def test_group_accuracy_and_macro_rates_equal_sklearn(data):
    df, y, pred, w = data
    spec = _spec(w is not None)
    gs = group_summary(multiclass_cube(df, spec), spec).set_index(["attribute", "group"])
    for attr, cols in {**ATTRS, "(overall)": []}.items():
        keys = _group_keys(df, cols) if cols else np.full(len(df), "(all)")
        for grp in np.unique(keys):
            m = keys == grp
            wt = w[m] if w is not None else None
            r = gs.loc[(attr, grp)]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                assert _close(r["accuracy"], skm.accuracy_score(y[m], pred[m], sample_weight=wt))
                assert _close(r["macro_tpr"], skm.balanced_accuracy_score(
                    y[m], pred[m], sample_weight=wt))
                assert _close(r["macro_ppv"], skm.precision_score(
                    y[m], pred[m], labels=np.unique(pred[m]), average="macro",
                    sample_weight=wt))
                both = np.union1d(y[m], pred[m])
                assert _close(r["macro_f1"], skm.f1_score(
                    y[m], pred[m], labels=both, average="macro", sample_weight=wt))
            assert r["n"] == m.sum()


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(tables())
def test_summaries_per_class_and_worst_class_equal_fairlearn(data):
    df, y, pred, w = data
    res = audit_multiclass(df, _spec(w is not None))
    s = res.summary.set_index(["class", "attribute"])
    classes = sorted(set(y) | set(pred))
    names = dict(zip(classes, res.classes))
    for attr, cols in ATTRS.items():
        keys = _group_keys(df, cols)
        dp = {}
        for c in classes:
            yt, yp = (y == c).astype(int), (pred == c).astype(int)
            row = s.loc[(names[c], attr)]
            if len(np.unique(keys)) < 2:
                assert np.isnan(row["demographic_parity_difference"])
                continue
            dp[c] = flm.demographic_parity_difference(yt, yp, sensitive_features=keys,
                                                      sample_weight=w)
            assert _close(row["demographic_parity_difference"], dp[c])
            assert _close(row["demographic_parity_ratio"], flm.demographic_parity_ratio(
                yt, yp, sensitive_features=keys, sample_weight=w))
            # equal opportunity over the groups where the class occurs (TPR defined)
            has = np.unique(keys[yt == 1])
            if len(has) >= 2:
                m = np.isin(keys, has)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    mf = flm.MetricFrame(metrics=flm.true_positive_rate, y_true=yt[m],
                                         y_pred=yp[m], sensitive_features=keys[m],
                                         sample_params={"sample_weight": w[m]}
                                         if w is not None else None)
                assert _close(row["equal_opportunity_difference"], mf.difference())
            else:
                assert np.isnan(row["equal_opportunity_difference"])
        worst = res.worst.set_index(["attribute", "summary"]).loc[(attr,
                                                                   "demographic_parity")]
        if dp:
            best = max(dp.values())
            assert _close(worst["difference"], best)
            assert worst["class"] in {names[c] for c, v in dp.items() if v == best}


def _records_equal(a, b) -> None:
    key = ["model", "attribute", "group", "true_class", "predicted_class"]
    ta = a.confusion_table().sort_values(key).reset_index(drop=True)
    tb = b.confusion_table().sort_values(key).reset_index(drop=True)
    assert a.classes == b.classes
    pd.testing.assert_frame_equal(ta[key], tb[key])
    assert (ta["n"].to_numpy() == tb["n"].to_numpy()).all()
    np.testing.assert_allclose(ta["weight"], tb["weight"], rtol=1e-12, atol=1e-9)


def _example(n=3000, seed=1):
    rng = np.random.default_rng(seed)
    classes = np.array(["low", "medium", "high", "urgent"], dtype=object)
    y = rng.choice(4, n, p=[0.4, 0.3, 0.2, 0.1])
    pred = np.where(rng.random(n) < 0.6, y, rng.choice(4, n))
    df = pd.DataFrame({"label": classes[y], "pred": classes[pred],
                       "sex": rng.choice(np.array(["F", "M", None], dtype=object), n,
                                         p=[0.5, 0.45, 0.05]),
                       "age": rng.integers(16, 90, n).astype(float),
                       "w": np.round(rng.uniform(0.2, 4, n), 2)})
    df.loc[rng.random(n) < 0.02, "age"] = np.nan
    df.loc[rng.random(n) < 0.01, "w"] = np.nan
    return df


@pytest.mark.parametrize("weighted", [False, True])
def test_duckdb_counts_equal_numpy_counts(weighted):
    ibis = pytest.importorskip("ibis")
    df = _example()
    spec = AuditSpec(label="label", predictions=["pred"], sensitive=["sex", "age"],
                     bins={"age": [25, 45, 65]}, intersectional=True,
                     weight="w" if weighted else None)
    con = ibis.duckdb.connect()
    con.raw_sql("SET enable_progress_bar = false")
    t = con.create_table("rows", df)
    a, b = multiclass_cube(df, spec), cube_from_engine(t, spec)
    _records_equal(a, b)
    assert a.dropped == b.dropped and a.n_rows_read == b.n_rows_read == len(df)
    # a memtable works the same
    _records_equal(a, cube_from_engine(ibis.memtable(df), spec))
    # and the audit from the engine's counts is the audit from the rows
    s = dataclasses_replace(spec, n_bootstrap=100)
    ra, rb = multiclass_audit(a, s), multiclass_audit(b, s)
    pd.testing.assert_frame_equal(ra.disparities, rb.disparities)


@pytest.mark.engines
def test_postgres_counts_equal_numpy_counts(postgres_url):
    """The same Ibis expression in a real PostgreSQL server."""
    ibis = pytest.importorskip("ibis")
    df = _example(1500, seed=5)
    spec = AuditSpec(label="label", predictions=["pred"], sensitive=["sex", "age"],
                     bins={"age": [25, 45, 65]}, intersectional=True, weight="w")
    con = ibis.connect(postgres_url)
    try:
        t = con.create_table("multiclass_rows", df, overwrite=True)
        _records_equal(multiclass_cube(df, spec), cube_from_engine(t, spec))
    finally:
        con.drop_table("multiclass_rows", force=True)
        con.disconnect()


def dataclasses_replace(spec, **kw):
    import dataclasses
    return dataclasses.replace(spec, **kw)


@pytest.mark.parametrize("weighted", [False, True])
def test_merging_two_halves_equals_the_whole(weighted):
    df = _example(2000, seed=3)
    df.loc[:999, "label"] = df.loc[:999, "label"].replace("urgent", "high")
    df.loc[:999, "pred"] = df.loc[:999, "pred"].replace("urgent", "high")  # one half: 3 classes
    df.loc[1000:, "sex"] = df.loc[1000:, "sex"].replace("F", "X")  # a group in one half only
    spec = AuditSpec(label="label", predictions=["pred"], sensitive=["sex", "age"],
                     bins={"age": [25, 45, 65]}, intersectional=True,
                     weight="w" if weighted else None)
    a, b = multiclass_cube(df.iloc[:1000], spec), multiclass_cube(df.iloc[1000:], spec)
    assert len(a.classes) == 3 and len(b.classes) == 4
    whole = multiclass_cube(df, spec)
    merged = merge_cubes(a, b)
    _records_equal(whole, merged)
    assert merged.dropped == whole.dropped and merged.n_rows_read == whole.n_rows_read


def test_count_table_input_equals_rows():
    df = _example(1500, seed=4).drop(columns="w")
    rec = df.groupby(["label", "pred", "sex", "age"], dropna=False).size().reset_index(name="n")
    spec = AuditSpec(label="label", predictions=["pred"], sensitive=["sex", "age"],
                     bins={"age": [25, 45, 65]})
    _records_equal(multiclass_cube(df, spec),
                   multiclass_cube(rec, dataclasses_replace(spec, counts="n")))


def test_numbers_and_text_of_one_class_are_one_class():
    df = pd.DataFrame({"label": [0, 1, 2, 2, 1, 0, 10], "pred": ["0", "1.0", "2", 1, 0, 0, 2],
                       "sex": list("aabbabb")})
    spec = AuditSpec(label="label", predictions=["pred"], sensitive=["sex"], n_bootstrap=0)
    cube = multiclass_cube(df, spec)
    assert cube.classes == ["0", "1", "2", "10"]  # numeric order, not text order
    t = cube.confusion_table()
    t = t[t["attribute"] == "(overall)"].pivot(index="true_class", columns="predicted_class",
                                               values="n").loc[cube.classes, cube.classes]
    expected = skm.confusion_matrix([0, 1, 2, 2, 1, 0, 10], [0, 1, 2, 1, 0, 0, 2],
                                    labels=[0, 1, 2, 10])
    assert (t.to_numpy() == expected).all()


def _hand_table():
    """Group A: 6 rows, classes x and y only; group B: 6 rows with z.

    A: (x,x) (x,x) (x,y) (y,y) (y,x) (y,z)
    B: (x,x) (y,y) (z,z) (z,z) (z,x) (x,z)
    """
    pairs = {"A": [("x", "x"), ("x", "x"), ("x", "y"), ("y", "y"), ("y", "x"), ("y", "z")],
             "B": [("x", "x"), ("y", "y"), ("z", "z"), ("z", "z"), ("z", "x"), ("x", "z")]}
    rows = [(t, p, g) for g, ps in pairs.items() for t, p in ps]
    return pd.DataFrame(rows, columns=["label", "pred", "g"])


def test_hand_counts_and_an_absent_class_is_undefined_and_not_judged():
    df = _hand_table()
    spec = AuditSpec(label="label", predictions=["pred"], sensitive=["g"], min_group_size=1,
                     n_bootstrap=100, reference={"g": "B"})
    res = audit_multiclass(df, spec)
    g = res.groups.set_index(["class", "attribute", "group"])
    # class z in group A: no true z -> TPR, FNR undefined (never 0); 1 of 6 predicted z
    za = g.loc[("z", "g", "A")]
    assert (za["tn"], za["fp"], za["fn"], za["tp"]) == (5, 1, 0, 0)
    assert np.isnan(za["tpr"]) and np.isnan(za["fnr"])
    assert za["selection_rate"] == pytest.approx(1 / 6) and za["fpr"] == pytest.approx(1 / 6)
    # class x in group A: 2 of 3 true x predicted x; 1 y predicted x
    xa = g.loc[("x", "g", "A")]
    assert (xa["tn"], xa["fp"], xa["fn"], xa["tp"]) == (2, 1, 1, 2)
    assert xa["tpr"] == pytest.approx(2 / 3) and xa["ppv"] == pytest.approx(2 / 3)
    d = res.disparities
    dz = d[(d["class"] == "z") & (d["group"] == "A")]
    assert set(dz["metric"]) == set(CLASS_METRICS)
    assert (dz["verdict"] == "insufficient").all()
    assert dz["verdict_reason"].str.contains("'z' does not occur in this group").all()
    assert dz["p_value"].isna().all() and dz["p_value_adjusted"].isna().all()
    # group accuracy and macro TPR by hand: A 3/6, classes x 2/3, y 1/3
    assert (res.group_summary["class"] == "(all classes)").all()
    assert res.groups["class"].notna().all() and res.disparities["class"].notna().all()
    gs = res.group_summary.set_index(["attribute", "group"])
    assert gs.loc[("g", "A"), "accuracy"] == pytest.approx(0.5)
    assert gs.loc[("g", "A"), "macro_tpr"] == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert gs.loc[("g", "B"), "macro_tpr"] == pytest.approx((1 / 2 + 1 + 2 / 3) / 3)


def test_za_ppv_is_zero_not_undefined():
    """The one z predicted in group A was wrong: PPV is 0/1, a real 0."""
    res = audit_multiclass(_hand_table(), AuditSpec(label="label", predictions=["pred"],
                                                    sensitive=["g"], n_bootstrap=0))
    g = res.groups.set_index(["class", "attribute", "group"])
    assert g.loc[("z", "g", "A"), "ppv"] == 0.0


def test_intervals_tests_and_correction_equal_scipy():
    df = _example(4000, seed=7).drop(columns="w")
    spec = AuditSpec(label="label", predictions=["pred"], sensitive=["sex", "age"],
                     bins={"age": [25, 45, 65]}, intersectional=True, n_bootstrap=200)
    res = audit_multiclass(df, spec)
    g = res.groups
    r = g[(g["class"] == "urgent") & (g["attribute"] == "sex") & (g["group"] == "F")].iloc[0]
    m = (df["sex"] == "F").to_numpy()
    sel = int((df["pred"][m] == "urgent").sum())
    ci = sps.binomtest(sel, int(m.sum())).proportion_ci(0.95, method="wilson")
    assert r["selection_rate_ci_low"] == pytest.approx(ci.low, abs=1e-12)
    assert r["selection_rate_ci_high"] == pytest.approx(ci.high, abs=1e-12)
    d = res.disparities
    row = d[(d["class"] == "urgent") & (d["attribute"] == "sex") & (d["group"] == "M")
            & (d["metric"] == "selection_rate")].iloc[0]
    assert row["reference"] == "F"  # the largest group
    m = (df["sex"] == "M").to_numpy()
    sel = int((df["pred"][m] == "urgent").sum())
    ref = (df["sex"] == "F").to_numpy()
    sel_ref = int((df["pred"][ref] == "urgent").sum())
    table = [[sel, m.sum() - sel], [sel_ref, ref.sum() - sel_ref]]
    assert row["test"] == "two-proportion z-test"
    assert row["p_value"] == pytest.approx(
        sps.chi2_contingency(table, correction=False).pvalue, rel=1e-9)
    # one correction over every test of every class
    p = d["p_value"].to_numpy(dtype=float)
    ok = ~np.isnan(p)
    assert len(set(d.loc[ok, "class"])) == 4
    np.testing.assert_allclose(d["p_value_adjusted"].to_numpy(dtype=float)[ok],
                               sps.false_discovery_control(p[ok]), rtol=1e-12)


def test_a_class_never_predicted_is_not_judged():
    df = _hand_table()
    df["pred"] = df["pred"].replace("z", "y")
    df.loc[len(df)] = ("z", "x", "A")
    res = audit_multiclass(df, AuditSpec(label="label", predictions=["pred"],
                                         sensitive=["g"], min_group_size=1, n_bootstrap=0))
    d = res.disparities
    assert (d.loc[d["class"] == "z", "verdict"] == "insufficient").all()
    assert any("predicts the class 'z' for no row" in w for w in res.warnings)
    assert (d.loc[d["class"] != "z", "verdict"] != "insufficient").any()


@pytest.mark.parametrize("change, words", [
    (lambda df: df.assign(pred="x", label="x"), "only one class"),
    (lambda df: pd.concat([df] * 10, ignore_index=True).pipe(
        lambda d: d.assign(label=np.arange(len(d)), pred=0)), "more than the limit"),
    (lambda df: df.drop(columns="pred"), "is not in the data"),
    (lambda df: df.assign(label=None), "No row is left"),
])
def test_bad_input_gives_one_clear_message(change, words):
    spec = AuditSpec(label="label", predictions=["pred"], sensitive=["g"])
    with pytest.raises(InputError, match=words):
        multiclass_cube(change(_hand_table()), spec)


def test_scores_are_refused_with_a_message():
    df = _hand_table().assign(s=0.3)
    with pytest.raises(InputError, match="predicted classes, not scores"):
        multiclass_cube(df, AuditSpec(label="label", scores=["s"], sensitive=["g"]))
