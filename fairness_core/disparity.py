"""Differences, ratios, reference groups, tolerance verdicts and fairlearn's
between-group summaries, all computed from the per-group metric table."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import InputError, quote_list
from .metrics import DISPARITY_METRICS, REGISTRY
from .spec import AuditSpec

PASS, FAIL, INSUFFICIENT = "pass", "fail", "insufficient"
_EPS = 1e-12


def _fmt_n(n) -> str:
    return f"{int(n):,}"


def choose_reference(groups: pd.DataFrame, attribute: str, metric: str, spec: AuditSpec):
    """The reference group of one attribute (and, for ``best``, one metric).

    Returns ``(group_label, how)`` where ``how`` explains the choice.
    """
    if attribute in spec.reference:
        want = str(spec.reference[attribute])
        if want not in set(groups["group"]):
            raise InputError(f"The reference group {want!r} is not a group of {attribute!r}. "
                             f"Its groups are {quote_list(groups['group'].tolist())}.",
                             field="reference", column=attribute, value=want)
        return want, "named"
    if spec.reference_strategy == "best":
        m = REGISTRY[metric]
        ok = groups[(groups["n"] >= spec.min_group_size) & groups[metric].notna()]
        if len(ok):
            idx = ok[metric].idxmax() if m.higher_is_better else ok[metric].idxmin()
            return groups.at[idx, "group"], "best-off group"
    idx = groups["n"].idxmax()
    return groups.at[idx, "group"], "largest group"


def _verdict(n, n_ref, value, ref, ratio, spec: AuditSpec, metric: str, reasons):
    mgs = spec.min_group_size
    if n < mgs or n_ref < mgs:
        small = [f"this group has {_fmt_n(n)} rows" if n < mgs else None,
                 f"the reference has {_fmt_n(n_ref)} rows" if n_ref < mgs else None]
        return INSUFFICIENT, (" and ".join(s for s in small if s) +
                              f", fewer than the minimum of {mgs}")
    if np.isnan(value):
        return INSUFFICIENT, f"undefined in this group: {reasons(metric)}"
    if np.isnan(ref):
        return INSUFFICIENT, f"undefined in the reference group: {reasons(metric)}"
    if ref == 0:
        if value == 0:
            return PASS, "both the group and the reference are at 0"
        return FAIL, "the reference is at 0 and this group is not, so the ratio is unbounded"
    lo, hi = spec.tolerance, 1 / spec.tolerance
    if lo - _EPS <= ratio <= hi + _EPS:
        return PASS, f"ratio {ratio:.3f} is inside [{lo:.3g}, {hi:.3g}]"
    return FAIL, f"ratio {ratio:.3f} is outside [{lo:.3g}, {hi:.3g}]"


def disparities(groups: pd.DataFrame, spec: AuditSpec) -> pd.DataFrame:
    """Difference and ratio of every group to its reference, with a verdict.

    ``groups`` is the per-group metric table (no ``(overall)`` rows).
    Reference rows themselves are not listed.
    """
    records = []
    for (model, attribute), g in groups.groupby(["model", "attribute"], sort=False):
        g = g.reset_index(drop=True)
        for metric in DISPARITY_METRICS:
            ref_label, how = choose_reference(g, attribute, metric, spec)
            r = g.index[g["group"] == ref_label][0]
            ref_val, n_ref = float(g.at[r, metric]), int(g.at[r, "n"])
            reason_of = REGISTRY[metric].undefined_reason
            for i in g.index:
                if i == r:
                    continue
                val, n = float(g.at[i, metric]), int(g.at[i, "n"])
                diff = val - ref_val
                ratio = val / ref_val if ref_val and not np.isnan(ref_val) else np.nan
                verdict, why = _verdict(n, n_ref, val, ref_val, ratio, spec, metric,
                                        lambda _m: reason_of())
                records.append({
                    "model": model, "attribute": attribute, "metric": metric,
                    "group": g.at[i, "group"], "reference": ref_label,
                    "reference_choice": how, "n": n, "reference_n": n_ref,
                    "value": val, "reference_value": ref_val, "difference": diff,
                    "ratio": ratio, "verdict": verdict, "verdict_reason": why})
    cols = ["model", "attribute", "metric", "group", "reference", "reference_choice", "n",
            "reference_n", "value", "reference_value", "difference", "ratio", "verdict",
            "verdict_reason"]
    return pd.DataFrame.from_records(records, columns=cols)


def _between(values: pd.Series):
    """fairlearn's between-groups difference (max - min) and ratio (min / max)."""
    v = values.dropna()
    if len(v) < 2:
        return np.nan, np.nan
    lo, hi = float(v.min()), float(v.max())
    return hi - lo, (lo / hi if hi > 0 else np.nan)


def _both(a: float, b: float) -> bool:
    return not (np.isnan(a) or np.isnan(b))


def summary(groups: pd.DataFrame, disp: pd.DataFrame, spec: AuditSpec) -> pd.DataFrame:
    """fairlearn's between-group summaries per model x attribute.

    demographic parity (selection rate), equalized odds (worst case of TPR
    and FPR, and their mean: average odds) and equal opportunity (TPR), each
    as difference (max - min) and ratio (min / max) over the groups where
    the metric is defined.  Groups of every size take part, as in fairlearn;
    the verdict counts come from the per-group disparities.
    """
    rows = []
    for (model, attribute), g in groups.groupby(["model", "attribute"], sort=False):
        dp_d, dp_r = _between(g["selection_rate"])
        tpr_d, tpr_r = _between(g["tpr"])
        fpr_d, fpr_r = _between(g["fpr"])
        d = disp[(disp["model"] == model) & (disp["attribute"] == attribute)]
        counts = d["verdict"].value_counts()
        small = g.loc[g["n"] < spec.min_group_size, "group"].tolist()
        rows.append({
            "model": model, "attribute": attribute, "n_groups": len(g),
            "demographic_parity_difference": dp_d, "demographic_parity_ratio": dp_r,
            # Undefined when either part is: the worst case is then unknown.
            "equalized_odds_difference": max(tpr_d, fpr_d) if _both(tpr_d, fpr_d) else np.nan,
            "equalized_odds_ratio": min(tpr_r, fpr_r) if _both(tpr_r, fpr_r) else np.nan,
            "average_odds_difference": (tpr_d + fpr_d) / 2,
            "average_odds_ratio": (tpr_r + fpr_r) / 2,
            "equal_opportunity_difference": tpr_d, "equal_opportunity_ratio": tpr_r,
            "true_positive_rate_difference": tpr_d, "false_positive_rate_difference": fpr_d,
            "n_fail": int(counts.get(FAIL, 0)), "n_pass": int(counts.get(PASS, 0)),
            "n_insufficient": int(counts.get(INSUFFICIENT, 0)),
            "groups_below_min_size": small,
        })
    return pd.DataFrame.from_records(rows)
