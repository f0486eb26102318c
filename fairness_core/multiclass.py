"""Multiclass audits on counts: a triage level, a product tier, a risk band.

A decision with ``k`` classes is summed up, per finest combination of the
sensitive columns, by a ``k x k`` confusion table (true class x predicted
class): weighted and unweighted row counts, and the sums of squared weights
for weighted intervals.  It is counted in one pass with ``np.bincount``
(:func:`multiclass_cube`) or by one GROUP BY in an engine
(:func:`engine_expression`, :func:`cube_from_engine`); tables of two parts
of the data add up (:func:`merge_cubes`).  Every number below is computed
from these tables, never from the rows again.

Each class ``c`` is then audited one-vs-rest: from the ``k x k`` table the
binary cells of "true class is c" x "predicted class is c" (TN, FP, FN, TP)
are formed, and the binary audit's own metric registry, intervals,
reference groups, tolerance verdicts, tests and multiple-comparison
correction are applied to them unchanged, so that every definition lives
in one place (:mod:`fairness_core.metrics`, :mod:`fairness_core.disparity`,
:mod:`fairness_core.stats`).  Every record carries the ``class`` it is about.

Demographic parity with several classes
---------------------------------------
fairlearn defines demographic parity as equal selection rates,
``P(h(X) = 1 | A = a)``, for a binary decision: there is one outcome, being
selected, whose rate is compared between groups.  With several classes
there is no single "selected" outcome, so fairlearn leaves the multiclass
case undefined: its ``selection_rate`` counts the predictions equal to one
``pos_label`` (1 unless told otherwise), so ``demographic_parity_difference``
on three classes silently measures the share predicted ``1`` and ignores
the others, and its true and false positive rates (and so equalized odds)
refuse more than two values.  Any multiclass version needs two choices the
binary case does not: which class counts, and how gaps of several classes
combine into one number.

This audit makes both choices visible instead of hiding them.  For each
class ``c`` it asks the binary question "is a person predicted ``c``?"
(one-vs-rest):

- *demographic parity for class c*: the largest minus the smallest share of
  a group that is predicted ``c`` (difference), and the smallest over the
  largest (ratio), exactly fairlearn's definition applied to the decision
  "predicted c or not";
- *equalized odds for class c*: the larger of the between-group gaps in the
  true positive rate (people whose true class is ``c`` and who are predicted
  ``c``) and in the false positive rate (people of another class predicted
  ``c``); equal opportunity and average odds likewise;
- *the worst class*: per summary, the class with the largest gap, the one
  number that says how far the decision is from parity over all classes
  (zero only when every class is at parity).

Per group, the overall accuracy (share predicted their true class) and the
macro averages of the one-vs-rest rates (the mean over the classes where a
rate is defined; the macro true positive rate is scikit-learn's balanced
accuracy) summarise the model's quality for that group.  A class that no
person of a group has (no true row of it) gives that group undefined rates
for it (NaN, never 0), and its gaps for that class are not judged.  The
between-group summaries follow fairlearn: every group where a rate is
defined takes part, whatever its size.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .counts import ALL, OVERALL, CountCube, GroupIndex, count_table
from .disparity import INSUFFICIENT, SUMMARY_COLUMNS, disparities, summary
from .errors import InputError, quote_list
from .metrics import add_metrics, metric_values
from .prepare import (MAX_LABEL_VALUES, MISSING_GROUP, _encode_sensitive, _multiplicity,
                      _numeric, _sort_key, canon, codes_and_uniques, display,
                      sample_weights)
from .spec import INTERSECTION_SEP, AuditSpec
from .stats import Uncertainty, finish_tests, quantiles, wilson_interval
from .stats.bootstrap import aggregate, bootstrap_cells

#: The one-vs-rest metrics that get disparities, verdicts and tests per class.
CLASS_METRICS = ("selection_rate", "tpr", "fpr", "fnr", "tnr", "ppv", "npv", "accuracy")
#: The one-vs-rest rates whose mean over the classes a group gets (macro average).
MACRO_METRICS = ("tpr", "fpr", "fnr", "tnr", "ppv", "npv", "f1")
#: Between-group summaries per class (from :data:`fairness_core.disparity.SUMMARIES`).
SUMMARY_NAMES = tuple(c[:-len("_difference")] for c in SUMMARY_COLUMNS
                      if c.endswith("_difference"))

#: The ``class`` of the per-group records that are about every class at once.
ALL_CLASSES = "(all classes)"

#: the engine's aggregate names (fairness_core.engine), so the same records read back
_N, _W2, _WNULL = "__rows", "__weight_squares", "__weight_missing"


# ---------------------------------------------------------------------------
# Counts
# ---------------------------------------------------------------------------
@dataclass
class MulticlassCube:
    """``k x k`` confusion tables per model and finest group combination.

    Attributes
    ----------
    classes : list of str
        The class names, in order (numbers in numeric order, then text).
    columns : list of str
        The sensitive columns.
    combos : list of tuples of str
        The groups (one label per column) of each finest combination.
    tables : dict model -> ndarray (n_combos, k, k)
        Counts, ``[combo, true class, predicted class]``: sums of sample
        weights when weighted (float), else row counts (int64).
    row_tables : dict model -> ndarray (n_combos, k, k) of int64 row counts
    weight_sq_tables : dict model -> ndarray (n_combos, k, k), or None
        Sums of squared weights (weighted only).
    attribute_sets : list of tuples of str
        The audited attributes (single columns and intersections).
    weighted : bool
    n_rows_read : int
    dropped : dict reason -> rows left out
    """

    classes: list
    columns: list
    combos: list
    tables: dict
    row_tables: dict
    weight_sq_tables: dict | None
    attribute_sets: list
    weighted: bool
    n_rows_read: int = 0
    dropped: dict = field(default_factory=dict)

    @property
    def models(self) -> list:
        return list(self.tables)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def n_rows(self) -> int:
        first = next(iter(self.row_tables.values()))
        return int(first.sum())

    def attributes(self) -> list:
        """``(name, combo_to_group, group_labels)`` per audited attribute,
        ending with ``("(overall)", zeros, ["(all)"])`` (as
        :class:`fairness_core.counts.CountCube`)."""
        index = _index_of(self.columns, self.combos)
        out = [(INTERSECTION_SEP.join(a), *index.marginal(a)[:2]) for a in self.attribute_sets]
        out.append((OVERALL, np.zeros(len(self.combos), dtype=np.int64), [ALL]))
        return out

    def confusion_table(self) -> pd.DataFrame:
        """The confusion tables summed up to every attribute and group.

        Returns
        -------
        DataFrame
            One row per model x attribute x group x true class x predicted
            class: ``model, attribute, group, true_class, predicted_class,
            n`` (rows) and ``weight`` (sum of weights; equal to ``n``
            without weights).
        """
        k = self.n_classes
        parts = []
        for model in self.models:
            for name, inv, labels in self.attributes():
                g = len(labels)
                rows = _sum_groups(self.row_tables[model], inv, g)
                wts = _sum_groups(self.tables[model].astype(float), inv, g)
                parts.append(pd.DataFrame({
                    "model": model, "attribute": name,
                    "group": np.repeat(np.asarray(labels, dtype=object), k * k),
                    "true_class": np.tile(np.repeat(np.asarray(self.classes, dtype=object), k),
                                          g),
                    "predicted_class": np.tile(np.asarray(self.classes, dtype=object), g * k),
                    "n": rows.reshape(-1).astype(np.int64), "weight": wts.reshape(-1)}))
        return pd.concat(parts, ignore_index=True)

    def binary_cube(self) -> tuple[CountCube, list]:
        """The one-vs-rest count cube: one binary "model" per (model, class).

        Returns
        -------
        cube : :class:`fairness_core.counts.CountCube`
            Its models are the integers ``0 .. len(pairs) - 1``.
        pairs : list of (model, class)
        """
        pairs, cells, row_cells, sq_cells = [], {}, {}, {}
        for model in self.models:
            t, r = self.tables[model], self.row_tables[model]
            s = self.weight_sq_tables[model] if self.weight_sq_tables else None
            for c, name in enumerate(self.classes):
                key = len(pairs)
                pairs.append((model, name))
                cells[key] = one_vs_rest(t, c)
                row_cells[key] = one_vs_rest(r, c)
                if s is not None:
                    sq_cells[key] = one_vs_rest(s, c)
        first = next(iter(self.row_tables.values()))
        rows = first.sum(axis=(1, 2)).astype(np.int64)
        wsum = next(iter(self.tables.values())).sum(axis=(1, 2)).astype(float)
        cube = CountCube(cells=cells, row_cells=row_cells if self.weighted else cells,
                         rows=rows, wsum=wsum, attributes=self.attributes(),
                         weighted=self.weighted,
                         weight_sq_cells=sq_cells if self.weighted else None)
        return cube, pairs


def one_vs_rest(table: np.ndarray, c: int) -> np.ndarray:
    """The binary cells of class ``c`` from ``(..., k, k)`` confusion tables.

    Returns ``(..., 4)`` in :data:`fairness_core.counts.CELLS` order (TN,
    FP, FN, TP) where positive means "class c".  Every cell is a sum of
    table entries (never a difference), so an empty cell is exactly 0.
    """
    k = table.shape[-1]
    other = np.arange(k) != c
    tp = table[..., c, c]
    fn = table[..., c, :][..., other].sum(axis=-1)
    fp = table[..., :, c][..., other].sum(axis=-1)
    tn = table[..., other, :][..., :, other].sum(axis=(-2, -1))
    return np.stack([tn, fp, fn, tp], axis=-1)


def _sum_groups(t: np.ndarray, inv: np.ndarray, g: int) -> np.ndarray:
    """Sum ``(n_combos, ...)`` tables into ``(g, ...)`` groups."""
    out = np.zeros((g,) + t.shape[1:], dtype=t.dtype)
    np.add.at(out, np.asarray(inv, dtype=np.intp), t)
    return out


def _level_key(label: str):
    return (label == MISSING_GROUP, _sort_key(label))


def _index_of(columns: list, combos: list) -> GroupIndex:
    """A :class:`GroupIndex` of given group-label combinations (for summing
    combinations up to attributes; it has no rows)."""
    levels = {c: sorted({combo[j] for combo in combos}, key=_level_key)
              for j, c in enumerate(columns)}
    pos = {c: {lab: i for i, lab in enumerate(levels[c])} for c in columns}
    codes = np.array([[pos[c][combo[j]] for j, c in enumerate(columns)] for combo in combos],
                     dtype=np.int64).reshape(len(combos), len(columns))
    return GroupIndex(key=np.zeros(0, dtype=np.int64), combos=codes, columns=list(columns),
                      levels=levels)


def _check_spec(spec: AuditSpec, present: list) -> None:
    if spec.scores:
        raise InputError(f"A multiclass audit reads predicted classes, not scores: choose a "
                         f"column of predicted classes instead of {quote_list(spec.scores)}.",
                         field="scores", column=spec.scores[0])
    missing = [c for c in spec.columns() if c not in present]
    if missing:
        raise InputError(f"Column {quote_list(missing)} is not in the data. The columns there "
                         f"are: {quote_list(present, limit=40)}.", field="columns",
                         column=missing[0])


def _class_codes(df: pd.DataFrame, cols: list) -> tuple[dict, list]:
    """Integer class codes (-1 = missing) per column, over one set of classes.

    Values that mean the same (``1``, ``1.0``, ``"1"``) are one class; the
    classes are ordered as numbers, then text.
    """
    raw, tokens, names = {}, {}, {}
    for col in cols:
        codes, uniques = codes_and_uniques(df[col])
        toks = []
        for u in uniques:
            if u is None or (isinstance(u, float) and np.isnan(u)):
                toks.append(None)
                continue
            t = canon(u)
            names.setdefault(t, display(u))
            toks.append(t)
        raw[col], tokens[col] = codes, toks
    order = sorted(names, key=lambda t: _sort_key(names[t]))
    if len(order) > MAX_LABEL_VALUES:
        raise InputError(f"The label and predicted classes have {len(order):,} distinct values, "
                         f"such as {quote_list([names[t] for t in order[:5]])}, more than the "
                         f"limit of {MAX_LABEL_VALUES} classes: choose the columns of true and "
                         "predicted classes.", field="label", column=cols[0])
    if len(order) < 2:
        raise InputError(f"The label {cols[0]!r} and the predictions have only one class "
                         f"({quote_list([names[t] for t in order])}); a multiclass audit needs "
                         "at least two classes.", field="label", column=cols[0])
    pos = {t: i for i, t in enumerate(order)}
    out = {}
    for col in cols:
        lut = np.array([pos[t] if t is not None else -1 for t in tokens[col]] + [-1],
                       dtype=np.int64)
        out[col] = lut[raw[col]]  # code -1 reads the last entry: missing
    return out, [names[t] for t in order]


def multiclass_cube(df: pd.DataFrame, spec: AuditSpec, *, counts: str | None = None,
                    weight_sq: str | None = None) -> MulticlassCube:
    """One pass over the rows: the confusion table of every model per finest
    combination of the sensitive columns.

    ``spec.label`` holds the true class and each of ``spec.predictions`` a
    model's predicted class; sensitive columns, bins, weights and count
    tables are read as in the binary audit (a missing sensitive value is the
    group ``"(missing)"``; rows with a missing class or weight are left
    out and counted).  ``counts`` and ``weight_sq`` name the columns of rows
    per record and of summed squared weights of a table an engine
    aggregated (the weight column then holds summed weights).
    """
    _check_spec(spec, [str(c) for c in df.columns])
    if len(df) == 0:
        raise InputError("The table has no rows.", field="file")
    mult = _multiplicity(df, counts or spec.counts)
    n_read = len(df) if mult is None else int(mult.sum())

    def rows(mask):
        return int(np.count_nonzero(mask)) if mult is None else int(mult[mask].sum())

    models = list(spec.predictions)
    codes, classes = _class_codes(df, [spec.label, *models])
    keep = np.ones(len(df), dtype=bool)
    dropped = {}
    for col, role in [(spec.label, "label"), *((m, "prediction") for m in models)]:
        bad = codes[col] < 0
        if bad.any():
            dropped[f"missing {role} ({col})"] = rows(bad)
            keep &= ~bad
    weight = wsq = None
    if spec.weight:
        w = sample_weights(df, spec, rows, dropped, keep)
        if weight_sq is not None:
            weight, wsq = w, _numeric(df[weight_sq], spec.weight, "weight", "weight")
        elif mult is not None:
            weight, wsq = w * mult, w * w * mult
        else:
            weight, wsq = w, w * w
    if mult is not None:
        keep &= mult > 0
    if not keep.any():
        raise InputError("No row is left after leaving out rows with a missing class or "
                         f"weight ({', '.join(f'{k}: {v:,}' for k, v in dropped.items())}).",
                         field="file")
    sens = {c: _encode_sensitive(df[c], c, spec) for c in spec.sensitive}
    if not keep.all():
        codes = {c: v[keep] for c, v in codes.items()}
        sens = {c: (v[0][keep], v[1], v[2]) for c, v in sens.items()}
        mult = mult[keep] if mult is not None else None
        weight = weight[keep] if weight is not None else None
        wsq = wsq[keep] if wsq is not None else None
    if weight is not None and not (weight > 0).any():
        raise InputError(f"All weights in {spec.weight!r} are zero.", field="weight",
                         column=spec.weight)
    encoded = _Encoded(spec, sens)
    index = GroupIndex.build(encoded)
    k, n_combos = len(classes), index.n_combos
    size = n_combos * k * k
    key = index.key.astype(np.int64) * (k * k)
    tables, row_tables, sq_tables = {}, {}, {}
    y = codes[spec.label]
    row_w = None if mult is None else mult.astype(float)
    for model in models:
        code = key + y * k + codes[model]
        r = np.bincount(code, weights=row_w, minlength=size)
        row_tables[model] = r.astype(np.int64).reshape(n_combos, k, k)
        if weight is not None:
            tables[model] = np.bincount(code, weights=weight, minlength=size).reshape(
                n_combos, k, k)
            sq_tables[model] = np.bincount(code, weights=wsq, minlength=size).reshape(
                n_combos, k, k)
        else:
            tables[model] = row_tables[model]
        del code
    combos = [tuple(index.levels[c][j] for c, j in zip(index.columns, row))
              for row in index.combos]
    return MulticlassCube(classes=classes, columns=list(index.columns), combos=combos,
                          tables=tables, row_tables=row_tables,
                          weight_sq_tables=sq_tables if weight is not None else None,
                          attribute_sets=list(spec.attribute_sets()),
                          weighted=weight is not None, n_rows_read=n_read, dropped=dropped)


@dataclass
class _Encoded:
    """What :meth:`GroupIndex.build` reads of a prepared table."""

    spec: AuditSpec
    sens: dict

    @property
    def codes(self):
        return {c: v[0] for c, v in self.sens.items()}

    @property
    def luts(self):
        return {c: v[1] for c, v in self.sens.items()}

    @property
    def levels(self):
        return {c: v[2] for c, v in self.sens.items()}


def merge_cubes(*cubes: MulticlassCube) -> MulticlassCube:
    """The cube of the union of the parts' rows: the sum of their tables,
    aligned on group and class names (a class or group that one part lacks
    counts zero there)."""
    if not cubes:
        raise InputError("There is nothing to merge: give at least one count table.",
                         field="counts")
    first = cubes[0]
    for c in cubes[1:]:
        if (c.columns, c.models, c.weighted, c.attribute_sets) != (
                first.columns, first.models, first.weighted, first.attribute_sets):
            raise InputError("These count tables were counted differently (other sensitive "
                             "columns, models or weights) and cannot be added up; count every "
                             "part with the same settings.", field="counts")
    classes = sorted({x for c in cubes for x in c.classes}, key=_sort_key)
    combos = sorted({x for c in cubes for x in c.combos},
                    key=lambda t: tuple(_level_key(s) for s in t))
    cpos = {x: i for i, x in enumerate(classes)}
    gpos = {x: i for i, x in enumerate(combos)}
    k, n = len(classes), len(combos)

    def add(attr):
        out = {}
        for model in first.models:
            acc = np.zeros((n, k, k), dtype=getattr(first, attr)[model].dtype)
            for c in cubes:
                ci = np.array([cpos[x] for x in c.classes])
                gi = np.array([gpos[x] for x in c.combos], dtype=np.intp)
                np.add.at(acc, (gi[:, None, None], ci[None, :, None], ci[None, None, :]),
                          getattr(c, attr)[model])
            out[model] = acc
        return out

    dropped: dict = {}
    for c in cubes:
        for r, v in c.dropped.items():
            dropped[r] = dropped.get(r, 0) + v
    return MulticlassCube(
        classes=classes, columns=list(first.columns), combos=combos,
        tables=add("tables"), row_tables=add("row_tables"),
        weight_sq_tables=add("weight_sq_tables") if first.weighted else None,
        attribute_sets=list(first.attribute_sets), weighted=first.weighted,
        n_rows_read=sum(c.n_rows_read for c in cubes), dropped=dropped)


# ---------------------------------------------------------------------------
# In an engine
# ---------------------------------------------------------------------------
def engine_expression(table, spec: AuditSpec):
    """The multiclass count table as one Ibis expression: GROUP BY the
    sensitive columns (binned values as their range's lower edge), the
    label and every prediction, with ``__rows`` (rows) and, with a weight,
    the weight column (sum of weights) and ``__weight_squares``.  It runs
    unchanged on DuckDB, Spark and SQL databases."""
    from .engine import _bin_rep, weight_sums

    _check_spec(spec, list(table.columns))
    t = table
    mult = t[spec.counts].cast("float64") if spec.counts else None
    keys = {c: _bin_rep(t[c], spec.bins[c]) if c in spec.bins else t[c]
            for c in spec.sensitive}
    for c in (spec.label, *spec.predictions):
        keys[c] = t[c]
    agg = {_N: mult.sum() if mult is not None else t.count()}
    weight_sums(t, spec, mult, keys, agg)
    return t.group_by([e.name(k) for k, e in keys.items()]).aggregate(**agg)


def cube_from_engine(table, spec: AuditSpec) -> MulticlassCube:
    """Count an Ibis table in its engine (:func:`engine_expression`) and
    encode the records it returns: the same cube as from the rows."""
    records = engine_expression(table, spec).to_pyarrow().to_pandas()
    if spec.weight:
        gone = records.pop(_WNULL).astype(bool).to_numpy()
        records.loc[gone, spec.weight] = np.nan
        records.loc[gone, _W2] = np.nan
    records[_N] = records[_N].astype(np.int64)
    sub = dataclasses.replace(spec, counts=None)
    return multiclass_cube(records, sub, counts=_N, weight_sq=_W2 if spec.weight else None)


# ---------------------------------------------------------------------------
# Metrics, disparities, summaries
# ---------------------------------------------------------------------------
@dataclass
class MulticlassResult:
    """A multiclass audit: long tables, every record with its ``class``.

    Attributes
    ----------
    groups : DataFrame
        Per model x class x attribute x group (and ``(overall)``): the
        one-vs-rest cells ``tn, fp, fn, tp``, every registry metric with
        ``<metric>_ci_low`` / ``_ci_high``.
    disparities : DataFrame
        Per model x class x attribute x metric x group: reference, value,
        difference, ratio, verdict, intervals, test, p-values corrected over
        every test of the audit, significance.
    summary : DataFrame
        Per model x class x attribute: fairlearn's between-group summaries
        on the one-vs-rest decision, with intervals and verdict counts.
    worst : DataFrame
        Per model x attribute x summary: the class with the largest gap.
    group_summary : DataFrame
        Per model x attribute x group: overall accuracy and the macro
        averages of :data:`MACRO_METRICS`, with intervals.
    classes : list of str
    warnings : list of str
    """

    groups: pd.DataFrame
    disparities: pd.DataFrame
    summary: pd.DataFrame
    worst: pd.DataFrame
    group_summary: pd.DataFrame
    classes: list
    warnings: list


def _with_class(df: pd.DataFrame, pairs: list) -> pd.DataFrame:
    """Replace the integer one-vs-rest keys by ``model`` and ``class``."""
    key = df["model"].to_numpy()
    models = np.array([p[0] for p in pairs], dtype=object)
    classes = np.array([p[1] for p in pairs], dtype=object)
    out = df.drop(columns="model")
    out.insert(0, "class", classes[key.astype(np.intp)] if len(key) else classes[:0])
    out.insert(0, "model", models[key.astype(np.intp)] if len(key) else models[:0])
    return out


def _not_judged(cube: CountCube, pairs: list) -> dict:
    """One-vs-rest decisions whose rates all sit at 0 or 1: the class is
    predicted for no row, or for every row."""
    out = {}
    for key, cells in cube.row_cells.items():
        tn, fp, fn, tp = cells.sum(axis=0)
        n, selected = tn + fp + fn + tp, fp + tp
        if n == 0 or 0 < selected < n:
            continue
        model, name = pairs[key]
        out[key] = (f"the model {model!r} predicts the class {name!r} for "
                    f"{'every row' if selected == n else 'no row'}")
    return out


def multiclass_audit(cube: MulticlassCube, spec: AuditSpec) -> MulticlassResult:
    """Metrics, disparities, intervals, tests and summaries per class, from
    the confusion tables alone (one-vs-rest, through the binary machinery).

    ``spec`` gives the reference groups, tolerance, minimum group size,
    bootstrap, confidence, alpha and correction.  Disparities are computed
    for :data:`CLASS_METRICS`; the p-values of every class, model and
    attribute are corrected together.
    """
    bc, pairs, groups, unc = _class_groups(cube, spec)
    not_judged = _not_judged(bc, pairs)
    per_group = groups[groups["attribute"] != OVERALL].reset_index(drop=True)
    disp = disparities(per_group, spec, not_judged)
    disp = disp[disp["metric"].isin(CLASS_METRICS)].reset_index(drop=True)
    absent = _absent_class(disp, per_group, pairs)
    disp.loc[absent[0], "verdict"] = INSUFFICIENT
    disp.loc[absent[0], "verdict_reason"] = absent[1]
    disp = pd.concat([disp, unc.disparity_stats(disp, per_group)], axis=1)
    disp.loc[absent[0], "p_value"] = np.nan  # not judged: not one of the audit's tests
    disp.loc[absent[0], "test"] = ""
    summ = summary(per_group, disp, spec)
    summ = pd.concat([summ, unc.summary_intervals(summ)], axis=1)
    disp = finish_tests(disp, groups, spec, bc.weighted)
    sig = disp[(disp["verdict"] == "fail") & disp["significant"]].groupby(
        ["model", "attribute"], sort=False).size()
    summ["n_fail_significant"] = [int(sig.get((m, a), 0))
                                  for m, a in zip(summ["model"], summ["attribute"])]
    summ["n_fail_not_significant"] = summ["n_fail"] - summ["n_fail_significant"]
    groups, disp, summ = (_with_class(x, pairs) for x in (groups, disp, summ))
    warnings = [f"{reason[0].upper()}{reason[1:]}: none of its gaps for that class is judged."
                for reason in not_judged.values()]
    if cube.dropped:
        warnings.append(f"{sum(cube.dropped.values()):,} of {cube.n_rows_read:,} rows were "
                        "left out: " + ", ".join(f"{k}: {v:,}" for k, v in
                                                 cube.dropped.items()) + ".")
    return MulticlassResult(groups=groups, disparities=disp, summary=summ,
                            worst=worst_class(summ), group_summary=group_summary(cube, spec),
                            classes=list(cube.classes), warnings=warnings)


def _class_groups(cube: MulticlassCube, spec: AuditSpec):
    """The one-vs-rest cube, its keys, its group table (integer keys) with
    intervals, and the bootstrap replicates behind them."""
    bc, pairs = cube.binary_cube()
    groups = add_metrics(count_table(bc))
    unc = Uncertainty(bc.row_cells, bc.cells if bc.weighted else None, bc.attributes, spec,
                      weight_sq_cells=bc.weight_sq_cells, streams={k: k for k in bc.cells})
    groups = pd.concat([groups, unc.group_intervals(groups)], axis=1)
    return bc, pairs, groups, unc


def class_group_table(cube: MulticlassCube, spec: AuditSpec) -> pd.DataFrame:
    """The groups table of :func:`multiclass_audit` alone (per model x class
    x attribute x group: one-vs-rest cells, metrics, intervals), without
    disparities and tests."""
    _bc, pairs, groups, _unc = _class_groups(cube, spec)
    return _with_class(groups, pairs)


def _absent_class(disp: pd.DataFrame, per_group: pd.DataFrame, pairs: list):
    """Disparity rows whose class no row of the group (or of the reference)
    has as its true class, and the reason they are not judged."""
    have = per_group["tp"].to_numpy(dtype=float) + per_group["fn"].to_numpy(dtype=float)
    keys = zip(per_group["model"], per_group["attribute"], per_group["group"])
    present = {k: h > 0 for k, h in zip(keys, have)}
    g_in = np.array([present[k] for k in zip(disp["model"], disp["attribute"], disp["group"])],
                    dtype=bool).reshape(-1)
    r_in = np.array([present[k] for k in zip(disp["model"], disp["attribute"],
                                             disp["reference"])], dtype=bool).reshape(-1)
    rows = np.flatnonzero(~(g_in & r_in))
    reasons = []
    for i in rows:
        name = pairs[int(disp["model"].iat[i])][1]
        where = "this group" if not g_in[i] else "the reference group"
        reasons.append(f"the class {name!r} does not occur in {where} (no row has it as "
                       "its true class)")
    return disp.index[rows], reasons


def worst_class(summ: pd.DataFrame) -> pd.DataFrame:
    """Per model x attribute x summary, the class with the largest
    between-group difference (and its ratio); NaN and no class where no
    class's summary is defined."""
    recs = []
    for (model, attr), s in summ.groupby(["model", "attribute"], sort=False):
        for name in SUMMARY_NAMES:
            d = s[f"{name}_difference"].to_numpy(dtype=float)
            rec = {"model": model, "attribute": attr, "summary": name, "class": None,
                   "difference": np.nan, "ratio": np.nan, "n_classes_defined":
                   int((~np.isnan(d)).sum())}
            if rec["n_classes_defined"]:
                i = int(np.nanargmax(d))
                rec.update({"class": s["class"].iat[i], "difference": d[i],
                            "ratio": float(s[f"{name}_ratio"].iat[i])})
            recs.append(rec)
    return pd.DataFrame(recs, columns=["model", "attribute", "summary", "class", "difference",
                                       "ratio", "n_classes_defined"])


def class_metrics(tables: np.ndarray) -> dict[str, np.ndarray]:
    """Accuracy and the macro averages of :data:`MACRO_METRICS` from
    ``(..., k, k)`` confusion tables: arrays of the leading shape.

    A macro average is the mean over the classes where the one-vs-rest rate
    is defined (NaN where none is); the macro TPR is scikit-learn's
    ``balanced_accuracy_score``.
    """
    t = np.asarray(tables, dtype=float)
    k = t.shape[-1]
    total = t.sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.where(total > 0, np.trace(t, axis1=-2, axis2=-1) / total, np.nan)
    cells = np.stack([one_vs_rest(t, c) for c in range(k)], axis=-2)  # (..., k, 4)
    vals = metric_values(cells)
    out = {"accuracy": acc}
    for m in MACRO_METRICS:
        v = vals[m]
        n_def = (~np.isnan(v)).sum(axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"macro_{m}"] = np.where(n_def > 0, np.nansum(v, axis=-1) / n_def, np.nan)
    return out


def group_summary(cube: MulticlassCube, spec: AuditSpec) -> pd.DataFrame:
    """Per model x attribute x group (and overall): rows, weight, accuracy
    and macro-averaged rates, with intervals (``class`` is
    :data:`ALL_CLASSES`).

    Intervals: Wilson for the unweighted accuracy (a proportion of rows);
    otherwise bootstrap percentiles from multinomial draws of the whole
    confusion table per combination, so that the classes of one replicate
    come from the same resampled rows.
    """
    k = cube.n_classes
    attrs = cube.attributes()
    a = (1 - spec.confidence) / 2
    parts = []
    for mi, model in enumerate(cube.models):
        draws = None
        if spec.n_bootstrap > 0:
            rng = np.random.default_rng([spec.seed, 1_000_003, mi])
            rt = cube.row_tables[model].reshape(len(cube.combos), k * k)
            wt = cube.tables[model].reshape(rt.shape).astype(float) if cube.weighted else None
            sq = cube.weight_sq_tables[model].reshape(rt.shape) if cube.weighted else None
            draws = bootstrap_cells(rt, spec.n_bootstrap, rng, wt, sq)
        for name, inv, labels in attrs:
            g = len(labels)
            t = _sum_groups(cube.tables[model].astype(float), inv, g)
            n = _sum_groups(cube.row_tables[model], inv, g).sum(axis=(1, 2))
            vals = class_metrics(t)
            rec = {"model": model, "class": ALL_CLASSES, "attribute": name,
                   "group": list(labels), "n": n,
                   "weight": t.sum(axis=(1, 2))}
            reps = None
            if draws is not None:
                reps = class_metrics(aggregate(draws, inv, g).reshape(-1, g, k, k))
            for m, v in vals.items():
                rec[m] = v
                lo = hi = np.full(g, np.nan)
                if m == "accuracy" and not cube.weighted:
                    rows = _sum_groups(cube.row_tables[model], inv, g)
                    lo, hi = wilson_interval(np.trace(rows, axis1=1, axis2=2), n,
                                             spec.confidence)
                elif reps is not None:
                    lo, hi = quantiles(reps[m], (a, 1 - a))
                    lo, hi = np.where(np.isnan(v), np.nan, lo), np.where(np.isnan(v), np.nan, hi)
                rec[f"{m}_ci_low"], rec[f"{m}_ci_high"] = lo, hi
            parts.append(pd.DataFrame(rec))
    return pd.concat(parts, ignore_index=True)


def audit_multiclass(df: pd.DataFrame, spec: AuditSpec) -> MulticlassResult:
    """Count a table of rows (:func:`multiclass_cube`) and audit it
    (:func:`multiclass_audit`)."""
    return multiclass_audit(multiclass_cube(df, spec), spec)


__all__ = ["ALL_CLASSES", "CLASS_METRICS", "MACRO_METRICS", "MulticlassCube", "MulticlassResult",
           "audit_multiclass", "class_group_table", "class_metrics", "cube_from_engine", "engine_expression",
           "group_summary", "merge_cubes", "multiclass_audit", "multiclass_cube",
           "one_vs_rest", "worst_class"]
