"""The dashboard's Export page: report, tables, chart images, configuration.

AppTest cannot read a download's bytes, so the contents are built by plain
functions (views.export_page, fairness_core.exports/charts/report) that are
tested directly; the page itself is checked for its controls and messages.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest
from streamlit.util import calc_hash

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "app"))

from fairness_core import AuditSpec, audit, charts  # noqa: E402
from fairness_core.exports import config_json  # noqa: E402
from views.export_page import CHARTS, chart_figure, report_files  # noqa: E402

LOANS = ROOT / "sample_data" / "loans.csv"


def _app():
    at = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=120).run()
    # the pages are functions: ask for the one st.navigation registered at /export
    assert calc_hash("export") in at._registered_pages
    at._page_hash = calc_hash("export")
    at.run()
    assert "Export" in [t.value for t in at.main.title]
    assert not at.exception
    return at


@pytest.fixture(scope="module")
def result():
    return audit(LOANS, AuditSpec(label="repaid", positive="yes",
                                  predictions=["model_a_approved"], scores=["model_b_score"],
                                  sensitive=["sex", "race"]))


def test_export_page_offers_every_download():
    at = _app()
    labels = [b.proto.label for b in at.get("download_button")]
    for want in ("Group metrics (CSV)", "Disparities (CSV)", "All tables (XLSX)",
                 "Full audit (JSON)", "Save the configuration (JSON)"):
        assert want in labels
    at.text_input(key="report_author").set_value("Audit team").run()
    at.button(key="make_report").click().run()
    assert not at.exception
    labels = [b.proto.label for b in at.get("download_button")]
    assert "Download the HTML report" in labels and "Download the PDF report" in labels
    at.button(key="prep_svg").click().run()
    assert "Download SVG" in [b.proto.label for b in at.get("download_button")]
    # changing the text invalidates the made report
    at.text_input(key="report_author").set_value("Someone else").run()
    assert "Download the HTML report" not in [b.proto.label for b in at.get("download_button")]


def test_report_files_hold_the_typed_text_and_suppress_small_groups(result):
    files = report_files(result, "Loan review <2026>", "Risk & audit", "Scope text", 30,
                         pdf=False)
    doc, name = files["html"]
    text = doc.decode("utf-8")
    assert name.startswith("fairness-audit-report_") and name.endswith(".html")
    assert "Loan review &lt;2026&gt;" in text and "Risk &amp; audit" in text
    # Native American has 25 rows: below 30, its metrics are suppressed and the report says so
    assert "fewer than 30 rows are suppressed" in text
    assert "suppressed" in text


@pytest.mark.parametrize("kind", list(CHARTS))
def test_every_chart_exports(result, kind):
    model = "model_b_score" if kind in ("roc", "calibration") else "model_a_approved"
    fig = chart_figure(result, kind, model, "race", "selection_rate")
    assert fig is not None
    png = charts.figure_bytes(fig, "png")
    assert png.startswith(b"\x89PNG")
    assert charts.figure_bytes(fig, "svg").lstrip().startswith((b"<svg", b"<?xml"))
    assert charts.figure_bytes(fig, "pdf").startswith(b"%PDF")
    html = charts.figure_bytes(fig, "html")
    assert b"<html" in html and b"plotly" in html
    name = charts.file_name(kind, "selection_rate", "race", model, ext="png")
    assert name.startswith(f"{kind}_selection_rate_race_{model}_") and name.endswith(".png")
    if kind in ("roc", "calibration"):  # needs a score model
        assert chart_figure(result, kind, "model_a_approved", "race", "tpr") is None


def test_without_a_browser_images_say_so_and_html_still_works(result, monkeypatch):
    import shutil
    monkeypatch.setattr(shutil, "which", lambda name: None)
    fig = chart_figure(result, "group", "model_a_approved", "sex", "tpr")
    with pytest.raises(charts.ExportUnavailable, match="chromium"):
        charts.figure_bytes(fig, "png")
    assert b"plotly" in charts.figure_bytes(fig, "html")


def test_loading_a_configuration_applies_it_and_warns_about_other_data():
    at = _app()
    spec = AuditSpec(label="repaid", positive="yes", predictions=["model_b_approved"],
                     sensitive=["sex", "age_group"], tolerance=0.9,
                     reference={"sex": "Female"}, seed=7)
    cfg = config_json(spec, "0" * 64, "other.csv").encode()
    at.file_uploader(key="config_upload").set_value(("c.json", cfg, "application/json")).run()
    assert not at.exception
    c = at.session_state["ctx"]
    assert c.spec.predictions == ("model_b_approved",)
    assert c.spec.sensitive == ("sex", "age_group")
    assert c.spec.tolerance == pytest.approx(0.9)
    assert c.spec.reference["sex"] == "Female" and c.spec.seed == 7
    assert any("different data" in w.value for w in at.warning)


def test_a_configuration_brings_its_positive_decision_and_decision_values():
    at = _app()
    spec = AuditSpec(label="repaid", positive="yes", predictions=["model_a_approved"],
                     prediction_positive={"model_a_approved": ["no"]},
                     positive_decision="harm", sensitive=["sex"])
    cfg = config_json(spec).encode()
    at.file_uploader(key="config_upload").set_value(("c.json", cfg, "application/json")).run()
    assert not at.exception
    c = at.session_state["ctx"]
    assert c.spec.positive_decision == "harm"
    assert c.spec.prediction_positive == {"model_a_approved": ["no"]}
    assert at.radio(key="positive_decision").value == "harm"
    # 'no' as the positive decision: the selection rate is the share refused
    g = c.result.group_metrics.set_index("group")
    df = pd.read_csv(ROOT / "sample_data" / "loans.csv")
    want = (df["model_a_approved"] == "no").groupby(df["sex"].fillna("(missing)")).mean()
    for sex, v in want.items():
        assert g.loc[sex, "selection_rate"] == pytest.approx(v)


def test_a_bad_configuration_file_shows_a_message():
    at = _app()
    at.file_uploader(key="config_upload").set_value(("c.json", b"{not json",
                                                     "application/json")).run()
    assert not at.exception
    assert any("not valid JSON" in e.value for e in at.error)
    assert at.session_state["ctx"].result is not None  # the audit is untouched
