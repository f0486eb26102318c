"""Compare: this audit against an earlier one (its JSON export), with the
change of every group's rates and gaps, intervals and tests.

The earlier audit's JSON stays in this session's memory only."""
from __future__ import annotations

import hashlib

import streamlit as st

import state
from fairness_core import InputError, charts, exports
from fairness_core.compare import change_table, compare_audits, read_audit
from fairness_core.metrics import REGISTRY, available_metrics
from ui import chart, shown
from views.common import context, pick_attribute, pick_model

BASELINE = "compare_baseline"
ICON = {"worse": "🔴 Worse", "better": "🟢 Better", "info": "ℹ️ No significant change"}


def _load():
    """Read the uploaded JSON once (on upload), into session memory."""
    up = st.session_state.get("compare_upload")
    if up is None:
        st.session_state.pop(BASELINE, None)
        return
    data = up.getvalue()
    try:
        snap = read_audit(data, name=up.name)
        st.session_state[BASELINE] = (hashlib.sha256(data).hexdigest(), snap, None)
    except InputError as err:
        st.session_state[BASELINE] = (None, None, err.message)


def comparison(ctx):
    """The comparison of this audit with the earlier audit loaded on this
    page, or None (none loaded, or it could not be read).  Raises
    InputError when the two audits do not match."""
    got = st.session_state.get(BASELINE)
    if got is None or got[1] is None:
        return None
    sha, snap, _ = got
    r = ctx.result
    return state.memo(("compare", sha, ctx.loaded.sha256, r.spec.to_json()),
                      lambda: compare_audits(snap, r))


def render():
    ctx = context("Compare with an earlier audit")
    if ctx is None:
        return
    r = ctx.result
    st.caption("Did the gap close? Load the JSON of an earlier audit of the same design (the "
               "Export page's JSON, or 'fairness-audit ... --json'): every group's rates and "
               "every gap to the reference are compared with this audit, as two independent "
               "samples, with intervals and tests corrected for the number of comparisons.")
    if ctx.uploads_off:
        st.info("Loading an earlier audit is turned off, like every upload: see the message "
                "under 'Upload your own file' in the sidebar.")
        return
    st.file_uploader("Earlier audit (JSON)", type=["json"], key="compare_upload",
                     on_change=_load,
                     help="It stays in this browser session's memory on the server: it is "
                          "never written to disk.")
    got = st.session_state.get(BASELINE)
    if got is None:
        return
    sha, snap, error = got
    if error:
        st.error(ctx.say(error), icon="⚠️")
        return
    try:
        comp = comparison(ctx)
    except InputError as err:
        st.error(ctx.say(err.message), icon="⚠️")
        return
    ctx.names += [snap.name, *snap.groups["group"].unique()]
    for w in comp.warnings:
        st.warning(ctx.say(w), icon="⚠️")
    s = comp.settings
    st.caption(f"Earlier audit: {ctx.say(snap.name)}"
               + (f", made {ctx.say(snap.created)}" if snap.created else "")
               + f". {s['n_tests']:,} changes tested. {ctx.say(s['method'])} The Export "
               "page's report and JSON include this comparison.")

    st.subheader("Findings")
    for f in comp.findings[:12]:
        st.markdown(f"{ICON[f['severity']]}: {ctx.say(f['text'])}")
    if len(comp.findings) > 12:
        with st.expander(f"All {len(comp.findings)} findings"):
            for f in comp.findings[12:]:
                st.markdown(f"{ICON[f['severity']]}: {ctx.say(f['text'])}")

    st.subheader("Before and after, group by group")
    models = list(dict.fromkeys(comp.changes["model"]))
    c1, c2, c3 = st.columns(3)
    with c1:
        model = pick_model(ctx, options=models)
    with c2:
        attribute = pick_attribute(ctx)
    metrics = [m for m in available_metrics(r.spec.labelled)
               if m in set(comp.changes["metric"])]
    with c3:
        metric = st.selectbox("Metric", metrics, key="compare_metric",
                              format_func=lambda m: f"{REGISTRY[m].label} ({REGISTRY[m].short})")
    if model in models and attribute in set(comp.changes["attribute"]):
        chart(charts.comparison_chart(comp.changes, model=model, attribute=attribute,
                                      metric=metric, confidence=s["confidence"],
                                      order=r.group_order(attribute)),
              key="compare_chart")
    else:
        st.info("This attribute or model is not in the earlier audit.")

    st.subheader("Changes")
    only = st.toggle("Only the significant changes", value=True, key="compare_only_sig")
    table = change_table(comp, significant_only=only)
    if len(table):
        st.dataframe(shown(table, "model", "attribute", "group", "what"), hide_index=True,
                     width="stretch")
    else:
        st.caption("No significant change.")
    st.download_button("Download every change (CSV)", exports.to_csv_bytes(comp.tidy()),
                       file_name=charts.file_name("audit-comparison", ext="csv"),
                       mime="text/csv", key="dl_comparison")
