"""The sidebar: data in, column mapping, judgement settings; runs the audit.

Every validation message from the core is shown right under the control
that caused it; choices survive a bad file and page switches.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field

import pandas as pd
import streamlit as st

import state
from fairness_core import AuditSpec, InputError
from fairness_core.formatting import short
from fairness_core.guard import Busy
from fairness_core.guess import (count_columns, default_bins, distinct_values, guess_counts,
                                 guess_decision_values, guess_positive,
                                 guess_positive_decision, guess_roles,
                                 score_range)
from fairness_core.prepare import canon, resolve_threshold
from fairness_core.tasks import TASK_NAMES, TASKS, infer_task
from ui import name, say

_log = logging.getLogger(__name__)
NONE = "(none)"
#: The label picker's choice for an audit of the decisions alone.
NO_LABEL = "(no true outcome)"
HIGHER = {"benefit": "a benefit (a credit limit, an offer)",
          "harm": "a harm (a price, a premium, a sentence)"}
DECISIONS = {"benefit": "a benefit (a loan, an interview, an offer)",
             "harm": "a harm (flagged as high risk, investigated, refused)"}
REF_MODES = {"largest": "Largest group", "best": "Best-off group (per metric)",
             "named": "Choose per attribute"}


@dataclass
class Context:
    loaded: state.Loaded | None = None
    spec: AuditSpec | None = None
    result: object = None
    errors: dict = field(default_factory=dict)
    prefs: dict = field(default_factory=dict)
    note: str | None = None
    threshold_range: tuple = (0.0, 1.0, 0.01)
    #: score column -> (low, high, step) of its own threshold slider
    threshold_ranges: dict = field(default_factory=dict)
    #: one threshold for every score column (they share a scale)
    shared_threshold: bool = True
    #: why uploads are off (the server runs without its safe settings), or None
    uploads_off: str | None = None
    #: the names messages may quote (files, columns, groups): cut short on the page
    names: list = field(default_factory=list)

    def say(self, text) -> str:
        """A message for page text (see :func:`ui.say`)."""
        return say(text, self.names)


def slider_range(lo: float, hi: float) -> tuple[float, float, float]:
    """A threshold slider's (low, high, step) for scores from lo to hi."""
    if 0 <= lo and hi <= 1:
        return 0.0, 1.0, 0.01
    if hi <= lo:
        hi = lo + 1.0
    return lo, hi, float(f"{(hi - lo) / 100:.2g}") or 0.01


def threshold_range(df, scores) -> tuple[float, float, float]:
    """The slider range over all score columns."""
    rs = [r for r in (score_range(df[c]) for c in scores) if r is not None]
    if not rs:
        return 0.0, 1.0, 0.01
    return slider_range(min(r[0] for r in rs), max(r[1] for r in rs))


def _init(key: str, default, options=None, multi: bool = False):
    """Give a widget its starting value: kept state, else the preference,
    else the guess; values not among the options are dropped."""
    cur = st.session_state.get(key, None)
    if multi:
        had = cur
        if cur is None:
            cur = default
        cur = [c for c in (cur or []) if options is None or c in options]
        if not cur and had and default:  # all dropped (another file): start again
            cur = [c for c in default if options is None or c in options]
        st.session_state[key] = cur
        return
    if cur is None or (options is not None and cur not in options):
        st.session_state[key] = default if options is None or default in options else (
            options[0] if options else None)


def _pref(p: dict, key: str, fallback, options=None, multi: bool = False):
    v = p.get(key)
    if v is None:
        return fallback
    if multi:
        ok = [x for x in v if options is None or x in options]
        return ok if ok or not v else fallback
    return v if options is None or v in options else fallback


def _data_section(ctx: Context, slots: dict) -> state.Loaded | None:
    sb = st.sidebar
    sb.header("1. Data")
    listed, problems = state.listed_sources()
    sources = list(state.SAMPLES) + [state.SOURCE + n for n in listed] + [state.UPLOAD]
    _init("source", sources[0], sources)
    source = sb.selectbox("Predictions table", sources, key="source",
                          format_func=lambda s: f"{s[len(state.SOURCE):]} (data source)"
                          if s.startswith(state.SOURCE) else s,
                          help="A bundled sample, a data source listed by the server's "
                               "administrator, or your own table with one row per person "
                               "(or a count table): the true outcome, the model's decision "
                               "and/or score, and columns such as sex, race or age group.")
    loaded = None
    slots["note"] = sb.empty()
    if problems:
        sb.warning("Some data sources are left out, because their settings are wrong: "
                   + " ".join(problems.values()) + " Ask the administrator to fix the "
                   "[sources] list.", icon="⚠️")
    if source.startswith(state.SOURCE):
        slots["file"] = sb.empty()
        try:
            loaded = state.load_source(source[len(state.SOURCE):])
        except InputError as err:
            ctx.errors["file"] = err.message
        except Exception as err:  # a driver's own failure: never a traceback
            _log.warning("A data source could not be opened: %s", type(err).__name__)
            ctx.errors["file"] = (f"The data source {source[len(state.SOURCE):]!r} could not "
                                  f"be opened (unexpected {type(err).__name__}). Ask the "
                                  "administrator to check the source list.")
    elif source == state.UPLOAD and ctx.uploads_off:
        slots["file"] = sb.empty()
        ctx.errors["file"] = ctx.uploads_off
    elif source == state.UPLOAD:
        up = sb.file_uploader("CSV, TSV, Parquet or Excel (.xlsx) file",
                              type=["csv", "tsv", "txt", "tab", "parquet", "pq", "xlsx", "xls"],
                              key="upload",
                              help="The file stays in this browser session's memory on the "
                                   "server: it is never written to disk or sent anywhere.")
        slots["file"] = sb.empty()
        if up is not None:
            ctx.names.append(up.name)
            # hash and parse once per uploaded file (a failure too), not on every rerun
            try:
                got = state.memo(("upload", getattr(up, "file_id", None), up.name, up.size),
                                 lambda: _read_upload(up))
            except Busy as err:  # not the file's answer: the next rerun tries again
                got = err.message
            if isinstance(got, state.Loaded):
                loaded = got
                st.session_state["last_loaded"] = loaded
            else:
                ctx.errors["file"] = got
                loaded = st.session_state.get("last_loaded")
                if loaded is not None:
                    ctx.note = (f"Still showing the previous file {short(loaded.name)!r}, "
                                "because the new file could not be read.")
        else:
            # No file in the uploader (removed, or not chosen yet): an earlier
            # upload is forgotten, not kept in memory behind the user's back.
            prev = st.session_state.pop("last_loaded", None)
            if prev is not None:
                state.forget(prev.sha256)
    else:
        slots["file"] = sb.empty()
        try:
            loaded = state.load_sample(source)
        except InputError as err:  # pragma: no cover - the samples are known good
            ctx.errors["file"] = err.message
    if loaded is not None and loaded.source is not None:
        ctx.names += [loaded.name, *map(str, loaded.df.columns)]
        sb.caption(f"{name(loaded.name)}: {len(loaded.df.columns)} columns, "
                   f"{loaded.info.format}. Rows are not loaded: they are counted where they "
                   "live, and only the counts come back.")
    elif loaded is not None:
        ctx.names += [loaded.name, *map(str, loaded.df.columns)]
        n, c = loaded.df.shape
        sb.caption(f"{name(loaded.name)}: {n:,} rows, {c} columns. SHA-256 "
                   f"{loaded.sha256[:12]}...")
    return loaded


def _read_upload(up):
    """The uploaded file as a Loaded table, or the message that says why it
    cannot be read (a limit, a damaged file, anything unexpected: never a
    traceback)."""
    try:
        return state.load_bytes(up.getvalue(), up.name, sample=False)
    except Busy:
        raise
    except InputError as err:
        return err.message
    except MemoryError:
        return (f"{short(up.name)!r} needs more memory than the dashboard can give it. "
                "Upload only the columns the audit needs, or fewer rows.")
    except Exception as err:  # a file must never show a traceback
        _log.warning("An upload could not be read: %s", type(err).__name__)
        return (f"{short(up.name)!r} could not be read (unexpected {type(err).__name__}). "
                "Check that it is a CSV, TSV, Parquet or Excel (.xlsx) file, or export it "
                "again as CSV.")


def _column_section(ctx: Context, loaded: state.Loaded, slots: dict) -> dict:
    sb = st.sidebar
    df = loaded.df
    all_cols = [str(c) for c in df.columns]
    # choices made for a table with these columns; never another file's
    p = prefs_for(ctx.prefs, all_cols)
    if loaded.sample and not any(k in p for k in ("label", "predictions", "sensitive")):
        p = {**state.SAMPLE_ROLES.get(loaded.name, {}), **p}
    if st.session_state.get("columns") != all_cols:
        # a table with other columns: its controls start from its own choices
        if "columns" in st.session_state:
            for k in [k for k in st.session_state if k in COLUMN_WIDGETS or
                      str(k).startswith(("pp::", "threshold::", "bins::"))]:
                del st.session_state[k]
        st.session_state["columns"] = all_cols
    sb.header("2. Columns")
    count_options, count_guess, counts = _count_choice(loaded, p)
    cols = [c for c in all_cols if c != counts]
    g = state.memo(("guess", loaded.sha256, counts), lambda: guess_roles(df, counts=counts))
    label_options = [NO_LABEL, *cols]
    _init("label", _pref(p, "label", g.label or NO_LABEL, label_options), label_options)
    chosen_label = sb.selectbox(
        "True outcome (label)", label_options, key="label", format_func=short,
        help="The column with what really happened (two values). Choose "
             f"{NO_LABEL} to audit the decisions alone: selection rates, demographic parity "
             "and score distributions per group.")
    label = None if chosen_label == NO_LABEL else chosen_label
    slots["label"] = sb.empty()
    task = _task_choice(ctx, loaded, label, cols, g, p)
    slots["task"] = sb.empty()
    pos_options = state.memo(("values", loaded.sha256, label),
                             lambda: distinct_values(df[label].head(200_000))) or [] \
        if label is not None and task == "binary" else []
    positive = None
    if 0 < len(pos_options) <= 2:
        guess = guess_positive(pos_options)
        guess = guess if guess is not None else pos_options[-1]
        pref = p.get("positive")
        pref = pref[0] if isinstance(pref, list) and len(pref) == 1 else pref
        _init("positive", pref if pref in pos_options else guess, pos_options)
        positive = sb.selectbox("Positive class (label value)", pos_options, key="positive",
                                format_func=short,
                                help="The label value that the true and false positive "
                                     "rates count: the outcome the model predicts (repaid, "
                                     "income above 50K, reoffended).")
    elif pos_options:
        pref = p.get("positive")
        pref = pref if isinstance(pref, list) else [pref] if pref else []
        _init("positive_set", [v for v in pref if v in pos_options], pos_options, multi=True)
        positive = sb.multiselect("Label values that count as positive", pos_options,
                                  key="positive_set", format_func=short,
                                  help=f"The label has {len(pos_options)} values: choose the "
                                       "ones that make the positive class.") or None
    slots["positive"] = sb.empty()
    decision_options = list(DECISIONS)
    guessed, why = guess_positive_decision(label, positive)
    if task == "regression":
        guessed, why = "benefit", None
    _init("positive_decision", _pref(p, "positive_decision", guessed, decision_options),
          decision_options)
    positive_decision = "benefit" if task == "multiclass" else sb.radio(
        "For the person it is given to, a positive decision is", decision_options,
        key="positive_decision", format_func=DECISIONS.get,
        help="It decides who a gap disadvantages and which metrics come first: for a "
             "benefit, missed qualified people (false negative and false omission rates); "
             "for a harm, wrongly flagged people (false positive and false discovery "
             "rates).") if task != "regression" else sb.radio(
        "For the person, a higher prediction is", decision_options, key="positive_decision",
        format_func=HIGHER.get,
        help="It decides who a gap disadvantages: with a benefit (a credit limit, a salary "
             "offer) the model under-predicting for a group disadvantages it; with a harm (a "
             "price, a premium) over-predicting does.")
    if why and positive_decision == guessed and task != "multiclass":
        sb.caption(ctx.say(f"A harm, guessed because {why}. Change it if a positive "
                           "decision is good for the person."))
    others = [c for c in cols if c != label]
    _init("predictions", _pref(p, "predictions", g.predictions, others, multi=True),
          others, multi=True)
    preds = sb.multiselect("Models: decision columns" if task != "regression" else
                           "Models: predicted value columns", others, key="predictions",
                           format_func=short,
                           help="One column per model: the model's decision, with the "
                                "label's values or with values of its own (then choose which "
                                "of them mean the positive decision).")
    slots["predictions"] = sb.empty()
    pred_positive = _decision_values(loaded, label, preds, p, g) if task == "binary" else {}
    slots["prediction_positive"] = sb.empty()
    numeric = [c for c in others if c not in preds and pd.api.types.is_numeric_dtype(df[c])
               and not pd.api.types.is_bool_dtype(df[c])]
    score_options = numeric if task == "binary" else []
    _init("scores", _pref(p, "scores", g.scores, score_options, multi=True), score_options,
          multi=True)
    scores = [] if task != "binary" else sb.multiselect(
        "Models: score columns (optional)", numeric, key="scores", format_func=short,
        help="A numeric score per model; the decision is score >= threshold. Scores add ROC, "
             "threshold and calibration views.")
    slots["scores"] = sb.empty()
    threshold = None
    if scores:
        threshold = _threshold_controls(ctx, loaded, scores, p)
    slots["threshold"] = sb.empty()
    used = {label, *preds, *scores}
    sens_options = [c for c in cols if c not in used]
    _init("sensitive", _pref(p, "sensitive", g.sensitive, sens_options, multi=True),
          sens_options, multi=True)
    sensitive = sb.multiselect("Sensitive attributes", sens_options, key="sensitive",
                               format_func=short,
                               help="Columns that define the groups to compare, such as sex, "
                                    "race or age group.")
    slots["sensitive"] = sb.empty()
    bins = {}
    for c in sensitive:
        s = df[c]
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s) and \
                s.nunique() > 12:
            key = f"bins::{c}"
            default = ", ".join(f"{e:g}" for e in p.get("bins", {}).get(c, default_bins(s)))
            _init(key, default)
            text = sb.text_input(f"Group {name(c)} into ranges (edges)", key=key,
                                 help="Increasing numbers; each range is [from, to). Values "
                                      "outside form their own group.")
            try:
                bins[c] = [float(x) for x in text.replace(";", ",").split(",") if x.strip()]
            except ValueError:
                bins[c] = text  # AuditSpec reports it next to this box
    slots["bins"] = sb.empty()
    intersectional = False
    if len(sensitive) >= 2:
        _init("intersectional", bool(p.get("intersectional", False)))
        intersectional = sb.checkbox("Also audit intersections (e.g. sex & race)",
                                     key="intersectional")
    weight_options = [NONE] + [c for c in numeric if c not in used and c not in sensitive]
    _init("weight", _pref(p, "weight", NONE, weight_options), weight_options)
    weight = sb.selectbox("Sample weight (optional)", weight_options, key="weight",
                          format_func=short)
    slots["weight"] = sb.empty()
    _count_control(count_options, count_guess, p)
    slots["counts"] = sb.empty()
    return dict(label=chosen_label, task=task, positive=positive,
                positive_decision=positive_decision, predictions=preds, prediction_positive=pred_positive, scores=scores,
                threshold=threshold, sensitive=sensitive, bins=bins,
                intersectional=intersectional, weight=None if weight == NONE else weight,
                counts=counts)


def _task_choice(ctx: Context, loaded: state.Loaded, label: str | None, cols: list, g,
                 p: dict) -> str:
    """What the audit is about: yes/no decisions, several classes or a
    number; guessed from the label's values (and the decision columns'),
    and said so."""
    if label is None:
        return "binary"
    df = loaded.df
    preds = [c for c in (st.session_state.get("predictions") or g.predictions or [])
             if c in cols and c != label]
    guess = state.memo(("task", loaded.sha256, label, tuple(preds)), lambda: infer_task(
        df[label], [df[c] for c in preds]))
    options = list(TASKS)
    if st.session_state.get("task::label") != label:  # a new label: its own guess
        st.session_state.pop("task", None)
        st.session_state["task::label"] = label
    _init("task", _pref(p, "task", guess.task, options) if p.get("label") == label
          else guess.task, options)
    task = st.sidebar.radio("The model predicts", options, key="task",
                            format_func=TASK_NAMES.get, horizontal=False,
                            help="Yes/no decisions (approve, flag), one of several classes "
                                 "(a triage level, a product tier) or a number (a credit "
                                 "limit, a price, a length of stay).")
    if task == guess.task and task != "binary":
        st.sidebar.caption(ctx.say(f"Guessed because {guess.reason}."))
    return task


def _count_choice(loaded: state.Loaded, p: dict) -> tuple[list, str | None, str | None]:
    """"Each row stands for": one person, or the number in a count column
    (a table that is already aggregated).  Offered when the table has a
    column of whole numbers of at least 0; set to the count column when
    :func:`fairness_core.guess.guess_counts` finds a clear one (a listed
    source's table too: the engine counts with it).  Returns the options
    (none: no control), the guess and the choice, read before the other column
    controls, which leave the count column out; the control itself is
    drawn after them (:func:`_count_control`)."""
    df = loaded.df
    options, guess = state.memo(("counts", loaded.sha256),
                                lambda: (count_columns(df), guess_counts(df)))
    if not options:
        return [], None, None
    options = [NONE] + options
    _init("counts", _pref(p, "counts", guess or NONE, options), options)
    chosen = st.session_state["counts"]
    return options, guess, None if chosen == NONE else chosen


def _count_control(options: list, guess: str | None, p: dict) -> None:
    if not options:
        return
    sb = st.sidebar
    chosen = sb.selectbox("Each row stands for", options, key="counts",
                          format_func=lambda c: "one person" if c == NONE
                          else f"the number in column {short(c)}",
                          help="A table that is already aggregated (a count table, such as "
                               "the output of --export-counts) has a column that says how "
                               "many people each row stands for. Every number is then the "
                               "same as from the rows themselves.")
    if chosen != NONE and chosen == guess and p.get("counts") in (None, guess):
        sb.caption(f"Guessed from the name {name(chosen)!s} and its whole numbers: a count "
                   "table. Check it.")


def _decision_values(loaded: state.Loaded, label: str, preds: list, p: dict, g) -> dict:
    """For each decision column whose values are not the label's: which of
    its values mean the positive decision (a guess is offered, and said so)."""
    sb = st.sidebar
    df = loaded.df
    label_vals = state.memo(("values", loaded.sha256, label),
                            lambda: distinct_values(df[label].head(200_000))) or [] \
        if label is not None else []
    label_toks = {canon(v) for v in label_vals}
    saved = p.get("prediction_positive") or {}
    out = {}
    for col in preds:
        vals = state.memo(("values", loaded.sha256, col),
                          lambda c=col: distinct_values(df[c].head(200_000)))
        if vals is None or ({canon(v) for v in vals} <= label_toks and col not in saved):
            continue  # the label's values (or too many values: the core explains)
        key = f"pp::{col}"
        guess = g.decision_values.get(col) or guess_decision_values(vals) or []
        guess = [v for v in guess if v in vals]
        pref = [v for v in saved.get(col, []) if v in vals]
        _init(key, pref or guess, vals, multi=True)
        chosen = f"pp_chosen::{col}"

        def mark(flag=chosen):
            st.session_state[flag] = True

        out[col] = sb.multiselect(f"Values of {name(col)} that mean the positive decision",
                                  vals, key=key, on_change=mark, format_func=short,
                                  help="The decision column's values are not the label's: "
                                       "choose the ones that mean the positive decision.")
        if out[col] and out[col] == guess and not st.session_state.get(chosen):
            sb.caption(f"Guessed from the values ({', '.join(name(v) for v in out[col])}): "
                       "check it.")
    return out


def _threshold_controls(ctx: Context, loaded: state.Loaded, scores: list, p: dict):
    """One threshold slider when the scores share a scale, else one per score
    column; the default fits the scale (see fairness_core.prepare.resolve_threshold)."""
    sb = st.sidebar
    df = loaded.df
    ranges = state.memo(("ranges", loaded.sha256, tuple(scores)),
                        lambda: {c: score_range(df[c]) for c in scores})
    ranges = {c: r for c, r in ranges.items() if r is not None}
    if not ranges:
        return None
    ctx.threshold_ranges = {c: slider_range(*r) for c, r in ranges.items()}
    ctx.threshold_range = threshold_range(df, list(ranges))
    shared = len(ranges) == 1 or all(0 <= lo and hi <= 1 for lo, hi in ranges.values())
    ctx.shared_threshold = shared
    pref = p.get("threshold")
    if shared:
        lo, hi, step = ctx.threshold_range
        default, how = resolve_threshold(None, min(r[0] for r in ranges.values()),
                                         max(r[1] for r in ranges.values()))
        want = pref if isinstance(pref, (int, float)) and lo <= pref <= hi else default
        _init("threshold", float(want))
        if not (lo <= st.session_state["threshold"] <= hi):
            st.session_state["threshold"] = float(default)
        value = sb.slider("Score threshold", lo, hi, key="threshold", step=step,
                          help="A score at or above the threshold is a positive decision.")
        if abs(value - default) < 1e-12:
            sb.caption(f"{value:g}: {how}.")
            return None  # the audit states how it was chosen
        return value
    out = {}
    pref = pref if isinstance(pref, dict) else {}
    for col, (lo, hi) in ranges.items():
        s_lo, s_hi, step = ctx.threshold_ranges[col]
        default, how = resolve_threshold(None, lo, hi)
        want = pref.get(col)
        want = want if isinstance(want, (int, float)) and s_lo <= want <= s_hi else default
        key = f"threshold::{col}"
        _init(key, float(want))
        if not (s_lo <= st.session_state[key] <= s_hi):
            st.session_state[key] = float(default)
        out[col] = sb.slider(f"Threshold for {name(col)}", s_lo, s_hi, key=key, step=step,
                             help="A score at or above the threshold is a positive decision.")
        if abs(out[col] - default) < 1e-12:
            sb.caption(f"{out[col]:g}: {how}.")
            out[col] = None  # the audit states how it was chosen
    return {c: v for c, v in out.items() if v is not None} or None


def _judgement_section(ctx: Context, slots: dict) -> dict:
    sb = st.sidebar
    p = ctx.prefs
    sb.header("3. Judgement")
    _init("tolerance", float(p.get("tolerance", 0.8)))
    tol = sb.slider("Tolerance (ratio to the reference that passes)", 0.5, 1.0,
                    key="tolerance", step=0.01,
                    help="0.8 is the four-fifths rule: a group passes when its rate is "
                         "between 0.8 and 1.25 times the reference group's.")
    slots["tolerance"] = sb.empty()
    _init("min_group_size", int(p.get("min_group_size", 30)))
    mgs = sb.number_input("Minimum group size", min_value=1, step=1, key="min_group_size",
                          help="Smaller groups are shown but get no pass/fail verdict.")
    slots["min_group_size"] = sb.empty()
    modes = list(REF_MODES)
    if st.session_state.get("task") == "regression":  # compared with the largest or a named one
        modes.remove("best")
    _init("refmode", p.get("reference_strategy", "largest")
          if p.get("reference_strategy") in modes else "largest", modes)
    mode = sb.radio("Reference group", modes, key="refmode", format_func=REF_MODES.get,
                    help="Each group is compared with the reference group of its attribute.")
    slots["reference"] = sb.empty()
    with sb.expander("Statistics"):
        _init("alpha", float(p.get("alpha", 0.05)))
        alpha = st.number_input("Significance level (alpha)", 0.001, 0.5, key="alpha",
                                step=0.01, format="%.3f",
                                help="After correction for the many comparisons.")
        slots["alpha"] = st.empty()
        corr = {"bh": "Benjamini-Hochberg (false discovery rate)",
                "holm": "Holm (family-wise error)"}
        _init("correction", p.get("correction", "bh") if p.get("correction") in corr
              else "bh", list(corr))
        correction = st.radio("Correction for many comparisons", list(corr), key="correction",
                              format_func=corr.get)
        _init("n_bootstrap", int(p.get("n_bootstrap", 1000)))
        n_boot = st.number_input("Bootstrap replicates", 100, 20000, key="n_bootstrap",
                                 step=500)
        _init("seed", int(p.get("seed", 0)))
        seed = st.number_input("Random seed", 0, 2**31 - 1, key="seed", step=1)
        slots["n_bootstrap"] = st.empty()
    return dict(tolerance=tol, min_group_size=int(mgs), reference_strategy=mode,
                alpha=alpha, correction=correction, n_bootstrap=int(n_boot), seed=int(seed))


def _reference_widgets(ctx: Context, result, slots: dict) -> dict:
    """Named reference groups, one select box per attribute."""
    refs = {}
    box = slots["reference"].container()
    saved = ctx.prefs.get("reference", {}) or {}
    for attr in result.spec.attribute_names():
        groups = result.group_order(attr)
        sizes = result.group_metrics[result.group_metrics["attribute"] == attr] \
            .groupby("group")["n"].first()
        largest = sizes.idxmax() if len(sizes) else (groups[0] if groups else None)
        key = f"ref::{attr}"
        _init(key, saved.get(attr, largest) if saved.get(attr) in groups else largest, groups)
        refs[attr] = box.selectbox(f"Reference for {name(attr)}", groups, key=key,
                                   format_func=short)
    return refs


def render(uploads_off: str | None = None) -> Context:
    ctx = Context(prefs=state.prefs(), uploads_off=uploads_off)
    st.sidebar.title("⚖️ Fairness audit")
    slots: dict = {}
    loaded = _data_section(ctx, slots)
    ctx.loaded = loaded
    if loaded is None:
        _show_errors(ctx, slots)
        return ctx
    cols = _column_section(ctx, loaded, slots)
    judge = _judgement_section(ctx, slots)
    values = {**cols, **judge}
    spec_kw = dict(label=None if cols["label"] == NO_LABEL else cols["label"],
                   task=cols["task"], positive=cols["positive"],
                   positive_decision=cols["positive_decision"],
                   prediction_positive=cols["prediction_positive"],
                   predictions=cols["predictions"], scores=cols["scores"],
                   threshold=cols["threshold"], sensitive=cols["sensitive"],
                   intersectional=cols["intersectional"], weight=cols["weight"],
                   counts=cols["counts"], bins=cols["bins"], tolerance=judge["tolerance"],
                   min_group_size=judge["min_group_size"],
                   reference_strategy="largest" if judge["reference_strategy"] == "named"
                   else judge["reference_strategy"], alpha=judge["alpha"],
                   correction=judge["correction"], n_bootstrap=judge["n_bootstrap"],
                   seed=judge["seed"])
    try:
        spec = AuditSpec(**spec_kw)
        result = state.run_audit(loaded, spec)
        if judge["reference_strategy"] == "named":
            refs = _reference_widgets(ctx, result, slots)
            spec = dataclasses.replace(spec, reference=refs)
            result = state.run_audit(loaded, spec)
            values["reference"] = refs
        ctx.spec, ctx.result = spec, result
        ctx.names += list(dict.fromkeys(map(str, result.group_metrics["group"])))
    except InputError as err:
        ctx.errors[state.field_of(err, values)] = err.message
    except Exception as err:  # a data source's driver failing mid-count: never a traceback
        if loaded.source is None:
            raise
        _log.warning("A data source could not be counted: %s", type(err).__name__)
        ctx.errors["file"] = (f"The data source {loaded.name!r} could not be counted "
                              f"(unexpected {type(err).__name__}). Ask the administrator "
                              "to check it.")
    _remember(ctx, values, [str(c) for c in loaded.df.columns])
    _show_errors(ctx, slots)
    return ctx


COLUMN_CHOICES = ("label", "task", "positive", "positive_decision", "predictions",
                  "prediction_positive", "scores", "threshold", "sensitive", "bins",
                  "intersectional", "weight", "counts")


COLUMN_WIDGETS = ("label", "task", "task::label", "positive", "positive_set", "positive_decision", "predictions",
                  "scores", "threshold", "sensitive", "intersectional", "weight", "counts")


def _signature(columns) -> str:
    return "\x1f".join(sorted(map(str, columns)))


def columns_id(columns) -> str:
    """A short fingerprint of a table's column names (kept in the URL)."""
    import hashlib
    return hashlib.sha256(_signature(columns).encode("utf-8")).hexdigest()[:10]


def prefs_for(prefs: dict, columns: list) -> dict:
    """The choices that apply to a table with these columns.

    Choices made for a table with the same columns win.  Otherwise the
    latest choices (from another file, or from a shared link) set this
    table's columns only when they were made for the same columns (the
    link's column fingerprint matches, or, without one, every column they
    name is in this table); else the table starts from the guesses.  The
    judgement settings (tolerance, statistics) carry over always."""
    general = {k: v for k, v in prefs.items() if k not in COLUMN_CHOICES}
    stored = prefs.get("by_columns", {}).get(_signature(columns))
    if stored is not None:
        return {**general, **stored}
    sig = prefs.get("columns_id")
    if sig is not None:
        same = sig == columns_id(columns)
    else:
        cols = set(columns)
        named = [prefs.get("label"), *(prefs.get("predictions") or []),
                 *(prefs.get("scores") or []), *(prefs.get("sensitive") or []),
                 prefs.get("weight") if prefs.get("weight") != NONE else None,
                 *(prefs.get("bins") or {})]
        named = [c for c in named if c]
        same = bool(named) and all(c in cols for c in named)
    return dict(prefs) if same else general


def _remember(ctx: Context, values: dict, columns: list) -> None:
    """Keep the choices as preferences.  A list that is empty only because
    its columns are not in the current file (a wrong file uploaded by
    mistake) does not replace the earlier choice."""
    p = ctx.prefs
    for k, v in values.items():
        if k == "bins":
            v = {c: e for c, e in v.items() if isinstance(e, list)}
        old = p.get(k)
        if isinstance(v, list) and not v and old and not all(c in columns for c in old):
            continue
        p[k] = v
    if values.get("reference_strategy") != "named":
        p.pop("reference", None)
    p["columns_id"] = columns_id(columns)
    by = p.setdefault("by_columns", {})
    by[_signature(columns)] = {k: p[k] for k in COLUMN_CHOICES if k in p}
    while len(by) > 20:
        by.pop(next(iter(by)))
    try:
        state.to_url(p)
    except Exception:  # the URL is a convenience; never break the app for it
        pass


def _show_errors(ctx: Context, slots: dict) -> None:
    for fld, msg in ctx.errors.items():
        slot = slots.get(fld) or slots.get("file")
        if slot is not None:
            slot.error(ctx.say(msg), icon="⚠️")
        else:
            st.sidebar.error(ctx.say(msg), icon="⚠️")
    if ctx.note:
        (slots.get("note") or st.sidebar).warning(ctx.say(ctx.note))
