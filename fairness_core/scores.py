"""Score-based views per group: ROC AUC, metrics against the threshold, and
calibration.

The sufficient statistic is, per finest group combination, the (weighted)
count of positives and negatives at each distinct score, or in each fine
score bin (:class:`ScoreCounts`): it is counted once, in one pass over the
rows.  Every attribute's groups are sums of combinations; cumulative sums
over the bins give every threshold (a threshold change is a lookup).
"""
from __future__ import annotations

from dataclasses import dataclass

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


def calibration_edges(n_bins: int = N_CAL_BINS) -> np.ndarray:
    """The calibration bins' edges, as scikit-learn's ``calibration_curve``
    (``strategy="uniform"``): bin i holds ``edges[i] < s <= edges[i + 1]``
    (bin 0 also holds 0)."""
    return np.linspace(0, 1, n_bins + 1)


def split_edges(lo: float, hi: float, n_bins: int = N_CAL_BINS) -> np.ndarray:
    """Fine-bin edges that keep every fine bin inside one calibration bin,
    for scores within [0, 1]: each inner calibration edge ``c`` and the next
    float above it (a bin ``[c, next(c))`` holds the scores equal to ``c``,
    which the calibration bin ending at ``c`` holds)."""
    if not is_probability(lo, hi):
        return np.empty(0)
    inner = calibration_edges(n_bins)[1:-1]
    inner = inner[(inner >= lo) & (inner <= hi)]
    return np.concatenate([inner, np.nextafter(inner, np.inf)])


def fine_edges(lo: float, hi: float, threshold: float, n_bins: int = FINE_BINS,
               extra=()) -> np.ndarray:
    """Evenly spaced score edges over [lo, hi], with the audit's threshold
    (and the ``extra`` edges) added."""
    if not hi > lo:
        edges = np.array([lo])
    else:
        edges = lo + (hi - lo) / n_bins * np.arange(n_bins)
    return np.unique(np.concatenate([edges, [threshold], np.asarray(extra, dtype=float)]))


def bin_scores(s: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``b[i]`` = number of edges <= ``s[i]``, exactly (int32).

    A first guess from an even grid over the edges (they are nearly even)
    is corrected against the edges themselves, which is faster than a binary
    search.
    """
    e = len(edges)
    if e > 1 and edges[-1] > edges[0]:
        w = (edges[-1] - edges[0]) / (e - 1)
        q = np.floor((s - edges[0]) / w)
        np.clip(q, 0, e - 1, out=q)  # also tames inf from extreme scores
        # edges at or below each grid point: the guess is off by the few
        # edges that fall between a grid point and the score
        lut = np.searchsorted(edges, edges[0] + w * np.arange(e), side="right")
        b = lut[q.astype(np.intp)].astype(np.int64)
    else:
        b = np.ones(len(s), dtype=np.int64)
    padded = np.concatenate([[-np.inf], edges, [np.inf]])
    for _ in range(8):  # s must be >= the b-th edge (edges[b - 1]) and below the next
        low, high = s < padded[b], s >= padded[b + 1]
        if not (low.any() or high.any()):
            return b.astype(np.int32)
        b[low] -= 1
        b[high] += 1
    # very uneven edges (a threshold far outside the scores): a binary search
    return np.searchsorted(edges, s, side="right").astype(np.int32)


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


@dataclass
class ScoreCounts:
    """One score model's sufficient statistic: per finest group combination,
    the (weighted) negatives and positives in each score bin.

    Bin 0 holds the scores below ``edges[0]``; bin ``j >= 1`` the scores from
    ``edges[j - 1]`` up to (not including) ``edges[j]``.  With ``exact``,
    every edge is one distinct score (or the audit's threshold), so every
    threshold is a lookup; otherwise the edges are fine bins, and a
    threshold that falls inside a bin holding rows is not.

    Attributes
    ----------
    edges : ndarray
    exact : bool
    lo, hi : float
        The scores' range.
    counts : ndarray (k, 2, n_bins)
        Negatives (``[:, 0]``) and positives (``[:, 1]``) per combination
        and bin: weighted (float) when the audit has weights, else row
        counts (int64).
    rows : ndarray (k, 2, n_bins) of int64, or None (``counts`` are rows)
    weight_sq : ndarray (k, 2, n_bins) of summed squared weights, or None
    calibration : tuple of two (k, 2, N_CAL_BINS) arrays, or None
        Per combination, label and calibration bin: the (weighted) sum of
        the scores and of their squares; None for scores outside [0, 1]
        and without a true outcome.
    moments : tuple of two (k,) arrays, or None
        Per combination: the (weighted) sum of the scores and of their
        squares (the groups' mean scores).
    """

    edges: np.ndarray
    exact: bool
    lo: float
    hi: float
    counts: np.ndarray | None
    rows: np.ndarray | None = None
    weight_sq: np.ndarray | None = None
    calibration: tuple | None = None
    moments: tuple | None = None
    _cumulative: tuple | None = None

    @property
    def n_bins(self) -> int:
        return len(self.edges) + 1

    def first_positive_bin(self, threshold: float) -> int | None:
        """The first bin whose scores are all ``>= threshold`` (every bin
        before it holds only scores below it), or None when the threshold
        falls inside a fine bin that holds rows."""
        if threshold > self.hi:
            return self.n_bins
        if threshold <= self.lo:
            return 0
        i = int(np.searchsorted(self.edges, threshold, side="left"))
        if self.exact or (i < len(self.edges) and self.edges[i] == threshold):
            return i + 1
        cum = self.cumulative()
        rows = cum[1] if cum[1] is not None else cum[0]
        return i + 1 if not (rows[:, :, i + 1] - rows[:, :, i]).any() else None

    def nearest_edge(self, threshold: float) -> float:
        """The bin edge nearest to ``threshold``."""
        j = int(np.argmin(np.abs(self.edges - threshold)))
        return float(self.edges[j])

    def cumulative(self) -> tuple:
        """Running sums over the bins, ``(counts, rows, weight_sq)``, each
        (k, 2, n_bins + 1) with ``[..., j]`` the sum over the bins before
        ``j`` (None where absent).  Built once; the per-bin arrays are then
        dropped."""
        if self._cumulative is None:
            def run(a):
                if a is None:
                    return None
                out = np.zeros(a.shape[:2] + (a.shape[2] + 1,), dtype=a.dtype)
                np.cumsum(a, axis=2, out=out[:, :, 1:])
                return out
            self._cumulative = (run(self.counts), run(self.rows), run(self.weight_sq))
            self.counts = self.rows = self.weight_sq = None
        return self._cumulative

    def cells_at(self, first: int) -> tuple:
        """The cube cells (k, 4) in :data:`CELLS` order when the bins from
        ``first`` on are decided positive: ``(cells, row_cells, weight_sq_cells)``
        (the last None without weights; ``row_cells`` is ``cells`` then)."""
        def cells(cum):
            if cum is None:
                return None
            below, total = cum[:, :, first], cum[:, :, -1]
            above = total - below
            return np.ascontiguousarray(np.stack(
                [below[:, 0], above[:, 0], below[:, 1], above[:, 1]], axis=1))
        counts, rows, sq = self.cumulative()
        c = cells(counts)
        return c, (cells(rows) if rows is not None else c), cells(sq)


def _sum_ranges(a: np.ndarray, group: np.ndarray, n: int) -> np.ndarray:
    """Sum the last axis of ``a`` over runs of bins: ``group`` (non-decreasing,
    one per bin) says which of ``n`` outputs a bin adds to."""
    starts = np.searchsorted(group, np.arange(n), side="left")
    ends = np.r_[starts[1:], len(group)]
    full = starts < ends
    out = np.zeros(a.shape[:-1] + (n,), dtype=np.float64)
    if full.any():
        out[..., full] = np.add.reduceat(a, starts[full], axis=-1)
    return out


def count_scores(prepared: Prepared, index: GroupIndex, model: str,
                 max_exact_values: int = MAX_EXACT_VALUES,
                 n_cal_bins: int = N_CAL_BINS) -> ScoreCounts:
    """One pass over a score column: its :class:`ScoreCounts`.

    A score with at most ``max_exact_values`` distinct values is counted per
    value; with more (or counted in bins by an engine), in fine bins over
    its range, with the audit's threshold as an edge and, for scores in
    [0, 1], the calibration bins' edges as edges too (so that calibration
    and the Brier score stay exact).
    """
    s = prepared.scores[model]
    threshold = prepared.thresholds.get(model, 0.5)
    engine_bins = prepared.score_bins.get(model)
    if engine_bins:
        lo, hi = prepared.score_ranges[model]
    else:
        lo, hi = float(s.min()), float(s.max())
    exact = False
    if not engine_bins:
        # the distinct values of a part are a lower bound: a cheap "too many"
        head = s[:2 * max_exact_values + 1]
        if len(np.unique(head)) <= max_exact_values:
            values, inv = np.unique(s, return_inverse=True)
            exact = len(values) <= max_exact_values
    if exact:  # one bin per distinct score (and the threshold)
        i = int(np.searchsorted(values, threshold))
        if i < len(values) and values[i] == threshold:
            edges, b = values, inv + 1
        else:
            edges = np.insert(values, i, threshold)
            b = inv + 1
            b += inv >= i
        del inv
    else:
        edges = fine_edges(lo, hi, threshold, engine_bins or FINE_BINS, split_edges(lo, hi))
        b = bin_scores(s, edges)
    nb = len(edges) + 1
    k = index.n_combos
    yb = prepared.y.view(np.uint8) if prepared.y.dtype == bool else prepared.y
    code = index.key.astype(np.int64) * 2
    code += yb
    # (combination, label) of each row, for calibration
    pair = code.copy() if is_probability(lo, hi) and prepared.has_label else None
    code *= nb
    code += b
    size = k * 2 * nb
    mult = prepared.row_counts
    rows = sq = None
    if prepared.weight is not None:
        counts = np.bincount(code, weights=prepared.weight, minlength=size)
        rows = np.bincount(code, weights=mult, minlength=size).astype(np.int64, copy=False)
        sq = np.bincount(code, weights=prepared.weight_squares, minlength=size)
        rows, sq = rows.reshape(k, 2, nb), sq.reshape(k, 2, nb)
    else:
        counts = np.bincount(code, weights=mult, minlength=size).astype(np.int64, copy=False)
    del code
    counts = counts.reshape(k, 2, nb)
    calibration = moments = None
    if not exact:
        sums = prepared.score_sums.get(model)
        if sums is None:
            w = prepared.weight if prepared.weight is not None else mult
            ws = s if w is None else s * w
            ws2 = ws * s
        else:  # an engine summed each record's scores and their squares
            ws, ws2 = sums
    if pair is not None:
        cal_inner = calibration_edges(n_cal_bins)[1:-1]
        # each fine bin lies inside one calibration bin: the one of its lower edge
        cal_of_bin = np.r_[0, np.searchsorted(cal_inner, edges, side="left")]
        if exact:  # a bin is one value: its sums are its weight times the value
            v = np.r_[0.0, edges]
            w = counts.astype(np.float64)
            calibration = (_sum_ranges(w * v, cal_of_bin, n_cal_bins),
                           _sum_ranges(w * (v * v), cal_of_bin, n_cal_bins))
        else:
            pair *= n_cal_bins
            pair += cal_of_bin[b]
            m = k * 2 * n_cal_bins
            calibration = tuple(np.bincount(pair, weights=x, minlength=m)
                                .reshape(k, 2, n_cal_bins) for x in (ws, ws2))
        moments = tuple(c.sum(axis=(1, 2)) for c in calibration)
    elif exact:
        v = np.r_[0.0, edges]
        w = counts.sum(axis=1).astype(np.float64)
        moments = (w @ v, w @ (v * v))
    else:
        moments = tuple(np.bincount(index.key, weights=x, minlength=k) for x in (ws, ws2))
    return ScoreCounts(edges=edges, exact=exact, lo=lo, hi=hi, counts=counts, rows=rows,
                       weight_sq=sq, calibration=calibration, moments=moments)


def _attribute_sums(index: GroupIndex, attributes: list, combos: np.ndarray) -> dict:
    """Sum per-combination arrays (k, ...) up to every attribute's groups:
    each attribute from the smallest finer one already summed (sex from
    sex x race, not from every combination).

    ``attributes`` is a list of (name, columns, combo_to_group, n_groups);
    returns name -> (n_groups, ...) float arrays."""
    k = index.n_combos
    done: list = []  # (columns, combo_to_group, sums)
    out = {}
    for name, cols, inv, ng in sorted(attributes, key=lambda a: -len(a[1])):
        src_inv, src = np.arange(k), combos
        for dcols, dinv, dsum in done:
            if set(cols) <= set(dcols) and len(dsum) < len(src):
                src_inv, src = dinv, dsum
        if ng == len(src) and np.array_equal(inv, src_inv):
            g = src if src.dtype == np.float64 else src.astype(np.float64)
        else:
            to = np.zeros(len(src), dtype=np.int64)
            to[src_inv] = inv
            g = np.zeros((ng,) + src.shape[1:])
            for j in range(len(src)):
                g[to[j]] += src[j]
        done.append((cols, inv, g))
        out[name] = g
    return out


def score_analysis(prepared: Prepared, index: GroupIndex | None = None,
                   n_curve: int = N_CURVE, n_bins: int = N_CAL_BINS,
                   max_exact_values: int = MAX_EXACT_VALUES,
                   counts: dict | None = None) -> dict:
    """AUC, threshold curves and calibration per model x attribute x group.

    ``counts`` (model -> :class:`ScoreCounts`, as :func:`count_scores`
    makes) skips the pass over the rows.  Returns a dict of DataFrames:

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
    selected, ``tn`` = not selected).  The mean scores are exact, from the
    scores themselves (or, for a score an engine cut into fine bins, from
    its records' sums of the scores and of their squares).
    """
    labelled = prepared.has_label
    index = index or GroupIndex.build(prepared)
    spec = prepared.spec
    attributes = []
    for a in spec.attribute_sets():
        inv, labels = index.marginal(a)[:2]
        attributes.append((INTERSECTION_SEP.join(a), tuple(a), inv, labels))
    attributes.append(("(overall)", (), np.zeros(index.n_combos, dtype=np.int64), ["(all)"]))
    plan = [(name, cols, inv, len(labels)) for name, cols, inv, labels in attributes]
    if counts is None:
        counts = {m: count_scores(prepared, index, m, max_exact_values, n_bins)
                  for m in prepared.scores}
    cal_edges = calibration_edges(n_bins)
    auc_frames, curve_frames, cal_frames, sum_frames, dist_frames = [], [], [], [], []
    for model, sc in counts.items():
        threshold = prepared.thresholds.get(model, 0.5)
        edges = sc.edges
        if sc.counts is not None:
            per_bin, row_bin = sc.counts, sc.rows
        else:  # only running sums are kept: back to bins
            cum = sc.cumulative()
            per_bin = np.diff(cum[0], axis=2)
            row_bin = None if cum[1] is None else np.diff(cum[1], axis=2)
        sums = _attribute_sums(index, plan, per_bin)
        # curve thresholds: evenly spaced among the fine edges, plus the audit's own
        pick = np.unique(np.concatenate([
            np.linspace(0, len(edges) - 1, min(n_curve, len(edges))).round().astype(int),
            np.searchsorted(edges, [threshold])]))
        pick = pick[pick < len(edges)]
        if sc.calibration is not None:
            cal_of_bin = np.r_[0, np.searchsorted(cal_edges[1:-1], edges, side="left")]
            cal_w = _sum_ranges(per_bin, cal_of_bin, n_bins)
            cal_n = cal_w if row_bin is None else _sum_ranges(row_bin, cal_of_bin, n_bins)
            cal_sums = _attribute_sums(index, plan, np.concatenate(
                [cal_w, cal_n, *sc.calibration], axis=1))
        # mean scores and distributions from the score counts
        w_bin = per_bin.sum(axis=1)  # (k, n_bins): bin b holds edges[b - 1]
        s_w = w_bin.sum(axis=1)
        if sc.counts is not None:
            sq_bin = sc.weight_sq
            s_q = None if sq_bin is None else sq_bin.sum(axis=(1, 2))
        else:
            s_q = None if cum[2] is None else cum[2][:, :, -1].sum(axis=1)
        s_n = s_w if row_bin is None else row_bin.sum(axis=(1, 2))
        s_q = s_w if s_q is None else s_q
        d_edges = np.linspace(sc.lo, sc.hi, N_DIST_BINS + 1) if sc.hi > sc.lo \
            else np.array([sc.lo, sc.lo])
        n_d = len(d_edges) - 1
        # bin 0 is empty; giving it the first edge keeps the bins' order
        d_of_bin = np.clip(np.searchsorted(d_edges, np.r_[edges[0], edges], side="right") - 1,
                           0, n_d - 1)
        starts = np.flatnonzero(np.r_[True, d_of_bin[1:] != d_of_bin[:-1]])
        d_w = np.zeros((len(w_bin), n_d))
        d_w[:, d_of_bin[starts]] = np.add.reduceat(w_bin, starts, axis=1)
        moment_sums = _attribute_sums(index, plan, np.column_stack(
            [s_n, s_w, *sc.moments, s_q, d_w]))
        for name, _, _, labels in attributes:
            g_cnt = sums[name]
            ng = len(labels)
            neg, pos = g_cnt[:, 0, :], g_cnt[:, 1, :]
            c_neg = np.cumsum(neg, axis=1)
            q, p = neg.sum(axis=1), pos.sum(axis=1)
            # positives in the bins up to each picked edge: sums of the runs between picks
            fn = np.cumsum(np.add.reduceat(pos, np.r_[0, pick + 1], axis=1)[:, :-1], axis=1)
            ties = np.einsum("gj,gj->g", pos, neg)
            with np.errstate(invalid="ignore", divide="ignore"):
                pq = p * q
                # pairs in one bin count one half
                auc = np.where(pq > 0, (np.einsum("gj,gj->g", pos, c_neg) - 0.5 * ties) / pq,
                               np.nan)
                bound = np.where(pq > 0, 0.5 * ties / pq, np.nan)
            if sc.exact:  # pairs in one bin are true ties: AUC counts them one half
                bound = np.where(np.isnan(auc), np.nan, 0.0)
            if labelled:
                shown_p, shown_q = p, q
            else:  # no outcome: nothing to rank or count against
                auc = bound = shown_p = shown_q = np.full(ng, np.nan)
            ms = moment_sums[name]
            sum_frames.append(pd.DataFrame({
                "model": model, "attribute": name, "group": labels,
                "n": ms[:, 0].round().astype(np.int64), "weight": ms[:, 1],
                "sum_score": ms[:, 2], "sum_score_sq": ms[:, 3], "sum_weight_sq": ms[:, 4]}))
            dist_frames.append(pd.DataFrame({
                "model": model, "attribute": name,
                "group": np.repeat(np.asarray(labels, dtype=object), n_d),
                "bin": np.tile(np.arange(n_d), ng),
                "bin_low": np.tile(d_edges[:-1], ng), "bin_high": np.tile(d_edges[1:], ng),
                "weight": ms[:, 5:].ravel()}))
            frame = pd.DataFrame({"model": model, "attribute": name, "group": labels,
                                  "auc": auc, "auc_error_bound": bound,
                                  "positives": shown_p, "negatives": shown_q})
            # at or above edges[j]  <=>  bin >= j + 1: the bins up to j are below
            tn = c_neg[:, pick]
            tp, fp = p[:, None] - fn, q[:, None] - tn
            curve_frames.append(pd.DataFrame({
                "model": model, "attribute": name,
                "group": np.repeat(np.asarray(labels, dtype=object), len(pick)),
                "threshold": np.tile(edges[pick], ng),
                **{c: v.ravel() for c, v in zip(CELLS, (tn, fp, fn, tp))}}))
            if sc.calibration is not None:
                cs = cal_sums[name]  # (ng, 8, n_bins): weight, rows, score, square x label
                gw, gn = cs[:, 0] + cs[:, 1], cs[:, 2] + cs[:, 3]
                gs, gy = cs[:, 4] + cs[:, 5], cs[:, 1]
                # sum of w (s - y)^2 = sum w s^2 - 2 sum over positives of w s + their weight
                sq = (cs[:, 6] + cs[:, 7]).sum(1) - 2 * cs[:, 5].sum(1) + gy.sum(1)
                with np.errstate(invalid="ignore", divide="ignore"):
                    frame["brier"] = sq / gw.sum(1)
                    mean_s, obs = gs / gw, gy / gw
                gi, bi = np.nonzero(gn > 0)
                cal_frames.append(pd.DataFrame({
                    "model": model, "attribute": name,
                    "group": np.asarray(labels, dtype=object)[gi], "bin": bi,
                    "bin_low": cal_edges[bi], "bin_high": cal_edges[bi + 1],
                    "n": np.rint(gn[gi, bi]).astype(np.int64), "weight": gw[gi, bi],
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
