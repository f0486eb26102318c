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
from ..disparity import SUMMARY_COLUMNS, SUMMARY_METRICS, between_summaries
from ..limits import limits
from ..metrics import _DEN, _NAMES, _NUM, REGISTRY, needs_outcome
from ..threads import thread_map, workers
from .intervals import wilson_interval
from .tests import Proportions, disparity_tests

_MIN_DEFINED = 0.5  # share of replicates that must be defined for an interval


def row_quantiles(a: np.ndarray, qs, min_defined: float = _MIN_DEFINED) -> list[np.ndarray]:
    """Quantiles of each row of a 2-d array ignoring NaN (linear
    interpolation, as ``numpy.nanquantile`` along axis 1).  Rows with fewer
    than ``min_defined`` of their values defined give NaN.

    Reorders each row of ``a`` in place (pass a copy to keep it).  A row
    with every value defined needs only the two values around each
    quantile: a partition finds them, quicker than a sort; the other rows
    are sorted (NaN last).  With the replicates of each number in a row of
    a C-contiguous array, no transposed copy is made."""
    n_rows, n = a.shape
    gaps = np.isnan(a).any(axis=1) if n else np.ones(n_rows, dtype=bool)
    if not gaps.any():
        return _full_row_quantiles(a, qs)
    out = [np.full(n_rows, np.nan) for _ in qs]
    some = np.flatnonzero(gaps)
    part = a[some]
    _sort_rows(part)  # NaN sorts last
    n_def = _defined_after_sort(part)
    rows = np.arange(len(some))
    for o, q in zip(out, qs):
        pos = q * np.maximum(n_def - 1, 0)
        lo = np.floor(pos).astype(np.intp)
        hi = np.minimum(lo + 1, np.maximum(n_def - 1, 0))
        v = _between(part[rows, lo], part[rows, hi], pos - lo)
        o[some] = np.where(n_def >= max(1, min_defined * n), v, np.nan)
    full = np.flatnonzero(~gaps)
    if len(full):
        for o, v in zip(out, _full_row_quantiles(a[full], qs)):
            o[full] = v
    return out


def _between(a_lo: np.ndarray, a_hi: np.ndarray, frac) -> np.ndarray:
    """The linear interpolation of the quantiles of :func:`row_quantiles`."""
    with np.errstate(invalid="ignore"):
        return np.where(a_lo == a_hi, a_lo, a_lo + (a_hi - a_lo) * frac)


def _full_row_quantiles(a: np.ndarray, qs) -> list[np.ndarray]:
    """:func:`row_quantiles` of rows without NaN: for each quantile, one
    partition of every row puts one of its two values in place, and the
    largest value before it (or the smallest after it) is the other.  Large
    arrays are split into blocks of rows on the machine's cores."""
    parts = thread_map(lambda block: _select_quantiles(block, qs), _row_blocks(a))
    if len(parts) == 1:
        return parts[0]
    return [np.concatenate([p[j] for p in parts]) for j in range(len(qs))]


def _select_quantiles(a: np.ndarray, qs) -> list[np.ndarray]:
    n = a.shape[1]
    out = []
    for q in qs:
        if not n:
            out.append(np.full(a.shape[0], np.nan))
            continue
        pos = q * (n - 1)
        lo = int(np.floor(pos))
        hi = min(lo + 1, n - 1)
        if hi <= n // 2:  # near the low end: the value at hi and the largest below it
            a.partition(hi, axis=1)
            a_hi = a[:, hi].copy()
            a_lo = a[:, :hi].max(axis=1) if lo < hi else a_hi
        else:  # near the high end: the value at lo and the smallest above it
            a.partition(lo, axis=1)
            a_lo = a[:, lo].copy()
            a_hi = a[:, lo + 1:].min(axis=1) if hi > lo else a_lo
        out.append(_between(a_lo, a_hi, pos - lo))
    return out


#: Elements from which :func:`_row_blocks` splits the rows between threads.
_SPLIT_SORT = 1 << 18


def _row_blocks(a: np.ndarray) -> list[np.ndarray]:
    """``a`` as blocks of rows (views), one per core when it is large enough
    to be worth splitting (numpy's sort and partition release Python's
    lock), else ``[a]``."""
    n_threads = min(workers(), a.shape[0])
    if n_threads < 2 or a.size < _SPLIT_SORT:
        return [a]
    bounds = np.linspace(0, a.shape[0], n_threads + 1).astype(np.intp)
    return [a[bounds[i]:bounds[i + 1]] for i in range(n_threads)]


def _sort_rows(a: np.ndarray) -> None:
    """Sort each row of ``a`` in place, blocks of rows on the machine's
    cores side by side."""
    thread_map(lambda block: block.sort(axis=1), _row_blocks(a))


def _defined_after_sort(a: np.ndarray) -> np.ndarray:
    """The number of values that are not NaN in each row of a row-sorted
    array (NaN sorts last): counted only in the rows that end in NaN."""
    n_def = np.full(a.shape[0], a.shape[1], dtype=np.intp)
    if a.shape[1]:
        some = np.flatnonzero(np.isnan(a[:, -1]))
        if len(some):
            n_def[some] = (~np.isnan(a[some])).sum(axis=1)
    return n_def


def quantiles(x: np.ndarray, qs, min_defined: float = _MIN_DEFINED) -> list[np.ndarray]:
    """Quantiles along axis 0 ignoring NaN (linear interpolation, as
    ``numpy.nanquantile``), vectorised over the other axes.  Columns with
    fewer than ``min_defined`` of their values defined give NaN."""
    x = np.asarray(x, dtype=float)
    n = x.shape[0]
    rest = x.shape[1:]
    a = np.array(x.reshape(n, -1).T, order="C")  # one row per column, a copy
    return [v.reshape(rest) for v in row_quantiles(a, qs, min_defined)]


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
#: Temporary arrays are made a slice of replicates (or of rows) at a time, about
#: this size.
_CHUNK_BYTES = 64 << 20
#: The same for the replicates of the disparities, whose rows are reordered
#: to find their percentiles: slices that stay in the CPU's cache go quicker.
_REPLICATE_SLICE_BYTES = 8 << 20


def _replicate_rows(attributes) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """How the combinations of a count table add up into every attribute's
    groups at once: the combinations repeated once per attribute, sorted by
    their group (stably: each group adds its combinations in table order,
    as :func:`aggregate` does), where each group's run starts, the groups
    that have a run, and the number of groups of all attributes."""
    gid, combo, start = [], [], 0
    for _name, inv, labels in attributes:
        inv = np.asarray(inv, dtype=np.intp)
        gid.append(inv + start)
        combo.append(np.arange(len(inv)))
        start += len(labels)
    gid = np.concatenate(gid) if gid else np.zeros(0, dtype=np.intp)
    combo = np.concatenate(combo) if combo else np.zeros(0, dtype=np.intp)
    order = np.argsort(gid, kind="stable")
    gid, combo = gid[order], combo[order]
    starts = np.flatnonzero(np.r_[True, gid[1:] != gid[:-1]]) if len(gid) else gid
    return combo, starts, gid[starts], start


def _group_sums(rows: np.ndarray, starts: np.ndarray, present: np.ndarray,
                out: np.ndarray) -> None:
    """``out[present[i]]`` = the sum of ``rows[starts[i]:starts[i + 1]]``
    (rows in order, one after the other, as ``numpy.add.reduceat``):
    a reduction per group is quicker than ``reduceat`` over a few hundred
    groups, ``reduceat`` over many."""
    if len(starts) > 256:
        out[present] = np.add.reduceat(rows, starts, axis=0)
        return
    ends = np.r_[starts[1:], len(rows)]
    for g, s, e in zip(present.tolist(), starts.tolist(), ends.tolist()):
        if e - s == 1:
            out[g] = rows[s]
        else:
            np.add.reduce(rows[s:e], axis=0, out=out[g])


_SUM_KEYS = tuple(dict.fromkeys(tuple(c) for c in np.hstack([_NUM, _DEN]).T))


def _cell_sum(cells: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """``sum(coef[c] * cells[c])`` over the four cells (on axis 0), in
    :data:`CELLS` order, leaving out the cells of coefficient 0 (one cell
    of coefficient 1: that cell itself, not a copy)."""
    nonzero = np.flatnonzero(coef)
    if len(nonzero) == 1 and coef[nonzero[0]] == 1:
        return cells[nonzero[0]]
    acc = None
    for c, w in enumerate(coef):
        if w:
            term = cells[c] if w == 1 else w * cells[c]
            acc = term.copy() if acc is None else acc.__iadd__(term)
    return np.zeros(cells.shape[1:]) if acc is None else acc


def replicate_store(draws: np.ndarray, attributes, labelled: bool = True,
                    whole: bool = False) -> np.ndarray:
    """Every registry metric of every group of every attribute in every
    replicate, ``(metrics, groups, n_boot)``: the groups of the attributes
    one after the other, in the order of ``attributes`` (list of ``(name,
    combo_to_group, group_labels)``), and each number's replicates in one
    contiguous row, ready to be sorted.  The values are those of
    :func:`~fairness_core.metrics.metric_values` of each attribute's
    :func:`aggregate` (``whole``: the draws are whole numbers, counts of
    rows, whose sums do not depend on their order).
    Computed a slice of replicates at a time so that the temporary arrays
    stay small."""
    n_boot = draws.shape[0]
    combo, starts, present, n_groups = _replicate_rows(attributes)
    out = np.full((len(REGISTRY), n_groups, n_boot), np.nan)
    names = list(REGISTRY)
    at = {m: j for j, m in enumerate(names)}
    per_boot = 8 * 4 * (draws.shape[1] + len(combo)) + _WORK_PER_GROUP * max(n_groups, 1)
    step = max(1, _CHUNK_BYTES // per_boot)
    for b in range(0, n_boot, step):
        sums_by_group = np.zeros((n_groups, 4, draws[b:b + step].shape[0]))
        if len(combo) and whole:  # counts of rows: exact sums, in any order
            part = np.ascontiguousarray(draws[b:b + step].transpose(1, 2, 0))  # (k, 4, boot)
            _group_sums(part[combo], starts, present, sums_by_group)
            del part
        elif len(combo):  # sums of weights: in the order of :func:`aggregate`
            sums_by_group[present] = np.add.reduceat(
                draws[b:b + step][:, combo, :], starts, axis=1).transpose(1, 2, 0)
        cells = sums_by_group.transpose(1, 0, 2)  # (4, groups, boot)
        # each numerator and denominator once, though several metrics share it
        sums = {key: _cell_sum(cells, np.array(key)) for key in _SUM_KEYS}
        for j, name in enumerate(_NAMES):
            if not labelled and needs_outcome(name):
                continue
            den = sums[tuple(_DEN[:, j])]
            np.divide(sums[tuple(_NUM[:, j])], den, out=out[at[name], :, b:b + step],
                      where=den > 0)
        del cells, sums_by_group, sums
        if labelled:
            tpr = out[at["tpr"], :, b:b + step]
            tnr = out[at["tnr"], :, b:b + step]
            out[at["balanced_accuracy"], :, b:b + step] = np.where(
                np.isnan(tpr), tnr, np.where(np.isnan(tnr), tpr, (tpr + tnr) / 2))
    return out


def _slices(n: int, floats_per_item: int, size: int = _CHUNK_BYTES) -> list[slice]:
    """Slices that cover ``range(n)``, each of about ``size`` bytes when an
    item takes ``floats_per_item`` floats of temporary arrays."""
    step = max(1, size // max(8 * floats_per_item, 1))
    return [slice(i, min(i + step, n)) for i in range(0, n, step)]


def bootstrap_bytes(n_boot: int, n_combos: int, group_counts, n_models: int,
                    weighted: bool = False, at_once: int = 1) -> int:
    """Memory the bootstrap of ``n_models`` models needs at its peak, in
    bytes: the replicates it keeps (``n_boot`` x metrics x every
    attribute's groups, per model), and, for each of the ``at_once``
    models drawn at the same time, its replicate counts per combination and
    cell with their temporary copies and the slices of temporary arrays."""
    group_counts = [int(g) for g in group_counts] or [1]
    kept = n_boot * len(REGISTRY) * sum(group_counts) * n_models * 8
    copies = 4 if weighted else 2  # integer draws and their float copy; weights' noise
    draws = n_boot * max(int(n_combos), 1) * 4 * 8 * copies
    widest = max(max(group_counts), int(n_combos), 1)
    return kept + max(1, at_once) * (
        draws + min(2 * _CHUNK_BYTES, n_boot * widest * _WORK_PER_GROUP))


def _standard_error(diff: np.ndarray) -> np.ndarray:
    """The standard deviation (``ddof=1``) of each row of ``diff`` (the
    replicates of one difference) ignoring NaN; NaN with fewer than half
    of them defined."""
    ok = ~np.isnan(diff)
    cnt = ok.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(ok, diff, 0).sum(axis=1) / cnt
        var = (np.where(ok, diff - mean[:, None], 0) ** 2).sum(axis=1) / (cnt - 1)
    return np.where(cnt >= _MIN_DEFINED * diff.shape[1], np.sqrt(var), np.nan)


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
        #: (model, attribute) -> its replicates, ``(n_boot, metrics, groups)``
        #: (a view of :attr:`store`)
        self.values: dict = {}
        #: model -> every metric of every attribute's groups in every
        #: replicate, ``(metrics, groups, n_boot)`` (see :func:`replicate_store`)
        self.store: dict = {}
        #: attribute -> the position of its first group in a store
        self.offsets: dict = {}
        start = 0
        for name, _inv, labels in attributes:
            self.offsets[name] = start
            start += len(labels)
        self._where = {(name, lab): self.offsets[name] + i
                       for name, labels in self.labels.items() for i, lab in enumerate(labels)}
        B = spec.n_bootstrap
        if B <= 0:
            return
        names = [a[0] for a in attributes]
        labelled = getattr(spec, "labelled", True)
        todo, stores = [], {}  # the models whose replicates are not in the cache
        for i, (model, rc) in enumerate(row_cells.items()):
            i = streams.get(model, i) if streams else i
            wc = weighted_cells[model] if self.weighted else None
            sq = weight_sq_cells[model] if self.weighted and weight_sq_cells else None
            key = ("store", model, i, B, spec.seed, labelled, tuple(names),
                   tuple(len(a[2]) for a in attributes), rc.tobytes(),
                   None if wc is None else wc.tobytes(), None if sq is None else sq.tobytes())
            if cache is not None and key in cache:
                stores[model] = cache[key]
            else:
                todo.append((model, i, rc, wc, sq, key))
        at_once = min(workers(), len(todo))
        need = bootstrap_bytes(B, max((len(rc) for rc in row_cells.values()), default=0),
                               [len(a[2]) for a in attributes], len(row_cells), self.weighted,
                               at_once)
        n_groups = sum(len(a[2]) for a in attributes if a[0] != OVERALL)
        models = f"{len(row_cells)} model{'s' if len(row_cells) > 1 else ''}"
        limits().check_memory(
            f"The bootstrap ({B:,} replicates of {n_groups:,} groups, {models})", need,
            field="n_bootstrap",
            fix="Use fewer bootstrap replicates (0 turns them off), or fewer groups (fewer "
                "sensitive attributes or intersections, or coarser ranges).")

        def draw(job):
            _model, i, rc, wc, sq, _key = job
            # one stream per model: a model's intervals do not depend on the
            # other models (and survive a change of another model's threshold)
            draws = bootstrap_cells(rc, B, np.random.default_rng([spec.seed, i]), wc, sq)
            return replicate_store(draws, attributes, labelled, whole=wc is None)

        # the models side by side (the draws release Python's lock)
        for job, store in zip(todo, thread_map(draw, todo)):
            stores[job[0]] = store
            if cache is not None:
                if len(cache) > 16:
                    cache.clear()
                cache[job[5]] = store
        for model in row_cells:
            self.store[model] = store = stores[model]
            for name in names:
                off, g = self.offsets[name], len(self.labels[name])
                self.values[(model, name)] = store[:, off:off + g, :].transpose(2, 0, 1)

    def _columns(self, attrs, groups) -> np.ndarray:
        """The position in a store of each (attribute, group); -1 when unknown."""
        return np.fromiter((self._where.get(k, -1) for k in zip(attrs, groups)),
                           dtype=np.intp, count=len(attrs))

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
        if self.store and len(bj):
            model = groups["model"].to_numpy(dtype=object)
            col = self._columns(groups["attribute"].to_numpy(dtype=object),
                                groups["group"].to_numpy(dtype=object))
            for m, st in self.store.items():
                rows = np.flatnonzero((model == m) & (col >= 0))
                n_g, B = st.shape[1], st.shape[2]
                flat = st.reshape(-1, B)
                for part in _slices(len(rows), B * len(bj) * 3):
                    at = rows[part]
                    reps = flat[(bj[None, :] * n_g + col[at][:, None]).ravel()]
                    lo, hi = row_quantiles(reps, (a, 1 - a))
                    lo_all[np.ix_(at, bj)] = lo.reshape(len(at), len(bj))
                    hi_all[np.ix_(at, bj)] = hi.reshape(len(at), len(bj))
        cells = groups[list(CELLS)].to_numpy(dtype=float)
        defined = groups[list(REGISTRY)].notna().to_numpy()
        wilson = ~boot
        w_lo = w_hi = None
        if wilson.any():
            rates = [m for j, m in enumerate(REGISTRY.values()) if wilson[j]]
            w_lo, w_hi = wilson_interval(cells @ np.stack([m.num_vector for m in rates], 1),
                                         cells @ np.stack([m.den_vector for m in rates], 1),
                                         conf)
        methods = {}
        w = 0
        for j, name in enumerate(REGISTRY):
            if wilson[j]:
                lo, hi = w_lo[:, w], w_hi[:, w]
                w += 1
                methods[name] = "wilson"
            else:
                lo, hi = lo_all[:, j], hi_all[:, j]
                methods[name] = "bootstrap percentile" if self.values else "none"
            out[f"{name}_ci_low"] = np.where(defined[:, j], lo, np.nan)
            out[f"{name}_ci_high"] = np.where(defined[:, j], hi, np.nan)
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
        #: the counts behind the rows of the last disparity table (for
        #: :func:`~fairness_core.stats.tests.finish_tests`)
        self.proportions = counts
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
        d_lo, d_hi, r_lo, r_hi, boot_se = (np.full(n, np.nan) for _ in range(5))
        if not (self.store and n):
            return d_lo, d_hi, r_lo, r_hi, boot_se
        metric_pos = {m: i for i, m in enumerate(REGISTRY)}
        model = disp["model"].to_numpy(dtype=object)
        attrs = disp["attribute"].to_numpy(dtype=object)
        mi = np.fromiter((metric_pos[m] for m in disp["metric"].to_numpy(dtype=object)),
                         dtype=np.intp, count=n)
        gc = np.fromiter((self._where[k] for k in zip(
            attrs, disp["group"].to_numpy(dtype=object))), dtype=np.intp, count=n)
        rc = np.fromiter((self._where[k] for k in zip(
            attrs, disp["reference"].to_numpy(dtype=object))), dtype=np.intp, count=n)
        # the proportions of rows are tested on their counts, without it
        rate = np.array([m.is_rate and not self.weighted for m in REGISTRY.values()])[mi]
        B = next(iter(self.store.values())).shape[2]
        # a slice of rows at a time: (rows x replicates) arrays stay small;
        # three arrays made once serve every slice (fresh large arrays cost
        # more to map into memory than to fill)
        width = max(x.stop - x.start for x in _slices(n, B * 8, _REPLICATE_SLICE_BYTES))
        v_buf, r_buf, d_buf = (np.empty((width, B)) for _ in range(3))
        for m, st in self.store.items():
            rows = np.flatnonzero(model == m)
            n_g = st.shape[1]
            flat = st.reshape(-1, B)
            for part in _slices(len(rows), B * 8, _REPLICATE_SLICE_BYTES):
                at = rows[part]
                k = len(at)
                v = np.take(flat, mi[at] * n_g + gc[at], axis=0, out=v_buf[:k], mode="clip")
                r = np.take(flat, mi[at] * n_g + rc[at], axis=0, out=r_buf[:k], mode="clip")
                diff = np.subtract(v, r, out=d_buf[:k])
                wald = ~rate[at]
                if wald.any():  # the standard error, where a Wald test needs it
                    boot_se[at[wald]] = _standard_error(diff[wald])
                d_lo[at], d_hi[at] = row_quantiles(diff, (a, 1 - a))
                # every metric is at least 0: x / 0 is inf for x > 0, and 0 / 0 NaN
                with np.errstate(invalid="ignore", divide="ignore"):
                    ratio = np.divide(v, r, out=v)
                r_lo[at], r_hi[at] = row_quantiles(ratio, (a, 1 - a))
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
        if not self.store:
            return pd.DataFrame(out, index=summ.index)
        defined = summ[list(SUMMARY_COLUMNS)].notna().to_numpy()
        models = summ["model"].to_numpy(dtype=object)
        attrs = summ["attribute"].to_numpy(dtype=object)
        metric_pos = [list(REGISTRY).index(name) for name in SUMMARY_METRICS]
        rows, reps = [], []
        for i, (m, attr) in enumerate(zip(models, attrs)):
            st = self.store.get(m)
            if st is None or attr not in self.offsets:
                continue
            # an attribute's groups lie next to each other in the store: each
            # metric's replicates of them are a view, (groups, n_boot)
            off, g = self.offsets[attr], len(self.labels[attr])
            values = {name: st[j, off:off + g] for name, j in zip(SUMMARY_METRICS, metric_pos)}
            found = between_summaries(values, axis=0)
            rows.append(i)
            reps.append(np.stack([found[c] for c in SUMMARY_COLUMNS]))
        if rows:
            lo, hi = row_quantiles(np.concatenate(reps), (a, 1 - a))
            shape = (len(rows), len(SUMMARY_COLUMNS))
            lo, hi = lo.reshape(shape), hi.reshape(shape)
            ok = defined[rows]
            for j, c in enumerate(SUMMARY_COLUMNS):
                out[f"{c}_ci_low"][rows] = np.where(ok[:, j], lo[:, j], np.nan)
                out[f"{c}_ci_high"][rows] = np.where(ok[:, j], hi[:, j], np.nan)
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
