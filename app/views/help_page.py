"""Help: the metrics, how to choose one, how to read intervals and verdicts."""
from __future__ import annotations

import dataclasses

import pandas as pd
import streamlit as st

from fairness_core import AuditSpec
from fairness_core.formatting import count, level
from fairness_core.metrics import REGISTRY, key_metrics
from fairness_core.tolerance import Tolerance

CHOICES = {
    "The decision itself is a benefit or a burden everyone should get at similar rates "
    "(e.g. job interviews, ads shown)": ["selection_rate"],
    "The decision is a benefit that people who qualify should get equally (e.g. loans for "
    "people who will repay)": ["fnr", "for", "tpr"],
    "The decision is a harm that people who do not deserve it should not get more often "
    "(e.g. flagged as high risk, sent to an investigation)": ["fpr", "fdr"],
    "Both kinds of error matter (e.g. medical screening)": ["tpr", "fpr", "error_rate"],
    "A positive decision should mean the same thing in every group (e.g. a risk score "
    "acted on by people)": ["ppv", "npv"],
}


CORRECTIONS = {"bh": "Benjamini-Hochberg", "holm": "Holm"}
#: The situation that matches the audit's kind of positive decision.
SITUATION = {"benefit": 1, "harm": 2}
SIDE = {1: "better for the person", -1: "worse for the person", None: "no side"}


def settings() -> tuple[dict, bool]:
    """The current audit's settings (or the defaults when there is no audit),
    and whether they come from an audit."""
    ctx = st.session_state.get("ctx")
    if ctx is not None and ctx.result is not None:
        return dataclasses.asdict(ctx.result.spec), True
    return {f.name: f.default for f in dataclasses.fields(AuditSpec)}, False


def render():
    spec, audited = settings()
    where = "in this audit" if audited else "by default"
    tolerance = Tolerance(spec["tolerance"])
    rule = ", the four-fifths rule" if tolerance.four_fifths else ""
    correction = CORRECTIONS.get(spec["correction"], spec["correction"])
    st.title("Help")
    st.markdown(
        "**What this tool does.** It compares how a model treats groups of people, such as "
        "women and men, using a table of the model's decisions and the true outcomes. For "
        "each group it counts true and false positives and negatives; every rate below is "
        "built from those four counts, exactly as fairlearn and scikit-learn define them.")
    st.markdown(
        "**Without a true outcome.** When no outcome is known yet, choose *(no true outcome)* "
        "as the label: the audit then compares the decisions alone, that is how often each "
        "group is given the positive decision (selection rate, demographic parity), with "
        "intervals and tests, and, for score columns, each group's score distribution. "
        "Error rates, precision, accuracy, equalized odds, AUC and calibration need the true "
        "outcome and are then not shown at all.")
    st.subheader("Which metric should I look at?")
    decision = spec.get("positive_decision") or "benefit"
    keys = key_metrics(decision)
    if audited and spec.get("label") is None:
        st.info(f"A positive decision is a **{decision}** for the person {where}. There is "
                "no true outcome in this audit, so the selection rate (demographic parity) "
                "is the one metric it can show.")
    else:
        st.info(f"A positive decision is a **{decision}** for the person {where} "
                f"(the sidebar's choice). Look first at: "
                + ", ".join(REGISTRY[m].label.lower() for m in keys) + ".")
    if "help_choice" not in st.session_state:
        st.session_state["help_choice"] = list(CHOICES)[SITUATION[decision]]
    situation = st.radio("Which describes your model's decision best?", list(CHOICES),
                         key="help_choice")
    for m in CHOICES[situation]:
        st.success(f"**{REGISTRY[m].label}**: {REGISTRY[m].meaning}")
    from fairness_core.multiclass_result import EXPLANATION
    st.subheader("Several classes (a triage level, a product tier)")
    for paragraph in EXPLANATION:
        st.markdown(paragraph)
    st.subheader("Reading verdicts and significance")
    st.markdown(
        "- Each group is compared with its attribute's **reference group** (by default the "
        "largest). The **ratio** is the group's rate divided by the reference's.\n"
        "- **Verdict** (is the gap big enough to matter?): *pass* when the ratio lies within "
        f"the tolerance band ({tolerance.band()} {where}{rule}), *fail* outside it, and "
        "*not judged* when the group or the reference has fewer rows than the minimum group "
        "size, or the rate is undefined (for example a false positive rate in a group with "
        "no true negatives). An undefined rate is never shown as 0.\n"
        "- **Significance** (is the gap likely real, or noise?): every gap is tested (a "
        "two-proportion test, or Fisher's exact test for small counts), and the p-values of "
        f"all tests in the audit are corrected together ({correction} {where}), so "
        "that auditing many groups and metrics does not produce false alarms.\n"
        "- The two answers are shown side by side. A gap that **fails and is significant** "
        "is a finding of high or medium severity. A gap that fails but is **not "
        "significant** is low severity: it may be noise, and the tool estimates how many "
        "more rows would settle it.\n"
        f"- **Intervals** ({level(spec['confidence'])} {where}): for a single group's rate, "
        "the Wilson score interval; for balanced accuracy, F1, weighted data, differences, "
        "ratios and the summaries, a bootstrap percentile interval "
        f"({count(spec['n_bootstrap'])} replicates drawn from the count table, seeded so "
        "that the same data gives the same numbers). If an interval for a ratio contains 1, "
        "the data are consistent with no gap.")
    st.subheader("All metrics")
    st.caption(f"The key metrics for a positive decision that is a {decision} first.")
    order = keys + [n for n in REGISTRY if n not in keys]
    rows = [{"Metric": m.label, "Short": m.short, "Meaning": m.meaning,
             "When it matters": m.matters_when,
             "Higher is": SIDE[m.direction(decision)] if m.judged else "describes the data",
             "Also called": ", ".join(f"{k}: {v}" for k, v in m.aliases.items())}
            for m in (REGISTRY[n] for n in order)]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    st.subheader("Privacy")
    st.markdown(
        "An uploaded file stays in the memory of your browser session on the server that "
        "runs this dashboard. It is not written to disk, not logged, and not sent anywhere; "
        "usage statistics are turned off. Closing the tab ends the session.")
