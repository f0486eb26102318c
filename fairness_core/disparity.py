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


def _check_named_references(groups: pd.DataFrame, spec: AuditSpec) -> None:
    for attribute, want in spec.reference.items():
        have = groups.loc[groups["attribute"] == attribute, "group"].unique().tolist()
        if str(want) not in have:
            raise InputError(f"The reference group {str(want)!r} is not a group of "
                             f"{attribute!r}. Its groups are {quote_list(have)}.",
                             field="reference", column=attribute, value=want)


def references(long: pd.DataFrame, spec: AuditSpec) -> pd.DataFrame:
    """The reference group per model x attribute x metric, and why it was chosen.

    ``long`` has one row per model, attribute, metric, group with ``n`` and
    ``value``.  Named references win; otherwise ``largest`` (most rows; the
    first in group order on a tie) or ``best`` (the most favourable value
    among groups of at least the minimum size, else the largest).
    """
    keys = ["model", "attribute", "metric"]
    largest = long.loc[long.groupby(keys, sort=False)["n"].idxmax(), keys + ["group"]]
    ref = largest.assign(reference_choice="largest group")
    if spec.reference_strategy == "best":
        hib = long["metric"].map(lambda m: REGISTRY[m].higher_is_better).astype(bool)
        signed = long["value"].where(hib, -long["value"])
        ok = long.assign(_v=signed)[(long["n"] >= spec.min_group_size) & signed.notna()]
        if len(ok):
            best = ok.loc[ok.groupby(keys, sort=False)["_v"].idxmax(), keys + ["group"]]
            best = best.assign(reference_choice="best-off group")
            ref = pd.concat([best, ref]).drop_duplicates(keys, keep="first")
    if spec.reference:
        named = ref[keys].drop_duplicates()
        named = named[named["attribute"].isin(spec.reference)]
        named = named.assign(group=named["attribute"].map(
            lambda a: str(spec.reference[a])), reference_choice="named")
        ref = pd.concat([named, ref]).drop_duplicates(keys, keep="first")
    return ref.rename(columns={"group": "reference"})


def disparities(groups: pd.DataFrame, spec: AuditSpec) -> pd.DataFrame:
    """Difference and ratio of every group to its reference, with a verdict.

    ``groups`` is the per-group metric table (no ``(overall)`` rows).
    Reference rows themselves are not listed.  Verdicts:

    - ``insufficient``: the group or the reference has fewer than
      ``min_group_size`` rows, or the metric is undefined in either;
    - ``pass``: the ratio is inside ``[tolerance, 1 / tolerance]`` (or both
      values are 0);
    - ``fail``: outside (or the reference is 0 and the group is not).
    """
    _check_named_references(groups, spec)
    base = groups[["model", "attribute", "group", "n"]]
    long = pd.concat([base.assign(metric=m, value=groups[m].to_numpy(dtype=float))
                      for m in DISPARITY_METRICS], ignore_index=True)
    ref = references(long, spec)
    keys = ["model", "attribute", "metric"]
    rv = long.rename(columns={"group": "reference", "n": "reference_n",
                              "value": "reference_value"})
    d = long.merge(ref, on=keys, how="left").merge(rv, on=keys + ["reference"], how="left")
    d = d[d["group"] != d["reference"]].reset_index(drop=True)
    val, refv = d["value"].to_numpy(), d["reference_value"].to_numpy()
    n, n_ref = d["n"].to_numpy(), d["reference_n"].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(refv > 0, val / refv, np.nan)
    d["difference"] = val - refv
    d["ratio"] = ratio
    mgs, lo, hi = spec.min_group_size, spec.tolerance, 1 / spec.tolerance
    small = (n < mgs) | (n_ref < mgs)
    undefined = np.isnan(val) | np.isnan(refv)
    zero_ref = ~undefined & (refv == 0)
    inside = (ratio >= lo - _EPS) & (ratio <= hi + _EPS)
    d["verdict"] = np.select(
        [small, undefined, zero_ref & (val == 0), zero_ref, inside],
        [INSUFFICIENT, INSUFFICIENT, PASS, FAIL, PASS], FAIL)
    reasons = []
    for r in zip(n, n_ref, val, refv, ratio, small, undefined, d["metric"]):
        reasons.append(_reason(*r, mgs, lo, hi))
    d["verdict_reason"] = reasons
    cols = ["model", "attribute", "metric", "group", "reference", "reference_choice", "n",
            "reference_n", "value", "reference_value", "difference", "ratio", "verdict",
            "verdict_reason"]
    return d[cols]


def _reason(n, n_ref, val, refv, ratio, small, undefined, metric, mgs, lo, hi) -> str:
    if small:
        parts = [f"this group has {_fmt_n(n)} rows" if n < mgs else None,
                 f"the reference has {_fmt_n(n_ref)} rows" if n_ref < mgs else None]
        return " and ".join(p for p in parts if p) + f", fewer than the minimum of {mgs}"
    if undefined:
        where = "this group" if np.isnan(val) else "the reference group"
        return f"undefined in {where}: {REGISTRY[metric].undefined_reason()}"
    if refv == 0:
        return ("both the group and the reference are at 0" if val == 0 else
                "the reference is at 0 and this group is not, so the ratio is unbounded")
    side = "inside" if lo - _EPS <= ratio <= hi + _EPS else "outside"
    return f"ratio {ratio:.3f} is {side} [{lo:.3g}, {hi:.3g}]"


def _between(g: pd.DataFrame, metric: str):
    """fairlearn's between-groups difference (max - min) and ratio (min / max)
    per model x attribute, over the groups where the metric is defined."""
    agg = g.groupby(["model", "attribute"], sort=False)[metric].agg(["min", "max", "count"])
    lo, hi, k = agg["min"].to_numpy(), agg["max"].to_numpy(), agg["count"].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = np.where(k >= 2, hi - lo, np.nan)
        ratio = np.where((k >= 2) & (hi > 0), lo / hi, np.nan)
    return agg.index, diff, ratio


def summary(groups: pd.DataFrame, disp: pd.DataFrame, spec: AuditSpec) -> pd.DataFrame:
    """fairlearn's between-group summaries per model x attribute.

    demographic parity (selection rate), equalized odds (worst case of TPR
    and FPR, and their mean: average odds) and equal opportunity (TPR), each
    as difference (max - min) and ratio (min / max) over the groups where
    the metric is defined.  Groups of every size take part, as in fairlearn;
    equalized odds is undefined when either of its parts is.  The verdict
    counts come from the per-group disparities.
    """
    index, dp_d, dp_r = _between(groups, "selection_rate")
    _, tpr_d, tpr_r = _between(groups, "tpr")
    _, fpr_d, fpr_r = _between(groups, "fpr")
    out = pd.DataFrame({"model": index.get_level_values(0),
                        "attribute": index.get_level_values(1)})
    out["n_groups"] = groups.groupby(["model", "attribute"], sort=False).size().to_numpy()
    out["demographic_parity_difference"] = dp_d
    out["demographic_parity_ratio"] = dp_r
    # np.maximum / np.minimum propagate NaN: undefined when either part is
    out["equalized_odds_difference"] = np.maximum(tpr_d, fpr_d)
    out["equalized_odds_ratio"] = np.minimum(tpr_r, fpr_r)
    out["average_odds_difference"] = (tpr_d + fpr_d) / 2
    out["average_odds_ratio"] = (tpr_r + fpr_r) / 2
    out["equal_opportunity_difference"] = tpr_d
    out["equal_opportunity_ratio"] = tpr_r
    out["true_positive_rate_difference"] = tpr_d
    out["false_positive_rate_difference"] = fpr_d
    counts = disp.groupby(["model", "attribute", "verdict"], sort=False).size()
    for v in (FAIL, PASS, INSUFFICIENT):
        c = counts.xs(v, level="verdict") if v in counts.index.get_level_values(2) \
            else pd.Series(dtype=int)
        out[f"n_{v}"] = [int(c.get((m, a), 0)) for m, a in zip(out["model"], out["attribute"])]
    if "significant" in disp:
        sig = disp[(disp["verdict"] == FAIL) & disp["significant"]].groupby(
            ["model", "attribute"], sort=False).size()
        out["n_fail_significant"] = [int(sig.get((m, a), 0)) for m, a in
                                     zip(out["model"], out["attribute"])]
        out["n_fail_not_significant"] = out["n_fail"] - out["n_fail_significant"]
    small = groups[groups["n"] < spec.min_group_size].groupby(
        ["model", "attribute"], sort=False)["group"].agg(list)
    out["groups_below_min_size"] = [small.get((m, a), []) for m, a in
                                    zip(out["model"], out["attribute"])]
    return out
