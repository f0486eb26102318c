"""Overview: the verdict matrix, headline summaries and the findings."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from fairness_core.formatting import level, with_interval
from fairness_core import rollup
from fairness_core.metrics import REGISTRY, available_metrics, key_metrics
from ui import SEVERITY_ICON, shown, table
from views.common import context, pick_model

ORDER = {"benefit": "A positive decision is a benefit here, so the rates of qualified people "
                    "who miss it (false negative and false omission rates) come first.",
         "harm": "A positive decision is a harm here, so the rates of people wrongly given it "
                 "(false positive and false discovery rates) come first."}
STATUS = {"fail": "❌ fail", "pass": "✅ pass", "insufficient": "⚪ not judged", "none": "—"}


def verdict_matrix(result, model: str) -> pd.DataFrame:
    """The core's verdict roll-up, laid out with icons and words: one row
    per attribute, one column per key metric of the audit's kind of
    decision (benefit or harm)."""
    keys = available_metrics(result.spec.labelled, key_metrics(result.spec.positive_decision))
    vm = rollup.verdict_matrix(result.disparities, model, result.spec.attribute_names(), keys)
    out = pd.DataFrame({"Attribute": vm["attribute"], "Reference": vm["reference"]})
    for m in keys:
        out[REGISTRY[m].label] = [STATUS[s] + (f": {d}" if d else "")
                                  for s, d in zip(vm[m], vm[f"{m}_detail"])]
    return out


SUMMARIES = {"demographic_parity": "Demographic parity", "equalized_odds": "Equalized odds",
             "equal_opportunity": "Equal opportunity"}


def summary_table(result, model: str) -> pd.DataFrame:
    s = result.summary[result.summary["model"] == model]
    rows = []
    names = SUMMARIES if result.spec.labelled else {"demographic_parity": "Demographic parity"}
    for r in s.itertuples(index=False):
        row = {"Attribute": r.attribute, "Groups": r.n_groups}
        for name, label in names.items():
            for kind in ("difference", "ratio"):
                col = f"{name}_{kind}"
                row[f"{label} {kind}"] = with_interval(
                    getattr(r, col), getattr(r, f"{col}_ci_low", None),
                    getattr(r, f"{col}_ci_high", None))
        row["Failing / significant"] = f"{r.n_fail} / {r.n_fail_significant}"
        row["Not judged"] = r.n_insufficient
        rows.append(row)
    return pd.DataFrame(rows)


def statement(f: dict) -> str:
    """A finding's sentence without the model's name (this page shows one model)."""
    return f.get("statement") or f["text"]


def render():
    ctx = context("Fairness audit overview")
    if ctx is None:
        return
    r = ctx.result
    model = pick_model(ctx)
    for f in r.findings:
        if f["kind"] == "no_outcome":
            st.info(f["statement"], icon="ℹ️")
    mine = [f for f in r.findings if f.get("model") == model]
    worst = next((f for f in mine if f["kind"] in ("not_judged", "fail")), None)
    if worst is not None:
        box = st.error if worst["severity"] in ("high", "medium") else st.warning
        box(f"**Most severe finding** ({SEVERITY_ICON[worst['severity']]}): "
            f"{ctx.say(statement(worst))}", icon="🔎")
    else:
        st.success("No group fails the tolerance for this model.", icon="✅")

    st.subheader("Verdicts by attribute and metric")
    st.caption("For each attribute and metric: does every group stay within the tolerance "
               "band around the reference group? ❌ fail counts the groups outside the band and "
               "how many of those gaps are statistically significant after correction; "
               "⚪ not judged means too few rows or an undefined rate. "
               + (ORDER[r.spec.positive_decision] if r.spec.labelled else
                  "Without a true outcome only the selection rate is compared."))
    table(shown(verdict_matrix(r, model), "Attribute", "Reference"))

    st.subheader("Headline summaries (fairlearn definitions)")
    st.caption(f"Between-group difference (largest minus smallest, 0 = equal) and ratio "
               f"(smallest over largest, 1 = equal) across each attribute's groups, with "
               f"{level(r.spec.confidence)} bootstrap intervals in brackets.")
    table(shown(summary_table(r, model), "Attribute"))

    st.subheader("Findings")
    counts = pd.Series([f["severity"] for f in mine]).value_counts()
    st.caption("Most severe first. " + ", ".join(
        f"{SEVERITY_ICON[s]}: {int(counts.get(s, 0))}" for s in SEVERITY_ICON) +
        ". Severity: high and medium gaps fail the tolerance and are significant (high: far "
        "outside the band); low gaps fail the tolerance but may be noise.")
    first = mine[:12]
    for f in first:
        st.markdown(f"{SEVERITY_ICON[f['severity']]}: {ctx.say(statement(f))}")
    if len(mine) > len(first):
        with st.expander(f"All {len(mine)} findings for this model"):
            for f in mine[len(first):]:
                st.markdown(f"{SEVERITY_ICON[f['severity']]}: {ctx.say(statement(f))}")
