"""The HTML and PDF audit report: its numbers are the engine's, it opens
offline, and nothing from the data can run in it."""
from __future__ import annotations

import logging
import math
import re
import warnings
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fairness_core import AuditSpec, audit
from fairness_core.report import html_report, pdf_from_html

ROOT = Path(__file__).resolve().parent.parent
LOANS = ROOT / "sample_data" / "loans.csv"
PAYLOADS = ['<script>window.__pwned=1</script>', '<img src=x onerror="window.__pwned=1">',
            '"><svg onload="window.__pwned=1">']


class _Tables(HTMLParser):
    """Collect every table of a document as rows of cell texts."""

    def __init__(self):
        super().__init__()
        self.tables, self._row, self._cell = [], None, None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[-1].append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _tables(doc: str) -> list[list[list[str]]]:
    p = _Tables()
    p.feed(doc)
    return p.tables


def _value(text: str) -> float:
    if text in ("undefined", ""):
        return float("nan")
    return float(text.replace(",", "").rstrip("%")) / (100 if text.endswith("%") else 1)


@pytest.fixture(scope="module")
def loans_result():
    return audit(LOANS, AuditSpec(label="repaid", positive="yes",
                                  predictions=["model_a_approved"], scores=["model_b_score"],
                                  sensitive=["sex", "race"], intersectional=True))


def test_appendix_numbers_equal_the_engine(loans_result):
    doc = html_report(loans_result, title="T", author="A", scope="S")
    tables = _tables(doc)
    header = ["model", "attribute", "group", "n", "tn", "fp", "fn", "tp"]
    appendix = next(t for t in tables if t[0][:8] == header)
    cols = appendix[0]
    got = pd.DataFrame(appendix[1:], columns=cols)
    want = loans_result.group_table()
    assert len(got) == len(want)
    for c in ("n", "tn", "fp", "fn", "tp"):
        assert [int(v.replace(",", "")) for v in got[c]] == [int(v) for v in want[c]]
    for m in ("selection_rate", "tpr", "fpr", "ppv", "balanced_accuracy", "f1"):
        g = np.array([_value(v) for v in got[m]])
        w = want[m].to_numpy(dtype=float)
        assert np.array_equal(np.isnan(g), np.isnan(w)), m  # undefined stays undefined
        ok = ~np.isnan(w)
        assert np.allclose(g[ok], w[ok], atol=5e-4), m  # printed with 3 decimals


def test_report_has_every_section_and_the_provenance(loans_result):
    doc = html_report(loans_result, title="Loan model review", author="Risk team",
                      scope="Model A and B, 2026 applications")
    for part in ("Loan model review", "Risk team", "Model A and B, 2026 applications",
                 "1. Summary", "2. Provenance", "3. Methodology", "4. Findings",
                 "5. Results by attribute", "6. Intersections",
                 "7. Thresholds and calibration", "8. Model comparison", "9. Limitations",
                 "Appendix A", "Appendix B", loans_result.provenance["input"]["sha256"],
                 "Bootstrap seed"):
        assert part in doc, part
    # plotly.js is embedded exactly once and nothing is fetched from the network
    assert doc.count("Plotly.newPlot") >= 10
    assert len(re.findall(r"plotly\.js v\d", doc)) == 1
    assert not re.search(r"""<(script|link|img)[^>]+(src|href)=["']?https?:""", doc)


def _hostile_result():
    rng = np.random.default_rng(3)
    n = 400
    df = pd.DataFrame({"y": rng.integers(0, 2, n), "p": rng.integers(0, 2, n),
                       "s": rng.random(n),
                       "g": np.array(PAYLOADS + ["plain"])[rng.integers(0, 4, n)]})
    df = df.rename(columns={"g": '<img src=x onerror="window.__pwned=1">'})
    return audit(df, AuditSpec(label="y", predictions=["p"], scores=["s"],
                               sensitive=['<img src=x onerror="window.__pwned=1">']))


def test_user_strings_are_escaped_in_the_html(tmp_path):
    res = _hostile_result()
    doc = html_report(res, title="<script>window.__pwned=1</script>",
                      author='<img src=x onerror="window.__pwned=1">', scope="</table>x")
    body = doc.split("<body>", 1)[1]
    # the only scripts are plotly's own; no hostile markup survives unescaped
    for p in PAYLOADS + ["</table>x"]:
        assert p not in body
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in body


@pytest.mark.browser
def test_nothing_from_the_data_runs_when_the_report_is_opened(tmp_path, browser):
    res = _hostile_result()
    path = tmp_path / "report.html"
    path.write_text(html_report(res, title="<script>window.__pwned=1</script>",
                                author='<img src=x onerror="window.__pwned=1">'),
                    encoding="utf-8")
    page = browser.new_page()
    outside = []
    page.on("request", lambda r: outside.append(r.url)
            if not r.url.startswith(("file:", "data:", "blob:")) else None)
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(path.as_uri())
    page.wait_for_function("() => document.querySelectorAll('svg.main-svg').length > 0")
    n_charts = page.evaluate("document.querySelectorAll('.js-plotly-plot').length")
    drawn = page.evaluate("Array.from(document.querySelectorAll('.js-plotly-plot'))"
                          ".filter(d => d.querySelector('svg.main-svg')).length")
    pwned = page.evaluate("() => window.__pwned")
    imgs = page.evaluate("document.querySelectorAll('img[src=\"x\"]').length")
    text = page.inner_text("body")
    page.close()
    assert n_charts >= 3 and drawn == n_charts  # offline: every chart draws
    assert pwned is None and imgs == 0 and dialogs == []
    assert outside == []
    assert "<script>window.__pwned=1</script>" in text  # shown as text


@pytest.mark.browser
def test_pdf_has_pages_and_vector_charts(loans_result):
    pdf = pdf_from_html(html_report(loans_result, title="T"))
    assert pdf.startswith(b"%PDF")
    pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf))
    assert pages >= 5
    # charts are drawn as vector paths, not pasted in as pictures
    assert pdf.count(b"/Subtype /Image") + pdf.count(b"/Subtype/Image") < pages


# --------------------------------------------------------------------------
# sections, level, tables from the long table
# --------------------------------------------------------------------------
def _headings(doc: str) -> list[str]:
    return re.findall(r'<h2 class="section">([^<]*)</h2>', doc)


def test_sections_are_numbered_without_gaps():
    one = audit(LOANS, AuditSpec(label="repaid", positive="yes",
                                 predictions=["model_a_approved"], sensitive=["sex"],
                                 n_bootstrap=0))
    assert _headings(html_report(one)) == [
        "1. Summary", "2. Provenance", "3. Methodology", "4. Findings",
        "5. Results by attribute", "6. Limitations",
        "Appendix A. Every group metric", "Appendix B. Every disparity"]
    scored = audit(LOANS, AuditSpec(label="repaid", positive="yes", scores=["model_b_score"],
                                    sensitive=["sex", "race"], intersectional=True,
                                    n_bootstrap=0))
    assert _headings(html_report(scored))[4:8] == [
        "5. Results by attribute", "6. Intersections", "7. Thresholds and calibration",
        "8. Limitations"]


def test_report_says_the_audits_confidence_level():
    res = audit(LOANS, AuditSpec(label="repaid", positive="yes",
                                 predictions=["model_a_approved", "model_b_approved"],
                                 sensitive=["sex", "race"], confidence=0.9, n_bootstrap=200))
    doc = html_report(res)
    text = re.sub(r"<script.*?</script>", "", doc, flags=re.DOTALL)
    assert "Headline summaries (fairlearn definitions; 90% intervals)" in text
    assert "Intervals (90%)" in text
    # every chart's subtitle: 2 attributes x 2 models x 2 bar charts, as many ratio
    # charts, and one model comparison per attribute
    assert doc.count("Error bars: 90% intervals.") == 8
    assert doc.count("Bars: 90% intervals of the ratio.") == 4
    assert doc.count("bars: 90% intervals;") == 2
    assert "95% intervals" not in doc and "95%" not in text


def test_group_tables_show_the_engine_values_and_intervals(loans_result):
    doc = html_report(loans_result)
    tables = [t for t in _tables(doc) if t[0][:3] == ["Group", "Rows", "Share"]]
    spec = loans_result.spec
    places = [(a, m) for a in ("sex", "race") for m in spec.models]
    assert len(tables) == len(places)
    g = loans_result.groups

    def pct(x):
        return f"{100 * x:.1f}%"

    for table, (attr, model) in zip(tables, places):
        want = g[(g["model"] == model) & (g["attribute"] == attr)]
        head = table[0]
        assert [r[0] for r in table[1:]] == list(want["group"])
        for row, (_, w) in zip(table[1:], want.iterrows()):
            assert row[1] == str(int(w["n"]))
            for metric, col in (("selection_rate", "selected"), ("tpr", "TPR"),
                                ("fpr", "FPR"), ("accuracy", "accuracy")):
                v, lo, hi = w[metric], w[f"{metric}_ci_low"], w[f"{metric}_ci_high"]
                assert row[head.index(col)] == f"{pct(v)} ({pct(lo)} to {pct(hi)})"


def test_long_table_agrees_with_the_wide_table(loans_result):
    from fairness_core.counts import OVERALL
    from fairness_core.metrics import REGISTRY

    wide, long = loans_result.groups, loans_result.long
    assert loans_result.long is long  # computed once
    assert list(long.columns) == ["model", "attribute", "group", "metric", "value", "ci_low",
                                  "ci_high", "n", "undefined_reason"]
    assert len(long) == len(wide) * len(REGISTRY)
    assert (long["attribute"] == OVERALL).sum() == (wide["attribute"] == OVERALL).sum() * len(
        REGISTRY)
    assert long["value"].isna().any()  # the sample has undefined rates
    idx = long.set_index(["model", "attribute", "group", "metric"]).sort_index()
    assert idx.index.is_unique
    checked = 0
    for row in wide.to_dict(orient="records"):
        for name, metric in REGISTRY.items():
            got = idx.loc[(row["model"], row["attribute"], row["group"], name)]
            for col, key in (("value", name), ("ci_low", f"{name}_ci_low"),
                             ("ci_high", f"{name}_ci_high")):
                want = float(row.get(key, np.nan))
                have = float(got[col])
                assert (math.isnan(want) and math.isnan(have)) or have == want, (row, name, col)
            assert int(got["n"]) == int(row["n"])
            reason = got["undefined_reason"]
            if math.isnan(float(row[name])):
                assert reason == metric.undefined_reason()
            else:
                assert reason is None
            checked += 1
    assert checked == len(long)


# --------------------------------------------------------------------------
# plotly.js and the browser console
# --------------------------------------------------------------------------
def _console(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "fairness_core.report"]


@pytest.mark.browser
def test_printing_the_report_logs_no_invalid_colour(loans_result, caplog, monkeypatch):
    import plotly.io as pio

    # plotly's own default template (importing streamlit replaces it): it
    # overlays bar patterns, which is what made plotly.js warn
    monkeypatch.setattr(pio.templates, "default", "plotly")
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pdf = pdf_from_html(html_report(loans_result, title="T"))
    assert pdf.startswith(b"%PDF")
    assert not [r.getMessage() for r in caplog.records if "Invalid color" in r.getMessage()]
    assert not [w for w in caught if "color" in str(w.message).lower()]


@pytest.mark.browser
def test_the_browser_console_reaches_the_log(caplog):
    """The check above can fail: plotly's warning about a list of colours
    with a pattern, and a page's own warning, are logged."""
    import plotly.graph_objects as go

    fig = go.Figure(go.Bar(x=["a", "b", "c"], y=[1, 2, 3],
                           marker=dict(color=["#0072B2", "#E69F00", "#009E73"],
                                       pattern=dict(shape=["/", "", ""],
                                                    fillmode="overlay"))))
    page = fig.to_html(include_plotlyjs=True).replace(
        "<body>", "<body><script>console.warn('probe: a page warning')</script>", 1)
    caplog.set_level(logging.DEBUG, logger="fairness_core.report")
    assert pdf_from_html(page).startswith(b"%PDF")
    logged = [(r.levelno, r.getMessage()) for r in _console(caplog)]
    assert (logging.WARNING, "browser console (warning): probe: a page warning") in logged
    assert any("Invalid color specifier: Array(3)" in m for _, m in logged), logged


def test_report_templates_ship_with_the_package():
    import tomllib

    import fairness_core

    folder = Path(fairness_core.__file__).parent / "templates"
    names = sorted(p.name for p in folder.glob("*.j2"))
    assert "report.html.j2" in names and "macros.html.j2" in names
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert conf["tool"]["setuptools"]["package-data"]["fairness_core"] == ["templates/*.j2"]


def test_report_has_the_content_security_policy(loans_result):
    doc = html_report(loans_result)
    head = doc.split("<body>", 1)[0]
    csp = re.findall(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)">', head)
    assert csp == [("default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; "
                    "style-src 'unsafe-inline'; img-src data: blob:; font-src data:; "
                    "connect-src 'none'")]
    assert doc.startswith("<!DOCTYPE html>")
