"""Thresholds: score distributions, ROC, metrics against the threshold,
calibration, per group (without a true outcome: score distributions and the
selection rate against the threshold)."""
from __future__ import annotations

import streamlit as st

from fairness_core import charts
from fairness_core.formatting import count, interval, num, pct
from fairness_core.metrics import NO_OUTCOME
from ui import chart, metric_help, shown, table
from views.common import context, header, pick_attribute, pick_metric, pick_model


def score_table(result, model: str, attribute: str):
    """Each group's mean score (with its interval) and share at or above the
    threshold (its selection rate), as shown."""
    import pandas as pd

    m = result.scores.get("means", pd.DataFrame())
    m = m[(m["model"] == model) & (m["attribute"] == attribute)] if len(m) else m
    return pd.DataFrame({
        "Group": m["group"], "Rows": [count(n) for n in m["n"]],
        "Mean score": [num(v) for v in m["mean_score"]],
        "Interval of the mean": [interval(lo, hi) for lo, hi in
                                 zip(m["mean_ci_low"], m["mean_ci_high"])],
        "Share at or above the threshold": [pct(v) for v in m["share_above"]]})


def _sync_threshold(target: str):
    st.session_state[target] = st.session_state["threshold_page"]


def render():
    ctx = context()
    if ctx is None:
        return
    r = ctx.result
    if not r.spec.scores:
        st.info("Choose a score column in the sidebar to see threshold views.")
        return
    header(ctx, "Thresholds")
    c1, c2, c3 = st.columns(3)
    with c1:
        model = pick_model(ctx, options=r.spec.scores, key="score_model_pick")
    with c2:
        attribute = pick_attribute(ctx)
    with c3:
        metric = pick_metric(ctx)
    sc = r.scores
    threshold = r.provenance["thresholds"][model]["threshold"]
    # the sidebar's threshold (one for all scores, or this score's own)
    if ctx.shared_threshold or model not in ctx.threshold_ranges:
        target, (lo, hi, step) = "threshold", ctx.threshold_range
    else:
        target, (lo, hi, step) = f"threshold::{model}", ctx.threshold_ranges[model]
    st.session_state["threshold_page"] = float(st.session_state.get(target, threshold))
    st.slider("Score threshold (the same as in the sidebar; every page follows it)", lo, hi,
              key="threshold_page", step=step, on_change=_sync_threshold, args=(target,))
    order = r.group_order(attribute)
    st.subheader("Score distribution per group")
    chart(charts.score_distribution_chart(sc["distribution"], model=model, attribute=attribute,
                                          threshold=threshold, order=order,
                                          means=sc.get("means")), key="score_distribution")
    table(shown(score_table(r, model, attribute), "Group"))
    if not r.spec.labelled:
        st.caption(f"The ROC curves, the error rates against the threshold and calibration "
                   f"compare scores with the true outcome: they are {NO_OUTCOME}. The "
                   "selection rate against the threshold shows how a threshold moves each "
                   "group's share of positive decisions.")
        chart(charts.threshold_chart(sc["curves"], model=model, attribute=attribute,
                                     metric="selection_rate", threshold=threshold, order=order,
                                     labelled=False), key="metric_threshold")
        return
    left, right = st.columns(2)
    with left:
        chart(charts.roc_chart(sc["curves"], r.groups, model=model, attribute=attribute,
                               order=order, auc=sc["auc"]), key="roc")
    with right:
        st.caption(metric_help(metric))
        chart(charts.threshold_chart(sc["curves"], model=model, attribute=attribute,
                                     metric=metric, threshold=threshold, order=order),
              key="metric_threshold")
    cal = sc["calibration"]
    if len(cal) and (cal["model"] == model).any():
        a = sc["auc"]
        a = a[(a["model"] == model) & (a["attribute"] == attribute)]
        chart(charts.calibration_chart(cal, model=model, attribute=attribute, order=order,
                                       brier=dict(zip(a["group"], a["brier"]))),
              key="calibration")
        st.caption("A well-calibrated score means the same thing for every group: among "
                   "people scored about 0.7, about 70% are in the positive class, in every "
                   "group. Lines far from the diagonal, or far from each other, show a score "
                   "that means different things for different groups.")
    else:
        st.caption("Calibration needs scores between 0 and 1.")
