"""What the user chose: the audit specification, validated at the edge."""
from __future__ import annotations

import itertools
import json
import math
import numbers
import re
from dataclasses import asdict, dataclass, field

from .errors import InputError, quote_list
from .limits import limits

REFERENCE_STRATEGIES = ("largest", "best")
POSITIVE_DECISIONS = ("benefit", "harm")
CORRECTIONS = ("bh", "holm")
INTERSECTION_SEP = " & "


def _edges(value):
    """Bin edges from a list or from text such as "18, 25, 40"."""
    if isinstance(value, str):
        parts = [p for p in re.split(r"[,;\s]+", value.strip()) if p]
        return _EdgeText(value, parts)
    return list(value)


class _EdgeText(list):
    """Edges parsed from text; remembers the text for error messages."""

    def __init__(self, text: str, parts: list):
        super().__init__(parts)
        self.text = text

    def __repr__(self) -> str:
        return repr(self.text)


def _values(value) -> list:
    """A list of distinct value texts (a single value may be given alone)."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        value = [value]
    out = [str(v).strip() for v in value if v is not None and str(v).strip() != ""]
    return list(dict.fromkeys(out))


def _whole(value) -> int | None:
    """``value`` as an int when it is a whole number (an int of any size, a
    float or a text such as "12"), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, str):
        text = value.strip().replace("_", "")
        if re.fullmatch(r"[+-]?\d+", text):
            try:
                return int(text)
            except ValueError:  # more digits than Python converts
                return None
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return int(x) if math.isfinite(x) and x.is_integer() else None


def _as_tuple(value) -> tuple:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


@dataclass(frozen=True)
class AuditSpec:
    """Everything that defines one audit, independent of the data.

    Parameters
    ----------
    label : str or None
        Column holding the true outcome (two values).  None (or empty) audits
        the decisions alone: selection rates, demographic parity and score
        distributions; every metric that needs the true outcome is then
        reported as not available.
    predictions : sequence of str
        Columns holding each model's predicted outcome; one model per column,
        named by the column.
    scores : sequence of str
        Columns holding each model's numeric score; each becomes a model whose
        prediction is ``score >= threshold``, named by the column.
    threshold : float, mapping score column -> float, or None
        Decision threshold for score columns: one for all, one per column,
        or None (the default) for a threshold that fits each score's scale
        (0.5 for scores within [0, 1], otherwise the middle of the range);
        the threshold used is always stated in the result.
    positive : str or sequence of str, optional
        The label value (or values) that is the positive class: what the
        true positive, false positive and selection rates count (fairlearn's
        ``pos_label``).  Guessed for 0/1, True/False, yes/no; required
        otherwise, and when the label has more than two values (then the
        set of values that count as positive).
    positive_decision : {"benefit", "harm"}
        What a positive decision is for the person it is given to: a
        ``benefit`` (a loan, an interview) or a ``harm`` (flagged as high
        risk, investigated, denied).  It decides who a gap disadvantages,
        the wording of the findings and which metrics come first.
    prediction_positive : mapping prediction column -> sequence of values
        For a decision column whose values are not the label's (text such
        as Low / Medium / High, or approve / refer / decline), the values
        that mean the positive decision.
    sensitive : sequence of str
        Sensitive attribute columns.
    intersectional : bool
        Also audit every combination of two or more sensitive attributes.
    weight : str, optional
        Column of non-negative sample weights.
    counts : str, optional
        The table is already aggregated (a count table): each row stands for
        this column's number of rows, with the same values.  Every number
        and interval is the same as from the rows themselves.  With a
        ``weight``, each of those rows has that weight.
    reference : mapping attribute -> group
        Named reference groups; other attributes use ``reference_strategy``.
    reference_strategy : {"largest", "best"}
        ``largest``: the group with most rows.  ``best``: per metric, the
        group with the most favourable value (among groups of at least
        ``min_group_size`` rows).
    tolerance : float in (0, 1]
        A ratio to the reference inside ``[tolerance, 1/tolerance]`` passes
        (0.8 is the four-fifths rule).
    min_group_size : int
        Groups with fewer rows get no pass/fail verdict.
    max_groups : int
        A sensitive column with more distinct values than this is refused as
        an identifier-like column.
    bins : mapping column -> list of edges
        Numeric sensitive columns cut into intervals ``[e0, e1), [e1, e2) ...``.
    alpha : float in (0, 0.5]
        Significance level of the disparity tests, after correction for
        multiple comparisons.
    correction : {"bh", "holm"}
        Multiple-comparison control over all tests of the audit:
        Benjamini-Hochberg (false discovery rate) or Holm (family-wise).
    confidence : float in (0.5, 1)
        Level of every interval (0.95: 95% intervals).
    n_bootstrap : int
        Bootstrap replicates (drawn from the count table, so the cost does
        not depend on the number of rows); 0 turns bootstrap intervals off.
    seed : int
        Seed of the bootstrap: the same data and spec give the same numbers.
    power : float in (0, 1)
        The power for the "rows needed" estimates.
    task : {"binary", "multiclass", "regression"}
        What the audit is about (see :mod:`fairness_core.tasks`): yes/no
        decisions (the default), one of several classes, or a number.
        :func:`fairness_core.tasks.infer_task` guesses it from the data.
    """

    label: str | None = None
    sensitive: tuple = ()
    predictions: tuple = ()
    scores: tuple = ()
    threshold: object = None
    positive: object = None
    positive_decision: str = "benefit"
    prediction_positive: dict = field(default_factory=dict)
    intersectional: bool = False
    weight: str | None = None
    counts: str | None = None
    reference: dict = field(default_factory=dict)
    reference_strategy: str = "largest"
    tolerance: float = 0.8
    min_group_size: int = 30
    max_groups: int = 50
    bins: dict = field(default_factory=dict)
    alpha: float = 0.05
    correction: str = "bh"
    confidence: float = 0.95
    n_bootstrap: int = 1000
    seed: int = 0
    power: float = 0.8
    task: str = "binary"

    def __post_init__(self):
        object.__setattr__(self, "predictions", _as_tuple(self.predictions))
        object.__setattr__(self, "scores", _as_tuple(self.scores))
        object.__setattr__(self, "sensitive", _as_tuple(self.sensitive))
        object.__setattr__(self, "reference", dict(self.reference or {}))
        object.__setattr__(self, "prediction_positive", {
            str(k): _values(v) for k, v in (self.prediction_positive or {}).items()})
        if isinstance(self.positive, (list, tuple, set)):
            vals = _values(self.positive)
            object.__setattr__(self, "positive", vals[0] if len(vals) == 1 else tuple(vals))
        object.__setattr__(self, "bins", {k: _edges(v) for k, v in (self.bins or {}).items()})
        self.validate()

    # ------------------------------------------------------------------
    def validate(self) -> None:
        """Check the choices that do not need the data."""
        if self.label is not None and not str(self.label).strip():
            object.__setattr__(self, "label", None)
        from .tasks import TASKS
        if self.task not in TASKS:
            raise InputError(f"Unknown task {self.task!r}; use one of {quote_list(TASKS)}.",
                             field="task", value=self.task)
        if self.task != "binary" and not self.labelled:
            raise InputError(f"A {self.task} audit compares predictions with the true "
                             "outcome: choose the label column, or audit the decisions "
                             "alone as yes/no decisions.", field="label")
        if self.task != "binary" and self.scores:
            raise InputError(f"A {self.task} audit takes each model's predicted "
                             f"{'class' if self.task == 'multiclass' else 'number'} as a "
                             "prediction column, not as a score: choose it as a prediction.",
                             field="scores", column=self.scores[0])
        if not self.predictions and not self.scores:
            raise InputError("Choose at least one prediction column or score column: "
                             "there is no model to audit.", field="predictions")
        if not self.sensitive:
            raise InputError("Choose at least one sensitive attribute (for example sex, "
                             "race or age group) to compare groups by.", field="sensitive")
        models = list(self.predictions) + list(self.scores)
        dupes = sorted({m for m in models if models.count(m) > 1})
        if dupes:
            raise InputError(f"Column {quote_list(dupes)} is chosen as a model twice; "
                             "choose each prediction or score column once.",
                             field="predictions", column=dupes[0])
        if len(set(self.sensitive)) != len(self.sensitive):
            raise InputError("A sensitive attribute is chosen twice; choose each once.",
                             field="sensitive")
        for role, cols in (("prediction", self.predictions), ("score", self.scores),
                           ("sensitive attribute", self.sensitive)):
            if self.label is not None and self.label in cols:
                raise InputError(f"The label column {self.label!r} is also chosen as a "
                                 f"{role}; choose a different column.", field="label",
                                 column=self.label)
        clash = set(models) & set(self.sensitive)
        if clash:
            c = sorted(clash)[0]
            raise InputError(f"Column {c!r} is chosen both as a model and as a sensitive "
                             "attribute; choose it for one role only.", field="sensitive",
                             column=c)
        if self.weight and self.weight in set(models) | set(self.sensitive) | {self.label}:
            raise InputError(f"The weight column {self.weight!r} is also used in another "
                             "role; choose a separate column of sample weights.",
                             field="weight", column=self.weight)
        if self.counts and self.counts in set(models) | set(self.sensitive) | {
                self.label, self.weight}:
            raise InputError(f"The count column {self.counts!r} is also used in another "
                             "role; choose the column that says how many rows each row "
                             "stands for.", field="counts", column=self.counts)
        try:
            tol = float(self.tolerance)
        except (TypeError, ValueError):
            tol = math.nan
        if not (0 < tol <= 1):
            raise InputError(f"The tolerance must be a number above 0 and at most 1 (0.8 is "
                             f"the four-fifths rule); got {self.tolerance!r}.",
                             field="tolerance", value=self.tolerance)
        object.__setattr__(self, "tolerance", tol)
        try:
            mgs = int(self.min_group_size)
            ok = mgs == float(self.min_group_size) and mgs >= 1
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise InputError(f"The minimum group size must be a whole number of at least 1; "
                             f"got {self.min_group_size!r}.", field="min_group_size",
                             value=self.min_group_size)
        object.__setattr__(self, "min_group_size", mgs)
        mg = _whole(self.max_groups)
        if mg is None or mg < 2:
            raise InputError(f"The group limit must be a whole number of at least 2; got "
                             f"{self.max_groups!r}.", field="max_groups")
        limits().check("The group limit", mg, "max_groups", field="max_groups",
                       fix="A column with that many values is an identifier, not a group: "
                           "choose a column of groups, or cut a numeric one into ranges.")
        object.__setattr__(self, "max_groups", mg)
        self._check_threshold()
        self._check_decisions()
        if self.reference_strategy not in REFERENCE_STRATEGIES:
            raise InputError(f"Unknown reference choice {self.reference_strategy!r}; use "
                             f"one of {quote_list(REFERENCE_STRATEGIES)} or name a group.",
                             field="reference")
        self._check_statistics()
        known = set(self.attribute_names())
        for attr in self.reference:
            if attr not in known:
                raise InputError(f"A reference group is given for {attr!r}, which is not one "
                                 f"of the audited attributes ({quote_list(sorted(known))}).",
                                 field="reference", column=attr)
        for col, edges in list(self.bins.items()):
            if col not in self.sensitive:
                raise InputError(f"Bins are given for {col!r}, which is not a chosen "
                                 "sensitive attribute.", field="bins", column=col)
            try:
                e = [float(x) for x in edges]
            except (TypeError, ValueError):
                e = []
            if len(e) < 2 or any(not math.isfinite(x) and abs(x) != math.inf for x in e) \
                    or any(b <= a for a, b in zip(e, e[1:])):
                raise InputError(f"The bin edges for {col!r} must be at least two increasing "
                                 f"numbers, such as 18, 25, 40, 65; got {edges!r}.",
                                 field="bins", column=col)
            self.bins[col] = e

    def _check_threshold(self) -> None:
        def number(v, what):
            try:
                x = float(v)
            except (TypeError, ValueError):
                x = math.nan
            if not math.isfinite(x):
                raise InputError(f"The score threshold{what} must be a number; got {v!r}.",
                                 field="threshold", value=v)
            return x

        thr = self.threshold
        if thr is None or (isinstance(thr, str) and thr.strip().lower() in ("", "auto")):
            object.__setattr__(self, "threshold", None)
        elif isinstance(thr, dict):
            out = {}
            for col, v in thr.items():
                if col not in self.scores:
                    raise InputError(f"A threshold is given for {col!r}, which is not a chosen "
                                     f"score column ({quote_list(self.scores)}).",
                                     field="threshold", column=col)
                out[str(col)] = number(v, f" for {col!r}")
            object.__setattr__(self, "threshold", out)
        else:
            object.__setattr__(self, "threshold", number(thr, ""))

    def _check_decisions(self) -> None:
        decision = str(self.positive_decision).strip().lower()
        if decision not in POSITIVE_DECISIONS:
            raise InputError(f"Is a positive decision a benefit or a harm for the person who "
                             f"gets it? Use 'benefit' (a loan, an interview) or 'harm' (flagged "
                             f"as high risk, investigated); got {self.positive_decision!r}.",
                             field="positive_decision", value=self.positive_decision)
        object.__setattr__(self, "positive_decision", decision)
        for col, vals in self.prediction_positive.items():
            if col not in self.predictions:
                raise InputError(f"Positive decision values are given for {col!r}, which is "
                                 f"not a chosen prediction column "
                                 f"({quote_list(self.predictions) or 'none chosen'}).",
                                 field="prediction_positive", column=col)
            if not vals:
                raise InputError(f"Name at least one value of {col!r} that means the positive "
                                 "decision.", field="prediction_positive", column=col)

    def threshold_for(self, score: str) -> float | None:
        """The threshold given for a score column (None: fit it to the scale)."""
        if isinstance(self.threshold, dict):
            return self.threshold.get(score)
        return self.threshold

    def _check_statistics(self) -> None:
        def number(name, lo, hi, example):
            v = getattr(self, name)
            try:
                x = float(v)
            except (TypeError, ValueError):
                x = math.nan
            if not (lo < x < hi) and not (name == "alpha" and x == 0.5):
                raise InputError(f"The {name.replace('_', ' ')} must be a number between {lo} "
                                 f"and {hi} (for example {example}); got {v!r}.",
                                 field=name, value=v)
            object.__setattr__(self, name, x)

        number("alpha", 0, 0.5, 0.05)
        number("confidence", 0.5, 1, 0.95)
        number("power", 0, 1, 0.8)
        corr = str(self.correction).lower()
        if corr not in CORRECTIONS:
            raise InputError(f"Unknown multiple-comparison correction {self.correction!r}; use "
                             "'bh' (Benjamini-Hochberg) or 'holm'.", field="correction",
                             value=self.correction)
        object.__setattr__(self, "correction", corr)
        n_boot = _whole(self.n_bootstrap)
        if n_boot is None or n_boot < 0:
            raise InputError(f"The number of bootstrap replicates must be a whole number of at "
                             f"least 0 (0 turns them off); got {self.n_bootstrap!r}.",
                             field="n_bootstrap", value=self.n_bootstrap)
        if 0 < n_boot < 100:
            raise InputError(f"Use at least 100 bootstrap replicates (1,000 or more is "
                             f"better), or 0 to turn them off; got {n_boot}.",
                             field="n_bootstrap", value=n_boot)
        limits().check("The number of bootstrap replicates", n_boot, "max_bootstrap",
                       field="n_bootstrap",
                       fix="Use fewer replicates (1,000 to 10,000 give stable 95% intervals).")
        object.__setattr__(self, "n_bootstrap", n_boot)
        # numpy's SeedSequence takes any non-negative integer, however large
        seed = _whole(self.seed)
        if seed is None or seed < 0:
            raise InputError(f"The seed must be a whole number of at least 0 (of any size); "
                             f"got {self.seed!r}.", field="seed", value=self.seed)
        object.__setattr__(self, "seed", seed)

    # ------------------------------------------------------------------
    @property
    def labelled(self) -> bool:
        """True when the audit has a true outcome (a label column)."""
        return self.label is not None

    @property
    def models(self) -> tuple:
        return tuple(self.predictions) + tuple(self.scores)

    def attribute_sets(self) -> list[tuple[str, ...]]:
        """Every audited attribute as a tuple of sensitive columns."""
        sets = [(c,) for c in self.sensitive]
        if self.intersectional and len(self.sensitive) > 1:
            for k in range(2, len(self.sensitive) + 1):
                sets.extend(itertools.combinations(self.sensitive, k))
        return sets

    def attribute_names(self) -> list[str]:
        return [INTERSECTION_SEP.join(s) for s in self.attribute_sets()]

    def columns(self) -> list[str]:
        """The columns an audit reads, each once, in a stable order."""
        cols = [*([self.label] if self.labelled else []), *self.predictions, *self.scores,
                *self.sensitive]
        if self.weight:
            cols.append(self.weight)
        if self.counts:
            cols.append(self.counts)
        return list(dict.fromkeys(cols))

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("predictions", "scores", "sensitive"):
            d[k] = list(d[k])
        if isinstance(d["positive"], (list, tuple)):
            d["positive"] = [str(v) for v in d["positive"]]
        elif d["positive"] is not None:
            d["positive"] = str(d["positive"])
        d["prediction_positive"] = {k: list(v) for k, v in d["prediction_positive"].items()}
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> "AuditSpec":
        if not isinstance(data, dict):
            raise InputError("The audit configuration must be a JSON object.", field="config")
        allowed = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise InputError(f"The audit configuration has unknown keys {quote_list(unknown)}; "
                             f"known keys are {quote_list(sorted(allowed))}.", field="config")
        if "label" not in data:  # explicit either way: a column, or null for none
            raise InputError("The audit configuration does not name the label column; give "
                             "\"label\": null to audit the decisions alone (no true "
                             "outcome).", field="config")
        return cls(**data)
