"""The metric registry: name -> formula on counts, plain-language meaning,
and the names other tools use for the same number.

One registry serves the engine, the CLI, the dashboard and the reports.
Every formula is a function of the four cells TN, FP, FN, TP of a group,
so a metric costs O(groups), never O(rows).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .counts import CELLS

_DEN_REASON = {
    ("tn", "fp", "fn", "tp"): "the group has no rows (or zero total weight)",
    ("fn", "tp"): "the group has no actual positives, so there is nothing to detect",
    ("tn", "fp"): "the group has no actual negatives, so there is no one to falsely flag",
    ("fp", "tp"): "the model made no positive predictions in this group",
    ("tn", "fn"): "the model made no negative predictions in this group",
    ("fp", "fn", "tp"): "the group has no actual or predicted positives",
}


#: What a positive decision is for the people it is given to.
POSITIVE_DECISIONS = ("benefit", "harm")


@dataclass(frozen=True)
class Metric:
    """One group metric, and everything the tool knows about it.

    ``numerator`` and ``denominator`` give coefficients on the cells; the
    metric is ``sum(num * cells) / sum(den * cells)``.  ``kind`` is
    ``"rate"`` when the numerator cells are a subset of the denominator
    cells with coefficient 1 (a proportion of a subpopulation).

    ``favours`` says, for a positive decision that is a ``benefit`` and for
    one that is a ``harm``, whether a higher value is better (+1) or worse
    (-1) for the people of a group, or takes no side (None).  ``key`` gives
    the metric's place among the key metrics of each (None: not key).
    ``population`` and ``event`` are the phrases of the findings, with the
    placeholders ``{outcome_pos}``, ``{outcome_neg}``, ``{decision_pos}``
    and ``{decision_neg}``; ``side`` says how a disadvantage reads:
    ``"decision"`` (the gap disadvantages people) or ``"error"`` (the model
    is wrong more often for them).
    """

    name: str
    label: str
    short: str
    meaning: str
    matters_when: str
    numerator: dict
    denominator: dict
    higher_is_better: bool | None
    aliases: dict = field(default_factory=dict)
    favours: dict = field(default_factory=dict)
    key: dict = field(default_factory=dict)
    population: str = ""
    event: str = ""
    side: str = "decision"

    @property
    def kind(self) -> str:
        if self.numerator and all(v == 1 for v in self.numerator.values()) and \
                set(self.numerator) <= set(self.denominator) and \
                all(v == 1 for v in self.denominator.values()):
            return "rate"
        return "derived"

    @property
    def is_rate(self) -> bool:
        return self.kind == "rate"

    @property
    def percent(self) -> bool:
        """Shown as a percentage (every rate, and balanced accuracy)."""
        return self.kind == "rate" or self.name == "balanced_accuracy"

    @property
    def judged(self) -> bool:
        """Gets disparities and verdicts (the base rate describes the data)."""
        return self.higher_is_better is not None

    @property
    def num_vector(self) -> np.ndarray:
        """Numerator coefficients on the cells, in :data:`CELLS` order."""
        return np.array([self.numerator.get(c, 0) for c in CELLS], dtype=float)

    @property
    def den_vector(self) -> np.ndarray:
        """Denominator coefficients on the cells, in :data:`CELLS` order."""
        return np.array([self.denominator.get(c, 0) for c in CELLS], dtype=float)

    def direction(self, decision: str = "benefit") -> int | None:
        """+1: higher is better for the group's people; -1: worse; None."""
        return self.favours.get(decision)

    def best_higher(self, decision: str = "benefit") -> bool:
        """For a best-off reference: is the highest value the best-off?"""
        d = self.direction(decision)
        return bool(self.higher_is_better) if d is None else d > 0

    def format(self, x) -> str:
        """The value in the metric's unit: a percentage for rates."""
        from .formatting import num, pct
        return pct(x) if self.percent else num(x)

    def phrases(self, words: dict) -> tuple[str, str]:
        """(population, what happened), filled with ``words``."""
        return self.population.format(**words), self.event.format(**words)

    def undefined_reason(self) -> str:
        if self.name == "balanced_accuracy":
            return "the group has no rows"
        cells = tuple(c for c in CELLS if c in self.denominator)
        return _DEN_REASON.get(cells, "its denominator is zero in this group")

    def to_dict(self) -> dict:
        return {"name": self.name, "label": self.label, "short": self.short,
                "meaning": self.meaning, "matters_when": self.matters_when,
                "higher_is_better": self.higher_is_better, "aliases": dict(self.aliases),
                "favours": dict(self.favours), "key": dict(self.key)}


def _m(name, label, short, meaning, matters, num, den, hib, favours=None, key=None,
       population="", event="", side="decision", **aliases):
    b, h = favours or (None, None)
    kb, kh = key or (None, None)
    return Metric(name, label, short, meaning, matters, num, den, hib, aliases,
                  {"benefit": b, "harm": h}, {"benefit": kb, "harm": kh}, population, event,
                  side)


_ALL = {"tn": 1, "fp": 1, "fn": 1, "tp": 1}
_AMONG_POS = "Among people whose true outcome was {outcome_pos}"
_AMONG_NEG = "Among people whose true outcome was {outcome_neg}"
REGISTRY: dict[str, Metric] = {m.name: m for m in [
    _m("selection_rate", "Selection rate", "selected",
       "Share of the group that the model gives the positive decision.",
       "The decision itself is the benefit or the harm (a loan, a job interview, an "
       "investigation) and groups should receive it at similar rates regardless of the "
       "outcome: this is demographic parity.",
       {"fp": 1, "tp": 1}, _ALL, True, (1, -1), (0, 0), "", "were given {decision_pos}",
       fairlearn="selection_rate", aif360="selection_rate", aequitas="pp / group size"),
    _m("base_rate", "Base rate", "base rate",
       "Share of the group whose true outcome is positive (it describes the data, not the "
       "model).",
       "Always read it beside the selection rate: groups whose base rates differ can only "
       "have equal selection rates if the model is wrong more often for some of them.",
       {"fn": 1, "tp": 1}, _ALL, None, event="had the true outcome {outcome_pos}",
       fairlearn="mean_prediction(y_true)", aif360="base_rate", aequitas="prev"),
    _m("accuracy", "Accuracy", "accuracy",
       "Share of the group for whom the model's decision matches the true outcome.",
       "A first look at who the model serves worse; it can hide opposite errors, so check "
       "the error rates below.",
       {"tn": 1, "tp": 1}, _ALL, True, (1, 1), (5, 5), "", "got the correct decision",
       "error", fairlearn="accuracy_score", aif360="accuracy"),
    _m("error_rate", "Error rate", "error",
       "Share of the group for whom the model's decision is wrong.",
       "The cost of any error falls on the person, whichever way it goes (overall accuracy "
       "equality).",
       {"fp": 1, "fn": 1}, _ALL, False, (-1, -1), None, "", "got a wrong decision", "error",
       fairlearn="1 - accuracy_score", aif360="error_rate"),
    _m("balanced_accuracy", "Balanced accuracy", "bal. accuracy",
       "Average of the true positive rate and the true negative rate (as scikit-learn; "
       "with one true class present, that class's rate).",
       "Accuracy when one outcome is rare in a group, so that always predicting the common "
       "outcome does not look good.",
       {}, {}, True, (1, 1), None, side="error", fairlearn="balanced_accuracy_score"),
    _m("tpr", "True positive rate", "TPR",
       "Among people whose true outcome is positive, the share the model correctly gives "
       "the positive decision (recall, sensitivity).",
       "The positive decision is a benefit that qualified people should get equally "
       "(equal opportunity), e.g. loans for people who will repay.",
       {"tp": 1}, {"fn": 1, "tp": 1}, True, (1, -1), (3, 4), _AMONG_POS,
       "were given {decision_pos}", fairlearn="true_positive_rate",
       aif360="true_positive_rate", aequitas="tpr"),
    _m("fpr", "False positive rate", "FPR",
       "Among people whose true outcome is negative, the share the model wrongly gives the "
       "positive decision.",
       "The positive decision is a harm (flagged as high risk, sent to investigation): "
       "people who do not deserve it should be wrongly flagged equally (part of "
       "equalized odds).",
       {"fp": 1}, {"tn": 1, "fp": 1}, False, (1, -1), (4, 1), _AMONG_NEG,
       "were given {decision_pos}", fairlearn="false_positive_rate",
       aif360="false_positive_rate", aequitas="fpr"),
    _m("tnr", "True negative rate", "TNR",
       "Among people whose true outcome is negative, the share the model correctly gives "
       "the negative decision (specificity).",
       "The mirror of the false positive rate: correct rejections should be equally "
       "likely.", {"tn": 1}, {"tn": 1, "fp": 1}, True, (-1, 1), None, _AMONG_NEG,
       "were given {decision_neg}", fairlearn="true_negative_rate",
       aif360="true_negative_rate", aequitas="tnr"),
    _m("fnr", "False negative rate", "FNR",
       "Among people whose true outcome is positive, the share the model wrongly gives the "
       "negative decision (missed).",
       "A missed positive is costly for the person (a qualified applicant refused, an "
       "illness not detected).",
       {"fn": 1}, {"fn": 1, "tp": 1}, False, (-1, 1), (1, 3), _AMONG_POS,
       "were given {decision_neg}", fairlearn="false_negative_rate",
       aif360="false_negative_rate", aequitas="fnr"),
    _m("ppv", "Precision (PPV)", "PPV",
       "Among people given the positive decision, the share whose true outcome is positive.",
       "A positive decision should mean the same thing for every group (predictive parity), "
       "e.g. a high risk score should be equally reliable.",
       {"tp": 1}, {"fp": 1, "tp": 1}, True, (None, 1), None,
       "Among people the model gave {decision_pos}", "had the true outcome {outcome_pos}",
       fairlearn="precision_score", aif360="positive_predictive_value",
       aequitas="precision"),
    _m("npv", "Negative predictive value", "NPV",
       "Among people given the negative decision, the share whose true outcome is negative.",
       "A negative decision should be equally reliable for every group.",
       {"tn": 1}, {"tn": 1, "fn": 1}, True, (1, None), None,
       "Among people the model gave {decision_neg}", "had the true outcome {outcome_neg}",
       aif360="negative_predictive_value", aequitas="npv"),
    _m("fdr", "False discovery rate", "FDR",
       "Among people given the positive decision, the share whose true outcome is negative.",
       "The positive decision is a harm and wrongly flagged people should not be "
       "concentrated in one group.",
       {"fp": 1}, {"fp": 1, "tp": 1}, False, (None, -1), (None, 2),
       "Among people the model gave {decision_pos}", "had the true outcome {outcome_neg}",
       aif360="false_discovery_rate", aequitas="fdr"),
    _m("for", "False omission rate", "FOR",
       "Among people given the negative decision, the share whose true outcome is positive.",
       "The positive decision is a benefit and wrongly refused people should not be "
       "concentrated in one group.",
       {"fn": 1}, {"tn": 1, "fn": 1}, False, (-1, None), (2, None),
       "Among people the model gave {decision_neg}", "had the true outcome {outcome_pos}",
       aif360="false_omission_rate", aequitas="for"),
    _m("f1", "F1 score", "F1",
       "Harmonic mean of precision and true positive rate.",
       "A single summary of how well positives are found and how reliable a positive "
       "decision is.", {"tp": 2}, {"tp": 2, "fp": 1, "fn": 1}, True, (1, 1), None,
       side="error", fairlearn="f1_score"),
]}


def key_metrics(decision: str = "benefit") -> list[str]:
    """The metrics to look at first for a positive decision that is a
    ``benefit`` or a ``harm`` (as the Aequitas fairness tree: for a benefit,
    false negative and false omission rate and recall parity; for a harm,
    false positive and false discovery rate parity), with the selection
    rate (demographic parity) first and accuracy last."""
    ranked = [(m.key[decision], n) for n, m in REGISTRY.items() if m.key.get(decision) is not None]
    return [n for _, n in sorted(ranked)]


def tier(metric: str, decision: str = "benefit") -> int:
    """How early a metric's gaps come among equally severe ones: 0 for the
    errors that matter most for ``decision`` (false negative and false
    omission rates for a benefit; false positive and false discovery rates
    for a harm), 1 for the other key metrics, 2 for the rest."""
    rank = REGISTRY[metric].key.get(decision)
    if rank is None:
        return 2
    return 0 if rank in (1, 2) else 1


#: Metrics that get disparities and verdicts (base rate describes the data).
DISPARITY_METRICS = [m for m in REGISTRY if REGISTRY[m].judged]

#: Why a metric that needs the true outcome has no value in an audit without one.
NO_OUTCOME = "not available without a true outcome"
#: The metrics of the decisions alone: the only ones an audit without a true
#: outcome (no label column) reports.  Every other registry metric, and
#: every score metric that compares scores with outcomes (AUC, Brier,
#: calibration), is then absent (NaN) with :data:`NO_OUTCOME` as reason.
DECISION_METRICS = ("selection_rate",)
#: Score-based numbers that need the true outcome.
OUTCOME_SCORE_METRICS = ("auc", "auc_error_bound", "brier")


def needs_outcome(name: str) -> bool:
    """True for a metric that compares decisions or scores with the true outcome."""
    return name not in DECISION_METRICS


def available_metrics(labelled: bool = True, metrics=None) -> list[str]:
    """The metrics among ``metrics`` (default: the registry) an audit can
    report: all of them with a true outcome, the decision metrics without."""
    names = list(REGISTRY if metrics is None else metrics)
    return names if labelled else [m for m in names if not needs_outcome(m)]


def blank_outcome_metrics(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every column of an outcome metric (its value and its
    ``_ci_low`` / ``_ci_high``) set to NaN: an audit without a true outcome
    never shows a number for them."""
    names = [m for m in (*REGISTRY, *OUTCOME_SCORE_METRICS) if needs_outcome(m)]
    cols = [c for c in frame.columns
            if c in names or any(c == f"{m}_ci_{s}" for m in names for s in ("low", "high"))]
    if not cols:
        return frame
    return frame.assign(**{c: np.nan for c in cols})


def _coefficients():
    names = [n for n in REGISTRY if n != "balanced_accuracy"]
    num = np.stack([REGISTRY[n].num_vector for n in names], axis=1)
    den = np.stack([REGISTRY[n].den_vector for n in names], axis=1)
    return names, num, den


_NAMES, _NUM, _DEN = _coefficients()


def metric_values(cells: np.ndarray, labelled: bool = True) -> dict[str, np.ndarray]:
    """All registry metrics for an array of count vectors (``..., 4``).

    Undefined values (0/0) are NaN; without a true outcome (``labelled``
    false) every metric that needs one is NaN too.  Works on any leading shape, so the
    same function serves one table, a threshold sweep or a bootstrap: two
    small matrix products give every numerator and denominator.
    """
    cells = np.asarray(cells, dtype=float)
    num, den = cells @ _NUM, cells @ _DEN
    with np.errstate(divide="ignore", invalid="ignore"):
        vals = np.where(den > 0, num / den, np.nan)
    out = {name: vals[..., j] for j, name in enumerate(_NAMES)}
    tpr, tnr = out["tpr"], out["tnr"]
    out["balanced_accuracy"] = np.where(
        np.isnan(tpr), tnr, np.where(np.isnan(tnr), tpr, (tpr + tnr) / 2))
    if not labelled:
        blank = np.full(cells.shape[:-1], np.nan)
        return {name: out[name] if not needs_outcome(name) else blank for name in REGISTRY}
    return {name: out[name] for name in REGISTRY}


def add_metrics(counts: pd.DataFrame, labelled: bool = True) -> pd.DataFrame:
    """Append a column per registry metric and ``share`` to a count table
    (the outcome metrics are NaN when not ``labelled``)."""
    cells = counts[list(CELLS)].to_numpy(dtype=float)
    vals = metric_values(cells, labelled)
    extra = {}
    if "share" not in counts:
        total = counts.groupby(["model", "attribute"], sort=False)["weight"].transform("sum")
        extra["share"] = np.where(total > 0, counts["weight"] / total, np.nan)
    return pd.concat([counts, pd.DataFrame({**extra, **vals}, index=counts.index)], axis=1)


def undefined_reason(name: str, labelled: bool = True) -> str:
    """Why a metric has no value: :data:`NO_OUTCOME` for an outcome metric
    of an audit without a true outcome, else why its denominator is 0."""
    if not labelled and needs_outcome(name):
        return NO_OUTCOME
    return REGISTRY[name].undefined_reason()


def undefined_reasons_table(df, labelled: bool = True) -> list[dict]:
    """Per row of a per-group table: ``{metric: reason}`` for the metrics
    that are undefined (NaN) in that row (and, without a true outcome, for
    the outcome score metrics in the table)."""
    undefined = [(name, undefined_reason(name, labelled), df[name].isna().to_numpy())
                 for name in REGISTRY]
    if not labelled:
        always = np.ones(len(df), dtype=bool)
        undefined += [(name, NO_OUTCOME, always) for name in OUTCOME_SCORE_METRICS
                      if name in df]
    return [{name: why for name, why, nan in undefined if nan[i]} for i in range(len(df))]
