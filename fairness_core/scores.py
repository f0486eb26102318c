"""Score-based views per group: ROC AUC, metrics against the threshold, and
calibration.

The sufficient statistic is, per finest group combination, the (weighted)
count of positives and negatives at each distinct score, or in each fine
score bin (:class:`ScoreCounts`): it is counted once, in one pass over the
rows.  Every attribute's groups are sums of combinations; cumulative sums
over the bins give every threshold (a threshold change is a lookup).

The views are computed per combination first and then summed to every group
of every attribute at once.  The AUC is quadratic in the counts: a group's
count of (positive, negative) pairs is the sum, over its pairs of
combinations, of those combinations' pair counts, so one (k x k) table of
pair counts per model serves every group.
"""
from __future__ import annotations

import contextlib
import math
import threading
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .counts import ALL, CELLS, OVERALL, GroupIndex, row_positions, take_rows
from .formatting import bound_shows, pct
from .prepare import Prepared
from .spec import INTERSECTION_SEP
from .threads import thread_map

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


def even_width(lo: float, hi: float, n_bins: int) -> float:
    """The width of ``n_bins`` even bins from ``lo`` to ``hi``: ``(hi - lo) /
    n_bins``, also when the scores span more than the largest float (scores
    near -1.8e308 and 1.8e308, whose difference overflows)."""
    lo, hi = float(lo), float(hi)
    width = (hi - lo) / n_bins
    return width if math.isfinite(width) else hi / n_bins - lo / n_bins


def even_points(lo: float, width: float, steps: np.ndarray) -> np.ndarray:
    """``lo + width * steps``, also where ``width * steps`` alone would be
    beyond the largest float (the points themselves are not): computed at
    half scale then, which is exact."""
    with np.errstate(over="ignore", invalid="ignore"):
        points = lo + width * steps
    if not np.isinf(points).any():
        return points
    return 2 * (lo / 2 + (width / 2) * steps)


def even_edges(lo: float, hi: float, n_bins: int) -> np.ndarray:
    """``n_bins + 1`` evenly spaced edges from ``lo`` to ``hi`` (``numpy.linspace``,
    also over a span beyond the largest float)."""
    if math.isfinite(float(hi) - float(lo)):
        return np.linspace(lo, hi, n_bins + 1)
    edges = even_points(lo, even_width(lo, hi, n_bins), np.arange(n_bins + 1))
    edges[-1] = hi
    return edges


def fine_edges(lo: float, hi: float, threshold: float, n_bins: int = FINE_BINS,
               extra=()) -> np.ndarray:
    """Evenly spaced score edges over [lo, hi], with the audit's threshold
    (and the ``extra`` edges) added."""
    if not hi > lo:
        edges = np.array([lo])
    else:
        edges = even_points(lo, even_width(lo, hi, n_bins), np.arange(n_bins))
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
        with np.errstate(over="ignore"):  # edges a few floats apart: inf, clipped below
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


#: Rows per step of the passes over a score column: their temporary arrays
#: stay in the CPU's cache.
_ROW_CHUNK = 1 << 16


class _FineBinner:
    """:func:`bin_scores` for the edges :func:`fine_edges` makes, ``edges =
    fine_edges(lo, hi, threshold, n_bins, extra)``: the even edges ``lo +
    (hi - lo) / n_bins * j`` and a few others (``others``: the threshold
    and ``extra``).

    Each score's even bin comes from arithmetic, checked against the even
    edges recomputed exactly as :func:`fine_edges` computes them; a table
    then adds the other edges below that bin.  The few scores whose guess is
    off, or whose even bin holds another edge, are placed by a binary
    search.  ``usable`` is false when the edges are not of that form (a
    single score value, or even edges too close to be distinct).
    """

    def __init__(self, edges: np.ndarray, lo: float, hi: float, n_bins: int, others=()):
        self.edges, self.lo, self.n_bins = edges, lo, n_bins
        self.usable = bool(hi > lo) and n_bins >= 2
        if not self.usable:
            return
        self.step = step = even_width(lo, hi, n_bins)
        even = even_points(lo, step, np.arange(n_bins))  # as fine_edges makes them
        others = np.unique(np.asarray(others, dtype=float))
        at = np.minimum(np.searchsorted(even, others), n_bins - 1)
        others = others[even[at] != others]
        self.usable = len(edges) == n_bins + len(others) and bool((even[1:] > even[:-1]).all())
        # per even bin q (scores from even[q] up to even[q + 1]), at q + 1: the
        # edges at or below even[q], or -1 when another edge lies inside the bin
        table = np.empty(n_bins + 1, dtype=np.int32)
        table[0] = -1
        table[1:] = np.arange(1, n_bins + 1) + np.searchsorted(others, even, side="right")
        inside = np.searchsorted(even, others, side="right")
        table[inside[inside > 0]] = -1
        self.table, self.top = table, even[-1]

    def __call__(self, s: np.ndarray) -> np.ndarray:
        if not self.usable:
            return bin_scores(s, self.edges)
        n_bins, step, lo = self.n_bins, self.step, self.lo
        # (scores spanning more than the largest float overflow to inf here:
        # their guess is off and the binary search below places them)
        with np.errstate(over="ignore", invalid="ignore"):
            t = s - lo
            t *= 1 / step  # a guess, checked below
            np.floor(t, out=t)
            np.clip(t, 0, n_bins - 1, out=t)  # also tames inf
            edge = t * step
            edge += lo
            off = np.greater_equal(s, edge)
            np.logical_not(off, out=off)  # below its bin's lower edge (or not a number)
            t += 1
            np.multiply(t, step, out=edge)
            edge += lo
        # at or above the next edge (the last bin has none: checked below)
        off |= s >= edge
        q1 = t.astype(np.int32)
        b = np.take(self.table, q1)
        off |= b < 0
        fix = np.flatnonzero(off)
        if len(fix):
            last = (q1[fix] == n_bins) & (s[fix] >= self.top) & (b[fix] >= 0)
            fix = fix[~last]
            b[fix] = np.searchsorted(self.edges, s[fix], side="right")
        return b


def fine_bins(s: np.ndarray, edges: np.ndarray, lo: float, hi: float, n_bins: int,
              others=()) -> np.ndarray:
    """``bin_scores(s, edges)`` (the same numbers), quicker for ``edges =
    fine_edges(lo, hi, threshold, n_bins, extra)`` with ``others`` holding
    the threshold and ``extra``; see :class:`_FineBinner`."""
    binner = _FineBinner(edges, lo, hi, n_bins, others)
    out = np.empty(len(s), dtype=np.int32)
    for a in range(0, len(s), _ROW_CHUNK):
        out[a:a + _ROW_CHUNK] = binner(s[a:a + _ROW_CHUNK])
    return out


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


#: A share of rows on one side of an automatic threshold beyond which the
#: audit says the threshold is probably not meaningful.
ONE_SIDED = 0.01


def threshold_warnings(groups: pd.DataFrame, prepared: Prepared) -> list[str]:
    """A warning per score model whose threshold was chosen as the middle of
    its range (none was given, and the scores are not probabilities) and
    gives all but :data:`ONE_SIDED` of the rows the same decision: a few
    extreme scores (a code for a missing value, a wrong unit) usually
    stretch the range that far.  (A threshold that gives every row the same
    decision is said by :func:`fairness_core.audit.operating_point_problems`.)
    ``groups`` is the audit's group table."""
    out = []
    overall = groups[groups["attribute"] == OVERALL]
    rate = dict(zip(overall["model"], overall["selection_rate"]))
    for model, threshold in prepared.thresholds.items():
        lo, hi = prepared.score_ranges[model]
        share = rate.get(model, np.nan)
        if prepared.spec.threshold_for(model) is not None or is_probability(lo, hi) \
                or not (0 < share < ONE_SIDED or 1 - ONE_SIDED < share < 1):
            continue
        out.append(
            f"The threshold of the score column {model!r}, {threshold:g}, is the middle of "
            f"its range ({lo:g} to {hi:g}) because none was given, and it gives "
            f"{pct(share, 2)} of the rows the positive decision. A few extreme scores usually "
            "stretch the range that far (a code for a missing value?): give a threshold, or "
            "leave those scores empty in the file (rows without a score are left out and "
            "counted).")
    return out


def auc_bound_warnings(auc: pd.DataFrame, prepared: Prepared) -> list[str]:
    """A warning per score model whose AUC over all rows is known only to
    within a bound that shows where the AUC is written (three decimals): its
    scores were counted in even bins over their range and crowd into a few
    of them, usually because a few extreme scores (a code for a missing
    value, a wrong unit) stretch the range.  ``auc`` is
    ``score_analysis(...)["auc"]``."""
    out = []
    if auc is None or not len(auc) or "auc_error_bound" not in auc:
        return out
    overall = auc[auc["attribute"] == OVERALL]
    for model, value, bound in zip(overall["model"], overall["auc"], overall["auc_error_bound"]):
        if not bound_shows(bound) or np.isnan(value):
            continue
        lo, hi = prepared.score_ranges.get(model, (np.nan, np.nan))
        n_bins = prepared.score_bins.get(model) or FINE_BINS
        out.append(
            f"The AUC of the score column {model!r} is known only to within {bound:.3f} "
            f"(between {max(value - bound, 0):.3f} and {min(value + bound, 1):.3f}): its "
            f"scores are counted in {n_bins:,} even bins over their whole range, from {lo:g} "
            f"to {hi:g}, and most of them fall into a few of those bins. A few extreme scores "
            "usually stretch the range: check the lowest and highest scores (a code for a "
            "missing value?) and leave them empty in the file (rows without a score are left "
            "out and counted). The decisions at the threshold and every rate are counted "
            "exactly.")
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


def _value_sums(w: np.ndarray, v: np.ndarray, out_of_bin: np.ndarray, n_out: int) -> tuple:
    """Sums of ``w * v`` and ``w * v**2`` (``w`` (m, n_bins), one value
    ``v`` per bin) over the bins into ``n_out`` outputs per row (bin j adds
    to output ``out_of_bin[j]``), each bin added after the one before: an
    empty bin (the audit's threshold among the distinct scores) leaves the
    sums exactly as they are."""
    m, nb = w.shape
    to = (np.arange(m)[:, None] * n_out + out_of_bin).ravel()
    with np.errstate(over="ignore", invalid="ignore"):  # squares beyond the largest float
        wv = w * v
        return tuple(np.bincount(to, weights=x.ravel(), minlength=m * n_out).reshape(m, n_out)
                     for x in (wv, wv * v))


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
        head = s[:max_exact_values + 1]
        if len(np.unique(head)) <= max_exact_values:
            values, inv = np.unique(s, return_inverse=True)
            exact = len(values) <= max_exact_values
    if exact:  # one bin per distinct score (and the threshold)
        i = int(np.searchsorted(values, threshold))
        if i < len(values) and values[i] == threshold:
            edges, b_all = values, inv + 1
        else:
            edges = np.insert(values, i, threshold)
            b_all = inv + 1
            b_all += inv >= i
        del inv
    else:
        n_fine, extra = engine_bins or FINE_BINS, split_edges(lo, hi)
        edges = fine_edges(lo, hi, threshold, n_fine, extra)
        binner = _FineBinner(edges, lo, hi, n_fine, np.r_[threshold, extra])
    nb = len(edges) + 1
    k = index.n_combos
    size = k * 2 * nb
    yb = prepared.y.view(np.uint8) if prepared.y.dtype == bool else prepared.y
    key = index.key
    mult = prepared.row_counts
    calibrate = is_probability(lo, hi) and prepared.has_label
    if calibrate:
        # each bin lies inside one calibration bin: the one of its lower edge
        cal_of_bin = np.r_[0, np.searchsorted(calibration_edges(n_cal_bins)[1:-1], edges,
                                              side="left")]
    if not exact:  # the (weighted) sums of the scores and of their squares
        sums = prepared.score_sums.get(model)  # or an engine's, per record
        w = prepared.weight if prepared.weight is not None else mult
        if calibrate:  # per combination, label and calibration bin
            n_sums = k * 2 * n_cal_bins
        else:  # per combination
            n_sums = k
        score_sums = np.zeros((2, n_sums))
    # each row's (combination, label, bin), a chunk of rows at a time
    code = np.empty(len(s), dtype=np.intp)
    for a in range(0, len(s), _ROW_CHUNK):
        part = slice(a, a + _ROW_CHUNK)
        b = b_all[part] if exact else binner(s[part])
        combo = key[part].astype(np.intp)  # numpy's bincount counts intp codes quickest
        pair = combo * 2
        pair += yb[part]
        np.multiply(pair, nb, out=code[part])
        code[part] += b
        if exact:
            continue
        if sums is None:
            with np.errstate(over="ignore"):  # squares of scores beyond 1e154: inf
                ws = s[part] if w is None else s[part] * w[part]
                ws2 = ws * s[part]
        else:
            ws, ws2 = sums[0][part], sums[1][part]
        if calibrate:
            pair *= n_cal_bins
            pair += np.take(cal_of_bin, b)
        else:
            pair = combo
        with np.errstate(over="ignore", invalid="ignore"):
            score_sums[0] += np.bincount(pair, weights=ws, minlength=n_sums)
            score_sums[1] += np.bincount(pair, weights=ws2, minlength=n_sums)
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
    if calibrate:
        if exact:  # a bin is one value: its sums are its weight times the value
            calibration = tuple(x.reshape(k, 2, n_cal_bins) for x in _value_sums(
                counts.reshape(2 * k, nb), np.r_[0.0, edges], cal_of_bin, n_cal_bins))
        else:
            calibration = tuple(x.reshape(k, 2, n_cal_bins) for x in score_sums)
        moments = tuple(c.sum(axis=(1, 2)) for c in calibration)
    elif exact:
        moments = _value_sums(counts.sum(axis=1), np.r_[0.0, edges], np.zeros(nb, np.intp), 1)
        moments = tuple(x.ravel() for x in moments)
    else:
        moments = tuple(score_sums)
    return ScoreCounts(edges=edges, exact=exact, lo=lo, hi=hi, counts=counts, rows=rows,
                       weight_sq=sq, calibration=calibration, moments=moments)


#: Bins per step of :func:`_bin_pass`: small enough to stay in the CPU's
#: cache, large enough that each step is one sizeable matrix product.
_PAIR_CHUNK = 2048
#: Whole numbers below this are exact in single precision.
_F32_EXACT = float(1 << 24)
_blas: dict = {"controller": None, "limiter": None, "users": 0}
_blas_lock = threading.Lock()


@contextlib.contextmanager
def _one_blas_thread():
    """A context in which the matrix products run on one thread: they are
    small, and a second thread mostly waits (and costs CPU time doing so).
    Nested or concurrent uses share one limit, lifted when the last ends."""
    with _blas_lock:
        if _blas["users"] == 0:
            try:
                if _blas["controller"] is None:
                    from threadpoolctl import ThreadpoolController
                    _blas["controller"] = ThreadpoolController()
                _blas["limiter"] = _blas["controller"].limit(limits=1, user_api="blas")
            except Exception:  # no thread control here: the products run as configured
                _blas["limiter"] = None
        _blas["users"] += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas["users"] -= 1
            if _blas["users"] == 0 and _blas["limiter"] is not None:
                _blas["limiter"].restore_original_limits()
                _blas["limiter"] = None


def _bin_pass(per_bin: np.ndarray, starts: np.ndarray, pairs: bool) -> tuple:
    """The per-combination bins (k, 2, n_bins) summed over the runs of bins
    that begin at ``starts`` (k, 2, n_runs), and, with ``pairs``, the rank
    statistics of every pair of combinations, (k, k) each:

    ``below[i, j]`` = sum over bins b of combination i's positives in b
    times combination j's negatives in the bins up to and including b;
    ``ties[i, j]`` = sum over b of i's positives times j's negatives in b.
    A group's AUC numerator is the sum of ``below - ties / 2`` over its
    pairs of combinations, and ``ties`` summed the same way counts its
    pairs that share a bin.

    The pairs' sums are matrix products over :data:`_PAIR_CHUNK` bins at a
    time (``starts`` holds every chunk's start).  Within a chunk the running
    sums start from zero and the negatives of earlier chunks enter as one
    outer product, so that whole-number counts stay small enough for an
    exact single-precision product; larger or weighted counts use double
    precision.
    """
    if not pairs:
        return np.add.reduceat(per_bin, starts, axis=2), None, None
    k, _, nb = per_bin.shape
    whole = per_bin.dtype.kind in "iub"
    chunks = np.arange(0, nb, _PAIR_CHUNK)
    bounds = np.searchsorted(starts, np.append(chunks, nb))
    below, ties = np.zeros((k, k)), np.zeros((k, k))
    width = min(_PAIR_CHUNK, nb)
    buffers: dict = {}
    runs, totals = [], []
    for c, a in enumerate(chunks):
        b = min(a + _PAIR_CHUNK, nb)
        chunk = per_bin[:, :, a:b]
        runs.append(np.add.reduceat(chunk, starts[bounds[c]:bounds[c + 1]] - a, axis=2))
        n_c, p_c = runs[-1].sum(axis=2).T.astype(np.float64)
        totals.append((n_c, p_c))
        # every product and partial sum below is a whole number at most p_max * n_max
        p_max, n_max = p_c.max(), n_c.max()
        small = whole and p_max * n_max < _F32_EXACT and max(p_max, n_max) < _F32_EXACT
        dt = np.float32 if small else np.float64
        if dt not in buffers:
            buffers[dt] = (np.empty((k, width), dtype=dt), np.empty((2 * k, width), dtype=dt))
        p, y = buffers[dt][0][:, :b - a], buffers[dt][1][:, :b - a]
        p[...] = chunk[:, 1]
        y[k:] = chunk[:, 0]
        if whole:  # whole-number running sums are quicker, and exact, before conversion
            y[:k] = np.cumsum(chunk[:, 0], axis=1)
        else:
            np.cumsum(y[k:], axis=1, out=y[:k])
        r = np.dot(p, y.T)
        below += r[:, :k]
        ties += r[:, k:]
    # each chunk's positives times the negatives of the chunks before it
    n_tot, p_tot = (np.array(t).T for t in zip(*totals))  # (k, n_chunks)
    below += p_tot @ (np.cumsum(n_tot, axis=1) - n_tot).T
    return np.concatenate(runs, axis=2), below, ties


def _group_plan(index: GroupIndex, spec) -> tuple:
    """Every group of every attribute (and the overall one): its attribute
    and label, and which combinations it sums, both as a (G, k) 0/1 matrix
    and as the combinations of each group in turn, with where each group's
    begin (for :func:`_group_sums`)."""
    names, labels, rows, order, first = [], [], [], [], []
    sets = [(INTERSECTION_SEP.join(a), index.marginal(a)[:2]) for a in spec.attribute_sets()]
    sets.append((OVERALL, (np.zeros(index.n_combos, dtype=np.int64), [ALL])))
    for name, (inv, labs) in sets:
        m = np.zeros((len(labs), index.n_combos))
        m[inv, np.arange(index.n_combos)] = 1.0
        rows.append(m)
        o = np.argsort(inv, kind="stable")
        first.append(len(order) * index.n_combos
                     + np.searchsorted(inv[o], np.arange(len(labs))))
        order.append(o)
        names += [name] * len(labs)
        labels += list(labs)
    return names, labels, np.concatenate(rows), (np.concatenate(order), np.concatenate(first))


def _group_sums(plan: tuple, combo: np.ndarray) -> np.ndarray:
    """Per-combination rows (k, ...) summed to every group (G, ...), each
    group's combinations added one after another in a fixed order (so that
    a group's sums do not depend on what else is summed alongside)."""
    order, first = plan
    return np.add.reduceat(combo[order], first, axis=0)


def _strings(values: list):
    """``values`` as the pandas array pandas makes of them in a column (for
    strings, its string type): repeated by ``take``, each row's Python
    string is never converted again."""
    return pd.Series(list(values)).array


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

    Everything is first summed per finest combination (k of them), then to
    every group of every attribute at once with one (groups x k) 0/1
    matrix; the AUC, quadratic in the counts, from the (k x k) rank
    statistics of the pairs of combinations (:func:`_bin_pass`).
    """
    index = index or GroupIndex.build(prepared)
    if counts is None:
        models = list(prepared.scores)
        counts = dict(zip(models, thread_map(
            lambda m: count_scores(prepared, index, m, max_exact_values, n_bins), models)))
    with _one_blas_thread():
        return _score_views(prepared, index, counts, n_curve, n_bins)


def _score_views(prepared: Prepared, index: GroupIndex, counts: dict, n_curve: int,
                 n_bins: int) -> dict:
    """:func:`score_analysis` of the score counts."""
    labelled = prepared.has_label
    names, labels, member, plan = _group_plan(index, prepared.spec)
    n_groups = len(labels)
    cal_edges = calibration_edges(n_bins)
    auc_parts, curve_parts, cal_parts, sum_parts, dist_parts = [], [], [], [], []
    for mi, (model, sc) in enumerate(counts.items()):
        threshold = prepared.thresholds.get(model, 0.5)
        edges = sc.edges
        if sc.counts is not None:
            per_bin, row_bin, sq_tot = sc.counts, sc.rows, None
            if sc.weight_sq is not None:
                sq_tot = sc.weight_sq.sum(axis=(1, 2))
        else:  # only running sums are kept: back to bins
            cum = sc.cumulative()
            per_bin = np.diff(cum[0], axis=2)
            row_bin = None if cum[1] is None else np.diff(cum[1], axis=2)
            sq_tot = None if cum[2] is None else cum[2][:, :, -1].sum(axis=1)
        nb = per_bin.shape[2]
        # curve thresholds: evenly spaced among the fine edges, plus the audit's own
        pick = np.unique(np.concatenate([
            np.linspace(0, len(edges) - 1, min(n_curve, len(edges))).round().astype(int),
            np.searchsorted(edges, [threshold])]))
        pick = pick[pick < len(edges)]
        d_edges = even_edges(sc.lo, sc.hi, N_DIST_BINS) if sc.hi > sc.lo \
            else np.array([sc.lo, sc.lo])
        n_d = len(d_edges) - 1
        cal_inner = cal_edges[1:-1]
        # one pass over the bins: sums over the runs between every boundary needed
        # (the curves' thresholds, the calibration and distribution bins, the chunks)
        starts = np.unique(np.concatenate([
            [0], pick + 1, np.searchsorted(edges, cal_inner, side="right") + 1,
            np.searchsorted(edges, d_edges, side="left") + 1, np.arange(0, nb, _PAIR_CHUNK)]))
        starts = starts[starts < nb]
        # each run's calibration bin and distribution bin: those of its first
        # bin, placed by its lower edge (bin 0 is empty and placed at the first)
        low = edges[np.maximum(starts - 1, 0)]
        cal_of_run = np.where(starts > 0, np.searchsorted(cal_inner, low, side="left"), 0)
        d_of_run = np.clip(np.searchsorted(d_edges, low, side="right") - 1, 0, n_d - 1)
        blocks, pairs_below, pairs_tied = _bin_pass(per_bin, starts, labelled)
        run = np.cumsum(blocks, axis=2)
        at_pick = np.searchsorted(starts, pick + 1)  # the bins up to pick j end block m - 1
        below = run[:, :, at_pick - 1]  # (k, 2, n_pick): tn and fn
        tot = run[:, :, -1]  # (k, 2): negatives, positives
        w_blocks = blocks.sum(axis=1)
        s_w = tot.sum(axis=1)
        s_n = s_w if row_bin is None else row_bin.sum(axis=(1, 2))
        s_q = s_w if sq_tot is None else sq_tot
        d_w = _sum_ranges(w_blocks, d_of_run, n_d)
        combo = [s_n, s_w, *sc.moments, s_q]
        combo = np.concatenate([np.column_stack(combo).astype(np.float64), d_w,
                                tot.astype(np.float64),
                                below.reshape(len(tot), -1).astype(np.float64)], axis=1)
        has_cal = sc.calibration is not None
        if has_cal:
            cal_w = _sum_ranges(blocks, cal_of_run, n_bins)
            cal_n = cal_w if row_bin is None else _sum_ranges(
                np.add.reduceat(row_bin, starts, axis=2), cal_of_run, n_bins)
            cal = np.concatenate([cal_w, cal_n, *sc.calibration], axis=1)  # (k, 8, n_bins)
            combo = np.concatenate([combo, cal.reshape(len(cal), -1)], axis=1)
        g = _group_sums(plan, combo)  # every group's sums
        ms, o = g[:, :5], 5
        gd = g[:, o:o + n_d]
        o += n_d
        q, p = g[:, o], g[:, o + 1]
        o += 2
        n_pick = len(pick)
        tn, fn = g[:, o:o + n_pick], g[:, o + n_pick:o + 2 * n_pick]
        o += 2 * n_pick
        if labelled:
            # each group's sums over its pairs of combinations
            num = ((member @ (pairs_below - 0.5 * pairs_tied)) * member).sum(axis=1)
            ties = ((member @ pairs_tied) * member).sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                pq = p * q
                auc = np.where(pq > 0, num / pq, np.nan)
                bound = np.where(pq > 0, 0.5 * ties / pq, np.nan)
            if sc.exact:  # pairs in one bin are true ties: AUC counts them one half
                bound = np.where(np.isnan(auc), np.nan, 0.0)
            shown_p, shown_q = p, q
        else:  # no outcome: nothing to rank or count against
            auc = bound = shown_p = shown_q = np.full(n_groups, np.nan)
        brier = np.full(n_groups, np.nan)
        if has_cal:
            cs = g[:, o:].reshape(n_groups, 8, n_bins)  # weight, rows, score, square x label
            gw, gn = cs[:, 0] + cs[:, 1], cs[:, 2] + cs[:, 3]
            gs, gy = cs[:, 4] + cs[:, 5], cs[:, 1]
            # sum of w (s - y)^2 = sum w s^2 - 2 sum over positives of w s + their weight
            sq = (cs[:, 6] + cs[:, 7]).sum(1) - 2 * cs[:, 5].sum(1) + gy.sum(1)
            with np.errstate(invalid="ignore", divide="ignore"):
                brier = sq / gw.sum(1)
                mean_s, obs = gs / gw, gy / gw
            gi, bi = np.nonzero(gn > 0)
            cal_parts.append((mi, gi, {
                "bin": bi, "bin_low": cal_edges[bi], "bin_high": cal_edges[bi + 1],
                "n": np.rint(gn[gi, bi]).astype(np.int64), "weight": gw[gi, bi],
                "mean_score": mean_s[gi, bi], "observed_rate": obs[gi, bi]}))
        auc_parts.append((mi, np.arange(n_groups), {
            "auc": auc, "auc_error_bound": bound, "positives": shown_p,
            "negatives": shown_q, "brier": brier}))
        sum_parts.append((mi, np.arange(n_groups), {
            "n": ms[:, 0].round().astype(np.int64), "weight": ms[:, 1],
            "sum_score": ms[:, 2], "sum_score_sq": ms[:, 3], "sum_weight_sq": ms[:, 4]}))
        dist_parts.append((mi, np.repeat(np.arange(n_groups), n_d), {
            "bin": np.tile(np.arange(n_d), n_groups),
            "bin_low": np.tile(d_edges[:-1], n_groups),
            "bin_high": np.tile(d_edges[1:], n_groups), "weight": gd.ravel()}))
        # at or above edges[j]  <=>  bin >= j + 1: the bins up to j are below
        tp, fp = p[:, None] - fn, q[:, None] - tn
        curve_parts.append((mi, np.repeat(np.arange(n_groups), n_pick), {
            "threshold": np.tile(edges[pick], n_groups),
            **{c: v.ravel() for c, v in zip(CELLS, (tn, fp, fn, tp))}}))

    # the text columns: each distinct value converted once, then repeated
    model_of, attribute_of, label_of = (_strings(v) for v in (list(counts), names, labels))

    def frame(parts, cols):
        if not parts:
            return pd.DataFrame(columns=cols)
        gi = np.concatenate([p[1] for p in parts])
        mi = np.concatenate([np.full(len(p[1]), p[0]) for p in parts])
        data = {"model": model_of.take(mi), "attribute": attribute_of.take(gi),
                "group": label_of.take(gi)}
        for c in cols[3:]:
            data[c] = np.concatenate([p[2][c] for p in parts])
        return pd.DataFrame(data, copy=False)

    return {
        "auc": frame(auc_parts, ["model", "attribute", "group", "auc", "auc_error_bound",
                                 "positives", "negatives", "brier"]),
        "curves": frame(curve_parts, ["model", "attribute", "group", "threshold", *CELLS]),
        "calibration": frame(cal_parts, ["model", "attribute", "group", "bin", "bin_low",
                                         "bin_high", "n", "weight", "mean_score",
                                         "observed_rate"]),
        "sums": frame(sum_parts, ["model", "attribute", "group", "n", "weight", "sum_score",
                                  "sum_score_sq", "sum_weight_sq"]),
        "distribution": frame(dist_parts, ["model", "attribute", "group", "bin", "bin_low",
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
    # (scores beyond 1e154 have squares beyond the largest float: an infinite
    # or undefined spread)
    z = z_value(confidence)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        mean = sums["sum_score"].to_numpy(dtype=float) / W
        var = np.maximum(sums["sum_score_sq"].to_numpy(dtype=float) / W - mean ** 2, 0.0)
        var = np.where(n > 1, var * n / (n - 1), np.nan)  # the sample variance
        se = np.sqrt(var * sums["sum_weight_sq"].to_numpy(dtype=float)) / W
        ci_low, ci_high = mean - z * se, mean + z * se
    out = sums[["model", "attribute", "group", "n", "weight"]].reset_index(drop=True)
    out["mean_score"] = np.where(W > 0, mean, np.nan)
    out["sd_score"] = np.sqrt(var)
    out["mean_ci_low"], out["mean_ci_high"] = ci_low, ci_high
    out["threshold"] = out["model"].map(thresholds or {}).astype(float)
    at = row_positions(out, groups)
    for c in ("selection_rate", "selection_rate_ci_low", "selection_rate_ci_high"):
        if c in groups:
            out[c.replace("selection_rate", "share_above")] = take_rows(groups[c].to_numpy(), at)
    return out.reindex(columns=cols)
