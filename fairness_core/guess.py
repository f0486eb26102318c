"""Sensible first guesses for the column roles of a predictions table.

Used by the dashboard to pre-fill its column mapping; every guess can be
changed by the user.  Guesses look at column names and values only.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .prepare import _POSITIVE_GUESSES, canon

_LABEL_NAMES = re.compile(r"^(y|y_?true|label|target|truth|ground_?truth|actual|outcome|class|"
                          r"income|repaid|default(ed)?|churn(ed)?|two_year_recid|is_recid|"
                          r"hired|approved_actual|survived)$", re.I)
_LABEL_WORDS = re.compile(r"label|target|truth|actual|outcome|true", re.I)
_PRED_WORDS = re.compile(r"pred|decision|approved|yhat|y_hat|classif|flag|model|recommend",
                         re.I)
_SCORE_WORDS = re.compile(r"score|prob|proba|risk|likelihood|confidence|logit", re.I)
_SENSITIVE = ["sex", "gender", "race", "ethnicity", "age_group", "age", "religion",
              "nationality", "native_country", "country", "disability", "marital_status",
              "marital", "language", "region", "relationship", "education"]
_ID_WORDS = re.compile(r"(^|_)(id|uuid|key|index|name|email|phone)($|_)", re.I)


@dataclass
class Guess:
    label: str | None = None
    positive: str | None = None
    predictions: list = field(default_factory=list)
    scores: list = field(default_factory=list)
    sensitive: list = field(default_factory=list)
    candidates_sensitive: list = field(default_factory=list)
    numeric_sensitive: list = field(default_factory=list)
    weight: str | None = None


def _tokens(s: pd.Series, limit: int = 3) -> set | None:
    vals = s.dropna().unique()[: limit + 1]
    if len(vals) > limit:
        return None
    return {canon(v) for v in vals}


def guess_positive(values) -> str | None:
    """The favourable label value when it is obvious (1, True, yes, >50K)."""
    vals = [v for v in values]
    toks = {canon(v): v for v in vals}
    for known, pos in _POSITIVE_GUESSES:
        if toks and set(toks) <= known and pos in toks:
            return str(toks[pos])
    for v in vals:  # income-style labels: the "more" side
        if str(v).strip().startswith(">"):
            return str(v)
    return None


def binary_values(s: pd.Series) -> list | None:
    """The two (or one) distinct values of a column, or None."""
    vals = s.dropna().unique()[:3]
    if len(vals) > 2 or len(vals) == 0:
        return None
    if len({canon(v) for v in vals}) != len(vals):
        return None
    return list(vals)


def guess_roles(df: pd.DataFrame, max_groups: int = 50) -> Guess:
    g = Guess()
    cols = [str(c) for c in df.columns]
    head = df.head(200_000)
    binary = {c: binary_values(head[c]) for c in cols}
    binary = {c: v for c, v in binary.items() if v is not None}
    # label
    named = [c for c in binary if _LABEL_NAMES.match(c)] or \
        [c for c in binary if _LABEL_WORDS.search(c) and not _PRED_WORDS.search(c)]
    others = [c for c in binary if not _PRED_WORDS.search(c) and not _SCORE_WORDS.search(c)]
    g.label = (named or others or list(binary) or [None])[0]
    if g.label is not None:
        label_toks = {canon(v) for v in binary[g.label]}
        g.positive = guess_positive(binary[g.label])
        g.predictions = [c for c in binary if c != g.label and _PRED_WORDS.search(c)
                         and {canon(v) for v in binary[c]} <= label_toks]
    # scores: numeric, many values, named like a score
    for c in cols:
        if c == g.label or c in g.predictions:
            continue
        s = head[c]
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s) \
                and _SCORE_WORDS.search(c) and s.nunique() > 2:
            g.scores.append(c)
    used = {g.label, *g.predictions, *g.scores}
    # sensitive attributes
    cands, numeric = [], []
    for c in cols:
        if c in used or _ID_WORDS.search(c):
            continue
        s = head[c]
        is_num = pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)
        n = s.nunique(dropna=True)
        if is_num and n > max_groups:
            if c.lower() in _SENSITIVE:
                numeric.append(c)
            continue
        if 2 <= n <= max_groups and not (is_num and pd.api.types.is_float_dtype(s)):
            cands.append(c)

    def rank(c):
        low = c.lower()
        return (_SENSITIVE.index(low) if low in _SENSITIVE else len(_SENSITIVE), cols.index(c))

    cands.sort(key=rank)
    g.candidates_sensitive = cands
    known = [c for c in cands if c.lower() in _SENSITIVE]
    # age_group and age: keep the grouped one
    if "age_group" in [k.lower() for k in known]:
        known = [k for k in known if k.lower() != "age"]
    g.sensitive = known[:3] or cands[:1]
    g.numeric_sensitive = numeric
    weights = [c for c in cols if re.search(r"weight|wt$", c, re.I) and c not in used
               and pd.api.types.is_numeric_dtype(head[c])]
    g.weight = weights[0] if weights else None
    return g


def default_bins(values: pd.Series) -> list[float]:
    """Round bin edges for a numeric attribute such as age."""
    x = pd.to_numeric(values, errors="coerce").dropna().to_numpy()
    if not len(x):
        return [0.0, 1.0]
    lo, hi = float(np.floor(x.min())), float(np.ceil(x.max()))
    if lo >= 0 and hi <= 130 and hi > 20:  # looks like an age
        edges = [e for e in (18, 25, 35, 45, 55, 65) if lo < e < hi]
        return [lo] + [float(e) for e in edges] + [hi + 1]
    qs = np.unique(np.round(np.quantile(x, [0, 0.25, 0.5, 0.75]), 2))
    return [float(q) for q in qs] + [hi + 1]
