"""Models: performance against disparity, side by side."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from fairness_core import charts
from fairness_core import InputError
from fairness_core.formatting import auc as fmt_auc
from fairness_core.formatting import num, pct, short
from fairness_core.metrics import NO_OUTCOME
from ui import chart, shown
from views.common import context, pick_attribute, pick_model

DISPARITY = {"demographic_parity_difference": "Demographic parity difference",
             "equalized_odds_difference": "Equalized odds difference",
             "equal_opportunity_difference": "Equal opportunity difference",
             "demographic_parity_ratio": "Demographic parity ratio",
             "equalized_odds_ratio": "Equalized odds ratio"}


def comparison_table(result, attribute: str) -> pd.DataFrame:
    o = result.overall.set_index("model")
    s = result.summary[result.summary["attribute"] == attribute].set_index("model")
    rows = []
    for m in result.spec.models:
        r, q = o.loc[m], s.loc[m]
        if not result.spec.labelled:  # the decisions alone: no accuracy, no error rates
            rows.append({"Model": m, "Selection rate": pct(r["selection_rate"]),
                         "DP difference": num(q["demographic_parity_difference"]),
                         "DP ratio": num(q["demographic_parity_ratio"]),
                         "Failing disparities": int(q["n_fail"]),
                         "of which significant": int(q["n_fail_significant"])})
            continue
        rows.append({
            "Model": m, "Accuracy": pct(r["accuracy"]), "Balanced accuracy":
            pct(r["balanced_accuracy"]), "Selection rate": pct(r["selection_rate"]),
            "TPR": pct(r["tpr"]), "FPR": pct(r["fpr"]),
            "AUC": fmt_auc(r["auc"], r.get("auc_error_bound")) if "auc" in r
            and pd.notna(r.get("auc")) else "",
            "DP difference": num(q["demographic_parity_difference"]),
            "EO difference": num(q["equalized_odds_difference"]),
            "Failing disparities": int(q["n_fail"]),
            "of which significant": int(q["n_fail_significant"]),
        })
    return pd.DataFrame(rows)


def render():
    ctx = context("Models")
    if ctx is None:
        return
    r = ctx.result
    c1, c2, c3 = st.columns(3)
    with c1:
        attribute = pick_attribute(ctx)
    options = list(DISPARITY) if r.spec.labelled else [
        d for d in DISPARITY if d.startswith("demographic_parity")]
    with c2:
        disparity = st.selectbox("Disparity measure", options, format_func=DISPARITY.get,
                                 key="model_disparity")
    with c3:
        pick_model(ctx)
        st.caption("The model chosen here is the one the other pages show.")
    if not r.spec.labelled:
        st.caption(f"Accuracy and error rates are {NO_OUTCOME}: the chart sets each model's "
                   "overall selection rate against its disparity.")
    chart(charts.model_scatter(r.overall, r.summary, attribute=attribute,
                               disparity=disparity, confidence=r.spec.confidence,
                               performance="accuracy" if r.spec.labelled else
                               "selection_rate"),
          key="model_scatter")
    st.dataframe(shown(comparison_table(r, attribute), "Model"), hide_index=True,
                 width="stretch")
    paired_section(ctx, attribute)


def paired_section(ctx, attribute: str):
    """Two models on the same rows: McNemar's test group by group."""
    from fairness_core.compare import paired_table

    r = ctx.result
    st.subheader("Two models on the same rows")
    st.caption("Both models decided for the same people, so their rates are compared pair by "
               "pair: only the rows where the two decisions differ carry evidence (McNemar's "
               "test, corrected for the number of comparisons; Bonett-Price intervals of the "
               "difference). Rates among the people a model selects (precision) are left out: "
               "each model selects other people.")
    models = list(r.spec.models)
    c1, c2 = st.columns(2)
    a = c1.selectbox("First model", models, index=0, key="paired_a", format_func=short)
    b = c2.selectbox("Second model", [m for m in models if m != a], index=0, key="paired_b",
                     format_func=short)
    import state
    try:
        pairs = state.paired(ctx.loaded, ctx.spec, r, a, b)
    except InputError as err:
        st.error(ctx.say(err.message), icon="⚠️")
        return
    st.dataframe(paired_table(pairs, attribute, r.spec.confidence), hide_index=True,
                 width="stretch")
