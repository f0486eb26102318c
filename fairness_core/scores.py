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
#: Even bins of a score's range in the per-group score distributions.
N_DIST_BINS = 20
FINE_BINS = 1 << 16
#: A score with at most this many distinct values is counted per value (AUC,
#: curves and calibration are exact); with more, in FINE_BINS even bins, and
#: the AUC comes with a reported bound on its error.
MAX_EXACT_VALUES = FINE_BINS


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


def is_probability(lo: float, hi: float) -> bool:
    """Scores within [0, 1]: the Brier score and calibration apply."""
    return lo >= 0 and hi <= 1


def probability_warnings(prepared: Prepared) -> list[str]:
    """A warning per score column outside [0, 1], whose Brier score and
    calibration :func:`score_analysis` leaves out (none without a true
    outcome: neither is computed then)."""
    out = []
    if not prepared.has_label:
        return out
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
                   max_exact_values: int = MAX_EXACT_VALUES) -> dict:
    """AUC, threshold curves and calibration per model x attribute x group.

    Returns a dict of DataFrames:

    ``auc``: model, attribute, group, auc, auc_error_bound, positives,
        negatives, brier.  The sufficient statistic is, per finest group
        combination, the count of positives and negatives at each distinct
        score: AUC is then exact (bound 0).  A score with more than
        ``max_exact_values`` distinct values is counted in 65,536 even bins
        (and one counted in bins by an engine, in its bins): the true AUC
        lies within ``auc_error_bound``.  Brier only
        when scores lie in [0, 1].
    ``curves``: model, attribute, group, threshold, tn, fp, fn, tp: the exact
        confusion counts when predicting positive for ``score >= threshold``,
        at about ``n_curve`` thresholds spread evenly over the distinct scores
        (or the fine bins), and the audit's own.
    ``calibration``: model, attribute, group, bin, bin_low, bin_high, n,
        weight, mean_score, observed_rate (scores in [0, 1] only; bins as
        scikit-learn's ``calibration_curve(strategy="uniform")``).
    ``sums``: model, attribute, group, n, weight, sum_score, sum_score_sq,
        sum_weight_sq: the sufficient statistics of each group's mean score
        (see :func:`score_means`).
    ``distribution``: model, attribute, group, bin, bin_low, bin_high,
        weight: each group's rows (sum of weights, with a weight column) in
        ``N_DIST_BINS`` even bins of the score's range (the last bin includes
        its upper edge; a score counted in fine bins is placed by its bin's
        lower edge).

    Without a true outcome (``prepared.has_label`` false) nothing that
    compares scores with outcomes is computed: AUC, its bound, the
    positives and negatives and the Brier score are NaN and there is no
    calibration; the curves' cells then hold the decisions alone (``fp`` =
    selected, ``tn`` = not selected).  An engine that cut a score into fine
    bins gives each row its bin's lower edge, so the mean score is then
    within one bin width of the true mean.
    """
    labelled = prepared.has_label
    index = index or GroupIndex.build(prepared)
    spec = prepared.spec
    mapped = [(INTERSECTION_SEP.join(a), *index.marginal(a)[:2])
              for a in spec.attribute_sets()]
    mapped.append(("(overall)", np.zeros(index.n_combos, dtype=np.int64), ["(all)"]))
    y, key = prepared.y, index.key
    mult = prepared.row_counts  # a count table's records stand for several rows
    w = prepared.weight if prepared.weight is not None else mult
    k = index.n_combos
    yb = y.view(np.uint8) if y.dtype == bool else y.astype(np.uint8)
    auc_frames, curve_frames, cal_frames, sum_frames, dist_frames = [], [], [], [], []
    wsq = prepared.weight_squares
    for model, s in prepared.scores.items():
        lo, hi = prepared.score_ranges[model] if model in prepared.score_bins else \
            (float(s.min()), float(s.max()))
        threshold = prepared.thresholds.get(model, 0.5)
        values = np.unique(s)
        exact = len(values) <= max_exact_values and model not in prepared.score_bins
        if exact:  # one bin per distinct score (and the threshold)
            edges = values if threshold in values else np.unique(np.r_[values, threshold])
            b = np.searchsorted(edges, s, side="right").astype(np.int32)
        else:
            edges = fine_edges(lo, hi, threshold)
            b = bin_scores(s, edges)
        nb = len(edges) + 1
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
        probability = is_probability(lo, hi) and labelled
        # mean scores and distributions from the score counts: each bin's
        # weight times its value (exact when each distinct score is a bin)
        per_bin = cnt.reshape(k, nb, 2).sum(axis=2)  # bin b holds edges[b - 1]
        value = np.r_[0.0, edges]
        s_w = per_bin.sum(axis=1)
        if exact:
            s_1, s_2 = per_bin @ value, per_bin @ (value * value)
        else:  # fine bins: the sums from the scores themselves
            wt1 = np.ones(len(s)) if w is None else w
            s_1 = np.bincount(key, weights=wt1 * s, minlength=k)
            s_2 = np.bincount(key, weights=wt1 * s * s, minlength=k)
        weighted = prepared.weight is not None
        s_n = np.bincount(key, weights=mult, minlength=k) if weighted else s_w
        s_q = np.bincount(key, weights=wsq, minlength=k) if weighted else s_w
        d_edges = np.linspace(lo, hi, N_DIST_BINS + 1) if hi > lo else np.array([lo, lo])
        n_d = len(d_edges) - 1
        # bin 0 is empty; giving it the first edge keeps the bins' order
        d_of_bin = np.clip(np.searchsorted(d_edges, np.r_[edges[0], edges], side="right") - 1,
                           0, n_d - 1)
        starts = np.flatnonzero(np.r_[True, d_of_bin[1:] != d_of_bin[:-1]])
        d_w = np.zeros((k, n_d))
        d_w[:, d_of_bin[starts]] = np.add.reduceat(per_bin, starts, axis=1)
        if probability:
            cal_edges = np.linspace(0, 1, n_bins + 1)
            cb = np.searchsorted(cal_edges[1:-1], s, side="left")
            ck = key.astype(np.int64) * n_bins + cb
            wt = np.ones(len(s)) if w is None else w
            size = k * n_bins
            c_w = np.bincount(ck, weights=wt, minlength=size).reshape(k, n_bins)
            c_n = np.bincount(ck, weights=mult, minlength=size).reshape(k, n_bins) \
                .astype(float)
            c_s = np.bincount(ck, weights=wt * s, minlength=size).reshape(k, n_bins)
            c_y = np.bincount(ck, weights=wt * y, minlength=size).reshape(k, n_bins)
            sq = np.bincount(key, weights=wt * (s - y) ** 2, minlength=k)
            del ck, cb
        for name, inv, labels in mapped:
            ng = len(labels)
            onehot = _onehot(inv, ng)
            g_cnt = (onehot @ cnt).reshape(ng, nb, 2)
            neg, pos = g_cnt[:, :, 0], g_cnt[:, :, 1]
            auc, bound = _binned_auc(pos, neg)
            if exact:  # pairs in one bin are true ties: AUC counts them one half
                bound = np.where(np.isnan(auc), np.nan, 0.0)
            p, q = pos.sum(axis=1), neg.sum(axis=1)
            if not labelled:  # no outcome: nothing to rank or count against
                auc = bound = p = q = np.full(ng, np.nan)
            sum_frames.append(pd.DataFrame({
                "model": model, "attribute": name, "group": labels,
                "n": (onehot @ s_n).round().astype(np.int64), "weight": onehot @ s_w,
                "sum_score": onehot @ s_1, "sum_score_sq": onehot @ s_2,
                "sum_weight_sq": onehot @ s_q}))
            gd_w = onehot @ d_w
            dist_frames.append(pd.DataFrame({
                "model": model, "attribute": name,
                "group": np.repeat(np.asarray(labels, dtype=object), n_d),
                "bin": np.tile(np.arange(n_d), ng),
                "bin_low": np.tile(d_edges[:-1], ng), "bin_high": np.tile(d_edges[1:], ng),
                "weight": gd_w.ravel()}))
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
        "sums": cat(sum_frames, ["model", "attribute", "group", "n", "weight", "sum_score",
                                 "sum_score_sq", "sum_weight_sq"]),
        "distribution": cat(dist_frames, ["model", "attribute", "group", "bin", "bin_low",
                                          "bin_high", "weight"]),
    }


def score_means(sums: pd.DataFrame, groups: pd.DataFrame, confidence: float = 0.95,
                thresholds: dict | None = None) -> pd.DataFrame:
    """Each group's mean score with its interval, and the share at or above
    the threshold (the selection rate).

    Parameters
    ----------
    sums : DataFrame
        ``score_analysis(...)["sums"]``.
    groups : DataFrame
        The audit's group table (its ``selection_rate`` and interval).
    confidence : float
    thresholds : dict model -> threshold, optional

    Returns
    -------
    DataFrame
        model, attribute, group, n, weight, mean_score, sd_score,
        mean_ci_low, mean_ci_high, threshold, share_above,
        share_above_ci_low, share_above_ci_high.  The interval is the normal
        one, mean +- z * standard error, with the weighted standard error
        ``sqrt(variance * sum(w^2)) / sum(w)`` (``sd / sqrt(n)`` unweighted).
    """
    from .stats.intervals import z_value

    cols = ["model", "attribute", "group", "n", "weight", "mean_score", "sd_score",
            "mean_ci_low", "mean_ci_high", "threshold", "share_above", "share_above_ci_low",
            "share_above_ci_high"]
    if not len(sums):
        return pd.DataFrame(columns=cols)
    W = sums["weight"].to_numpy(dtype=float)
    n = sums["n"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums["sum_score"].to_numpy(dtype=float) / W
        var = np.maximum(sums["sum_score_sq"].to_numpy(dtype=float) / W - mean ** 2, 0.0)
        var = np.where(n > 1, var * n / (n - 1), np.nan)  # the sample variance
        se = np.sqrt(var * sums["sum_weight_sq"].to_numpy(dtype=float)) / W
    z = z_value(confidence)
    out = sums[["model", "attribute", "group", "n", "weight"]].copy()
    out["mean_score"] = np.where(W > 0, mean, np.nan)
    out["sd_score"] = np.sqrt(var)
    out["mean_ci_low"], out["mean_ci_high"] = mean - z * se, mean + z * se
    out["threshold"] = out["model"].map(thresholds or {}).astype(float)
    rates = groups[["model", "attribute", "group", "selection_rate",
                    *(c for c in ("selection_rate_ci_low", "selection_rate_ci_high")
                      if c in groups)]].rename(columns=lambda c: c.replace(
                          "selection_rate", "share_above"))
    out = out.merge(rates, on=["model", "attribute", "group"], how="left")
    return out.reindex(columns=cols)
