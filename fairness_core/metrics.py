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


@dataclass(frozen=True)
class Metric:
    """One group metric.

    ``numerator`` and ``denominator`` give coefficients on the cells; the
    metric is ``sum(num * cells) / sum(den * cells)``.  ``kind`` is
    ``"rate"`` when the numerator cells are a subset of the denominator
    cells with coefficient 1 (a proportion of a subpopulation).
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

    @property
    def kind(self) -> str:
        if self.numerator and all(v == 1 for v in self.numerator.values()) and \
                set(self.numerator) <= set(self.denominator) and \
                all(v == 1 for v in self.denominator.values()):
            return "rate"
        return "derived"

    def undefined_reason(self) -> str:
        cells = tuple(c for c in CELLS if c in self.denominator)
        return _DEN_REASON.get(cells, "its denominator is zero in this group")

    def to_dict(self) -> dict:
        return {"name": self.name, "label": self.label, "short": self.short,
                "meaning": self.meaning, "matters_when": self.matters_when,
                "higher_is_better": self.higher_is_better, "aliases": dict(self.aliases)}


def _m(name, label, short, meaning, matters, num, den, hib, **aliases):
    return Metric(name, label, short, meaning, matters, num, den, hib, aliases)


_ALL = {"tn": 1, "fp": 1, "fn": 1, "tp": 1}
REGISTRY: dict[str, Metric] = {m.name: m for m in [
    _m("selection_rate", "Selection rate", "selected",
       "Share of the group that the model gives the positive decision.",
       "The decision itself is the benefit or the harm (a loan, a job interview, an "
       "investigation) and groups should receive it at similar rates regardless of the "
       "outcome: this is demographic parity.",
       {"fp": 1, "tp": 1}, _ALL, True,
       fairlearn="selection_rate", aif360="selection_rate", aequitas="pp / group size"),
    _m("base_rate", "Base rate", "base rate",
       "Share of the group whose true outcome is positive (it describes the data, not the "
       "model).",
       "Always read it beside the selection rate: groups whose base rates differ can only "
       "have equal selection rates if the model is wrong more often for some of them.",
       {"fn": 1, "tp": 1}, _ALL, None, fairlearn="mean_prediction(y_true)",
       aif360="base_rate", aequitas="prev"),
    _m("accuracy", "Accuracy", "accuracy",
       "Share of the group for whom the model's decision matches the true outcome.",
       "A first look at who the model serves worse; it can hide opposite errors, so check "
       "the error rates below.",
       {"tn": 1, "tp": 1}, _ALL, True, fairlearn="accuracy_score", aif360="accuracy"),
    _m("error_rate", "Error rate", "error",
       "Share of the group for whom the model's decision is wrong.",
       "The cost of any error falls on the person, whichever way it goes (overall accuracy "
       "equality).",
       {"fp": 1, "fn": 1}, _ALL, False, fairlearn="1 - accuracy_score",
       aif360="error_rate"),
    _m("balanced_accuracy", "Balanced accuracy", "bal. accuracy",
       "Average of the true positive rate and the true negative rate (as scikit-learn; "
       "with one true class present, that class's rate).",
       "Accuracy when one outcome is rare in a group, so that always predicting the common "
       "outcome does not look good.",
       {}, {}, True, fairlearn="balanced_accuracy_score"),
    _m("tpr", "True positive rate", "TPR",
       "Among people whose true outcome is positive, the share the model correctly gives "
       "the positive decision (recall, sensitivity).",
       "The positive decision is a benefit that qualified people should get equally "
       "(equal opportunity), e.g. loans for people who will repay.",
       {"tp": 1}, {"fn": 1, "tp": 1}, True, fairlearn="true_positive_rate",
       aif360="true_positive_rate", aequitas="tpr"),
    _m("fpr", "False positive rate", "FPR",
       "Among people whose true outcome is negative, the share the model wrongly gives the "
       "positive decision.",
       "The positive decision is a harm (flagged as high risk, sent to investigation): "
       "people who do not deserve it should be wrongly flagged equally (part of "
       "equalized odds).",
       {"fp": 1}, {"tn": 1, "fp": 1}, False, fairlearn="false_positive_rate",
       aif360="false_positive_rate", aequitas="fpr"),
    _m("tnr", "True negative rate", "TNR",
       "Among people whose true outcome is negative, the share the model correctly gives "
       "the negative decision (specificity).",
       "The mirror of the false positive rate: correct rejections should be equally "
       "likely.", {"tn": 1}, {"tn": 1, "fp": 1}, True,
       fairlearn="true_negative_rate", aif360="true_negative_rate", aequitas="tnr"),
    _m("fnr", "False negative rate", "FNR",
       "Among people whose true outcome is positive, the share the model wrongly gives the "
       "negative decision (missed).",
       "A missed positive is costly for the person (a qualified applicant refused, an "
       "illness not detected).",
       {"fn": 1}, {"fn": 1, "tp": 1}, False, fairlearn="false_negative_rate",
       aif360="false_negative_rate", aequitas="fnr"),
    _m("ppv", "Precision (PPV)", "PPV",
       "Among people given the positive decision, the share whose true outcome is positive.",
       "A positive decision should mean the same thing for every group (predictive parity), "
       "e.g. a high risk score should be equally reliable.",
       {"tp": 1}, {"fp": 1, "tp": 1}, True, fairlearn="precision_score",
       aif360="positive_predictive_value", aequitas="precision"),
    _m("npv", "Negative predictive value", "NPV",
       "Among people given the negative decision, the share whose true outcome is negative.",
       "A negative decision should be equally reliable for every group.",
       {"tn": 1}, {"tn": 1, "fn": 1}, True, aif360="negative_predictive_value",
       aequitas="npv"),
    _m("fdr", "False discovery rate", "FDR",
       "Among people given the positive decision, the share whose true outcome is negative.",
       "The positive decision is a harm and wrongly flagged people should not be "
       "concentrated in one group.",
       {"fp": 1}, {"fp": 1, "tp": 1}, False, aif360="false_discovery_rate",
       aequitas="fdr"),
    _m("for", "False omission rate", "FOR",
       "Among people given the negative decision, the share whose true outcome is positive.",
       "The positive decision is a benefit and wrongly refused people should not be "
       "concentrated in one group.",
       {"fn": 1}, {"tn": 1, "fn": 1}, False, aif360="false_omission_rate",
       aequitas="for"),
    _m("f1", "F1 score", "F1",
       "Harmonic mean of precision and true positive rate.",
       "A single summary of how well positives are found and how reliable a positive "
       "decision is.", {"tp": 2}, {"tp": 2, "fp": 1, "fn": 1}, True, fairlearn="f1_score"),
]}

#: Metrics that get disparities and verdicts (base rate describes the data).
DISPARITY_METRICS = [m for m in REGISTRY if REGISTRY[m].higher_is_better is not None]


def _coefficients():
    names = [n for n in REGISTRY if n != "balanced_accuracy"]
    num = np.array([[REGISTRY[n].numerator.get(c, 0) for n in names] for c in CELLS], float)
    den = np.array([[REGISTRY[n].denominator.get(c, 0) for n in names] for c in CELLS], float)
    return names, num, den


_NAMES, _NUM, _DEN = _coefficients()


def metric_values(cells: np.ndarray) -> dict[str, np.ndarray]:
    """All registry metrics for an array of count vectors (``..., 4``).

    Undefined values (0/0) are NaN.  Works on any leading shape, so the
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
    return {name: out[name] for name in REGISTRY}


def add_metrics(counts: pd.DataFrame) -> pd.DataFrame:
    """Append a column per registry metric and ``share`` to a count table."""
    cells = counts[list(CELLS)].to_numpy(dtype=float)
    vals = metric_values(cells)
    extra = {}
    if "share" not in counts:
        total = counts.groupby(["model", "attribute"], sort=False)["weight"].transform("sum")
        extra["share"] = np.where(total > 0, counts["weight"] / total, np.nan)
    return pd.concat([counts, pd.DataFrame({**extra, **vals}, index=counts.index)], axis=1)


def undefined_reasons(row) -> dict:
    """``{metric: reason}`` for the metrics that are undefined in a row."""
    reasons = {}
    for name, m in REGISTRY.items():
        v = row[name]
        if v is None or (isinstance(v, float) and np.isnan(v)):
            reasons[name] = ("the group has no rows" if name == "balanced_accuracy"
                             else m.undefined_reason())
    return reasons
