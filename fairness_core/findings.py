"""Plain-language statements derived from the audit's tables.

Most severe first.  Severity combines the two separate questions an audit
answers about a gap: is it big enough to matter (the tolerance verdict),
and is it likely real (significance after correction for many tests)?

- ``high``: fails the tolerance, significant, and far outside the band
  (the ratio is beyond the band's width again, e.g. below 0.64 or above
  1.56 for a tolerance of 0.8);
- ``medium``: fails the tolerance and is significant;
- ``low``: fails the tolerance but is not significant: it may be noise;
  the statement says how many rows would settle it;
- ``info``: what passed, and what could not be judged and why.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .disparity import FAIL, INSUFFICIENT, PASS
from .metrics import REGISTRY

SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2, "info": 3}
KEY_METRICS = ("selection_rate", "tpr", "fpr")
#: +1: a higher value gives the group's members more of the favourable
#: (positive) outcome or fewer errors; -1: the opposite; absent: no side.
BENEFIT = {"selection_rate": 1, "tpr": 1, "fpr": 1, "fnr": -1, "tnr": -1, "accuracy": 1,
           "error_rate": -1, "balanced_accuracy": 1, "f1": 1}
#: Among equally severe gaps, the decision rates people ask about come first.
_TIER = {m: 0 for m in ("selection_rate", "tpr", "fpr", "fnr", "error_rate", "accuracy")}


def _pct(x: float) -> str:
    return "undefined" if x is None or (isinstance(x, float) and math.isnan(x)) \
        else f"{100 * x:.1f}%"


def _num(x: float, digits: int = 2) -> str:
    if x is None or math.isnan(x):
        return "?"
    if math.isinf(x):
        return "unbounded"
    return f"{x:.{digits}f}"


def _rows(n: float) -> str:
    n = int(n)
    if n >= 1000:
        return f"about {round(n, -2):,}"
    if n >= 100:
        return f"about {round(n, -1):,}"
    return f"{n:,}"


def phrases(metric: str, positive: str | None, negative: str | None) -> tuple[str, str]:
    """(population, what happened) for a rate metric, in plain words."""
    pos = repr(positive) if positive is not None else "the positive outcome"
    neg = repr(negative) if negative is not None else "the negative outcome"
    return {
        "selection_rate": ("", f"were given {pos} by the model"),
        "accuracy": ("", "got the correct decision"),
        "error_rate": ("", "got a wrong decision"),
        "tpr": (f"Among people whose true outcome was {pos}", f"were given {pos}"),
        "fnr": (f"Among people whose true outcome was {pos}", f"were given {neg}"),
        "fpr": (f"Among people whose true outcome was {neg}", f"were given {pos}"),
        "tnr": (f"Among people whose true outcome was {neg}", f"were given {neg}"),
        "ppv": (f"Among people the model gave {pos}", f"truly had {pos}"),
        "fdr": (f"Among people the model gave {pos}", f"truly had {neg}"),
        "npv": (f"Among people the model gave {neg}", f"truly had {neg}"),
        "for": (f"Among people the model gave {neg}", f"truly had {pos}"),
    }.get(metric, ("", ""))


def direction(metric: str, value: float, reference_value: float) -> str | None:
    """Who the gap disadvantages: "group", "reference" or None (no side)."""
    sign = BENEFIT.get(metric)
    if not sign or value is None or reference_value is None or math.isnan(value) or \
            math.isnan(reference_value) or value == reference_value:
        return None
    return "group" if (value - reference_value) * sign < 0 else "reference"


def severity(verdict: str, significant: bool, ratio: float, tolerance: float) -> str:
    if verdict != FAIL:
        return "info"
    if not significant:
        return "low"
    far = ratio is None or math.isnan(ratio) or ratio == 0 or math.isinf(ratio) or \
        abs(math.log(ratio)) >= 2 * abs(math.log(tolerance))
    return "high" if far else "medium"


def _band(tolerance: float) -> str:
    if abs(tolerance - 0.8) < 1e-12:
        return "This fails the four-fifths rule (a ratio between 0.8 and 1.25 passes)."
    return f"This is outside the tolerance band ({tolerance:g} to {1 / tolerance:.3g})."


def _significance(r, n_tests: int, correction: str, alpha: float) -> str:
    padj = getattr(r, "p_value_adjusted", float("nan"))
    if padj is None or math.isnan(padj):
        return "no significance test was possible"
    corr = {"bh": "Benjamini-Hochberg", "holm": "Holm"}.get(correction, correction)
    p = f"adjusted p = {padj:.2g}" if padj >= 1e-4 else "adjusted p < 0.0001"
    if r.significant:
        return f"significant after {corr} correction for {n_tests:,} tests, {p}"
    return f"not significant after {corr} correction for {n_tests:,} tests ({p})"


def fail_text(r, tolerance: float, positive, negative, n_tests: int, correction: str,
              alpha: float, confidence: float, many_models: bool) -> str:
    m = REGISTRY[r.metric]
    pop, event = phrases(r.metric, positive, negative)
    who = f"{r.attribute} = {r.group!r}"
    ref = f"{r.attribute} = {r.reference!r}"
    ci = ""
    if not math.isnan(getattr(r, "ratio_ci_low", float("nan"))):
        ci = (f"; {confidence:.0%} CI of the ratio {_num(r.ratio_ci_low)} to "
              f"{_num(r.ratio_ci_high)}")
    them, us = ("those", "those") if pop else ("people", "people")
    if not event:
        head = (f"the {m.label.lower()} of {who} is {_num(r.ratio)} times that of {ref}"
                if r.reference_value != 0 else
                f"the {m.label.lower()} of {who} is {_num(r.value, 3)} while {ref} is at 0")
    elif r.reference_value == 0:
        head = f"{us} with {who} {event} while none of {them} with {ref} did"
    else:
        head = f"{us} with {who} {event} {_num(r.ratio)} times as often as {them} with {ref}"
    head = f"{pop}, {head}" if pop else head[0].upper() + head[1:]
    values = (f"{m.label.lower()} {_pct(r.value)} vs {_pct(r.reference_value)}"
              if m.kind == "rate" else
              f"{m.label.lower()} {_num(r.value, 3)} vs {_num(r.reference_value, 3)}")
    text = (f"{head} ({values}; n = {int(r.n):,} vs {int(r.reference_n):,}{ci}; "
            f"{_significance(r, n_tests, correction, alpha)}). {_band(tolerance)}")
    side = direction(r.metric, r.value, r.reference_value)
    if side:
        loser = who if side == "group" else ref
        if r.metric in ("selection_rate", "tpr", "fpr", "fnr", "tnr"):
            text += f" The gap disadvantages people with {loser}."
        else:
            text += f" The model is wrong more often for people with {loser}."
    more = getattr(r, "more_rows_needed", float("nan"))
    if not r.significant and more is not None and not math.isnan(more):
        if more > 0:
            text += (f" It may be noise: {_rows(more)} more rows in {r.group!r} would settle "
                     "it.")
        else:
            text += " It may be noise."
    elif not r.significant:
        text += " It may be noise."
    if many_models:
        text = f"Model {r.model!r}: {text}"
    return text


def findings(disp: pd.DataFrame, spec, positive=None, negative=None,
             key_metrics=KEY_METRICS) -> list[dict]:
    """Statements, most severe first, each with the numbers behind it."""
    tolerance = spec.tolerance
    out = []
    has_sig = "significant" in disp
    n_tests = int(disp["p_value"].notna().sum()) if "p_value" in disp else 0
    many_models = disp["model"].nunique() > 1
    fails = disp[disp["verdict"] == FAIL].copy()
    if len(fails):
        with np.errstate(divide="ignore"):
            fails["_dist"] = np.abs(np.log(fails["ratio"].where(fails["ratio"] > 0)))
        if not has_sig:
            fails["significant"] = False
        fails["_sev"] = [SEVERITY_ORDER[severity(FAIL, s, r, tolerance)]
                         for s, r in zip(fails["significant"], fails["ratio"])]
        fails["_tier"] = fails["metric"].map(lambda m: _TIER.get(m, 1))
        fails = fails.sort_values(["_sev", "_tier", "_dist"], ascending=[True, True, False],
                                  na_position="first")
        for r in fails.itertuples(index=False):
            ratio = None if math.isnan(r.ratio) else float(r.ratio)
            rec = {"severity": severity(FAIL, bool(r.significant), r.ratio, tolerance),
                   "kind": "fail", "model": r.model, "attribute": r.attribute,
                   "group": r.group, "reference": r.reference, "metric": r.metric,
                   "value": r.value, "reference_value": r.reference_value, "ratio": ratio,
                   "difference": r.difference, "n": int(r.n),
                   "reference_n": int(r.reference_n),
                   "disadvantaged": {"group": r.group, "reference": r.reference}.get(
                       direction(r.metric, r.value, r.reference_value))}
            for extra in ("ratio_ci_low", "ratio_ci_high", "p_value_adjusted", "significant",
                          "more_rows_needed"):
                if hasattr(r, extra):
                    rec[extra] = getattr(r, extra)
            rec["text"] = fail_text(r, tolerance, positive, negative, n_tests,
                                    spec.correction, spec.alpha, spec.confidence,
                                    many_models)
            out.append(rec)
    key = disp[disp["metric"].isin(key_metrics)]
    names = ", ".join(REGISTRY[m].label.lower() for m in key_metrics)
    verdict = key["verdict"].to_numpy()
    blocks: dict = {}  # (model, attribute) -> [all pass, any insufficient]
    for m, a, v in zip(key["model"].to_numpy(), key["attribute"].to_numpy(), verdict):
        b = blocks.setdefault((m, a), [True, False])
        b[0] = b[0] and v == PASS
        b[1] = b[1] or v == INSUFFICIENT
    insuff_all = key[verdict == INSUFFICIENT] if (verdict == INSUFFICIENT).any() else None
    for (model, attribute), (all_pass, any_ins) in blocks.items():
        prefix = f"Model {model!r}: " if many_models else ""
        if all_pass:
            out.append({"severity": "info", "kind": "pass", "model": model,
                        "attribute": attribute, "group": None, "metric": None,
                        "text": f"{prefix}every group of {attribute} is within the tolerance "
                                f"band for {names}."})
        if any_ins:
            insuff = insuff_all[(insuff_all["model"] == model)
                                & (insuff_all["attribute"] == attribute)]
            groups = list(dict.fromkeys(insuff["group"]))
            shown = ", ".join(repr(g) for g in groups[:6]) + (" ..." if len(groups) > 6 else "")
            why = insuff.iloc[0]["verdict_reason"]
            text = (f"{prefix}{len(groups)} group(s) of {attribute} could not be judged on "
                    f"{names} ({shown}): {why}.")
            if "rows_needed" in insuff:
                need = insuff.groupby("group", sort=False)["rows_needed"].max().dropna()
                if len(need):
                    g0 = need.index[0]
                    n0 = int(insuff.loc[insuff["group"] == g0, "n"].iloc[0])
                    text += (f" To judge a gap the size of the tolerance, {g0!r} would need "
                             f"{_rows(need.iloc[0])} rows (it has {n0:,}).")
            out.append({"severity": "info", "kind": "insufficient", "model": model,
                        "attribute": attribute, "group": None, "metric": None,
                        "groups": groups, "text": text[0].upper() + text[1:]})
    out.sort(key=lambda f: SEVERITY_ORDER[f["severity"]])
    return out
