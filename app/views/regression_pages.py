"""The pages of a regression audit (a numeric outcome): Overview, Group
metrics, Distributions, and the chart downloads of the Export page.

Every number and figure comes from the result's small tables
(:class:`fairness_core.regression_result.RegressionResult`); no row of the
data is shown.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from fairness_core import regression_charts as rc
from fairness_core.formatting import count, level, p_value
from fairness_core.regression import JUDGED, METRICS
from fairness_core.regression_result import (LABELS, amount, bounded_loss_table,
                                             metric_definitions, metric_text)
from fairness_core.tolerance import Tolerance
from ui import SEVERITY_ICON, VERDICT_ICON, chart, name, shown, table
from views.common import context, pick_attribute, pick_model

SHOWN = ("mean_error", "mae", "rmse", "r2", "mean_prediction", "mean_label")


def header(ctx, title: str) -> None:
    st.title(title)
    r = ctx.result
    prov = r.provenance
    what = "a benefit" if r.spec.positive_decision == "benefit" else "a harm"
    st.caption(f"{name(ctx.loaded.name)}: {count(prov['rows_used'])} rows audited of "
               f"{count(prov['rows_read'])}; true value {name(r.spec.label)}; a higher "
               f"prediction is {what} for the person; tolerance "
               f"{Tolerance(r.spec.tolerance).band()}; minimum group size "
               f"{r.spec.min_group_size}; {level(r.spec.confidence)} intervals "
               "(skewness-corrected t-intervals from the sums per group).")
    for w in r.warnings:
        st.warning(ctx.say(w), icon="⚠️")


def _context(title: str):
    ctx = context()
    if ctx is None:
        return None
    header(ctx, title)
    return ctx


def _reference(result, model: str, attribute: str):
    d = result.disparities
    d = d[(d["model"] == model) & (d["attribute"] == attribute)]
    return d["reference"].iloc[0] if len(d) else None


def verdict_table(result, model: str) -> pd.DataFrame:
    """One row per attribute: the reference, then per judged metric how many
    groups fail (and how many of those are significant), and the groups
    whose mean error differs significantly from the reference's."""
    d = result.disparities[result.disparities["model"] == model]
    rows = []
    for attr in result.spec.attribute_names():
        a = d[d["attribute"] == attr]
        row = {"Attribute": attr, "Reference": a["reference"].iloc[0] if len(a) else ""}
        me = a[(a["metric"] == "mean_error") & a["significant"]]
        row["Mean error differs (significant)"] = ", ".join(
            f"{g} ({amount(x)})" for g, x in zip(me["group"], me["difference"])) or "none"
        for m in JUDGED:
            x = a[a["metric"] == m]
            fails = x[x["verdict"] == "fail"]
            if len(fails):
                row[LABELS[m]] = (f"❌ {len(fails)} fail ({int(fails['significant'].sum())} "
                                  "significant)")
            elif len(x) and (x["verdict"] == "insufficient").all():
                row[LABELS[m]] = "⚪ not judged"
            else:
                row[LABELS[m]] = "✅ pass"
        rows.append(row)
    return pd.DataFrame(rows)


def render_overview():
    ctx = _context("Fairness audit overview")
    if ctx is None:
        return
    r = ctx.result
    model = pick_model(ctx)
    mine = [f for f in r.findings if f.get("model") == model]
    worst = next((f for f in mine if f["kind"] in ("fail", "error_gap")), None)
    if worst is not None:
        box = st.error if worst["severity"] in ("high", "medium") else st.warning
        box(f"**Most severe finding** ({SEVERITY_ICON[worst['severity']]}): "
            f"{ctx.say(worst['statement'])}", icon="🔎")
    else:
        st.success("No group fails the tolerance and no group's mean error differs notably "
                   "for this model.", icon="✅")
    ov = r.overall[r.overall["model"] == model].iloc[0]
    cols = st.columns(5)
    cols[0].metric("Rows audited", count(ov["n"]))
    cols[1].metric("Mean error", amount(ov["mean_error"]),
                   help="Prediction minus true value, on average: below 0 the model "
                        "under-predicts.")
    cols[2].metric("MAE", amount(ov["mae"]), help=metric_definitions()["mae"]["definition"])
    cols[3].metric("RMSE", amount(ov["rmse"]), help=metric_definitions()["rmse"]["definition"])
    cols[4].metric("R²", metric_text(ov["r2"], "r2"),
                   help=metric_definitions()["r2"]["definition"])

    st.subheader("Verdicts by attribute")
    st.caption("Per attribute: the groups whose mean error (prediction minus true value) "
               "differs significantly from the reference group's, after correction for "
               "multiple comparisons, and per metric the groups whose ratio to the reference "
               "falls outside the tolerance band.")
    table(shown(verdict_table(r, model), "Attribute", "Reference"))

    st.subheader("Bounded group loss")
    st.caption("The worst group's error per attribute: the largest mean absolute error and "
               "the largest root mean squared error among its groups.")
    b = bounded_loss_table(r)
    table(shown(b[b["Model"] == model].drop(columns="Model"), "Attribute"))

    st.subheader("Findings")
    counts = pd.Series([f["severity"] for f in mine], dtype=object).value_counts()
    st.caption("Most severe first. " + ", ".join(
        f"{SEVERITY_ICON[s]}: {int(counts.get(s, 0))}" for s in SEVERITY_ICON) +
        ". A gap in mean error is medium when significant, high when it is also at least "
        f"{1 - r.spec.tolerance:.0%} of the reference group's mean true value; a ratio "
        "outside the band is high when far outside.")
    for f in mine[:12]:
        st.markdown(f"{SEVERITY_ICON[f['severity']]}: {ctx.say(f['statement'])}")
    if len(mine) > 12:
        with st.expander(f"All {len(mine)} findings for this model"):
            for f in mine[12:]:
                st.markdown(f"{SEVERITY_ICON[f['severity']]}: {ctx.say(f['statement'])}")


def group_table(result, model: str, attribute: str, metric: str) -> pd.DataFrame:
    """The per-group table of the Group metrics page: one row per group."""
    g = result.group_metrics
    g = g[(g["model"] == model) & (g["attribute"] == attribute)]
    d = result.disparities
    d = d[(d["model"] == model) & (d["attribute"] == attribute) & (d["metric"] == metric)] \
        .set_index("group")
    ref = _reference(result, model, attribute)
    band = f"{level(result.spec.confidence)} interval"
    rows = []
    for r in g.itertuples(index=False):
        dd = d.loc[r.group] if r.group in d.index else None
        v = getattr(r, metric)
        lo, hi = getattr(r, f"{metric}_ci_low"), getattr(r, f"{metric}_ci_high")
        rows.append({
            "Group": r.group, "Rows": int(r.n), "Share": round(100 * r.share, 1),
            LABELS[metric]: metric_text(v, metric),
            band: "" if pd.isna(lo) else f"{metric_text(lo, metric)} to "
                                         f"{metric_text(hi, metric)}",
            "Difference to reference": "" if dd is None else metric_text(dd["difference"],
                                                                           metric),
            "Ratio to reference": "reference" if r.group == ref else (
                "" if dd is None or pd.isna(dd["ratio"]) else f"{dd['ratio']:.3f}"),
            "Verdict": VERDICT_ICON["reference"] if r.group == ref else (
                "" if dd is None or dd["verdict"] is None else VERDICT_ICON.get(dd["verdict"],
                                                                                "")),
            "Significant": "" if dd is None else ("yes" if dd["significant"] else "no"),
            "Adjusted p": "" if dd is None or pd.isna(dd["p_value_adjusted"]) else
            p_value(dd["p_value_adjusted"]),
            "Why": "" if dd is None else dd["verdict_reason"]})
    return pd.DataFrame(rows)


def _pick_metric(ctx):
    from views.common import _pick
    return _pick("Metric", list(SHOWN), "metric", "metric_pick", ctx,
                 fmt=lambda m: LABELS[m],
                 help="Mean error: is the model biased up or down for a group? MAE and "
                      "RMSE: how large are its misses? R²: how much of the variation does it "
                      "explain?")


def render_groups():
    ctx = _context("Group metrics")
    if ctx is None:
        return
    r = ctx.result
    c1, c2, c3 = st.columns(3)
    with c1:
        model = pick_model(ctx)
    with c2:
        attribute = pick_attribute(ctx)
    with c3:
        metric = _pick_metric(ctx)
    d = metric_definitions()[metric]
    st.caption(f"**{LABELS[metric]}.** {d['definition']} Interval: {d['interval']}; test: "
               f"{d['test']}.")
    order = r.group_order(attribute)
    ref = _reference(r, model, attribute)
    chart(rc.metric_chart(r.groups, model=model, attribute=attribute, metric=metric,
                          reference=ref, order=order, confidence=r.spec.confidence,
                          label=r.spec.label), key="reg_metric")
    if metric != "mean_error":
        chart(rc.metric_chart(r.groups, model=model, attribute=attribute,
                              metric="mean_error", reference=ref, order=order,
                              confidence=r.spec.confidence, label=r.spec.label),
              key="reg_mean_error")
    st.subheader("Per group")
    st.dataframe(shown(group_table(r, model, attribute, metric), "Group"), hide_index=True,
                 width="stretch")


def render_distributions():
    ctx = _context("Error distributions")
    if ctx is None:
        return
    r = ctx.result
    c1, c2 = st.columns(2)
    with c1:
        model = pick_model(ctx)
    with c2:
        attribute = pick_attribute(ctx)
    order = r.group_order(attribute)
    dist = r.distributions
    st.caption("Read off binned counts of each group's errors and true values (the rows "
               "themselves are not shown): the percentiles are exact to within one bin.")
    chart(rc.error_box_chart(dist["error_quantiles"], r.groups, model=model,
                             attribute=attribute, order=order, label=r.spec.label),
          key="reg_box")
    chart(rc.predicted_vs_actual_chart(dist["predicted_vs_actual"], model=model,
                                       attribute=attribute, order=order,
                                       label=r.spec.label), key="reg_pva")
    q = dist["error_quantiles"]
    q = q[(q["model"] == model) & (q["attribute"] == attribute)]
    st.dataframe(shown(pd.DataFrame({
        "Group": q["group"], "5th percentile": q["p05"].map(amount),
        "25th": q["p25"].map(amount), "Median error": q["median"].map(amount),
        "75th": q["p75"].map(amount), "95th": q["p95"].map(amount)}), "Group"),
        hide_index=True, width="stretch")


CHARTS = {"mean_error": "Mean error by group", "mae": "MAE by group",
          "rmse": "RMSE by group", "r2": "R² by group", "box": "Error distribution",
          "pva": "Predicted against true value"}


def chart_figure(result, kind: str, model: str, attribute: str):
    """The figure a chart download of a regression audit holds."""
    order = result.group_order(attribute)
    if kind in METRICS:
        return rc.metric_chart(result.groups, model=model, attribute=attribute, metric=kind,
                               reference=_reference(result, model, attribute), order=order,
                               confidence=result.spec.confidence, label=result.spec.label)
    if kind == "box":
        return rc.error_box_chart(result.distributions["error_quantiles"], result.groups,
                                  model=model, attribute=attribute, order=order,
                                  label=result.spec.label)
    return rc.predicted_vs_actual_chart(result.distributions["predicted_vs_actual"],
                                        model=model, attribute=attribute, order=order,
                                        label=result.spec.label)


def chart_picker(ctx):
    """The Export page's chart choice for a regression audit: (kind, model,
    attribute, figure)."""
    c1, c2, c3 = st.columns(3)
    with c1:
        kind = st.selectbox("Chart", list(CHARTS), format_func=CHARTS.get,
                            key="export_chart_regression")
    with c2:
        model = pick_model(ctx)
    with c3:
        attribute = pick_attribute(ctx)
    return kind, model, attribute, chart_figure(ctx.result, kind, model, attribute)


def render_help():
    """Help for a numeric outcome: the metrics, how gaps are judged, how to
    read the intervals."""
    ctx = st.session_state.get("ctx")
    spec = ctx.result.spec
    tol = Tolerance(spec.tolerance)
    st.title("Help")
    st.markdown(
        "**What this audit does.** The model predicts a number (here "
        f"{name(spec.label)}). For each group the audit compares the predictions with the "
        "true values: is the model biased up or down for the group (mean error), how large "
        "are its misses (MAE, RMSE), and how much of the group's variation does it explain "
        "(R²)? Every number is computed from sums per group, never from rows shown on a page.")
    st.markdown(
        "**Whom a gap disadvantages.** In the sidebar you say whether a higher prediction is "
        "a benefit for the person (a credit limit, a salary offer) or a harm (a price, a "
        "premium). With a benefit, a group the model under-predicts for (a lower mean error "
        "than the reference group's) is disadvantaged; with a harm, a group it over-predicts "
        "for is.")
    st.markdown(
        f"**Verdicts.** The mean error is signed, so it is judged by its difference to the "
        f"reference group and a Welch t-test, corrected for the many comparisons: a finding "
        f"when significant (high when the gap is at least {1 - spec.tolerance:.0%} of the "
        f"reference group's mean true value). The mean prediction, MAE, RMSE and R² are also "
        f"judged by their ratio to the reference: between {tol.band()} passes. Groups with "
        f"fewer than {spec.min_group_size} rows are not judged.")
    st.markdown(
        f"**Intervals** ({level(spec.confidence)}). Skewness-corrected t-intervals whose "
        "degrees of freedom shrink for heavy-tailed errors; in simulations they cover the "
        "true value 93% to 97% of the time for groups of 30 rows and more, except the RMSE "
        "of 30 rows of very skewed errors (about 92%).")
    st.subheader("The metrics")
    defs = metric_definitions()
    table(pd.DataFrame([{"Metric": d["label"], "Meaning": d["definition"],
                         "Formula": d["formula"], "Better": d["better"] or "(describes)",
                         "Interval": d["interval"]} for d in defs.values()]))
