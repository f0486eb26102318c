"""Differences, ratios, reference groups, tolerance verdicts and fairlearn's
between-group summaries, all computed from the per-group metric table."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from .errors import InputError, quote_list
from .metrics import DISPARITY_METRICS, REGISTRY, available_metrics
from .spec import AuditSpec
from .tolerance import Tolerance

PASS, FAIL, INSUFFICIENT = "pass", "fail", "insufficient"


def _fmt_n(n) -> str:
    return f"{int(n):,}"


def named_group(want, have) -> str | None:
    """The group of ``have`` that a named reference ``want`` means: the one
    equal to it, else the only one equal to it but for the spaces around
    (a group written " Male" in the file is named Male on a command line)."""
    want = str(want)
    if want in have:
        return want
    loose = [g for g in have if str(g).strip() == want.strip()]
    return loose[0] if len(loose) == 1 else None


def _check_named_references(groups: pd.DataFrame, spec: AuditSpec) -> None:
    for attribute, want in spec.reference.items():
        have = groups.loc[groups["attribute"] == attribute, "group"].unique().tolist()
        if named_group(want, have) is None:
            raise InputError(f"The reference group {str(want)!r} is not a group of "
                             f"{attribute!r}. Its groups are {quote_list(have)}.",
                             field="reference", column=attribute, value=want)


def _blocks(groups: pd.DataFrame):
    """Row positions of each model x attribute block, in table order."""
    blocks: dict = {}
    for i, key in enumerate(zip(groups["model"].to_numpy(dtype=object),
                                groups["attribute"].to_numpy(dtype=object))):
        blocks.setdefault(key, []).append(i)
    return [(key, np.asarray(rows, dtype=np.intp)) for key, rows in blocks.items()]


def disparities(groups: pd.DataFrame, spec: AuditSpec, not_judged: dict | None = None
                ) -> pd.DataFrame:
    """Difference and ratio of every group to its reference, with a verdict.

    ``groups`` is the per-group metric table (no ``(overall)`` rows).
    Reference groups: named ones win; otherwise ``largest`` (most rows; the
    first in group order on a tie) or ``best`` (per metric, the most
    favourable value among groups of at least the minimum size, else the
    largest).  Reference rows themselves are not listed.  Verdicts:

    - ``insufficient``: the group or the reference has fewer than
      ``min_group_size`` rows, or the metric is undefined in either;
    - ``pass``: the ratio is inside ``[tolerance, 1 / tolerance]`` (or both
      values are 0);
    - ``fail``: outside (or the reference is 0 and the group is not).

    ``not_judged`` maps a model to the reason none of its gaps can be
    judged (a model that gives everyone, or no one, the positive decision:
    every rate sits at its degenerate value and a "pass" would be empty);
    its verdicts are ``insufficient`` with that reason.
    """
    _check_named_references(groups, spec)
    # without a true outcome only the decision metrics are compared
    metrics = available_metrics(spec.labelled, DISPARITY_METRICS)
    n_m = len(metrics)
    grp = groups["group"].to_numpy(dtype=object)
    n_all = groups["n"].to_numpy()
    V = groups[metrics].to_numpy(dtype=float)
    hib = np.array([REGISTRY[m].best_higher(spec.positive_decision) for m in metrics])
    mgs = spec.min_group_size
    parts_m, parts_g, parts_r, parts_c = [], [], [], []
    for (model, attribute), rows in _blocks(groups):
        rows = np.asarray(rows)
        nb = n_all[rows]
        ref = np.full(n_m, rows[int(np.argmax(nb))])
        choice = np.full(n_m, "largest group", dtype=object)
        if attribute in spec.reference:
            hit = rows[grp[rows] == named_group(spec.reference[attribute], list(grp[rows]))]
            ref[:] = hit[0]
            choice[:] = "named"
        elif spec.reference_strategy == "best":
            vb = V[rows]
            signed = np.where(hib, vb, -vb)
            ok = (nb >= mgs)[:, None] & ~np.isnan(signed)
            arg = np.argmax(np.where(ok, signed, -np.inf), axis=0)
            has = ok.any(axis=0)
            ref = np.where(has, rows[arg], ref)
            choice = np.where(has, "best-off group", choice)
        keep = rows[None, :] != ref[:, None]  # (metrics, groups)
        mi, gi = np.nonzero(keep)
        parts_m.append(mi)
        parts_g.append(rows[gi])
        parts_r.append(ref[mi])
        parts_c.append(choice[mi])
    if parts_m:
        mi, gr, rr, ch = (np.concatenate(x) for x in (parts_m, parts_g, parts_r, parts_c))
        order = np.argsort(mi, kind="stable")  # metric-major, then table order
        mi, gr, rr, ch = mi[order], gr[order], rr[order], ch[order]
    else:
        mi = gr = rr = np.zeros(0, dtype=np.intp)
        ch = np.zeros(0, dtype=object)
    val, refv = V[gr, mi], V[rr, mi]
    n, n_ref = n_all[gr], n_all[rr]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(refv > 0, val / refv, np.nan)
    band = Tolerance(spec.tolerance)
    small = (n < mgs) | (n_ref < mgs)
    undefined = np.isnan(val) | np.isnan(refv)
    zero_ref = ~undefined & (refv == 0)
    inside = band.contains(ratio)
    models = groups["model"].to_numpy(dtype=object)[gr]
    degenerate = np.array([m in (not_judged or {}) for m in models], dtype=bool)
    verdict = np.select([degenerate, small, undefined, zero_ref & (val == 0), zero_ref, inside],
                        [INSUFFICIENT, INSUFFICIENT, INSUFFICIENT, PASS, FAIL, PASS], FAIL)
    metric_names = np.asarray(metrics, dtype=object)[mi]
    interval = band.interval()
    # most rows compare two defined values: their reason is one format, the
    # others' are written one by one
    common = ~degenerate & ~small & ~undefined & ~zero_ref
    reasons = np.empty(len(val), dtype=object)
    reasons[common] = [f"ratio {x:.3f} is {'inside' if i else 'outside'} {interval}"
                       for x, i in zip(ratio[common].tolist(), inside[common].tolist())]
    for i in np.flatnonzero(~common).tolist():
        reasons[i] = not_judged[models[i]] if degenerate[i] else _reason(
            n[i], n_ref[i], val[i], refv[i], ratio[i], small[i], undefined[i],
            metric_names[i], inside[i], mgs, interval)
    return pd.DataFrame({
        "model": models,
        "attribute": groups["attribute"].to_numpy(dtype=object)[gr],
        "metric": metric_names, "group": grp[gr], "reference": grp[rr],
        "reference_choice": ch, "n": n, "reference_n": n_ref, "value": val,
        "reference_value": refv, "difference": val - refv, "ratio": ratio,
        "verdict": verdict.astype(object), "verdict_reason": reasons})


def _reason(n, n_ref, val, refv, ratio, small, undefined, metric, inside, mgs,
            interval: str) -> str:
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
    side = "inside" if inside else "outside"
    return f"ratio {ratio:.3f} is {side} {interval}"


def between(x, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """fairlearn's between-groups difference (max - min) and ratio
    (min / max) over the groups where the metric is defined.

    Parameters
    ----------
    x : array (..., groups)
        A metric's values with the groups on the last axis (NaN where the
        metric is undefined), under any leading axes (blocks, bootstrap
        replicates).
    axis : int
        The axis of the groups, when not the last (the quickest is the one
        along which the values lie furthest apart in memory).

    Returns
    -------
    difference, ratio : arrays of the shape of ``x`` without ``axis``
        NaN with fewer than two defined groups; the ratio is NaN too when
        the largest value is 0.
    """
    x = np.asarray(x, dtype=float)
    k = (~np.isnan(x)).sum(axis=axis)
    hi = np.fmax.reduce(x, axis=axis, initial=np.nan)
    lo = np.fmin.reduce(x, axis=axis, initial=np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        difference = np.where(k >= 2, hi - lo, np.nan)
        ratio = np.where((k >= 2) & (hi > 0), lo / hi, np.nan)
    return difference, ratio


def _worst(a, b):
    """The larger difference and the smaller ratio (NaN when either is)."""
    return np.maximum(a[0], b[0]), np.minimum(a[1], b[1])


def _mean(a, b):
    """The mean difference and the mean ratio."""
    return (a[0] + b[0]) / 2, (a[1] + b[1]) / 2


#: fairlearn's between-group summaries, in output order: the metrics each
#: reads and how their differences and ratios combine (None: one metric).
SUMMARIES = {
    "demographic_parity": (("selection_rate",), None),
    "equalized_odds": (("tpr", "fpr"), _worst),
    "average_odds": (("tpr", "fpr"), _mean),
    "equal_opportunity": (("tpr",), None),
}
#: Their columns: ``<summary>_difference`` and ``<summary>_ratio``.
SUMMARY_COLUMNS = tuple(f"{name}_{part}" for name in SUMMARIES
                        for part in ("difference", "ratio"))

#: The metrics they read.
SUMMARY_METRICS = tuple(dict.fromkeys(m for metrics, _ in SUMMARIES.values() for m in metrics))


def between_summaries(values, axis: int = -1) -> dict[str, np.ndarray]:
    """Every summary of :data:`SUMMARIES` from the metrics' values.

    Parameters
    ----------
    values : mapping metric name -> array (..., groups)
        The groups on the last axis (or on ``axis``), as for
        :func:`between`; the same shape for every metric.

    Returns
    -------
    dict
        :data:`SUMMARY_COLUMNS` -> arrays of the leading shape.
    """
    parts = {m: between(values[m], axis) for m in SUMMARY_METRICS}
    out = {}
    for name, (metrics, combine) in SUMMARIES.items():
        pair = parts[metrics[0]] if combine is None else combine(*(parts[m] for m in metrics))
        out[f"{name}_difference"], out[f"{name}_ratio"] = pair
    return out


def _by_block(groups: pd.DataFrame, blocks: list, metrics) -> dict[str, np.ndarray]:
    """Each metric as a (blocks, groups) array: one row per block of row
    positions, padded with NaN (undefined) to the largest block."""
    width = max((len(rows) for rows in blocks), default=0)
    pos = np.zeros((len(blocks), width), dtype=np.intp)
    real = np.zeros((len(blocks), width), dtype=bool)
    for b, rows in enumerate(blocks):
        pos[b, :len(rows)], real[b, :len(rows)] = rows, True
    return {m: np.where(real, groups[m].to_numpy(dtype=float)[pos], np.nan) for m in metrics}


def summary(groups: pd.DataFrame, disp: pd.DataFrame, spec: AuditSpec) -> pd.DataFrame:
    """fairlearn's between-group summaries per model x attribute.

    demographic parity (selection rate), equalized odds (worst case of TPR
    and FPR, and their mean: average odds) and equal opportunity (TPR), each
    as difference (max - min) and ratio (min / max) over the groups where
    the metric is defined.  Groups of every size take part, as in fairlearn;
    equalized odds is undefined when either of its parts is.  The verdict
    counts come from the per-group disparities.
    """
    blocks = list(_blocks(groups))
    values = _by_block(groups, [rows for _, rows in blocks], SUMMARY_METRICS)
    summaries = between_summaries(values)
    tpr_d, fpr_d = between(values["tpr"])[0], between(values["fpr"])[0]
    n_all = groups["n"].to_numpy()
    grp = groups["group"].to_numpy(dtype=object)
    model_d, attr_d, verdict_d = (disp[c].to_numpy(dtype=object)
                                  for c in ("model", "attribute", "verdict"))
    vc = Counter(zip(model_d, attr_d, verdict_d))
    sig = {}
    if "significant" in disp:
        f = (verdict_d == FAIL) & disp["significant"].astype(bool).to_numpy()
        sig = Counter(zip(model_d[f], attr_d[f]))
    recs = []
    for b, ((model, attribute), rows) in enumerate(blocks):
        rec = {"model": model, "attribute": attribute, "n_groups": len(rows),
               **{c: summaries[c][b] for c in SUMMARY_COLUMNS},
               "true_positive_rate_difference": tpr_d[b],
               "false_positive_rate_difference": fpr_d[b]}
        for v in (FAIL, PASS, INSUFFICIENT):
            rec[f"n_{v}"] = int(vc.get((model, attribute, v), 0))
        if "significant" in disp:
            rec["n_fail_significant"] = int(sig.get((model, attribute), 0))
            rec["n_fail_not_significant"] = rec["n_fail"] - rec["n_fail_significant"]
        rec["groups_below_min_size"] = [str(g) for g in grp[rows][n_all[rows] <
                                                                  spec.min_group_size]]
        recs.append(rec)
    return pd.DataFrame(recs)
