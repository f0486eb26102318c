"""Mitigation preview: per-group thresholds read off the score counts.

References: the rows themselves (pandas hand counts of the reported rules),
a brute-force search over every combination of thresholds judged like the
audit, and fairlearn's ThresholdOptimizer on the same data.
"""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.metrics import accuracy_score, balanced_accuracy_score

from fairness_core import AuditSpec
from fairness_core.audit import Auditor
from fairness_core.mitigation import (CONSTRAINTS, FAIRLEARN_CONSTRAINTS, OBJECTIVES,
                                      mitigate_auditor)

ROOT = Path(__file__).resolve().parents[1]
LOANS = ROOT / "sample_data" / "loans.csv"


def _frame(n: int, seed: int, n_values: int = 12, weights: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.choice(["a", "b", "c"], n, p=[.5, .3, .2])
    shift = pd.Series(g).map({"a": 0.0, "b": -0.6, "c": 0.4}).to_numpy()
    z = rng.normal(size=n) + shift
    y = (z + rng.normal(0, 1.0, n) > 0).astype(int)
    s = np.round(1 / (1 + np.exp(-z)) * (n_values - 1)) / (n_values - 1)
    out = pd.DataFrame({"y": y, "s": s, "g": g})
    if weights:
        out["w"] = rng.choice([0.5, 1.0, 3.0], n)
    return out


def _spec(**kw) -> AuditSpec:
    base = dict(label="y", positive=1, scores=["s"], sensitive=["g"], n_bootstrap=200)
    base.update(kw)
    return AuditSpec(**base)


def _select_prob(scores: np.ndarray, rule) -> np.ndarray:
    """The probability of a positive decision per row under a reported rule
    (a threshold, None for nobody, or a lottery over thresholds)."""
    if not isinstance(rule, dict):
        return np.zeros(len(scores)) if rule is None else (scores >= rule).astype(float)
    p = np.zeros(len(scores))
    for part in rule["mix"]:
        if part["threshold"] is not None:
            p += part["probability"] * (scores >= part["threshold"])
    return p


def _hand_cells(df, score, label_pos, group_col, thresholds, weight=None) -> pd.DataFrame:
    """Expected confusion counts per group, applying the reported rules to
    the rows with pandas."""
    sel = np.zeros(len(df))
    for group, rule in thresholds.items():
        rows = (df[group_col].astype(str) == group).to_numpy()
        sel[rows] = _select_prob(df.loc[rows, score].to_numpy(dtype=float), rule)
    y = (df["_y"] if "_y" in df else df["y"]).to_numpy() == label_pos
    w = df[weight].to_numpy(dtype=float) if weight else np.ones(len(df))
    frame = pd.DataFrame({"group": df[group_col].astype(str), "tp": w * sel * y,
                          "fp": w * sel * ~y, "fn": w * (1 - sel) * y,
                          "tn": w * (1 - sel) * ~y})
    return frame.groupby("group").sum()


@pytest.fixture(scope="module")
def loans():
    df = pd.read_csv(LOANS)
    spec = AuditSpec(label="repaid", positive="yes", scores=["model_a_score"],
                     sensitive=["sex", "race"], n_bootstrap=200)
    return df, Auditor(df, spec)


@pytest.mark.parametrize("constraint", list(CONSTRAINTS))
@pytest.mark.parametrize("randomised", [False, True])
def test_after_equals_the_rules_applied_to_the_rows(loans, constraint, randomised):
    df, auditor = loans
    m = mitigate_auditor(auditor, attribute="race", constraint=constraint,
                         randomised=randomised)
    d = m.to_dict()
    assert d["feasible"]
    hand = _hand_cells(df.assign(_y=df["repaid"]), "model_a_score", "yes", "race",
                       d["thresholds"])
    after = pd.DataFrame(d["after"]).set_index("group")
    for c in ("tn", "fp", "fn", "tp"):
        np.testing.assert_allclose(after[c].to_numpy(dtype=float),
                                   hand.loc[after.index, c].to_numpy(), atol=1e-9)
    h = hand.loc[after.index]
    np.testing.assert_allclose(after["selection_rate"], (h.tp + h.fp) / h.sum(axis=1),
                               atol=1e-9)
    np.testing.assert_allclose(after["tpr"], h.tp / (h.tp + h.fn), atol=1e-9)
    np.testing.assert_allclose(after["fpr"], h.fp / (h.fp + h.tn), atol=1e-9)
    # the objective over all rows, from scikit-learn on the expected decisions
    sel = np.zeros(len(df))
    for group, rule in d["thresholds"].items():
        rows = (df["race"] == group).to_numpy()
        sel[rows] = _select_prob(df.loc[rows, "model_a_score"].to_numpy(), rule)
    y = (df["repaid"] == "yes").to_numpy()
    assert d["objective_after"] == pytest.approx(np.mean(y * sel + (~y) * (1 - sel)), abs=1e-9)
    today = (df["model_a_score"] >= 0.5).to_numpy()
    assert d["objective_before"] == pytest.approx(accuracy_score(y, today), abs=1e-12)
    # every judged group inside the band around the reference (White, the largest)
    ref = after.loc["White"]
    for metric in CONSTRAINTS[constraint]:
        for group in after.index:
            if after.loc[group, "n"] >= 30:
                ratio = after.loc[group, metric] / ref[metric]
                assert 0.8 - 1e-9 <= ratio <= 1.25 + 1e-9, (group, metric, ratio)
    # a group too small for a verdict keeps today's threshold
    assert d["thresholds"]["Native American"] == 0.5
    if not randomised:
        assert all(not isinstance(r, dict) for r in d["thresholds"].values())


def test_before_intervals_are_the_audit_wilson_intervals(loans):
    df, auditor = loans
    m = mitigate_auditor(auditor, attribute="sex", constraint="demographic_parity")
    before = m.before.set_index("group")
    for group in ("Female", "Male"):
        rows = df[df["sex"] == group]
        k = int((rows["model_a_score"] >= 0.5).sum())
        ci = binomtest(k, len(rows)).proportion_ci(0.95, method="wilson")
        assert before.loc[group, "selection_rate"] == pytest.approx(k / len(rows), abs=1e-12)
        assert before.loc[group, "selection_rate_ci_low"] == pytest.approx(ci.low, abs=1e-9)
        assert before.loc[group, "selection_rate_ci_high"] == pytest.approx(ci.high, abs=1e-9)
    after = m.after
    assert (after["selection_rate_ci_low"] <= after["selection_rate"] + 1e-12).all()
    assert (after["selection_rate_ci_high"] >= after["selection_rate"] - 1e-12).all()


def _brute_force(df, constraint, objective, tol, strategy="largest", min_size=1):
    """The best objective over every combination of one threshold per group,
    judged as the audit judges the gaps (ratio to the reference group)."""
    y = df["y"].to_numpy() == 1
    w = df["w"].to_numpy() if "w" in df else np.ones(len(df))
    cands = np.r_[np.unique(df["s"]), np.inf]
    groups = sorted(df["g"].unique())
    masks = {g: (df["g"] == g).to_numpy() for g in groups}
    n = {g: int(masks[g].sum()) for g in groups}
    ref = max(groups, key=lambda g: (n[g], -groups.index(g)))
    judged = [g for g in groups if n[g] >= min_size]
    best = -np.inf
    for combo in itertools.product(cands, repeat=len(groups)):
        sel = np.zeros(len(df), dtype=bool)
        for g, t in zip(groups, combo):
            sel[masks[g]] = df["s"].to_numpy()[masks[g]] >= t
        ok = True
        for metric in CONSTRAINTS.get(constraint, ()):
            rates = {}
            for g in judged:
                m = masks[g]
                if metric == "selection_rate":
                    rates[g] = np.sum(w[m] * sel[m]) / np.sum(w[m])
                elif metric == "tpr":
                    rates[g] = np.sum(w[m] * (sel & y)[m]) / np.sum(w[m] * y[m])
                else:
                    rates[g] = np.sum(w[m] * (sel & ~y)[m]) / np.sum(w[m] * ~y[m])
            if strategy == "largest":
                r0 = rates[ref]
                for g in judged:
                    v = rates[g]
                    if r0 == 0:
                        ok &= v == 0
                    else:
                        ok &= tol - 1e-12 <= v / r0 <= 1 / tol + 1e-12
            else:
                hi, lo = max(rates.values()), min(rates.values())
                ok &= hi == 0 or lo / hi >= tol - 1e-12
        if not ok:
            continue
        if objective == "accuracy":
            val = accuracy_score(y, sel, sample_weight=w)
        else:
            val = balanced_accuracy_score(y, sel, sample_weight=w)
        best = max(best, val)
    return best


@pytest.mark.parametrize("seed,constraint,objective,tol,strategy,weights", [
    (0, "demographic_parity", "accuracy", 0.8, "largest", False),
    (1, "demographic_parity", "balanced_accuracy", 0.9, "largest", True),
    (2, "equal_opportunity", "accuracy", 0.8, "largest", False),
    (3, "equal_opportunity", "balanced_accuracy", 0.95, "best", False),
    (4, "demographic_parity", "accuracy", 0.85, "best", True),
    (5, "equalized_odds", "accuracy", 0.7, "largest", False),
    (6, "equalized_odds", "balanced_accuracy", 0.8, "largest", True),
])
def test_single_thresholds_are_optimal_against_brute_force(seed, constraint, objective, tol,
                                                           strategy, weights):
    df = _frame(400, seed, n_values=9, weights=weights)
    spec = _spec(tolerance=tol, reference_strategy=strategy, min_group_size=1,
                 weight="w" if weights else None)
    m = mitigate_auditor(Auditor(df, spec), attribute="g", constraint=constraint,
                         objective=objective, randomised=False, tradeoff=False)
    want = _brute_force(df, constraint, objective, tol, strategy)
    assert m.feasible
    assert m.objective_after == pytest.approx(want, abs=1e-12)
    # without the constraint, per-group thresholds: the best combination, by brute force
    free = _brute_force(df, None, objective, tol, strategy)
    assert m.objective_unconstrained == pytest.approx(free, abs=1e-12)
    # a lottery can only do as well or better
    r = mitigate_auditor(Auditor(df, spec), attribute="g", constraint=constraint,
                         objective=objective, randomised=True, tradeoff=False)
    assert r.objective_after >= m.objective_after - 1e-12


class _Score(ClassifierMixin, BaseEstimator):
    """A fitted 'model' whose prediction is the score column itself."""

    def __sklearn_is_fitted__(self):
        return True

    def fit(self, X, y):
        return self

    def predict(self, X):
        return np.asarray(X)[:, 0]


def _fairlearn_objective(df, constraint, objective, score="s", group="g", label="y"):
    from fairlearn.postprocessing import ThresholdOptimizer

    X = df[[score]].to_numpy(dtype=float)
    y = df[label].to_numpy()
    to = ThresholdOptimizer(estimator=_Score(), constraints=FAIRLEARN_CONSTRAINTS[constraint],
                            objective=OBJECTIVES[objective], prefit=True,
                            predict_method="predict")
    to.fit(X, y, sensitive_features=df[group])
    p = to._pmf_predict(X, sensitive_features=df[group])[:, 1]
    pos = y == 1
    if objective == "accuracy":
        return float(np.mean(pos * p + (~pos) * (1 - p)))
    return float(0.5 * (p[pos].mean() + (1 - p[~pos]).mean()))


@pytest.mark.parametrize("constraint", list(CONSTRAINTS))
@pytest.mark.parametrize("objective", list(OBJECTIVES))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_at_least_as_good_as_fairlearn(constraint, objective, seed):
    # ThresholdOptimizer enforces exact equality of the constrained rates
    # across all groups; the same constraint here is the ratio band 1.0
    # with every group judged (minimum group size 1) and lotteries allowed,
    # which makes fairlearn's answer one of the rules searched here.
    df = _frame(1500, seed, n_values=40)
    spec = _spec(tolerance=1.0, min_group_size=1)
    m = mitigate_auditor(Auditor(df, spec), attribute="g", constraint=constraint,
                         objective=objective, randomised=True, tradeoff=False)
    theirs = _fairlearn_objective(df, constraint, objective)
    assert m.feasible
    assert m.objective_after >= theirs - 1e-9
    after = m.after.set_index("group")
    for metric in CONSTRAINTS[constraint]:
        v = after[metric].to_numpy(dtype=float)
        assert np.ptp(v) <= 1e-9


@pytest.mark.parametrize("constraint", list(CONSTRAINTS))
def test_at_least_as_good_as_fairlearn_on_the_loans_sample(constraint):
    df = pd.read_csv(LOANS)
    df["y"] = (df["repaid"] == "yes").astype(int)
    spec = AuditSpec(label="y", positive=1, scores=["model_b_score"], sensitive=["race"],
                     tolerance=1.0, min_group_size=1, n_bootstrap=0)
    m = mitigate_auditor(Auditor(df, spec), attribute="race", constraint=constraint,
                         randomised=True, tradeoff=False)
    theirs = _fairlearn_objective(df, constraint, "accuracy", score="model_b_score",
                                  group="race")
    assert m.objective_after >= theirs - 1e-9


def test_tradeoff_curve(loans):
    _, auditor = loans
    m = mitigate_auditor(auditor, attribute="race", constraint="demographic_parity")
    curve = m.tradeoff
    levels = curve[curve["point"] == ""]
    assert 20 <= len(levels) <= 40
    # a stricter band can only cost objective, and its worst ratio meets the band
    v = levels.sort_values("tolerance")
    assert (np.diff(v["objective"].to_numpy()) <= 1e-12).all()
    assert (v["worst_ratio"] >= v["tolerance"] - 1e-9).all()
    assert set(curve["point"]) >= {"today", "chosen"}
    chosen = curve[curve["point"] == "chosen"].iloc[0]
    assert chosen["objective"] == pytest.approx(m.objective_after)


def test_bad_choices_are_input_errors(loans):
    from fairness_core.errors import InputError

    _, auditor = loans
    with pytest.raises(InputError, match="not an audited attribute"):
        mitigate_auditor(auditor, attribute="age", constraint="demographic_parity")
    with pytest.raises(InputError, match="Unknown constraint"):
        mitigate_auditor(auditor, attribute="sex", constraint="parity")
    with pytest.raises(InputError, match="not a score column"):
        mitigate_auditor(auditor, attribute="sex", constraint="demographic_parity",
                         model="nope")
    df = pd.read_csv(LOANS)
    no_score = Auditor(df, AuditSpec(label="repaid", positive="yes",
                                     predictions=["model_a_approved"],
                                     prediction_positive={"model_a_approved": "yes"},
                                     sensitive=["sex"]))
    with pytest.raises(InputError, match="needs a score column"):
        mitigate_auditor(no_score, attribute="sex", constraint="demographic_parity")
    no_label = Auditor(df, AuditSpec(scores=["model_a_score"], sensitive=["sex"]))
    with pytest.raises(InputError, match="true outcome"):
        mitigate_auditor(no_label, attribute="sex", constraint="demographic_parity")


def test_json_contract(loans):
    _, auditor = loans
    d = mitigate_auditor(auditor, attribute="race", constraint="equalized_odds").to_dict()
    json.dumps(d, allow_nan=False)
    for key in ("constraint", "attribute", "objective", "model", "thresholds", "before",
                "after", "objective_before", "objective_after", "tradeoff", "summary",
                "caveat"):
        assert key in d
    lottery = [r for r in d["thresholds"].values() if isinstance(r, dict)]
    assert lottery, "equalized odds uses lotteries"
    for r in lottery:
        assert abs(sum(p["probability"] for p in r["mix"]) - 1) < 1e-9
    assert "unlawful" in d["caveat"]


# --------------------------------------------------------------------------
# the dashboard page, the CLI and the report
# --------------------------------------------------------------------------
def _app_page(constraint: str, attribute: str = "race"):
    import re
    import sys

    from streamlit.testing.v1 import AppTest
    from streamlit.util import calc_hash

    app_dir = ROOT / "app"
    for p in (str(ROOT), str(app_dir)):
        if p not in sys.path:
            sys.path.insert(0, p)
    at = AppTest.from_file(str(app_dir / "main.py"), default_timeout=90).run()
    assert not at.exception
    want = calc_hash("mitigation")
    assert want in at._registered_pages, "the Mitigation page is registered with a score model"
    at._page_hash = want
    at._tree.children.get(0).children = {}
    at.run()
    assert not at.exception
    at.selectbox(key="score_model_pick").set_value("model_a_score").run()
    at.selectbox(key="attribute_pick").set_value(attribute).run()
    at.selectbox(key="mitigation_constraint").set_value(constraint).run()
    assert not at.exception, [e.message for e in at.exception]

    def unescape(text):
        return re.sub(r"\\(.)", r"\1", str(text))
    table = at.main.table[0].value
    table = table.rename(columns=unescape).map(lambda v: unescape(v) if isinstance(v, str)
                                               else v)
    return at, table


def test_dashboard_page_shows_rules_that_match_the_rows():
    at, table = _app_page("demographic_parity")
    df = pd.read_csv(LOANS)
    assert any("unlawful" in w.value for w in at.main.warning), "the caveat is visible"
    t = table.set_index("Group")
    for group, row in t.iterrows():
        rule = row["Rule"]
        assert rule.startswith("score >= "), rule
        thr = float(rule.removeprefix("score >= "))
        rows = df[df["race"] == group]
        # the rule is shown to 4 significant digits: it is the lowest score selected
        sel = rows["model_a_score"] >= thr - 5e-5 * max(1, abs(thr))
        assert row["selected after"].split(" ")[0] == f"{100 * sel.mean():.1f}%"
        today = rows["model_a_score"] >= 0.5
        assert row["selected today"].split(" ")[0] == f"{100 * today.mean():.1f}%"
    figs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    names = {tr.get("name") for f in figs for tr in f["data"]}
    assert {"today (one threshold)", "chosen (per-group thresholds)"} <= names
    metrics = {m.label: m.value for m in at.main.metric}
    assert any(v.endswith("%") for v in metrics.values())


def test_dashboard_page_equalized_odds_is_randomised():
    at, table = _app_page("equalized_odds")
    assert at.checkbox(key="mitigation_randomised_True").value
    assert at.checkbox(key="mitigation_randomised_True").disabled
    assert table["Rule"].str.contains("%").any()


def _cli(args, tmp_path):
    from fairness_core.cli import main
    return main([str(LOANS), "--label", "repaid", "--positive", "yes", "--score",
                 "model_a_score", "--sensitive", "sex", "--sensitive", "race",
                 "--bootstrap", "200", "--quiet", *args])


def test_cli_json_and_report(tmp_path, capsys):
    out, rep = tmp_path / "a.json", tmp_path / "a.html"
    assert _cli(["--mitigate", "equal_opportunity", "--mitigate-attribute", "sex",
                 "--mitigate-objective", "balanced_accuracy", "--json", str(out),
                 "--report", str(rep)], tmp_path) == 0
    d = json.loads(out.read_text())["mitigation"]
    assert {"constraint", "attribute", "objective", "model", "thresholds", "before", "after",
            "objective_before", "objective_after", "tradeoff", "summary", "caveat"} <= set(d)
    assert (d["constraint"], d["attribute"], d["objective"], d["model"]) == \
        ("equal_opportunity", "sex", "balanced_accuracy", "model_a_score")
    from fairness_core.prepare import MISSING_GROUP
    df = pd.read_csv(LOANS)
    df["sex"] = df["sex"].fillna(MISSING_GROUP)  # the audit's group of missing values
    y = df["repaid"] == "yes"
    sel = np.zeros(len(df), dtype=bool)
    for group, t in d["thresholds"].items():
        rows = (df["sex"] == group).to_numpy()
        sel[rows] = df.loc[rows, "model_a_score"].to_numpy() >= t
    assert d["objective_after"] == pytest.approx(balanced_accuracy_score(y, sel), abs=1e-12)
    html = rep.read_text()
    assert "Mitigation preview" in html and "unlawful" in html
    assert "What closing the gap costs" in html
    for group, rule in d["rules"].items():
        assert rule.replace(">", "&gt;") in html


@pytest.mark.parametrize("args,message", [
    (["--mitigate", "equalized_odds", "--mitigate-attribute", "age"], "not an audited"),
    (["--mitigate", "equalized_odds"], "--mitigate-attribute"),
    (["--mitigate", "parity", "--mitigate-attribute", "sex"], "invalid choice"),
    (["--mitigate", "demographic_parity", "--mitigate-attribute", "sex",
      "--mitigate-model", "nope"], "not a score column"),
])
def test_cli_bad_choices_exit_2(args, message, tmp_path, capsys):
    assert _cli(args, tmp_path) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_cli_without_a_score_exits_2(capsys):
    from fairness_core.cli import main
    code = main([str(LOANS), "--label", "repaid", "--positive", "yes", "--prediction",
                 "model_a_approved", "--prediction-positive", "model_a_approved=yes",
                 "--sensitive", "sex", "--mitigate", "demographic_parity",
                 "--mitigate-attribute", "sex", "--quiet"])
    assert code == 2
    assert "needs a score column" in capsys.readouterr().err


def test_nothing_to_close_when_no_gap_is_judged():
    # every group but one is below the minimum size: the audit judges no gap
    df = _frame(300, 7)
    spec = _spec(min_group_size=200)
    m = mitigate_auditor(Auditor(df, spec), attribute="g", constraint="demographic_parity")
    assert m.summary.startswith("Nothing to close")
    assert all(r.thresholds == [0.5] or r.describe() == "score >= 0.5" for r in m.rules.values())
    pd.testing.assert_frame_equal(m.after, m.before)
    assert m.objective_after == m.objective_before


@pytest.mark.parametrize("constraint", ["equalized_odds", "demographic_parity"])
def test_weighted_lottery_after_equals_expected_weighted_counts(constraint):
    df = _frame(2000, 11, n_values=30, weights=True)
    spec = _spec(weight="w", min_group_size=1)
    m = mitigate_auditor(Auditor(df, spec), attribute="g", constraint=constraint,
                         randomised=True, tradeoff=False)
    d = m.to_dict()
    hand = _hand_cells(df, "s", 1, "g", d["thresholds"], weight="w")
    after = pd.DataFrame(d["after"]).set_index("group")
    for c in ("tn", "fp", "fn", "tp"):
        np.testing.assert_allclose(after[c].to_numpy(dtype=float),
                                   hand.loc[after.index, c].to_numpy(), atol=1e-9)
    h = hand.loc[after.index]
    np.testing.assert_allclose(after["tpr"], h.tp / (h.tp + h.fn), atol=1e-9)
    # weighted intervals come from the bootstrap and hold the value
    assert (after["tpr_ci_low"] <= after["tpr"] + 1e-12).all()
    assert (after["tpr_ci_high"] >= after["tpr"] - 1e-12).all()


def test_cli_randomised_flag(tmp_path):
    out = tmp_path / "r.json"
    assert _cli(["--mitigate", "demographic_parity", "--mitigate-attribute", "race",
                 "--mitigate-randomised", "--json", str(out)], tmp_path) == 0
    d = json.loads(out.read_text())["mitigation"]
    assert d["randomised"] is True
    # a lottery does at least as well as the best single thresholds
    assert _cli(["--mitigate", "demographic_parity", "--mitigate-attribute", "race",
                 "--json", str(out)], tmp_path) == 0
    single = json.loads(out.read_text())["mitigation"]
    assert single["randomised"] is False
    assert d["objective_after"] >= single["objective_after"] - 1e-12


# -- the search on many fine bins: every candidate, one by one -------------------

def _fine_groups(seed: int, n_bins: int = 3000):
    """Four groups' threshold points from random counts over many fine
    bins, most of them empty for the small groups (as a continuous score
    counted at scale)."""
    from fairness_core.mitigation import _group_points

    rng = np.random.default_rng(seed)
    centre = np.linspace(-3, 3, n_bins)
    g_cum = np.zeros((4, 2, n_bins + 1))
    for i, (size, shift) in enumerate([(2.0, 0.0), (0.6, -0.5), (0.25, 0.4), (0.05, 0.8)]):
        p = 1 / (1 + np.exp(-(centre + shift)))
        density = size * np.exp(-0.5 * (centre / 1.3) ** 2)
        pos = rng.poisson(density * p)
        neg = rng.poisson(density * (1 - p))
        g_cum[i, 0, 1:], g_cum[i, 1, 1:] = np.cumsum(neg), np.cumsum(pos)
    rows = g_cum[:, :, -1].sum(axis=1)
    return _group_points(g_cum, rows, ["a", "b", "c", "d"])


def _every_candidate(groups, judged, a, b, metrics, tol, ref, mode):
    """The best total gain and the first candidate reaching it, trying every
    candidate (the reference group's points, or every lowest rate) against
    every point of every other group: O(n^2), no pruning, no tables."""
    gains = {i: a * groups[i].tp - b * groups[i].fp for i in judged}
    rates = {(i, m): groups[i].rates(m) for i in judged for m in metrics}
    if mode == "reference":
        base, others = gains[ref].astype(float), [i for i in judged if i != ref]
        bands = [(rates[(ref, m)] * (tol - 1e-12), rates[(ref, m)] * (1 / tol + 1e-12))
                 for m in metrics]
    else:
        every = np.concatenate([rates[(i, metrics[0])] for i in judged])
        cand = np.unique(every[~np.isnan(every)])
        base, others = np.zeros(len(cand)), list(judged)
        bands = [(cand, cand / (tol - 1e-12) * (1 + 1e-12))]
    total = base.copy()
    for i in others:
        ok = np.ones((len(base), len(gains[i])), dtype=bool)
        for m, (lo, hi) in zip(metrics, bands):
            r = rates[(i, m)]
            if np.isnan(r).all():
                continue
            ok &= (r[None, :] >= lo[:, None]) & (r[None, :] <= hi[:, None])
        total = total + np.where(ok, gains[i][None, :], -np.inf).max(axis=1)
    if not np.isfinite(total.max()):
        return None, None
    return float(total.max()), int(np.argmax(total))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("constraint,mode", [("demographic_parity", "reference"),
                                             ("equal_opportunity", "reference"),
                                             ("equalized_odds", "reference"),
                                             ("demographic_parity", "lowest"),
                                             ("equal_opportunity", "lowest")])
def test_search_on_many_bins_equals_trying_every_candidate(seed, constraint, mode):
    from fairness_core.mitigation import _search_deterministic

    groups = _fine_groups(seed)
    assert len(groups[3].bins) < 600 < len(groups[0].bins)  # empty bins dropped per group
    metrics = CONSTRAINTS[constraint]
    pos = sum(g.pos for g in groups)
    neg = sum(g.neg for g in groups)
    judged = [0, 1, 2, 3]
    cache: dict = {}  # shared between tolerances, as in the trade-off curve
    for a, b in ((1 / (pos + neg),) * 2, (0.5 / pos, 0.5 / neg)):
        cache.clear()
        for tol in (0.5, 0.8, 0.9, 0.97, 1.0):
            found = _search_deterministic(groups, judged, 0.0, a, b, metrics, tol, 0, mode,
                                          cache)
            want, first = _every_candidate(groups, judged, a, b, metrics, tol, 0, mode)
            if want is None:
                assert found is None
                continue
            pick, gain = found
            assert gain == pytest.approx(want, rel=1e-12, abs=1e-15)
            if mode == "reference":
                assert pick[0] == first  # the same reference point (ties: the first)
            # the picked points give that gain and lie inside the band
            assert sum(a * groups[i].tp[k] - b * groups[i].fp[k]
                       for i, k in pick.items()) == pytest.approx(want, rel=1e-12, abs=1e-15)
            for m in metrics:
                r = np.array([groups[i].rates(m)[pick[i]] for i in judged])
                r = r[~np.isnan(r)]
                if mode == "reference":
                    assert (r >= r[0] * (tol - 1e-12)).all()
                    assert (r <= r[0] * (1 / tol + 1e-12)).all()
                else:
                    assert r.min() >= r.max() * tol - 1e-12


def test_hull_of_many_points_is_qhulls():
    from scipy.spatial import ConvexHull

    from fairness_core.mitigation import _hull

    for seed in range(3):
        for g in _fine_groups(seed):
            x, y = g.fp / g.neg, g.tp / g.pos
            ours = _hull(x, y)
            pts = np.stack([x, y], axis=1)
            theirs = ConvexHull(pts)
            # every corner qhull finds is ours, and no point lies outside ours
            assert set(theirs.vertices) <= set(ours.tolist())
            eq = ConvexHull(pts[ours]).equations
            assert (pts @ eq[:, :2].T + eq[:, 2]).max() <= 1e-12
            assert ConvexHull(pts[ours]).volume == pytest.approx(theirs.volume, rel=1e-12)


def _every_lottery(groups, judged, a, b, metrics, tol, ref, mode):
    """The best lottery's gain from one linear programme over every point
    of every group (no hull, no pricing)."""
    from scipy.optimize import linprog

    sizes = [len(groups[i].bins) for i in judged]
    offs = np.r_[0, np.cumsum(sizes)]
    n = int(offs[-1]) + (len(metrics) if mode == "lowest" else 0)
    c = np.zeros(n)
    a_eq = np.zeros((len(judged), n))
    for k, i in enumerate(judged):
        c[offs[k]:offs[k + 1]] = -(a * groups[i].tp - b * groups[i].fp)
        a_eq[k, offs[k]:offs[k + 1]] = 1
    rows, rhs = [], []
    for mi, m in enumerate(metrics):
        def rate(k):
            row = np.zeros(n)
            row[offs[k]:offs[k + 1]] = groups[judged[k]].rates(m)
            return row
        if mode == "reference":
            base, lo, hi = rate(judged.index(ref)), tol - 1e-12, 1 / tol + 1e-12
        else:
            base, lo, hi = np.zeros(n), 1.0, 1 / tol
            base[int(offs[-1]) + mi] = 1
        for k, i in enumerate(judged):
            if mode == "reference" and i == ref:
                continue
            rows += [lo * base - rate(k), rate(k) - hi * base]
            rhs += [0.0, 1e-12]
    res = linprog(c, A_ub=np.array(rows), b_ub=rhs, A_eq=a_eq, b_eq=np.ones(len(judged)),
                  bounds=(0, None), method="highs-ds")
    return float(-res.fun)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("constraint,mode", [("demographic_parity", "reference"),
                                             ("equalized_odds", "reference"),
                                             ("equal_opportunity", "lowest")])
def test_lottery_on_many_bins_equals_one_programme_over_every_point(seed, constraint, mode):
    from fairness_core.mitigation import _search_randomised

    groups = _fine_groups(seed, n_bins=1500)
    metrics = CONSTRAINTS[constraint]
    pos = sum(g.pos for g in groups)
    neg = sum(g.neg for g in groups)
    a = b = 1 / (pos + neg)
    judged = [0, 1, 2, 3]
    cache: dict = {}  # shared between tolerances, as in the trade-off curve
    for tol in (0.6, 0.8, 0.95, 1.0):
        pick, gain = _search_randomised(groups, judged, 0.0, a, b, metrics, tol, 0, mode,
                                        cache)
        want = _every_lottery(groups, judged, a, b, metrics, tol, 0, mode)
        assert gain == pytest.approx(want, abs=1e-9)
        # the lotteries found reach that gain
        got = sum(p * (a * groups[i].tp[k] - b * groups[i].fp[k])
                  for i, mix in pick.items() for k, p in mix)
        assert got == pytest.approx(want, abs=1e-9)
