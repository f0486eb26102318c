"""Overview: the verdict matrix, headline summaries and the findings."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from fairness_core.metrics import REGISTRY
from ui import SEVERITY_ICON, md, num
from views.common import context, pick_model

KEY_METRICS = ["selection_rate", "tpr", "fpr", "fnr", "ppv", "accuracy"]


def verdict_cell(d: pd.DataFrame) -> str:
    if not len(d):
        return "—"
    fails = d[d["verdict"] == "fail"]
    n_ins = int((d["verdict"] == "insufficient").sum())
    extra = f" ({n_ins} not judged)" if n_ins else ""
    if len(fails):
        sig = int(fails["significant"].sum()) if "significant" in fails else 0
        what = f"{len(fails)} group{'s' if len(fails) > 1 else ''}"
        return f"❌ fail: {what}, {sig} significant{extra}"
    if (d["verdict"] == "pass").any():
        return f"✅ pass{extra}"
    return "⚪ not judged"


def verdict_matrix(result, model: str) -> pd.DataFrame:
    d = result.disparities[result.disparities["model"] == model]
    rows = []
    for attr in result.spec.attribute_names():
        da = d[d["attribute"] == attr]
        row = {"Attribute": attr,
               "Reference": str(da["reference"].iloc[0]) if len(da) else ""}
        for m in KEY_METRICS:
            row[REGISTRY[m].label] = verdict_cell(da[da["metric"] == m])
        rows.append(row)
    return pd.DataFrame(rows)


def summary_table(result, model: str) -> pd.DataFrame:
    s = result.summary[result.summary["model"] == model]
    rows = []
    for r in s.itertuples(index=False):
        def ci(name):
            lo, hi = getattr(r, f"{name}_ci_low", None), getattr(r, f"{name}_ci_high", None)
            return f"{num(getattr(r, name))} ({num(lo)} to {num(hi)})"
        rows.append({"Attribute": r.attribute, "Groups": r.n_groups,
                     "Demographic parity difference": ci("demographic_parity_difference"),
                     "Demographic parity ratio": ci("demographic_parity_ratio"),
                     "Equalized odds difference": ci("equalized_odds_difference"),
                     "Equalized odds ratio": ci("equalized_odds_ratio"),
                     "Equal opportunity difference": ci("equal_opportunity_difference"),
                     "Equal opportunity ratio": ci("equal_opportunity_ratio"),
                     "Failing / significant": f"{r.n_fail} / {r.n_fail_significant}",
                     "Not judged": r.n_insufficient})
    return pd.DataFrame(rows)


def _text(f: dict, model: str) -> str:
    """A finding's text without the model prefix (this page shows one model)."""
    t = f["text"]
    prefix = f"Model {model!r}: "
    return t[len(prefix)].upper() + t[len(prefix) + 1:] if t.startswith(prefix) else t


def render():
    ctx = context("Fairness audit overview")
    if ctx is None:
        return
    r = ctx.result
    model = pick_model(ctx)
    mine = [f for f in r.findings if f.get("model") == model]
    worst = next((f for f in mine if f["kind"] == "fail"), None)
    if worst is not None:
        box = st.error if worst["severity"] in ("high", "medium") else st.warning
        box(f"**Most severe finding** ({SEVERITY_ICON[worst['severity']]}): "
            f"{md(_text(worst, model))}", icon="🔎")
    else:
        st.success("No group fails the tolerance for this model.", icon="✅")

    st.subheader("Verdicts by attribute and metric")
    st.caption("For each attribute and metric: does every group stay within the tolerance "
               "band around the reference group? ❌ fail counts the groups outside the band and "
               "how many of those gaps are statistically significant after correction; "
               "⚪ not judged means too few rows or an undefined rate.")
    st.dataframe(verdict_matrix(r, model), hide_index=True, width="stretch")

    st.subheader("Headline summaries (fairlearn definitions)")
    st.caption(f"Between-group difference (largest minus smallest, 0 = equal) and ratio "
               f"(smallest over largest, 1 = equal) across each attribute's groups, with "
               f"{int(r.spec.confidence * 100)}% bootstrap intervals in brackets.")
    st.dataframe(summary_table(r, model), hide_index=True, width="stretch")

    st.subheader("Findings")
    counts = pd.Series([f["severity"] for f in mine]).value_counts()
    st.caption("Most severe first. " + ", ".join(
        f"{SEVERITY_ICON[s]}: {int(counts.get(s, 0))}" for s in SEVERITY_ICON) +
        ". Severity: high and medium gaps fail the tolerance and are significant (high: far "
        "outside the band); low gaps fail the tolerance but may be noise.")
    shown = mine[:12]
    for f in shown:
        st.markdown(f"{SEVERITY_ICON[f['severity']]}: {md(_text(f, model))}")
    if len(mine) > len(shown):
        with st.expander(f"All {len(mine)} findings for this model"):
            for f in mine[len(shown):]:
                st.markdown(f"{SEVERITY_ICON[f['severity']]}: {md(_text(f, model))}")
