"""The bootstrap on counts and the replicate store of an audit.

Resampling the N rows with replacement gives each (group combination x
cell) a multinomial count with the observed shares as probabilities.
Drawing those counts directly is the same bootstrap at a cost that does not
depend on N.  With sample weights each resampled cell keeps its mean weight
per row.  Percentile intervals of the replicates serve every number without
a closed-form interval.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..counts import CELLS, OVERALL
from ..disparity import SUMMARY_COLUMNS, between_summaries
from ..limits import limits
from ..metrics import REGISTRY, metric_values
from .intervals import wilson_interval
from .tests import Proportions, disparity_tests

_MIN_DEFINED = 0.5  # share of replicates that must be defined for an interval


def quantiles(x: np.ndarray, qs, min_defined: float = _MIN_DEFINED) -> list[np.ndarray]:
    """Quantiles along axis 0 ignoring NaN (linear interpolation, as
    ``numpy.nanquantile``), vectorised over the other axes.  Columns with
    fewer than ``min_defined`` of their values defined give NaN."""
    x = np.asarray(x, dtype=float)
    n = x.shape[0]
    rest = x.shape[1:]
    a = np.ascontiguousarray(x.reshape(n, -1).T)  # one row per column
    a.sort(axis=1)  # NaN sorts last
    n_def = (~np.isnan(a)).sum(axis=1)
    rows = np.arange(a.shape[0])
    out = []
    for q in qs:
        pos = q * np.maximum(n_def - 1, 0)
        lo = np.floor(pos).astype(np.intp)
        hi = np.minimum(lo + 1, np.maximum(n_def - 1, 0))
        frac = pos - lo
        a_lo, a_hi = a[rows, lo], a[rows, hi]
        with np.errstate(invalid="ignore"):
            v = np.where(a_lo == a_hi, a_lo, a_lo + (a_hi - a_lo) * frac)
        v = np.where(n_def >= max(1, min_defined * n), v, np.nan)
        out.append(v.reshape(rest))
    return out


def bootstrap_cells(row_cells: np.ndarray, n_boot: int, rng: np.random.Generator,
                    weighted_cells: np.ndarray | None = None,
                    weight_sq_cells: np.ndarray | None = None) -> np.ndarray:
    """Bootstrap replicates of a (combinations, 4) count table.

    Resampling the rows with replacement = one multinomial draw of all the
    cell counts with the observed shares.  Returns ``(n_boot, k, 4)``.

    With sample weights, a cell resampled ``m`` times holds the sum of ``m``
    weights drawn from that cell's weights: its mean is ``m`` times the mean
    weight and, given ``weight_sq_cells`` (the sum of squared weights per
    cell), its spread is that of the cell's weights (a normal approximation
    of the sum, so the bootstrap keeps the extra variance that unequal
    weights bring).
    """
    shape = row_cells.shape
    flat = row_cells.reshape(-1).astype(np.int64)
    n = int(flat.sum())
    draws = rng.multinomial(n, flat / n, size=n_boot).astype(float) if n else \
        np.zeros((n_boot, flat.size))
    draws = draws.reshape((n_boot,) + shape)
    if weighted_cells is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_w = np.where(row_cells > 0, weighted_cells / row_cells, 0.0)
            var_w = np.zeros(shape) if weight_sq_cells is None else np.maximum(
                np.where(row_cells > 0, weight_sq_cells / row_cells, 0.0) - mean_w ** 2, 0.0)
        noise = np.sqrt(draws * var_w) * rng.standard_normal(draws.shape) if \
            weight_sq_cells is not None else 0.0
        draws = np.maximum(draws * mean_w + noise, 0.0)
    return draws


def aggregate(cells: np.ndarray, inv: np.ndarray, n_groups: int) -> np.ndarray:
    """Sum ``(..., k, 4)`` combination counts into ``(..., g, 4)`` groups
    (``inv[i]`` is the group of combination ``i``); groups without a
    combination get zeros.  Costs one pass over the cells, whatever the
    number of groups."""
    inv = np.asarray(inv, dtype=np.intp)
    out = np.zeros(cells.shape[:-2] + (n_groups, cells.shape[-1]))
    if not len(inv):
        return out
    order = np.argsort(inv, kind="stable")
    ordered = inv[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    out[..., ordered[starts], :] = np.add.reduceat(cells[..., order, :], starts, axis=-2)
    return out


#: Bytes of temporary arrays per (replicate x group) while replicates turn
#: into metrics (cells, numerators, denominators, values, a few more).
_WORK_PER_GROUP = 8 * (4 + 3 * len(REGISTRY) + 4)
#: Temporary arrays are made a slice of replicates at a time, about this size.
_CHUNK_BYTES = 64 << 20


def replicate_metrics(draws: np.ndarray, inv: np.ndarray, n_groups: int,
                      labelled: bool = True) -> np.ndarray:
    """Every registry metric of every replicate and group, ``(n_boot,
    metrics, groups)``, from ``(n_boot, k, 4)`` replicate counts per
    combination; computed a slice of replicates at a time so that the
    temporary arrays stay small whatever the number of groups."""
    n_boot = draws.shape[0]
    out = np.empty((n_boot, len(REGISTRY), n_groups))
    step = max(1, _CHUNK_BYTES // (_WORK_PER_GROUP * max(n_groups, draws.shape[1], 1)))
    for b in range(0, n_boot, step):
        vals = metric_values(aggregate(draws[b:b + step], inv, n_groups), labelled)
        for j, m in enumerate(REGISTRY):
            out[b:b + step, j] = vals[m]
    return out


def _slices(n: int, floats_per_item: int) -> list[slice]:
    """Slices that cover ``range(n)``, each of about :data:`_CHUNK_BYTES`
    when an item takes ``floats_per_item`` floats of temporary arrays."""
    step = max(1, _CHUNK_BYTES // max(8 * floats_per_item, 1))
    return [slice(i, min(i + step, n)) for i in range(0, n, step)]


def bootstrap_bytes(n_boot: int, n_combos: int, group_counts, n_models: int,
                    weighted: bool = False) -> int:
    """Memory the bootstrap of ``n_models`` models needs at its peak, in
    bytes: the replicates it keeps (``n_boot`` x metrics x every
    attribute's groups, per model), one model's replicate counts per
    combination and cell with their temporary copies, and the slices of
    temporary arrays."""
    group_counts = [int(g) for g in group_counts] or [1]
    kept = n_boot * len(REGISTRY) * sum(group_counts) * n_models * 8
    copies = 4 if weighted else 2  # integer draws and their float copy; weights' noise
    draws = n_boot * max(int(n_combos), 1) * 4 * 8 * copies
    widest = max(max(group_counts), int(n_combos), 1)
    return kept + draws + min(2 * _CHUNK_BYTES, n_boot * widest * _WORK_PER_GROUP)


class Uncertainty:
    """Bootstrap replicates of every group's metrics, per model x attribute.

    Parameters
    ----------
    row_cells : dict model -> (k, 4) int array of row counts per combination
    weighted_cells : dict model -> (k, 4) weighted counts, or None
    weight_sq_cells : dict model -> (k, 4) sums of squared weights, or None
    streams : dict model -> int, optional
        The random stream of each model (default: its position); the same
        model keeps the same stream when audited alone or with others.
    cache : dict, optional
        Keeps each model's replicates between calls (keyed by its counts and
        the bootstrap settings), so that re-auditing after a change that
        leaves a model's counts alone does not redraw them.
    attributes : list of (name, combo_to_group, group_labels)
    spec : AuditSpec (n_bootstrap, seed, confidence, alpha, correction, power)
    """

    def __init__(self, row_cells: dict, weighted_cells: dict | None, attributes: list, spec,
                 weight_sq_cells: dict | None = None, cache: dict | None = None,
                 streams: dict | None = None):
        self.spec = spec
        self.weighted = weighted_cells is not None
        self.labels = {name: list(labels) for name, _inv, labels in attributes}
        self.values: dict = {}
        B = spec.n_bootstrap
        if B <= 0:
            return
        names = [a[0] for a in attributes]
        need = bootstrap_bytes(B, max((len(rc) for rc in row_cells.values()), default=0),
                               [len(a[2]) for a in attributes], len(row_cells), self.weighted)
        n_groups = sum(len(a[2]) for a in attributes if a[0] != OVERALL)
        models = f"{len(row_cells)} model{'s' if len(row_cells) > 1 else ''}"
        limits().check_memory(
            f"The bootstrap ({B:,} replicates of {n_groups:,} groups, {models})", need,
            field="n_bootstrap",
            fix="Use fewer bootstrap replicates (0 turns them off), or fewer groups (fewer "
                "sensitive attributes or intersections, or coarser ranges).")
        for i, (model, rc) in enumerate(row_cells.items()):
            i = streams.get(model, i) if streams else i
            wc = weighted_cells[model] if self.weighted else None
            sq = weight_sq_cells[model] if self.weighted and weight_sq_cells else None
            key = (model, i, B, spec.seed, getattr(spec, "labelled", True), tuple(names),
                   rc.tobytes(), None if wc is None else wc.tobytes(), None if sq is None else sq.tobytes())
            if cache is not None and key in cache:
                values = cache[key]
            else:
                # one stream per model: a model's intervals do not depend on the
                # other models (and survive a change of another model's threshold)
                rng = np.random.default_rng([spec.seed, i])
                draws = bootstrap_cells(rc, B, rng, wc, sq)
                values = {name: replicate_metrics(draws, inv, len(labels),
                                                  getattr(spec, "labelled", True))
                          for name, inv, labels in attributes}
                del draws
                if cache is not None:
                    if len(cache) > 16:
                        cache.clear()
                    cache[key] = values
            for name in names:
                self.values[(model, name)] = values[name]

    # -- group metrics ------------------------------------------------------
    def group_intervals(self, groups: pd.DataFrame) -> pd.DataFrame:
        """``<metric>_ci_low`` / ``_ci_high`` for every row of the group table."""
        conf = self.spec.confidence
        a = (1 - conf) / 2
        n_rows = len(groups)
        out = {}
        lo_all = np.full((n_rows, len(REGISTRY)), np.nan)
        hi_all = np.full((n_rows, len(REGISTRY)), np.nan)
        # only the metrics without a Wilson interval need bootstrap quantiles
        boot = np.array([not (m.is_rate and not self.weighted) for m in REGISTRY.values()])
        bj = np.flatnonzero(boot)
        if self.values and len(bj):
            for (model, attr), g in groups.groupby(["model", "attribute"], sort=False):
                vals = self.values.get((model, attr))
                if vals is None:
                    continue
                pos = {lab: i for i, lab in enumerate(self.labels[attr])}
                gi = np.array([pos[x] for x in g["group"]])
                rows = groups.index.get_indexer(g.index)
                for part in _slices(len(gi), vals.shape[0] * len(bj) * 3):
                    lo, hi = quantiles(vals[:, bj[:, None], gi[part]], (a, 1 - a))
                    lo_all[np.ix_(rows[part], bj)] = lo.T
                    hi_all[np.ix_(rows[part], bj)] = hi.T
        cells = groups[list(CELLS)].to_numpy(dtype=float)
        methods = {}
        for j, (name, m) in enumerate(REGISTRY.items()):
            if m.is_rate and not self.weighted:
                lo, hi = wilson_interval(cells @ m.num_vector, cells @ m.den_vector, conf)
                defined = groups[name].notna().to_numpy()
                lo, hi = np.where(defined, lo, np.nan), np.where(defined, hi, np.nan)
                methods[name] = "wilson"
            else:
                lo, hi = lo_all[:, j], hi_all[:, j]
                defined = groups[name].notna().to_numpy()
                lo, hi = np.where(defined, lo, np.nan), np.where(defined, hi, np.nan)
                methods[name] = "bootstrap percentile" if self.values else "none"
            out[f"{name}_ci_low"] = lo
            out[f"{name}_ci_high"] = hi
        self.interval_methods = methods
        return pd.DataFrame(out, index=groups.index)

    # -- disparities ------------------------------------------------------------
    def disparity_stats(self, disp: pd.DataFrame, groups: pd.DataFrame) -> pd.DataFrame:
        """Intervals of difference and ratio, the unadjusted p-value and the
        name of its test, per disparity row.

        ``groups`` is the per-group table the disparities come from.
        :func:`~fairness_core.stats.tests.finish_tests` then corrects the
        p-values of every model of the audit together and adds significance
        and the rows needed."""
        d_lo, d_hi, r_lo, r_hi, boot_se = self._disparity_replicates(disp)
        defined = disp["value"].notna().to_numpy() & disp["reference_value"].notna().to_numpy()
        for arr in (d_lo, d_hi, r_lo, r_hi):
            arr[~defined] = np.nan
        counts = Proportions.of(disp, groups, self.weighted)
        p, test = disparity_tests(disp, counts, boot_se, self.spec.min_group_size)
        return pd.DataFrame({
            "difference_ci_low": d_lo, "difference_ci_high": d_hi,
            "ratio_ci_low": r_lo, "ratio_ci_high": r_hi, "p_value": p, "test": test},
            index=disp.index)

    def _disparity_replicates(self, disp: pd.DataFrame):
        """Percentile intervals of each disparity row's difference and ratio
        and the bootstrap standard error of its difference (NaN without
        replicates)."""
        n = len(disp)
        a = (1 - self.spec.confidence) / 2
        metric_pos = {m: i for i, m in enumerate(REGISTRY)}
        d_lo, d_hi, r_lo, r_hi, boot_se = (np.full(n, np.nan) for _ in range(5))
        if not (self.values and n):
            return d_lo, d_hi, r_lo, r_hi, boot_se
        for (model, attr), d in disp.groupby(["model", "attribute"], sort=False):
            vals = self.values[(model, attr)]
            pos = {lab: i for i, lab in enumerate(self.labels[attr])}
            mi = d["metric"].map(metric_pos).to_numpy()
            gi = np.array([pos[x] for x in d["group"]])
            ri = np.array([pos[x] for x in d["reference"]])
            rows = disp.index.get_indexer(d.index)
            # a slice of rows at a time: (replicates x rows) arrays stay small
            for part in _slices(len(d), vals.shape[0] * 8):
                v, r = vals[:, mi[part], gi[part]], vals[:, mi[part], ri[part]]
                diff = v - r
                with np.errstate(invalid="ignore", divide="ignore"):
                    ratio = np.where(r > 0, v / r,
                                     np.where((r == 0) & (v > 0), np.inf, np.nan))
                del v, r
                at = rows[part]
                d_lo[at], d_hi[at] = quantiles(diff, (a, 1 - a))
                r_lo[at], r_hi[at] = quantiles(ratio, (a, 1 - a))
                del ratio
                ok = ~np.isnan(diff)
                cnt = ok.sum(axis=0)
                with np.errstate(invalid="ignore", divide="ignore"):
                    mean = np.where(ok, diff, 0).sum(axis=0) / cnt
                    var = (np.where(ok, diff - mean, 0) ** 2).sum(axis=0) / (cnt - 1)
                boot_se[at] = np.where(cnt >= _MIN_DEFINED * diff.shape[0], np.sqrt(var),
                                       np.nan)
        return d_lo, d_hi, r_lo, r_hi, boot_se

    # -- between-group summaries ----------------------------------------------------
    def summary_intervals(self, summ: pd.DataFrame) -> pd.DataFrame:
        """Bootstrap intervals of fairlearn's between-group summaries: the
        summaries of :func:`~fairness_core.disparity.between_summaries` on
        every replicate, ``<summary>_ci_low`` / ``_ci_high`` where the
        estimate in ``summ`` is defined."""
        a = (1 - self.spec.confidence) / 2
        out = {f"{c}_{s}": np.full(len(summ), np.nan) for c in SUMMARY_COLUMNS
               for s in ("ci_low", "ci_high")}
        if not self.values:
            return pd.DataFrame(out, index=summ.index)
        defined = summ[list(SUMMARY_COLUMNS)].notna().to_numpy()
        for i, (model, attr) in enumerate(zip(summ["model"], summ["attribute"])):
            vals = self.values.get((model, attr))
            if vals is None:
                continue
            reps = between_summaries({m: vals[:, j, :] for j, m in enumerate(REGISTRY)})
            lo, hi = quantiles(np.stack([reps[c] for c in SUMMARY_COLUMNS], axis=1),
                               (a, 1 - a))
            for j, c in enumerate(SUMMARY_COLUMNS):
                out[f"{c}_ci_low"][i] = lo[j] if defined[i, j] else np.nan
                out[f"{c}_ci_high"][i] = hi[j] if defined[i, j] else np.nan
        return pd.DataFrame(out, index=summ.index)

    def describe(self) -> dict:
        """What was done, for provenance and the methodology text."""
        s = self.spec
        return {
            "confidence": s.confidence, "n_bootstrap": s.n_bootstrap, "seed": s.seed,
            "bootstrap": "multinomial resampling of the count table (equivalent to "
                         "resampling rows with replacement)" + (
                             "; each cell keeps its mean sample weight" if self.weighted
                             else ""),
            "group_intervals": getattr(self, "interval_methods", {}),
            "disparity_intervals": "bootstrap percentile",
            "tests": "two-proportion z-test; Fisher's exact test when an expected cell "
                     "count is below 5; Wald test with bootstrap standard error for "
                     "balanced accuracy, F1 and weighted data (groups of at least the "
                     "minimum size)",
            "correction": {"bh": "Benjamini-Hochberg", "holm": "Holm"}[s.correction],
            "alpha": s.alpha, "power": s.power,
        }
