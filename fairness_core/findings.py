"""Plain-language statements derived from the audit's tables.

Most severe first.  Severity combines the two separate questions an audit
answers about a gap: is it big enough to matter (the tolerance verdict),
and is it likely real (significance after correction for many tests)?
:class:`~fairness_core.tolerance.Tolerance` decides it:

- ``high``: fails the tolerance, significant, and far outside the band
  (the ratio is beyond the band's width again, e.g. below 0.64 or above
  1.56 for a tolerance of 0.8);
- ``medium``: fails the tolerance and is significant;
- ``low``: fails the tolerance but is not significant: it may be noise;
  the statement says how many rows would settle it;
- ``info``: what passed, and what could not be judged and why.

Who a gap disadvantages depends on what a positive decision is for the
person who gets it (``spec.positive_decision``): with a benefit, a lower
selection or true positive rate disadvantages a group; with a harm, a
higher selection or false positive rate does.  The registry holds each
metric's direction for both (:meth:`Metric.direction`).
"""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd

from .disparity import FAIL, INSUFFICIENT, PASS
from .formatting import about, num, p_value
from .metrics import NO_OUTCOME, REGISTRY, available_metrics, key_metrics, tier
from .tolerance import Tolerance

SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2, "info": 3}
CORRECTION_NAMES = {"bh": "Benjamini-Hochberg", "holm": "Holm"}

#: Phrases when nothing is known about the values (a bare disparity table).
DEFAULT_WORDS = {"outcome_pos": "the positive outcome", "outcome_neg": "the negative outcome",
                 "decision_pos": "the positive decision",
                 "decision_neg": "the negative decision"}


def direction(metric: str, value: float, reference_value: float,
              decision: str = "benefit") -> str | None:
    """Who the gap disadvantages: "group", "reference" or None (no side).

    ``decision`` is what a positive decision is for the person: "benefit"
    or "harm" (see :meth:`fairness_core.metrics.Metric.direction`).
    """
    sign = REGISTRY[metric].direction(decision)
    if not sign or value is None or reference_value is None or math.isnan(value) or \
            math.isnan(reference_value) or value == reference_value:
        return None
    return "group" if (value - reference_value) * sign < 0 else "reference"


def _significance(r, n_tests: int, correction: str) -> str:
    padj = getattr(r, "p_value_adjusted", float("nan"))
    if padj is None or math.isnan(padj):
        return "no significance test was possible"
    corr = CORRECTION_NAMES.get(correction, correction)
    p = f"adjusted p = {p_value(padj)}" if padj >= 1e-4 else "adjusted p < 0.0001"
    if r.significant:
        return f"significant after {corr} correction for {n_tests:,} tests, {p}"
    return f"not significant after {corr} correction for {n_tests:,} tests ({p})"


def fail_statement(r, band: Tolerance, words: dict, decision: str, n_tests: int,
                   correction: str, confidence: float) -> str:
    """The sentence for one failing gap (row ``r`` of the disparity table)."""
    from .formatting import level

    m = REGISTRY[r.metric]
    pop, event = m.phrases(words)
    who = f"{r.attribute} = {r.group!r}"
    ref = f"{r.attribute} = {r.reference!r}"
    ci = ""
    if not math.isnan(getattr(r, "ratio_ci_low", float("nan"))):
        ci = (f"; {level(confidence)} CI of the ratio {num(r.ratio_ci_low, 2)} to "
              f"{num(r.ratio_ci_high, 2)}")
    them = "those" if pop else "people"
    if not event:
        head = (f"the {m.label.lower()} of {who} is {num(r.ratio, 2)} times that of {ref}"
                if r.reference_value != 0 else
                f"the {m.label.lower()} of {who} is {num(r.value)} while {ref} is at 0")
    elif r.reference_value == 0:
        head = f"{them} with {who} {event} while none of {them} with {ref} did"
    else:
        head = (f"{them} with {who} {event} {num(r.ratio, 2)} times as often as {them} with "
                f"{ref}")
    head = f"{pop}, {head}" if pop else head[0].upper() + head[1:]
    values = f"{m.label.lower()} {m.format(r.value)} vs {m.format(r.reference_value)}"
    text = (f"{head} ({values}; n = {int(r.n):,} vs {int(r.reference_n):,}{ci}; "
            f"{_significance(r, n_tests, correction)}). {band.fail_sentence()}")
    side = direction(r.metric, r.value, r.reference_value, decision)
    if side:
        loser = who if side == "group" else ref
        if m.side == "decision":
            text += f" The gap disadvantages people with {loser}."
        else:
            text += f" The model is wrong more often for people with {loser}."
    more = getattr(r, "more_rows_needed", float("nan"))
    if not r.significant and more is not None and not math.isnan(more) and more > 0:
        text += f" It may be noise: {about(more)} more rows in {r.group!r} would settle it."
    elif not r.significant:
        text += " It may be noise."
    return text


def _prefixed(text: str, model: str, many_models: bool) -> str:
    return f"Model {model!r}: {text}" if many_models else text


def findings(disp: pd.DataFrame, spec, words: dict | None = None,
             decisions: dict | None = None, not_judged: dict | None = None) -> list[dict]:
    """Statements, most severe first, each with the numbers behind it.

    Parameters
    ----------
    disp : DataFrame
        The disparity table (with tests when available).
    spec : AuditSpec
    words : dict, optional
        ``outcome_pos`` / ``outcome_neg``: the label's positive and negative
        values in words (e.g. ``"'1'"``).
    decisions : dict model -> (positive decision, negative decision), optional
        Each model's decisions in words (``"'Medium' or 'High'"``, ``"a
        score of at least 5.5"``).
    not_judged : dict model -> reason, optional
        Models whose gaps cannot be judged at all (see
        :func:`fairness_core.disparity.disparities`).

    Each record has ``text`` (prefixed with the model when there are
    several) and ``statement`` (the same sentence without the prefix).
    """
    band = Tolerance(spec.tolerance)
    decision = spec.positive_decision
    base = {**DEFAULT_WORDS, **(words or {})}

    def words_of(model):
        pos_neg = (decisions or {}).get(model)
        return {**base, **({"decision_pos": pos_neg[0], "decision_neg": pos_neg[1]}
                           if pos_neg else {})}

    out = []
    has_sig = "significant" in disp
    n_tests = int(disp["p_value"].notna().sum()) if "p_value" in disp else 0
    many_models = disp["model"].nunique() > 1
    for model, reason in (not_judged or {}).items():
        statement = (f"No gap of this model is judged: {reason}. Every rate then sits at its "
                     "extreme value, so equal rates would say nothing about fairness. Choose a "
                     "threshold within the scores' range (or check the decision column).")
        out.append({"severity": "high", "kind": "not_judged", "model": model,
                    "attribute": None, "group": None, "metric": None,
                    "statement": statement,
                    "text": _prefixed(statement, model, many_models)})
    at = np.flatnonzero(disp["verdict"].to_numpy(dtype=object) == FAIL)
    # the failing rows, each as an object with a field per column (Python
    # values, as ``itertuples`` gives): few rows, so no frame is built for them
    rows = disp.take(at)
    cols = {c: rows[c].tolist() for c in rows.columns} if len(at) else {}
    fails = [SimpleNamespace(**dict(zip(cols, vals))) for vals in zip(*cols.values())]
    if fails:
        if not has_sig:
            for r in fails:
                r.significant = False

        def order(r):  # most severe first; then by tier; then the farthest ratio first
            dist = abs(math.log(r.ratio)) if r.ratio > 0 else math.nan  # NaN (no ratio) first
            return (SEVERITY_ORDER[band.severity(FAIL, r.significant, r.ratio)],
                    tier(r.metric, decision), not math.isnan(dist),
                    0.0 if math.isnan(dist) else -dist)

        fails.sort(key=order)
        for r in fails:
            ratio = None if math.isnan(r.ratio) else float(r.ratio)
            side = direction(r.metric, r.value, r.reference_value, decision)
            rec = {"severity": band.severity(FAIL, bool(r.significant), r.ratio),
                   "kind": "fail", "model": r.model, "attribute": r.attribute,
                   "group": r.group, "reference": r.reference, "metric": r.metric,
                   "value": r.value, "reference_value": r.reference_value, "ratio": ratio,
                   "difference": r.difference, "n": int(r.n),
                   "reference_n": int(r.reference_n),
                   "disadvantaged": {"group": r.group, "reference": r.reference}.get(side)}
            for extra in ("ratio_ci_low", "ratio_ci_high", "p_value_adjusted", "significant",
                          "more_rows_needed"):
                if hasattr(r, extra):
                    rec[extra] = getattr(r, extra)
            rec["statement"] = fail_statement(r, band, words_of(r.model), decision, n_tests,
                                              spec.correction, spec.confidence)
            rec["text"] = _prefixed(rec["statement"], r.model, many_models)
            out.append(rec)
    labelled = getattr(spec, "labelled", True)
    out.extend(_info_findings(disp, decision, many_models, set(not_judged or {}), labelled))
    if not labelled:
        statement = ("No true outcome was given, so only the decisions are audited: who is "
                     "given the positive decision, and how often, in each group (demographic "
                     "parity). Error rates, precision, accuracy, equalized odds, equal "
                     f"opportunity, AUC and calibration are {NO_OUTCOME}; a model can give "
                     "groups equal rates and still be wrong more often for one of them.")
        out.append({"severity": "info", "kind": "no_outcome", "model": None,
                    "attribute": None, "group": None, "metric": None,
                    "statement": statement, "text": statement})
    out.sort(key=lambda f: SEVERITY_ORDER[f["severity"]])
    return out


def _info_findings(disp: pd.DataFrame, decision: str, many_models: bool,
                   skip: set, labelled: bool = True) -> list[dict]:
    """What passed on every key metric, and what could not be judged, per
    model x attribute (naming only the metrics that really were not judged)."""
    keys = available_metrics(labelled, key_metrics(decision))
    # the columns as arrays, then the rows of the key metrics: quicker than a
    # filtered copy of the whole table
    take = (disp["metric"].isin(keys) & ~disp["model"].isin(skip)).to_numpy(dtype=bool)
    cols = {c: disp[c].to_numpy(dtype=object)[take] for c in (
        "verdict", "verdict_reason", "group", "metric", "model", "attribute")}
    n = disp["n"].to_numpy()[take]
    need = disp["rows_needed"].to_numpy(dtype=float)[take] if "rows_needed" in disp else None
    small = np.array(["fewer than the minimum" in r for r in cols["verdict_reason"]],
                     dtype=bool)
    out = []
    blocks: dict = {}  # model x attribute -> its rows, in order of appearance
    for i, block in enumerate(zip(cols.pop("model"), cols.pop("attribute"))):
        blocks.setdefault(block, []).append(i)
    for (model, attribute), rows in blocks.items():
        rows = np.asarray(rows, dtype=np.intp)
        verdict = cols["verdict"][rows]
        if (verdict == PASS).all():
            names = ", ".join(REGISTRY[m].label.lower() for m in keys)
            statement = (f"Every group of {attribute} is within the tolerance band for "
                         f"{names}.")
            out.append({"severity": "info", "kind": "pass", "model": model,
                        "attribute": attribute, "group": None, "metric": None,
                        "statement": statement,
                        "text": _prefixed(statement, model, many_models)})
        ins = rows[verdict == INSUFFICIENT]
        for part, too_small in ((ins[small[ins]], True), (ins[~small[ins]], False)):
            if len(part):
                out.append(_not_judged(
                    {c: v[part] for c, v in cols.items()}, n[part],
                    None if need is None else need[part], model, attribute, keys,
                    too_small, many_models))
    return out


def _not_judged(cols: dict, n: np.ndarray, need: np.ndarray | None, model: str,
                attribute: str, keys: list, too_small: bool, many_models: bool) -> dict:
    """One statement for the groups of an attribute that could not be judged
    for one kind of reason: too few rows, or rates that are undefined."""
    groups = list(dict.fromkeys(cols["group"]))
    present = set(cols["metric"])
    metrics = [m for m in keys if m in present]
    shown = ", ".join(repr(g) for g in groups[:6]) + (" ..." if len(groups) > 6 else "")
    reasons = list(dict.fromkeys(cols["verdict_reason"]))
    why = reasons[0] + (f" (and {len(reasons) - 1} other reason(s))" if len(reasons) > 1
                        else "")
    if too_small:
        statement = (f"{len(groups)} group(s) of {attribute} are too small to be judged "
                     f"({shown}): {why}.")
    else:
        names = ", ".join(REGISTRY[m].label.lower() for m in metrics)
        statement = (f"{len(groups)} group(s) of {attribute} could not be judged on {names} "
                     f"({shown}): {why}.")
    if need is not None and (~np.isnan(need)).any():
        g0 = next(g for g in groups if (~np.isnan(need[cols["group"] == g])).any())
        mine = cols["group"] == g0
        statement += (f" To judge a gap the size of the tolerance, {g0!r} would need "
                      f"{about(np.nanmax(need[mine]))} rows (it has {int(n[mine][0]):,}).")
    statement = statement[0].upper() + statement[1:]
    return {"severity": "info", "kind": "insufficient", "model": model,
            "attribute": attribute, "group": None, "metric": None, "groups": groups,
            "metrics": metrics, "statement": statement,
            "text": _prefixed(statement, model, many_models)}
