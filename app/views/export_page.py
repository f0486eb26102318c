"""Export: the audit report (HTML, PDF), tables (CSV, XLSX, JSON), chart
images, and the audit's configuration (save, and load back)."""
from __future__ import annotations

import hashlib
import logging

import streamlit as st

from fairness_core import InputError, charts, exports
from fairness_core.metrics import NO_OUTCOME
from ui import md, name as shown_name
from views.common import context, pick_attribute, pick_metric, pick_model

_log = logging.getLogger(__name__)
CHARTS = {"group": "Metric by group", "disparity": "Ratio to the reference",
          "representation": "Rows per group", "roc": "ROC curves (score models)",
          "calibration": "Calibration (score models)"}


def report_files(result, title: str, author: str, scope: str, k: int, pdf: bool) -> dict:
    """The report as HTML (and PDF) bytes with their file names.

    When the PDF cannot be made (chromium missing, not starting, crashing,
    or anything unexpected), the HTML is kept and ``"pdf_missing"`` says in
    one sentence why there is no PDF."""
    from fairness_core.report import html_report, pdf_from_html
    from trail import review_of  # the saved audit's review, when it is saved

    doc = html_report(result, title=title, author=author, scope=scope, suppress_below=k,
                      review=review_of(result))
    out = {"html": (doc.encode("utf-8"), charts.file_name("fairness-audit-report",
                                                          ext="html"))}
    if pdf:
        try:
            out["pdf"] = (pdf_from_html(doc), charts.file_name("fairness-audit-report",
                                                               ext="pdf"))
        except InputError as err:  # ExportUnavailable: no chromium, or it failed
            out["pdf_missing"] = err.message
        except Exception as err:  # never lose the HTML for the PDF's sake
            _log.warning("The PDF report failed: %s", type(err).__name__)
            out["pdf_missing"] = (f"The PDF could not be made (unexpected "
                                  f"{type(err).__name__}); the HTML report is complete.")
    return out


def make_report(result, title: str, author: str, scope: str, k: int, pdf: bool) -> dict:
    """:func:`report_files`, or ``{"error": sentence}`` when even the HTML
    cannot be made (no traceback reaches the page)."""
    try:
        return report_files(result, title, author, scope, k, pdf)
    except InputError as err:
        return {"error": err.message}
    except Exception as err:
        _log.warning("The report failed: %s", type(err).__name__)
        return {"error": f"The report could not be made (unexpected {type(err).__name__}). "
                         "The tables below hold the same numbers."}


def chart_figure(result, kind: str, model: str, attribute: str, metric: str):
    """The figure a chart download holds (None when it does not apply)."""
    r, spec = result, result.spec
    sc = r.scores
    if kind == "group":
        return charts.group_metric_chart(r.long, r.disparities, model=model,
                                         attribute=attribute, metric=metric,
                                         tolerance=spec.tolerance, confidence=spec.confidence)
    if kind == "disparity":
        return charts.disparity_chart(r.disparities, model=model, attribute=attribute,
                                      metric=metric, tolerance=spec.tolerance,
                                      confidence=spec.confidence)
    if kind == "representation":
        return charts.representation_chart(r.groups, attribute=attribute, model=model,
                                           min_group_size=spec.min_group_size)
    if kind in ("roc", "calibration") and not spec.labelled:
        return None  # both compare scores with the true outcome
    if kind == "roc" and model in spec.scores:
        return charts.roc_chart(sc["curves"], r.groups, model=model, attribute=attribute,
                                auc=sc["auc"])
    if kind == "calibration" and model in spec.scores and len(sc["calibration"]):
        return charts.calibration_chart(sc["calibration"], model=model, attribute=attribute)
    return None


def _apply_config():
    """Load an uploaded configuration into the controls (runs before the page)."""
    up = st.session_state.get("config_upload")
    if up is None:
        return
    try:
        spec, data = exports.load_config(up.getvalue())
    except InputError as err:
        st.session_state["config_message"] = ("error", err.message)
        return
    p = st.session_state.setdefault("prefs", {})
    p.pop("by_columns", None)  # the loaded settings win over remembered ones
    d = spec.to_dict()
    for k in ("label", "task", "predictions", "scores", "sensitive", "intersectional",
              "threshold",
              "tolerance", "min_group_size", "alpha", "correction", "n_bootstrap", "seed"):
        p[k] = d[k]
        st.session_state.pop(k, None)
    if d["label"] is None:  # a configuration of the decisions alone
        from setup_panel import NO_LABEL
        p["label"] = NO_LABEL
    p["positive"] = d["positive"]
    p["positive_decision"] = d["positive_decision"]
    p["prediction_positive"] = d["prediction_positive"]
    for k in [k for k in st.session_state if k in ("positive", "positive_set",
                                                   "positive_decision")
              or str(k).startswith(("pp::", "pp_chosen::", "threshold::"))]:
        st.session_state.pop(k, None)
    p["weight"] = d["weight"] or "(none)"
    st.session_state.pop("weight", None)
    p["bins"] = d["bins"]
    for c in d["bins"]:
        st.session_state.pop(f"bins::{c}", None)
    p["reference_strategy"] = "named" if d["reference"] else d["reference_strategy"]
    st.session_state.pop("refmode", None)
    p["reference"] = d["reference"]
    for a in d["reference"]:
        st.session_state.pop(f"ref::{a}", None)
    ctx = st.session_state.get("ctx")
    sha = ctx.loaded.sha256 if ctx is not None and ctx.loaded is not None else None
    warn = exports.check_data(data, sha)
    st.session_state["config_message"] = ("warning", warn) if warn else (
        "success", "Configuration loaded: the audit uses its settings.")


def with_extras(ctx):
    """This session's audit with what its exports add: the comparison with
    an earlier audit loaded on the Compare page, and each model against the
    next on the same rows.  A copy: the audit itself may be shared with
    other sessions.  Returns (result, the earlier audit's name or None)."""
    import dataclasses

    import state
    from views.compare_page import BASELINE, comparison

    r = ctx.result
    if getattr(r, "task", "binary") != "binary":  # comparisons are of yes/no decisions
        return r, None
    try:
        comp = comparison(ctx)
    except InputError:  # the Compare page says why
        comp = None
    try:
        pairs = state.audit_pairs(ctx.loaded, ctx.spec, r)
    except InputError:
        pairs = None
    if comp is None and pairs is None:
        return r, None
    got = st.session_state.get(BASELINE)
    return (dataclasses.replace(r, comparison=comp, paired=pairs),
            got[1].name if comp is not None else None)


def render():
    ctx = context("Export")
    if ctx is None:
        return
    r, earlier = with_extras(ctx)
    if earlier:
        ctx.names.append(earlier)
        st.info(ctx.say(f"The report and the JSON include the comparison with the earlier "
                        f"audit {earlier!r} loaded on the Compare page."), icon="ℹ️")

    st.subheader("Audit report")
    st.caption("One self-contained HTML file that opens offline, and the same report as a "
               "PDF: title block, provenance (file name and SHA-256, rows left out, settings, "
               "versions, time, seed), methodology, findings, a section per attribute, "
               "intersections, thresholds and calibration, model comparison, limitations "
               "and an appendix with every number.")
    c1, c2 = st.columns(2)
    title = c1.text_input("Report title", "Fairness audit report", key="report_title")
    author = c2.text_input("Author", "", key="report_author")
    scope = st.text_area("Scope statement", "", key="report_scope",
                         help="What was audited, for what decision, and why.")
    c1, c2, c3 = st.columns(3)
    suppress = c1.checkbox("Suppress small groups in the report and tables",
                           key="suppress_small",
                           help="Blank the metrics of groups with fewer rows than the number "
                                "on the right, for privacy; the report says so.")
    k = int(c2.number_input("Fewer than (rows)", 2, 1000, 10, key="suppress_k")) \
        if suppress else 0
    want_pdf = c3.checkbox("Also as PDF", value=True, key="report_pdf")
    key = hashlib.sha256(repr((r.spec.to_json(), ctx.loaded.sha256, title, author, scope, k,
                               want_pdf, earlier, id(getattr(r, "comparison", None))))
                         .encode()).hexdigest()
    if st.button("Make the report", type="primary", key="make_report"):
        with st.spinner("Writing the report..."):
            st.session_state["report"] = (key, make_report(r, title, author, scope, k,
                                                           want_pdf))
    made = st.session_state.get("report")
    if made and made[0] == key:
        files = made[1]
        c1, c2 = st.columns(2)
        if "html" in files:
            data, name = files["html"]
            c1.download_button("Download the HTML report", data, file_name=name,
                               mime="text/html", key="dl_report_html")
        if "pdf" in files:
            data, name = files["pdf"]
            c2.download_button("Download the PDF report", data, file_name=name,
                               mime="application/pdf", key="dl_report_pdf")
        elif "pdf_missing" in files:
            c2.warning(f"No PDF: {ctx.say(files['pdf_missing'])}", icon="⚠️")
        if "error" in files:
            st.error(ctx.say(files["error"]), icon="⚠️")
    elif made:
        st.caption("The settings changed since the report was made: make it again.")

    st.subheader("Tables")
    tabs = exports.tables(r, k)
    notes = exports.export_notes(r, k)
    c1, c2, c3, c4 = st.columns(4)
    c1.download_button("Group metrics (CSV)", exports.to_csv_bytes(tabs["groups"]),
                       file_name=charts.file_name("group-metrics", ext="csv"),
                       mime="text/csv", key="dl_groups_csv")
    c2.download_button("Disparities (CSV)", exports.to_csv_bytes(tabs["disparities"]),
                       file_name=charts.file_name("disparities", ext="csv"),
                       mime="text/csv", key="dl_disp_csv")
    c3.download_button("All tables (XLSX)", exports.to_xlsx_bytes(tabs, notes),
                       file_name=charts.file_name("fairness-audit", ext="xlsx"),
                       mime="application/vnd.openxmlformats-officedocument.spreadsheetml."
                            "sheet", key="dl_xlsx")
    c4.download_button("Full audit (JSON)", r.to_json().encode("utf-8"),
                       file_name=charts.file_name("fairness-audit", ext="json"),
                       mime="application/json", key="dl_json")
    st.caption("Text cells that a spreadsheet would run as a formula (starting with =, +, -, "
               "@) are stored as text.")

    st.subheader("Charts")
    if getattr(r, "task", "binary") == "multiclass":
        from views.multiclass_pages import export_charts
        export_charts(ctx)
    else:
        _charts(ctx, r)
    _config_section(ctx, r)


def _charts(ctx, r):
    if r.task == "regression":
        from views.regression_pages import chart_picker
        kind, model, attribute, fig = chart_picker(ctx)
        metric = kind
    else:
        c1, c2, c3, c4 = st.columns(4)
        with c1:
            kind = st.selectbox("Chart", list(CHARTS), format_func=CHARTS.get,
                                key="export_chart")
        with c2:
            model = pick_model(ctx)
        with c3:
            attribute = pick_attribute(ctx)
        with c4:
            metric = pick_metric(ctx)
        fig = chart_figure(r, kind, model, attribute, metric)
    if fig is None and kind in ("roc", "calibration") and not r.spec.labelled:
        st.info(f"This chart compares scores with the true outcome: it is "
                f"{NO_OUTCOME}. Choose the label in the sidebar to draw it.")
    elif fig is None:
        st.info("This chart needs a score model: choose one of "
                f"{', '.join(map(shown_name, r.spec.scores)) or 'none (add a score column)'}.")
    else:
        cols = st.columns(4)
        for col, fmt in zip(cols, ("png", "svg", "pdf", "html")):
            name = charts.file_name(kind, metric if kind in ("group", "disparity") else "",
                                    attribute, model, ext=fmt)
            try:
                data = charts.figure_bytes(fig, fmt) if st.session_state.get(
                    f"want_{fmt}") else None
            except charts.ExportUnavailable as err:
                col.caption(md(str(err)))
                continue
            if data is None:
                col.button(f"Prepare {fmt.upper()}", key=f"prep_{fmt}",
                           on_click=lambda f=fmt: st.session_state.update({f"want_{f}": True}))
            else:
                col.download_button(f"Download {fmt.upper()}", data, file_name=name,
                                    key=f"dl_chart_{fmt}")


def _config_section(ctx, r):
    st.subheader("Audit configuration")
    st.caption("Save the settings (columns, positive label, attributes, intersections, "
               "references, tolerance, minimum size, threshold, models, alpha, seed) and load "
               "them back later after uploading the same data: the same data and settings "
               "give the same numbers.")
    from fairness_core.exports import config_json
    st.download_button("Save the configuration (JSON)",
                       config_json(r.spec, ctx.loaded.sha256, ctx.loaded.name).encode("utf-8"),
                       file_name=charts.file_name("audit-config", ext="json"),
                       mime="application/json", key="dl_config")
    if ctx.uploads_off:
        st.caption("Loading a configuration is turned off, like every upload: see the "
                   "message under 'Upload your own file' in the sidebar.")
    else:
        st.file_uploader("Load a configuration", type=["json"], key="config_upload",
                         on_change=_apply_config)
    msg = st.session_state.pop("config_message", None)
    if msg:
        getattr(st, msg[0])(ctx.say(msg[1]))
