"""The dashboard on a multiclass audit (the bundled triage sample): every
page renders, the class picker, confusion heatmaps from counts, the verdict
matrix, the documented gaps, the export, and binary-only pages not offered.

Numbers are checked against pandas and scikit-learn counts of the sample."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sklearn.metrics as skm
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
APP_DIR = ROOT / "app"
for _p in (str(ROOT), str(APP_DIR)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import state  # noqa: E402

from test_app import (assert_clean, charts, csv_bytes, exc_text, page, pct,  # noqa: E402
                      static_table, upload)

TRIAGE = ROOT / "sample_data" / "triage.csv"
SAMPLE = next(k for k in state.SAMPLES if "triage" in k)
CLASSES = ["1 immediate", "2 urgent", "3 standard", "4 non-urgent"]


def triage() -> pd.DataFrame:
    return pd.read_csv(TRIAGE)


@pytest.fixture(scope="module")
def app() -> AppTest:
    at = AppTest.from_file(str(APP_DIR / "main.py"), default_timeout=120).run()
    at.selectbox(key="source").set_value(SAMPLE).run()
    assert not at.exception, exc_text(at)
    return at


def _ctx(at):
    return at.session_state["ctx"]


def _pages(at) -> set:
    """The url paths of the registered pages."""
    from streamlit.util import calc_hash

    known = set(at._registered_pages)
    return {p for p in ("overview", "groups", "classes", "data", "export", "help",
                        "thresholds", "models") if calc_hash(p) in known}


def test_triage_sample_is_guessed_and_audited_as_several_classes(app):
    c = _ctx(app)
    assert not c.errors, c.errors
    assert c.spec.task == "multiclass" and c.spec.label == "true_level"
    assert list(c.spec.predictions) == ["model_a_level", "model_b_level"]
    assert c.result.task == "multiclass" and [str(x) for x in c.result.classes] == CLASSES
    assert app.radio(key="task").value == "multiclass"
    # no control of yes/no decisions is shown
    keys = {w.key for kind in ("selectbox", "multiselect", "radio", "slider")
            for w in getattr(app.sidebar, kind)}
    assert not keys & {"positive", "positive_set", "positive_decision", "scores"}
    # pages: the binary-only ones are not offered, the classes page is
    pages = _pages(app)
    assert {"overview", "groups", "classes", "data", "export", "help"} <= pages
    assert not pages & {"thresholds", "models"}


def test_overview_key_numbers_worst_class_verdicts_and_findings(app):
    at = page(app, "overview")
    assert_clean(at)
    df = triage()
    metrics = {m.label: m.value for m in at.main.metric}
    assert metrics["Classes"] == "4"
    assert metrics["Accuracy"] == pct((df["true_level"] == df["model_a_level"]).mean())
    assert metrics["Balanced accuracy (macro TPR)"] == pct(
        skm.balanced_accuracy_score(df["true_level"], df["model_a_level"]))
    worst = static_table(at, 0)
    assert list(worst["Attribute"]) == ["sex", "race", "age_group"]
    # the verdict matrix: one row per class, the urgent TPR of race fails
    vm = static_table(at, 1)
    assert list(vm["Class"]) == CLASSES
    text = " ".join(m.value for m in at.main.markdown)
    assert "true class is \\'2 urgent\\'" in text and "race \\= \\'Black\\'" in text
    box = at.main.error[0].value
    assert "Most severe finding" in box


def test_overview_verdicts_per_class_follow_the_attribute_picker(app):
    at = page(app, "overview")
    at.selectbox(key="attribute_pick").set_value("race").run()
    vm = static_table(at, 1)
    row = vm[vm["Class"] == "2 urgent"].iloc[0]
    assert row["True positive rate (TPR)"].startswith("❌ fail")


def test_group_metrics_of_one_class_equal_pandas(app):
    at = page(app, "groups")
    assert_clean(at)
    at.selectbox(key="attribute_pick").set_value("race").run()
    at.selectbox(key="class_pick").set_value("2 urgent").run()
    at.selectbox(key="class_metric_pick").set_value("tpr").run()
    assert_clean(at)
    t = at.main.dataframe[0].value.set_index("Group")
    df = triage()
    urgent = df[df["true_level"] == "2 urgent"]
    want = (urgent["model_a_level"] == "2 urgent").groupby(urgent["race"]).mean()
    col = next(c for c in t.columns if c.startswith("True positive rate"))
    for grp, v in want.items():
        assert str(t.loc[grp, col]).startswith(f"{100 * v:.1f}"), (grp, t.loc[grp, col], v)
    assert t.loc["Black", "Verdict"].startswith("❌")
    # accuracy per group (every class) equals scikit-learn
    s = at.main.dataframe[1].value.set_index("Group")
    for grp, part in df.groupby("race"):
        acc = skm.accuracy_score(part["true_level"], part["model_a_level"])
        assert str(s.loc[grp, "Accuracy"]).startswith(f"{100 * acc:.1f}")
    assert len(charts(at)) == 2


def test_classes_page_heatmaps_are_the_confusion_counts(app):
    at = page(app, "classes")
    assert_clean(at)
    at.selectbox(key="attribute_pick").set_value("sex").run()
    at.selectbox(key="class_pick").set_value("1 immediate").run()
    figs = charts(at)
    verdicts, conf = figs[0], figs[1]
    assert "1 immediate" in verdicts["layout"]["title"]["text"]
    heat = [d for d in conf["data"] if d["type"] == "heatmap"]
    assert len(heat) == 2  # Female, Male
    df = triage()
    for trace, grp in zip(heat, ["Female", "Male"]):
        part = df[df["sex"] == grp]
        cm = skm.confusion_matrix(part["true_level"], part["model_a_level"], labels=CLASSES)
        z = np.array(trace["z"], dtype=float)
        np.testing.assert_allclose(z, cm / cm.sum(axis=1, keepdims=True), atol=1e-12)
        counts = [[int(cell.split("(")[1].rstrip(")").replace(",", "")) for cell in row]
                  for row in trace["text"]]
        assert (np.array(counts) == cm).all()
    # the injected gap: women truly 'immediate' are assigned it less often
    f = np.array(heat[0]["z"])[0, 0]
    m = np.array(heat[1]["z"])[0, 0]
    assert f < 0.8 * m


def test_data_page_class_shares_per_group(app):
    at = page(app, "data")
    assert_clean(at)
    at.selectbox(key="attribute_pick").set_value("age_group").run()
    t = at.main.dataframe[0].value.set_index("Group")
    df = triage()
    share = pd.crosstab(df["age_group"], df["true_level"], normalize="index")
    for grp in share.index:
        assert t.loc[grp, "Rows"] == int((df["age_group"] == grp).sum())
        assert t.loc[grp, "True 2 urgent"] == pct(share.loc[grp, "2 urgent"])


def test_export_page_json_and_tables(app):
    at = page(app, "export")
    assert_clean(at)
    buttons = {b.label for b in at.get("download_button")}
    assert {"Full audit (JSON)", "All tables (XLSX)", "Group metrics (CSV)",
            "Download the chart (HTML)"} <= buttons
    at.button(key="prep_mc_png").click().run()
    assert_clean(at)
    assert "Download PNG" in {b.label for b in at.get("download_button")}
    r = _ctx(at).result
    d = json.loads(r.to_json())
    assert d["classes"] == CLASSES and d["task"] == "multiclass"
    at.button(key="make_report").click().run()
    assert_clean(at)
    files = at.session_state["report"][1]
    html = files["html"][0].decode("utf-8")
    assert "Verdicts per class" in html and "Confusion matrices per group" in html


def test_help_page_explains_several_classes(app):
    at = page(app, "help")
    assert_clean(at)
    text = " ".join(m.value for m in at.main.markdown)
    assert "demographic parity" in text.lower() and "worst class" in text.lower()
    assert "one against the rest" in text


def test_a_three_valued_upload_is_several_classes():
    df = pd.DataFrame({"outcome": ["a", "b", "c", "b"] * 30, "pred": ["a", "b", "b", "c"] * 30,
                       "sex": ["F", "M"] * 60})
    at = AppTest.from_file(str(APP_DIR / "main.py"), default_timeout=120).run()
    upload(at, "three.csv", csv_bytes(df))
    at.selectbox(key="label").set_value("outcome").run()
    at.multiselect(key="predictions").set_value(["pred"]).run()
    at.multiselect(key="sensitive").set_value(["sex"]).run()
    assert_clean(at)
    c = _ctx(at)
    assert c.spec.task == "multiclass", c.errors
    g = c.result.group_metrics
    got = g[(g["class"] == "b") & (g["group"] == "F")]["selection_rate"].iloc[0]
    assert got == pytest.approx((df.loc[df["sex"] == "F", "pred"] == "b").mean())


def test_documented_gaps_are_found_in_the_dashboard(app):
    """The three gaps of sample_data/README.md, as the dashboard's audit reports them."""
    r = _ctx(app).result
    fails = [f for f in r.findings if f["kind"] == "fail" and f["significant"]
             and f["model"] == "model_a_level"]

    def found(cls, metric, attribute, group):
        return next((f for f in fails if str(f["class"]) == cls and f["metric"] == metric
                     and f["attribute"] == attribute and group in (f["group"], f["reference"])),
                    None)

    df = triage()
    f = found("2 urgent", "tpr", "race", "Black")
    urgent = df[df["true_level"] == "2 urgent"]
    rate = (urgent["model_a_level"] == "2 urgent").groupby(urgent["race"]).mean()
    assert f["disadvantaged"] == "Black"
    assert f["ratio"] == pytest.approx(rate["Black"] / rate["White"], abs=1e-12)
    assert found("1 immediate", "tpr", "sex", "Female")["disadvantaged"] == "Female"
    other = df[df["true_level"] != "2 urgent"]
    fpr = (other["model_a_level"] == "2 urgent").groupby(other["age_group"]).mean()
    f = found("2 urgent", "fpr", "age_group", "65+")
    assert f["disadvantaged"] == "65+"
    assert f["value"] == pytest.approx(fpr["65+"], abs=1e-12)
    assert "Pacific Islander" in " ".join(r.warnings)


def test_listed_source_is_audited_as_several_classes(tmp_path):
    import tomllib

    folder = tmp_path / "triage"
    folder.mkdir()
    triage().to_parquet(folder / "part-0.parquet")
    at = AppTest.from_file(str(APP_DIR / "main.py"), default_timeout=120)
    at.secrets["sources"] = tomllib.loads(f'[sources.triage]\npath = "{folder}"\n')["sources"]
    at.run()
    at.selectbox(key="source").set_value(state.SOURCE + "triage").run()
    assert_clean(at)
    c = _ctx(at)
    assert c.spec.task == "multiclass" and not c.errors, c.errors
    assert c.result.provenance["input"]["engine"] == "duckdb"
    df = triage()
    g = c.result.group_metrics
    row = g[(g["model"] == "model_a_level") & (g["class"] == "2 urgent")
            & (g["attribute"] == "race") & (g["group"] == "Black")].iloc[0]
    urgent = df[(df["true_level"] == "2 urgent") & (df["race"] == "Black")]
    assert row["tpr"] == pytest.approx((urgent["model_a_level"] == "2 urgent").mean(),
                                       abs=1e-12)


def test_a_configuration_brings_its_task_back():
    """Loading a saved configuration sets the task: a yes/no question on the
    triage levels ('1 immediate' or '2 urgent'), then several classes again."""
    from fairness_core import AuditSpec
    from fairness_core.exports import config_json

    at = AppTest.from_file(str(APP_DIR / "main.py"), default_timeout=120).run()
    at.selectbox(key="source").set_value(SAMPLE).run()
    at = page(at, "export")
    binary = AuditSpec(label="true_level", predictions=["model_a_level"], sensitive=["sex"],
                       positive=["1 immediate", "2 urgent"], task="binary")
    at.file_uploader(key="config_upload").set_value(
        ("c.json", config_json(binary).encode(), "application/json")).run()
    assert_clean(at)
    c = _ctx(at)
    assert c.spec.task == "binary" and c.result is not None, c.errors
    assert at.radio(key="task").value == "binary"
    df = triage()
    high = df["model_a_level"].isin(["1 immediate", "2 urgent"])
    g = c.result.group_metrics.set_index("group")
    for sex, v in high.groupby(df["sex"]).mean().items():
        assert g.loc[sex, "selection_rate"] == pytest.approx(v, abs=1e-12)
    several = AuditSpec(label="true_level", predictions=["model_b_level"], sensitive=["race"],
                        task="multiclass")
    at.file_uploader(key="config_upload").set_value(
        ("d.json", config_json(several).encode(), "application/json")).run()
    assert_clean(at)
    c = _ctx(at)
    assert c.spec.task == "multiclass" and list(c.spec.predictions) == ["model_b_level"]
    assert c.result.task == "multiclass"


def test_the_task_travels_in_the_url():
    """The task is one of the choices a shared link carries: the URL says it,
    and follows when the user audits the label as yes/no decisions instead
    (then the label's positive values are asked for)."""
    at = AppTest.from_file(str(APP_DIR / "main.py"), default_timeout=120).run()
    at.selectbox(key="source").set_value(SAMPLE).run()
    assert not at.exception, exc_text(at)

    def task_in_url():
        v = at.query_params.get("task")
        return v if isinstance(v, str) else (v or [None])[0]
    assert task_in_url() == "multiclass"
    at.radio(key="task").set_value("binary").run()
    assert not at.exception, exc_text(at)
    assert task_in_url() == "binary"
    assert "positive_set" in {w.key for w in at.sidebar.multiselect}
