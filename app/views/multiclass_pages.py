"""The pages of a multiclass audit (a triage level, a product tier): the
overview with the worst class per attribute, the group metrics of one class,
each class's verdicts and every group's confusion matrix, and the data.

Every number comes from :class:`fairness_core.multiclass_result.MulticlassAuditResult`;
this module lays it out."""
from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import streamlit as st

from fairness_core import charts
from fairness_core.audit import AuditResult
from fairness_core.counts import OVERALL
from fairness_core.formatting import count, level, num, pct, short, with_interval
from fairness_core.metrics import REGISTRY
from fairness_core.multiclass import CLASS_METRICS
from fairness_core.multiclass_charts import confusion_heatmaps, verdict_heatmap
from fairness_core.multiclass_result import verdict_matrix
from fairness_core.tolerance import Tolerance
from ui import SEVERITY_ICON, chart, md, metric_help, name, shown, table
from views.common import _pick, context, pick_attribute, pick_model

#: The metrics of the verdict matrices, in order: the share assigned a class,
#: then the rates among people of the same true class.
SHOWN = ("selection_rate", "tpr", "fpr", "ppv")
STATUS = {"pass": "✅ pass", "-": "⚪ not judged"}
SUMMARIES = {"demographic_parity": "Demographic parity", "equalized_odds": "Equalized odds",
             "equal_opportunity": "Equal opportunity"}


def header(ctx, title: str) -> None:
    st.title(title)
    r = ctx.result
    prov = r.provenance
    unit = "people" if r.spec.counts else "rows"
    st.caption(f"{name(ctx.loaded.name)}: {count(prov['rows_used'])} {unit} audited of "
               f"{count(prov['rows_read'])}; several classes: {len(r.classes)} values of "
               f"{name(r.spec.label)}, each audited one against the rest; tolerance "
               f"{Tolerance(r.spec.tolerance).band()}; minimum group size "
               f"{r.spec.min_group_size}; {level(r.spec.confidence)} intervals from "
               f"{count(r.spec.n_bootstrap)} bootstrap replicates (seed {r.spec.seed}).")
    for w in r.warnings:
        st.warning(ctx.say(w), icon="⚠️")


def _ctx(title: str):
    ctx = context()
    if ctx is not None:
        header(ctx, title)
    return ctx


def pick_class(ctx, where=st):
    """The class shown (kept across pages and in the session's choices)."""
    classes = [str(c) for c in ctx.result.classes]
    return _pick("Class", classes, "class_shown", "class_pick", ctx, where=where,
                 help="Each class is audited one against the rest: is a person assigned "
                      "this class or not?")


def _label(m: str) -> str:
    """A metric's name with its short form, once ("Precision (PPV)")."""
    lab, sh = REGISTRY[m].label, REGISTRY[m].short
    return lab if f"({sh})" in lab else f"{lab} ({sh})"


def pick_class_metric(ctx, where=st):
    return _pick("Metric", list(CLASS_METRICS), "class_metric", "class_metric_pick", ctx,
                 where=where, fmt=_label)


def verdict_table(result, model: str, attribute: str) -> pd.DataFrame:
    """Classes (rows) x metrics: how many groups fail, as shown on the pages."""
    vm = verdict_matrix(result, model, attribute, SHOWN)
    out = pd.DataFrame({"Class": vm["class"].astype(str)})
    def cell(v: str) -> str:
        if v in STATUS:
            return STATUS[v]
        return f"❌ fail: {v[v.index('(') + 1:-1]} group(s)"

    for m in SHOWN:
        out[_label(m)] = [cell(v) for v in vm[m]]
    return out


def worst_table(result, model: str) -> pd.DataFrame:
    w = result.worst[result.worst["model"] == model]
    rows = []
    for attr in result.spec.attribute_names():
        row = {"Attribute": attr}
        part = w[w["attribute"] == attr].set_index("summary")
        for s, label in SUMMARIES.items():
            if s in part.index and part.loc[s, "class"] is not None:
                row[f"{label}: worst class"] = str(part.loc[s, "class"])
                row[f"{label}: difference"] = num(part.loc[s, "difference"])
            else:
                row[f"{label}: worst class"] = "—"
                row[f"{label}: difference"] = ""
        rows.append(row)
    return pd.DataFrame(rows)


def group_summary_table(result, model: str, attribute: str) -> pd.DataFrame:
    gs = result.group_summary
    g = gs[(gs["model"] == model) & (gs["attribute"] == attribute)]
    rows = []
    for r in g.itertuples(index=False):
        rows.append({"Group": r.group, "Rows": int(r.n),
                     "Accuracy": with_interval(r.accuracy, r.accuracy_ci_low,
                                               r.accuracy_ci_high, "accuracy"),
                     "Macro TPR (balanced accuracy)": with_interval(
                         r.macro_tpr, r.macro_tpr_ci_low, r.macro_tpr_ci_high, "tpr"),
                     "Macro FPR": with_interval(r.macro_fpr, r.macro_fpr_ci_low,
                                                r.macro_fpr_ci_high, "fpr"),
                     "Macro PPV": with_interval(r.macro_ppv, r.macro_ppv_ci_low,
                                                r.macro_ppv_ci_high, "ppv")})
    return pd.DataFrame(rows)


def one_class(result, cls: str) -> SimpleNamespace:
    """The audit of one class as the binary pages read it (groups,
    disparities, spec, and the long table of its metrics)."""
    g = result.groups[result.groups["class"].astype(str) == cls].drop(columns="class")
    d = result.disparities[result.disparities["class"].astype(str) == cls].drop(
        columns="class")
    gm = g[g["attribute"] != OVERALL].reset_index(drop=True)
    return SimpleNamespace(groups=g, group_metrics=gm, disparities=d.reset_index(drop=True),
                           spec=result.spec, long=AuditResult.long_table(gm))


def _finding_lines(ctx, fs: list, limit: int = 12) -> None:
    for f in fs[:limit]:
        st.markdown(f"{SEVERITY_ICON[f['severity']]}: {ctx.say(f['statement'])}")
    if len(fs) > limit:
        with st.expander(f"All {len(fs)} findings"):
            for f in fs[limit:]:
                st.markdown(f"{SEVERITY_ICON[f['severity']]}: {ctx.say(f['statement'])}")


# --------------------------------------------------------------------------
# Pages
# --------------------------------------------------------------------------
def overview():
    ctx = _ctx("Fairness audit overview")
    if ctx is None:
        return
    r = ctx.result
    model = pick_model(ctx)
    mine = [f for f in r.findings if f.get("model") == model]
    fails = [f for f in mine if f["kind"] == "fail"]
    ov = r.group_summary[(r.group_summary["model"] == model)
                         & (r.group_summary["attribute"] == OVERALL)].iloc[0]
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Classes", len(r.classes))
    c2.metric("Accuracy", pct(ov["accuracy"]))
    c3.metric("Balanced accuracy (macro TPR)", pct(ov["macro_tpr"]))
    c4.metric("Gaps failing the tolerance", count(len(fails)))
    if fails:
        worst = fails[0]
        box = st.error if worst["severity"] in ("high", "medium") else st.warning
        box(f"**Most severe finding** ({SEVERITY_ICON[worst['severity']]}): "
            f"{ctx.say(worst['statement'])}", icon="🔎")
    else:
        st.success("No group fails the tolerance for any class of this model.", icon="✅")

    st.subheader("The worst class per attribute")
    st.caption("For each attribute, the class whose between-group gap is largest (fairlearn's "
               "difference on the yes/no question 'is a person assigned this class?'). "
               "Demographic parity compares the shares assigned the class; equalized odds the "
               "true and false positive rates, among people of the same true class.")
    table(shown(worst_table(r, model), "Attribute"))

    st.subheader("Verdicts per class")
    attribute = pick_attribute(ctx)
    st.caption("For each class and metric: ✅ every group of the attribute is within the "
               "tolerance band around the reference group; ❌ how many groups fail; ⚪ none "
               "could be judged (too few rows, or a class the group does not have).")
    table(verdict_table(r, model, attribute))

    st.subheader("Findings")
    counts = pd.Series([f["severity"] for f in mine]).value_counts()
    st.caption("Most severe first. " + ", ".join(
        f"{SEVERITY_ICON[s]}: {int(counts.get(s, 0))}" for s in SEVERITY_ICON) +
        ". Gaps among people of the same true class say whom the model misses or wrongly "
        "assigns more often; a gap in the share assigned a class takes no side, since being "
        "assigned a class can help or harm.")
    _finding_lines(ctx, mine)


def groups():
    ctx = _ctx("Group metrics")
    if ctx is None:
        return
    r = ctx.result
    c1, c2, c3, c4 = st.columns(4)
    with c1:
        model = pick_model(ctx)
    with c2:
        attribute = pick_attribute(ctx)
    with c3:
        cls = pick_class(ctx)
    with c4:
        metric = pick_class_metric(ctx)
    st.info(metric_help(metric) + f" Here the positive decision is being assigned the class "
            f"{name(repr(cls))}, and the positive outcome is having it as the true class.",
            icon="📏")
    one = one_class(r, cls)
    order = r.group_order(attribute)
    left, right = st.columns(2)
    with left:
        chart(charts.group_metric_chart(one.long, one.disparities, model=model,
                                        attribute=attribute, metric=metric,
                                        tolerance=r.spec.tolerance, order=order,
                                        confidence=r.spec.confidence), key="mc_group_chart")
    with right:
        chart(charts.disparity_chart(one.disparities, model=model, attribute=attribute,
                                     metric=metric, tolerance=r.spec.tolerance, order=order,
                                     confidence=r.spec.confidence), key="mc_disparity_chart")
    from views.groups_page import group_table
    st.subheader(f"Per-group table for the class {name(repr(cls))}")
    st.dataframe(shown(group_table(one, model, attribute, metric), "Group"), hide_index=True,
                 width="stretch")
    st.subheader("Accuracy and macro averages per group (every class)")
    st.caption(f"Accuracy: the share of the group predicted its true class. Macro rates: the "
               f"mean over the classes of the one-against-the-rest rates; {level(r.spec.confidence)} "
               "intervals in brackets.")
    st.dataframe(shown(group_summary_table(r, model, attribute), "Group"), hide_index=True,
                 width="stretch")


def classes():
    ctx = _ctx("Classes")
    if ctx is None:
        return
    r = ctx.result
    c1, c2, c3 = st.columns(3)
    with c1:
        model = pick_model(ctx)
    with c2:
        attribute = pick_attribute(ctx)
    with c3:
        cls = pick_class(ctx)
    order = r.group_order(attribute)
    st.subheader(f"Verdicts for the class {name(repr(cls))}")
    labels = {m: f"{REGISTRY[m].short}" for m in CLASS_METRICS}
    d = r.disparities
    chart(verdict_heatmap(d.assign(**{"class": d["class"].astype(str)}), model=model,
                          attribute=attribute, cls=cls, metrics=list(CLASS_METRICS),
                          labels=labels, order=order), key="mc_verdicts")
    st.caption("Each cell: the group's ratio to the reference group on one metric of the "
               "yes/no question 'assigned this class or not?'.")
    st.subheader("Confusion matrix per group")
    st.caption("Rows: the true class; columns: the predicted class. Each row adds up to 100% "
               "of the group's people of that true class; the counts are in brackets. Compare "
               "the diagonal between groups: a lower share there means the model misses that "
               "class more often for the group.")
    chart(confusion_heatmaps(r.confusion, model=model, attribute=attribute, classes=r.classes,
                             order=order), key="mc_confusion")


def data():
    ctx = _ctx("The data")
    if ctx is None:
        return
    r = ctx.result
    prov = r.provenance
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Rows read", count(prov["rows_read"]))
    c2.metric("Rows audited", count(prov["rows_used"]))
    c3.metric("Rows left out", count(prov["rows_dropped"]))
    c4.metric("Classes", len(r.classes))
    if prov["dropped_reasons"]:
        st.caption("Left out: " + "; ".join(f"{n:,} with {ctx.say(why)}"
                                             for why, n in prov["dropped_reasons"].items()))
    attribute = pick_attribute(ctx)
    conf = r.confusion
    conf = conf[(conf["model"] == r.spec.models[0]) & (conf["attribute"] == attribute)]
    true = conf.groupby(["group", "true_class"], sort=False)["n"].sum().unstack(fill_value=0)
    true = true.reindex(index=[g for g in r.group_order(attribute) if g in true.index],
                        columns=r.classes, fill_value=0)
    n = true.sum(axis=1)
    out = pd.DataFrame({"Group": true.index, "Rows": [int(x) for x in n]})
    for c in r.classes:
        out[f"True {c}"] = [pct(v / t) if t else "" for v, t in zip(true[c], n)]
    out["Size"] = ["⚠️ below the minimum: no verdict" if x < r.spec.min_group_size else "ok"
                   for x in n]
    st.caption("Who is in the table: each group's rows and the share of each true class. "
               "The audit compares groups within each true class, so groups may differ "
               "here without any unfairness.")
    st.dataframe(shown(out, "Group"), hide_index=True, width="stretch")


def export_charts(ctx) -> None:
    """The chart downloads of a multiclass audit (the Export page's charts)."""
    r = ctx.result
    c1, c2, c3 = st.columns(3)
    with c1:
        model = pick_model(ctx)
    with c2:
        attribute = pick_attribute(ctx)
    with c3:
        cls = pick_class(ctx)
    kinds = {"confusion": "Confusion matrices per group",
             "verdicts": f"Verdicts of the class {cls} per group"}
    kind = st.radio("Chart", list(kinds), format_func=lambda k: short(kinds[k]),
                    key="mc_export_chart", horizontal=True)
    if kind == "confusion":
        fig = confusion_heatmaps(r.confusion, model=model, attribute=attribute,
                                 classes=r.classes, order=r.group_order(attribute))
    else:
        d = r.disparities
        fig = verdict_heatmap(d.assign(**{"class": d["class"].astype(str)}), model=model,
                              attribute=attribute, cls=cls, metrics=list(CLASS_METRICS),
                              labels={m: REGISTRY[m].short for m in CLASS_METRICS},
                              order=r.group_order(attribute))
    fig_html = fig.to_html(full_html=True, include_plotlyjs=True).encode("utf-8")
    st.download_button("Download the chart (HTML)", fig_html,
                       file_name=charts.file_name(kind, cls if kind == "verdicts" else "",
                                                  attribute, model, ext="html"),
                       mime="text/html", key="dl_mc_chart_html")
    cols = st.columns(3)
    for col, fmt in zip(cols, ("png", "svg", "pdf")):
        want = f"want_mc_{fmt}"
        try:
            data = charts.figure_bytes(fig, fmt) if st.session_state.get(want) else None
        except charts.ExportUnavailable as err:
            col.caption(md(str(err)))
            continue
        if data is None:
            col.button(f"Prepare {fmt.upper()}", key=f"prep_mc_{fmt}",
                       on_click=lambda w=want: st.session_state.update({w: True}))
        else:
            col.download_button(f"Download {fmt.upper()}", data,
                                file_name=charts.file_name(kind, attribute, model, ext=fmt),
                                key=f"dl_mc_chart_{fmt}")
