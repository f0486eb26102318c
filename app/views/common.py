"""What every results page shares: the context, and the model / attribute /
metric pickers whose choices persist across pages and in the URL."""
from __future__ import annotations

import streamlit as st

import state
from fairness_core.formatting import count, level, short
from fairness_core.metrics import DISPARITY_METRICS, NO_OUTCOME, REGISTRY, available_metrics
from fairness_core.tolerance import Tolerance
from ui import name


def context(title: str | None = None):
    """The sidebar's context, or None (with a hint) when there is no audit;
    with a ``title``, the page's header is drawn too."""
    ctx = st.session_state.get("ctx")
    if ctx is None or ctx.result is None:
        if ctx is not None and ctx.errors:
            st.warning("The audit cannot run yet: see the message in the sidebar on the left.",
                       icon="👈")
        else:
            st.info("Choose a predictions table and its columns in the sidebar on the left.",
                    icon="👈")
        return None
    if title:
        header(ctx, title)
    return ctx


def _pick(label: str, options: list, pref_key: str, key: str, ctx, fmt=None, help=None,
          where=st):
    """A select box whose choice lives in the preferences (and the URL).

    The preference is the source of truth: a widget with the same key on
    another page may hold a stale value, so the preference is written into
    the widget before it is drawn, and a user's change goes back into the
    preference through the callback (which runs before the page)."""
    p = ctx.prefs
    if not options:
        return None
    want = p.get(pref_key)
    st.session_state[key] = want if want in options else options[0]

    def changed():
        p[pref_key] = st.session_state[key]

    value = where.selectbox(label, options, key=key, format_func=fmt or short, help=help,
                            on_change=changed)
    if p.get(pref_key) != value:
        p[pref_key] = value
    try:
        state.to_url(p)
    except Exception:
        pass
    return value


def pick_model(ctx, where=st, options=None, key: str = "model_pick"):
    models = list(options if options is not None else ctx.result.spec.models)
    if len(models) == 1:
        return models[0]
    pref = "model_shown" if key == "model_pick" else key
    return _pick("Model", models, pref, key, ctx, where=where,
                 help="Which model's results to show (each prediction or score column is "
                      "one model).")


def pick_attribute(ctx, where=st, include_intersections=True):
    attrs = ctx.result.spec.attribute_names()
    if not include_intersections:
        attrs = [a for a in attrs if " & " not in a]
    return _pick("Sensitive attribute", attrs, "attribute_shown", "attribute_pick", ctx,
                 where=where)


def pick_metric(ctx, where=st, options=None):
    opts = list(options or available_metrics(ctx.result.spec.labelled, DISPARITY_METRICS))
    return _pick("Metric", opts, "metric", "metric_pick", ctx, where=where,
                 fmt=lambda m: f"{REGISTRY[m].label} ({REGISTRY[m].short})",
                 help="Each metric answers a different fairness question: see its meaning "
                      "below, and the Help page for how to choose.")


def needs_outcome_note(ctx, what: str) -> bool:
    """Say why a view is empty in an audit without a true outcome; True when
    it is (the caller then draws nothing)."""
    if ctx.result.spec.labelled:
        return False
    st.info(f"{what} {NO_OUTCOME}: choose the column of true outcomes as the label in the "
            "sidebar to see it. Without one, the audit compares who is given the positive "
            "decision (selection rates, demographic parity).", icon="ℹ️")
    return True


def header(ctx, title: str):
    if getattr(ctx.result, "task", "binary") == "multiclass":
        from views.multiclass_pages import header as classes_header
        return classes_header(ctx, title)
    r = ctx.result
    if getattr(r, "task", "binary") == "regression":
        from views.regression_pages import header as regression_header
        return regression_header(ctx, title)
    st.title(title)
    prov = r.provenance
    # a count table's or a source's rows stand for people: the counts are people
    unit = "people" if r.spec.counts or ctx.loaded.source else "rows"
    outcome = (f"positive class {name(r.spec.label)} = {name(repr(prov['positive_label']))}"
               if r.spec.labelled else "no true outcome (the decisions alone)")
    st.caption(f"{name(ctx.loaded.name)}: {count(prov['rows_used'])} {unit} audited of "
               f"{count(prov['rows_read'])}; {outcome}; a positive decision is a "
               f"{r.spec.positive_decision} for the person; tolerance "
               f"{Tolerance(r.spec.tolerance).band()}; minimum group size "
               f"{r.spec.min_group_size}; {level(r.spec.confidence)} intervals from "
               f"{count(r.spec.n_bootstrap)} bootstrap replicates (seed {r.spec.seed}).")
    for w in r.warnings:
        st.warning(ctx.say(w), icon="⚠️")
