"""Group metrics: one metric across the groups of one attribute."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from fairness_core import charts
from fairness_core.formatting import count, interval, level, num, p_value, short, value
from fairness_core.metrics import REGISTRY
from fairness_core.spec import INTERSECTION_SEP
from ui import VERDICT_ICON, chart, metric_help, name, shown
from views.common import context, needs_outcome_note, pick_attribute, pick_metric, pick_model


def group_table(result, model: str, attribute: str, metric: str) -> pd.DataFrame:
    """The per-group table shown (and tested): one row per group."""
    g = result.group_metrics
    g = g[(g["model"] == model) & (g["attribute"] == attribute)]
    d = result.disparities
    d = d[(d["model"] == model) & (d["attribute"] == attribute) & (d["metric"] == metric)] \
        .set_index("group")
    ref = d["reference"].iloc[0] if len(d) else None
    band = f"{level(result.spec.confidence)} interval"
    rows = []
    for r in g.itertuples(index=False):
        dd = d.loc[r.group] if r.group in d.index else None
        rows.append({
            "Group": r.group, "Rows": int(r.n), "Share": round(100 * r.share, 1),
            REGISTRY[metric].label: value(getattr(r, metric), metric),
            band: interval(getattr(r, f"{metric}_ci_low"), getattr(r, f"{metric}_ci_high"),
                           metric),
            "Ratio to reference": "reference" if r.group == ref else
            (num(dd["ratio"]) if dd is not None else ""),
            "Ratio interval": "" if dd is None else interval(dd["ratio_ci_low"],
                                                              dd["ratio_ci_high"]),
            "Difference": "" if dd is None else num(dd["difference"]),
            "Verdict": VERDICT_ICON["reference"] if r.group == ref else
            (VERDICT_ICON.get(dd["verdict"], "") if dd is not None else ""),
            "Significant": "" if dd is None else ("yes" if dd["significant"] else "no"),
            "Adjusted p": "" if dd is None or pd.isna(dd["p_value_adjusted"]) else
            p_value(dd["p_value_adjusted"]),
            "Rows needed": "" if dd is None or pd.isna(dd["rows_needed"]) else
            count(dd["rows_needed"]),
            "Why": "" if dd is None else dd["verdict_reason"],
            **({"TP": r.tp, "FP": r.fp, "TN": r.tn, "FN": r.fn} if result.spec.labelled
               else {"Selected": r.fp}),  # without an outcome: the decisions alone
        })
    return pd.DataFrame(rows)


def render():
    ctx = context("Group metrics")
    if ctx is None:
        return
    r = ctx.result
    c1, c2, c3 = st.columns(3)
    with c1:
        model = pick_model(ctx)
    with c2:
        attribute = pick_attribute(ctx)
    with c3:
        metric = pick_metric(ctx)
    st.info(metric_help(metric), icon="📏")
    order = r.group_order(attribute)
    left, right = st.columns(2)
    with left:
        chart(charts.group_metric_chart(r.long, r.disparities, model=model,
                                        attribute=attribute, metric=metric,
                                        tolerance=r.spec.tolerance, order=order,
                                        confidence=r.spec.confidence),
              key="group_chart")
    with right:
        chart(charts.disparity_chart(r.disparities, model=model, attribute=attribute,
                                     metric=metric, tolerance=r.spec.tolerance, order=order,
                                     confidence=r.spec.confidence),
              key="disparity_chart")
    st.subheader("Per-group table")
    st.caption("Click a column header to sort. Rows needed: about how many rows the group "
               "would need for a gap the size of the tolerance to be detected with "
               f"{level(r.spec.power)} power (shown where the verdict is not settled).")
    st.dataframe(shown(group_table(r, model, attribute, metric), "Group"), hide_index=True,
                 width="stretch")

    st.subheader("Confusion matrix per group")
    if not needs_outcome_note(ctx, "The confusion matrix is"):
        chart(charts.confusion_chart(r.groups, model=model, attribute=attribute,
                                     positive=r.provenance["positive_label"],
                                     negative=r.provenance["negative_label"] or "other",
                                     order=order), key="confusion_chart")

    inter = [a for a in r.spec.attribute_names() if a.count(INTERSECTION_SEP) == 1]
    st.subheader("Intersections")
    if not inter:
        st.caption("Tick 'Also audit intersections' in the sidebar (with two or more "
                   "sensitive attributes) to see every combination of two attributes.")
        return
    pair = st.selectbox("Attributes", inter, key="inter_pick",
                        format_func=lambda a: short(a.replace(INTERSECTION_SEP, " x ")))
    a, b = pair.split(INTERSECTION_SEP)
    chart(charts.intersection_heatmap(r.groups, model=model, attr_a=a, attr_b=b, metric=metric,
                                      min_group_size=r.spec.min_group_size),
          key="heatmap")
    st.caption(f"Every cell is one group of {name(pair)}; its verdicts are in the tables when "
               "you choose that attribute above.")
