"""The dashboard on a regression audit (the bundled credit-limit sample):
every page it offers renders, the binary-only pages are not offered, and
the documented gaps are on the pages; numbers checked against pandas and
scikit-learn."""
from __future__ import annotations

import json

import pandas as pd
import pytest
import sklearn.metrics as skm

from test_app import ROOT, assert_clean, charts, ctx, exc_text, new_app, page, static_table

SAMPLE = "Sample: synthetic credit limits, a numeric outcome (5,000 rows)"
DATA = ROOT / "sample_data" / "credit_limits.csv"


@pytest.fixture(scope="module")
def app():
    at = new_app().run()
    assert not at.exception, exc_text(at)
    at.selectbox(key="source").set_value(SAMPLE).run()
    assert not at.exception, exc_text(at)
    return at


def _registered(at) -> set:
    """The url paths of the pages registered by the last run."""
    from streamlit.util import calc_hash
    known = ("overview", "groups", "distributions", "data", "thresholds", "models",
             "export", "help")
    return {p for p in known if calc_hash(p) in at._registered_pages}


def test_sample_is_audited_as_regression_with_its_roles(app):
    c = ctx(app)
    r = c.result
    assert r.task == "regression"
    assert r.spec.label == "credit_limit"
    assert list(r.spec.predictions) == ["model_a_limit", "model_b_limit"]
    assert set(r.spec.sensitive) == {"sex", "age_group", "region"}
    assert app.radio(key="task").value == "regression"
    # the pages that only make sense for yes/no decisions are not offered
    pages = _registered(app)
    assert {"overview", "groups", "distributions", "export", "help"} <= pages
    assert not {"thresholds", "models", "data"} & pages


def test_overview_shows_the_gaps(app):
    page(app, "overview")
    assert_clean(app)
    text = " ".join(str(m.value) for m in app.main.markdown) + " ".join(
        str(e.value) for e in app.main.error)
    assert "under" in text and "Female" in text
    verdicts = static_table(app, 0)
    row = verdicts[verdicts["Attribute"] == "age_group"].iloc[0]
    assert row["Mean absolute error"].startswith("❌")
    assert [m.label for m in app.main.metric][:2] == ["Rows audited", "Mean error"]


def test_groups_page_numbers_equal_sklearn(app):
    page(app, "groups")
    assert_clean(app)
    app.selectbox(key="attribute_pick").set_value("age_group").run()
    app.selectbox(key="metric_pick").set_value("mae").run()
    assert not app.exception, exc_text(app)
    assert len(charts(app)) == 2  # the metric and the mean error, with intervals
    spec = charts(app)[0]
    assert any("error_x" in t for t in spec["data"])
    shown = app.main.dataframe[0].value.set_index("Group")
    df = pd.read_csv(DATA)
    old = df[df["age_group"] == "65+"]
    want = skm.mean_absolute_error(old["credit_limit"], old["model_a_limit"])
    assert shown.loc["65+", "Mean absolute error"] == f"{want:,.0f}"
    assert "fail" in shown.loc["65+", "Verdict"]


def test_distributions_page_draws_from_counts(app):
    page(app, "distributions")
    assert_clean(app)
    figs = charts(app)
    assert len(figs) == 2
    box = figs[0]["data"]
    assert all(t["type"] == "box" for t in box)
    # box statistics only: no rows on the page
    assert all("y" not in t or len(t["y"]) <= 1 for t in box)
    pva = figs[1]["data"]
    assert max(len(t["x"]) for t in pva) <= 20


def test_export_page_offers_every_file(app):
    page(app, "export")
    assert_clean(app)
    labels = [b.label for b in app.get("download_button")]
    assert "Full audit (JSON)" in labels and "All tables (XLSX)" in labels
    r = ctx(app).result
    d = json.loads(r.to_json())
    assert d["task"] == "regression" and d["bounded_group_loss"]
    assert app.selectbox(key="export_chart_regression").value == "mean_error"
    app.checkbox(key="report_pdf").uncheck().run()
    app.button(key="make_report").click().run()
    assert not app.exception, exc_text(app)
    labels = [b.label for b in app.get("download_button")]
    assert "Download the HTML report" in labels
    key, files = app.session_state["report"]
    html = files["html"][0].decode("utf-8")
    assert "Bounded group loss" in html and "under-predicts credit_limit" in html


def test_higher_is_a_harm_turns_the_finding(app):
    page(app, "overview")
    app.radio(key="positive_decision").set_value("harm").run()
    assert not app.exception, exc_text(app)
    r = ctx(app).result
    women = [f for f in r.findings if f["kind"] == "error_gap" and f["group"] == "Female"][0]
    assert women["disadvantaged"] == "Male"
    app.radio(key="positive_decision").set_value("benefit").run()


def test_help_page_explains_the_regression_metrics(app):
    page(app, "help")
    assert_clean(app)
    t = static_table(app, 0)
    assert list(t["Metric"]) == ["Mean true value", "Mean prediction", "Mean error",
                                 "Mean absolute error", "Root mean squared error", "R²"]
