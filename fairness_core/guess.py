"""Sensible first guesses for the column roles of a predictions table.

Used by the dashboard to pre-fill its column mapping; every guess can be
changed by the user.  Guesses look at column names and at values: a column
with the label's two values is a decision; a number column within [0, 1]
with many values is a probability; a named score with another range (1 to
10, 0 to 100) is a score on its own scale; a short list of text values
(Low / Medium / High, approve / refer / decline) can be a decision whose
positive values are guessed.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .prepare import _POSITIVE_GUESSES, canon

#: Label names, most likely first (``two_year_recid`` before ``is_recid``).
_LABEL_NAMES = [re.compile(p, re.I) for p in (
    r"^(y|y_?true|label|target|truth|ground_?truth|actual|outcome)$",
    r"^(class|income|repaid|default(ed)?|churn(ed)?|two_year_recid|hired|approved_actual|"
    r"survived|credit_risk|good_bad|bad_good)$",
    r"^(is_recid|recid)$")]
_LABEL_WORDS = re.compile(r"label|target|truth|actual|outcome|true", re.I)
_PRED_WORDS = re.compile(r"pred|decision|approved|yhat|y_hat|classif|flag|model|recommend|"
                         r"high_risk|outcome_pred|assessment", re.I)
#: Text decisions: ordered levels (everything above the lowest is positive)
#: and words that mean a positive decision.
_ORDINALS = [("very low", "low", "medium", "high", "very high"), ("low", "medium", "high"),
             ("low", "moderate", "high"), ("low", "med", "high"), ("low", "high")]
_POSITIVE_WORDS = {"yes", "y", "true", "1", "approve", "approved", "accept", "accepted",
                   "grant", "granted", "hire", "hired", "admit", "admitted", "select",
                   "selected", "pass", "passed", "positive", "pos", "flag", "flagged",
                   "offer", "offered", "interview", "shortlisted", "eligible"}
_SCORE_WORDS = re.compile(r"score|prob|proba|risk|likelihood|confidence|logit", re.I)
_SENSITIVE = ["sex", "gender", "race", "ethnicity", "age_group", "age", "religion",
              "nationality", "native_country", "country", "disability", "marital_status",
              "marital", "language", "region", "relationship", "education"]
_ID_WORDS = re.compile(r"(^|_)(id|uuid|key|index|name|email|phone)($|_)", re.I)
#: Count-table columns: the whole name, its first word or its last word.
_COUNT_NAMES = {"n", "count", "counts", "cnt", "rows", "n_rows", "freq", "frequency",
                "number", "total", "num", "people", "persons", "records", "size"}
_COUNT_FIRST = {"n", "count", "num", "number", "nb"}
_COUNT_LAST = {"n", "count", "counts", "cnt", "rows", "freq", "frequency", "total", "number"}


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
    #: the count column of a count table (each row stands for its number of rows)
    counts: str | None = None
    #: columns with the label's values (decision candidates), best first
    decision_candidates: list = field(default_factory=list)
    #: text decision column -> the guessed values of its positive decision
    decision_values: dict = field(default_factory=dict)


def count_columns(df: pd.DataFrame) -> list[str]:
    """Columns that could say how many rows each row stands for: numbers
    (not true/false) that are whole and at least 0 wherever given."""
    out = []
    for c in df.columns:
        s = df[c]
        if not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            continue
        x = pd.to_numeric(s, errors="coerce").dropna().to_numpy(dtype=float)
        if len(x) and np.isfinite(x).all() and (x >= 0).all() and (x == np.floor(x)).all():
            out.append(str(c))
    return out


def _count_named(c: str) -> bool:
    low = c.strip().lower()
    if re.search(r"weight|wt$|score|prob|id$", low):
        return False
    words = [w for w in re.split(r"[\s_\-.]+", low) if w]
    return bool(words) and (low in _COUNT_NAMES or words[0] in _COUNT_FIRST
                            or words[-1] in _COUNT_LAST)


def guess_counts(df: pd.DataFrame) -> str | None:
    """The count column of a table that is already aggregated, when it is
    clear: the only whole-number column of at least 0, with some value above
    1, named like a count (n, count, rows, freq, frequency, number, total,
    n_people, row_count ...).  A weight column is never taken for one (its
    name says weight, and weights need not be whole).  None otherwise: each
    row then stands for one person."""
    head = df.head(200_000)
    named = [c for c in count_columns(head) if _count_named(c)
             and pd.to_numeric(head[c], errors="coerce").max() > 1]
    return named[0] if len(named) == 1 else None


def _label_rank(c: str) -> int | None:
    for i, pat in enumerate(_LABEL_NAMES):
        if pat.match(c):
            return i
    return None


def guess_decision_values(values) -> list | None:
    """The values of a text decision column that likely mean the positive
    decision: all but the lowest of ordered levels (Low / Medium / High ->
    Medium, High), else words such as approve, accept, yes, hired.  None
    when there is no good guess."""
    vals = [v for v in values if v is not None and str(v).strip()]
    low = {str(v).strip().lower().replace("_", " "): v for v in vals}
    for levels in _ORDINALS:
        if set(low) == set(levels) or (set(low) <= set(levels) and len(low) >= 2 and
                                       levels[0] in low):
            ordered = [lv for lv in levels if lv in low]
            return [str(low[lv]) for lv in ordered[1:]]
    hits = [str(v) for k, v in low.items() if k in _POSITIVE_WORDS]
    return hits if hits and len(hits) < len(vals) else None


def score_scale(s: pd.Series) -> str | None:
    """``"probability"`` for numbers within [0, 1] with many values,
    ``"scale"`` for another numeric score range, None for too few values."""
    if not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
        return None
    x = s.dropna()
    if x.nunique() <= 2 or not len(x):
        return None
    lo, hi = float(x.min()), float(x.max())
    if 0 <= lo and hi <= 1:
        return "probability"
    return "scale"


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


#: Words in the name of a label (or of its positive value) whose positive
#: class is something bad for the person: a model that predicts it flags
#: people for a harm (held in custody, refused a loan, investigated).
_HARM_WORDS = re.compile(
    r"recid|reoffend|re_offend|arrest|crime|criminal|violen|fraud|default|delinquen|"
    r"(^|_)risk|high_risk|(^|_)bad($|_)|suspic|suspect|investigat|charged|convict|evict|"
    r"terminat|detain|custody|abuse|dropout|drop_out|readmi", re.I)
#: Words that make the positive class good for the person.
_BENEFIT_WORDS = re.compile(
    r"approv|accept|(^|_)admi(t|ssion)|hire|hired|offer|grant|repaid|repay|(^|_)income|"
    r"promot|(^|_)select|interview|eligib|award|(^|_)good($|_)|success|pass|>", re.I)


def guess_positive_decision(label: str | None, positive=None) -> tuple[str, str | None]:
    """Whether a positive decision is a "benefit" or a "harm" for the
    person, guessed from the names of the label and of its positive class,
    and why (None when nothing in the names says "harm": then "benefit",
    the usual case of a loan, an interview or an offer).

    A label such as ``two_year_recid`` (reoffended within two years),
    ``is_fraud`` or ``default`` names an outcome that is bad for the person:
    a model that predicts it flags people for a harm.  The positive class's
    own name comes first: ``credit_risk`` whose positive class is ``good``
    is a benefit, ``bad`` a harm."""
    if positive is None:
        positive = []
    elif isinstance(positive, (str, int, float, bool)):
        positive = [positive]
    values = [str(v).strip() for v in positive]

    def says(text: str):
        words = text.strip().replace(" ", "_").replace("-", "_")
        if _BENEFIT_WORDS.search(words):
            return "benefit"
        return "harm" if _HARM_WORDS.search(words) else None

    for v in values:
        if says(v) == "benefit":
            return "benefit", None
        if says(v) == "harm":
            return "harm", (f"the positive class {v!r} of {label!r} sounds like something "
                            "bad for the person (a model that predicts it flags people)")
    if label and says(str(label)) == "harm":
        return "harm", (f"the true outcome {str(label)!r} sounds like something bad for the "
                        "person (a model that predicts it flags people)")
    return "benefit", None


def binary_values(s: pd.Series) -> list | None:
    """The two (or one) distinct values of a column, or None."""
    vals = s.dropna().unique()[:3]
    if len(vals) > 2 or len(vals) == 0:
        return None
    if len({canon(v) for v in vals}) != len(vals):
        return None
    return list(vals)


def distinct_values(s: pd.Series, limit: int = 50) -> list | None:
    """The distinct values of a column as shown to people (equal-meaning
    values such as 1 and "1" once), in a stable order; None when there are
    more than ``limit``."""
    from .prepare import display

    vals = s.dropna().unique()[: limit * 4 + 1]
    out: dict = {}
    for v in vals:
        out.setdefault(canon(v), display(v))
        if len(out) > limit:
            return None
    try:
        return sorted(out.values(), key=lambda x: (0, float(x), "") if _is_number(x)
                      else (1, 0.0, x.lower()))
    except TypeError:  # pragma: no cover - display values are strings
        return list(out.values())


def _is_number(x: str) -> bool:
    try:
        float(x)
        return True
    except ValueError:
        return False


def score_range(s: pd.Series) -> tuple[float, float] | None:
    """(min, max) of a score column's finite values, or None."""
    x = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    x = x[np.isfinite(x)]
    return (float(x.min()), float(x.max())) if len(x) else None


def _is_copy(c: str, cols: list, head: pd.DataFrame) -> bool:
    """``x.1`` that repeats column ``x`` (a duplicated header name)."""
    m = re.match(r"^(.*)\.\d+$", c)
    return bool(m) and m.group(1) in cols and head[c].equals(head[m.group(1)])


def guess_roles(df: pd.DataFrame, max_groups: int = 50, max_models: int = 2,
                counts: str | None = "guess") -> Guess:
    """Guess every column's role.  ``counts``: the count column of a count
    table ("guess": see :func:`guess_counts`; None: each row is one person);
    it takes no other role."""
    g = Guess()
    g.counts = guess_counts(df) if counts == "guess" else counts
    cols = [str(c) for c in df.columns if str(c) != g.counts]
    head = df.head(200_000)
    binary = {c: binary_values(head[c]) for c in cols}
    binary = {c: v for c, v in binary.items() if v is not None}
    copies = {c for c in cols if _is_copy(c, cols, head)}
    # label: a known outcome name, else a binary column not named as a model
    ranked = sorted((r, cols.index(c), c) for c in binary
                    if (r := _label_rank(c)) is not None)
    named = [c for _, _, c in ranked] or \
        [c for c in binary if _LABEL_WORDS.search(c) and not _PRED_WORDS.search(c)]
    others = [c for c in binary if not _PRED_WORDS.search(c) and not _SCORE_WORDS.search(c)]
    g.label = (named or others or list(binary) or [None])[0]
    if g.label is not None:
        label_toks = {canon(v) for v in binary[g.label]}
        g.positive = guess_positive(binary[g.label])
        # decisions: any column with the label's values; named ones first
        cands = [c for c in binary if c != g.label and c not in copies
                 and {canon(v) for v in binary[c]} <= label_toks]
        hinted = [c for c in cands if (_PRED_WORDS.search(c) or _SCORE_WORDS.search(c))
                  and _label_rank(c) is None]
        g.decision_candidates = hinted + [c for c in cands if c not in hinted]
        g.predictions = hinted[:max_models]
    # scores: numbers with many values, named like a score, or probabilities
    named_scores, probs = [], []
    for c in cols:
        if c == g.label or c in g.predictions or c in copies:
            continue
        kind = score_scale(head[c])
        if kind is None or _ID_WORDS.search(c):
            continue
        if _SCORE_WORDS.search(c):
            named_scores.append(c)
        elif kind == "probability" and head[c].nunique() > 10 and \
                pd.api.types.is_float_dtype(head[c]):
            probs.append(c)
    g.scores = (named_scores + probs)[:max_models]
    # text decisions: a few text values named like a decision or a score
    for c in cols:
        if c == g.label or c in binary or c in copies:
            continue
        s = head[c]
        if pd.api.types.is_numeric_dtype(s) or not (_PRED_WORDS.search(c) or
                                                    _SCORE_WORDS.search(c)):
            continue
        vals = s.dropna().unique()
        if 2 <= len(vals) <= 10:
            guess = guess_decision_values(vals)
            if guess:
                g.decision_values[c] = guess
    if not g.predictions and not g.scores and g.decision_values:
        g.predictions = list(g.decision_values)[:1]
    if not g.predictions and not g.scores:  # no yes/no model: several classes?
        _class_roles(g, cols, head, copies, max_models)
    used = {g.label, *g.predictions, *g.scores, *copies}
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


def _class_roles(g: Guess, cols: list, head: pd.DataFrame, copies: set,
                 max_models: int) -> None:
    """Without a yes/no label: a label of several classes (3 to 20 values,
    named like an outcome) and the model columns whose values are among its
    classes (named like a model), for a multiclass audit."""
    from .tasks import MAX_CLASSES

    def classes(c):
        vals = head[c].dropna().unique()
        return {canon(v) for v in vals} if 3 <= len(vals) <= MAX_CLASSES else None

    named = [c for c in cols if c not in copies and (_label_rank(c) is not None or
             _LABEL_WORDS.search(c)) and not _PRED_WORDS.search(c)]
    for label in named:
        have = classes(label)
        if have is None:
            continue
        preds = [c for c in cols if c != label and c not in copies and _PRED_WORDS.search(c)
                 and (v := classes(c)) is not None and v <= have]
        if preds:
            g.label, g.positive, g.predictions = label, None, preds[:max_models]
            return
