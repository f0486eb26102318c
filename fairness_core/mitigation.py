"""Mitigation preview: what would per-group thresholds cost?

For one score model and one sensitive attribute, find a threshold per
group that brings the constrained rates of every group inside the audit's
tolerance band while keeping as much of the objective (accuracy or
balanced accuracy) as possible; report the thresholds, every group's
metrics before and after (with intervals), the cost, and the trade-off
between the objective and the largest gap over a range of tolerances.

Everything is read off the score counts (:class:`~fairness_core.scores.ScoreCounts`):
per finest group combination, the positives and negatives in each score
bin.  A threshold is a bin edge, so a group's confusion counts at every
threshold are running sums, and the search never touches the rows.

How the band is applied
    As the audit judges the gap: each group's constrained rate divided by
    the reference group's must lie inside ``[tolerance, 1 / tolerance]``
    (a reference at 0 passes only a group at 0).  The reference is the
    named one, else the largest group; with the ``best`` reference
    strategy (the best-off group per metric), the same band is the
    requirement that the lowest rate be at least ``tolerance`` times the
    highest.  Groups with fewer rows than the minimum group size (and, for
    a true or false positive rate, groups without positives or negatives)
    get no verdict in the audit; they keep today's threshold and do not
    constrain the others.  Constrained rates: selection rate
    (``demographic_parity``), true positive rate (``equal_opportunity``),
    true and false positive rates (``equalized_odds``).

How the search works
    Deterministic thresholds (one per group): every threshold of the
    reference group is tried; for each, every other group independently
    takes its best threshold among those that put its rate inside the band
    around the reference's (the objective is a sum over groups, and each
    group's rates only fall as its threshold rises, so the admissible
    thresholds form one run, searched with a range-maximum table).  This is
    exact: the best combination of thresholds.  With the ``best`` strategy
    the lowest rate takes the reference's place.  Equalized odds with the
    ``best`` strategy is searched with randomised thresholds only.

    Only a group's own points count: the bin edges where its counts change
    (a small group at a million rows leaves most fine bins empty).  The
    reference's points are tried in runs of 64: a run's bound (its best own
    gain plus each other group's best over the union of the run's bands) is
    cheap, and runs are tried in full only while their bound can still beat
    the best found, so a handful of runs is usually all.  The answer is the
    one trying every point would give, ties included.

    Randomised thresholds (as fairlearn's ``ThresholdOptimizer``): a group's
    rule is a lottery over a few thresholds (in effect: above the top
    threshold always selected, between thresholds selected with some
    probability, below the lowest never).  Its expected counts are the
    mixture of its thresholds' counts, so the achievable points are the
    convex hull of the group's threshold points (its lower and upper
    chains: the points are already sorted), and the best lottery is a
    small linear programme over the hull's corners (scipy's HiGHS simplex),
    exact up to floating point.  It is first solved on a few corners; its
    duals price the others, and those that would improve it join until none
    would, which is then the answer over every corner.  Equalized odds
    needs this in general: a single threshold per group rarely gives equal
    true and false positive rates at once.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .counts import CELLS, CountCube, count_table
from .disparity import named_group
from .errors import InputError, quote_list
from .metrics import REGISTRY, add_metrics, metric_values
from .spec import INTERSECTION_SEP
from .tolerance import Tolerance

CONSTRAINTS = {
    "demographic_parity": ("selection_rate",),
    "equal_opportunity": ("tpr",),
    "equalized_odds": ("tpr", "fpr"),
}
CONSTRAINT_WORDS = {
    "demographic_parity": "demographic parity (selection rates within the band)",
    "equal_opportunity": "equal opportunity (true positive rates within the band)",
    "equalized_odds": "equalized odds (true and false positive rates within the band)",
}
#: fairlearn's ThresholdOptimizer names of the same constraints and objectives
FAIRLEARN_CONSTRAINTS = {"demographic_parity": "demographic_parity",
                         "equal_opportunity": "true_positive_rate_parity",
                         "equalized_odds": "equalized_odds"}
OBJECTIVES = {"accuracy": "accuracy_score", "balanced_accuracy": "balanced_accuracy_score"}
#: The metrics shown per group before and after.
SHOWN = ("selection_rate", "tpr", "fpr", "ppv", "accuracy")
#: Tolerance levels of the trade-off curve: from this ratio up to 1.
TRADEOFF_FROM = 0.5
N_TRADEOFF = 21
CAVEAT = ("Group-specific thresholds use the sensitive attribute at the moment of the decision. "
          "In some settings that is unlawful (for example in US employment law, which forbids "
          "adjusting scores or cut-offs by race, sex or other protected characteristics). "
          "This is a preview for discussion of what closing the gap would cost, not a rule "
          "to deploy.")
_EPS = 1e-12


@dataclass
class Rule:
    """One group's decision rule: thresholds with probabilities (one
    threshold with probability 1 for a plain threshold).  A threshold of
    ``None`` selects nobody (it lies above every score)."""

    thresholds: list
    probabilities: list
    bins: list = field(repr=False, default_factory=list)

    @property
    def randomised(self) -> bool:
        return len(self.thresholds) > 1

    def to_json(self):
        if not self.randomised:
            return self.thresholds[0]
        return {"mix": [{"threshold": t, "probability": p}
                        for t, p in zip(self.thresholds, self.probabilities)],
                "steps": self.steps()}

    def steps(self) -> list:
        """The rule as score bands, highest first: ``{"from": t, "to": u,
        "probability": q}``, selected with probability ``q`` when
        ``t <= score < u`` (``to`` None: no upper end).  A lottery over
        thresholds selects a score with the summed probability of the
        thresholds at or below it."""
        pairs = sorted(((t, p) for t, p in zip(self.thresholds, self.probabilities)
                        if t is not None), key=lambda x: -x[0])
        out, upper = [], None
        for k, (t, _) in enumerate(pairs):
            q = sum(p for _, p in pairs[k:])
            out.append({"from": t, "to": upper, "probability": min(q, 1.0)})
            upper = t
        return out

    def describe(self) -> str:
        if not self.randomised:
            t = self.thresholds[0]
            return "nobody selected" if t is None else f"score >= {t:.4g}"
        parts = []
        for s in self.steps():
            band = (f"score >= {s['from']:.4g}" if s["to"] is None
                    else f"{s['from']:.4g} <= score < {s['to']:.4g}")
            parts.append(f"{band}: {s['probability']:.0%}")
        return "; ".join(parts) + "; lower: 0%"


@dataclass
class Mitigation:
    """A mitigation preview (see the module docstring)."""

    constraint: str
    attribute: str
    objective: str
    model: str
    tolerance: float
    randomised: bool
    reference: str | None
    feasible: bool
    degenerate: bool
    rules: dict
    today_threshold: float
    before: pd.DataFrame
    after: pd.DataFrame
    objective_before: float
    objective_after: float
    #: the objective of the best per-group thresholds without the constraint
    objective_unconstrained: float
    tradeoff: pd.DataFrame
    summary: str
    notes: list
    intervals: str
    caveat: str = CAVEAT

    @property
    def cost(self) -> float:
        return self.objective_before - self.objective_after

    def to_dict(self) -> dict:
        def records(df):
            return [{k: _num(v) for k, v in r.items()} for r in df.to_dict("records")]
        return {
            "constraint": self.constraint, "attribute": self.attribute,
            "objective": self.objective, "model": self.model, "tolerance": self.tolerance,
            "randomised": self.randomised, "reference": self.reference,
            "feasible": self.feasible, "degenerate": self.degenerate,
            "today_threshold": self.today_threshold,
            "thresholds": {g: r.to_json() for g, r in self.rules.items()},
            "rules": {g: r.describe() for g, r in self.rules.items()},
            "before": records(self.before), "after": records(self.after),
            "objective_before": _num(self.objective_before),
            "objective_after": _num(self.objective_after), "cost": _num(self.cost),
            "objective_unconstrained": _num(self.objective_unconstrained),
            "cost_of_constraint": _num(self.objective_unconstrained - self.objective_after),
            "tradeoff": records(self.tradeoff), "summary": self.summary,
            "notes": list(self.notes), "intervals": self.intervals, "caveat": self.caveat,
        }


def _num(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return None if math.isnan(f) or math.isinf(f) else f
    if isinstance(v, np.bool_):
        return bool(v)
    return v


# -- the search ---------------------------------------------------------------

#: Runs of this many candidates (or points) share one bound (or maximum).
_BLOCK = 64


class _RangeMax:
    """Maximum of ``values`` over runs ``[lo, hi)``, vectorised over many
    runs.  The values are cut into blocks of :data:`_BLOCK`, each with its
    running maxima from either end, and the block maxima get a sparse table:
    O(n) to build, and a run costs a few look-ups (a run inside one block,
    at most one block's values)."""

    def __init__(self, values: np.ndarray):
        v = np.asarray(values, dtype=float)
        self.n = len(v)
        nb = max(1, -(-self.n // _BLOCK))
        pad = np.full(nb * _BLOCK, -np.inf)
        pad[:self.n] = v
        blocks = pad.reshape(nb, _BLOCK)
        self.values = pad
        self.prefix = np.maximum.accumulate(blocks, axis=1).ravel()
        self.suffix = np.maximum.accumulate(blocks[:, ::-1], axis=1)[:, ::-1].ravel()
        levels = max(1, nb.bit_length())
        self.table = np.full((levels, nb), -np.inf)
        self.table[0] = blocks.max(axis=1)
        k = 1
        for lvl in range(1, levels):
            self.table[lvl, :nb - k] = np.maximum(self.table[lvl - 1, :nb - k],
                                                  self.table[lvl - 1, k:])
            k *= 2

    def _blocks(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Maximum over whole blocks ``[lo, hi)`` (``hi > lo``)."""
        lvl = np.frexp((hi - lo).astype(float))[1] - 1  # floor(log2(length)), exactly
        return np.maximum(self.table[lvl, lo], self.table[lvl, hi - np.left_shift(1, lvl)])

    def query(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """The maxima over ``[lo, hi)`` (-inf for an empty run)."""
        lo, hi = np.asarray(lo, dtype=np.intp), np.asarray(hi, dtype=np.intp)
        out = np.full(len(lo), -np.inf)
        ok = hi > lo
        first, last = lo // _BLOCK, (hi - 1) // _BLOCK
        same = ok & (first == last)
        if same.any():
            # as many look-ups per run as the widest of these runs
            idx = lo[same, None] + np.arange(int((hi[same] - lo[same]).max()))
            vals = self.values[np.minimum(idx, len(self.values) - 1)]
            out[same] = np.where(idx < hi[same, None], vals, -np.inf).max(axis=1)
        cross = ok & (first < last)
        if cross.any():
            best = np.maximum(self.suffix[lo[cross]], self.prefix[hi[cross] - 1])
            a, b = first[cross] + 1, last[cross]
            mid = b > a
            if mid.any():
                best[mid] = np.maximum(best[mid], self._blocks(a[mid], b[mid]))
            out[cross] = best
        return out


@dataclass
class _Group:
    """One group's distinct threshold points: bins (first bin decided
    positive), TP and FP (weighted), its positives and negatives, rows."""

    label: str
    bins: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    pos: float
    neg: float
    n: int

    def rates(self, metric: str) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            if metric == "selection_rate":
                return (self.tp + self.fp) / (self.pos + self.neg)
            if metric == "tpr":
                return self.tp / self.pos
            return self.fp / self.neg


def _group_points(g_cum: np.ndarray, g_rows: np.ndarray, labels: list) -> list:
    """Each group's distinct points.  ``g_cum`` (G, 2, n_bins + 1) running
    sums of negatives and positives; a point is kept once, at the last
    bin of its run (whose threshold is the lowest selected score)."""
    out = []
    for i, lab in enumerate(labels):
        neg_c, pos_c = g_cum[i, 0], g_cum[i, 1]
        neg, pos = float(neg_c[-1]), float(pos_c[-1])
        change = np.r_[(np.diff(neg_c) != 0) | (np.diff(pos_c) != 0), True]
        j = np.flatnonzero(change)
        out.append(_Group(lab, j, pos - pos_c[j], neg - neg_c[j], pos, neg, int(g_rows[i])))
    return out


def _bounds(ref_rate, tol: float, mode: str):
    """The band of rates around a reference rate (``mode`` "reference")
    or above a lowest rate (``mode`` "lowest")."""
    if mode == "reference":
        return ref_rate * (tol - _EPS), ref_rate * (1 / tol + _EPS)
    return ref_rate, ref_rate / (tol - _EPS) * (1 + _EPS)


def _search_deterministic(groups, judged, fixed_gain, a, b, metrics, tol, ref, mode,
                          cache: dict):
    """The best single threshold per judged group (see the module docstring).
    Returns ({group index: point index}, objective gain) or None.  ``cache``
    keeps each group's gains, rates and range-maximum table between
    tolerances.

    The candidates (the reference group's points, or the lowest rates) are
    taken in runs of :data:`_BLOCK`.  A run's bound is its best own gain plus,
    for every other group, its best gain over the union of the run's bands:
    no candidate of the run can do better.  Runs are then evaluated exactly,
    highest bound first, until no run left can reach the best found; the
    answer is the same as evaluating every candidate (ties: the first)."""
    for i in judged:
        if ("table", i) not in cache:
            gain = a * groups[i].tp - b * groups[i].fp
            cache[("gain", i)], cache[("table", i)] = gain, _RangeMax(gain)
            for m in metrics:
                # a group's rates fall as its threshold rises: reversed, they rise
                cache[("rising", i, m)] = np.ascontiguousarray(groups[i].rates(m)[::-1])
    gains = {i: cache[("gain", i)] for i in judged}
    tables = {i: cache[("table", i)] for i in judged}

    def window(i, lows, highs):
        n_cand = len(lows[0])
        lo_idx = np.zeros(n_cand, dtype=np.intp)
        hi_idx = np.full(n_cand, len(groups[i].bins), dtype=np.intp)
        for m, lo, hi in zip(metrics, lows, highs):
            rr = cache[("rising", i, m)]
            if np.isnan(rr[0]):  # undefined (no positives, or no negatives): no verdict
                continue
            n = len(rr)
            # indices in reversed order with lo <= rate <= hi, mapped back
            left = np.searchsorted(rr, lo, side="left")
            right = np.searchsorted(rr, hi, side="right")
            lo_idx = np.maximum(lo_idx, n - right)
            hi_idx = np.minimum(hi_idx, n - left)
        return lo_idx, hi_idx

    if mode == "reference":
        base = gains[ref]
        cand_rates = [cache[("rising", ref, m)][::-1] for m in metrics]
        others = [i for i in judged if i != ref]
    else:
        (m,) = metrics
        if ("lowest", m) not in cache:
            every = np.sort(np.concatenate([cache[("rising", i, m)] for i in judged]),
                            kind="stable")  # sorted runs: merged
            every = every[~np.isnan(every)]
            cache[("lowest", m)] = every[np.r_[True, every[1:] != every[:-1]]] \
                if len(every) else every
        cand = cache[("lowest", m)]
        base = np.zeros(len(cand))
        cand_rates = [cand]
        others = list(judged)
    n_cand = len(base)
    if not n_cand:
        return None
    bands = [_bounds(r, tol, mode) for r in cand_rates]

    def totals(lows, highs, own):
        # a candidate that leaves some group no admissible point is dropped
        # before the next group is looked at
        total = own.astype(float)
        alive = np.arange(len(total))
        for i in others:
            best = tables[i].query(*window(i, [x[alive] for x in lows],
                                           [x[alive] for x in highs]))
            total[alive] = total[alive] + best
            alive = alive[np.isfinite(best)]
        return total

    # bounds per run of candidates: the union of their bands (fmin / fmax
    # keep a run's defined rates when some are undefined); with few
    # candidates, every one is tried at once
    starts = np.arange(0, n_cand, _BLOCK)
    if len(starts) <= 16:
        starts = np.zeros(1, dtype=np.intp)
        bound = np.zeros(1)
    else:
        bound = totals([np.fmin.reduceat(lo, starts) for lo, _ in bands],
                       [np.fmax.reduceat(hi, starts) for _, hi in bands],
                       np.maximum.reduceat(base, starts))
    order = np.argsort(-bound, kind="stable")
    order = order[np.isfinite(bound[order])]
    best, seen_idx, seen_total = -np.inf, [], []
    done, step = 0, 4
    while done < len(order) and bound[order[done]] >= best:
        runs = order[done:done + step]
        runs = runs[bound[runs] >= best]
        done += step
        step *= 2
        idx = (starts[runs, None] + np.arange(_BLOCK if len(starts) > 1 else n_cand)).ravel()
        idx = idx[idx < n_cand]
        total = totals([lo[idx] for lo, _ in bands], [hi[idx] for _, hi in bands], base[idx])
        seen_idx.append(idx)
        seen_total.append(total)
        best = max(best, float(total.max()))
    if not np.isfinite(best):
        return None
    idx, total = np.concatenate(seen_idx), np.concatenate(seen_total)
    k = int(idx[total == best].min())
    choice = {ref: k} if mode == "reference" else {}
    for i in others:
        lo_idx, hi_idx = window(i, [lo[k:k + 1] for lo, _ in bands],
                                [hi[k:k + 1] for _, hi in bands])
        lo_i, hi_i = int(lo_idx[0]), int(hi_idx[0])
        choice[i] = lo_i + int(np.argmax(gains[i][lo_i:hi_i]))
    return choice, best + fixed_gain


def _turns(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per inner point, the cross product of the segments to its
    neighbours: negative where the path turns clockwise."""
    return ((x[1:-1] - x[:-2]) * (y[2:] - y[:-2])
            - (y[1:-1] - y[:-2]) * (x[2:] - x[:-2]))


def _chain(x: np.ndarray, y: np.ndarray, sign: float, keep: np.ndarray, rounds: int = 200):
    """The upper (``sign`` 1) or lower (-1) hull of points sorted by x then
    y, as indices from the first point to the last: every point on or
    inside the segment between its two neighbours (below it for the upper
    chain, above for the lower) is dropped, all at once, until none is (such
    a point lies in the hull of others, so no corner is ever dropped).
    ``keep``: the points left after a first round.  None when ``rounds``
    did not suffice."""
    for _ in range(rounds):
        if len(keep) < 3:
            return keep
        drop = sign * _turns(x[keep], y[keep]) >= 0
        if not drop.any():
            return keep
        keep = keep[~np.r_[False, drop, False]]
    return None


def _hull(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Indices of the convex hull's corners of a group's points (a segment
    or a point when they are collinear).  A group's points fall in both
    coordinates as its threshold rises, so reversed they are sorted: the
    hull is its upper and lower chains.  qhull takes over should the chains
    not settle quickly."""
    n = len(x)
    rev = np.arange(n)[::-1]
    xs, ys = x[rev], y[rev]
    if n < 3:
        return np.arange(n)
    turns = _turns(xs, ys)  # the first round of both chains
    upper = _chain(xs, ys, 1.0, np.flatnonzero(np.r_[True, turns < 0, True]))
    lower = _chain(xs, ys, -1.0, np.flatnonzero(np.r_[True, turns > 0, True]))
    if upper is not None and lower is not None:
        return np.unique(rev[np.r_[upper, lower]])
    from scipy.spatial import ConvexHull, QhullError

    pts = np.stack([x, y], axis=1)
    if len(pts) >= 3:
        try:
            return np.sort(ConvexHull(pts).vertices)
        except QhullError:  # collinear points: the two ends hold every point
            pass
    order = np.lexsort((y, x))
    return np.unique(order[[0, -1]])


def _search_randomised(groups, judged, fixed_gain, a, b, metrics, tol, ref, mode,
                       cache: dict):
    """The best lottery over thresholds per judged group: a linear programme
    over each group's hull corners.  Returns ({group index: [(point index,
    probability)]}, objective gain) or None.  ``cache`` keeps each group's
    hull between tolerances."""
    from scipy.optimize import linprog

    corners = {}
    for i in judged:
        if ("hull", i) not in cache:
            g = groups[i]
            scale = (max(g.neg, 1e-300), max(g.pos, 1e-300))
            cache[("hull", i)] = _hull(g.fp / scale[0], g.tp / scale[1])
        corners[i] = cache[("hull", i)]
    order = list(judged)
    offset, n_var = {}, 0
    for i in order:
        offset[i] = n_var
        n_var += len(corners[i])
    n_low = len(metrics) if mode == "lowest" else 0
    total_vars = n_var + n_low
    c = np.zeros(total_vars)
    a_eq, b_eq = [], []
    for i in order:
        g, k = groups[i], corners[i]
        c[offset[i]:offset[i] + len(k)] = -(a * g.tp[k] - b * g.fp[k])
        row = np.zeros(total_vars)
        row[offset[i]:offset[i] + len(k)] = 1
        a_eq.append(row)
        b_eq.append(1.0)
    a_ub, b_ub = [], []

    def rate_row(i, m):
        row = np.zeros(total_vars)
        r = groups[i].rates(m)[corners[i]]
        if np.isnan(r).all():
            return None
        row[offset[i]:offset[i] + len(corners[i])] = r
        return row

    lo_f, hi_f = tol - _EPS, 1 / tol + _EPS
    for mi, m in enumerate(metrics):
        if mode == "reference":
            base = rate_row(ref, m)
        else:
            base = np.zeros(total_vars)
            base[n_var + mi] = 1
            lo_f, hi_f = 1.0, 1 / tol
        if base is None:
            continue
        for i in order:
            if mode == "reference" and i == ref:
                continue
            row = rate_row(i, m)
            if row is None:
                continue
            a_ub.append(lo_f * base - row)  # rate >= lo * reference
            b_ub.append(0.0)
            a_ub.append(row - hi_f * base)  # rate <= hi * reference
            b_ub.append(_EPS)
    a_ub = np.array(a_ub) if a_ub else np.zeros((0, total_vars))
    a_eq, b_ub = np.array(a_eq), np.array(b_ub)

    def solve(cols):
        return linprog(c[cols], A_ub=a_ub[:, cols] if len(a_ub) else None,
                       b_ub=b_ub if len(a_ub) else None, A_eq=a_eq[:, cols], b_eq=b_eq,
                       bounds=(0, None), method="highs-ds")

    # Few corners matter: solve with some, price the others with the duals,
    # add those that would improve it, until none would (then the answer is
    # the whole programme's).  The corners used carry over between tolerances.
    active = cache.get("active")
    if active is None or len(active) != total_vars:
        active = np.zeros(total_vars, dtype=bool)
        active[n_var:] = True
        for i in order:
            g, k, o = groups[i], corners[i], offset[i]
            active[o + np.linspace(0, len(k) - 1, min(len(k), 16)).astype(int)] = True
            active[o + int(np.argmin(c[o:o + len(k)]))] = True
            # selecting nobody: every rate 0, so the programme stays feasible
            active[o + np.flatnonzero((g.tp[k] == 0) & (g.fp[k] == 0))] = True
    x = None
    for _ in range(8):
        cols = np.flatnonzero(active)
        res = solve(cols)
        if res.status != 0:
            break
        reduced = c - a_eq.T @ res.eqlin.marginals
        if len(a_ub):
            reduced = reduced - a_ub.T @ res.ineqlin.marginals
        enter = (reduced < -1e-10) & ~active
        if not enter.any():
            x = np.zeros(total_vars)
            x[cols] = res.x
            break
        active |= enter
    cache["active"] = active
    if x is None:  # the whole programme
        res = solve(np.arange(total_vars))
        if res.status != 0:
            return None
        x = res.x
    out = {}
    for i in order:
        lam = x[offset[i]:offset[i] + len(corners[i])]
        keep = lam > 1e-9
        w = lam[keep] / lam[keep].sum()
        out[i] = list(zip(corners[i][keep].tolist(), w.tolist()))
    return out, float(-res.fun) + fixed_gain


# -- the preview ----------------------------------------------------------------

def _threshold_of(sc, b: int):
    """The threshold of a first positive bin: the lowest score it selects
    (None: nobody)."""
    return None if b >= sc.n_bins else float(sc.edges[b - 1]) if b >= 1 else float(sc.lo)


def _cells_for(sc, inv: np.ndarray, mixes: dict) -> tuple:
    """Per-combination cells (k, 4) when each group ``g`` decides by the
    lottery ``mixes[g]`` = [(first positive bin, probability)]: expected
    counts ``(cells, row_cells, weight_sq_cells)``."""
    cache = {}
    out = None
    for g, mix in mixes.items():
        rows = inv == g
        for b, p in mix:
            if b not in cache:
                cache[b] = sc.cells_at(b)
            parts = cache[b]
            if out is None:
                out = [None if x is None else np.zeros(x.shape) for x in parts]
            for o, x in zip(out, parts):
                if x is not None:
                    o[rows] += p * x[rows]
    return tuple(out)


def _group_cells(g_cum: np.ndarray, mixes: dict) -> np.ndarray:
    """Per-group cells (G, 4) in :data:`CELLS` order when each group ``g``
    decides by the lottery ``mixes[g]`` (expected counts), from the groups'
    running sums ``g_cum`` (G, 2, n_bins + 1)."""
    out = np.zeros((len(g_cum), 4))
    for g, mix in mixes.items():
        total = g_cum[g, :, -1]
        for b, p in mix:
            below = g_cum[g, :, b]
            out[g] += p * np.array([below[0], total[0] - below[0], below[1], total[1] - below[1]])
    return out


def _tables(sc, inv, labels, requests, attribute, spec, weighted) -> list:
    """Per-group metrics with the audit's intervals for each of ``requests``
    [(mixes, randomised)]: [(table, interval method, per-combination cells)].
    Decisions whose counts are of the same kind (rows, or expected counts)
    share one count table and one :class:`~fairness_core.stats.Uncertainty`,
    each on the bootstrap stream it would have alone."""
    from .stats import Uncertainty

    cum = sc.cumulative()
    rows = (cum[1] if cum[1] is not None else cum[0])[:, :, -1].sum(axis=1).astype(np.int64)
    wsum = cum[0][:, :, -1].sum(axis=1).astype(float)
    attrs = [(attribute, inv, labels)]
    cols = ["group", "n", "weight", *CELLS]
    for m in SHOWN:
        cols += [m, f"{m}_ci_low", f"{m}_ci_high"]
    parts = []
    for k, (mixes, randomised) in enumerate(requests):
        c, r, q = _cells_for(sc, inv, mixes)
        expected = randomised or weighted
        if expected:
            row_cells = np.rint(r).astype(np.int64)
            row_cells[(r > 0) & (row_cells == 0)] = 1
            cells = c.astype(float)
        else:
            row_cells = cells = np.rint(c).astype(np.int64)
        parts.append((str(k), expected, c, cells, row_cells, q))
    out = [None] * len(requests)
    for expected in (False, True):
        same = [p for p in parts if p[1] == expected]
        if not same:
            continue
        cells = {p[0]: p[3] for p in same}
        row_cells = {p[0]: p[4] for p in same}
        sq = {p[0]: p[5] for p in same} if same[0][5] is not None else None
        cube = CountCube(cells=cells, row_cells=row_cells, rows=rows, wsum=wsum,
                         attributes=attrs, weighted=expected, weight_sq_cells=sq)
        groups = add_metrics(count_table(cube), True)
        s = spec
        if not expected and all(REGISTRY[m].is_rate for m in SHOWN):
            # every metric shown has its Wilson interval: no replicate would be read
            s = dataclasses.replace(spec, n_bootstrap=0)
        unc = Uncertainty(row_cells, cells if expected else None, attrs, s,
                          weight_sq_cells=sq if expected else None,
                          streams={p[0]: 0 for p in same})
        groups = pd.concat([groups, unc.group_intervals(groups)], axis=1)
        method = unc.interval_methods.get("selection_rate", "none")
        for p in same:
            table = groups.loc[groups["model"] == p[0], cols].reset_index(drop=True)
            out[int(p[0])] = (table, method, p[2])
    return out


def _objective_value(cells: np.ndarray, objective: str) -> float:
    return float(metric_values(cells.sum(axis=0), True)[objective])


def _worst(cells: np.ndarray, inv: np.ndarray, n_groups: int, metrics, ref: int, mode: str,
           judged: list) -> tuple:
    """The smallest ratio (to the reference's, or lowest to highest) and the
    largest difference among the judged groups' constrained rates, from
    per-combination cells (k, 4)."""
    agg = np.stack([np.bincount(inv, weights=cells[:, j], minlength=n_groups)
                    for j in range(4)], axis=1)
    vals = metric_values(agg, True)
    worst_ratio, worst_diff = 1.0, 0.0
    for m in metrics:
        v = vals[m][judged]
        keep = ~np.isnan(v)
        idx = np.asarray(judged)[keep]
        v = v[keep]
        if len(v) < 2:
            continue
        if mode == "reference":
            if ref not in idx:
                continue
            rv = float(vals[m][ref])
            others = v[idx != ref]
            if rv > 0:
                ratio = others / rv
                ratio = np.where(ratio > 1, 1 / np.where(ratio > 0, ratio, 1), ratio)
            else:
                ratio = np.where(others == 0, 1.0, 0.0)
            worst_ratio = min(worst_ratio, float(ratio.min()))
            worst_diff = max(worst_diff, float(np.abs(others - rv).max()))
        else:
            lo, hi = float(v.min()), float(v.max())
            worst_ratio = min(worst_ratio, lo / hi if hi > 0 else 1.0)
            worst_diff = max(worst_diff, hi - lo)
    return worst_ratio, worst_diff


def attribute_groups(index, spec, attribute: str):
    """(combination -> group, group labels) of an audited attribute."""
    names = {INTERSECTION_SEP.join(a): a for a in spec.attribute_sets()}
    inv, labels = index.marginal(names[attribute])[:2]
    return inv, labels


def mitigate(score_counts: dict, index, spec, *, attribute: str, constraint: str,
             objective: str = "accuracy", model: str | None = None,
             thresholds: dict | None = None, randomised: bool | None = None,
             tolerance: float | None = None, tradeoff: bool = True) -> Mitigation:
    """A mitigation preview from an audit's score counts.

    Parameters
    ----------
    score_counts : dict model -> ScoreCounts
        As :attr:`fairness_core.audit.Auditor.score_counts`.
    index : GroupIndex
    spec : AuditSpec
        Its tolerance, reference groups, reference strategy, minimum group
        size and bootstrap settings are used.
    attribute : str
        An audited attribute (``"sex"``; an intersection as the audit names it).
    constraint : {"demographic_parity", "equal_opportunity", "equalized_odds"}
    objective : {"accuracy", "balanced_accuracy"}
        Over all rows (of every group).
    model : str, optional
        The score model (default: the first).
    thresholds : dict model -> float, optional
        Today's thresholds (default: the spec's, else 0.5).
    randomised : bool, optional
        Allow lotteries over thresholds (default: only for equalized odds).
    tolerance : float, optional
        The ratio band (default: the audit's).
    tradeoff : bool
        Also compute the trade-off curve over tolerances from 0.5 to 1.
    """
    check_choices(spec, attribute=attribute, constraint=constraint, objective=objective)
    if not score_counts:
        raise InputError("A mitigation preview needs a score column (per-group thresholds "
                         "are set on scores). Add one with --score.", field="scores")
    model = model or next(iter(score_counts))
    if model not in score_counts:
        raise InputError(f"{model!r} is not a score column of this audit. Choose one of "
                         f"{quote_list(list(score_counts))}.", field="mitigate_model",
                         value=model)
    sc = score_counts[model]
    inv, labels = attribute_groups(index, spec, attribute)
    G = len(labels)
    tol = float(spec.tolerance if tolerance is None else tolerance)
    if not 0 < tol <= 1:
        raise InputError(f"The tolerance must be a ratio above 0 and at most 1; got {tol!r}.",
                         field="tolerance", value=tol)
    metrics = CONSTRAINTS[constraint]
    if randomised is None:
        randomised = constraint == "equalized_odds"
    mode = "lowest" if (spec.reference_strategy == "best" and attribute not in spec.reference) \
        else "reference"
    if mode == "lowest" and len(metrics) > 1 and not randomised:
        randomised = True
    cum = sc.cumulative()
    g_cum = np.zeros((G, 2, cum[0].shape[2]))
    for j, g in enumerate(inv):
        g_cum[g] += cum[0][j]
    row_src = cum[1] if cum[1] is not None else cum[0]
    g_rows = np.bincount(inv, weights=row_src[:, :, -1].sum(axis=1), minlength=G)
    groups = _group_points(g_cum, g_rows, labels)
    thr = float((thresholds or {}).get(model, 0.5))
    notes = []
    today_bin = sc.first_positive_bin(thr)
    if today_bin is None:
        near = sc.nearest_edge(thr)
        notes.append(f"Today's threshold {thr:g} falls inside a fine score bin; the preview "
                     f"starts from the nearest bin edge, {near:.6g}.")
        thr, today_bin = near, sc.first_positive_bin(near)
    # the reference group and the judged groups, as the audit judges them
    if attribute in spec.reference:
        ref_label = named_group(spec.reference[attribute], labels)
        if ref_label is None:
            raise InputError(f"The reference group {spec.reference[attribute]!r} is not a "
                             f"group of {attribute!r}.", field="reference")
        ref = labels.index(ref_label)
    else:
        ref = int(np.argmax(g_rows))
        ref_label = labels[ref]
    mgs = spec.min_group_size
    judged = [i for i in range(G) if groups[i].n >= mgs]
    if mode == "reference" and ref not in judged:
        judged = []
    total_pos = float(g_cum[:, 1, -1].sum())
    total_neg = float(g_cum[:, 0, -1].sum())
    total = total_pos + total_neg
    if total_pos <= 0 or total_neg <= 0:
        raise InputError("A mitigation preview needs rows of both outcomes; every row here has "
                         "the same true outcome.", field="label")
    if objective == "accuracy":
        a = b = 1.0 / total
    else:
        a, b = 0.5 / total_pos, 0.5 / total_neg

    cache: dict = {}

    def solve(t):
        fixed = [i for i in range(G) if i not in judged]
        fixed_gain = sum(a * (groups[i].pos - g_cum[i, 1, today_bin])
                         - b * (groups[i].neg - g_cum[i, 0, today_bin]) for i in fixed)
        if len(judged) < 2:  # no gap is judged: nothing to change
            return {i: [(today_bin, 1.0)] for i in range(G)}, None
        if randomised:
            found = _search_randomised(groups, judged, fixed_gain, a, b, metrics, t, ref, mode,
                                       cache)
            if found is None:
                return None
            pick, gain = found
            mixes = {i: [(int(groups[i].bins[k]), p) for k, p in pick[i]] for i in judged}
        else:
            found = _search_deterministic(groups, judged, fixed_gain, a, b, metrics, t, ref,
                                          mode, cache)
            if found is None:
                return None
            pick, gain = found
            mixes = {i: [(int(groups[i].bins[pick[i]]), 1.0)] for i in judged}
        for i in fixed:
            mixes[i] = [(today_bin, 1.0)]
        return mixes, gain

    today = {i: [(today_bin, 1.0)] for i in range(G)}
    weighted = cum[2] is not None
    solved = solve(tol)
    feasible = solved is not None
    tables = _tables(sc, inv, labels, [(today, False)] + ([(solved[0], randomised)]
                                                           if feasible else []),
                     attribute, spec, weighted)
    before, method, c_before = tables[0]
    obj_before = _objective_value(c_before, objective)
    # per-group thresholds without the constraint: each group's own best
    free = {i: [(int(groups[i].bins[int(np.argmax(a * groups[i].tp - b * groups[i].fp))]), 1.0)]
            for i in judged}
    free.update({i: [(today_bin, 1.0)] for i in range(G) if i not in judged})
    obj_free = _objective_value(_cells_for(sc, inv, free)[0], objective)
    if feasible:
        mixes, _ = solved
        after, _, c_after = tables[1]
        obj_after = _objective_value(c_after, objective)
        sel = c_after[:, 1] + c_after[:, 3]
        n_all = c_after.sum(axis=1)
        degenerate = bool(np.all(sel <= 1e-12) or np.all(np.abs(sel - n_all) <= 1e-9))
    else:
        mixes, after, obj_after, degenerate, c_after = today, before.copy(), obj_before, \
            False, c_before
    rules = {}
    for i, lab in enumerate(labels):
        mix = sorted(mixes[i], key=lambda x: -x[0])
        rules[lab] = Rule([_threshold_of(sc, b_) for b_, _ in mix], [p for _, p in mix],
                          [b_ for b_, _ in mix])
    curve = pd.DataFrame(columns=["tolerance", "objective", "worst_ratio", "largest_gap"])
    if tradeoff and len(judged) >= 2:
        levels = np.unique(np.r_[np.linspace(min(TRADEOFF_FROM, tol), 1.0, N_TRADEOFF), tol])
        pts = []
        for t in levels:
            s = solve(float(t))
            if s is None:
                continue
            tab_c = _group_cells(g_cum, s[0])
            wr, wd = _worst(tab_c, np.arange(G), G, metrics, ref, mode, judged)
            pts.append({"tolerance": float(t), "objective": _objective_value(tab_c, objective),
                        "worst_ratio": wr, "largest_gap": wd})
        curve = pd.DataFrame(pts, columns=curve.columns)
    wr_b, wd_b = _worst(c_before, inv, G, metrics, ref, mode, judged)
    wr_a, wd_a = _worst(c_after, inv, G, metrics, ref, mode, judged)
    if len(curve):
        curve["point"] = ""
    curve = pd.concat([curve, pd.DataFrame([
        {"tolerance": np.nan, "objective": obj_before, "worst_ratio": wr_b, "largest_gap": wd_b,
         "point": "today"},
        {"tolerance": tol, "objective": obj_after, "worst_ratio": wr_a, "largest_gap": wd_a,
         "point": "chosen"}])], ignore_index=True) if feasible else curve
    if randomised:
        intervals = ("Intervals after the change are computed from the expected counts of the "
                     "randomised rule, treated as weighted counts (the audit's bootstrap on "
                     "counts); they show the uncertainty of sampling the rows, not the extra "
                     "spread of the lottery itself.")
    else:
        intervals = (f"Intervals are the audit's ({method}) on the counts before and after "
                     "the change.")
    if len(judged) < 2:
        notes.append(f"Fewer than two groups of {attribute!r} have at least {mgs} rows (and "
                     "the reference among them): the audit judges no gap, so there is nothing "
                     "to close.")
    m = Mitigation(constraint=constraint, attribute=attribute, objective=objective, model=model,
                   tolerance=tol, randomised=randomised, reference=ref_label if mode ==
                   "reference" else None, feasible=feasible, degenerate=degenerate,
                   rules=rules, today_threshold=thr, before=before, after=after,
                   objective_before=obj_before, objective_after=obj_after,
                   objective_unconstrained=obj_free, tradeoff=curve,
                   summary="", notes=notes, intervals=intervals)
    m.summary = _summary(m, metrics, wr_b, wr_a, len(judged))
    return m


def _summary(m: Mitigation, metrics, wr_before, wr_after, n_judged) -> str:
    names = " and ".join(REGISTRY[x].label.lower() for x in metrics)
    band = Tolerance(m.tolerance)
    obj = REGISTRY[m.objective].label.lower()
    if n_judged < 2:
        return (f"Nothing to close: the audit judges no gap in {m.attribute} (too few groups "
                "with enough rows).")
    if not m.feasible:
        return (f"No thresholds keep the {names} of every {m.attribute} group within "
                f"{band.band()} times the reference's.")
    where = (f"the reference group ({m.reference})" if m.reference is not None
             else "the highest group")
    kind = "randomised thresholds (lotteries between a few cut-offs)" if m.randomised \
        else "one threshold per group"
    lead = (f"With {kind}, the {names} of every {m.attribute} group can be brought within "
            f"{band.band()} times {where}'s (today the worst ratio is {wr_before:.2f}; after, "
            f"{wr_after:.2f}).")
    cost = m.cost
    if abs(cost) < 5e-5:
        price = f" The {obj} stays at {m.objective_after:.1%}."
    elif cost > 0:
        price = (f" The {obj} falls from {m.objective_before:.1%} to {m.objective_after:.1%} "
                 f"({cost * 100:.1f} percentage points).")
    else:
        price = (f" The {obj} rises from {m.objective_before:.1%} to {m.objective_after:.1%}: "
                 "today's single threshold is not the best one for this objective.")
    free = m.objective_unconstrained - m.objective_after
    if m.objective_unconstrained > m.objective_before + 5e-5:
        price += (f" Part of that is a better cut-off, not the constraint: per-group thresholds "
                  f"without any constraint would reach {m.objective_unconstrained:.1%}, so the "
                  + (f"constraint itself costs {free * 100:.1f} percentage points."
                     if free >= 5e-4 else "constraint itself costs nothing here."))
    tail = ""
    if wr_after < wr_before - 5e-3:
        tail += (f" These thresholds use the room the band leaves: the worst ratio after "
                 f"({wr_after:.2f}) is further from 1 than today's, though inside the band; a "
                 "stricter tolerance narrows it (see the trade-off).")
    if m.degenerate:
        tail += (" Only by selecting everyone or no one, which the audit does not count as a "
                "decision: in practice no thresholds meet the constraint.")
    return lead + price + tail


def mitigate_auditor(auditor, **kwargs) -> Mitigation:
    """A preview from an :class:`~fairness_core.audit.Auditor` (its score
    counts and group index: no row is read again); ``kwargs`` as
    :func:`mitigate` (today's thresholds default to the auditor's)."""
    kwargs.setdefault("thresholds", dict(auditor.prepared.thresholds))
    return mitigate(auditor.score_counts, auditor.index, kwargs.pop("spec", auditor.spec),
                    **kwargs)


def mitigate_prepared(prepared, **kwargs) -> Mitigation:
    """A preview from a prepared table: counts its score column once
    (:func:`fairness_core.scores.count_scores`), then as :func:`mitigate`."""
    from .counts import GroupIndex
    from .scores import count_scores

    if not prepared.scores:
        raise InputError("A mitigation preview needs a score column (per-group thresholds "
                         "are set on scores). Add one with --score.", field="scores")
    model = kwargs.get("model") or next(iter(prepared.scores))
    if model not in prepared.scores:
        raise InputError(f"{model!r} is not a score column of this audit. Choose one of "
                         f"{quote_list(list(prepared.scores))}.", field="mitigate_model",
                         value=model)
    index = GroupIndex.build(prepared)
    kwargs["model"] = model
    kwargs.setdefault("thresholds", dict(prepared.thresholds))
    return mitigate({model: count_scores(prepared, index, model)}, index, prepared.spec,
                    **kwargs)


def check_choices(spec, *, attribute: str | None, constraint: str, objective: str = "accuracy",
                  model: str | None = None) -> None:
    """Validate a preview's choices against a spec before any row is read
    (an :class:`InputError` naming what to fix)."""
    if constraint not in CONSTRAINTS:
        raise InputError(f"Unknown constraint {constraint!r}. Choose one of "
                         f"{quote_list(list(CONSTRAINTS))}.", field="mitigate", value=constraint)
    if objective not in OBJECTIVES:
        raise InputError(f"Unknown objective {objective!r}. Choose one of "
                         f"{quote_list(list(OBJECTIVES))}.", field="mitigate_objective",
                         value=objective)
    if not spec.scores:
        raise InputError("A mitigation preview needs a score column (per-group thresholds "
                         "are set on scores). Add one with --score.", field="scores")
    if not spec.labelled:
        raise InputError("A mitigation preview needs the true outcome (--label): accuracy, "
                         "true and false positive rates compare decisions with outcomes.",
                         field="label")
    if not attribute:
        raise InputError("Name the attribute whose groups get their own thresholds with "
                         f"--mitigate-attribute (one of {quote_list(spec.attribute_names())}).",
                         field="mitigate_attribute")
    if attribute not in spec.attribute_names():
        raise InputError(f"{attribute!r} is not an audited attribute. Choose one of "
                         f"{quote_list(spec.attribute_names())}.", field="mitigate_attribute",
                         value=attribute)
    if model is not None and model not in spec.scores:
        raise InputError(f"{model!r} is not a score column of this audit. Choose one of "
                         f"{quote_list(list(spec.scores))}.", field="mitigate_model",
                         value=model)


def mitigation_text(m: Mitigation) -> str:
    """The preview as a few lines for a terminal: the rules, a before/after
    table of the constrained rates and the objective, the summary and the
    caveat."""
    from .formatting import pct

    metrics = list(CONSTRAINTS[m.constraint])
    lines = [f"=== Mitigation preview: {CONSTRAINT_WORDS[m.constraint]}, {m.attribute}, "
             f"model {m.model!r}, objective {m.objective} ==="]
    before, after = m.before.set_index("group"), m.after.set_index("group")
    rows = []
    for g, rule in m.rules.items():
        row = {"group": g, "n": f"{int(before.loc[g, 'n']):,}", "rule": rule.describe()}
        for x in metrics:
            short = REGISTRY[x].short
            row[f"{short} before"] = pct(before.loc[g, x])
            row[f"{short} after"] = (f"{pct(after.loc[g, x])} [{pct(after.loc[g, x + '_ci_low'])}"
                                     f", {pct(after.loc[g, x + '_ci_high'])}]")
        rows.append(row)
    lines.append(pd.DataFrame(rows).to_string(index=False))
    lines.append(f"{REGISTRY[m.objective].label}: {m.objective_before:.2%} today, "
                 f"{m.objective_after:.2%} after ({-m.cost * 100:+.2f} percentage points); "
                 f"{m.objective_unconstrained:.2%} with per-group thresholds and no "
                 "constraint.")
    lines.append(m.summary)
    lines.extend(m.notes)
    lines.append(f"Caveat: {m.caveat}")
    return "\n".join(lines)


def before_after_table(d: dict) -> pd.DataFrame:
    """The before/after table of a preview's JSON (:meth:`Mitigation.to_dict`),
    as text cells: per group its rows, its rule, and each constrained rate
    and accuracy before and after with their intervals."""
    from .formatting import pct

    metrics = list(CONSTRAINTS[d["constraint"]]) + ["accuracy"]
    before = {r["group"]: r for r in d["before"]}
    after = {r["group"]: r for r in d["after"]}

    def cell(r, x):
        v, lo, hi = r.get(x), r.get(f"{x}_ci_low"), r.get(f"{x}_ci_high")
        if v is None:
            return "-"
        return pct(v) + (f" [{pct(lo)}, {pct(hi)}]" if lo is not None and hi is not None
                         else "")
    rows = []
    for g in before:
        row = {"Group": g, "Rows": f"{int(before[g]['n']):,}", "Rule": d["rules"][g]}
        for x in metrics:
            row[f"{REGISTRY[x].short} today"] = cell(before[g], x)
            row[f"{REGISTRY[x].short} after"] = cell(after[g], x)
        rows.append(row)
    return pd.DataFrame(rows)
