"""History: the saved audits, a disparity's trend over the audits of one
model, and the comparison of any two saved audits."""
from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

import state
import trail
from fairness_core import InputError, charts, exports, history
from fairness_core.compare import change_table, report_section
from fairness_core.formatting import num, p_value
from fairness_core.metrics import REGISTRY
from ui import chart, md, say, table
from ui import shown as ui_shown
from views.compare_page import ICON
from views.review_page import audit_label

ALL = "(all)"


def _filters(listed: pd.DataFrame) -> pd.DataFrame:
    c1, c2, c3 = st.columns(3)
    models = sorted({m for ms in listed["models"] for m in ms})
    model = c1.selectbox("Model", [ALL] + models, key="history_model")
    data = c2.selectbox("Data", [ALL] + sorted(set(listed["data_name"].dropna())),
                        key="history_data")
    days = listed["saved_at"].map(lambda t: t.date())
    period = c3.date_input("Saved between", (days.min(), days.max()), key="history_dates",
                           min_value=dt.date(2000, 1, 1))
    keep = pd.Series(True, index=listed.index)
    if model != ALL:
        keep &= listed["models"].map(lambda ms: model in ms)
    if data != ALL:
        keep &= listed["data_name"] == data
    if isinstance(period, (tuple, list)) and len(period) == 2:
        keep &= (days >= period[0]) & (days <= period[1])
    return listed[keep]


def _trend(store, shown: pd.DataFrame) -> None:
    st.subheader("Trend of a disparity")
    models = sorted({m for ms in shown["models"] for m in ms})
    if not models:
        return
    c1, c2, c3 = st.columns(3)
    model = c1.selectbox("Model", models, key="trend_model")
    ids = [i for i, ms in zip(shown["id"], shown["models"]) if model in ms]
    saved = [store.audit(i) for i in ids]
    latest = saved[0]["results"]  # newest first
    metrics = history.trend_metrics(latest)
    if not metrics:
        st.info("The saved audits of this model have no disparities to follow.")
        return
    metric = c2.selectbox("Metric", metrics, key="trend_metric",
                          format_func=lambda m: REGISTRY[m].label)
    trend = history.trend_table(saved, model, metric)
    attrs = list(dict.fromkeys(trend["attribute"]))
    attribute = c3.selectbox("Attribute", attrs, key="trend_attribute")
    tolerance = float((latest.get("spec") or {}).get("tolerance", 0.8))
    steps = state.memo(("trend_steps", trail.store_url(), tuple(ids), model, metric),
                       lambda: history.trend_steps(saved, model, metric))
    chart(charts.trend_chart(trend, model=model, attribute=attribute, metric=metric,
                             tolerance=tolerance, steps=steps), key="trend_chart")
    st.caption(f"{len(saved)} saved audit(s) of this model; the tolerance band is the newest "
               "audit's. Each point is the ratio to the reference group saved with that audit, "
               "its bar the interval saved with it.")
    step = steps[steps["attribute"] == attribute]
    if len(step):
        st.markdown("**From one audit to the next**")
        st.dataframe(ui_shown(pd.DataFrame({
            "Audit": step["audit_id"], "Since audit": step["previous_id"],
            "Group": step["group"], "Reference": step["reference"],
            "Ratio before": step["before"].map(lambda v: num(v, 3)),
            "Ratio after": step["after"].map(lambda v: num(v, 3)),
            "Change (x)": step["change"].map(lambda v: num(v, 2)),
            "Interval": [f"{num(a, 2)} to {num(b, 2)}" for a, b in
                         zip(step["change_ci_low"], step["change_ci_high"])],
            "Adj. p": step["p_value_adjusted"].map(p_value),
            "Significant": step["significant"].map({True: "yes", False: "no"}),
            "Trend": step["trend"].fillna("")}), "Group", "Reference"),
            hide_index=True, width="stretch", key="trend_steps")
        st.caption("Each later audit compared with the one before it, from their counts "
                   "(the ratio of the two ratios, tested on the log scale; p-values corrected "
                   "within each pair's comparison).")


def _compare(store, shown: pd.DataFrame) -> None:
    st.subheader("Compare two saved audits")
    if len(shown) < 2:
        st.caption("Save two audits to compare them here.")
        return
    rows = {r["id"]: r for r in shown.to_dict("records")}
    ids = list(rows)  # newest first
    c1, c2 = st.columns(2)
    before = c1.selectbox("Earlier audit (baseline)", ids, index=1, key="compare_before",
                          format_func=lambda i: audit_label(rows[i]))
    after = c2.selectbox("Later audit", ids, index=0, key="compare_after",
                         format_func=lambda i: audit_label(rows[i]))
    if before == after:
        st.info("Choose two different audits.")
        return
    try:
        comp = state.memo(("history_compare", trail.store_url(), before, after),
                          lambda: history.compare_saved(store.audit(before), store.audit(after)))
    except InputError as err:
        st.error(say(err.message), icon="⚠️")
        return
    for w in comp.warnings:
        st.warning(say(w), icon="⚠️")
    s = comp.settings
    st.caption(f"{s['n_tests']:,} changes tested. {say(s['method'])}")
    st.markdown("**Findings**")
    for f in comp.findings[:12]:
        st.markdown(f"{ICON[f['severity']]}: {say(f['text'])}")
    if len(comp.findings) > 12:
        with st.expander(f"All {len(comp.findings)} findings"):
            for f in comp.findings[12:]:
                st.markdown(f"{ICON[f['severity']]}: {say(f['text'])}")
    st.markdown("**Significant changes**")
    sig = change_table(comp)
    if len(sig):
        st.dataframe(ui_shown(sig, "model", "attribute", "group", "what"), hide_index=True,
                     width="stretch", key="history_significant")
    else:
        st.caption("No significant change.")
    st.markdown("**Every gap to the reference, earlier and later**")
    gaps = report_section(comp)["gaps"]
    if len(gaps):
        st.dataframe(ui_shown(gaps, "model", "attribute", "group", "what"), hide_index=True,
                     width="stretch", key="history_gaps")
    else:
        st.caption("No gap is in both audits with the same reference group.")
    models = list(dict.fromkeys(comp.changes["model"]))
    attrs = list(dict.fromkeys(comp.changes["attribute"]))
    metrics = [m for m in REGISTRY if m in set(comp.changes["metric"])]
    if models and attrs and metrics:
        c1, c2, c3 = st.columns(3)
        model = c1.selectbox("Model", models, key="history_cmp_model")
        attribute = c2.selectbox("Attribute", attrs, key="history_cmp_attribute")
        metric = c3.selectbox("Metric", metrics, key="history_cmp_metric",
                              format_func=lambda m: REGISTRY[m].label)
        chart(charts.comparison_chart(comp.changes, model=model, attribute=attribute,
                                      metric=metric, confidence=s["confidence"]),
              key="history_compare_chart")
    st.download_button("Download every change (CSV)", exports.to_csv_bytes(comp.tidy()),
                       file_name=charts.file_name("audit-comparison", before, after,
                                                  ext="csv"),
                       mime="text/csv", key="dl_history_comparison")


def render():
    st.title("History")
    st.caption("Every audit saved in the review store: filter them, follow a disparity over "
               "the audits of one model, and compare any two of them.")
    store = trail.store()
    if store is None:
        return
    listed = store.audits()
    if not len(listed):
        st.info("No audit is saved yet: save one on the Review page.")
        return
    shown = _filters(listed)
    table(pd.DataFrame({
        "Audit": shown["id"], "Version": shown["version"],
        "Saved (UTC)": shown["saved_at"].map(lambda t: f"{t:%Y-%m-%d %H:%M}"),
        "Data": shown["data_name"].fillna(""), "Models": shown["models"].map(", ".join),
        "Signed off": shown["signed"].map({True: "yes", False: "no"}),
        "Replaces": shown["previous_id"].map(lambda v: "" if pd.isna(v) else f"audit {int(v)}"),
    }))
    if not len(shown):
        st.info("No saved audit matches the filters.")
        return
    _trend(store, shown)
    _compare(store, shown)
    st.caption(md("Anyone who can open this dashboard can see these saved audits."))
