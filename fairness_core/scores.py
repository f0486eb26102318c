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

N_CURVE = 201
N_CAL_BINS = 10
FINE_BINS = 1 << 16
#: Up to this many rows AUC is computed exactly (one sort); above, from the
#: fine score bins, with a reported bound on the error.
EXACT_AUC_MAX_ROWS = 1_000_000


def fine_edges(lo: float, hi: float, threshold: float, n_bins: int = FINE_BINS) -> np.ndarray:
    """Evenly spaced score edges over [lo, hi], with the audit's threshold added."""
    if not hi > lo:
        edges = np.array([lo])
    else:
        edges = lo + (hi - lo) / n_bins * np.arange(n_bins)
    return np.unique(np.concatenate([edges, [threshold]]))


def bin_scores(s: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``b[i]`` = number of edges <= ``s[i]``, exactly (int32).

    An arithmetic first guess (the edges are nearly even) is corrected
    against the edges themselves, which is twice as fast as a binary search.
    """
    e = len(edges)
    if e > 1:
        w = edges[min(2, e - 1)] - edges[min(1, e - 2)] or (edges[-1] - edges[0]) / (e - 1)
        q = np.floor((s - edges[0]) / w)
        np.clip(q, -1, e - 1, out=q)  # also tames inf from extreme scores
        b = q.astype(np.int64) + 1
    else:
        b = np.ones(len(s), dtype=np.int64)
    padded = np.concatenate([[-np.inf], edges, [np.inf]])
    while True:  # s must be >= the b-th edge (edges[b - 1])
        m = s < padded[b]
        if not m.any():
            break
        b[m] -= 1
    while True:  # and below the next one
        m = s >= padded[b + 1]
        if not m.any():
            break
        b[m] += 1
    return b.astype(np.int32)


def _binned_auc(pos: np.ndarray, neg: np.ndarray):
    """AUC per row of (groups, bins) positive/negative counts; pairs in one bin
    count one half.  Returns (auc, bound): the true AUC is within ``bound``."""
    below = np.cumsum(neg, axis=1) - neg
    p, q = pos.sum(axis=1), neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        pq = p * q
        auc = np.where(pq > 0, (pos * (below + 0.5 * neg)).sum(axis=1) / pq, np.nan)
        bound = np.where(pq > 0, 0.5 * (pos * neg).sum(axis=1) / pq, np.nan)
    return auc, bound


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


def is_probability(lo: float, hi: float) -> bool:
    """Scores within [0, 1]: the Brier score and calibration apply."""
    return lo >= 0 and hi <= 1


def probability_warnings(prepared: Prepared) -> list[str]:
    """A warning per score column outside [0, 1], whose Brier score and
    calibration :func:`score_analysis` leaves out."""
    out = []
    for col, s in prepared.scores.items():
        if not len(s):
            continue
        lo, hi = float(s.min()), float(s.max())
        if not is_probability(lo, hi):
            out.append(f"The Brier score and the calibration view need scores between 0 and 1 "
                       f"(probabilities); they are not computed for the score column {col!r}, "
                       f"whose values range from {lo:g} to {hi:g}.")
    return out


def _onehot(inv: np.ndarray, n_groups: int) -> np.ndarray:
    m = np.zeros((n_groups, len(inv)))
    m[inv, np.arange(len(inv))] = 1.0
    return m


def score_analysis(prepared: Prepared, index: GroupIndex | None = None,
                   n_curve: int = N_CURVE, n_bins: int = N_CAL_BINS,
                   exact_auc_max_rows: int = EXACT_AUC_MAX_ROWS) -> dict:
    """AUC, threshold curves and calibration per model x attribute x group.

    Returns a dict of DataFrames:

    ``auc``: model, attribute, group, auc, auc_error_bound, positives,
        negatives, brier.  AUC is exact (bound 0) up to
        ``exact_auc_max_rows`` rows; above, it comes from 65,536 even score
        bins and the true value lies within ``auc_error_bound``.  Brier only
        when scores lie in [0, 1].
    ``curves``: model, attribute, group, threshold, tn, fp, fn, tp: the exact
        confusion counts when predicting positive for ``score >= threshold``,
        at about ``n_curve`` even thresholds and the audit's own.
    ``calibration``: model, attribute, group, bin, bin_low, bin_high, n,
        weight, mean_score, observed_rate (scores in [0, 1] only; bins as
        scikit-learn's ``calibration_curve(strategy="uniform")``).
    """
    index = index or GroupIndex.build(prepared)
    spec = prepared.spec
    mapped = [(INTERSECTION_SEP.join(a), *index.marginal(a)[:2])
              for a in spec.attribute_sets()]
    mapped.append(("(overall)", np.zeros(index.n_combos, dtype=np.int64), ["(all)"]))
    y, w, key = prepared.y, prepared.weight, index.key
    k = index.n_combos
    yb = y.view(np.uint8) if y.dtype == bool else y.astype(np.uint8)
    exact = len(y) <= exact_auc_max_rows
    auc_frames, curve_frames, cal_frames = [], [], []
    for model, s in prepared.scores.items():
        lo, hi = float(s.min()), float(s.max())
        threshold = prepared.thresholds.get(model, 0.5)
        edges = fine_edges(lo, hi, threshold)
        nb = len(edges) + 1
        b = bin_scores(s, edges)
        code = key.astype(np.int64) * nb
        code += b
        code *= 2
        code += yb
        cnt = np.bincount(code, weights=w, minlength=k * nb * 2).reshape(k, nb * 2)
        del code
        # curve thresholds: evenly spaced among the fine edges, plus the audit's own
        pick = np.unique(np.concatenate([
            np.linspace(0, len(edges) - 1, min(n_curve, len(edges))).round().astype(int),
            np.searchsorted(edges, [threshold])]))
        pick = pick[pick < len(edges)]
        probability = is_probability(lo, hi)
        if probability:
            cal_edges = np.linspace(0, 1, n_bins + 1)
            cb = np.searchsorted(cal_edges[1:-1], s, side="left")
            ck = key.astype(np.int64) * n_bins + cb
            wt = np.ones(len(s)) if w is None else w
            size = k * n_bins
            c_w = np.bincount(ck, weights=wt, minlength=size).reshape(k, n_bins)
            c_n = np.bincount(ck, minlength=size).reshape(k, n_bins).astype(float)
            c_s = np.bincount(ck, weights=wt * s, minlength=size).reshape(k, n_bins)
            c_y = np.bincount(ck, weights=wt * y, minlength=size).reshape(k, n_bins)
            sq = np.bincount(key, weights=wt * (s - y) ** 2, minlength=k)
            del ck, cb
        if exact:
            order = np.argsort(s, kind="stable")
            s_sorted, y_sorted, key_sorted = s[order], y[order], key[order]
            w_sorted = w[order] if w is not None else None
        for name, inv, labels in mapped:
            ng = len(labels)
            onehot = _onehot(inv, ng)
            g_cnt = (onehot @ cnt).reshape(ng, nb, 2)
            neg, pos = g_cnt[:, :, 0], g_cnt[:, :, 1]
            if exact:
                g_sorted = inv[key_sorted].astype(np.int16 if ng < 32000 else np.int64)
                auc, p, q = _auc_per_group(s_sorted, y_sorted, w_sorted, g_sorted, ng)
                bound = np.where(np.isnan(auc), np.nan, 0.0)
            else:
                auc, bound = _binned_auc(pos, neg)
                p, q = pos.sum(axis=1), neg.sum(axis=1)
            frame = pd.DataFrame({"model": model, "attribute": name, "group": labels,
                                  "auc": auc, "auc_error_bound": bound,
                                  "positives": p, "negatives": q})
            # at or above edges[j]  <=>  bin >= j + 1
            above = np.cumsum(g_cnt[:, ::-1, :], axis=1)[:, ::-1, :][:, 1:, :][:, pick, :]
            tot = g_cnt.sum(axis=1)
            tp, fp = above[:, :, 1], above[:, :, 0]
            fn, tn = tot[:, None, 1] - tp, tot[:, None, 0] - fp
            curve_frames.append(pd.DataFrame({
                "model": model, "attribute": name,
                "group": np.repeat(np.asarray(labels, dtype=object), len(pick)),
                "threshold": np.tile(edges[pick], ng),
                **{c: v.ravel() for c, v in zip(CELLS, (tn, fp, fn, tp))}}))
            if probability:
                gw, gn, gs, gy = (onehot @ c for c in (c_w, c_n, c_s, c_y))
                with np.errstate(invalid="ignore", divide="ignore"):
                    frame["brier"] = (onehot @ sq) / gw.sum(1)
                    mean_s, obs = gs / gw, gy / gw
                gi, bi = np.nonzero(gn > 0)
                cal_frames.append(pd.DataFrame({
                    "model": model, "attribute": name,
                    "group": np.asarray(labels, dtype=object)[gi], "bin": bi,
                    "bin_low": cal_edges[bi], "bin_high": cal_edges[bi + 1],
                    "n": gn[gi, bi].astype(np.int64), "weight": gw[gi, bi],
                    "mean_score": mean_s[gi, bi], "observed_rate": obs[gi, bi]}))
            else:
                frame["brier"] = np.nan
            auc_frames.append(frame)

    def cat(frames, cols):
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)

    return {
        "auc": cat(auc_frames, ["model", "attribute", "group", "auc", "auc_error_bound",
                                "positives", "negatives", "brier"]),
        "curves": cat(curve_frames, ["model", "attribute", "group", "threshold", *CELLS]),
        "calibration": cat(cal_frames, ["model", "attribute", "group", "bin", "bin_low",
                                        "bin_high", "n", "weight", "mean_score",
                                        "observed_rate"]),
    }
