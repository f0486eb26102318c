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

from .prepare import Prepared
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
        cols = list(prepared.spec.sensitive)
        sizes = [len(prepared.levels[c]) for c in cols]
        total = int(np.prod(sizes, dtype=np.int64))
        dtype = np.int32 if total * 4 < (1 << 31) else np.int64
        key = prepared.codes[cols[0]].astype(dtype, copy=True)
        for c, size in zip(cols[1:], sizes[1:]):
            key *= size
            key += prepared.codes[c]
        if total <= _DENSE_LIMIT:
            present = np.flatnonzero(np.bincount(key, minlength=total))
            if len(present) < total:
                lut = np.full(total, -1, dtype=dtype)
                lut[present] = np.arange(len(present), dtype=dtype)
                key = lut[key]
        else:  # very many possible combinations: only the present ones
            present, key = np.unique(key, return_inverse=True)
            key = key.astype(dtype)
        combos = np.stack(np.unravel_index(present, sizes), axis=1) if len(cols) > 1 \
            else present.reshape(-1, 1)
        return cls(key=key, combos=combos.astype(np.int64), columns=cols,
                   levels={c: prepared.levels[c] for c in cols})

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


def combo_counts(prepared: Prepared, index: GroupIndex):
    """Confusion counts per model and finest combination.

    Returns
    -------
    cells : dict model -> ndarray (n_combos, 4) in :data:`CELLS` order,
        weighted when the spec has a weight (float), else int64.
    rows : ndarray (n_combos,) of unweighted row counts.
    weight_sums : ndarray (n_combos,) of weight sums (equal to rows unweighted).
    """
    k = index.n_combos
    base = index.key * 4
    base += prepared.y.view(np.uint8) * 2 if prepared.y.dtype == bool else prepared.y * 2
    w = prepared.weight
    cells = {}
    for model, pred in prepared.predictions.items():
        codes = base + pred.view(np.uint8)
        cnt = np.bincount(codes, weights=w, minlength=4 * k)
        if w is None:
            cnt = cnt.astype(np.int64)
        cells[model] = cnt.reshape(k, 4)
    rows = np.bincount(index.key, minlength=k).astype(np.int64)
    weight_sums = rows.astype(float) if w is None else np.bincount(index.key, weights=w,
                                                                     minlength=k)
    return cells, rows, weight_sums


def count_table(prepared: Prepared, index: GroupIndex | None = None) -> pd.DataFrame:
    """The count table: one row per model x attribute x group.

    Columns: ``model, attribute, group, n, weight, tn, fp, fn, tp`` where
    ``n`` is the number of rows and ``weight`` the sum of sample weights
    (equal to ``n`` without weights).  An extra attribute ``"(overall)"`` has
    one group ``"(all)"`` with the totals.
    """
    index = index or GroupIndex.build(prepared)
    cells, rows, wsum = combo_counts(prepared, index)
    frames = []
    attrs = prepared.spec.attribute_sets()
    mapped = [(INTERSECTION_SEP.join(a), *index.marginal(a)) for a in attrs]
    for model, cm in cells.items():
        for name, inv, labels, _parts in mapped:
            g = len(labels)
            agg = np.zeros((g, 4), dtype=cm.dtype)
            np.add.at(agg, inv, cm)
            frames.append(pd.DataFrame({
                "model": model, "attribute": name, "group": labels,
                "n": np.bincount(inv, weights=rows, minlength=g).astype(np.int64),
                "weight": np.bincount(inv, weights=wsum, minlength=g),
                **{c: agg[:, j] for j, c in enumerate(CELLS)}}))
        tot = cm.sum(axis=0)
        frames.append(pd.DataFrame({
            "model": [model], "attribute": ["(overall)"], "group": ["(all)"],
            "n": [int(rows.sum())], "weight": [float(wsum.sum())],
            **{c: [tot[j]] for j, c in enumerate(CELLS)}}))
    return pd.concat(frames, ignore_index=True)
