"""The audit report: one self-contained HTML file (opens offline by double
click; plotly.js embedded once) and the same report as a PDF.

The PDF is the HTML printed by Debian's chromium through Playwright: one
source for both, charts stay vector graphics (plotly draws SVG), tables
repeat their header on every page and never split a row, and every page
has its number.  Every user string (file, column and group names, the
title, author and scope typed by the user) is HTML-escaped, and the page
carries a Content-Security-Policy that forbids loading anything from
outside.
"""
from __future__ import annotations

import html
import json
import math
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from . import charts
from .counts import CELLS
from .exports import suppress_small
from .metrics import REGISTRY

CSP = ("default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; "
       "style-src 'unsafe-inline'; img-src data: blob:; font-src data:; connect-src 'none'")
KEY = ("selection_rate", "tpr", "fpr")

CSS = """
body { font-family: 'DejaVu Sans', 'Liberation Sans', Arial, sans-serif; font-size: 10.5pt;
       color: #1a1a1a; max-width: 1100px; margin: 24px auto; padding: 0 16px; }
h1 { font-size: 22pt; margin-bottom: 4px; } h2 { font-size: 15pt; margin-top: 28px;
 border-bottom: 2px solid #0072B2; padding-bottom: 3px; } h3 { font-size: 12pt; }
table { border-collapse: collapse; width: 100%; margin: 8px 0 14px; font-size: 8.5pt; }
th, td { border: 1px solid #cccccc; padding: 3px 5px; text-align: left; vertical-align: top; }
th { background: #eef3f8; } thead { display: table-header-group; }
tr { break-inside: avoid; page-break-inside: avoid; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.meta td:first-child { width: 28%; font-weight: bold; }
.finding { margin: 4px 0; } .sev-high { color: #b23b00; } .sev-medium { color: #a05a00; }
.sev-low { color: #7a6a00; } .small { color: #555555; font-size: 9pt; }
.chart { break-inside: avoid; page-break-inside: avoid; margin: 6px 0 16px; }
pre { white-space: pre-wrap; font-size: 8pt; background: #f6f6f6; padding: 8px; }
.section { break-before: auto; }
@media print { body { margin: 0; max-width: none; } h2 { break-after: avoid; } }
"""


def e(text) -> str:
    return html.escape("" if text is None else str(text), quote=True)


def _num(x, metric: str | None = None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "undefined"
    if isinstance(x, (float, np.floating)) and math.isinf(x):
        return "unbounded"
    if metric and REGISTRY[metric].kind == "rate":
        return f"{100 * x:.1f}%"
    if isinstance(x, (int, np.integer)):
        return f"{int(x):,}"
    return f"{x:.3f}"


def _table(df: pd.DataFrame, numeric=()) -> str:
    head = "".join(f"<th>{e(c)}</th>" for c in df.columns)
    rows = []
    for rec in df.itertuples(index=False):
        cells = []
        for c, v in zip(df.columns, rec):
            cls = ' class="num"' if c in numeric else ""
            cells.append(f"<td{cls}>{e(v)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


class _Figures:
    """Embeds plotly.js once (with the first figure)."""

    def __init__(self):
        self.first = True

    def __call__(self, fig) -> str:
        fig.update_layout(width=1000)
        out = fig.to_html(full_html=False, include_plotlyjs=self.first,
                          config={"displaylogo": False, "staticPlot": False,
                                  "responsive": False})
        self.first = False
        return f'<div class="chart">{out}</div>'


def _group_table(result, model: str, attribute: str, suppress_below: int) -> pd.DataFrame:
    g = result.group_metrics
    g = g[(g["model"] == model) & (g["attribute"] == attribute)]
    d = result.disparities
    rows = []
    for r in g.itertuples(index=False):
        row = {"Group": r.group, "Rows": int(r.n), "Share": f"{100 * r.share:.1f}%"}
        small = suppress_below and r.n < suppress_below
        for m in KEY + ("accuracy",):
            lo, hi = getattr(r, f"{m}_ci_low"), getattr(r, f"{m}_ci_high")
            row[REGISTRY[m].short] = "suppressed" if small else (
                f"{_num(getattr(r, m), m)} ({_num(lo, m)} to {_num(hi, m)})")
        dd = d[(d["model"] == model) & (d["attribute"] == attribute)
               & (d["group"] == r.group) & d["metric"].isin(KEY)]
        fails = dd[dd["verdict"] == "fail"]
        if not len(dd):
            row["Verdict (selection, TPR, FPR)"] = "reference"
        elif len(fails):
            row["Verdict (selection, TPR, FPR)"] = "fail: " + ", ".join(
                REGISTRY[m].short + (" (significant)" if s else "")
                for m, s in zip(fails["metric"], fails["significant"]))
        elif (dd["verdict"] == "insufficient").all():
            row["Verdict (selection, TPR, FPR)"] = "not judged: " + str(
                dd["verdict_reason"].iloc[0])
        else:
            row["Verdict (selection, TPR, FPR)"] = "pass"
        rows.append(row)
    return pd.DataFrame(rows)


def html_report(result, *, title: str = "Fairness audit report", author: str = "",
                scope: str = "", dataset: str | None = None,
                suppress_below: int = 0) -> str:
    """The whole report as one HTML document (see the module docstring)."""
    spec, prov = result.spec, result.provenance
    src = prov.get("input") or {}
    dataset = dataset or src.get("name") or "data"
    fig = _Figures()
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    parts = [f"<h1>{e(title)}</h1>",
             f'<p class="small">Dataset {e(dataset)}; model(s) '
             f"{e(', '.join(spec.models))}; report made {e(now)}.</p>"]
    meta = [("Author", author or "(not given)"), ("Scope", scope or "(not given)"),
            ("Dataset", dataset), ("Models", ", ".join(spec.models)),
            ("Sensitive attributes", ", ".join(spec.attribute_names())),
            ("Favourable outcome", f"{spec.label} = {prov.get('positive_label')}")]
    parts.append('<table class="meta"><tbody>' + "".join(
        f"<tr><td>{e(k)}</td><td>{e(v)}</td></tr>" for k, v in meta) + "</tbody></table>")

    # --- summary of findings ----------------------------------------------------
    parts.append('<h2 class="section">1. Summary</h2>')
    fails = [f for f in result.findings if f["kind"] == "fail"]
    sev = pd.Series([f["severity"] for f in result.findings]).value_counts()
    parts.append(f"<p>{len(fails)} disparities fail the tolerance of {spec.tolerance:g} to "
                 f"{1 / spec.tolerance:.3g} ({int(sev.get('high', 0))} of high severity, "
                 f"{int(sev.get('medium', 0))} medium, {int(sev.get('low', 0))} low: failing "
                 "but possibly noise). The most severe:</p>")
    for f in fails[:5]:
        parts.append(f'<p class="finding sev-{e(f["severity"])}"><b>{e(f["severity"])}</b>: '
                     f"{e(f['text'])}</p>")
    summ = result.summary
    st = pd.DataFrame({
        "Model": summ["model"], "Attribute": summ["attribute"], "Groups": summ["n_groups"],
        "DP difference": [f"{_num(v)} ({_num(lo)} to {_num(hi)})" for v, lo, hi in zip(
            summ["demographic_parity_difference"],
            summ["demographic_parity_difference_ci_low"],
            summ["demographic_parity_difference_ci_high"])],
        "DP ratio": summ["demographic_parity_ratio"].map(_num),
        "EO difference": summ["equalized_odds_difference"].map(_num),
        "EO ratio": summ["equalized_odds_ratio"].map(_num),
        "EOpp difference": summ["equal_opportunity_difference"].map(_num),
        "Fail / significant": [f"{a} / {b}" for a, b in zip(summ["n_fail"],
                                                            summ["n_fail_significant"])],
        "Not judged": summ["n_insufficient"]})
    parts.append("<h3>Headline summaries (fairlearn definitions; 95% intervals)</h3>")
    parts.append(_table(st))

    # --- provenance -------------------------------------------------------------------
    parts.append('<h2 class="section">2. Provenance</h2>')
    dropped = "; ".join(f"{n:,} with {why}" for why, n in prov["dropped_reasons"].items()) \
        or "none"
    rows = [("Input file", src.get("name")), ("SHA-256 of the input", src.get("sha256")),
            ("Format", src.get("format")), ("Rows read", f"{prov['rows_read']:,}"),
            ("Rows audited", f"{prov['rows_used']:,}"),
            ("Rows left out", f"{prov['rows_dropped']:,} ({dropped})"),
            ("Bootstrap seed", prov.get("bootstrap_seed")),
            ("Audit made (UTC)", prov["created_utc"]),
            ("Tool", f"{prov['tool']} {prov['tool_version']}"),
            ("Libraries", ", ".join(f"{k} {v}" for k, v in prov["library_versions"].items()))]
    if suppress_below and suppress_below > 1:
        rows.append(("Privacy", f"The metrics of groups with fewer than {suppress_below} rows "
                                "are suppressed in this report's tables."))
    parts.append('<table class="meta"><tbody>' + "".join(
        f"<tr><td>{e(k)}</td><td>{e(v)}</td></tr>" for k, v in rows) + "</tbody></table>")
    parts.append("<h3>The audit's settings</h3><pre>" + e(spec.to_json()) + "</pre>")

    # --- methodology -------------------------------------------------------------------
    stats = prov.get("statistics", {})
    parts.append('<h2 class="section">3. Methodology</h2>')
    parts.append(
        "<p>Every metric is computed from four counts per group (true and false positives "
        "and negatives), with the definitions of fairlearn and scikit-learn; a rate whose "
        "denominator is zero is reported as undefined, never as 0. Each group is compared "
        f"with its attribute's reference group ({e(spec.reference_strategy)} group unless "
        "named: " + e(json.dumps(spec.reference) if spec.reference else "none named") +
        f"). A ratio to the reference inside {spec.tolerance:g} to {1 / spec.tolerance:.3g} "
        f"passes; groups with fewer than {spec.min_group_size} rows, or an undefined rate, "
        "are not judged.</p>")
    parts.append(
        f"<p>Intervals ({int(spec.confidence * 100)}%): Wilson score intervals for a single "
        "group's unweighted rate; bootstrap percentile intervals "
        f"({spec.n_bootstrap:,} replicates, {e(stats.get('bootstrap', ''))}, seed "
        f"{spec.seed}) for balanced accuracy, F1, weighted rates, differences, ratios and "
        f"summaries. Tests: {e(stats.get('tests', ''))}. All p-values of the audit are "
        f"corrected together ({e(stats.get('correction', ''))}); a gap is significant when "
        f"its adjusted p-value is below {spec.alpha:g}. Rows needed: a normal approximation "
        f"for a gap the size of the tolerance at {int(spec.power * 100)}% power.</p>")
    mt = pd.DataFrame([{"Metric": m.label, "Meaning": m.meaning, "When it matters":
                        m.matters_when} for m in REGISTRY.values()])
    parts.append(_table(mt))

    # --- findings -----------------------------------------------------------------------
    parts.append('<h2 class="section">4. Findings</h2>')
    for f in result.findings:
        parts.append(f'<p class="finding sev-{e(f["severity"])}"><b>{e(f["severity"])}</b>: '
                     f"{e(f['text'])}</p>")

    # --- per attribute ------------------------------------------------------------------
    parts.append('<h2 class="section">5. Results by attribute</h2>')
    single = [a for a in spec.attribute_names() if " & " not in a]
    for attr in single:
        parts.append(f"<h3>{e(attr)}</h3>")
        for model in spec.models:
            order = result.group_order(attr)
            parts.append(f"<p><b>Model {e(model)}</b></p>")
            parts.append(_table(_group_table(result, model, attr, suppress_below),
                                numeric=("Rows",)))
            for metric in ("selection_rate", "tpr"):
                parts.append(fig(charts.group_metric_chart(
                    result.groups, result.disparities, model=model, attribute=attr,
                    metric=metric, tolerance=spec.tolerance, order=order)))
            parts.append(fig(charts.disparity_chart(
                result.disparities, model=model, attribute=attr, metric="selection_rate",
                tolerance=spec.tolerance, order=order)))

    # --- intersections ------------------------------------------------------------------
    inter = [a for a in spec.attribute_names() if a.count(" & ") == 1]
    if inter:
        parts.append('<h2 class="section">6. Intersections</h2>')
        for attr in inter:
            a, b = attr.split(" & ")
            for model in spec.models:
                parts.append(fig(charts.intersection_heatmap(
                    result.groups, model=model, attr_a=a, attr_b=b, metric="selection_rate",
                    min_group_size=spec.min_group_size)))

    # --- thresholds and calibration -----------------------------------------------------------
    sc = result.scores
    if spec.scores and len(sc.get("curves", [])):
        parts.append('<h2 class="section">7. Thresholds and calibration</h2>')
        for model in spec.scores:
            for attr in single:
                order = result.group_order(attr)
                parts.append(fig(charts.roc_chart(sc["curves"], result.groups, model=model,
                                                  attribute=attr, order=order,
                                                  auc=sc["auc"])))
                if len(sc["calibration"]) and (sc["calibration"]["model"] == model).any():
                    parts.append(fig(charts.calibration_chart(sc["calibration"], model=model,
                                                              attribute=attr, order=order)))

    # --- models ------------------------------------------------------------------------
    if len(spec.models) > 1:
        parts.append('<h2 class="section">8. Model comparison</h2>')
        for attr in single:
            parts.append(fig(charts.model_scatter(result.overall, result.summary,
                                                  attribute=attr)))

    # --- limitations ---------------------------------------------------------------------
    parts.append('<h2 class="section">9. Limitations</h2><ul>')
    small = result.summary[["model", "attribute", "groups_below_min_size"]]
    for r in small.itertuples(index=False):
        if r.groups_below_min_size:
            parts.append(f"<li>Model {e(r.model)}, {e(r.attribute)}: "
                         f"{e(', '.join(map(str, r.groups_below_min_size)))} "
                         f"below {spec.min_group_size} rows: not judged.</li>")
    und = result.disparities[result.disparities["verdict_reason"].str.startswith("undefined")]
    if len(und):
        parts.append(f"<li>{len(und)} comparisons involve an undefined rate (listed in the "
                     "appendix with the reason).</li>")
    parts.append(f"<li>Rows left out: {e(dropped)}.</li>")
    for w in result.warnings:
        parts.append(f"<li>{e(w)}</li>")
    parts.append("</ul>")

    # --- appendix --------------------------------------------------------------------------
    parts.append('<h2 class="section">Appendix A. Every group metric</h2>')
    gt = suppress_small(result.group_table(), suppress_below, ("n",))
    cols = ["model", "attribute", "group", "n", *CELLS, *REGISTRY]
    cols += [c for c in ("suppressed",) if c in gt]
    gt = gt[cols].copy()
    for m in REGISTRY:
        gt[m] = [_num(v) if v is not None else "" for v in gt[m]]
    parts.append(_table(gt, numeric=("n", *CELLS, *REGISTRY)))
    parts.append('<h2 class="section">Appendix B. Every disparity</h2>')
    dt = suppress_small(result.disparities, suppress_below)
    cols = ["model", "attribute", "metric", "group", "reference", "value", "reference_value",
            "difference", "ratio", "ratio_ci_low", "ratio_ci_high", "p_value_adjusted",
            "significant", "verdict", "verdict_reason"]
    dt = dt[[c for c in cols if c in dt]].copy()
    for c in ("value", "reference_value", "difference", "ratio", "ratio_ci_low",
              "ratio_ci_high", "p_value_adjusted"):
        dt[c] = [_num(v) if v is not None else "" for v in dt[c]]
    parts.append(_table(dt))

    body = "\n".join(parts)
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            f"<title>{e(title)}</title><style>{CSS}</style></head><body>{body}"
            "</body></html>")


def pdf_from_html(html_text: str, timeout_ms: int = 120_000) -> bytes:
    """Print the report to PDF with Debian's chromium (through Playwright):
    A4, page numbers in the footer, vector charts.

    Runs in a worker thread of its own, so that it works whether or not the
    caller's thread runs an asyncio event loop."""
    import shutil
    from concurrent.futures import ThreadPoolExecutor

    from .errors import InputError
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        raise InputError("Making a PDF needs the chromium browser, which is not installed "
                         "(on Debian: apt-get install chromium). The HTML report works "
                         "without it.", field="pdf")
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(_print_pdf, html_text, chromium, timeout_ms).result()


def _print_pdf(html_text: str, chromium: str, timeout_ms: int) -> bytes:
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update",
            "--disable-sync"])
        try:
            page = browser.new_page()
            page.set_default_timeout(timeout_ms)
            page.set_content(html_text, wait_until="load")
            page.wait_for_function(
                "() => Array.from(document.querySelectorAll('.js-plotly-plot'))"
                ".every(d => d.querySelector('svg.main-svg'))")
            footer = ('<div style="font-size:8px; width:100%; text-align:center; '
                      'color:#555;">Page <span class="pageNumber"></span> of '
                      '<span class="totalPages"></span></div>')
            pdf = page.pdf(format="A4", print_background=True, display_header_footer=True,
                           header_template="<div></div>", footer_template=footer,
                           margin={"top": "14mm", "bottom": "16mm", "left": "10mm",
                                   "right": "10mm"})
        finally:
            browser.close()
    return pdf
