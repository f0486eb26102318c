"""Score counts: a threshold change is a lookup in the per-combination score
counts, never a recount of the rows; and an engine's fine-binned scores keep
an exact Brier score and calibration.

References: a fresh audit at the same threshold (itself checked against
fairlearn and scikit-learn in test_differential), hand counts with pandas,
and scikit-learn's ``brier_score_loss`` and ``calibration_curve``.
"""
from __future__ import annotations

import importlib

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss

from fairness_core import AuditSpec, audit
from fairness_core.audit import Auditor, run_audit

audit_module = importlib.import_module("fairness_core.audit")
counts_module = importlib.import_module("fairness_core.counts")
ibis = pytest.importorskip("ibis", reason="the engines extra is part of the test set-up")


def _frame(n: int, seed: int, decimals: int | None = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    a = 1 / (1 + np.exp(-(1.5 * z + rng.normal(0, 0.7, n))))
    b = rng.integers(1, 11, n).astype(float)  # a 1-to-10 score, outside [0, 1]
    return pd.DataFrame({
        "y": (z + rng.normal(0, 0.8, n) > 0.2).astype(int),
        "a": np.round(a, decimals) if decimals is not None else a,
        "b": b,
        "sex": rng.choice(["F", "M"], n),
        "race": rng.choice(["p", "q", "r"], n, p=[.6, .3, .1]),
        "w": rng.choice([0.5, 1.0, 2.5], n)})


def _spec(weighted: bool, thresholds=None, n_bootstrap: int = 200) -> AuditSpec:
    return AuditSpec(label="y", positive=1, scores=["a", "b"], sensitive=["sex", "race"],
                     intersectional=True, weight="w" if weighted else None,
                     threshold=thresholds, n_bootstrap=n_bootstrap)


def _no_counting(mp: pytest.MonkeyPatch) -> None:
    """From here on, any count over the rows fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("the rows were counted again")
    mp.setattr(counts_module, "combo_counts", refuse)
    mp.setattr(audit_module, "count_cube", refuse)


def _same(got, want, exact: bool) -> None:
    tol = {} if exact else {"rtol": 1e-9, "atol": 1e-9}
    for part in ("groups", "disparities", "summary"):
        pd.testing.assert_frame_equal(getattr(got, part), getattr(want, part),
                                      check_exact=exact, **tol)
    assert got.to_dict()["findings"] == want.to_dict()["findings"]
    assert got.provenance["thresholds"] == want.provenance["thresholds"]


def _hand_cells(df: pd.DataFrame, score: str, threshold: float, weighted: bool) -> dict:
    """tn, fp, fn, tp over all rows, with pandas."""
    pred = df[score] >= threshold
    w = df["w"] if weighted else pd.Series(1.0, index=df.index)
    y = df["y"] == 1
    return {"tn": w[~y & ~pred].sum(), "fp": w[~y & pred].sum(),
            "fn": w[y & ~pred].sum(), "tp": w[y & pred].sum()}


def _overall(result, model: str) -> pd.Series:
    g = result.groups
    return g[(g["model"] == model) & (g["attribute"] == "(overall)")].iloc[0]


_DF = _frame(800, 1)
_AUDITORS = {w: Auditor(_DF, _spec(w)) for w in (False, True)}
_thresholds = st.one_of(st.sampled_from(sorted(_DF["a"].unique())),
                        st.floats(-0.5, 1.5, allow_nan=False))


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(ta=_thresholds, tb=st.one_of(st.integers(0, 12), st.floats(0, 12)),
       weighted=st.booleans())
def test_a_new_threshold_is_a_lookup_that_equals_a_fresh_audit(ta, tb, weighted):
    spec = _spec(weighted, {"a": ta, "b": tb})
    want = audit(_DF, spec)
    auditor = _AUDITORS[weighted]
    with pytest.MonkeyPatch.context() as mp:
        _no_counting(mp)
        got = auditor.run(spec)
    _same(got, want, exact=not weighted)
    for model, t in (("a", ta), ("b", tb)):
        row = _overall(got, model)
        for cell, value in _hand_cells(_DF, model, t, weighted).items():
            assert row[cell] == pytest.approx(value, rel=1e-12, abs=1e-9)


def test_a_threshold_inside_a_fine_bin_is_counted_from_the_rows_in_memory():
    # more distinct scores than are counted one by one: fine bins
    df = _frame(70_000, 2, decimals=None)
    auditor = Auditor(df, _spec(False, n_bootstrap=0))
    edges = auditor.score_counts["a"].edges
    assert not auditor.score_counts["a"].exact
    j = int(np.searchsorted(edges, 0.3))
    on_edge, inside = float(edges[j]), float((edges[j] + edges[j + 1]) / 2)
    with pytest.MonkeyPatch.context() as mp:
        _no_counting(mp)  # an edge is a lookup
        got = auditor.run(_spec(False, {"a": on_edge}, n_bootstrap=0))
    _same(got, audit(df, _spec(False, {"a": on_edge}, n_bootstrap=0)), exact=True)
    # inside a bin, the rows decide; nothing is said about it
    got = auditor.run(_spec(False, {"a": inside}, n_bootstrap=0))
    _same(got, audit(df, _spec(False, {"a": inside}, n_bootstrap=0)), exact=True)
    assert not any("nearest" in w for w in got.warnings)
    row = _overall(got, "a")
    for cell, value in _hand_cells(df, "a", inside, False).items():
        assert row[cell] == value


def test_an_engines_records_snap_a_threshold_to_the_nearest_bin_edge():
    from fairness_core.engine import engine_records, prepare_records

    df = _frame(6000, 3, decimals=None)
    spec = _spec(True, n_bootstrap=0)
    records, meta = engine_records(ibis.memtable(df), spec, max_records=3000)
    assert meta["score_bins"]["a"] >= 1024 and len(records) < len(df)
    auditor = Auditor.from_prepared(prepare_records(records, meta, spec))
    edges = auditor.score_counts["a"].edges
    j = int(np.searchsorted(edges, 0.42))
    inside = float(edges[j - 1] + 0.3 * (edges[j] - edges[j - 1]))  # nearer edges[j - 1]
    assert ((df["a"] >= edges[j - 1]) & (df["a"] < edges[j])).any()  # rows in that bin
    with pytest.MonkeyPatch.context() as mp:
        _no_counting(mp)
        got = auditor.run(_spec(True, {"a": inside}, n_bootstrap=0))
    snapped = float(edges[j - 1])
    assert any(f"threshold {inside:g} falls inside" in w and f"{snapped:.6g}" in w
               for w in got.warnings)
    assert got.provenance["thresholds"]["a"]["threshold"] == snapped
    # the rows at the edge, counted by pandas
    row = _overall(got, "a")
    for cell, value in _hand_cells(df, "a", snapped, True).items():
        assert row[cell] == pytest.approx(value, rel=1e-12)


def test_engine_binned_scores_have_an_exact_brier_score_and_calibration(tmp_path):
    from fairness_core.engine import prepare_from_engine

    # more distinct scores than the engine counts one by one, some right on
    # the calibration bins' edges
    df = _frame(20_000, 4, decimals=None)
    df.loc[df.index[:300], "a"] = np.repeat([0.1, 0.3, 0.5, 0.7, 0.9, 0.2], 50)
    path = tmp_path / "scores.parquet"
    df.to_parquet(path, index=False)
    for weighted in (False, True):
        spec = _spec(weighted, n_bootstrap=0)
        prepared, info = prepare_from_engine(str(path), spec)
        assert prepared.score_bins.get("a") and len(prepared.y) < len(df)
        res = run_audit(prepared, info)
        g = res.groups[res.groups["model"] == "a"]
        cal = res.scores["calibration"]
        for attr, cols in (("sex", ["sex"]), ("race", ["race"]), ("(overall)", [])):
            parts = df.groupby(cols) if cols else [((("(all)",)), df)]
            for key, part in parts:
                grp = key[0] if isinstance(key, tuple) else key
                r = g[(g["attribute"] == attr) & (g["group"] == grp)].iloc[0]
                w = part["w"] if weighted else None
                assert r["brier"] == pytest.approx(
                    brier_score_loss(part["y"], part["a"], sample_weight=w), rel=1e-9)
                c = cal[(cal["model"] == "a") & (cal["attribute"] == attr)
                        & (cal["group"] == grp)].sort_values("bin")
                bins = np.searchsorted(np.linspace(0, 1, 11)[1:-1], part["a"], side="left")
                if not weighted:
                    prob_true, prob_pred = calibration_curve(part["y"], part["a"], n_bins=10)
                    np.testing.assert_allclose(c["mean_score"], prob_pred, rtol=1e-9)
                    np.testing.assert_allclose(c["observed_rate"], prob_true, rtol=1e-12)
                else:  # weighted means per bin, with pandas
                    by = part.assign(ws=part["w"] * part["a"], wy=part["w"] * part["y"]) \
                        .groupby(bins)[["w", "ws", "wy"]].sum()
                    np.testing.assert_allclose(c["mean_score"], by["ws"] / by["w"], rtol=1e-9)
                    np.testing.assert_allclose(c["observed_rate"], by["wy"] / by["w"],
                                               rtol=1e-9)
                n = np.bincount(bins, minlength=10)
                np.testing.assert_array_equal(c["n"], n[n > 0])


@pytest.mark.parametrize("weighted", [False, True])
def test_engine_binned_scores_without_a_label_have_exact_mean_scores(weighted):
    """Label-free: an engine's fine-binned score keeps exact mean scores (from
    its records' sums) and the same score distributions as the rows; nothing
    that needs the outcome is computed."""
    from fairness_core.engine import prepare_from_engine

    df = _frame(80_000, 5, decimals=None)  # more distinct scores than counted one by one
    spec = AuditSpec(label=None, scores=["a"], sensitive=["sex", "race"],
                     weight="w" if weighted else None, n_bootstrap=0)
    prepared, info = prepare_from_engine(df, spec)
    assert prepared.score_bins.get("a") and len(prepared.y) < len(df)
    got, want = run_audit(prepared, info), audit(df, spec)
    means = got.scores["means"]
    for attr in ("sex", "race"):
        w = df["w"] if weighted else pd.Series(1.0, index=df.index)
        hand = (df.assign(ws=w * df["a"], w1=w).groupby(attr)[["ws", "w1"]].sum()
                .pipe(lambda t: t["ws"] / t["w1"]))
        m = means[means["attribute"] == attr].set_index("group")["mean_score"]
        np.testing.assert_allclose(m.loc[hand.index], hand, rtol=1e-12)
    pd.testing.assert_frame_equal(got.scores["means"], want.scores["means"],
                                  check_exact=False, rtol=1e-9)
    pd.testing.assert_frame_equal(got.scores["distribution"], want.scores["distribution"])
    assert got.scores["auc"]["auc"].isna().all() and got.scores["auc"]["brier"].isna().all()
    assert not len(got.scores["calibration"])
