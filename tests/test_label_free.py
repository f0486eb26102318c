"""Audits without a true outcome (no label column): only the decisions are
audited.

Selection rates and demographic parity are checked against fairlearn (whose
selection rate ignores ``y_true``: any dummy outcome gives the same numbers),
intervals against their textbook formulas, mean scores against pandas.  Every
metric that needs the true outcome must be absent from every output (JSON,
CSV, XLSX, the report, the terminal and the dashboard), never shown as a
number.
"""
from __future__ import annotations

import io
import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (MetricFrame, demographic_parity_difference,
                               demographic_parity_ratio, selection_rate)
from scipy import stats

from fairness_core import AuditSpec, audit
from fairness_core.audit import run_audit
from fairness_core.cli import main
from fairness_core.counts import count_table
from fairness_core.errors import InputError
from fairness_core.exports import export_notes, tables, to_csv_bytes, to_xlsx_bytes
from fairness_core.metrics import NO_OUTCOME, REGISTRY, needs_outcome
from fairness_core.prepare import MISSING_GROUP, prepare

ROOT = Path(__file__).resolve().parent.parent
LOANS = ROOT / "sample_data" / "loans.csv"
OUTCOME_METRICS = [m for m in REGISTRY if needs_outcome(m)]
SCORE_OUTCOME = ["auc", "auc_error_bound", "brier"]


def _frame(n: int = 4000, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sex = rng.choice(["F", "M"], n, p=[0.4, 0.6])
    race = rng.choice(["a", "b", "c"], n, p=[0.6, 0.3, 0.1])
    score = np.clip(rng.normal(np.where(sex == "F", 0.45, 0.55), 0.2), 0, 1).round(4)
    return pd.DataFrame({
        "sex": sex, "race": race,
        "decision": np.where(rng.random(n) < np.where(sex == "F", 0.3, 0.5), "yes", "no"),
        "score": score, "w": rng.choice([0.5, 1.0, 2.0], n)})


SPEC = dict(predictions=["decision"], scores=["score"], threshold=0.5,
            sensitive=["sex", "race"], n_bootstrap=200)


@pytest.fixture(scope="module")
def df():
    return _frame()


@pytest.fixture(scope="module")
def result(df):
    return audit(df, AuditSpec(**SPEC))


def _fairlearn(df, y_pred, by, weights=None):
    dummy = np.zeros(len(df))  # fairlearn's selection rate never reads y_true
    kw = {"sample_params": {"selection_rate": {"sample_weight": weights}}} \
        if weights is not None else {}
    mf = MetricFrame(metrics={"selection_rate": selection_rate}, y_true=dummy, y_pred=y_pred,
                     sensitive_features=df[by], **kw)
    dpd = demographic_parity_difference(dummy, y_pred, sensitive_features=df[by],
                                        sample_weight=weights)
    dpr = demographic_parity_ratio(dummy, y_pred, sensitive_features=df[by],
                                   sample_weight=weights)
    return mf.by_group["selection_rate"], dpd, dpr


# --------------------------------------------------------------------------
# numbers
# --------------------------------------------------------------------------
@pytest.mark.parametrize("weighted", [False, True])
def test_selection_rates_and_demographic_parity_equal_fairlearn(df, weighted):
    spec = AuditSpec(**SPEC, weight="w" if weighted else None)
    r = audit(df, spec)
    w = df["w"].to_numpy() if weighted else None
    preds = {"decision": (df["decision"] == "yes").astype(int).to_numpy(),
             "score": (df["score"] >= 0.5).astype(int).to_numpy()}
    for model, y_pred in preds.items():
        for attr in ("sex", "race"):
            rates, dpd, dpr = _fairlearn(df, y_pred, attr, w)
            g = r.group_metrics
            g = g[(g["model"] == model) & (g["attribute"] == attr)].set_index("group")
            for grp, v in rates.items():
                assert g.loc[grp, "selection_rate"] == pytest.approx(v, rel=1e-12)
            s = r.summary.set_index(["model", "attribute"]).loc[(model, attr)]
            assert s["demographic_parity_difference"] == pytest.approx(dpd, rel=1e-12)
            assert s["demographic_parity_ratio"] == pytest.approx(dpr, rel=1e-12)
            assert math.isnan(s["equalized_odds_difference"])
            assert math.isnan(s["equal_opportunity_ratio"])


def test_intervals_tests_and_verdicts_of_the_selection_rate(df, result):
    g = result.group_metrics
    f = g[(g["model"] == "decision") & (g["attribute"] == "sex")].set_index("group")
    z = stats.norm.ppf(0.975)
    for grp in ("F", "M"):
        k = int((df.loc[df["sex"] == grp, "decision"] == "yes").sum())
        n = int((df["sex"] == grp).sum())
        p = k / n  # Wilson score interval, by its formula
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        assert f.loc[grp, "selection_rate_ci_low"] == pytest.approx(centre - half, rel=1e-9)
        assert f.loc[grp, "selection_rate_ci_high"] == pytest.approx(centre + half, rel=1e-9)
    d = result.disparities
    assert set(d["metric"]) == {"selection_rate"}  # nothing else is compared
    row = d[(d["model"] == "decision") & (d["attribute"] == "sex")].iloc[0]
    assert (row["group"], row["reference"]) == ("F", "M")  # M is the larger group
    x = [int((df.loc[df["sex"] == s, "decision"] == "yes").sum()) for s in ("F", "M")]
    n = [int((df["sex"] == s).sum()) for s in ("F", "M")]
    pooled = sum(x) / sum(n)  # the pooled two-proportion z-test, by hand
    zstat = (x[0] / n[0] - x[1] / n[1]) / math.sqrt(pooled * (1 - pooled) * (1 / n[0] + 1 / n[1]))
    assert row["p_value"] == pytest.approx(2 * stats.norm.sf(abs(zstat)), rel=1e-6)
    assert row["ratio"] == pytest.approx((x[0] / n[0]) / (x[1] / n[1]), rel=1e-12)
    assert row["verdict"] == "fail" and row["significant"]
    assert not np.isnan(row["ratio_ci_low"]) and row["ratio_ci_low"] < row["ratio"]


def test_no_outcome_metric_has_a_number_anywhere_in_the_tables(result):
    g = result.groups
    for m in OUTCOME_METRICS + SCORE_OUTCOME:
        assert g[m].isna().all(), m
        for s in ("_ci_low", "_ci_high"):
            if m + s in g:
                assert g[m + s].isna().all(), m + s
    sc = result.scores
    assert sc["auc"][["auc", "brier", "positives", "negatives"]].isna().all().all()
    assert len(sc["calibration"]) == 0
    summ = result.summary
    for c in summ.columns:
        if c.startswith(("equalized_odds", "average_odds", "equal_opportunity",
                         "true_positive", "false_positive")):
            assert summ[c].isna().all(), c
    lt = result.long
    out = lt[lt["metric"].isin(OUTCOME_METRICS)]
    assert out["value"].isna().all() and (out["undefined_reason"] == NO_OUTCOME).all()


def test_score_means_and_the_share_above_the_threshold(df, result):
    m = result.scores["means"]
    m = m[(m["model"] == "score") & (m["attribute"] == "sex")].set_index("group")
    z = stats.norm.ppf(0.975)
    for grp, s in df.groupby("sex")["score"]:
        assert m.loc[grp, "mean_score"] == pytest.approx(s.mean(), rel=1e-12)
        se = s.std(ddof=1) / math.sqrt(len(s))
        assert m.loc[grp, "mean_ci_low"] == pytest.approx(s.mean() - z * se, rel=1e-9)
        assert m.loc[grp, "mean_ci_high"] == pytest.approx(s.mean() + z * se, rel=1e-9)
        assert m.loc[grp, "share_above"] == pytest.approx((s >= 0.5).mean(), rel=1e-12)
    dist = result.scores["distribution"]
    dist = dist[(dist["model"] == "score") & (dist["attribute"] == "sex")]
    counts, edges = np.histogram(df.loc[df["sex"] == "F", "score"], bins=20,
                                 range=(df["score"].min(), df["score"].max()))
    got = dist[dist["group"] == "F"].sort_values("bin")
    np.testing.assert_allclose(got["bin_low"], edges[:-1], rtol=1e-12)
    np.testing.assert_array_equal(got["weight"].to_numpy(), counts)


def test_weighted_mean_score_is_the_weighted_mean(df):
    r = audit(df, AuditSpec(**SPEC, weight="w"))
    m = r.scores["means"]
    m = m[(m["model"] == "score") & (m["attribute"] == "race")].set_index("group")
    for grp, d in df.groupby("race"):
        assert m.loc[grp, "mean_score"] == pytest.approx(np.average(d["score"], weights=d["w"]),
                                                         rel=1e-12)


@pytest.mark.parametrize("decision, loser", [("benefit", "F"), ("harm", "M")])
def test_findings_say_who_is_disadvantaged(df, decision, loser):
    r = audit(df, AuditSpec(**{**SPEC, "predictions": ["decision"], "scores": []},
                            positive_decision=decision))
    fails = [f for f in r.findings if f["kind"] == "fail" and f["attribute"] == "sex"]
    assert fails and fails[0]["metric"] == "selection_rate"
    text = fails[0]["text"]
    assert "0." in text and "times as often as" in text
    assert f"disadvantages people with sex = {loser!r}" in text
    assert any(f["kind"] == "no_outcome" and NO_OUTCOME in f["text"] for f in r.findings)
    names = [REGISTRY[m].label.lower() for m in OUTCOME_METRICS]
    for f in r.findings:
        if f["kind"] != "no_outcome":
            assert not any(n in f["text"].lower() for n in names), f["text"]


def test_bad_decisions_without_a_label_get_one_clear_message(df):
    three = df.assign(decision=np.where(df.index % 3 == 0, "maybe", df["decision"]))
    with pytest.raises(InputError) as e:
        audit(three, AuditSpec(predictions=["decision"], sensitive=["sex"], n_bootstrap=0))
    assert "--prediction-positive" in e.value.message and "decision" in e.value.message
    ok = audit(three, AuditSpec(predictions=["decision"], sensitive=["sex"], n_bootstrap=0,
                                prediction_positive={"decision": ["yes", "maybe"]}))
    want = three["decision"].isin(["yes", "maybe"]).groupby(three["sex"]).mean()
    g = ok.group_metrics.set_index("group")
    assert g.loc["F", "selection_rate"] == pytest.approx(want["F"], rel=1e-12)
    assert AuditSpec(label="  ", predictions=["d"], sensitive=["s"]).label is None


# --------------------------------------------------------------------------
# outputs
# --------------------------------------------------------------------------
def test_json_states_every_unavailable_metric(result):
    d = json.loads(result.to_json())
    assert d["spec"]["label"] is None
    assert set(d["unavailable"]) >= set(OUTCOME_METRICS) | set(SCORE_OUTCOME) | {
        "equalized_odds", "equal_opportunity", "calibration"}
    assert set(d["unavailable"].values()) == {NO_OUTCOME}
    for rec in d["groups"] + d["overall"]:
        assert not {"tp", "fn", "tn", "fp"} & set(rec)
        assert rec["selected"] == pytest.approx(rec["selection_rate"] * rec["n"])
        for m in OUTCOME_METRICS:
            assert rec[m] is None and rec["undefined"][m] == NO_OUTCOME
            assert rec.get(f"{m}_ci_low") is None and rec.get(f"{m}_ci_high") is None
        for m in SCORE_OUTCOME:
            assert rec.get(m) is None
    assert {rec["metric"] for rec in d["disparities"]} == {"selection_rate"}
    for rec in d["summary"]:
        assert rec["equalized_odds_difference"] is None
        assert rec["demographic_parity_ratio"] is not None
    assert d["score_distributions"] and all(r["mean_score"] is not None
                                            for r in d["score_distributions"])


def test_csv_and_xlsx_leave_outcome_cells_empty_and_say_why(result):
    csv = pd.read_csv(io.BytesIO(to_csv_bytes(tables(result)["groups"])), encoding="utf-8-sig")
    assert not {"tp", "fn", "tn", "fp"} & set(csv.columns) and "selected" in csv.columns
    for m in OUTCOME_METRICS + SCORE_OUTCOME:
        assert csv[m].isna().all(), m
    assert csv["selection_rate"].notna().all()
    book = pd.read_excel(io.BytesIO(to_xlsx_bytes(tables(result), export_notes(result))),
                         sheet_name=None)
    groups = book["groups"]
    for m in OUTCOME_METRICS + SCORE_OUTCOME:
        assert groups[m].isna().all(), m
    summ = book["summary"]
    assert summ["equalized_odds_difference"].isna().all()
    assert summ["demographic_parity_difference"].notna().all()
    about = " ".join(book["About"]["about"].astype(str))
    assert NO_OUTCOME in about and "tpr" in about


def _number(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None  # a category (a group's name)


def _drawn_points(trace) -> int:
    """Points of a trace that are drawn: both coordinates present, numbers
    finite, and at least one a number."""
    if getattr(trace, "z", None) is not None:
        return int(np.isfinite(np.asarray(trace.z, dtype=float)).sum())
    xs = list(trace.x) if trace.x is not None else []
    ys = list(trace.y) if trace.y is not None else []
    n = 0
    for x, y in zip(xs, ys):
        nx, ny = _number(x), _number(y)
        nums = [v for v in (nx, ny) if v is not None]
        n += bool(nums) and all(math.isfinite(v) for v in nums)
    return n


def test_report_has_the_sentence_and_no_outcome_column_or_empty_chart(result, monkeypatch):
    from html.parser import HTMLParser

    from fairness_core import report

    figures = []
    original = report._Figures.__call__

    def keep(self, fig):
        figures.append(fig)
        return original(self, fig)

    monkeypatch.setattr(report._Figures, "__call__", keep)
    doc = report.html_report(result)

    class Cells(HTMLParser):
        def __init__(self):
            super().__init__()
            self.headers, self._in = [], False

        def handle_starttag(self, tag, attrs):
            self._in = tag == "th"

        def handle_endtag(self, tag):
            self._in = False

        def handle_data(self, data):
            if self._in:
                self.headers.append(data.strip())

    p = Cells()
    p.feed(doc)
    shorts = {REGISTRY[m].short for m in OUTCOME_METRICS} | set(OUTCOME_METRICS)
    assert not shorts & set(p.headers), shorts & set(p.headers)
    assert not {"tp", "fn", "tn", "fp", "EO difference"} & set(p.headers)
    assert "selected" in p.headers
    assert "No true outcome was given" in doc and NO_OUTCOME in doc
    assert figures
    for fig in figures:
        title = (fig.layout.title.text or "").lower()
        assert not any(w in title for w in ("roc", "calibration", "true positive",
                                            "false negative", "accuracy")), title
        assert any(_drawn_points(t) for t in fig.data), title  # no empty chart


def test_terminal_summary_shows_no_outcome_metric(result):
    from fairness_core.cli import render_summary

    text = render_summary(result)
    assert "no true outcome" in text and "equalized odds difference" not in text
    for m in OUTCOME_METRICS:
        assert f" {REGISTRY[m].short} " not in text


# --------------------------------------------------------------------------
# the command line, configurations, count tables and engines
# --------------------------------------------------------------------------
def _cli_json(args, tmp_path, name):
    out = tmp_path / f"{name}.json"
    rc = main([*args, "--json", str(out), "--bootstrap", "0"])
    return rc, json.loads(out.read_text()) if out.exists() else None


def _same_numbers(a: dict, b: dict) -> None:
    for key in ("groups", "disparities", "summary"):
        fa, fb = pd.DataFrame(a[key]), pd.DataFrame(b[key])
        num = [c for c in fa.columns if pd.api.types.is_numeric_dtype(fa[c])]
        pd.testing.assert_frame_equal(fa[num], fb[num], rtol=1e-12, check_dtype=False)


def test_cli_without_label_says_so_in_one_line(tmp_path, capsys):
    args = [str(LOANS), "--prediction", "model_a_approved", "--score", "model_b_score",
            "--sensitive", "sex", "--sensitive", "race"]
    rc, d = _cli_json(args, tmp_path, "a")
    cap = capsys.readouterr()
    assert rc == 0
    lines = [ln for ln in cap.err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "no --label" in lines[0] and "decisions alone" in lines[0]
    loans = pd.read_csv(LOANS)
    want = (loans["model_a_approved"] == "yes").groupby(loans["sex"].fillna(MISSING_GROUP)
                                                        ).mean()
    got = {r["group"]: r["selection_rate"] for r in d["groups"]
           if r["model"] == "model_a_approved" and r["attribute"] == "sex"}
    assert got == pytest.approx(want.to_dict(), rel=1e-12)
    assert "selected" in cap.out and "TPR" not in cap.out
    rc, _ = _cli_json([*args, "--quiet"], tmp_path, "b")
    assert rc == 0 and "no --label" not in capsys.readouterr().err


def test_saved_configuration_round_trips_the_label_free_audit(tmp_path, capsys):
    cfg = tmp_path / "cfg.json"
    rc, first = _cli_json([str(LOANS), "--prediction", "model_a_approved", "--sensitive", "sex",
                           "--save-config", str(cfg)], tmp_path, "first")
    assert rc == 0 and json.loads(cfg.read_text())["spec"]["label"] is None
    rc, again = _cli_json([str(LOANS), "--config", str(cfg)], tmp_path, "again")
    assert rc == 0 and again["spec"]["label"] is None
    assert "no --label" in capsys.readouterr().err
    _same_numbers(first, again)


def test_count_table_round_trip_without_a_label(tmp_path, capsys):
    counts = tmp_path / "counts.csv"
    base = ["--prediction", "model_a_approved", "--score", "model_b_score", "--threshold",
            "0.5", "--sensitive", "sex", "--sensitive", "race", "--intersectional"]
    rc, rows = _cli_json([str(LOANS), *base, "--export-counts", str(counts)], tmp_path, "rows")
    assert rc == 0
    err = capsys.readouterr().err
    table = pd.read_csv(counts, encoding="utf-8-sig")
    assert list(table.columns) == ["sex", "race", "model_a_approved", "model_b_score", "n"]
    assert table["n"].sum() == len(pd.read_csv(LOANS))
    assert "--label" not in err.split("Audit it again with:")[1]
    rc, again = _cli_json([str(counts), "--counts", "n", "--positive", "yes", *base], tmp_path,
                          "again")
    assert rc == 0
    _same_numbers(rows, again)
    assert [r["mean_score"] for r in rows["score_distributions"]] == pytest.approx(
        [r["mean_score"] for r in again["score_distributions"]], rel=1e-9)


def test_duckdb_engine_without_a_label_equals_memory(df):
    ibis = pytest.importorskip("ibis", reason="the engines extra is part of the test set-up")
    from fairness_core.engine import engine_records, prepare_records

    spec = AuditSpec(**SPEC, weight="w")
    data = df.copy()
    data.loc[data.index % 17 == 0, "race"] = None
    mem = prepare(data, spec)
    records, meta = engine_records(ibis.memtable(data), spec)
    assert "y" not in records.columns and records["__rows"].sum() == len(data)
    eng = prepare_records(records, meta, spec)
    pd.testing.assert_frame_equal(count_table(mem), count_table(eng), check_dtype=False,
                                  rtol=1e-12)
    a, b = run_audit(mem), run_audit(eng)
    pd.testing.assert_frame_equal(a.disparities, b.disparities, rtol=1e-9)
    pd.testing.assert_frame_equal(a.scores["means"], b.scores["means"], rtol=1e-9)
    assert a.to_dict()["findings"] == b.to_dict()["findings"]


# --------------------------------------------------------------------------
# the dashboard
# --------------------------------------------------------------------------
def test_dashboard_without_a_true_outcome_renders_every_page():
    sys.path[:0] = [p for p in (str(ROOT / "tests"),) if p not in sys.path]
    from test_app import assert_clean, exc_text, page, run_default, shown_table

    at = run_default()
    at.selectbox(key="label").set_value("(no true outcome)").run()
    assert not at.exception, exc_text(at)
    c = at.session_state["ctx"]
    assert not c.errors and c.result.spec.label is None
    for name in ("overview", "groups", "data", "thresholds", "models", "export", "help"):
        page(at, name)
        assert_clean(at)
        if name == "thresholds":
            keys = [ch.proto.id.rsplit("-", 1)[-1] for ch in at.get("plotly_chart")]
            assert "score_distribution" in keys and "metric_threshold" in keys
            assert "roc" not in keys and "calibration" not in keys
            spec = [json.loads(ch.proto.spec) for ch in at.get("plotly_chart")]
            assert any("Selection rate" in json.dumps(s["layout"]["title"]) for s in spec)
    page(at, "groups")
    assert any(NO_OUTCOME in i.value for i in at.info)  # the confusion matrix says why
    at.selectbox(key="attribute_pick").set_value("race").run()
    assert_clean(at)
    table = shown_table(at).set_index("Group")
    model = c.result.spec.models[0] if "model_pick" not in [s.key for s in at.selectbox] \
        else at.selectbox(key="model_pick").value
    loans = pd.read_csv(LOANS)
    want = (loans[model] == "yes").groupby(loans["race"].fillna(MISSING_GROUP)).mean()
    assert sorted(table.index) == sorted(want.index)
    for g, v in want.items():
        assert table.loc[g, "Selection rate"] == f"{100 * v:.1f}%", g
    assert not {"TP", "FN"} & set(table.columns) and "Selected" in table.columns
