"""Mitigation: what per-group thresholds would cost (a preview read off the
score counts; see :mod:`fairness_core.mitigation`)."""
from __future__ import annotations

import streamlit as st

import state
from fairness_core import charts
from fairness_core.errors import InputError
from fairness_core.metrics import REGISTRY
from fairness_core.mitigation import (CAVEAT, CONSTRAINT_WORDS, CONSTRAINTS, OBJECTIVES,
                                      before_after_table, mitigate_auditor)
from ui import chart, md, shown, table
from views.common import context, header, needs_outcome_note, pick_attribute, pick_model


def preview(ctx, model: str, attribute: str, constraint: str, objective: str,
            randomised: bool):
    """The preview for these choices, once per session (from the counts)."""
    r = ctx.result
    threshold = r.provenance["thresholds"][model]["threshold"]
    key = ("mitigation", ctx.loaded.sha256, r.spec.to_json(), model, attribute, constraint,
           objective, randomised, threshold)

    def run(auditor):
        return mitigate_auditor(auditor, spec=r.spec, model=model, attribute=attribute,
                                constraint=constraint, objective=objective,
                                randomised=True if randomised else None,
                                thresholds={model: threshold})
    return state.memo(key, lambda: state.with_auditor(ctx.loaded, r.spec, run))


def render():
    ctx = context()
    if ctx is None:
        return
    r = ctx.result
    if not r.spec.scores:
        st.info("Choose a score column in the sidebar to preview per-group thresholds.")
        return
    header(ctx, "Mitigation preview")
    st.warning(md(CAVEAT), icon="⚖️")
    if needs_outcome_note(ctx, "A mitigation preview"):
        return
    c1, c2, c3, c4 = st.columns(4)
    with c1:
        model = pick_model(ctx, options=r.spec.scores, key="score_model_pick")
    with c2:
        attribute = pick_attribute(ctx)
    with c3:
        constraint = st.selectbox("Constraint", list(CONSTRAINTS), key="mitigation_constraint",
                                  format_func=lambda c: CONSTRAINT_WORDS[c].capitalize(),
                                  help="Which rates every group should have within the "
                                       "tolerance band of the reference group's.")
    with c4:
        objective = st.selectbox("Keep as high as possible", list(OBJECTIVES),
                                 key="mitigation_objective",
                                 format_func=lambda o: REGISTRY[o].label + " (all rows)")
    eo = constraint == "equalized_odds"
    randomised = st.checkbox(
        "Allow randomised thresholds (a lottery between a few cut-offs per group)",
        value=eo, disabled=eo, key=f"mitigation_randomised_{eo}",
        help="Equalized odds needs them: one threshold per group rarely gives equal true and "
             "false positive rates at once. For the other constraints they can do a little "
             "better than one threshold, at the price of a rule that is harder to explain.")
    try:
        m = preview(ctx, model, attribute, constraint, objective, randomised or eo)
    except InputError as exc:
        st.error(ctx.say(exc.message))
        return
    (st.info if m.feasible and not m.degenerate else st.error)(ctx.say(m.summary))
    label = REGISTRY[objective].label
    k1, k2, k3 = st.columns(3)
    k1.metric(f"{label} today", f"{m.objective_before:.2%}")
    k2.metric(f"{label} with these thresholds", f"{m.objective_after:.2%}",
              delta=f"{-m.cost * 100:+.2f} points")
    k3.metric("Tolerance", f"{m.tolerance:g}",
              help="The audit's tolerance band (the sidebar): each group's rate divided by "
                   "the reference group's must lie inside it.")
    st.subheader("Thresholds and rates per group, today and after")
    d = m.to_dict()
    table(shown(before_after_table(d), "Group"))
    st.caption(ctx.say(" ".join(m.notes + [m.intervals])))
    if len(m.tradeoff):
        st.subheader("The trade-off")
        chart(charts.tradeoff_chart(m.tradeoff, objective=objective, attribute=attribute,
                                    constraint_words=CONSTRAINT_WORDS[constraint]),
              key="mitigation_tradeoff")
        st.caption("Each point is the best set of thresholds for one tolerance, from 0.5 up "
                   "to 1 (exactly equal rates); further right is fairer by this constraint, "
                   "higher keeps more of the objective.")
