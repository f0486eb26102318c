"""Audits of public data files exactly as published (ProPublica's COMPAS
two-year file, UCI Adult, German credit), and faithful copies of what real
files do: duplicated column names, decisions written as text, a positive
decision that harms, scores on their own scale, values outside the bins,
Windows-1252 text, labels with more than two values.

Every number is checked against pandas or fairlearn computed here.
"""
from __future__ import annotations

import json
import subprocess
import sys

import fairlearn.metrics as flm
import numpy as np
import pandas as pd
import pytest

from fairness_core import AuditSpec, InputError, audit, read_table
from fairness_core.cli import main
from fairness_core.exports import config_json, load_config
from fairness_core.guess import guess_roles
from fairness_core.metrics import key_metrics

COMPAS_CMD = ["--label", "two_year_recid", "--positive", "1", "--prediction", "score_text",
              "--prediction-positive", "score_text=Medium,High", "--positive-decision", "harm",
              "--sensitive", "race"]
ADULT_COLUMNS = ["age", "workclass", "fnlwgt", "education", "education_num", "marital_status",
                 "occupation", "relationship", "race", "sex", "capital_gain", "capital_loss",
                 "hours_per_week", "native_country", "income"]


@pytest.fixture(scope="module")
def compas(real_data) -> pd.DataFrame:
    """The COMPAS file read by pandas itself (which names duplicates x.1)."""
    return pd.read_csv(real_data["compas"])


def _fpr_by_race(compas: pd.DataFrame) -> pd.Series:
    """ProPublica's false positive rates: score_text Medium/High among
    defendants who did not reoffend within two years (fairlearn)."""
    y = compas["two_year_recid"]
    pred = compas["score_text"].isin(["Medium", "High"]).astype(int)
    mf = flm.MetricFrame(metrics=flm.false_positive_rate, y_true=y, y_pred=pred,
                         sensitive_features=compas["race"])
    return mf.by_group


# --------------------------------------------------------------------------
# The command of the README, on the original file
# --------------------------------------------------------------------------
def test_compas_command_prints_propublica_error_rates_and_names_the_harmed_group(
        real_data, compas, capsys, tmp_path):
    out_json = tmp_path / "audit.json"
    code = main([str(real_data["compas"]), *COMPAS_CMD, "--json", str(out_json)])
    out = capsys.readouterr().out
    assert code == 0
    fpr = _fpr_by_race(compas)
    assert round(100 * fpr["African-American"], 1) == 44.8
    assert round(100 * fpr["Caucasian"], 1) == 23.5
    aa_row = next(ln for ln in out.splitlines() if ln.strip().startswith("African-American"))
    ca_row = next(ln for ln in out.splitlines() if ln.strip().startswith("Caucasian"))
    assert "44.8%" in aa_row and "23.5%" in ca_row
    # the false negative rates ProPublica reported beside them
    y = compas["two_year_recid"]
    pred = compas["score_text"].isin(["Medium", "High"]).astype(int)
    fnr = flm.MetricFrame(metrics=flm.false_negative_rate, y_true=y, y_pred=pred,
                          sensitive_features=compas["race"]).by_group
    assert f"{100 * fnr['African-American']:.1f}%" in aa_row
    assert f"{100 * fnr['Caucasian']:.1f}%" in ca_row
    doc = json.loads(out_json.read_text())
    assert doc["spec"]["positive_decision"] == "harm"
    f = next(f for f in doc["findings"] if f["kind"] == "fail" and f["metric"] == "fpr"
             and {f["group"], f["reference"]} == {"Caucasian", "African-American"})
    assert f["disadvantaged"] == "African-American"
    assert "disadvantages people with race = 'African-American'" in f["text"]
    assert "disadvantages people with race = 'African-American'" in out


def test_every_fpr_finding_blames_the_higher_rate_for_a_harm_and_the_lower_for_a_benefit(
        real_data):
    base = dict(label="two_year_recid", positive="1", predictions=["score_text"],
                prediction_positive={"score_text": ["Medium", "High"]}, sensitive=["race"],
                n_bootstrap=0)
    for decision in ("harm", "benefit"):
        res = audit(real_data["compas"], AuditSpec(**base, positive_decision=decision))
        fpr = [f for f in res.findings if f["kind"] == "fail" and f["metric"] == "fpr"]
        assert fpr
        for f in fpr:
            higher = f["group"] if f["value"] > f["reference_value"] else f["reference"]
            lower = f["reference"] if higher == f["group"] else f["group"]
            assert f["disadvantaged"] == (higher if decision == "harm" else lower)
        # which metrics come first: the error that hurts people
        assert key_metrics(decision)[1] == ("fpr" if decision == "harm" else "fnr")
        first = next(f for f in res.findings if f["kind"] == "fail")
        assert first["metric"] in key_metrics(decision)


def test_positive_decision_travels_with_the_spec_config_and_report(real_data):
    spec = AuditSpec(label="two_year_recid", positive="1", predictions=["score_text"],
                     prediction_positive={"score_text": ["Medium", "High"]},
                     positive_decision="harm", sensitive=["race"], n_bootstrap=0)
    loaded, _ = load_config(config_json(spec, "abc", "compas.csv"))
    assert loaded.positive_decision == "harm"
    assert loaded.prediction_positive == {"score_text": ["Medium", "High"]}
    assert loaded == spec
    with pytest.raises(InputError) as err:
        AuditSpec(label="y", predictions=["p"], sensitive=["g"], positive_decision="good")
    assert "benefit" in err.value.message and "harm" in err.value.message


# --------------------------------------------------------------------------
# 1. Duplicated column names
# --------------------------------------------------------------------------
def test_duplicated_column_names_are_read_as_pandas_names_them(real_data, compas):
    df, info = read_table(real_data["compas"])
    assert list(df.columns) == list(compas.columns)  # pandas: decile_score.1, priors_count.1
    assert info.duplicates == {"decile_score": ["decile_score", "decile_score.1"],
                               "priors_count": ["priors_count", "priors_count.1"]}
    assert any("decile_score.1" in w for w in info.warnings)
    res = audit(real_data["compas"], AuditSpec(label="two_year_recid", scores=["decile_score"],
                                               sensitive=["sex"], n_bootstrap=0))
    assert any("'decile_score'" in w and "decile_score.1" in w for w in res.warnings)


def test_a_chosen_duplicated_column_with_different_values_is_refused(real_data, tmp_path):
    import csv

    with open(real_data["compas"], newline="") as fh:
        rows = list(csv.reader(fh))
    header = rows[0]
    second = [i for i, h in enumerate(header) if h == "decile_score"][1]
    body = rows[1:201]  # a faithful copy whose second decile_score differs
    for r in body:
        r[second] = str(11 - int(r[second]))
    path = tmp_path / "two-decile-scores.csv"
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows([header, *body])
    spec = AuditSpec(label="two_year_recid", scores=["decile_score"], sensitive=["sex"],
                     n_bootstrap=0)
    with pytest.raises(InputError) as err:
        audit(path, spec)
    msg = err.value.message
    assert "'decile_score'" in msg and "'decile_score.1'" in msg and "ambiguous" in msg
    # the second copy can be chosen by its name, and a column not chosen is no problem
    ok = audit(path, AuditSpec(label="two_year_recid", scores=["decile_score.1"],
                               sensitive=["sex"], n_bootstrap=0))
    assert ok.provenance["rows_used"] == 200
    assert audit(path, AuditSpec(label="two_year_recid", predictions=["is_recid"],
                                 sensitive=["sex"], n_bootstrap=0)).provenance["rows_used"]


# --------------------------------------------------------------------------
# 3. Decisions written as text; labels with more than two values
# --------------------------------------------------------------------------
def test_text_decision_with_its_positive_values_equals_fairlearn(real_data, compas):
    res = audit(real_data["compas"], AuditSpec(
        label="two_year_recid", positive="1", predictions=["score_text"],
        prediction_positive={"score_text": ["Medium", "High"]}, sensitive=["race", "sex"],
        n_bootstrap=0))
    y = compas["two_year_recid"]
    pred = compas["score_text"].isin(["Medium", "High"]).astype(int)
    for attr in ("race", "sex"):
        mf = flm.MetricFrame(metrics={"selection_rate": flm.selection_rate,
                                      "tpr": flm.true_positive_rate,
                                      "fpr": flm.false_positive_rate},
                             y_true=y, y_pred=pred, sensitive_features=compas[attr])
        g = res.group_metrics[res.group_metrics["attribute"] == attr].set_index("group")
        for grp, row in mf.by_group.iterrows():
            for m in ("selection_rate", "tpr", "fpr"):
                assert g.loc[grp, m] == pytest.approx(row[m], abs=1e-12)
    assert res.provenance["decisions"]["score_text"]["positive"] == "'Medium' or 'High'"


def test_text_decision_without_its_values_says_how_to_give_them(real_data):
    with pytest.raises(InputError) as err:
        audit(real_data["compas"], AuditSpec(label="two_year_recid", positive="1",
                                             predictions=["score_text"], sensitive=["race"]))
    msg = err.value.message
    assert "'High'" in msg and "'Low'" in msg and "--prediction-positive score_text=" in msg
    assert err.value.field == "prediction_positive"
    with pytest.raises(InputError) as err:
        audit(real_data["compas"], AuditSpec(
            label="two_year_recid", positive="1", predictions=["score_text"],
            prediction_positive={"score_text": ["Severe"]}, sensitive=["race"]))
    assert "'Severe'" in err.value.message and "'Medium'" in err.value.message


def test_cli_text_decision_flag_and_value_errors_exit_2(real_data, capsys):
    code = main([str(real_data["compas"]), "--label", "two_year_recid", "--prediction",
                 "score_text", "--sensitive", "race"])
    err = capsys.readouterr().err
    assert code == 2 and "--prediction-positive" in err and len(err.strip().splitlines()) == 1
    code = main([str(real_data["compas"]), "--label", "two_year_recid", "--prediction",
                 "score_text", "--prediction-positive", "score_text", "--sensitive", "race"])
    assert code == 2 and "score_text=Medium,High" in capsys.readouterr().err


def _adult(real_data) -> pd.DataFrame:
    """UCI Adult's training and test files together, as published: the test
    file writes its labels with a trailing dot ("<=50K."), so the label
    has four values."""
    parts = [pd.read_csv(real_data[k], header=None, names=ADULT_COLUMNS,
                         skipinitialspace=True, skiprows=1 if k == "adult_test" else 0,
                         na_values="?") for k in ("adult_data", "adult_test")]
    return pd.concat(parts, ignore_index=True).dropna(subset=["income"])


def test_label_with_four_values_needs_its_positive_set(real_data, tmp_path):
    adult = _adult(real_data)
    assert set(adult["income"]) == {"<=50K", ">50K", "<=50K.", ">50K."}
    rng = np.random.default_rng(0)
    adult["decision"] = np.where(rng.random(len(adult)) < 0.3, "approve", "decline")
    path = tmp_path / "adult.csv"
    adult.to_csv(path, index=False)
    spec = dict(label="income", predictions=["decision"],
                prediction_positive={"decision": ["approve"]}, sensitive=["sex"],
                n_bootstrap=0)
    with pytest.raises(InputError) as err:
        audit(path, AuditSpec(**spec))
    assert "4 values" in err.value.message and "'>50K.'" in err.value.message
    res = audit(path, AuditSpec(**spec, positive=[">50K", ">50K."]))
    y = adult["income"].isin([">50K", ">50K."]).astype(int)
    pred = (adult["decision"] == "approve").astype(int)
    mf = flm.MetricFrame(metrics={"base_rate": lambda yt, yp: yt.mean(),
                                  "tpr": flm.true_positive_rate},
                         y_true=y, y_pred=pred, sensitive_features=adult["sex"])
    g = res.group_metrics.set_index("group")
    for grp, row in mf.by_group.iterrows():
        assert g.loc[grp, "base_rate"] == pytest.approx(row["base_rate"], abs=1e-12)
        assert g.loc[grp, "tpr"] == pytest.approx(row["tpr"], abs=1e-12)
    # the CLI takes the set as V1,V2
    assert main([str(path), "--label", "income", "--positive", ">50K,>50K.", "--prediction",
                 "decision", "--prediction-positive", "decision=approve", "--sensitive",
                 "sex", "--bootstrap", "0", "--quiet"]) == 0


# --------------------------------------------------------------------------
# 4. Degenerate operating points; thresholds on the score's own scale
# --------------------------------------------------------------------------
def test_score_on_its_own_scale_gets_a_threshold_that_fits_and_says_so(real_data, compas,
                                                                       capsys):
    code = main([str(real_data["compas"]), "--label", "two_year_recid", "--score",
                 "decile_score", "--positive-decision", "harm", "--sensitive", "race",
                 "--bootstrap", "0"])
    out = capsys.readouterr().out
    assert code == 0
    assert "Threshold for 'decile_score': score >= 5.5 (the middle of the score range 1 to 10" \
        in out
    res = audit(real_data["compas"], AuditSpec(label="two_year_recid", scores=["decile_score"],
                                               sensitive=["race"], n_bootstrap=0))
    sel = res.overall.iloc[0]["selection_rate"]
    assert sel == pytest.approx((compas["decile_score"] >= 5.5).mean(), abs=1e-12)
    assert 0 < sel < 1
    assert not any("positive decision" in w for w in res.warnings)


@pytest.mark.parametrize("threshold, who", [(0.5, "every row"), (11, "no row")])
def test_a_model_that_selects_everyone_or_no_one_is_not_judged(real_data, threshold, who,
                                                               capsys, tmp_path):
    out_json = tmp_path / "a.json"
    code = main([str(real_data["compas"]), "--label", "two_year_recid", "--score",
                 "decile_score", "--threshold", str(threshold), "--sensitive", "race",
                 "--bootstrap", "0", "--json", str(out_json)])
    out = capsys.readouterr().out
    assert code == 0
    doc = json.loads(out_json.read_text())
    warning = next(w for w in doc["warnings"] if who in w)
    assert "decile_score" in warning and "1 to 10" in warning
    assert f"Warning: Model 'decile_score': the model gives {who}" in out
    assert {d["verdict"] for d in doc["disparities"]} == {"insufficient"}
    assert doc["findings"][0]["kind"] == "not_judged"
    assert not any(f["kind"] == "pass" for f in doc["findings"])


def test_a_threshold_outside_a_probability_range_is_not_a_pass(real_data):
    # the Adult sample's probability score, with a threshold above every score
    res = audit("sample_data/adult_test_predictions.csv", AuditSpec(
        label="income", positive=">50K", scores=["score"], threshold=2, sensitive=["sex"],
        n_bootstrap=0))
    assert set(res.disparities["verdict"]) == {"insufficient"}
    assert any("above every score" in w for w in res.warnings)


def test_dashboard_threshold_fits_a_new_file_not_the_last_one(real_data):
    from test_app import ctx, run_default, upload

    at = run_default({"thr": "0.5"})
    assert ctx(at).result.spec.threshold in (None, 0.5)
    upload(at, "compas-scores-two-years.csv", real_data["compas"].read_bytes())
    c = ctx(at)
    assert not c.errors
    assert c.result.spec.label == "two_year_recid"
    thresholds = c.result.provenance["thresholds"]
    assert thresholds, "a score column is guessed"
    for model, t in thresholds.items():
        assert t["threshold"] == pytest.approx((t["score_min"] + t["score_max"]) / 2)
        assert 0 < c.result.overall.set_index("model").loc[model, "selection_rate"] < 1


# --------------------------------------------------------------------------
# 5. Values outside the bin edges
# --------------------------------------------------------------------------
def test_ages_below_the_first_edge_are_a_named_group_with_a_warning(real_data, tmp_path,
                                                                    capsys):
    adult = _adult(real_data)
    adult = adult[adult["income"].isin(["<=50K", ">50K"])].copy()
    adult["predicted"] = np.where(adult["education_num"] >= 13, ">50K", "<=50K")
    path = tmp_path / "adult.csv"
    adult.to_csv(path, index=False)
    res = audit(path, AuditSpec(label="income", positive=">50K", predictions=["predicted"],
                                sensitive=["age"], bins={"age": [18, 25, 40, 65, 120]},
                                n_bootstrap=0))
    g = res.group_metrics.set_index("group")
    n17 = int((adult["age"] < 18).sum())
    assert n17 > 0 and g.loc["< 18", "n"] == n17
    assert list(g.index)[0] == "< 18"
    assert not any("outside" in str(x) for x in g.index)
    assert any(f"{n17:,}" in w and "'< 18'" in w for w in res.warnings)
    d = res.disparities[res.disparities["group"] == "< 18"]
    assert (d["verdict"] != "insufficient").any()  # judged like any other group
    main([str(path), "--label", "income", "--positive", ">50K", "--prediction", "predicted",
          "--sensitive", "age", "--bin", "age=18,25,40,65,120", "--bootstrap", "0"])
    assert f"Warning: age: {n17:,} rows lie outside the bin edges" in capsys.readouterr().out


# --------------------------------------------------------------------------
# 6. Encodings
# --------------------------------------------------------------------------
def test_windows_1252_file_keeps_euro_signs_and_curly_quotes(real_data, tmp_path):
    german = pd.read_csv(real_data["german"], sep=" ", header=None)
    maps = json.loads(real_data["german_values"].read_text())
    purpose = german[3].map(maps["purpose"])
    text = pd.DataFrame({
        "credit": np.where(german[20] == 1, "good", "bad"),
        "decision": np.where(german[1] <= 24, "good", "bad"),
        # amounts written the way a European spreadsheet exports them
        "amount": [f"{a:,} €" for a in german[4]],
        "purpose": [f"“{p.strip()}”" for p in purpose],
        "sex": german[8].map({"A91": "male", "A92": "female", "A93": "male", "A94": "male",
                              "A95": "female"})})
    path = tmp_path / "german-cp1252.csv"
    path.write_bytes(text.to_csv(index=False).encode("cp1252"))
    df, info = read_table(path)
    assert info.encoding == "cp1252"
    assert df["amount"].tolist() == text["amount"].tolist()
    assert df["purpose"].tolist() == text["purpose"].tolist()
    res = audit(path, AuditSpec(label="credit", positive="good", predictions=["decision"],
                                sensitive=["purpose"], n_bootstrap=0, max_groups=20))
    assert res.provenance["input"]["encoding"] == "cp1252"
    assert "“car (new)”" in set(res.group_metrics["group"])


# --------------------------------------------------------------------------
# 7. Guessing from values
# --------------------------------------------------------------------------
def test_guesses_come_from_values_not_only_names(real_data, compas):
    df = compas.assign(high_risk=(compas["decile_score"] >= 5).astype(int))
    g = guess_roles(df)
    assert g.label == "two_year_recid" and g.positive == "1"
    assert "high_risk" in g.predictions
    assert "is_recid" not in g.predictions  # an outcome, not a decision
    assert "decile_score" in g.scores and "decile_score.1" not in g.scores
    assert g.decision_values["score_text"] == ["Medium", "High"]
    adult = pd.read_csv("sample_data/adult_test_predictions.csv")
    unnamed = adult.rename(columns={"score": "p_hat_v2"})  # a probability by its values
    assert guess_roles(unnamed).scores == ["p_hat_v2"]


# --------------------------------------------------------------------------
# 8. Found when tried as a new user would
# --------------------------------------------------------------------------
def test_cli_table_puts_the_reference_first_even_when_a_ratio_is_0(real_data, capsys):
    # Native American defendants with no Medium/High score among a subset: ratio 0
    code = main([str(real_data["compas"]), "--label", "two_year_recid", "--prediction",
                 "score_text", "--prediction-positive", "score_text=High", "--sensitive",
                 "age_cat", "--bootstrap", "0", "--min-group-size", "5"])
    out = capsys.readouterr().out
    assert code == 0
    table = out.split("age_cat (reference ")[1]
    ref = table.split("'")[1]
    first_row = table.splitlines()[2].strip()
    assert first_row.startswith(ref) and first_row.endswith("reference")


def test_help_example_runs_on_the_bundled_sample():
    from fairness_core.cli import build_parser

    epilog = build_parser().epilog
    example = epilog.split("Examples: fairness-audit ")[1].split(".  ")[0]
    args = example.split()
    assert args[0] == "sample_data/loans.csv"
    done = subprocess.run([sys.executable, "-m", "fairness_core.cli", *args, "--quiet",
                           "--bootstrap", "0"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_findings_use_the_spec_confidence(real_data):
    res = audit(real_data["compas"], AuditSpec(
        label="two_year_recid", positive="1", predictions=["score_text"],
        prediction_positive={"score_text": ["Medium", "High"]}, sensitive=["race"],
        confidence=0.9, n_bootstrap=200))
    texts = [f["text"] for f in res.findings if f["kind"] == "fail"]
    assert any("90% CI of the ratio" in t for t in texts)
    assert not any("95%" in t for t in texts)


def test_one_class_label_finding_names_only_the_metrics_not_judged(real_data, tmp_path):
    compas = pd.read_csv(real_data["compas"])
    recid = compas[compas["two_year_recid"] == 1]  # every label is 1
    path = tmp_path / "reoffenders.csv"
    recid[["two_year_recid", "score_text", "race"]].to_csv(path, index=False)
    res = audit(path, AuditSpec(label="two_year_recid", positive="1",
                                predictions=["score_text"],
                                prediction_positive={"score_text": ["Medium", "High"]},
                                positive_decision="harm", sensitive=["race"], n_bootstrap=0))
    ins = [f for f in res.findings if f["kind"] == "insufficient"
           and "could not be judged on" in f["text"]]
    assert ins
    for f in ins:
        assert "false positive rate" in f["text"]
        assert "selection rate" not in f["text"] and "true positive rate" not in f["text"]
    judged = res.disparities[(res.disparities["metric"] == "selection_rate")
                             & (res.disparities["verdict"] != "insufficient")]
    assert len(judged)  # selection rate was judged, and the finding does not deny it


def test_report_reads_a_harm_and_says_when_a_model_is_not_judged(real_data):
    from fairness_core.report import html_report

    res = audit(real_data["compas"], AuditSpec(
        label="two_year_recid", positive="1", predictions=["score_text"],
        prediction_positive={"score_text": ["Medium", "High"]}, scores=["decile_score"],
        threshold={"decile_score": 0.5}, positive_decision="harm", sensitive=["race"],
        n_bootstrap=0))
    doc = html_report(res)
    summary = doc.split("Summary")[1].split("Provenance")[0]
    assert "A positive decision is a harm for the person who gets it" in summary
    assert "false positive rate and false discovery rate come first" in summary
    assert "No gap of this model is judged" in summary  # decile_score at 0.5: everyone
    assert "Verdict (selected, FPR, FDR, FNR, TPR, accuracy)" in doc
    assert "disadvantages people with race = &#39;African-American&#39;" in summary


# --------------------------------------------------------------------------
# Files without a header row (the UCI repository's .data files)
# --------------------------------------------------------------------------
def test_uci_files_without_a_header_row_are_read_whole_with_a_note(real_data, tmp_path):
    adult_raw = pd.read_csv(real_data["adult_data"], header=None)
    df, info = read_table(real_data["adult_data"])
    assert df.shape == adult_raw.shape == (32561, 15)  # the first person is a row too
    assert list(df.columns) == [f"column_{i}" for i in range(1, 16)]
    assert (df.astype(str).to_numpy() == adult_raw.astype(str).to_numpy()).all()
    assert any("column_1 to column_15" in w and "'39'" in w for w in info.warnings), \
        info.warnings
    # German credit: values separated by single spaces, no header
    german_raw = pd.read_csv(real_data["german"], sep=" ", header=None)
    gdf, ginfo = read_table(real_data["german"])
    assert ginfo.delimiter == " " and gdf.shape == german_raw.shape == (1000, 21)
    assert gdf["column_21"].value_counts().to_dict() == \
        german_raw[20].value_counts().to_dict() == {1: 700, 2: 300}
    # an audit of the raw German file by its column numbers equals fairlearn
    gdf["approved"] = np.where(gdf["column_5"] < 4000, "yes", "no")
    spec = AuditSpec(label="column_21", positive="1", predictions=("approved",),
                     prediction_positive={"approved": ["yes"]}, sensitive=("column_9",))
    res = audit(gdf, spec)
    g = res.groups[(res.groups["attribute"] == "column_9")].set_index("group")
    mf = flm.MetricFrame(metrics=flm.true_positive_rate,
                         y_true=(german_raw[20] == 1).astype(int),
                         y_pred=(german_raw[4] < 4000).astype(int),
                         sensitive_features=german_raw[8].rename("sex"))
    for group, tpr in mf.by_group.items():
        assert g.loc[group, "tpr"] == pytest.approx(tpr, abs=1e-12)


def test_the_duckdb_engine_reads_a_headerless_file_the_same_way(real_data, tmp_path):
    pytest.importorskip("duckdb")
    from fairness_core.engine import open_table

    path = tmp_path / "german.csv"
    path.write_bytes(real_data["german"].read_bytes())
    t, info = open_table(str(path), engine="duckdb")
    got = t.execute()
    want, _ = read_table(path)
    assert list(got.columns) == list(want.columns) and got.shape == want.shape
    assert (got.astype(str).to_numpy() == want.astype(str).to_numpy()).all()
    assert any("column_1 to column_21" in w for w in info.warnings)


def test_dashboard_guesses_a_harm_from_the_label_and_says_so(real_data):
    """COMPAS's label two_year_recid (reoffended) names something bad for
    the person: the dashboard takes a positive decision as a harm, says it
    guessed, and its findings then blame the higher false positive rate, as
    ProPublica did; the user can still turn it back to a benefit."""
    from test_app import ctx, run_default, upload

    at = run_default()
    assert ctx(at).result.spec.positive_decision == "benefit"  # the loan sample: repaid
    upload(at, "compas-scores-two-years.csv", real_data["compas"].read_bytes())
    c = ctx(at)
    assert c.result.spec.label == "two_year_recid"
    assert c.result.spec.positive_decision == "harm"
    captions = [x.value.replace("\\", "") for x in at.sidebar.caption]  # Markdown escapes
    assert any("A harm, guessed because the true outcome 'two_year_recid'" in t
               for t in captions), captions
    at.radio(key="positive_decision").set_value("benefit").run()
    assert ctx(at).result.spec.positive_decision == "benefit"
    assert not any("A harm, guessed" in x.value for x in at.sidebar.caption)


@pytest.mark.parametrize("label, positive, expected", [
    ("two_year_recid", "1", "harm"), ("is_fraud", "1", "harm"), ("default", "1", "harm"),
    ("loan_status", "Charged Off", "harm"), ("credit_risk", "bad", "harm"),
    ("credit_risk", "good", "benefit"), ("repaid", "yes", "benefit"),
    ("income", ">50K", "benefit"), ("hired", "1", "benefit"), ("y", "1", "benefit"),
    ("readmitted", "1", "harm"), ("admitted", "1", "benefit")])
def test_the_guess_of_what_a_positive_decision_is(label, positive, expected):
    from fairness_core.guess import guess_positive_decision

    got, why = guess_positive_decision(label, positive)
    assert got == expected
    assert (why is None) == (expected == "benefit")


def test_cli_notes_a_label_that_sounds_like_a_harm(real_data, capsys):
    base = [str(real_data["compas"]), "--label", "two_year_recid", "--prediction",
            "score_text", "--prediction-positive", "score_text=Medium,High", "--sensitive",
            "race", "--bootstrap", "0"]
    assert main(base) == 0
    err = capsys.readouterr().err
    assert "Note: a positive decision is taken as a benefit" in err
    assert "'two_year_recid' sounds like something bad" in err
    assert "--positive-decision harm" in err
    assert main(base + ["--positive-decision", "harm"]) == 0
    assert "Note: a positive decision" not in capsys.readouterr().err
    assert main(["sample_data/loans.csv", "--label", "repaid", "--prediction",
                 "model_a_approved", "--sensitive", "sex", "--bootstrap", "0"]) == 0
    assert "Note: a positive decision" not in capsys.readouterr().err
