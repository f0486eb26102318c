"""The engine: rows -> per-group confusion counts, in one vectorised pass.

Every binary-classification fairness metric is a function of four numbers
per group: TP, FP, TN, FN (weighted when a sample weight is given).  We
count them once, per model, over the *finest* cross-classification of all
sensitive columns; every attribute and every intersection is then a sum
over that small table.  Counts are mergeable: counts(A + B) = counts(A) +
counts(B).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .prepare import MISSING_GROUP, Prepared
from .spec import INTERSECTION_SEP

#: Cell order of a count vector: index = 2 * y_true + y_pred.
CELLS = ("tn", "fp", "fn", "tp")
_DENSE_LIMIT = 1 << 22


@dataclass
class GroupIndex:
    """The finest cross-classification of the sensitive columns.

    Attributes
    ----------
    key : ndarray of int, one per row
        Index of the row's combination in ``combos``.
    combos : ndarray (n_combos, n_columns)
        The level codes of each combination that occurs.
    columns : list of str
    levels : dict column -> list of group labels
    """

    key: np.ndarray
    combos: np.ndarray
    columns: list
    levels: dict

    @classmethod
    def build(cls, prepared: Prepared) -> "GroupIndex":
        """One pass over the rows: combine the raw codes of every sensitive
        column into one key, count which combinations occur, and map the
        raw key to the index of its (level) combination."""
        cols = list(prepared.spec.sensitive)
        # raw code c in [-1, n) -> c + 1 in [0, n]; ext_lut maps it to a level
        ext = [np.concatenate([[len(prepared.levels[c]) - 1], prepared.luts[c]])
               .astype(np.int64) for c in cols]
        sizes = [len(e) for e in ext]
        total = int(np.prod(sizes, dtype=np.int64))
        dtype = np.int32 if total < (1 << 31) else np.int64
        key = prepared.codes[cols[0]].astype(dtype, copy=True)
        offset = 1
        for c, size in zip(cols[1:], sizes[1:]):
            key *= size
            key += prepared.codes[c]
            offset = offset * size + 1
        key += offset
        if total <= _DENSE_LIMIT:
            present = np.flatnonzero(np.bincount(key, minlength=total))
        else:  # very many possible combinations: only the present ones
            present, key = np.unique(key, return_inverse=True)
            key = key.astype(dtype)
        raw = np.unravel_index(present, sizes)
        lv = np.stack([e[r] for e, r in zip(ext, raw)], axis=1)
        # keep only used levels, renumbered in level order
        levels, new_cols = {}, []
        for j, c in enumerate(cols):
            used, renum = np.unique(lv[:, j], return_inverse=True)
            levels[c] = [prepared.levels[c][i] for i in used]
            new_cols.append(renum.reshape(-1))
        lv = np.stack(new_cols, axis=1)
        # several raw combinations can show the same groups (1 and "1")
        combos, inverse = np.unique(lv, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1).astype(dtype)
        if total <= _DENSE_LIMIT:
            lut = np.full(total, -1, dtype=dtype)
            lut[present] = inverse
            key = lut[key]
        else:
            key = inverse[key]
        return cls(key=key, combos=combos.astype(np.int64), columns=cols, levels=levels)

    @property
    def n_combos(self) -> int:
        return int(self.combos.shape[0])

    def marginal(self, attribute: tuple):
        """Map each combination to its group of ``attribute``.

        Returns
        -------
        combo_to_group : ndarray (n_combos,)
        group_labels : list of str, ordered by the attribute's level order
        group_parts : list of tuples of str (one label per column)
        """
        idx = [self.columns.index(c) for c in attribute]
        sub = self.combos[:, idx]
        sizes = [len(self.levels[c]) for c in attribute]
        flat = np.ravel_multi_index(tuple(sub.T), sizes) if len(idx) > 1 else sub[:, 0]
        uniq, inverse = np.unique(flat, return_inverse=True)
        parts_codes = np.stack(np.unravel_index(uniq, sizes), axis=1) if len(idx) > 1 \
            else uniq.reshape(-1, 1)
        parts = [tuple(self.levels[c][k] for c, k in zip(attribute, row)) for row in parts_codes]
        labels = [INTERSECTION_SEP.join(p) for p in parts]
        return inverse.reshape(-1), labels, parts


_FUSE_MODELS = 4


def combo_counts(prepared: Prepared, index: GroupIndex, weighted: bool = True,
                 weights: np.ndarray | None = None, joint: dict | None = None):
    """Confusion counts per model and finest combination.

    Up to four models are counted in one pass: each row's code packs its
    combination, its label and every model's decision.  A record of a count
    table adds its multiplicity (its weight sum when weighted).

    Returns
    -------
    cells : dict model -> ndarray (n_combos, 4) in :data:`CELLS` order,
        weighted when the spec has a weight and ``weighted`` (float), else
        int64 row counts.
    rows : ndarray (n_combos,) of unweighted row counts.
    weight_sums : ndarray (n_combos,) of weight sums (equal to rows unweighted).

    Given a ``joint`` dict, the joint counts of every model's decisions
    (:func:`joint_counts`) are kept in ``joint["counts"]`` when the models
    were counted in one pass.
    """
    k = index.n_combos
    mult = prepared.row_counts
    if weights is None:
        weights = prepared.weight if weighted and prepared.weight is not None else None
    w = weights if weights is not None else mult
    as_rows = weights is None  # whole row counts
    models = list(prepared.predictions)
    yb = prepared.y.view(np.uint8) if prepared.y.dtype == bool else prepared.y
    cells = {}
    for start in range(0, len(models), _FUSE_MODELS):
        part = models[start:start + _FUSE_MODELS]
        m = len(part)
        code = index.key.astype(np.int64 if k << (m + 1) >= (1 << 31) else np.int32)
        code <<= 1
        code |= yb
        for model in part:
            p = prepared.predictions[model]
            code <<= 1
            code |= p.view(np.uint8) if p.dtype == bool else p
        cnt = np.bincount(code, weights=w, minlength=k << (m + 1))
        del code
        if as_rows:
            cnt = cnt.astype(np.int64)
        cnt = cnt.reshape((k, 2) + (2,) * m)
        if joint is not None and m == len(models):
            joint["counts"] = cnt
        for j, model in enumerate(part):
            other = tuple(2 + i for i in range(m) if i != j)
            cm = cnt.sum(axis=other) if other else cnt
            cells[model] = np.ascontiguousarray(cm.reshape(k, 4))
    first = next(iter(cells.values())) if cells else None
    if first is not None and as_rows:
        rows = first.sum(axis=1)
    else:
        rows = np.bincount(index.key, weights=mult, minlength=k).astype(np.int64)
    if as_rows:
        weight_sums = rows.astype(float)
    else:
        weight_sums = first.sum(axis=1).astype(float) if first is not None else \
            np.bincount(index.key, weights=w, minlength=k)
    return cells, rows, weight_sums


OVERALL, ALL = "(overall)", "(all)"


@dataclass
class CountCube:
    """Confusion counts per model x finest group combination, and how each
    audited attribute groups the combinations.  Everything downstream
    (metrics, disparities, intervals, tests) reads this, never the rows.

    Attributes
    ----------
    cells : dict model -> (k, 4) counts in :data:`CELLS` order (weighted
        when the audit has a weight column)
    row_cells : dict model -> (k, 4) int64 row counts (the same arrays as
        ``cells`` without weights)
    weight_sq_cells : dict model -> (k, 4) sums of squared weights, or None
    rows, wsum : (k,) row counts and weight sums per combination
    attributes : list of (name, combo_to_group, group_labels), ending with
        ``("(overall)", zeros, ["(all)"])``
    joint, joint_rows : the models' joint decisions per combination and
        outcome, as :func:`joint_counts` counts them (weighted, and in rows),
        when the pass over the rows counted them; else None
    """

    cells: dict
    row_cells: dict
    rows: np.ndarray
    wsum: np.ndarray
    attributes: list
    weighted: bool
    weight_sq_cells: dict | None = None
    joint: np.ndarray | None = None
    joint_rows: np.ndarray | None = None

    @property
    def models(self) -> list:
        return list(self.cells)


def _sum_groups(cm: np.ndarray, inv: np.ndarray, g: int) -> np.ndarray:
    out = np.zeros((g,) + cm.shape[1:], dtype=cm.dtype)
    for j in range(cm.shape[1]):
        out[:, j] = np.bincount(inv, weights=cm[:, j], minlength=g)
    return out


def count_cube(prepared: Prepared, index: GroupIndex | None = None) -> CountCube:
    """One pass over the rows: the :class:`CountCube` of an audit."""
    index = index or GroupIndex.build(prepared)
    joint, joint_rows = {}, {}
    cells, rows, wsum = combo_counts(prepared, index, joint=joint)
    weighted = prepared.weight is not None
    row_cells = combo_counts(prepared, index, weighted=False, joint=joint_rows)[0] \
        if weighted else cells
    sq = combo_counts(prepared, index, weights=prepared.weight_squares)[0] if weighted \
        else None
    attrs = [(INTERSECTION_SEP.join(a), *index.marginal(a)[:2])
             for a in prepared.spec.attribute_sets()]
    attrs.append((OVERALL, np.zeros(index.n_combos, dtype=np.int64), [ALL]))
    return CountCube(cells=cells, row_cells=row_cells, rows=rows, wsum=wsum,
                     attributes=attrs, weighted=weighted, weight_sq_cells=sq,
                     joint=joint.get("counts"), joint_rows=joint_rows.get("counts"))


#: The columns that name a row of a group table.
GROUP_KEYS = ("model", "attribute", "group")


def row_positions(rows: pd.DataFrame, table: pd.DataFrame, keys=GROUP_KEYS,
                  row_keys=None) -> np.ndarray:
    """The position in ``table`` of the first row with the same ``keys``
    values as each row of ``rows`` (read from its ``row_keys`` columns, by
    default the same names), -1 where there is none: a left merge by
    position, quicker than a merge on text keys for tables of a few
    thousand rows."""
    where: dict = {}
    for i, k in enumerate(zip(*(table[c].to_numpy(dtype=object) for c in keys))):
        where.setdefault(k, i)
    return np.fromiter((where.get(k, -1) for k in zip(
        *(rows[c].to_numpy(dtype=object) for c in (row_keys or keys)))), dtype=np.intp,
        count=len(rows))


def take_rows(values: np.ndarray, at: np.ndarray) -> np.ndarray:
    """``values[at]`` as floats, NaN where ``at`` is -1 (see :func:`row_positions`)."""
    values = np.asarray(values, dtype=float)
    if not len(values):
        return np.full(len(at), np.nan)
    return np.where(at >= 0, values[at], np.nan)


def count_table(source, index: GroupIndex | None = None) -> pd.DataFrame:
    """The count table: one row per model x attribute x group.

    ``source`` is a :class:`CountCube` or a prepared table.  Columns:
    ``model, attribute, group, n, weight, tn, fp, fn, tp`` where ``n`` is
    the number of rows and ``weight`` the sum of sample weights (equal to
    ``n`` without weights).  With sample weights, ``weight_sq`` is the sum of
    their squares and ``n_effective`` Kish's effective number of rows,
    ``weight ** 2 / weight_sq``: what the group's weighted rates are worth
    in rows when the weights are unequal.  The attribute ``"(overall)"`` has one group
    ``"(all)"`` with the totals.
    """
    cube = source if isinstance(source, CountCube) else count_cube(source, index)
    squares = cube.weighted and bool(cube.weight_sq_cells) and all(
        cube.weight_sq_cells.get(m) is not None for m in cube.cells)
    cols: dict = {k: [] for k in ("model", "attribute", "group", "n", "weight", "share",
                                  *(("weight_sq", "n_effective") if squares else ()),
                                  *CELLS)}
    per_attr = []
    for name, inv, labels in cube.attributes:
        g = len(labels)
        per_attr.append((name, inv, np.asarray(labels, dtype=object), g,
                         np.bincount(inv, weights=cube.rows, minlength=g).astype(np.int64),
                         np.bincount(inv, weights=cube.wsum, minlength=g)))
    for model, cm in cube.cells.items():  # model-major: attributes, then overall
        for name, inv, labels, g, n, wsum in per_attr:
            agg = _sum_groups(cm.astype(float), inv, g)
            cols["model"].append(np.full(g, model, dtype=object))
            cols["attribute"].append(np.full(g, name, dtype=object))
            cols["group"].append(labels)
            cols["n"].append(n)
            cols["weight"].append(wsum)
            if squares:  # Kish's effective number of rows: (sum w)^2 / sum w^2
                sq = np.bincount(inv, weights=cube.weight_sq_cells[model].sum(axis=1),
                                 minlength=g)
                cols["weight_sq"].append(sq)
                with np.errstate(invalid="ignore", divide="ignore"):
                    cols["n_effective"].append(np.where(sq > 0, wsum ** 2 / sq, 0.0))
            tot = wsum.sum()
            cols["share"].append(wsum / tot if tot > 0 else np.full(g, np.nan))
            for j, c in enumerate(CELLS):
                cols[c].append(agg[:, j] if cube.weighted else agg[:, j].astype(np.int64))
    return pd.DataFrame({k: np.concatenate(v) for k, v in cols.items()})


def count_records(prepared: Prepared, index: GroupIndex | None = None,
                  max_score_values: int = 1 << 16) -> tuple[pd.DataFrame, str, list]:
    """The audited rows as a count table: one row per distinct combination of
    the groups, the outcome, every model's decision and score (and weight),
    with the number of rows it stands for.

    Auditing it with ``counts`` set to the returned count column gives the
    same numbers as the rows.  The outcome and the decisions are written
    with the label's first positive and negative values; sensitive columns
    hold the group names (empty for a missing value).  A score column with more than
    ``max_score_values`` distinct values is written as fine bins (its lower
    edge, with the audit's threshold as an edge, so every decision at the
    threshold is kept; the AUC then carries its error bound).

    Without a true outcome (no label) the table has no outcome column: per
    combination of groups, decisions and scores, the rows (and weights),
    from which each group's selected rows follow.

    Returns
    -------
    (table, count column name, notes)
    """
    from .scores import fine_bins, fine_edges

    index = index or GroupIndex.build(prepared)
    spec = prepared.spec
    notes = []
    pos = prepared.positive_values[0] if prepared.positive_values else "1"
    neg = prepared.negative_values[0] if prepared.negative_values else f"not {pos}"
    parts: dict = {}
    for j, col in enumerate(index.columns):
        parts[col] = index.combos[index.key, j]
    outcome = [spec.label] if spec.labelled else []  # none: the decisions alone
    if spec.labelled:
        parts[spec.label] = prepared.y.astype(np.int8)
    for model in spec.predictions:
        parts[model] = prepared.predictions[model].astype(np.int8)
    for model in spec.scores:
        s = prepared.scores[model]
        uniq = np.unique(s)
        if len(uniq) > max_score_values:
            lo, hi = prepared.score_ranges[model]
            threshold = prepared.thresholds[model]
            edges = fine_edges(lo, hi, threshold, max_score_values)
            s = edges[np.maximum(fine_bins(s, edges, lo, hi, max_score_values, [threshold]) - 1,
                                 0)]
            notes.append(f"The score {model!r} has {len(uniq):,} distinct values; it is written "
                         f"as {len(edges):,} fine bins (the lower edge of each, the threshold "
                         "among them), so the decisions at the threshold are exact and the "
                         "AUC carries its stated error bound.")
        parts[model] = s
    mult = prepared.multiplicity if prepared.multiplicity is not None \
        else np.ones(len(prepared.y), dtype=np.int64)
    if prepared.weight is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            parts[spec.weight] = prepared.weight / mult
    frame = pd.DataFrame(parts)
    name = next(c for c in ("n", "rows", "row_count", "n_rows_")
                if c not in frame.columns)
    frame[name] = mult
    keys = list(parts)
    out = frame.groupby(keys, sort=True, dropna=False, observed=True)[name].sum().reset_index()
    for j, col in enumerate(index.columns):
        levels = np.asarray(index.levels[col], dtype=object)
        levels[levels == MISSING_GROUP] = None  # an empty cell: read back as missing
        out[col] = levels[out[col].to_numpy()]
    yes_no = np.array([neg, pos], dtype=object)
    for col in (*outcome, *spec.predictions):
        out[col] = yes_no[out[col].to_numpy()]
    return out, name, notes


def paired_counts(prepared, index, model_a: str, model_b: str, decisions: dict | None = None,
                  weighted: bool = True) -> np.ndarray:
    """The joint counts of two models' decisions, per finest group
    combination and true outcome: ``(k, 2, 2, 2)`` indexed ``[combination,
    outcome, decision of a, decision of b]``, weighted by the sample weight
    (when ``weighted`` and the audit has one) and by a count table's row
    counts.  One bincount over the rows; the counts of two parts of a table
    add up to the counts of the table.

    ``decisions`` overrides a model's decisions (model -> boolean array), e.g.
    a score model at another threshold.
    """
    k = index.n_combos
    da = (decisions or {}).get(model_a, prepared.predictions[model_a])
    db = (decisions or {}).get(model_b, prepared.predictions[model_b])
    w = prepared.weight if weighted and prepared.weight is not None else prepared.row_counts
    code = index.key.astype(np.int64) * 8 + prepared.y.astype(np.int64) * 4 \
        + np.asarray(da, dtype=np.int64) * 2 + np.asarray(db, dtype=np.int64)
    cnt = np.bincount(code, weights=w, minlength=8 * k)
    return cnt.reshape(k, 2, 2, 2)


#: The joint decisions of this many models at most are counted in one pass.
_JOINT_LIMIT = 1 << 24


def joint_counts(prepared, index, models, decisions: dict | None = None,
                 weighted: bool = True) -> np.ndarray | None:
    """The joint counts of several models' decisions, per finest group
    combination and true outcome, in one bincount over the rows: shape
    ``(k, 2, 2, ..., 2)`` indexed ``[combination, outcome, decision of the
    first model, decision of the second, ...]``.  Summing out all but two
    models gives their :func:`paired_counts`.  None when the table would be
    too large (many models and groups): count each pair then."""
    k, m = index.n_combos, len(models)
    if k << (m + 1) > _JOINT_LIMIT:
        return None
    w = prepared.weight if weighted and prepared.weight is not None else prepared.row_counts
    code = index.key.astype(np.int64) << 1
    code |= np.asarray(prepared.y, dtype=np.int64)
    for model in models:
        d = (decisions or {}).get(model, prepared.predictions[model])
        code <<= 1
        code |= np.asarray(d, dtype=np.int64)
    cnt = np.bincount(code, weights=w, minlength=k << (m + 1))
    return cnt.reshape((k, 2) + (2,) * m)
