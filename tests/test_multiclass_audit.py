"""Multiclass audits end to end: the result's contract, the CLI in memory
and in DuckDB, JSON / CSV / XLSX / report / configuration round trips, the
findings, the options that do not apply, and the bundled triage sample.

Numbers are checked against fairlearn's MetricFrame and scikit-learn on the
one-vs-rest (binarised) columns, never against the audit's own output."""
from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import fairlearn.metrics as flm
import numpy as np
import pandas as pd
import pytest
import sklearn.metrics as skm

from fairness_core import AuditSpec, audit
from fairness_core.cli import main
from fairness_core.errors import InputError

ROOT = Path(__file__).resolve().parent.parent
TRIAGE = ROOT / "sample_data" / "triage.csv"
CLASSES = ["1 immediate", "2 urgent", "3 standard", "4 non-urgent"]
FL = {"selection_rate": flm.selection_rate, "tpr": flm.true_positive_rate,
      "fpr": flm.false_positive_rate, "fnr": flm.false_negative_rate,
      "tnr": flm.true_negative_rate,
      "ppv": lambda y, p, **kw: skm.precision_score(y, p, zero_division=np.nan, **kw),
      "accuracy": skm.accuracy_score}


def _table(n=2500, seed=3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    true = rng.choice(3, size=n, p=[0.3, 0.5, 0.2])
    pred = np.where(rng.random(n) < 0.7, true, rng.choice(3, size=n))
    grp = rng.choice(["A", "B", "C"], size=n, p=[0.5, 0.3, 0.2])
    pred[(grp == "B") & (true == 0) & (rng.random(n) < 0.5)] = 1
    names = np.array(["low", "mid", "high"], dtype=object)
    return pd.DataFrame({"y": names[true], "p": names[pred], "g": grp,
                         "w": rng.uniform(0.5, 2.0, n)})


def _spec(**kw) -> AuditSpec:
    return AuditSpec(**{"label": "y", "predictions": ["p"], "sensitive": ["g"],
                        "task": "multiclass", "n_bootstrap": 0, **kw})


@pytest.mark.parametrize("weighted", [False, True])
def test_per_class_rates_equal_fairlearn_on_the_binarised_columns(weighted):
    df = _table()
    r = audit(df, _spec(weight="w" if weighted else None))
    assert r.task == "multiclass" and r.classes == ["high", "low", "mid"]
    assert set(r.groups["class"]) == set(r.classes)
    assert set(r.disparities["class"]) == set(r.classes)
    g = r.group_metrics.set_index(["class", "group"])
    for c in r.classes:
        mf = flm.MetricFrame(metrics=FL, y_true=(df["y"] == c).astype(int),
                             y_pred=(df["p"] == c).astype(int), sensitive_features=df["g"],
                             sample_params={m: {"sample_weight": df["w"].to_numpy()}
                                            for m in FL} if weighted else None)
        for grp, row in mf.by_group.iterrows():
            for m in FL:
                assert g.loc[(c, grp), m] == pytest.approx(row[m], abs=1e-9), (c, grp, m)
        # between-group summaries of class c: fairlearn's, on the binarised decision
        s = r.summary[(r.summary["class"] == c)].iloc[0]
        kw = dict(y_true=(df["y"] == c).astype(int), y_pred=(df["p"] == c).astype(int),
                  sensitive_features=df["g"],
                  sample_weight=df["w"].to_numpy() if weighted else None)
        assert s["demographic_parity_difference"] == pytest.approx(
            flm.demographic_parity_difference(**kw), abs=1e-9)
        assert s["equalized_odds_ratio"] == pytest.approx(
            flm.equalized_odds_ratio(**kw), abs=1e-9)


def test_group_accuracy_macro_and_worst_class_from_sklearn():
    df = _table()
    r = audit(df, _spec())
    gs = r.group_summary[r.group_summary["attribute"] == "g"].set_index("group")
    for grp, part in df.groupby("g"):
        assert gs.loc[grp, "accuracy"] == pytest.approx(
            skm.accuracy_score(part["y"], part["p"]), abs=1e-12)
        assert gs.loc[grp, "macro_tpr"] == pytest.approx(
            skm.balanced_accuracy_score(part["y"], part["p"]), abs=1e-12)
    dpd = {c: flm.demographic_parity_difference((df["y"] == c).astype(int),
                                                (df["p"] == c).astype(int),
                                                sensitive_features=df["g"])
           for c in r.classes}
    w = r.worst.set_index("summary").loc["demographic_parity"]
    assert w["class"] == max(dpd, key=dpd.get)
    assert w["difference"] == pytest.approx(max(dpd.values()), abs=1e-12)
    # the injected gap (B's true 'low' sent to 'mid') is a failing finding that names its side
    f = next(f for f in r.findings if f["kind"] == "fail" and f["class"] == "low"
             and f["metric"] == "tpr" and f["group"] == "B")
    assert f["disadvantaged"] == "B"
    assert "Among people whose true class is 'low'" in f["text"]
    assert "misses the class 'low' more often for people with g = 'B'" in f["text"]
    # confusion: the k x k table of every group equals scikit-learn's
    conf = r.confusion[(r.confusion["attribute"] == "g")]
    for grp, part in df.groupby("g"):
        cm = skm.confusion_matrix(part["y"], part["p"], labels=r.classes)
        c = conf[conf["group"] == grp].pivot(index="true_class", columns="predicted_class",
                                             values="n").loc[r.classes, r.classes]
        assert (c.to_numpy() == cm).all()


def test_selection_rate_gap_is_stated_without_a_side():
    df = _table()
    r = audit(df, _spec())
    sel = [f for f in r.findings if f["kind"] == "fail" and f["metric"] == "selection_rate"]
    assert sel, "the injected gap moves the shares assigned 'low' and 'mid'"
    for f in sel:
        assert f["disadvantaged"] is None
        assert "helps or harms a person depends on the class" in f["text"]


def _cli(tmp_path, *extra):
    path = tmp_path / "t.csv"
    if not path.exists():
        _table().to_csv(path, index=False)
    return main([str(path), "--label", "y", "--prediction", "p", "--sensitive", "g",
                 "--bootstrap", "0", *extra])


def test_cli_infers_multiclass_and_writes_json_csv_xlsx(tmp_path, capsys):
    out = tmp_path / "o"
    assert _cli(tmp_path, "--engine", "memory", "--json", str(out / "a.json"), "--csv",
                str(out / "a.csv"), "--xlsx", str(out / "a.xlsx")) == 0
    cap = capsys.readouterr()
    assert "task multiclass" in cap.err and "3 values" in cap.err
    assert "Verdicts per class" in cap.out and "worst class" in cap.out
    assert "Traceback" not in cap.out + cap.err
    d = json.loads((out / "a.json").read_text())
    assert d["task"] == "multiclass" and d["classes"] == ["high", "low", "mid"]
    for key in ("groups", "disparities", "summary"):
        assert d[key] and all("class" in rec for rec in d[key])
    assert {"worst_class", "group_summary", "confusion"} <= set(d)
    df = _table()
    # JSON numbers equal pandas counts
    rec = next(x for x in d["groups"] if x["class"] == "mid" and x["group"] == "C")
    part = df[df["g"] == "C"]
    assert rec["tp"] == int(((part["y"] == "mid") & (part["p"] == "mid")).sum())
    assert rec["selection_rate"] == pytest.approx((part["p"] == "mid").mean(), abs=1e-12)
    conf = [x for x in d["confusion"] if x["group"] == "C" and x["attribute"] == "g"]
    assert sum(x["n"] for x in conf) == len(part)
    # CSV: one row per class x group (and attribute), the same numbers
    csv = pd.read_csv(out / "a.csv", encoding="utf-8-sig")
    assert len(csv) == 3 * 3 and set(csv["class"]) == {"high", "low", "mid"}
    row = csv[(csv["class"] == "mid") & (csv["group"] == "C")].iloc[0]
    assert row["selection_rate"] == pytest.approx((part["p"] == "mid").mean(), abs=1e-12)
    sheets = pd.read_excel(out / "a.xlsx", sheet_name=None)
    assert {"groups", "disparities", "summary", "worst_class", "group_summary",
            "confusion", "About"} <= set(sheets)
    assert sheets["confusion"]["n"].sum() == len(df) * 2  # the attribute and (overall)


def test_duckdb_engine_equals_memory_and_config_round_trip(tmp_path, capsys):
    a, b = tmp_path / "mem.json", tmp_path / "duck.json"
    cfg = tmp_path / "c.json"
    assert _cli(tmp_path, "--engine", "memory", "--json", str(a), "--save-config",
                str(cfg), "--quiet") == 0
    assert json.loads(cfg.read_text())["spec"]["task"] == "multiclass"
    assert main([str(tmp_path / "t.csv"), "--config", str(cfg), "--engine", "duckdb",
                 "--json", str(b), "--quiet"]) == 0
    da, db = json.loads(a.read_text()), json.loads(b.read_text())
    for key in ("groups", "disparities", "summary", "group_summary", "confusion",
                "worst_class"):
        x, y = pd.DataFrame(da[key]), pd.DataFrame(db[key])
        pd.testing.assert_frame_equal(x, y, check_exact=False, rtol=1e-12)
    assert da["findings"] == db["findings"]
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("extra, words", [
    (["--positive", "low"], "--positive"),
    (["--score", "w"], "not as a score"),
    (["--threshold", "0.3"], "--threshold"),
    (["--export-counts", "x.csv"], "--export-counts"),
    (["--positive-decision", "harm"], "--positive-decision"),
])
def test_options_that_do_not_apply_are_refused_in_one_line(tmp_path, capsys, extra, words):
    if "--export-counts" in extra:
        extra = ["--export-counts", str(tmp_path / "x.csv")]
    assert _cli(tmp_path, "--task", "multiclass", "--engine", "memory", *extra) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err and words in err, err


def test_positive_value_or_task_binary_keeps_yes_no_decisions(tmp_path, capsys):
    assert _cli(tmp_path, "--positive", "low", "--prediction-positive", "p=low", "--quiet",
                "--json", str(tmp_path / "b.json")) == 0
    d = json.loads((tmp_path / "b.json").read_text())
    assert "task" not in d and d["provenance"]["positive_values"] == ["low"]
    assert _cli(tmp_path, "--task", "binary", "--quiet") == 2
    assert "positive class" in capsys.readouterr().err


def test_report_has_the_multiclass_sections(tmp_path):
    out = tmp_path / "r.html"
    assert _cli(tmp_path, "--engine", "memory", "--report", str(out), "--quiet",
                "--title", "<b>Triage</b>") == 0
    html = out.read_text(encoding="utf-8")
    for section in ("Verdicts per class", "Confusion matrices per group",
                    "The worst class per attribute", "undefined", "one against the rest"):
        assert section in html, section
    assert "&lt;b&gt;Triage&lt;/b&gt;" in html and "<b>Triage</b>" not in html
    # one heatmap per group, each k x k from the counts
    assert html.count('"type":"heatmap"') >= 3
    df = _table()
    cm = skm.confusion_matrix(df.loc[df["g"] == "A", "y"], df.loc[df["g"] == "A", "p"],
                              labels=["high", "low", "mid"])
    assert f"({cm[0, 0]:,})" in html


def test_api_refuses_scores_and_positive_for_several_classes():
    df = _table()
    with pytest.raises(InputError, match="--positive"):
        audit(df, _spec(positive="low"))
    with pytest.raises(InputError, match="label"):
        audit(df, AuditSpec(predictions=["p"], sensitive=["g"], task="multiclass"))


# --------------------------------------------------------------------------
# the bundled triage sample and its documented gaps
# --------------------------------------------------------------------------
def test_triage_sample_is_the_generator_output():
    sys.path.insert(0, str(ROOT / "sample_data"))
    try:
        from make_triage import generate
    finally:
        sys.path.pop(0)
    want = generate()
    got = pd.read_csv(TRIAGE, dtype={"patient_id": str})
    pd.testing.assert_frame_equal(got, want, check_dtype=False)


def test_triage_gaps_are_found_by_the_cli(tmp_path, capsys):
    out = tmp_path / "t.json"
    assert main([str(TRIAGE), "--label", "true_level", "--prediction", "model_a_level",
                 "--prediction", "model_b_level", "--sensitive", "race", "--sensitive", "sex",
                 "--sensitive", "age_group", "--bootstrap", "0", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    d = json.loads(out.read_text())
    df = pd.read_csv(TRIAGE)
    fails = [f for f in d["findings"] if f["kind"] == "fail" and f["significant"]]

    def found(model, cls, metric, attribute, group):
        return next((f for f in fails if f["model"] == model and f["class"] == cls and
                     f["metric"] == metric and f["attribute"] == attribute and
                     group in (f["group"], f["reference"])), None)

    a = "model_a_level"
    # (1) Black patients truly 'urgent' are assigned 'urgent' less often
    f = found(a, "2 urgent", "tpr", "race", "Black")
    assert f and f["disadvantaged"] == "Black" and f["severity"] == "high"
    urgent = df[df["true_level"] == "2 urgent"]
    rate = (urgent["model_a_level"] == "2 urgent").groupby(urgent["race"]).mean()
    assert f["ratio"] == pytest.approx(rate["Black"] / rate["White"], abs=1e-12)
    assert f["ratio"] < 0.7
    # (2) women truly 'immediate' are under-triaged
    f = found(a, "1 immediate", "tpr", "sex", "Female")
    assert f and f["disadvantaged"] == "Female"
    # (3) patients 65+ truly 'standard' are over-triaged to 'urgent'
    f = found(a, "2 urgent", "fpr", "age_group", "65+")
    assert f and f["disadvantaged"] == "65+" and f["ratio"] > 2
    # (4) the small group is not judged
    assert "'Pacific Islander'" in text and "fewer than 30 rows" in text
    # model B has no injected gap: none of the three is found for it
    b = "model_b_level"
    assert not found(b, "2 urgent", "tpr", "race", "Black")
    assert not found(b, "1 immediate", "tpr", "sex", "Female")
    assert not found(b, "2 urgent", "fpr", "age_group", "65+")


def test_bench_script_runs_small():
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_multiclass.py"),
                        "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "--rows" in r.stdout


def test_csv_round_trip_reads_back_the_same_numbers(tmp_path):
    r = audit(_table(), _spec())
    from fairness_core import exports
    back = pd.read_csv(io.BytesIO(exports.to_csv_bytes(exports.tables(r)["groups"])),
                       encoding="utf-8-sig")
    mine = r.group_table().reset_index(drop=True)
    for c in ("n", "tp", "fp", "tn", "fn", "selection_rate", "tpr"):
        np.testing.assert_allclose(back[c].to_numpy(dtype=float),
                                   mine[c].to_numpy(dtype=float), rtol=1e-12, equal_nan=True)
    assert re.fullmatch(r"[a-z]+", back["class"].iloc[0])


def test_suppressed_small_groups_keep_their_class_and_leave_the_summaries(tmp_path):
    df = _table()
    df.loc[df.index[:12], "g"] = "tiny"
    path = tmp_path / "s.csv"
    df.to_csv(path, index=False)
    xlsx = tmp_path / "s.xlsx"
    assert main([str(path), "--label", "y", "--prediction", "p", "--sensitive", "g",
                 "--bootstrap", "0", "--quiet", "--suppress-below", "20", "--xlsx",
                 str(xlsx)]) == 0
    sheets = pd.read_excel(xlsx, sheet_name=None)
    g = sheets["groups"]
    tiny = g[g["group"] == "tiny"]
    assert len(tiny) == 3 and set(tiny["class"]) == {"high", "low", "mid"}
    assert tiny["tpr"].isna().all() and tiny["n"].isna().all()
    conf = sheets["confusion"]
    assert conf.loc[conf["group"] == "tiny", "n"].isna().all()
    assert conf.loc[conf["group"] == "tiny", "true_class"].notna().all()
    # the summaries are fairlearn's over the other groups only
    rest = df[df["g"] != "tiny"]
    s = sheets["summary"].set_index("class")
    for c in ("high", "low", "mid"):
        assert s.loc[c, "demographic_parity_difference"] == pytest.approx(
            flm.demographic_parity_difference((rest["y"] == c).astype(int),
                                              (rest["p"] == c).astype(int),
                                              sensitive_features=rest["g"]), abs=1e-9)


def test_listed_source_is_audited_where_it_lives(tmp_path, capsys):
    """--sources: a Parquet folder of the administrator's list, counted by
    DuckDB, gives the numbers of the file in memory; messages name the
    source, never its path."""
    folder = tmp_path / "triage"
    folder.mkdir()
    df = pd.read_csv(TRIAGE)
    df.iloc[:5000].to_parquet(folder / "part-0.parquet")
    df.iloc[5000:].to_parquet(folder / "part-1.parquet")
    listing = tmp_path / "sources.toml"
    listing.write_text(f'[sources.triage]\npath = "{folder}"\n')
    args = ["--label", "true_level", "--prediction", "model_a_level", "--sensitive", "race",
            "--task", "multiclass", "--bootstrap", "0", "--quiet"]
    out = tmp_path / "s.json"
    assert main(["triage", "--sources", str(listing), *args, "--json", str(out)]) == 0
    mem = audit(df, AuditSpec(label="true_level", predictions=["model_a_level"],
                              sensitive=["race"], task="multiclass", n_bootstrap=0))
    got = pd.DataFrame(json.loads(out.read_text())["groups"])
    want = mem.group_metrics
    np.testing.assert_allclose(got["tpr"].to_numpy(dtype=float),
                               want["tpr"].to_numpy(dtype=float), rtol=1e-12, equal_nan=True)
    assert json.loads(out.read_text())["provenance"]["input"]["name"] == "triage"
    assert main(["triage", "--sources", str(listing), *args[:4], "--sensitive", "nope",
                 "--task", "multiclass", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "'nope'" in err and str(folder) not in err


def test_hostile_class_and_group_names_stay_text(tmp_path):
    rng = np.random.default_rng(5)
    names = np.array(["=HYPERLINK(\"http://x\")", "<script>alert(1)</script>", "plain"],
                     dtype=object)
    n = 600
    df = pd.DataFrame({"y": names[rng.integers(0, 3, n)], "p": names[rng.integers(0, 3, n)],
                       "g": np.where(rng.random(n) < 0.5, "<img src=x onerror=alert(2)>",
                                     "B")})
    path = tmp_path / "h.csv"
    df.to_csv(path, index=False)
    rep, csv = tmp_path / "h.html", tmp_path / "h.csv.out"
    assert main([str(path), "--label", "y", "--prediction", "p", "--sensitive", "g",
                 "--bootstrap", "0", "--quiet", "--report", str(rep), "--csv", str(csv)]) == 0
    html = rep.read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    text = csv.read_bytes().decode("utf-8-sig")
    assert "'=HYPERLINK" in text and "\n=HYPERLINK" not in text and ",=HYPERLINK" not in text


@pytest.mark.parametrize("frame, words", [
    (pd.DataFrame({"y": ["a"] * 40, "p": ["a"] * 40, "g": ["x", "z"] * 20}), "one class"),
    (pd.DataFrame({"y": [f"c{i}" for i in range(60)] * 2,
                   "p": [f"c{i}" for i in range(60)] * 2, "g": ["x", "z"] * 60}),
     "more than the limit of"),
])
def test_bad_labels_for_several_classes_exit_2_with_one_line(tmp_path, capsys, frame, words):
    path = tmp_path / "b.csv"
    frame.to_csv(path, index=False)
    assert main([str(path), "--label", "y", "--prediction", "p", "--sensitive", "g",
                 "--task", "multiclass", "--bootstrap", "0", "--quiet",
                 "--engine", "memory"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and words in err, err


def test_rows_with_a_missing_class_are_left_out_and_counted():
    df = _table()
    df.loc[df.index[:7], "p"] = None
    r = audit(df, _spec())
    assert r.provenance["rows_read"] == len(df) and r.provenance["rows_used"] == len(df) - 7
    assert r.provenance["rows_dropped"] == 7
    assert any("7 of" in w for w in r.warnings)


def test_postgres_table_from_the_cli_equals_memory(postgres_url, tmp_path, capsys):
    """A database URL and --table: the confusion tables are counted by
    PostgreSQL (one GROUP BY) and give the numbers of the rows in memory."""
    ibis = pytest.importorskip("ibis")
    df = _table(1200, seed=8)
    con = ibis.connect(postgres_url)
    try:
        con.create_table("mc_cli_rows", df, overwrite=True)
        out = tmp_path / "pg.json"
        assert main([postgres_url, "--table", "mc_cli_rows", "--label", "y", "--prediction",
                     "p", "--sensitive", "g", "--weight", "w", "--task", "multiclass",
                     "--bootstrap", "0", "--quiet", "--json", str(out)]) == 0
    finally:
        con.drop_table("mc_cli_rows", force=True)
        con.disconnect()
    got = pd.DataFrame(json.loads(out.read_text())["groups"]).set_index(["class", "group"])
    for c in ("high", "low", "mid"):
        mf = flm.MetricFrame(metrics=FL, y_true=(df["y"] == c).astype(int),
                             y_pred=(df["p"] == c).astype(int), sensitive_features=df["g"],
                             sample_params={m: {"sample_weight": df["w"].to_numpy()}
                                            for m in FL})
        for grp, row in mf.by_group.iterrows():
            for m in FL:
                assert got.loc[(c, grp), m] == pytest.approx(row[m], abs=1e-9)
    assert "Traceback" not in capsys.readouterr().err


def test_fail_on_disparity_exits_1(tmp_path, capsys):
    assert _cli(tmp_path, "--engine", "memory", "--quiet", "--fail-on-disparity") == 1
    assert "disparities fail the tolerance" in capsys.readouterr().err


def test_engine_count_draws_a_progress_line(tmp_path, capsys, monkeypatch):
    """--progress always: the DuckDB count of several classes shows the one
    progress line on stderr and erases it (stderr keeps the task note only)."""
    path = tmp_path / "rows.parquet"
    _table(3000).to_parquet(path, index=False)
    monkeypatch.setenv("FAIRNESS_AUDIT_PROGRESS_DELAY", "0")
    assert main([str(path), "--label", "y", "--prediction", "p", "--sensitive", "g",
                 "--bootstrap", "0", "--engine", "duckdb", "--progress", "always"]) == 0
    out, err = capsys.readouterr()
    assert "several classes" in out
    drawn = err.split("fairness-audit: task multiclass", 1)[1].split("\n", 1)[1]
    assert drawn.startswith("\r") and drawn.endswith("\r") and "duckdb" in drawn.lower()
