"""The HTML and PDF audit report: its numbers are the engine's, it opens
offline, and nothing from the data can run in it."""
from __future__ import annotations

import re
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
