"""Count tables in and out: an audit of an aggregated table (each row stands
for ``counts`` rows) gives the same numbers as the rows themselves, and the
count table an audit writes audits again to the same numbers.

The aggregation in these tests is pandas' own ``groupby(...).size()``, and
the expanded rows are ``np.repeat``: neither goes through the tool's code.
"""
from __future__ import annotations

import json
import shlex

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame, false_positive_rate, selection_rate, \
    true_positive_rate

from fairness_core import AuditSpec, InputError, audit
from fairness_core.cli import main

from test_bad_inputs import assert_cli_refuses


def _rows(n=6000, seed=3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "sex": rng.choice(["F", "M"], n),
        "race": rng.choice(["a", "b", "c", None], n, p=[.5, .3, .15, .05]),
        "y": rng.choice(["yes", "no"], n),
        "d": rng.choice(["yes", "no"], n, p=[.4, .6]),
        "s": np.round(rng.beta(2, 3, n), 2),  # ties: 101 distinct scores
        "w": rng.choice([1.0, 2.0, 0.5], n),
    })
    df.loc[rng.random(n) < 0.03, "d"] = None  # dropped rows
    df.loc[rng.random(n) < 0.02, "s"] = np.nan
    return df


def _aggregate(df: pd.DataFrame, keys: list, name: str = "n") -> pd.DataFrame:
    return df.groupby(keys, dropna=False).size().rename(name).reset_index()


def _assert_same(a, b, rtol=1e-9):
    """Every number and word of two audits agrees (points, intervals, tests)."""
    da, db = a.to_dict(), b.to_dict()
    for part in ("groups", "disparities", "summary"):
        assert len(da[part]) == len(db[part]) > 0, part
        for x, y in zip(da[part], db[part]):
            assert x.keys() == y.keys()
            for k in x:
                u, v = x[k], y[k]
                if isinstance(u, float) and isinstance(v, float):
                    assert u == pytest.approx(v, rel=rtol, abs=1e-12, nan_ok=True), (part, k)
                else:
                    assert u == v, (part, k, u, v)
    assert da["findings"] == db["findings"]
    for key in ("auc", "curves", "calibration"):
        pd.testing.assert_frame_equal(a.scores[key].reset_index(drop=True),
                                      b.scores[key].reset_index(drop=True),
                                      check_dtype=False, rtol=rtol)
    pa, pb = a.provenance, b.provenance
    for k in ("rows_read", "rows_used", "rows_dropped", "dropped_reasons", "thresholds"):
        assert pa[k] == pb[k], k


SPEC = dict(label="y", positive="yes", predictions=["d"], scores=["s"],
            sensitive=["sex", "race"], intersectional=True, n_bootstrap=300)


def test_count_table_audits_like_its_rows():
    df = _rows()
    agg = _aggregate(df, ["sex", "race", "y", "d", "s"])
    assert len(agg) < len(df) / 2  # it really is aggregated
    a = audit(df, AuditSpec(**SPEC))
    b = audit(agg, AuditSpec(**SPEC, counts="n"))
    _assert_same(a, b)
    assert b.provenance["rows_read"] == len(df)
    assert b.provenance["dropped_reasons"]["missing prediction (d)"] == int(df["d"].isna().sum())


def test_weighted_count_table_audits_like_its_rows():
    df = _rows(seed=5)
    agg = _aggregate(df, ["sex", "race", "y", "d", "s", "w"], name="rows")
    spec = dict(SPEC, weight="w")
    _assert_same(audit(df, AuditSpec(**spec)), audit(agg, AuditSpec(**spec, counts="rows")))


def test_count_table_rates_match_fairlearn_on_the_expanded_rows():
    df = _rows(seed=7).dropna(subset=["d"])
    agg = _aggregate(df, ["sex", "y", "d"])
    res = audit(agg, AuditSpec(label="y", positive="yes", predictions=["d"],
                               sensitive=["sex"], counts="n", n_bootstrap=0))
    rows = agg.loc[np.repeat(agg.index.to_numpy(), agg["n"].to_numpy())]
    mf = MetricFrame(metrics={"selection_rate": selection_rate, "tpr": true_positive_rate,
                              "fpr": false_positive_rate},
                     y_true=(rows["y"] == "yes").astype(int),
                     y_pred=(rows["d"] == "yes").astype(int),
                     sensitive_features=rows["sex"])
    g = res.group_metrics
    g = g[g["attribute"] == "sex"].set_index("group")
    for grp in ("F", "M"):
        assert g.loc[grp, "n"] == int(agg.loc[agg["sex"] == grp, "n"].sum())
        assert g.loc[grp, "selection_rate"] == pytest.approx(mf.by_group.loc[grp,
                                                                           "selection_rate"])
        assert g.loc[grp, "tpr"] == pytest.approx(mf.by_group.loc[grp, "tpr"])
        assert g.loc[grp, "fpr"] == pytest.approx(mf.by_group.loc[grp, "fpr"])


def test_records_with_zero_rows_add_nothing():
    df = _rows(seed=9)
    agg = _aggregate(df, ["sex", "race", "y", "d", "s"])
    extra = agg.head(5).assign(n=0, sex="Z")  # a group with no rows at all
    a = audit(agg, AuditSpec(**SPEC, counts="n"))
    b = audit(pd.concat([agg, extra], ignore_index=True), AuditSpec(**SPEC, counts="n"))
    _assert_same(a, b)
    assert "Z" not in set(b.groups["group"])


@pytest.mark.parametrize("bad, words", [
    (-1, ["whole numbers of at least 0", "-1"]),
    (2.5, ["whole numbers", "2.5"]),
    (None, ["empty value"]),
])
def test_bad_counts_are_refused(bad, words):
    agg = _aggregate(_rows(n=400), ["sex", "y", "d"])
    agg["n"] = agg["n"].astype(object)
    agg.loc[0, "n"] = bad
    with pytest.raises(InputError) as err:
        audit(agg, AuditSpec(label="y", positive="yes", predictions=["d"], sensitive=["sex"],
                             counts="n"))
    assert err.value.field == "counts"
    for w in words:
        assert w in err.value.message


def test_cli_refuses_a_text_count_column(tmp_path, capsys):
    agg = _aggregate(_rows(n=400), ["sex", "y", "d"])
    agg["n"] = agg["n"].astype(str)
    agg.loc[1, "n"] = "many"
    path = tmp_path / "counts.csv"
    agg.to_csv(path, index=False)
    assert_cli_refuses(capsys, [path, "--counts", "n", "--label", "y", "--positive", "yes",
                                "--prediction", "d", "--sensitive", "sex"],
                       ["'n'", "numbers", "many"])


def test_exported_count_table_audits_again_to_the_same_numbers(tmp_path, capsys):
    df = _rows(seed=11)
    df["age"] = np.random.default_rng(0).integers(16, 90, len(df))
    df["id"] = [f"person-{i}" for i in range(len(df))]  # row-level: never exported
    src = tmp_path / "rows.csv"
    df.to_csv(src, index=False)
    out = tmp_path / "counts.csv"
    args = ["--label", "y", "--positive", "yes", "--prediction", "d", "--score", "s",
            "--sensitive", "sex", "--sensitive", "race", "--sensitive", "age",
            "--bin", "age=25,45,65", "--intersectional", "--bootstrap", "300"]
    assert main([str(src), *args, "--json", str(tmp_path / "a.json"),
                 "--export-counts", str(out), "--quiet"]) == 0
    err = capsys.readouterr().err
    table = pd.read_csv(out)
    assert set(table.columns) == {"sex", "race", "age", "y", "d", "s", "n"}
    assert table["n"].sum() == len(df.dropna(subset=["d", "s"]))
    assert len(table) < len(df)
    assert not set(df["id"]) & set(table.astype(str).to_numpy().ravel())
    # the command printed on stderr audits the count table again
    line = next(ln for ln in err.splitlines() if "Audit it again with:" in ln)
    cmd = shlex.split(line.split("Audit it again with: ", 1)[1])
    assert cmd[0] == "fairness-audit"
    assert main([*cmd[1:], "--bootstrap", "300", "--json", str(tmp_path / "b.json"),
                 "--quiet"]) == 0
    a = json.loads((tmp_path / "a.json").read_text())
    b = json.loads((tmp_path / "b.json").read_text())
    assert a["findings"] == b["findings"]
    for part in ("groups", "disparities", "summary"):
        assert len(a[part]) == len(b[part])
        for x, y in zip(a[part], b[part]):
            for k, u in x.items():
                if isinstance(u, float):
                    assert u == pytest.approx(y[k], rel=1e-9, abs=1e-12, nan_ok=True), (part, k)
                else:
                    assert u == y[k], (part, k)


def test_export_suppresses_small_groups(tmp_path, capsys):
    df = _rows(n=3000, seed=13)
    src = tmp_path / "rows.csv"
    df.to_csv(src, index=False)
    out = tmp_path / "counts.csv"
    assert main([str(src), "--label", "y", "--positive", "yes", "--prediction", "d",
                 "--sensitive", "sex", "--sensitive", "race", "--export-counts", str(out),
                 "--suppress-below", "200", "--quiet"]) == 0
    err = capsys.readouterr().err
    table = pd.read_csv(out, keep_default_na=False)
    sizes = table.groupby(["sex", "race"])["n"].sum()
    assert (sizes >= 200).all()
    kept = df.dropna(subset=["d"]).fillna({"race": "(missing)"})
    true_sizes = kept.groupby(["sex", "race"]).size()
    assert (true_sizes < 200).any()  # something really was left out
    assert set(sizes.index) == set(true_sizes[true_sizes >= 200].index)
    assert "fewer than 200 rows were left out" in err


def test_many_distinct_scores_are_written_as_the_lower_edges_of_fine_bins():
    """A score with more distinct values than the table keeps is written as
    the lower edge of its fine bin (found here by a binary search over the
    edges), and every decision at the threshold stays as the rows have it."""
    from fairness_core.counts import count_records
    from fairness_core.prepare import prepare
    from fairness_core.scores import fine_edges

    df = _rows(n=20_000, seed=11)
    df["s"] = np.random.default_rng(11).beta(2, 3, len(df))  # all distinct
    spec = AuditSpec(**{**SPEC, "threshold": 0.37})
    prepared = prepare(df, spec)
    table, count_col, notes = count_records(prepared, max_score_values=500)
    assert any("fine bins" in n for n in notes)
    s = prepared.scores["s"]
    edges = fine_edges(float(s.min()), float(s.max()), 0.37, 500)
    lower = edges[np.maximum(np.searchsorted(edges, s, side="right") - 1, 0)]
    expected = pd.Series(prepared.row_counts if prepared.row_counts is not None
                         else np.ones(len(s), dtype=np.int64)).groupby(lower).sum()
    got = table.groupby("s")[count_col].sum()
    pd.testing.assert_series_equal(got, expected, check_names=False, check_index_type=False)
    # the decisions at the threshold, from the written scores, are the rows' own
    assert int(table.loc[table["s"] >= 0.37, count_col].sum()) == int((s >= 0.37).sum())
