"""The regression audit core (fairness_core.regression), checked against
independent computations: fairlearn's MetricFrame with scikit-learn's
regression metrics (hypothesis, with sample weights), pandas and scipy for
means and Welch's test, DuckDB through Ibis for the sums, and simulations
for the coverage of the intervals."""
from __future__ import annotations

import zlib

import numpy as np
import pandas as pd
import pytest
import sklearn.metrics as skm
from fairlearn.metrics import MetricFrame
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from fairness_core.errors import InputError
from fairness_core.regression import (METRICS, STAT_COLUMNS, combo_stats,
                                      disparities, from_engine, group_metrics, group_stats,
                                      ibis_stats, merge_stats,
                                      regression_audit, reshift, stats_frame)
from fairness_core.stats import hall_interval

TOL = 1e-9
SENSITIVE = ["sex", "grp"]


def _rmse(y_true, y_pred, sample_weight=None):
    return skm.root_mean_squared_error(y_true, y_pred, sample_weight=sample_weight)


def _mean_label(y_true, y_pred, sample_weight=None):
    return np.average(y_true, weights=sample_weight)


def _mean_prediction(y_true, y_pred, sample_weight=None):
    return np.average(y_pred, weights=sample_weight)


def _mean_error(y_true, y_pred, sample_weight=None):
    return np.average(np.asarray(y_pred) - np.asarray(y_true), weights=sample_weight)


SKLEARN = {"mae": skm.mean_absolute_error, "rmse": _rmse, "r2": skm.r2_score,
           "mean_label": _mean_label, "mean_prediction": _mean_prediction,
           "mean_error": _mean_error}


@st.composite
def tables(draw, integer: bool):
    """Random tables with tiny groups, single-row groups, constant labels,
    exact predictions and (often) sample weights."""
    n = draw(st.integers(2, 60))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    ga, gb = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    sex = rng.choice([f"g{i}" for i in range(ga)], size=n,
                     p=rng.dirichlet(np.ones(ga) * 0.5))
    grp = rng.choice(np.arange(gb), size=n)
    if integer:  # exact sums: constant labels and perfect predictions are common
        y = rng.integers(-draw(st.integers(0, 20)), 21, n).astype(float)
        noise = rng.integers(-draw(st.integers(0, 5)), 6, n)
        yhat = y + noise * (rng.random(n) < draw(st.floats(0, 1)))
    else:
        centre, spread = draw(st.floats(-1e3, 1e3)), draw(st.floats(0.01, 100))
        y = rng.normal(centre, spread, n)
        yhat = y + rng.standard_exponential(n) * spread * draw(st.floats(0, 2)) \
            - spread * draw(st.floats(0, 1))
    df = pd.DataFrame({"y": y, "yhat": yhat, "sex": sex, "grp": grp})
    if draw(st.booleans()):
        df["w"] = rng.integers(1, 9, n).astype(float) if integer else \
            np.round(rng.uniform(0.1, 5.0, n), 3)
    return df


def _check_against_fairlearn(df: pd.DataFrame):
    weight = "w" if "w" in df else None
    stats = stats_frame(df, "y", "yhat", SENSITIVE, weight=weight)
    g = group_metrics(group_stats(stats, SENSITIVE)).set_index(["attribute", "group"])
    params = None if weight is None else {m: {"sample_weight": df["w"].to_numpy()}
                                          for m in SKLEARN}
    for features, attribute in ((["sex"], "sex"), (["grp"], "grp"),
                                (["sex", "grp"], "sex & grp")):
        mf = MetricFrame(metrics=SKLEARN, y_true=df["y"], y_pred=df["yhat"],
                         sensitive_features=df[features], sample_params=params)
        for key, row in mf.by_group.iterrows():
            key = key if isinstance(key, tuple) else (key,)
            label = " & ".join(str(k) for k in key)
            n = int(((df[features].astype(str) == pd.Series(
                [str(k) for k in key], index=features)).all(axis=1)).sum())
            if n == 0:
                continue
            ours = g.loc[(attribute, label)]
            assert ours["n"] == n
            for m in METRICS:
                want, got = float(row[m]), float(ours[m])
                if np.isnan(want):
                    assert np.isnan(got), (m, label)
                else:
                    assert got == pytest.approx(want, rel=TOL, abs=TOL), (m, label)
    whole = g.loc[("(overall)", "(all)")]
    w = None if weight is None else df["w"].to_numpy()
    for m, f in SKLEARN.items():
        want = f(df["y"], df["yhat"], sample_weight=w)
        assert float(whole[m]) == pytest.approx(want, rel=TOL, abs=TOL), m


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables(integer=True))
def test_metrics_equal_fairlearn_on_exact_data(df):
    import warnings
    with warnings.catch_warnings():  # scikit-learn on single-row groups
        warnings.simplefilter("ignore")
        _check_against_fairlearn(df)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables(integer=False))
def test_metrics_equal_fairlearn_on_continuous_data(df):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _check_against_fairlearn(df)


def _table(n=3000, seed=0, weighted=True, missing=True):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "sex": rng.choice(["F", "M"], n),
        "race": rng.choice(["A", "B", "C"], n, p=[0.6, 0.3, 0.1]),
        "age": rng.choice([18, 30, 65], n),
        "y": rng.lognormal(3, 0.5, n)})
    df["yhat"] = df["y"] * rng.lognormal(0, 0.2, n) + 2.0 * (df["sex"] == "F")
    if weighted:
        df["w"] = rng.uniform(0.2, 3, n)
    if missing:
        df.loc[rng.random(n) < 0.03, "race"] = None
        df.loc[rng.random(n) < 0.02, "y"] = np.nan
    return df


def _sorted(stats: pd.DataFrame, keys) -> pd.DataFrame:
    return stats.sort_values(keys).reset_index(drop=True)


@pytest.mark.parametrize("weighted", [False, True])
def test_duckdb_group_by_equals_numpy(weighted):
    ibis = pytest.importorskip("ibis")
    df = _table(weighted=weighted)
    keys = ["sex", "race", "age"]
    weight = "w" if weighted else None
    con = ibis.duckdb.connect()
    expr = ibis_stats(con.create_table("rows", df), "y", "yhat", keys, weight=weight)
    sql = _sorted(from_engine(expr.to_pandas(), keys), keys)
    ours = _sorted(stats_frame(df, "y", "yhat", keys, weight=weight), keys)
    # both take the sums about the mean label
    assert sql["shift"].iloc[0] == pytest.approx(df["y"].mean(), rel=1e-12)
    assert ours["shift"].iloc[0] == pytest.approx(df["y"].mean(), rel=1e-12)
    sql, ours = reshift(sql, 0.0), reshift(ours, 0.0)
    assert list(sql[keys].itertuples(index=False)) == list(ours[keys].itertuples(index=False))
    assert "(missing)" in set(ours["race"])
    assert (sql["n"].to_numpy() == ours["n"].to_numpy()).all()
    for c in STAT_COLUMNS:
        np.testing.assert_allclose(sql[c].to_numpy(dtype=float), ours[c].to_numpy(dtype=float),
                                   rtol=1e-9, err_msg=c)
    # and the memtable of the same rows gives the same
    mem = from_engine(ibis_stats(ibis.memtable(df), "y", "yhat", keys, weight=weight)
                      .to_pandas(), keys)
    np.testing.assert_allclose(reshift(_sorted(mem, keys), 0.0)["sum_e2_y2"], ours["sum_e2_y2"],
                               rtol=1e-9)
    # whole audits from either table agree
    a = regression_audit(None, "y", "yhat", keys, stats=sql).groups
    b = regression_audit(None, "y", "yhat", keys, stats=ours).groups
    for m in METRICS:
        np.testing.assert_allclose(a[m], b[m], rtol=1e-9, err_msg=m)


def test_engine_rows_that_read_as_one_group_are_merged():
    df = _table(n=300, seed=2, weighted=False, missing=False)
    res = stats_frame(df, "y", "yhat", ["sex"])
    res["sex"] = [None, "(missing)"]  # a NULL and the text "(missing)": one group
    got = from_engine(res, ["sex"])
    assert list(got["sex"]) == ["(missing)"] and got["n"].item() == len(df)
    whole = stats_frame(df.assign(sex="x"), "y", "yhat", ["sex"])
    for c in STAT_COLUMNS[:-2]:
        assert got[c].item() == pytest.approx(whole[c].item(), rel=1e-9), c


def test_counts_by_hand():
    df = pd.DataFrame({"g": ["a", "a", "b"], "y": [1.0, 3.0, 2.0], "yhat": [2.0, 1.0, 2.0],
                       "w": [1.0, 2.0, 4.0]})
    s = stats_frame(df, "y", "yhat", ["g"], weight="w", shift=0.0).set_index("g")
    # group a: e = 1, -2; w = 1, 2
    assert s.loc["a", "n"] == 2 and s.loc["a", "weight"] == 3 and s.loc["a", "weight_sq"] == 5
    assert s.loc["a", "sum_e"] == 1 - 4 and s.loc["a", "sum_abs_e"] == 1 + 4
    assert s.loc["a", "sum_e2_y"] == 1 * 1 + 2 * 4 * 3 and s.loc["a", "sum_y_yhat"] == 2 + 6
    assert np.isnan(s.loc["a", "constant_y"]) and s.loc["b", "constant_y"] == 2
    assert s.loc["b", "sum_e2"] == 0
    # about another shift: the same sums once moved back
    moved = stats_frame(df, "y", "yhat", ["g"], weight="w", shift=1.75).set_index("g")
    assert moved.loc["a", "sum_y2"] == 1 * (1 - 1.75) ** 2 + 2 * (3 - 1.75) ** 2
    back = reshift(moved, 0.0)
    for c in STAT_COLUMNS:
        np.testing.assert_allclose(back[c], s[c], rtol=1e-12, atol=1e-12, err_msg=c)


def test_label_far_from_zero_keeps_its_precision():
    """A label of about a million varying by units: R² and its interval
    from the sums about the mean label, equal to scikit-learn's."""
    rng = np.random.default_rng(12)
    y = 1e6 + rng.normal(0, 1, 500)
    yhat = y + rng.normal(0, 0.5, 500)
    df = pd.DataFrame({"g": rng.choice(["a", "b"], 500), "y": y, "yhat": yhat})
    g = regression_audit(df, "y", "yhat", ["g"]).groups.set_index("group")
    for k in ("a", "b"):
        rows = df[df["g"] == k]
        assert g.loc[k, "r2"] == pytest.approx(skm.r2_score(rows["y"], rows["yhat"]), rel=1e-9)
        assert g.loc[k, "r2_ci_low"] < g.loc[k, "r2"] < g.loc[k, "r2_ci_high"] < 1


def test_merging_two_halves_equals_the_whole():
    df = _table(n=4000, seed=3)
    keys = ["sex", "race"]
    # halves with a group that only one of them has
    first = df.iloc[:1500]
    second = df.iloc[1500:]
    second = second[~((second["sex"] == "F") & (second["race"] == "C"))]
    whole = stats_frame(pd.concat([first, second]), "y", "yhat", keys, weight="w") \
        .set_index(keys)
    merged = merge_stats(stats_frame(first, "y", "yhat", keys, weight="w").set_index(keys),
                         stats_frame(second, "y", "yhat", keys, weight="w").set_index(keys))
    # each half took its own shift (its mean label): merged about the first's
    assert merged["shift"].iloc[0] == pytest.approx(first["y"].mean())
    merged = reshift(merged.loc[whole.index], whole["shift"].iloc[0])
    for c in STAT_COLUMNS:
        np.testing.assert_allclose(merged[c].to_numpy(dtype=float),
                                   whole[c].to_numpy(dtype=float), rtol=1e-12, err_msg=c)
    assert merged["n"].dtype == np.int64
    # and from plain codes
    codes = np.arange(len(df)) % 5
    a = combo_stats(df["y"], df["yhat"], codes, 5)
    halves = merge_stats(combo_stats(df["y"][:2000], df["yhat"][:2000], codes[:2000], 5),
                         combo_stats(df["y"][2000:], df["yhat"][2000:], codes[2000:], 5))
    halves = reshift(halves, a["shift"].iloc[0])
    for c in STAT_COLUMNS:
        np.testing.assert_allclose(halves[c], a[c], rtol=1e-9, err_msg=c)


def test_group_index_codes():
    from fairness_core import AuditSpec
    from fairness_core.counts import GroupIndex
    from fairness_core.prepare import prepare

    df = _table(n=500, seed=4, missing=False)
    df["flag"] = (df["y"] > 20).astype(int)
    df["decision"] = (df["yhat"] > 20).astype(int)
    index = GroupIndex.build(prepare(df, AuditSpec(label="flag", predictions=["decision"],
                                                   sensitive=["sex", "race"])))
    got = combo_stats(df["y"], df["yhat"], index)
    assert len(got) == index.n_combos
    sex = np.asarray(index.levels["sex"])[index.combos[:, 0]]
    race = np.asarray(index.levels["race"])[index.combos[:, 1]]
    for i, (s, r) in enumerate(zip(sex, race)):
        rows = df[(df["sex"] == s) & (df["race"] == r)]
        assert got.loc[i, "n"] == len(rows)
        assert got.loc[i, "sum_abs_e"] == pytest.approx((rows["yhat"] - rows["y"]).abs().sum())


def test_attributes_and_intersections_sum_up():
    df = _table(n=2000, seed=5, weighted=False)
    keys = ["sex", "race", "age"]
    groups = group_stats(stats_frame(df, "y", "yhat", keys, shift=0.0), keys)
    assert list(dict.fromkeys(groups["attribute"])) == [
        "sex", "race", "age", "sex & race", "sex & age", "race & age", "sex & race & age",
        "(overall)"]
    ok = df.dropna(subset=["y"])
    by_age = ok.groupby("age")["y"].agg(["size", "sum"])
    got = groups[groups["attribute"] == "age"].set_index("group")
    assert list(got.index) == ["18", "30", "65"]  # numbers in numeric order
    assert (got["n"].to_numpy() == by_age["size"].to_numpy()).all()
    np.testing.assert_allclose(got["sum_y"], by_age["sum"], rtol=1e-12)
    assert groups.loc[groups["attribute"] == "race", "group"].iloc[-1] == "(missing)"
    overall = groups[groups["attribute"] == "(overall)"].iloc[0]
    assert overall["n"] == len(ok)


def test_t_interval_without_skew_equals_scipy():
    x = np.array([3.0, 5.0, 4.0, 9.0, 1.0, 7.0])
    se = x.std(ddof=1) / np.sqrt(len(x))
    lo, hi = hall_interval(x.mean(), se, len(x) - 1, 0.0, len(x))
    want = stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=se)
    assert (lo, hi) == pytest.approx(want, rel=1e-12)
    # right skew moves the interval up, keeping its coverage
    lo2, hi2 = hall_interval(x.mean(), se, len(x) - 1, 1.5, len(x))
    assert hi2 > hi and lo2 > lo


def _hall_by_hand(m, se, df, skew, n, q):
    """Hall's interval written out from its transformation (Hall 1992)."""
    a, b = skew / (3 * np.sqrt(n)), skew / (6 * np.sqrt(n))
    inverse = lambda z: (np.cbrt(1 + 3 * a * (z - b)) - 1) / a  # noqa: E731
    t = stats.t.ppf(q, df)
    return m - se * inverse(t), m - se * inverse(-t)


def test_rmse_interval_from_the_rows_squares():
    """The RMSE's interval recomputed from the rows with scipy: Hall's
    interval for the mean of e**2 with the skewness of e**2 (scipy's
    unbiased G1) weighed 1.5 times; n - 1 degrees of freedom for the lower
    end, ``2 n / (G2 + 2)`` (scipy's unbiased excess kurtosis) for the
    upper end."""
    rng = np.random.default_rng(21)
    n = 40
    y = rng.normal(50, 10, n)
    e = stats.lognorm(0.5, loc=-3, scale=3).rvs(n, random_state=rng)
    g = group_metrics(combo_stats(y, y + e, np.zeros(n, dtype=int))).iloc[0]
    x = e ** 2
    se = x.std(ddof=1) / np.sqrt(n)
    skew = 1.5 * stats.skew(x, bias=False)
    df_tail = min(max(2 * n / (stats.kurtosis(x, bias=False) + 2), 1.0), n - 1)
    assert df_tail < n - 1  # a heavy tail: the two ends differ
    low, _ = _hall_by_hand(x.mean(), se, n - 1, skew, n, 0.975)
    _, high = _hall_by_hand(x.mean(), se, df_tail, skew, n, 0.975)
    assert g["rmse"] == pytest.approx(np.sqrt(x.mean()), rel=1e-12)
    assert g["rmse_ci_low"] == pytest.approx(np.sqrt(low), rel=1e-9)
    assert g["rmse_ci_high"] == pytest.approx(np.sqrt(high), rel=1e-9)
    # the guards move the interval up from Hall's with the skewness as estimated
    plain = hall_interval(x.mean(), se, df_tail, skew / 1.5, n)
    assert g["rmse_ci_high"] > np.sqrt(plain[1]) and g["rmse_ci_low"] > np.sqrt(plain[0])


def test_welch_tests_equal_scipy_and_are_corrected_together():
    df = _table(n=1500, seed=6, weighted=False, missing=False)
    d = disparities(group_metrics(group_stats(stats_frame(df, "y", "yhat", ["sex", "race"]),
                                              ["sex", "race"], [("sex",), ("race",)])),
                    correction="holm")
    e, a = df["yhat"] - df["y"], (df["yhat"] - df["y"]).abs()
    for metric, x in (("mean_error", e), ("mae", a), ("rmse", e * e),
                      ("mean_label", df["y"])):
        row = d[(d["attribute"] == "race") & (d["metric"] == metric) & (d["group"] == "C")]
        assert row["reference"].item() == "A"  # the largest group
        want = stats.ttest_ind(x[df["race"] == "C"], x[df["race"] == "A"], equal_var=False)
        assert row["p_value"].item() == pytest.approx(want.pvalue, rel=1e-9), metric
        if metric in ("mean_error", "mae", "mean_label"):
            ci = want.confidence_interval()
            assert row["difference_ci_low"].item() == pytest.approx(ci.low, rel=1e-9)
            assert row["difference_ci_high"].item() == pytest.approx(ci.high, rel=1e-9)
    # Holm over every test of the audit
    p = d["p_value"].to_numpy()
    m = len(p)
    order = np.argsort(p)
    holm = np.minimum(np.maximum.accumulate((m - np.arange(m)) * p[order]), 1)
    want = np.empty(m)
    want[order] = holm
    np.testing.assert_allclose(d["p_value_adjusted"], want, rtol=1e-12)
    assert (d["significant"] == (d["p_value_adjusted"] < 0.05)).all()
    # the model over-predicts for women by 2 on average: found
    sex = d[(d["attribute"] == "sex") & (d["metric"] == "mean_error")].iloc[0]
    assert sex["significant"] and sex["difference"] == pytest.approx(
        e[df["sex"] == sex["group"]].mean() - e[df["sex"] == sex["reference"]].mean())


def test_r2_test_is_consistent_with_its_interval():
    """The R² test is on log(1 - R²): a difference is significant (before
    correction) exactly when the Welch-type interval of log(1 - R²_g) -
    log(1 - R²_ref) excludes 0."""
    rng = np.random.default_rng(8)
    n = 400
    df = pd.DataFrame({"g": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]),
                       "y": rng.normal(10, 3, n)})
    df["yhat"] = df["y"] + rng.normal(0, 1, n) * np.where(df["g"] == "c", 2.5, 1)
    res = regression_audit(df, "y", "yhat", ["g"])
    d = res.disparities.set_index(["metric", "group"])
    g = res.groups.set_index("group")
    for grp in ("b", "c"):
        lu = np.log(1 - g.loc[grp, "r2"]) - np.log(1 - g.loc["a", "r2"])
        assert np.isfinite(lu)
        assert d.loc[("r2", grp), "test"].startswith("Welch-type")
    assert d.loc[("r2", "c"), "p_value"] < 1e-6 < d.loc[("r2", "b"), "p_value"]


def test_verdicts_use_the_tolerance_band():
    rows = []
    for g, n, y, err in (("big", 300, 10.0, 1.0), ("close", 200, 10.0, 1.1),
                         ("far", 100, 10.0, 2.0), ("tiny", 5, 10.0, 5.0)):
        signs = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
        rows.append(pd.DataFrame({"g": g, "y": y + signs, "yhat": y + signs + err * signs}))
    df = pd.concat(rows, ignore_index=True)
    res = regression_audit(df, "y", "yhat", ["g"], tolerance=0.8, min_group_size=30)
    d = res.disparities.set_index(["metric", "group"])
    # mae: big 1.0, close 1.1 (ratio 1.1: inside [0.8, 1.25]), far 2.0 (outside)
    assert d.loc[("mae", "close"), "ratio"] == pytest.approx(1.1)
    assert d.loc[("mae", "close"), "verdict"] == "pass"
    assert d.loc[("mae", "far"), "verdict"] == "fail"
    assert "outside [0.8, 1.25]" in d.loc[("mae", "far"), "verdict_reason"]
    assert d.loc[("mae", "tiny"), "verdict"] == "insufficient"
    assert d.loc[("mean_error", "far"), "verdict"] is None  # signed: no ratio
    assert np.isnan(d.loc[("mean_error", "far"), "ratio"])
    assert "big" not in set(d.index.get_level_values("group"))  # the reference
    assert set(d["reference"]) == {"big"}
    s = res.summary.set_index("metric")
    assert s.loc["mae", "worst_group"] == "tiny" and s.loc["mae", "worst_value"] == 5.0
    assert s.loc["mae", "difference"] == pytest.approx(4.0)
    assert s.loc["mae", "ratio"] == pytest.approx(0.2)
    assert s.loc["mae", "n_fail"] == 1 and s.loc["mae", "n_insufficient"] == 1
    bgl = res.bounded_group_loss.iloc[0]
    assert bgl["max_mae"] == 5.0 and bgl["max_rmse_group"] == "tiny"


def test_summary_equals_fairlearn_difference_and_ratio():
    df = _table(n=1000, seed=9, weighted=False, missing=False)
    res = regression_audit(df, "y", "yhat", ["race"])
    mf = MetricFrame(metrics={"mae": skm.mean_absolute_error, "rmse": _rmse},
                     y_true=df["y"], y_pred=df["yhat"], sensitive_features=df["race"])
    s = res.summary.set_index("metric")
    for m in ("mae", "rmse"):
        assert s.loc[m, "difference"] == pytest.approx(mf.difference()[m], rel=1e-9)
        assert s.loc[m, "ratio"] == pytest.approx(mf.ratio()[m], rel=1e-9)
        assert s.loc[m, "worst_value"] == pytest.approx(mf.group_max()[m], rel=1e-9)


def test_named_reference():
    df = _table(n=600, seed=10, weighted=False, missing=False)
    d = regression_audit(df, "y", "yhat", ["race"], reference={"race": "C"}).disparities
    assert set(d["reference"]) == {"C"} and set(d["reference_choice"]) == {"named"}
    with pytest.raises(InputError, match="not a group of 'race'"):
        regression_audit(df, "y", "yhat", ["race"], reference={"race": "Z"})


@pytest.mark.parametrize("change, message", [
    (lambda d: d.assign(y="text"), "must hold numbers"),
    (lambda d: d.assign(w=-1.0), "0 or more"),
    (lambda d: d.drop(columns="yhat"), "prediction column 'yhat' is not in the data"),
    (lambda d: d.drop(columns="race"), "sensitive column"),
    (lambda d: d.assign(yhat=np.nan), "No row has both a numeric label"),
    (lambda d: d.iloc[:0], "No row has both a numeric label"),
])
def test_bad_input_is_one_clear_message(change, message):
    df = change(_table(n=50, seed=11, missing=False))
    with pytest.raises(InputError, match=message):
        regression_audit(df, "y", "yhat", ["race"], weight="w")


def test_no_sensitive_column_is_a_clear_message():
    with pytest.raises(InputError, match="at least one sensitive column"):
        regression_audit(_table(n=20, seed=1), "y", "yhat", [])


# ---------------------------------------------------------------------------
# Coverage of the intervals in simulation
# ---------------------------------------------------------------------------
REPLICATES = 6000  # standard error of a coverage near 95%: 0.28 points
SIZES = (30, 100, 1000)
#: label and error distributions: normal, then skewed (exponential, lognormal)
SCENARIOS = {
    "normal": (stats.norm(50, 10), stats.norm(1, 3)),
    "exponential": (stats.expon(20, 10), stats.expon(loc=-2.1, scale=3)),
    "lognormal": (stats.lognorm(0.5, loc=20, scale=10), stats.lognorm(0.5, loc=-3, scale=3)),
}
def _truth(ydist, edist) -> dict:
    mse = edist.var() + edist.mean() ** 2
    return {"mean_label": ydist.mean(), "mean_prediction": ydist.mean() + edist.mean(),
            "mean_error": edist.mean(), "mae": edist.expect(abs), "rmse": np.sqrt(mse),
            "r2": 1 - mse / ydist.var()}


def _coverage(name: str, n: int, weighted: bool = False) -> dict:
    ydist, edist = SCENARIOS[name]
    rng = np.random.default_rng(zlib.crc32(f"{name} {n} {weighted}".encode()))
    # every replicate is one group of one statistics table
    y = ydist.rvs(REPLICATES * n, random_state=rng)
    e = edist.rvs(REPLICATES * n, random_state=rng)
    w = rng.uniform(0.5, 2.0, len(y)) if weighted else None
    codes = np.repeat(np.arange(REPLICATES), n)
    g = group_metrics(combo_stats(y, y + e, codes, weights=w))
    return {m: float(np.mean((g[f"{m}_ci_low"] <= t) & (t <= g[f"{m}_ci_high"])))
            for m, t in _truth(ydist, edist).items()}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_interval_coverage(name):
    table = {n: _coverage(name, n) for n in SIZES}
    print(f"\ncoverage of 95% intervals, {name} ({REPLICATES} data sets each)")
    for n, cov in table.items():
        print(f"  n={n:5d} " + " ".join(f"{m}={c:.3f}" for m, c in cov.items()))
    for n, cov in table.items():
        for m, c in cov.items():
            assert 0.93 <= c <= 0.97, (name, n, m, c)


@pytest.mark.slow
def test_interval_coverage_with_weights():
    """Weights unrelated to the errors: Kish's effective rows keep the
    coverage."""
    cov = _coverage("exponential", 300, weighted=True)
    for m in ("mean_label", "mean_prediction", "mean_error", "mae", "rmse"):
        assert 0.93 <= cov[m] <= 0.97, (m, cov[m])
    assert 0.90 <= cov["r2"] <= 0.97


def test_constant_labels_merge():
    a = combo_stats([1.0, 1.0, 4.0], [1.0, 2.0, 0.0], [0, 0, 1], shift=0.0)
    assert a.loc[0, "constant_y"] == 1 and a.loc[1, "constant_y"] == 4
    same = merge_stats(a, combo_stats([1.0], [3.0], [0], 2, shift=0.0))
    assert same.loc[0, "constant_y"] == 1  # code 1 has no rows in the second
    assert same.loc[1, "constant_y"] == 4
    other = merge_stats(a, combo_stats([2.0], [3.0], [0], shift=0.0))
    assert np.isnan(other.loc[0, "constant_y"])
    # combinations summed up to an attribute
    df = pd.DataFrame({"g": ["a", "a", "b"], "h": ["x", "y", "x"], "y": [5.0, 5.0, 6.0],
                       "yhat": [4.0, 6.0, 6.0]})
    groups = group_stats(stats_frame(df, "y", "yhat", ["g", "h"]), ["g", "h"]) \
        .set_index(["attribute", "group"])
    assert groups.loc[("g", "a"), "constant_y"] == 5
    assert np.isnan(groups.loc[("h", "x"), "constant_y"])
    m = group_metrics(groups.reset_index()).set_index(["attribute", "group"])
    assert m.loc[("g", "a"), "r2"] == skm.r2_score([5.0, 5.0], [4.0, 6.0]) == 0.0
