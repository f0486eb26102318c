"""Comparing two audits (and two models on the same rows): every change,
interval and p-value checked against an independent computation (scipy,
hand formulas, pandas counts, published numbers, simulation)."""
from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from fairness_core import AuditSpec, InputError, audit
from fairness_core.cli import main
from fairness_core.compare import (compare_audits, log_ratio_se, mcnemar, newcombe_interval,
                                   paired_comparison, rate_change, read_audit)
from fairness_core.counts import GroupIndex, paired_counts
from fairness_core.prepare import prepare

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("make_periods",
                                               ROOT / "sample_data" / "make_periods.py")
make_periods = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_periods)

SPEC = dict(label="repaid", positive="yes", predictions=["approved"], sensitive=["sex", "race"],
            n_bootstrap=0)


def period(i: int, **kw) -> pd.DataFrame:
    seed, n, race_pen, fem_pen = make_periods.PERIODS[i]
    params = {"seed": seed, "n": n, "race_penalty": race_pen, "female_penalty": fem_pen, **kw}
    return make_periods.generate(**params)


@pytest.fixture(scope="module")
def two_periods():
    spec = AuditSpec(**SPEC)
    d1, d2 = period(1), period(2)
    return d1, d2, audit(d1, spec), audit(d2, spec)


# --------------------------------------------------------------------------
# the statistics, against independent computations
# --------------------------------------------------------------------------
def test_newcombe_interval_matches_the_published_example_and_scipy_wilson():
    # Newcombe (1998), Statistics in Medicine 17:873, example (a): 56/70 vs 48/80,
    # method 10: difference 0.2000, interval 0.0524 to 0.3339
    lo, hi = newcombe_interval(48, 80, 56, 70)
    assert round(float(lo), 4) == 0.0524 and round(float(hi), 4) == 0.3339
    # the same combination of scipy's own Wilson intervals
    rng = np.random.default_rng(3)
    for _ in range(20):
        n1, n2 = rng.integers(5, 400, 2)
        x1, x2 = rng.integers(0, n1 + 1), rng.integers(0, n2 + 1)
        c1 = st.binomtest(int(x1), int(n1)).proportion_ci(0.9, method="wilson")
        c2 = st.binomtest(int(x2), int(n2)).proportion_ci(0.9, method="wilson")
        p1, p2 = x1 / n1, x2 / n2
        want_lo = p2 - p1 - math.sqrt((p2 - c2.low) ** 2 + (c1.high - p1) ** 2)
        want_hi = p2 - p1 + math.sqrt((c2.high - p2) ** 2 + (p1 - c1.low) ** 2)
        lo, hi = newcombe_interval(x1, n1, x2, n2, 0.9)
        assert float(lo) == pytest.approx(want_lo, abs=1e-9)
        assert float(hi) == pytest.approx(want_hi, abs=1e-9)


def test_rate_change_p_values_are_scipys_chi_squared_and_fisher():
    x1, n1, x2, n2 = np.array([120, 1, 40]), np.array([400, 20, 90]), \
        np.array([150, 4, 41]), np.array([410, 22, 100])
    change, lo, hi, p, test = rate_change(x1, n1, x2, n2)
    assert change == pytest.approx(x2 / n2 - x1 / n1)
    for i in range(3):
        table = [[x1[i], n1[i] - x1[i]], [x2[i], n2[i] - x2[i]]]
        if "Fisher" in test[i]:
            want = st.fisher_exact(table).pvalue
        else:
            want = st.chi2_contingency(table, correction=False).pvalue
        assert p[i] == pytest.approx(want, rel=1e-9)
    assert "Fisher" in test[1] and "z-test" in test[0]


def test_log_ratio_standard_error_matches_a_direct_simulation():
    rng = np.random.default_rng(11)
    ng, nr, pg, pr = 300, 1200, 0.25, 0.4
    se = float(log_ratio_se(pg * ng, ng, pr * nr, nr))
    xg, xr = rng.binomial(ng, pg, 20000), rng.binomial(nr, pr, 20000)
    sim = np.std(np.log((xg / ng) / (xr / nr)), ddof=1)
    assert se == pytest.approx(sim, rel=0.03)


def test_mcnemar_matches_scipys_exact_binomial_test():
    b, c, n = np.array([12, 40, 0]), np.array([3, 38, 0]), np.array([200, 500, 50])
    d, lo, hi, p = mcnemar(b, c, n)
    assert d == pytest.approx((b - c) / n)
    for i in range(2):
        assert p[i] == pytest.approx(st.binomtest(int(b[i]), int(b[i] + c[i])).pvalue,
                                     rel=1e-9)
    assert p[2] == 1.0 and lo[0] < d[0] < hi[0]
    # Bonett-Price: the adjusted Wald interval written out
    pb, pc = (12 + 1) / 202, (3 + 1) / 202
    se = math.sqrt((pb + pc - (pb - pc) ** 2) / 202)
    assert lo[0] == pytest.approx(pb - pc - st.norm.ppf(0.975) * se)


# --------------------------------------------------------------------------
# two audits
# --------------------------------------------------------------------------
def test_changes_match_hand_counts_in_pandas(two_periods):
    d1, d2, a1, a2 = two_periods
    comp = compare_audits(a1, a2)
    r = comp.changes.set_index(["attribute", "group", "metric"])
    for attr in ("sex", "race"):
        for g in d1[attr].unique():
            s1, s2 = d1[d1[attr] == g], d2[d2[attr] == g]
            neg1, neg2 = s1[s1["repaid"] == "no"], s2[s2["repaid"] == "no"]
            x1, n1 = (neg1["approved"] == "yes").sum(), len(neg1)
            x2, n2 = (neg2["approved"] == "yes").sum(), len(neg2)
            row = r.loc[(attr, g, "fpr")]
            assert row["before"] == pytest.approx(x1 / n1)
            assert row["after"] == pytest.approx(x2 / n2)
            assert row["change"] == pytest.approx(x2 / n2 - x1 / n1)
            lo, hi = newcombe_interval(x1, n1, x2, n2)
            assert (row["change_ci_low"], row["change_ci_high"]) == pytest.approx(
                (float(lo), float(hi)))
            table = [[x1, n1 - x1], [x2, n2 - x2]]
            want = (st.fisher_exact(table).pvalue if "Fisher" in row["test"] else
                    st.chi2_contingency(table, correction=False).pvalue)
            assert row["p_value"] == pytest.approx(want, rel=1e-9)
    # the p-values are corrected together (Benjamini-Hochberg by scipy)
    p = np.concatenate([comp.changes["p_value"], comp.gaps["p_value"]])
    ok = ~np.isnan(p)
    adj = np.concatenate([comp.changes["p_value_adjusted"], comp.gaps["p_value_adjusted"]])
    assert adj[ok] == pytest.approx(st.false_discovery_control(p[ok]))
    assert comp.settings["n_tests"] == ok.sum()


def test_gap_change_is_the_ratio_of_ratios_with_a_delta_method_test(two_periods):
    d1, d2, a1, a2 = two_periods
    comp = compare_audits(a1, a2)
    row = comp.gaps.set_index(["attribute", "group", "metric"]).loc[
        ("race", "Black", "selection_rate")]

    def rate(d, g):
        s = d[d["race"] == g]
        return (s["approved"] == "yes").sum(), len(s)

    (xg1, ng1), (xr1, nr1) = rate(d1, "Black"), rate(d1, "White")
    (xg2, ng2), (xr2, nr2) = rate(d2, "Black"), rate(d2, "White")
    r1, r2 = (xg1 / ng1) / (xr1 / nr1), (xg2 / ng2) / (xr2 / nr2)
    assert (row["before"], row["after"], row["change"]) == pytest.approx((r1, r2, r2 / r1))
    se = math.sqrt(1 / xg1 - 1 / ng1 + 1 / xr1 - 1 / nr1 + 1 / xg2 - 1 / ng2 + 1 / xr2 - 1 / nr2)
    z = math.log(r2 / r1) / se
    assert row["p_value"] == pytest.approx(2 * st.norm.sf(abs(z)), rel=1e-9)
    assert row["change_ci_low"] == pytest.approx(math.exp(math.log(r2 / r1) - 1.959964 * se),
                                                 rel=1e-5)
    # the planted change: the race gap narrowed, the sex gap did not move
    assert row["significant"] and row["trend"] == "narrowed"
    assert row["verdict_before"] == "fail" and row["verdict_after"] == "pass"
    sex = comp.gaps[(comp.gaps["attribute"] == "sex")]
    assert not sex["significant"].any()
    texts = [f["text"] for f in comp.findings]
    assert any("selection rate gap for race = 'Black'" in t and "narrowed from 0.6" in t
               and "(significant" not in t and "; significant after" in t for t in texts)
    assert any("sex = 'Female'" in t and "did not change significantly" in t for t in texts)
    assert comp.findings[0]["significant"]


def test_spec_differences_and_unmatched_groups_are_warnings_not_crashes():
    d1, d2 = period(1), period(2)
    a1 = audit(d1, AuditSpec(**SPEC))
    d2 = d2[d2["race"] != "Asian"].assign(race=lambda d: d["race"].replace("Hispanic", "Latino"))
    a2 = audit(d2, AuditSpec(**{**SPEC, "reference": {"race": "Black"}, "tolerance": 0.9}))
    comp = compare_audits(a1, a2)
    joined = " ".join(comp.warnings)
    assert "tolerance" in joined
    assert "reference group was 'White' in the baseline and is 'Black' now" in joined
    assert {"attribute": "race", "group": "Asian"} in comp.unmatched["groups_only_in_baseline"]
    assert {"attribute": "race", "group": "Latino"} in comp.unmatched["groups_only_in_current"]
    assert not (comp.gaps["attribute"] == "race").any()  # other reference: not compared
    assert (comp.changes["group"] == "Black").any()


def test_weighted_audits_use_effective_counts():
    d1, d2 = period(1), period(2)
    w1 = np.where(d1["sex"] == "Female", 2.0, 1.0)
    spec = AuditSpec(**{**SPEC, "weight": "w"})
    comp = compare_audits(audit(d1.assign(w=w1), spec), audit(d2.assign(w=1.0), spec))
    row = comp.changes.set_index(["attribute", "group", "metric"]).loc[
        ("sex", "Female", "selection_rate")]
    s1, s2 = d1[d1["sex"] == "Female"], d2[d2["sex"] == "Female"]
    # doubling every weight of a group changes neither its rate nor its effective count
    x1, n1 = (s1["approved"] == "yes").sum(), len(s1)
    x2, n2 = (s2["approved"] == "yes").sum(), len(s2)
    assert row["p_value"] == pytest.approx(
        st.chi2_contingency([[x1, n1 - x1], [x2, n2 - x2]], correction=False).pvalue)


def test_weighted_groups_publish_their_squared_weights_and_count_kish_rows():
    d1, d2 = period(1), period(2)
    rng = np.random.default_rng(5)
    d1 = d1.assign(w=rng.lognormal(0, 1, len(d1)))
    d2 = d2.assign(w=rng.lognormal(0, 1, len(d2)))
    spec = AuditSpec(**{**SPEC, "weight": "w"})
    a1, a2 = audit(d1, spec), audit(d2, spec)
    rec = {(g["attribute"], g["group"]): g for g in json.loads(a1.to_json())["groups"]}
    fem = d1[d1["sex"] == "Female"]
    assert rec[("sex", "Female")]["weight_sq"] == pytest.approx((fem["w"] ** 2).sum())
    assert rec[("sex", "Female")]["n_effective"] == pytest.approx(
        fem["w"].sum() ** 2 / (fem["w"] ** 2).sum())
    comp = compare_audits(json.loads(a1.to_json()), a2)
    assert not any("squared weights" in w for w in comp.warnings)
    row = comp.changes.set_index(["attribute", "group", "metric"]).loc[
        ("sex", "Female", "selection_rate")]

    def kish(d):  # the weighted rate over Kish's effective rows, by hand
        s = d[d["sex"] == "Female"]
        n_eff = s["w"].sum() ** 2 / (s["w"] ** 2).sum()
        rate = s.loc[s["approved"] == "yes", "w"].sum() / s["w"].sum()
        return rate * n_eff, n_eff

    (x1, n1), (x2, n2) = kish(d1), kish(d2)
    assert n1 < 0.6 * (d1["sex"] == "Female").sum()  # unequal weights: far fewer rows
    p1, p2, pool = x1 / n1, x2 / n2, (x1 + x2) / (n1 + n2)
    z = (p2 - p1) / math.sqrt(pool * (1 - pool) * (1 / n1 + 1 / n2))
    assert row["p_value"] == pytest.approx(2 * st.norm.sf(abs(z)), rel=1e-9)
    # an older JSON without the squared weights still compares, with a warning
    old = json.loads(a1.to_json())
    for g in old["groups"]:
        g.pop("weight_sq"), g.pop("n_effective")
    comp_old = compare_audits(old, a2)
    assert any("no sums of squared weights" in w for w in comp_old.warnings)
    row_old = comp_old.changes.set_index(["attribute", "group", "metric"]).loc[
        ("sex", "Female", "selection_rate")]
    assert row_old["change_ci_high"] - row_old["change_ci_low"] < \
        row["change_ci_high"] - row["change_ci_low"]


def test_weighted_change_intervals_keep_their_coverage_with_unequal_weights():
    """Two periods with the same population rate, very unequal weights that
    are unrelated to the decision: Kish's effective rows give intervals that
    cover the true change (0) about 95% of the time; counting the rows
    instead (an older JSON) covers it far less often.  Each replicate is one
    attribute of a pair of audit JSONs written from pandas sums, so the
    comparison runs once over every replicate."""
    rng = np.random.default_rng(2024)
    n, reps = 500, 400

    def audit_json(squares: bool) -> dict:
        rows = pd.DataFrame({"rep": np.repeat(np.arange(reps), n)})
        rows["d"] = rng.random(len(rows)) < 0.3
        rows["w"] = np.where(rng.random(len(rows)) < 0.2, 8.0, 1.0) * rng.uniform(
            0.5, 1.5, len(rows))
        rows["wd"] = rows["w"] * rows["d"]
        rows["w2"] = rows["w"] ** 2
        s = rows.groupby("rep").agg(n=("w", "size"), weight=("w", "sum"),
                                    selected=("wd", "sum"), weight_sq=("w2", "sum"))
        groups = [{"model": "m", "attribute": f"replicate {r}", "group": "all",
                   "n": int(x.n), "weight": x.weight, "selected": x.selected,
                   **({"weight_sq": x.weight_sq} if squares else {})}
                  for r, x in s.iterrows()]
        return {"spec": {"weight": "w"}, "provenance": {"weighted": True}, "groups": groups}

    def coverage(squares: bool) -> float:
        comp = compare_audits(audit_json(squares), audit_json(squares), n_boot=0)
        ch = comp.changes[comp.changes["metric"] == "selection_rate"]
        assert len(ch) == reps
        return float(((ch["change_ci_low"] <= 0) & (ch["change_ci_high"] >= 0)).mean())

    # 400 replicates of a 95% interval: between 0.92 and 0.98 (binomial, 99.7%)
    assert 0.92 <= coverage(True) <= 0.98
    assert coverage(False) < 0.85


def test_read_audit_refuses_what_is_not_an_audit(tmp_path):
    for bad, words in ((b"not json", "not valid JSON"), (b"[1, 2]", "not a JSON object"),
                       (b'{"spec": {}, "groups": [{"model": "m"}]}', "no 'attribute'"),
                       (b'{"spec": {}, "groups": [{"model": "m", "attribute": "a", '
                        b'"group": "g", "n": 3}]}', "confusion counts"),
                       (b'{"spec": {}, "groups": [{"model": "m", "attribute": "a", '
                        b'"group": "g", "n": -3, "selected": 1}]}', "counts of 0 or more"),
                       (b"\xff\xfe", "not UTF-8")):
        with pytest.raises(InputError, match=words):
            read_audit(bad)
    with pytest.raises(InputError, match="Could not read"):
        read_audit(tmp_path / "missing.json")


def test_audits_without_a_true_outcome_compare_their_selection_rates():
    d1, d2 = period(1), period(2)
    spec = AuditSpec(**{**SPEC, "label": None, "positive": "yes"})
    a1, a2 = audit(d1, spec), audit(d2, spec)
    comp = compare_audits(read_audit(a1.to_json()), a2)
    assert set(comp.changes["metric"]) == {"selection_rate"}
    row = comp.changes.set_index(["attribute", "group"]).loc[("race", "Black")]
    s1, s2 = d1[d1["race"] == "Black"], d2[d2["race"] == "Black"]
    assert row["change"] == pytest.approx((s2["approved"] == "yes").mean()
                                          - (s1["approved"] == "yes").mean())


# --------------------------------------------------------------------------
# size and power, by simulation
# --------------------------------------------------------------------------
def test_size_and_power_of_the_rate_change_and_gap_tests():
    rng = np.random.default_rng(2026)
    reps, alpha = 4000, 0.05
    n1, n2 = 400, 500
    # a rate that does not change: rejected about alpha of the time
    x1, x2 = rng.binomial(n1, 0.3, reps), rng.binomial(n2, 0.3, reps)
    _, lo, hi, p, _ = rate_change(x1, n1, x2, n2)
    tol = 3 * math.sqrt(alpha * (1 - alpha) / reps)
    assert abs((p < alpha).mean() - alpha) < tol
    assert ((lo <= 0) & (hi >= 0)).mean() > 1 - alpha - tol  # coverage of the interval
    # a planted change of 10 points: found as often as the normal formula's power says
    x2 = rng.binomial(n2, 0.4, reps)
    _, lo, hi, p, _ = rate_change(x1, n1, x2, n2)
    se = math.sqrt(0.3 * 0.7 / n1 + 0.4 * 0.6 / n2)
    power = st.norm.cdf(0.1 / se - st.norm.ppf(1 - alpha / 2))
    assert power > 0.85 and abs((p < alpha).mean() - power) < 0.03
    assert ((lo <= 0.1) & (hi >= 0.1)).mean() > 1 - alpha - tol
    # a gap whose ratio stays 0.6 while the rates move: the log-ratio test holds its size
    ng, nr = 300, 900
    g1, r1 = rng.binomial(ng, 0.24, reps), rng.binomial(nr, 0.4, reps)
    g2, r2 = rng.binomial(ng, 0.3, reps), rng.binomial(nr, 0.5, reps)
    se = np.sqrt(log_ratio_se(g1, ng, r1, nr) ** 2 + log_ratio_se(g2, ng, r2, nr) ** 2)
    z = (np.log((g2 / ng) / (r2 / nr)) - np.log((g1 / ng) / (r1 / nr))) / se
    assert abs((2 * st.norm.sf(np.abs(z)) < alpha).mean() - alpha) < tol
    # ... and finds a gap that closes from 0.6 to 0.9 (power by the delta method's formula)
    g2 = rng.binomial(ng, 0.45, reps)
    se_true = math.sqrt(sum(1 / (n * q) - 1 / n for n, q in ((ng, .24), (nr, .4), (ng, .45),
                                                             (nr, .5))))
    power = st.norm.cdf(math.log(1.5) / se_true - st.norm.ppf(1 - alpha / 2))
    se = np.sqrt(log_ratio_se(g1, ng, r1, nr) ** 2 + log_ratio_se(g2, ng, r2, nr) ** 2)
    z = (np.log((g2 / ng) / (r2 / nr)) - np.log((g1 / ng) / (r1 / nr))) / se
    assert power > 0.85 and abs((2 * st.norm.sf(np.abs(z)) < alpha).mean() - power) < 0.03


@pytest.mark.slow
def test_whole_comparisons_find_the_planted_change_and_not_the_absent_one():
    """Many pairs of audits: the race gap (planted: it narrows) is found
    significant most of the time; the sex gap (planted: no change) is
    flagged at most about alpha of the time."""
    seeds = 40
    spec = AuditSpec(**{**SPEC, "sensitive": ["sex", "race"]})
    found = flagged = 0
    for s in range(seeds):
        a1 = audit(make_periods.generate(1000 + s, 3000, 1.1, 1.2), spec)
        a2 = audit(make_periods.generate(5000 + s, 3000, 0.2, 1.2), spec)
        comp = compare_audits(a1, a2, n_boot=200)
        g = comp.gaps.set_index(["attribute", "group", "metric"])
        found += bool(g.loc[("race", "Black", "selection_rate"), "significant"])
        flagged += bool(g.loc[("sex", "Female", "selection_rate"), "p_value"] < 0.05)
    assert found >= 0.8 * seeds
    # binomial tolerance: P(X >= 6) < 0.05 for X ~ Binomial(40, 0.05)
    assert flagged <= 5


# --------------------------------------------------------------------------
# paired: two models on the same rows
# --------------------------------------------------------------------------
def _two_models(n=3000, seed=5):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"g": rng.choice(["a", "b"], n), "y": rng.random(n) < 0.4})
    df["m1"] = np.where(rng.random(n) < 0.8, df["y"], ~df["y"])
    df["m2"] = np.where(rng.random(n) < 0.7, df["m1"], rng.random(n) < 0.5)
    return df.astype({"y": int, "m1": int, "m2": int})


def test_paired_counts_are_the_crosstab_and_add_up_over_parts():
    df = _two_models()
    spec = AuditSpec(label="y", positive=1, predictions=["m1", "m2"], sensitive=["g"])
    p = prepare(df, spec)
    idx = GroupIndex.build(p)
    joint = paired_counts(p, idx, "m1", "m2")
    ct = df.groupby(["g", "y", "m1", "m2"]).size()
    groups = list(idx.levels["g"])
    for (g, y, a, b), n in ct.items():
        combo = int(np.flatnonzero(idx.combos[:, 0] == groups.index(g))[0])
        assert joint[combo, y, a, b] == n
    halves = [df.iloc[:1000], df.iloc[1000:]]
    parts = []
    for h in halves:
        ph = prepare(h, spec)
        ih = GroupIndex.build(ph)
        parts.append(paired_counts(ph, ih, "m1", "m2"))
    assert np.array_equal(parts[0] + parts[1], joint)


@pytest.mark.parametrize("weighted", [False, True])
def test_the_count_cube_keeps_the_joint_decisions_the_paired_comparison_reads(weighted):
    """The pass that counts the cube also counts every model's decisions
    jointly: the same table as a crosstab of the rows (weights summed), and
    the audit's paired comparison read off it equals the one counted again
    from the rows."""
    from fairness_core.audit import run_audit
    from fairness_core.compare import audit_pairs
    from fairness_core.counts import count_cube
    df = _two_models(n=5000, seed=11)
    df["m3"] = (df["m1"] + df["m2"] + (np.arange(len(df)) % 3 == 0)) % 2
    df["w"] = np.random.default_rng(2).random(len(df)) + 0.5
    spec = AuditSpec(label="y", positive=1, predictions=["m1", "m2", "m3"], sensitive=["g"],
                     weight="w" if weighted else None, n_bootstrap=0)
    p = prepare(df, spec)
    idx = GroupIndex.build(p)
    cube = count_cube(p, idx)
    assert cube.joint is not None and (cube.joint_rows is not None) == weighted
    groups = list(idx.levels["g"])
    want = df.groupby(["g", "y", "m1", "m2", "m3"])["w"].agg(["sum", "size"])
    for (g, y, a, b, c), r in want.iterrows():
        combo = int(np.flatnonzero(idx.combos[:, 0] == groups.index(g))[0])
        got = cube.joint[combo, y, a, b, c]
        assert got == pytest.approx(r["sum"] if weighted else r["size"], rel=1e-12)
        if weighted:
            assert cube.joint_rows[combo, y, a, b, c] == r["size"]
    assert cube.joint.sum() == pytest.approx(df["w"].sum() if weighted else len(df))
    result = run_audit(p)
    again = audit_pairs(p, result, idx)  # counted from the rows
    assert len(result.paired) > 0 and set(result.paired["model_a"]) == {"m1", "m2"}
    pd.testing.assert_frame_equal(result.paired, again)


def test_paired_comparison_matches_a_hand_mcnemar():
    df = _two_models()
    spec = AuditSpec(label="y", positive=1, predictions=["m1", "m2"], sensitive=["g"])
    p = prepare(df, spec)
    out = paired_comparison(p, None, "m1", "m2")
    row = out.set_index(["attribute", "group", "metric"])
    for g in ("a", "b"):
        s = df[df["g"] == g]
        pos = s[s["y"] == 1]
        b = ((pos["m1"] == 1) & (pos["m2"] == 0)).sum()
        c = ((pos["m1"] == 0) & (pos["m2"] == 1)).sum()
        r = row.loc[("g", g, "tpr")]
        assert r["value_a"] == pytest.approx(pos["m1"].mean())
        assert r["value_b"] == pytest.approx(pos["m2"].mean())
        assert r["difference"] == pytest.approx(pos["m1"].mean() - pos["m2"].mean())
        assert r["p_value"] == pytest.approx(st.binomtest(int(b), int(b + c)).pvalue)
        ok1, ok2 = s["m1"] == s["y"], s["m2"] == s["y"]
        r = row.loc[("g", g, "accuracy")]
        assert r["difference"] == pytest.approx(ok1.mean() - ok2.mean())
        bb, cc = (ok1 & ~ok2).sum(), (~ok1 & ok2).sum()
        assert r["p_value"] == pytest.approx(st.binomtest(int(bb), int(bb + cc)).pvalue)
    assert row.loc[("(overall)", "(all)", "selection_rate"), "n"] == len(df)
    adj = st.false_discovery_control(out["p_value"].to_numpy())
    assert out["p_value_adjusted"].to_numpy() == pytest.approx(adj)
    with pytest.raises(InputError, match="two different models"):
        paired_comparison(p, None, "m1", "m1")


def test_each_model_is_paired_with_the_next_in_the_json_and_the_terminal(tmp_path, capsys):
    df = _two_models(n=4000, seed=8)
    rng = np.random.default_rng(9)
    # a score model that mostly agrees with m2: decided at 0.6
    df["s"] = np.clip(np.where(df["m2"] == 1, 0.75, 0.35) + rng.normal(0, 0.15, len(df)), 0, 1)
    df.to_csv(tmp_path / "d.csv", index=False)
    out = tmp_path / "a.json"
    assert main([str(tmp_path / "d.csv"), "--label", "y", "--positive", "1", "--prediction",
                 "m1", "--prediction", "m2", "--score", "s", "--threshold", "s=0.6",
                 "--sensitive", "g", "--bootstrap", "0", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    paired = pd.DataFrame(json.loads(out.read_text())["paired"])
    # consecutive pairs: m1 with m2, m2 with s
    assert list(dict.fromkeys(zip(paired["model_a"], paired["model_b"]))) == [
        ("m1", "m2"), ("m2", "s")]
    df["s_dec"] = (df["s"] >= 0.6).astype(int)
    for a, col_b in (("m1", "m2"), ("m2", "s_dec")):
        for g in ("a", "b"):
            pos = df[(df["g"] == g) & (df["y"] == 1)]
            ct = pd.crosstab(pos[a], pos[col_b]).reindex(index=[0, 1], columns=[0, 1],
                                                         fill_value=0)
            only_a, only_b = int(ct.loc[1, 0]), int(ct.loc[0, 1])
            r = paired[(paired["model_a"] == a) & (paired["group"] == g)
                       & (paired["metric"] == "tpr")].iloc[0]
            assert r["value_a"] == pytest.approx(pos[a].mean())
            assert r["value_b"] == pytest.approx(pos[col_b].mean())
            assert (r["discordant_a"], r["discordant_b"]) == (only_a, only_b)
            assert r["p_value"] == pytest.approx(
                st.binomtest(only_a, only_a + only_b).pvalue, rel=1e-9)
    # every pair corrected together (Benjamini-Hochberg by scipy)
    ok = paired["p_value"].notna()
    assert paired.loc[ok, "p_value_adjusted"].to_numpy() == pytest.approx(
        st.false_discovery_control(paired.loc[ok, "p_value"].to_numpy()))
    assert (paired["significant"] == (paired["p_value_adjusted"] < 0.05)).all()
    # the terminal lists the significant differences only
    section = text.split("Models compared on the same rows")[1]
    n_sig = int(paired["significant"].sum())
    assert f"{n_sig} of {int(ok.sum())} differences are significant" in section
    lines = section.splitlines()
    head = next(i for i, line in enumerate(lines) if line.split()[:2] == ["models",
                                                                           "attribute"])
    shown = lines[head + 1:head + 1 + min(n_sig, 20)]
    assert all(line.rstrip().endswith(("< 0.0001",)) or float(line.split()[-1]) < 0.05
               for line in shown)
    assert n_sig > 20 and lines[head + 21].startswith(f"... {n_sig - 20} more in the JSON")
    # a single model: no paired records
    assert main([str(tmp_path / "d.csv"), "--label", "y", "--positive", "1", "--prediction",
                 "m1", "--sensitive", "g", "--bootstrap", "0", "--json", str(out),
                 "--quiet"]) == 0
    assert "paired" not in json.loads(out.read_text())


# --------------------------------------------------------------------------
# the command line
# --------------------------------------------------------------------------
def test_cli_round_trip_over_two_periods(tmp_path, capsys):
    sys.path.insert(0, str(ROOT / "sample_data"))
    make_periods.main([str(tmp_path)])
    common = ["--label", "repaid", "--positive", "yes", "--prediction", "approved",
              "--sensitive", "sex", "--sensitive", "race", "--bootstrap", "0"]
    p1, p2 = tmp_path / "p1.json", tmp_path / "p2.json"
    assert main([str(tmp_path / "loans_period1.csv"), *common, "--json", str(p1),
                 "--quiet"]) == 0
    capsys.readouterr()
    assert main([str(tmp_path / "loans_period2.csv"), *common, "--json", str(p2),
                 "--compare", str(p1)]) == 0
    out = capsys.readouterr().out
    assert "Comparison with the earlier audit p1.json" in out
    assert "Significant changes:" in out
    table = out.split("Significant changes:")[1].split("Comparison findings:")[0]
    assert "Black" in table and "Female" not in table
    doc = json.loads(p2.read_text())
    comp = doc["comparison"]
    rec = next(r for r in comp["gaps"] if r["group"] == "Black"
               and r["metric"] == "selection_rate")
    for k in ("before", "after", "change", "change_ci_low", "change_ci_high", "p_value",
              "p_value_adjusted", "significant"):
        assert k in rec
    assert rec["significant"] is True
    d1, d2 = pd.read_csv(tmp_path / "loans_period1.csv"), pd.read_csv(
        tmp_path / "loans_period2.csv")
    ch = next(r for r in comp["changes"] if r["group"] == "Black"
              and r["metric"] == "selection_rate")
    want = (d2[d2["race"] == "Black"]["approved"] == "yes").mean() - \
        (d1[d1["race"] == "Black"]["approved"] == "yes").mean()
    assert ch["change"] == pytest.approx(want)
    assert comp["findings"] and comp["findings"][0]["significant"]
    # a baseline that is not an audit, and one that matches nothing: exit 2, one line
    (tmp_path / "x.json").write_text('{"hello": 1}')
    assert main([str(tmp_path / "loans_period2.csv"), *common, "--compare",
                 str(tmp_path / "x.json"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "is not an audit's JSON" in err and "Traceback" not in err
    other = ["--label", "repaid", "--positive", "yes", "--prediction", "approved",
             "--sensitive", "sex", "--bootstrap", "0"]
    d1.rename(columns={"approved": "approved"}).to_csv(tmp_path / "s.csv", index=False)
    assert main([str(tmp_path / "s.csv"), *other[:-4], "--sensitive", "race", "--bootstrap",
                 "0", "--json", str(tmp_path / "r.json"), "--quiet"]) == 0
    d2.assign(region="north").to_csv(tmp_path / "t.csv", index=False)
    assert main([str(tmp_path / "t.csv"), "--label", "repaid", "--positive", "yes",
                 "--prediction", "approved", "--sensitive", "region", "--bootstrap", "0",
                 "--compare", str(tmp_path / "r.json"), "--quiet"]) == 2
    assert "Nothing in r.json matches this audit" in capsys.readouterr().err


def test_report_has_the_comparison_section(two_periods):
    from fairness_core.report import html_report
    _, _, a1, a2 = two_periods
    a2.comparison = compare_audits(a1, a2)
    try:
        doc = html_report(a2)
    finally:
        a2.comparison = None
    assert "Comparison with an earlier audit" in doc
    first = compare_audits(a1, a2).findings[0]["text"]
    from markupsafe import escape
    assert str(escape(first)) in doc
    assert "Comparison with an earlier audit" not in html_report(a1)


def test_report_model_comparison_lists_the_significant_paired_differences():
    from markupsafe import escape

    from fairness_core.report import html_report
    df = _two_models(n=4000, seed=8)
    r = audit(df, AuditSpec(label="y", positive=1, predictions=["m1", "m2"], sensitive=["g"],
                            n_bootstrap=0))
    doc = html_report(r)
    section = doc.split("Models compared on the same rows")[1].split("<h2")[0]
    sig = r.paired[r.paired["significant"]]
    assert len(sig) and "Significant differences: m1 and m2" in section
    # the largest significant difference of a group's TPR, as pandas counts it
    pos = df[(df["g"] == "a") & (df["y"] == 1)]
    want = f"{100 * (pos['m1'].mean() - pos['m2'].mean()):+.1f} pts"
    row = sig[(sig["group"] == "a") & (sig["metric"] == "tpr")]
    assert len(row) and want in section
    assert section.count("<li>") == len(sig)
    assert str(escape("'m1'")) in section


# --------------------------------------------------------------------------
# the dashboard (AppTest)
# --------------------------------------------------------------------------
def _app():
    from tests.test_app import new_app
    at = new_app().run()
    assert not at.exception
    return at


def test_compare_page_shows_the_changes_of_an_uploaded_baseline():
    from tests.test_app import assert_clean, ctx, page, unescape
    at = _app()
    result = ctx(at).result
    loans = pd.read_csv(ROOT / "sample_data" / "loans.csv")
    earlier = loans.iloc[::2].copy()  # every other row, and a planted change
    earlier.loc[earlier["race"] == "Black", "model_a_approved"] = "yes"
    base = audit(earlier, result.spec)
    at = page(at, "compare")
    assert "Compare with an earlier audit" in [t.value for t in at.main.title]
    at.file_uploader(key="compare_upload").set_value(
        ("earlier.json", base.to_json().encode("utf-8"), "application/json")).run()
    assert_clean(at)
    want = compare_audits(json.loads(base.to_json()), result)
    shown = [unescape(m.value) for m in at.main.markdown]
    assert any(want.findings[0]["text"] in s for s in shown)
    assert len(at.get("plotly_chart")) == 1
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    model, attribute = ctx(at).prefs.get("model_shown") or result.spec.models[0], \
        ctx(at).prefs.get("attribute_shown") or result.spec.attribute_names()[0]
    metric = at.selectbox(key="compare_metric").value
    rows = want.changes[(want.changes["model"] == model)
                        & (want.changes["attribute"] == attribute)
                        & (want.changes["metric"] == metric)]
    after = next(t for t in fig["data"] if t.get("name") == "this audit")
    scale = 100 if metric != "f1" else 1
    assert sorted(np.round(np.array(after["x"], dtype=float), 6)) == pytest.approx(
        sorted(np.round(rows["after"].to_numpy() * scale, 6)))
    # the table of significant changes, then every change
    table = at.main.dataframe[0].value
    n_sig = int(want.gaps["significant"].sum() + want.changes["significant"].sum())
    assert n_sig > 0 and len(table) == n_sig
    assert "Black" in set(table["group"])
    at.toggle(key="compare_only_sig").set_value(False).run()
    assert len(at.main.dataframe[0].value) == len(want.gaps) + len(want.changes)
    # not an audit: a message, no traceback
    at.file_uploader(key="compare_upload").set_value(
        ("notes.json", b'{"hello": 1}', "application/json")).run()
    assert_clean(at)
    assert any("is not an audit's JSON" in unescape(e.value) for e in at.main.error)


def _download(at, label: str) -> bytes:
    """The bytes a download button on the page serves, read from the
    in-memory media store of the app's last run."""
    import gc

    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
    url = next(b.proto.url for b in at.get("download_button") if b.proto.label == label)
    file_id = url.rsplit("/", 1)[-1].split(".")[0]
    for store in (o for o in gc.get_objects() if isinstance(o, MemoryMediaFileStorage)):
        try:
            return bytes(store.get_file(file_id).content)
        except Exception:  # another run's store
            continue
    raise AssertionError(f"no bytes behind the download {label!r}")


def test_exports_carry_the_comparison_loaded_on_the_compare_page():
    from markupsafe import escape

    from tests.test_app import assert_clean, ctx, page, unescape
    at = _app()
    result = ctx(at).result
    loans = pd.read_csv(ROOT / "sample_data" / "loans.csv")
    earlier = loans.iloc[::2].copy()
    earlier.loc[earlier["race"] == "Black", "model_a_approved"] = "yes"
    base = audit(earlier, result.spec)
    at = page(at, "compare")
    at.file_uploader(key="compare_upload").set_value(
        ("earlier.json", base.to_json().encode("utf-8"), "application/json")).run()
    assert_clean(at)
    at = page(at, "export")
    assert_clean(at)
    assert any("'earlier.json'" in unescape(i.value) and "include the comparison"
               in unescape(i.value) for i in at.main.info)
    want = compare_audits(json.loads(base.to_json()), result)
    doc = json.loads(_download(at, "Full audit (JSON)"))
    assert doc["comparison"]["baseline"]["name"] == "earlier.json"
    assert doc["comparison"]["findings"][0]["text"] == want.findings[0]["text"]
    rec = next(r for r in doc["comparison"]["changes"] if r["group"] == "Black"
               and r["metric"] == "selection_rate" and r["model"] == "model_a_approved")
    b, c = earlier[earlier["race"] == "Black"], loans[loans["race"] == "Black"]
    assert rec["change"] == pytest.approx((c["model_a_approved"] == "yes").mean()
                                          - (b["model_a_approved"] == "yes").mean())
    # the models on the same rows: each with the next, McNemar on pandas' counts
    a_, b_ = result.spec.models[:2]
    pos = loans[(loans["sex"] == "Female") & (loans["repaid"] == "yes")]
    dec = {m: (pos[m] == "yes") if m in result.spec.predictions else
           pos[m] >= result.provenance["thresholds"][m]["threshold"] for m in (a_, b_)}
    ct = pd.crosstab(dec[a_], dec[b_]).reindex(index=[False, True], columns=[False, True],
                                                fill_value=0)
    only_a, only_b = int(ct.loc[True, False]), int(ct.loc[False, True])
    rec = next(r for r in doc["paired"] if r["model_a"] == a_ and r["model_b"] == b_
               and r["group"] == "Female" and r["metric"] == "tpr")
    assert rec["p_value"] == pytest.approx(st.binomtest(only_a, only_a + only_b).pvalue)
    # the report has the section
    at.checkbox(key="report_pdf").set_value(False).run()
    at.button(key="make_report").click().run()
    assert_clean(at)
    html = at.session_state["report"][1]["html"][0].decode("utf-8")
    assert "Comparison with an earlier audit" in html
    assert str(escape(want.findings[0]["text"])) in html
    assert "Models compared on the same rows" in html
    # the audit other sessions share is left as it was
    assert ctx(at).result.comparison is None and ctx(at).result.paired is None


def test_models_page_compares_two_models_on_the_same_rows():
    from tests.test_app import assert_clean, page
    at = page(_app(), "models")
    assert_clean(at)
    a, b = at.selectbox(key="paired_a").value, at.selectbox(key="paired_b").value
    assert a != b
    attribute = at.selectbox(key="attribute_pick").value
    table = at.main.dataframe[-1].value
    loans = pd.read_csv(ROOT / "sample_data" / "loans.csv")
    assert a == "model_a_approved" and b == "model_b_approved" and attribute == "sex"
    pos = loans[(loans["sex"] == "Female") & (loans["repaid"] == "yes")]
    diff = (pos[a] == "yes").mean() - (pos[b] == "yes").mean()
    row = table[(table["group"] == "Female") & (table["metric"] == "TPR")].iloc[0]
    assert row["difference"] == f"{100 * diff:+.1f} pts"
    only_a = ((pos[a] == "yes") & (pos[b] == "no")).sum()
    only_b = ((pos[a] == "no") & (pos[b] == "yes")).sum()
    assert row["rows: only first / only second"] == f"{only_a:,} / {only_b:,}"


def test_a_different_threshold_or_positive_class_is_a_warning_and_holm_is_holms():
    loans = pd.read_csv(ROOT / "sample_data" / "loans.csv")
    base = dict(label="repaid", scores=["model_a_score"], sensitive=["sex"], n_bootstrap=0)
    a1 = audit(loans.iloc[:3000], AuditSpec(**base, positive="yes", threshold=0.5))
    a2 = audit(loans.iloc[3000:], AuditSpec(**base, positive="no", threshold=0.6,
                                            correction="holm"))
    comp = compare_audits(a1.to_json(), a2)
    joined = " ".join(comp.warnings)
    assert "positive class: 'yes' in the baseline, 'no' now" in joined
    assert "cut at 0.5 in the baseline and at 0.6 now" in joined
    # Holm's step-down, written out
    p = np.concatenate([comp.changes["p_value"], comp.gaps["p_value"]])
    adj = np.concatenate([comp.changes["p_value_adjusted"], comp.gaps["p_value_adjusted"]])
    ok = ~np.isnan(p)
    q = p[ok]
    order = np.argsort(q)
    m = len(q)
    want = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * q[i]))
        want[i] = running
    assert adj[ok] == pytest.approx(want)
    assert comp.settings["correction"] == "holm"


def test_one_model_each_under_other_names_is_compared_with_a_warning(two_periods):
    d1, d2, a1, _ = two_periods
    spec = AuditSpec(**{**SPEC, "predictions": ["new_model"]})
    a2 = audit(d2.rename(columns={"approved": "new_model"}), spec)
    comp = compare_audits(a1, a2)
    assert any("only model 'approved' is compared with this audit's only model 'new_model'"
               in w for w in comp.warnings)
    assert set(comp.changes["model"]) == {"new_model"}


def test_hostile_names_from_the_baseline_are_shown_visibly(tmp_path, capsys):
    d1, d2 = period(1), period(2)
    evil = "Black\u202e<b>x</b>"
    d1 = d1.assign(race=d1["race"].replace("Asian", evil))
    common = ["--label", "repaid", "--positive", "yes", "--prediction", "approved",
              "--sensitive", "race", "--bootstrap", "0"]
    d1.to_csv(tmp_path / "a.csv", index=False)
    d2.to_csv(tmp_path / "b.csv", index=False)
    assert main([str(tmp_path / "a.csv"), *common, "--json", str(tmp_path / "a.json"),
                 "--quiet"]) == 0
    capsys.readouterr()
    assert main([str(tmp_path / "b.csv"), *common, "--compare", str(tmp_path / "a.json")]) == 0
    out = capsys.readouterr().out
    assert "\u202e" not in out  # the raw override never reaches the terminal
    line = next(x for x in out.splitlines() if "Groups only in the baseline" in x)
    assert "<U+202E>" in line or "\\u202e" in line


def test_a_gap_that_changes_side_is_reversed():
    rng = np.random.default_rng(8)

    def table(p_women, p_men, n=3000):
        sex = rng.choice(["Female", "Male"], n)
        repaid = rng.random(n) < 0.6
        approved = rng.random(n) < np.where(sex == "Female", p_women, p_men)
        yes_no = np.array(["no", "yes"], dtype=object)
        return pd.DataFrame({"sex": sex, "repaid": yes_no[repaid.astype(int)],
                             "approved": yes_no[approved.astype(int)]})

    spec = AuditSpec(**{**SPEC, "sensitive": ["sex"], "reference": {"sex": "Male"}})
    comp = compare_audits(audit(table(0.35, 0.5), spec), audit(table(0.6, 0.45), spec))
    row = comp.gaps.set_index(["group", "metric"]).loc[("Female", "selection_rate")]
    assert row["before"] < 0.8 and row["after"] > 1.25
    assert row["trend"] == "reversed" and row["significant"]
    f = next(f for f in comp.findings if f["kind"] == "gap_change"
             and f["metric"] == "selection_rate")
    assert "reversed from 0.7" in f["text"] and f["severity"] == "worse"


def test_paired_counts_of_a_count_table_equal_those_of_its_rows():
    from fairness_core.counts import count_records
    df = _two_models()
    spec = AuditSpec(label="y", positive=1, predictions=["m1", "m2"], sensitive=["g"])
    p = prepare(df, spec)
    table, n_col, _ = count_records(p)
    assert len(table) < len(df)
    pc = prepare(table, AuditSpec(label="y", positive="1", predictions=["m1", "m2"],
                                  sensitive=["g"], counts=n_col))
    rows = paired_comparison(p, None, "m1", "m2")
    counted = paired_comparison(pc, None, "m1", "m2")
    cols = ["n", "value_a", "value_b", "discordant_a", "discordant_b", "p_value"]
    assert counted[cols].to_numpy(dtype=float) == pytest.approx(rows[cols].to_numpy(dtype=float))
