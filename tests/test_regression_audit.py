"""The regression audit end to end: result object, JSON, exports, findings,
the command line in memory and in DuckDB, and the bundled sample's gaps.

Numbers are checked against scikit-learn, scipy and pandas computed here
from the rows, never against the tool's own output."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sklearn.metrics as skm
from scipy import stats

from fairness_core import AuditSpec
from fairness_core.audit import audit, audit_frame
from fairness_core.cli import main
from fairness_core.errors import InputError
from fairness_core.exports import tables
from fairness_core.regression_result import (ERROR_BINS, RegressionResult, amount,
                                             count_engine)

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data" / "credit_limits.csv"
SENSITIVE = ["sex", "age_group", "region"]


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return pd.read_csv(SAMPLE)


def _spec(**kw) -> AuditSpec:
    base = dict(label="credit_limit", predictions=["model_a_limit", "model_b_limit"],
                sensitive=SENSITIVE, task="regression")
    base.update(kw)
    return AuditSpec(**base)


@pytest.fixture(scope="module")
def result(sample) -> RegressionResult:
    return audit_frame(sample, None, spec=_spec())


def test_binary_result_says_its_task(sample):
    loans = pd.read_csv(ROOT / "sample_data" / "loans.csv")
    r = audit(loans, AuditSpec(label="repaid", positive="yes", predictions=["model_a_approved"],
                               sensitive=["sex"], n_bootstrap=0))
    assert r.task == "binary"


def test_group_metrics_equal_sklearn(sample, result):
    g = result.group_metrics.set_index(["model", "attribute", "group"])
    df = sample.assign(sex=sample["sex"].fillna("(missing)"))
    for model in ("model_a_limit", "model_b_limit"):
        for attr in SENSITIVE:
            for grp, rows in df.groupby(attr):
                y, p = rows["credit_limit"], rows[model]
                r = g.loc[(model, attr, str(grp))]
                assert r["n"] == len(rows)
                assert r["mae"] == pytest.approx(skm.mean_absolute_error(y, p), rel=1e-9)
                assert r["rmse"] == pytest.approx(
                    np.sqrt(skm.mean_squared_error(y, p)), rel=1e-9)
                assert r["r2"] == pytest.approx(skm.r2_score(y, p), rel=1e-9, abs=1e-12)
                assert r["mean_error"] == pytest.approx((p - y).mean(), rel=1e-9, abs=1e-9)
                assert r["mean_error_ci_low"] < (p - y).mean() < r["mean_error_ci_high"]


def test_disparities_welch_and_correction_over_both_models(sample, result):
    d = result.disparities
    assert set(d["model"]) == {"model_a_limit", "model_b_limit"}
    row = d[(d["model"] == "model_a_limit") & (d["attribute"] == "sex")
            & (d["metric"] == "mean_error") & (d["group"] == "Female")].iloc[0]
    e = sample["model_a_limit"] - sample["credit_limit"]
    p = stats.ttest_ind(e[sample["sex"] == "Female"], e[sample["sex"] == "Male"],
                        equal_var=False).pvalue
    assert row["p_value"] == pytest.approx(p, rel=1e-6)
    ok = d["p_value"].notna().to_numpy()
    adj = stats.false_discovery_control(d.loc[ok, "p_value"].to_numpy(), method="bh")
    assert np.allclose(d.loc[ok, "p_value_adjusted"], adj)


def test_json_contract(result):
    d = json.loads(result.to_json())
    assert d["task"] == "regression"
    for key in ("spec", "provenance", "overall", "groups", "disparities", "summary",
                "bounded_group_loss", "findings", "metrics", "warnings", "distributions"):
        assert key in d
    assert set(d["metrics"]) == {"mean_label", "mean_prediction", "mean_error", "mae", "rmse",
                                 "r2"}
    assert all(m["definition"] for m in d["metrics"].values())
    assert d["provenance"]["rows_used"] == 5000
    assert {"errors", "error_quantiles", "predicted_vs_actual"} <= set(d["distributions"])


def test_binned_errors_equal_numpy_histogram(sample, result):
    errs = result.distributions["errors"]
    edges = np.asarray(result.provenance["bins"]["error_edges"])
    assert len(edges) == ERROR_BINS + 1
    e = (sample["model_a_limit"] - sample["credit_limit"]).to_numpy()
    mask = (sample["age_group"] == "65+").to_numpy()
    # the end bins hold the values beyond them
    want, _ = np.histogram(np.clip(e[mask], edges[0], edges[-1]), bins=edges)
    got = errs[(errs["model"] == "model_a_limit") & (errs["attribute"] == "age_group")
               & (errs["group"] == "65+")]
    have = np.zeros(ERROR_BINS)
    have[got["bin"].to_numpy()] = got["weight"].to_numpy()
    assert np.array_equal(have, want)
    q = result.distributions["error_quantiles"].set_index(["model", "attribute", "group"])
    med = q.loc[("model_a_limit", "age_group", "65+"), "median"]
    width = edges[1] - edges[0]
    assert abs(med - np.median(e[mask])) <= width


def test_predicted_vs_actual_equal_pandas(sample, result):
    pva = result.distributions["predicted_vs_actual"]
    edges = np.asarray(result.provenance["bins"]["label_edges"])
    rows = sample[sample["sex"] == "Female"]
    b = np.clip(np.floor((rows["credit_limit"] - edges[0]) / (edges[1] - edges[0])), 0,
                len(edges) - 2).astype(int)
    want = rows.groupby(b.to_numpy())["model_b_limit"].mean()
    got = pva[(pva["model"] == "model_b_limit") & (pva["attribute"] == "sex")
              & (pva["group"] == "Female")].set_index("bin")["mean_prediction"]
    assert np.allclose(got.sort_index().to_numpy(), want.sort_index().to_numpy())


def test_documented_gaps_are_found(result):
    """The gaps sample_data/README.md documents."""
    fs = result.findings
    women = [f for f in fs if f["kind"] == "error_gap" and f["model"] == "model_a_limit"
             and f["group"] == "Female"]
    assert women and women[0]["significant"] and women[0]["disadvantaged"] == "Female"
    assert "under-predicts credit_limit for sex = 'Female'" in women[0]["statement"]
    assert -1300 < women[0]["difference"] < -900
    old = [f for f in fs if f["kind"] == "fail" and f["group"] == "65+"
           and f["model"] == "model_a_limit"]
    assert {f["metric"] for f in old} >= {"mae", "rmse", "r2"}
    assert all(f["severity"] == "high" for f in old)
    south = [f for f in fs if f["kind"] == "error_gap" and f["group"] == "South"]
    assert south and south[0]["model"] == "model_b_limit" and south[0]["difference"] > 700
    assert not [f for f in fs if f["kind"] == "error_gap" and f["model"] == "model_b_limit"
                and f["attribute"] in ("sex", "age_group")]
    small = [f for f in fs if f["kind"] == "insufficient" and f["attribute"] == "region"]
    assert small and small[0]["groups"] == ["Islands"]


def test_harm_turns_the_disadvantaged_side(sample):
    r = audit_frame(sample, None, spec=_spec(predictions=["model_a_limit"],
                                             positive_decision="harm"))
    women = [f for f in r.findings if f["kind"] == "error_gap" and f["group"] == "Female"][0]
    assert women["disadvantaged"] == "Male"
    assert "A higher credit_limit is a disadvantage" in women["statement"]


def test_exports_and_suppression(result):
    t = tables(result, 100)
    assert set(t) == {"groups", "disparities", "summary", "bounded_group_loss"}
    g = t["groups"]
    islands = g[(g["group"] == "Islands")]
    assert islands["mae"].isna().all() and (islands["suppressed"] != "").all()
    # the summary without the suppressed groups: the worst MAE is not Islands
    s = t["summary"]
    assert "Islands" not in set(s["worst_group"].dropna())


@pytest.mark.parametrize("option", [["--positive", "1"], ["--score", "model_b_limit"],
                                    ["--threshold", "0.5"], ["--export-counts", "x.csv"],
                                    ["--reference-strategy", "best"]])
def test_options_that_do_not_apply_are_an_input_error(option, capsys, tmp_path):
    code = main([str(SAMPLE), "--label", "credit_limit", "--prediction", "model_a_limit",
                 "--sensitive", "sex", "--task", "regression", *option])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and "error:" in err


def test_cli_memory_and_duckdb_agree_and_config_round_trips(tmp_path, capsys):
    args = ["--label", "credit_limit", "--prediction", "model_a_limit", "--sensitive", "sex",
            "--sensitive", "age_group"]
    outs = {}
    for engine in ("memory", "duckdb"):
        j = tmp_path / f"{engine}.json"
        assert main([str(SAMPLE), *args, "--engine", engine, "--json", str(j),
                     "--save-config", str(tmp_path / "cfg.json")]) == 0
        cap = capsys.readouterr()
        assert "task regression" in cap.err  # inferred, and said
        outs[engine] = (json.loads(j.read_text()), cap.out)
    a, b = outs["memory"][0], outs["duckdb"][0]
    for x, y in zip(a["groups"], b["groups"]):
        for k, v in x.items():
            assert (v == pytest.approx(y[k], rel=1e-9)) if isinstance(v, float) else v == y[k]
    assert a["distributions"]["errors"] == b["distributions"]["errors"]
    assert outs["memory"][1] == outs["duckdb"][1]
    out = outs["memory"][1]
    assert "under-predicts credit_limit for sex = 'Female'" in out
    assert "bounded group loss" in out and "65+" in out
    j = tmp_path / "again.json"
    assert main([str(SAMPLE), "--config", str(tmp_path / "cfg.json"), "--json", str(j)]) == 0
    assert json.loads(j.read_text())["groups"] == a["groups"]


def test_cli_csv_xlsx_report(tmp_path, capsys):
    base = [str(SAMPLE), "--label", "credit_limit", "--prediction", "model_a_limit",
            "--sensitive", "sex", "--task", "regression", "--quiet"]
    assert main([*base, "--csv", str(tmp_path / "g.csv"), "--xlsx", str(tmp_path / "g.xlsx"),
                 "--report", str(tmp_path / "r.html")]) == 0
    g = pd.read_csv(tmp_path / "g.csv", encoding="utf-8-sig")
    assert {"mae", "rmse", "r2", "mean_error_ci_low"} <= set(g.columns)
    sheets = pd.read_excel(tmp_path / "g.xlsx", sheet_name=None)
    assert {"groups", "disparities", "summary", "bounded_group_loss"} <= set(sheets)
    html = (tmp_path / "r.html").read_text()
    assert "Mean error" in html and "under-predicts" in html


def test_engine_weights_and_bins_equal_memory():
    rng = np.random.default_rng(3)
    n = 3000
    df = pd.DataFrame({"age": rng.integers(18, 90, n), "g": rng.choice(["a", "b", None], n),
                       "y": rng.lognormal(3, 0.5, n), "w": rng.uniform(0.5, 2, n)})
    df["p"] = df["y"] * rng.lognormal(0, 0.2, n)
    df.loc[::50, "p"] = np.nan
    spec = AuditSpec(label="y", predictions=["p"], sensitive=["age", "g"], weight="w",
                     bins={"age": [18, 40, 65]}, intersectional=True, task="regression")
    mem = audit_frame(df, None, spec=spec)
    import ibis
    from fairness_core.regression_result import audit_counted
    eng = audit_counted(count_engine(ibis.memtable(df), spec), spec)
    a = mem.groups.set_index(["model", "attribute", "group"])
    b = eng.groups.set_index(["model", "attribute", "group"]).loc[a.index]
    assert np.allclose(a["mae"], b["mae"], rtol=1e-9) and np.array_equal(a["n"], b["n"])
    assert mem.provenance["rows_used"] == eng.provenance["rows_used"] == n - 60
    # weighted MAE of one binned group against scikit-learn
    rows = df[(df["age"] >= 40) & (df["age"] < 65) & df["p"].notna()]
    want = skm.mean_absolute_error(rows["y"], rows["p"], sample_weight=rows["w"])
    assert a.loc[("p", "age", "[40, 65)"), "mae"] == pytest.approx(want, rel=1e-9)


def test_bad_input_is_one_clear_message():
    df = pd.DataFrame({"y": ["a", "b", "c"], "p": [1.0, 2.0, 3.0], "s": ["x", "y", "x"]})
    with pytest.raises(InputError, match="must hold numbers"):
        audit_frame(df, None, spec=AuditSpec(label="y", predictions=["p"], sensitive=["s"],
                                             task="regression"))
    df = pd.DataFrame({"y": [np.nan] * 3, "p": [1.0, 2.0, 3.0], "s": ["x", "y", "x"]})
    with pytest.raises(InputError, match="nothing to audit"):
        audit_frame(df, None, spec=AuditSpec(label="y", predictions=["p"], sensitive=["s"],
                                             task="regression"))


def test_amounts_read_as_people_write_them():
    assert amount(1240.3) == "1,240"
    assert amount(12.345) == "12.3"
    assert amount(0.5234) == "0.523"
    assert amount(float("nan")) == "undefined"


def test_command_line_entry_point_runs(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "fairness_core.cli", str(SAMPLE), "--label",
                           "credit_limit", "--prediction", "model_b_limit", "--sensitive",
                           "region"], capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    assert "over-predicts credit_limit for region = 'South'" in proc.stdout


def test_task_is_inferred_from_the_values():
    from fairness_core.tasks import infer_task
    rng = np.random.default_rng(0)
    limits = pd.Series(rng.lognormal(9, 0.5, 500).round(-1), name="limit")
    assert infer_task(limits, [limits * 1.1]).task == "regression"
    stars = pd.Series(rng.integers(1, 6, 500), name="stars")  # 5 whole values
    assert infer_task(stars, [stars.astype(float)]).task == "multiclass"
    assert infer_task(stars, [stars + 0.5]).task == "regression"  # predictions not whole
    assert infer_task(limits, [limits], positive=1000).task == "binary"


def test_fail_on_disparity_counts_a_significant_mean_error_gap(capsys):
    code = main([str(SAMPLE), "--label", "credit_limit", "--prediction", "model_b_limit",
                 "--sensitive", "region", "--fail-on-disparity", "--quiet"])
    assert code == 1
    code = main([str(SAMPLE), "--label", "credit_limit", "--prediction", "model_b_limit",
                 "--sensitive", "sex", "--fail-on-disparity", "--quiet"])
    assert code == 0


def test_a_single_group_and_hostile_names_are_handled():
    from fairness_core.regression_report import html_report
    from fairness_core.regression_result import render_summary
    df = pd.DataFrame({"y": np.arange(50.0), "p": np.arange(50.0) + 1, "s": ["a"] * 50})
    r = audit_frame(df, None, spec=AuditSpec(label="y", predictions=["p"], sensitive=["s"],
                                             task="regression"))
    assert len(r.disparities) == 0 and "single group" in " ".join(r.warnings)
    assert "reference" in render_summary(r)
    json.loads(r.to_json())
    bad = "<script>alert(1)</script>"
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"y": rng.normal(100, 10, 200), "s": [bad, "b"] * 100})
    df["p"] = df["y"] + rng.normal(0, 5, 200)
    r = audit_frame(df, None, spec=AuditSpec(label="y", predictions=["p"], sensitive=["s"],
                                             task="regression"))
    html = html_report(r)
    assert bad not in html and "&lt;script&gt;" in html


@pytest.mark.engines
def test_postgres_audit_equals_memory(postgres_url, tmp_path, capsys):
    """The command line on a table in a real PostgreSQL server: the sums and
    the binned counts are GROUP BYs there, and every number is the same as in
    memory."""
    ibis = pytest.importorskip("ibis")
    df = pd.read_csv(SAMPLE)
    con = ibis.connect(postgres_url)
    try:
        con.create_table("credit_limits", df, overwrite=True)
        j = tmp_path / "pg.json"
        assert main([postgres_url, "--table", "credit_limits", "--label", "credit_limit",
                     "--prediction", "model_a_limit", "--sensitive", "sex", "--sensitive",
                     "region", "--task", "regression", "--json", str(j), "--quiet"]) == 0
    finally:
        con.drop_table("credit_limits", force=True)
        con.disconnect()
    got = json.loads(j.read_text())
    want = audit_frame(df, None, spec=_spec(predictions=["model_a_limit"],
                                            sensitive=["sex", "region"]))
    g = pd.DataFrame(got["groups"]).set_index(["attribute", "group"])
    w = want.group_metrics.set_index(["attribute", "group"]).loc[g.index]
    for m in ("mean_error", "mae", "rmse", "r2", "mae_ci_low", "r2_ci_high"):
        assert np.allclose(g[m].astype(float), w[m], rtol=1e-9), m
    assert got["provenance"]["rows_used"] == 5000


@pytest.mark.engines
def test_spark_table_audits_like_memory(spark):
    """The same sums and binned counts in Spark."""
    from fairness_core.engine import open_table
    from fairness_core.regression_result import audit_counted
    df = pd.read_csv(SAMPLE)[["sex", "region", "credit_limit", "model_b_limit"]]
    spark.createDataFrame(df.astype(object).where(df.notna(), None)) \
        .createOrReplaceTempView("credit_rows")
    spec = _spec(predictions=["model_b_limit"], sensitive=["sex", "region"])
    t = open_table("unused", table="credit_rows", engine="spark")[0]
    got = audit_counted(count_engine(t, spec), spec)
    want = audit_frame(df, None, spec=spec)
    a = want.groups.set_index(["attribute", "group"])
    b = got.groups.set_index(["attribute", "group"]).loc[a.index]
    for m in ("n", "mean_error", "mae", "rmse", "r2", "rmse_ci_high"):
        assert np.allclose(a[m].astype(float), b[m].astype(float), rtol=1e-9), m
    e = want.distributions["errors"].set_index(["attribute", "group", "bin"])["weight"]
    f = got.distributions["errors"].set_index(["attribute", "group", "bin"])["weight"]
    assert np.array_equal(e.to_numpy(), f.loc[e.index].to_numpy())


def test_a_listed_source_is_not_audited_as_a_number(tmp_path, capsys):
    """--sources counts yes/no decisions or classes where they live; a
    regression audit of one is one clear line (exit 2) that says how to audit
    the data instead, without the source's path."""
    listing = tmp_path / "sources.toml"
    listing.write_text(f'[sources.limits]\npath = "{SAMPLE}"\n')
    code = main(["limits", "--sources", str(listing), "--task", "regression", "--label",
                 "credit_limit", "--prediction", "model_a_limit", "--sensitive", "sex",
                 "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "numeric outcome" in err and "--table" in err and str(SAMPLE) not in err
