"""History: the saved audits, a disparity's trend over the audits of one
model, and two saved audits before and after."""
from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

import trail
from fairness_core import charts, history
from fairness_core.formatting import num
from fairness_core.metrics import REGISTRY
from ui import chart, md, table
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
    chart(charts.trend_chart(trend, model=model, attribute=attribute, metric=metric,
                             tolerance=tolerance), key="trend_chart")
    st.caption(f"{len(saved)} saved audit(s) of this model; the tolerance band is the newest "
               "audit's. Each point is the ratio to the reference group saved with that audit.")


def _before_after(store, shown: pd.DataFrame) -> None:
    st.subheader("Before and after")
    if len(shown) < 2:
        st.caption("Save two audits to compare them here.")
        return
    rows = {r["id"]: r for r in shown.to_dict("records")}
    ids = list(rows)
    c1, c2 = st.columns(2)
    before = c1.selectbox("Before", ids, index=1, key="compare_before",
                          format_func=lambda i: audit_label(rows[i]))
    after = c2.selectbox("After", ids, index=0, key="compare_after",
                         format_func=lambda i: audit_label(rows[i]))
    ba = history.before_after(store.audit(before)["results"], store.audit(after)["results"])
    changed = int(ba["verdict_changed"].sum())
    st.write(f"{changed} of {len(ba)} disparities changed their verdict.")
    out = pd.DataFrame({
        "Model": ba["model"], "Attribute": ba["attribute"], "Group": ba["group"],
        "Metric": ba["metric_label"],
        "Ratio before": ba["ratio_before"].map(lambda v: num(v, 3)),
        "Ratio after": ba["ratio_after"].map(lambda v: num(v, 3)),
        "Change": ba["ratio_change"].map(lambda v: "" if pd.isna(v) else f"{v:+.3f}"),
        "Verdict before": ba["verdict_before"].fillna("(not in this audit)"),
        "Verdict after": ba["verdict_after"].fillna("(not in this audit)")})
    st.dataframe(out, hide_index=True, width="stretch")


def render():
    st.title("History")
    st.caption("Every audit saved in the review store: filter them, follow a disparity over "
               "the audits of one model, and put two audits side by side.")
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
    _before_after(store, shown)
    st.caption(md("Anyone who can open this dashboard can see these saved audits."))
