"""Score-based views per group: ROC AUC, metrics against the threshold, and
calibration.

The sufficient statistic is, per finest group combination, the (weighted)
count of positives and negatives at each score; one sort of the scores and
cumulative sums give every threshold.  Threshold curves and calibration are
counted per finest combination and summed up to every attribute, exactly as
the confusion counts are.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .counts import CELLS, GroupIndex
from .prepare import Prepared
from .spec import INTERSECTION_SEP

N_GRID = 101
N_CAL_BINS = 10
MAX_EXACT_THRESHOLDS = 512


def threshold_grid(sorted_scores: np.ndarray, threshold: float, n: int = N_GRID) -> np.ndarray:
    """Thresholds at which curves are evaluated.

    Every distinct score when there are few of them (the curve is then
    exact); otherwise an even grid over the score range merged with score
    quantiles, so that skewed scores still get a smooth curve.  The audit's
    own threshold is always included.
    """
    s = sorted_scores
    distinct = np.unique(s[np.r_[0, np.flatnonzero(np.diff(s)) + 1]]) if len(s) else s
    if len(distinct) <= MAX_EXACT_THRESHOLDS:
        grid = distinct
    else:
        even = np.linspace(s[0], s[-1], n)
        quant = s[np.linspace(0, len(s) - 1, n).astype(np.int64)]
        grid = np.concatenate([even, quant])
    grid = np.unique(np.concatenate([grid, [threshold]]))
    return grid[np.isfinite(grid)]


def _auc_per_group(s, y, w, g, n_groups):
    """Exact (weighted) ROC AUC per group; inputs sorted by score.

    Mann-Whitney: P(score of a positive > score of a negative), ties count
    one half, which is what scikit-learn's roc_auc_score computes.
    """
    order = np.argsort(g, kind="stable")  # radix sort for small ints
    g2, s2, y2 = g[order], s[order], y[order]
    w2 = w[order] if w is not None else None
    n = len(s2)
    if n == 0:
        return np.full(n_groups, np.nan), np.zeros(n_groups), np.zeros(n_groups)
    new = np.empty(n, dtype=bool)
    new[0] = True
    np.not_equal(g2[1:], g2[:-1], out=new[1:])
    new[1:] |= s2[1:] != s2[:-1]
    block = np.cumsum(new) - 1
    nb = int(block[-1]) + 1
    yw = y2.astype(float) if w2 is None else y2 * w2
    tot = np.ones(n) if w2 is None else w2
    pos = np.bincount(block, weights=yw, minlength=nb)
    neg = np.bincount(block, weights=tot, minlength=nb) - pos
    bgroup = g2[new]
    neg_cum = np.cumsum(neg) - neg
    group_start = np.zeros(n_groups)
    first_block = np.flatnonzero(np.r_[True, bgroup[1:] != bgroup[:-1]])
    group_start[bgroup[first_block]] = neg_cum[first_block]
    neg_before = neg_cum - group_start[bgroup]
    num = np.bincount(bgroup, weights=pos * (neg_before + 0.5 * neg), minlength=n_groups)
    p = np.bincount(bgroup, weights=pos, minlength=n_groups)
    q = np.bincount(bgroup, weights=neg, minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = np.where((p > 0) & (q > 0), num / (p * q), np.nan)
    return auc, p, q


def score_analysis(prepared: Prepared, index: GroupIndex | None = None,
                   n_grid: int = N_GRID, n_bins: int = N_CAL_BINS) -> dict:
    """AUC, threshold curves and calibration per model x attribute x group.

    Returns a dict of DataFrames:

    ``auc``: model, attribute, group, auc, positives, negatives, brier
        (Brier only when scores lie in [0, 1]).
    ``curves``: model, attribute, group, threshold, tn, fp, fn, tp: the
        confusion counts when predicting positive for ``score >= threshold``.
    ``calibration``: model, attribute, group, bin, bin_low, bin_high, n,
        weight, mean_score, observed_rate (scores in [0, 1] only; bins as
        scikit-learn's ``calibration_curve(strategy="uniform")``).
    """
    index = index or GroupIndex.build(prepared)
    spec = prepared.spec
    attrs = spec.attribute_sets()
    mapped = [(INTERSECTION_SEP.join(a), *index.marginal(a)) for a in attrs]
    # "(overall)" maps every combination to one group.
    mapped.append(("(overall)", np.zeros(index.n_combos, dtype=np.int64), ["(all)"], None))
    y, w, key = prepared.y, prepared.weight, index.key
    k = index.n_combos
    auc_frames, curve_frames, cal_frames = [], [], []
    for model, s in prepared.scores.items():
        order = np.argsort(s, kind="stable")
        s_sorted, y_sorted, key_sorted = s[order], y[order], key[order]
        w_sorted = w[order] if w is not None else None
        grid = threshold_grid(s_sorted, spec.threshold, n_grid)
        # Threshold counts per combination: bin b = number of grid points <= s.
        cut = np.searchsorted(s_sorted, grid, side="left")
        bins = np.zeros(len(s_sorted) + 1, dtype=np.int32)
        np.add.at(bins, cut, 1)
        bins = np.cumsum(bins[:-1], dtype=np.int32)
        nb = len(grid) + 1
        code = (key_sorted.astype(np.int64) * nb + bins) * 2 + y_sorted
        cnt = np.bincount(code, weights=w_sorted, minlength=k * nb * 2).reshape(k, nb, 2)
        # at or above grid[j]  <=>  bin >= j + 1
        above = np.cumsum(cnt[:, ::-1, :], axis=1)[:, ::-1, :][:, 1:, :]
        total = cnt.sum(axis=1)
        probability = s_sorted[0] >= 0 and s_sorted[-1] <= 1
        if probability:
            edges = np.linspace(0, 1, n_bins + 1)
            cb = np.searchsorted(edges[1:-1], s_sorted, side="left")
            ck = key_sorted.astype(np.int64) * n_bins + cb
            wt = np.ones(len(s_sorted)) if w_sorted is None else w_sorted
            c_w = np.bincount(ck, weights=wt, minlength=k * n_bins).reshape(k, n_bins)
            c_n = np.bincount(ck, minlength=k * n_bins).reshape(k, n_bins)
            c_s = np.bincount(ck, weights=wt * s_sorted, minlength=k * n_bins).reshape(k, n_bins)
            c_y = np.bincount(ck, weights=wt * y_sorted, minlength=k * n_bins).reshape(k, n_bins)
            sq = np.bincount(key_sorted, weights=wt * (s_sorted - y_sorted) ** 2, minlength=k)
        for name, inv, labels, _ in mapped:
            ng = len(labels)
            g_sorted = inv[key_sorted].astype(np.int16 if ng < 32000 else np.int64)
            auc, p, q = _auc_per_group(s_sorted, y_sorted, w_sorted, g_sorted, ng)
            frame = pd.DataFrame({"model": model, "attribute": name, "group": labels,
                                  "auc": auc, "positives": p, "negatives": q})
            ab = np.zeros((ng, len(grid), 2))
            np.add.at(ab, inv, above)
            tt = np.zeros((ng, 2))
            np.add.at(tt, inv, total)
            tp, fp = ab[:, :, 1], ab[:, :, 0]
            fn, tn = tt[:, None, 1] - tp, tt[:, None, 0] - fp
            curve_frames.append(pd.DataFrame({
                "model": model, "attribute": name,
                "group": np.repeat(labels, len(grid)),
                "threshold": np.tile(grid, ng),
                **{c: v.ravel() for c, v in zip(CELLS, (tn, fp, fn, tp))}}))
            if probability:
                gw = np.zeros((ng, n_bins)); np.add.at(gw, inv, c_w)
                gn = np.zeros((ng, n_bins)); np.add.at(gn, inv, c_n)
                gs = np.zeros((ng, n_bins)); np.add.at(gs, inv, c_s)
                gy = np.zeros((ng, n_bins)); np.add.at(gy, inv, c_y)
                with np.errstate(invalid="ignore", divide="ignore"):
                    frame["brier"] = np.bincount(inv, weights=sq, minlength=ng) / gw.sum(1)
                    mean_s, obs = gs / gw, gy / gw
                gi, bi = np.nonzero(gn > 0)
                cal_frames.append(pd.DataFrame({
                    "model": model, "attribute": name,
                    "group": np.asarray(labels, dtype=object)[gi], "bin": bi,
                    "bin_low": edges[bi], "bin_high": edges[bi + 1],
                    "n": gn[gi, bi].astype(np.int64), "weight": gw[gi, bi],
                    "mean_score": mean_s[gi, bi], "observed_rate": obs[gi, bi]}))
            else:
                frame["brier"] = np.nan
            auc_frames.append(frame)

    def cat(frames, cols):
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)

    return {
        "auc": cat(auc_frames, ["model", "attribute", "group", "auc", "positives",
                                "negatives", "brier"]),
        "curves": cat(curve_frames, ["model", "attribute", "group", "threshold", *CELLS]),
        "calibration": cat(cal_frames, ["model", "attribute", "group", "bin", "bin_low",
                                        "bin_high", "n", "weight", "mean_score",
                                        "observed_rate"]),
    }
