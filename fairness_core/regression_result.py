"""A whole regression audit (a numeric outcome: a credit limit, a price, a
length of stay) from a table in memory or in an engine, as one result
object with the same protocol as :class:`fairness_core.audit.AuditResult`.

The rows are read once into sums per finest combination of the sensitive
columns (:mod:`fairness_core.regression`) and, in a second pass, into
binned counts per combination: the error ``prediction - label`` in
:data:`ERROR_BINS` bins, and the label in :data:`LABEL_BINS` bins with the
sums of the label and of the prediction in each (predicted against actual).
The bins' edges come from the overall mean and spread in the sums, so both
passes are one ``GROUP BY`` each in an engine and merge by addition.
Everything else (metrics with intervals, disparities and tests, summaries,
the bounded group loss, findings, distributions) is computed from those
small tables.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from . import __version__
from . import regression as rg
from .disparity import FAIL, INSUFFICIENT, PASS
from .errors import InputError, quote_list
from .findings import CORRECTION_NAMES, SEVERITY_ORDER
from .formatting import level, p_value
from .spec import INTERSECTION_SEP, AuditSpec
from .stats.tests import adjust_p
from .tolerance import Tolerance

OVERALL, ALL = rg.OVERALL, rg.ALL
#: Bins of the error between the overall mean error -/+ ERROR_SPREAD standard
#: deviations (the end bins hold the errors beyond them too).
ERROR_BINS, ERROR_SPREAD = 60, 4.0
#: Bins of the label for predicted against actual (mean -/+ LABEL_SPREAD sd).
LABEL_BINS, LABEL_SPREAD = 20, 3.0

#: Metric names for people, their short forms (tables) and what is better.
LABELS = {"mean_label": "Mean true value", "mean_prediction": "Mean prediction",
          "mean_error": "Mean error", "mae": "Mean absolute error",
          "rmse": "Root mean squared error", "r2": "R²"}
SHORT = {"mean_label": "mean true", "mean_prediction": "mean pred", "mean_error": "mean error",
         "mae": "MAE", "rmse": "RMSE", "r2": "R2"}
FORMULAS = {"mean_label": "sum(w * y) / sum(w)",
            "mean_prediction": "sum(w * yhat) / sum(w)",
            "mean_error": "sum(w * (yhat - y)) / sum(w)",
            "mae": "sum(w * |yhat - y|) / sum(w)",
            "rmse": "sqrt(sum(w * (yhat - y)^2) / sum(w))",
            "r2": "1 - sum(w * (yhat - y)^2) / sum(w * (y - mean y)^2)"}
BETTER = {"mean_label": None, "mean_prediction": None, "mean_error": "closer to 0",
          "mae": "lower", "rmse": "lower", "r2": "higher"}
EQUIVALENTS = {"mean_label": None, "mean_prediction": None, "mean_error": None,
               "mae": "sklearn.metrics.mean_absolute_error",
               "rmse": "sklearn.metrics.root_mean_squared_error",
               "r2": "sklearn.metrics.r2_score"}
INTERVALS = {
    "mean_label": "t-interval with Hall's skewness correction",
    "mean_prediction": "t-interval with Hall's skewness correction",
    "mean_error": "t-interval with Hall's skewness correction",
    "mae": "t-interval with Hall's skewness correction",
    "rmse": "Hall-corrected t-interval for the mean squared error (its upper end "
            "guarded for heavy tails), square-rooted",
    "r2": "t-interval for log(1 - R²) (delta method)"}


def metric_definitions() -> dict:
    """Each regression metric in plain language: label, meaning, formula,
    what is better, the interval method and the scikit-learn equivalent."""
    return {m: {"label": LABELS[m], "definition": rg.MEANINGS[m], "formula": FORMULAS[m],
                "better": BETTER[m], "judged_by_ratio": m in rg.JUDGED,
                "interval": INTERVALS[m], "test": rg.TESTS[m],
                "scikit_learn": EQUIVALENTS[m]} for m in rg.METRICS}


def bounded_loss_table(result) -> pd.DataFrame:
    """The worst group's error per model and attribute, as the dashboard and
    the report show it: ``Model, Attribute, Largest MAE, Largest RMSE``,
    each "group: value"."""
    b = result.bounded_group_loss

    def cells(value: str, group: str) -> list:
        return [f"{g}: {amount(v)}" for v, g in zip(b[value], b[group])]
    return pd.DataFrame({"Model": b["model"].to_numpy(), "Attribute": b["attribute"].to_numpy(),
                         "Largest MAE": cells("max_mae", "max_mae_group"),
                         "Largest RMSE": cells("max_rmse", "max_rmse_group")})


def amount(x) -> str:
    """A value in the label's unit, with three significant digits at least
    and thousands separators: ``1240.3`` -> ``"1,240"``, ``0.5234`` ->
    ``"0.523"``."""
    if x is None or (isinstance(x, float) and math.isnan(x)) or pd.isna(x):
        return "undefined"
    x = float(x)
    if math.isinf(x):
        return "unbounded"
    if x == 0:
        return "0"
    digits = max(0, 2 - int(math.floor(math.log10(abs(x)))))
    return f"{x:,.{min(digits, 6)}f}"


def lower_name(metric: str) -> str:
    """A metric's name inside a sentence ("mean absolute error", "R²")."""
    return LABELS[metric] if metric == "r2" else LABELS[metric].lower()


def metric_text(x, metric: str) -> str:
    return f"{float(x):.3f}" if metric == "r2" and not pd.isna(x) else amount(x)


# ---------------------------------------------------------------------------
# The result
# ---------------------------------------------------------------------------
@dataclass
class RegressionResult:
    """Everything one regression audit computed, with its spec and
    provenance.

    Attributes
    ----------
    groups : DataFrame
        One row per model x attribute x group (and ``(overall)``): ``n``,
        ``share``, ``weight`` and each metric of
        :data:`fairness_core.regression.METRICS` with ``_ci_low`` /
        ``_ci_high``.
    disparities : DataFrame
        One row per model x attribute x metric x non-reference group
        (:func:`fairness_core.regression.disparities`), p-values corrected
        over every test of the audit.
    summary : DataFrame
        Per model x attribute x metric: the largest gap and smallest ratio
        between groups, the worst and best group, verdict counts.
    bounded_group_loss : DataFrame
        Per model x attribute: the worst group's MAE and RMSE.
    distributions : dict of DataFrames
        ``errors`` (weight per model x attribute x group x error bin),
        ``error_quantiles`` (5th, 25th, 50th, 75th, 95th percentiles of the
        error per group, read off the bins) and ``predicted_vs_actual``
        (per label bin: rows, mean label, mean prediction).
    stats : dict model -> DataFrame
        The sums per finest combination (the counts every number is
        computed from).
    """

    spec: AuditSpec
    provenance: dict
    groups: pd.DataFrame
    disparities: pd.DataFrame
    summary: pd.DataFrame
    bounded_group_loss: pd.DataFrame
    distributions: dict
    findings: list
    warnings: list = field(default_factory=list)
    stats: dict = field(default_factory=dict, repr=False)

    task = "regression"

    @property
    def group_metrics(self) -> pd.DataFrame:
        return self.groups[self.groups["attribute"] != OVERALL].reset_index(drop=True)

    @property
    def overall(self) -> pd.DataFrame:
        return self.groups[self.groups["attribute"] == OVERALL].reset_index(drop=True)

    @property
    def labelled(self) -> bool:
        return True

    @property
    def unavailable(self) -> dict:
        return {}

    @property
    def scores(self) -> dict:
        return {}

    def group_order(self, attribute: str) -> list:
        g = self.groups
        first = g[(g["model"] == self.spec.models[0]) & (g["attribute"] == attribute)]
        return list(first["group"])

    @property
    def failed(self) -> bool:
        """True when a ratio fails the tolerance or a group's mean error
        differs significantly and notably (a high or medium finding)."""
        fails = bool((self.disparities["verdict"] == FAIL).any()) if len(self.disparities) \
            else False
        return fails or any(f["kind"] == "error_gap" and f["severity"] in ("high", "medium")
                            for f in self.findings)

    def group_table(self) -> pd.DataFrame:
        """The per-group table as exported to CSV."""
        return self.groups[_group_columns(self.groups)]

    def export_tables(self, suppress_below: int = 0) -> dict[str, pd.DataFrame]:
        """The tables as exported (CSV, XLSX): groups, disparities, summary
        and bounded group loss; with suppression, the summaries are computed
        again without the suppressed groups."""
        from .exports import suppress_small

        summ, bgl = self.summary, self.bounded_group_loss
        if suppress_below and suppress_below > 1:
            g = self.group_metrics[self.group_metrics["n"] >= suppress_below]
            d = self.disparities
            d = d[(d["n"] >= suppress_below) & (d["reference_n"] >= suppress_below)]
            summ = _per_model(g, lambda gm, m: rg.summary(gm, d[d["model"] == m]))
            bgl = _per_model(g, lambda gm, m: rg.bounded_group_loss(gm))
            note = f"computed without the groups of fewer than {suppress_below} rows"
            summ, bgl = summ.assign(note=note), bgl.assign(note=note)
        return {"groups": suppress_small(self.group_table(), suppress_below, ("n",)),
                "disparities": suppress_small(self.disparities, suppress_below),
                "summary": summ, "bounded_group_loss": bgl}

    def to_dict(self) -> dict:
        """The JSON contract (undefined numbers are ``None``)."""
        from .audit import _clean, _records

        cols = _group_columns(self.groups)
        return {
            "task": self.task,
            "spec": self.spec.to_dict(),
            "provenance": self.provenance,
            "overall": _records(self.overall[cols].drop(columns=["attribute", "group"])),
            "groups": _records(self.group_metrics[cols]),
            "disparities": _records(self.disparities),
            "summary": _records(self.summary),
            "bounded_group_loss": _records(self.bounded_group_loss),
            "findings": [_clean(f) for f in self.findings],
            "metrics": metric_definitions(),
            "warnings": list(self.warnings),
            "distributions": {k: _records(v) for k, v in self.distributions.items()},
        }

    def to_json(self, indent: int | None = 2) -> str:
        from .audit import AuditResult
        return AuditResult.to_json(self, indent)


def _group_columns(groups: pd.DataFrame) -> list:
    cols = ["model", "attribute", "group", "n", "share", "weight"]
    for m in rg.METRICS:
        cols += [m, f"{m}_ci_low", f"{m}_ci_high"]
    return [c for c in cols if c in groups]


def _per_model(groups: pd.DataFrame, fn) -> pd.DataFrame:
    frames = []
    for model, g in groups.groupby("model", sort=False):
        out = fn(g.drop(columns="model").reset_index(drop=True), model)
        out.insert(0, "model", model)
        frames.append(out)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


# ---------------------------------------------------------------------------
# Checks of the spec
# ---------------------------------------------------------------------------
def check_spec(spec: AuditSpec) -> None:
    """What does not apply to a regression audit is a clear InputError."""
    if spec.task != "regression":
        raise ValueError("not a regression spec")
    problems = [
        (spec.positive is not None, "positive", "A positive class (--positive)",
         "a regression audit compares numbers; there is no positive class"),
        (spec.threshold is not None, "threshold", "A score threshold (--threshold)",
         "a regression audit has no score threshold"),
        (bool(spec.prediction_positive), "prediction_positive",
         "Positive decision values (--prediction-positive)",
         "a regression audit compares predicted numbers, not decisions"),
        (spec.counts is not None, "counts", "A count column (--counts)",
         "a regression audit reads the rows themselves (or an engine's sums of them)"),
        (spec.reference_strategy == "best", "reference",
         "The best-off group as reference (--reference-strategy best)",
         "a regression audit compares each group with the largest group or a named one"),
    ]
    for bad, fld, option, why in problems:
        if bad:
            raise InputError(f"{option} does not apply here: {why}. Leave it out, or audit "
                             "yes/no decisions instead (--task binary).", field=fld)


# ---------------------------------------------------------------------------
# Rows in memory -> sums and binned counts per finest combination
# ---------------------------------------------------------------------------
def _numbers(series: pd.Series, col: str, role: str) -> np.ndarray:
    from .prepare import _numeric
    return _numeric(series, col, role, role)


def _combos(df: pd.DataFrame, spec: AuditSpec) -> tuple[np.ndarray, pd.DataFrame]:
    """Each row's finest combination of the sensitive columns (binned as
    the spec says), and each combination's group labels."""
    from .prepare import _encode_sensitive

    encoded = [_encode_sensitive(df[c], c, spec) for c in spec.sensitive]
    labels = [np.asarray(levels, dtype=object) for _, _, levels in encoded]
    total = int(np.prod([len(lab) for lab in labels], dtype=np.int64))
    kind = np.int32 if total < 1 << 31 else np.int64
    key = np.zeros(len(df), dtype=kind)
    for codes, lut, levels in encoded:
        # code -1 (missing) reads the last level, "(missing)"
        ext = np.concatenate([np.asarray(lut, dtype=kind), [len(levels) - 1]]).astype(kind)
        if len(levels) > 1:
            key *= len(levels)
        key += ext[codes]
    if total <= 1 << 22:
        present = np.flatnonzero(np.bincount(key, minlength=total))
        if len(present) == total:  # every combination is present: the key is the code
            codes = key
        else:
            lut = np.full(total, -1, dtype=kind)
            lut[present] = np.arange(len(present), dtype=kind)
            codes = lut[key]
    else:
        present, codes = np.unique(key, return_inverse=True)
    parts, rest = [], present
    for lab in reversed(labels):
        parts.append(lab[rest % len(lab)])
        rest = rest // len(lab)
    return codes.reshape(-1), pd.DataFrame(dict(zip(spec.sensitive, reversed(parts))))


def _edges(mean: float, sd: float, spread: float, k: int) -> np.ndarray:
    if not np.isfinite(sd) or sd <= 0:
        sd = max(abs(mean), 1.0) * 1e-3
    return np.linspace(mean - spread * sd, mean + spread * sd, k + 1)


def bin_edges(stats: pd.DataFrame) -> dict:
    """The error and label bins' edges from a statistics table (its
    overall mean and standard deviation)."""
    tot = _total(stats)
    W = float(tot["weight"].iloc[0])
    me = float(tot["sum_e"].iloc[0]) / W
    sde = math.sqrt(max(float(tot["sum_e2"].iloc[0]) / W - me * me, 0.0))
    my = float(tot["sum_y"].iloc[0]) / W
    sdy = math.sqrt(max(float(tot["sum_y2"].iloc[0]) / W - my * my, 0.0))
    shift = float(tot["shift"].iloc[0])
    return {"error": _edges(me, sde, ERROR_SPREAD, ERROR_BINS),
            "label": _edges(my + shift, sdy, LABEL_SPREAD, LABEL_BINS)}


def _total(stats: pd.DataFrame) -> pd.DataFrame:
    s = rg.reshift(stats, float(stats["shift"].iloc[0]))
    agg = rg._aggregate(s, np.zeros(len(s), dtype=np.intp), 1)
    return pd.DataFrame(agg)


def _bin_index(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """0 .. k-1 (values beyond the ends in the end bins; no value is
    missing here)."""
    k = len(edges) - 1
    i = x - edges[0]
    i *= k / (edges[-1] - edges[0])
    np.clip(i, 0, k - 1, out=i)
    return i.astype(np.int64)  # at or above 0: truncation is the floor


def _binned(codes, n_codes, y, p, w, edges) -> dict:
    """The binned counts per code: errors (weight per error bin) and
    predicted against actual (rows, weight, weighted sums of label and
    prediction per label bin), as long tables with a ``code`` column.
    Read in blocks of rows that stay in the processor's cache."""
    ke, ky = len(edges["error"]) - 1, len(edges["label"]) - 1
    we, rows_y = np.zeros(n_codes * ke), np.zeros(n_codes * ky)
    wy, sy, sp = np.zeros(n_codes * ky), np.zeros(n_codes * ky), np.zeros(n_codes * ky)
    codes = np.asarray(codes, dtype=np.int64)
    for start in range(0, len(y), rg._BLOCK):
        end = start + rg._BLOCK
        c, yb, pb = codes[start:end], y[start:end], p[start:end]
        wb = None if w is None else w[start:end]
        ie = _bin_index(pb - yb, edges["error"])
        ie += c * ke
        iy = _bin_index(yb, edges["label"])
        iy += c * ky
        we += np.bincount(ie, weights=wb, minlength=n_codes * ke)
        rows_y += np.bincount(iy, minlength=n_codes * ky)
        if wb is not None:
            wy += np.bincount(iy, weights=wb, minlength=n_codes * ky)
        sy += np.bincount(iy, weights=yb if wb is None else yb * wb, minlength=n_codes * ky)
        sp += np.bincount(iy, weights=pb if wb is None else pb * wb, minlength=n_codes * ky)
    if w is None:
        wy = rows_y.copy()
    errors = pd.DataFrame({"code": np.repeat(np.arange(n_codes), ke),
                           "bin": np.tile(np.arange(ke), n_codes), "weight": we})
    pva = pd.DataFrame({"code": np.repeat(np.arange(n_codes), ky),
                        "bin": np.tile(np.arange(ky), n_codes),
                        "n": rows_y.astype(np.int64), "weight": wy, "sum_y": sy,
                        "sum_yhat": sp})
    return {"errors": errors[errors["weight"] > 0].reset_index(drop=True),
            "predicted_vs_actual": pva[pva["n"] > 0].reset_index(drop=True)}


@dataclass
class Counted:
    """What the rows were read into: per model, the sums per finest
    combination (group label columns first) and the binned counts (group
    label columns, ``bin`` ...), the bins' edges, and the rows."""

    stats: dict
    binned: dict
    edges: dict
    rows_read: int
    rows_used: int
    dropped: dict


def count_frame(df: pd.DataFrame, spec: AuditSpec) -> Counted:
    """Read a DataFrame's rows into the sums and binned counts of every
    model (rows with a missing or non-numeric label, prediction or weight
    are left out, the same rows for every model)."""
    missing = [c for c in spec.columns() if c not in df.columns]
    if missing:
        raise InputError(f"Column {quote_list(missing)} is not in the data. Its columns are "
                         f"{quote_list(list(map(str, df.columns)), limit=40)}.",
                         field="columns", column=missing[0])
    y = _numbers(df[spec.label], spec.label, "label")
    preds = {m: _numbers(df[m], m, "prediction") for m in spec.predictions}
    w = None if not spec.weight else _numbers(df[spec.weight], spec.weight, "weight")
    codes, combos = _combos(df, spec)
    ok = np.isfinite(y)
    dropped = {}
    if (~ok).any():
        dropped["label missing or not a number"] = int((~ok).sum())
    for m, p in preds.items():
        bad = ok & ~np.isfinite(p)
        if bad.any():
            dropped[f"prediction {m!r} missing or not a number"] = int(bad.sum())
        ok &= np.isfinite(p)
    if w is not None:
        bad = ok & ~np.isfinite(w)
        if bad.any():
            dropped["weight missing"] = int(bad.sum())
        ok &= np.isfinite(w)
        if (w[ok] < 0).any():
            raise InputError(f"The weight column {spec.weight!r} has negative values; sample "
                             "weights must be zero or more.", field="weight",
                             column=spec.weight)
    n_read = len(df)
    if not ok.all():
        y, codes = y[ok], codes[ok]
        preds = {m: p[ok] for m, p in preds.items()}
        w = None if w is None else w[ok]
    if not len(y):
        raise InputError(f"No row has both a numeric label ({spec.label!r}) and a numeric "
                         "prediction for every model"
                         f"{' and a weight' if spec.weight else ''}: there is nothing to "
                         "audit. Check that the right columns are chosen.", field="label",
                         column=spec.label)
    shift = float(y.mean())
    k = len(combos)
    stats, binned = {}, {}
    for m, p in preds.items():
        s = rg.combo_stats(y, p, codes, k, w, shift)
        stats[m] = rg._with_groups(combos, s)
    edges = bin_edges(stats[spec.predictions[0]])
    for m, p in preds.items():
        b = _binned(codes, k, y, p, w, edges)
        binned[m] = {name: _labelled(t, combos) for name, t in b.items()}
    return Counted(stats, binned, edges, n_read, int(len(y)), dropped)


def _labelled(table: pd.DataFrame, combos: pd.DataFrame) -> pd.DataFrame:
    """A binned table with each code's group labels in place of the code."""
    lab = combos.iloc[table["code"].to_numpy()].reset_index(drop=True)
    return pd.concat([lab, table.drop(columns="code").reset_index(drop=True)], axis=1)


# ---------------------------------------------------------------------------
# Rows in an engine -> the same tables (three queries)
# ---------------------------------------------------------------------------
def count_engine(table, spec: AuditSpec, *, name: str = "table") -> Counted:
    """The sums and binned counts of an Ibis table (DuckDB, Spark, a SQL
    database): one aggregate for the rows and the label's mean, one
    ``GROUP BY`` per model for the sums (:func:`fairness_core.regression.
    ibis_stats`), one for the binned counts.  No row leaves the engine."""
    import ibis

    from .engine import _bin_rep, _finite
    from .prepare import group_labels

    missing = [c for c in spec.columns() if c not in table.columns]
    if missing:
        raise InputError(f"Column {quote_list(missing)} is not in {name!r}. The columns there "
                         f"are: {quote_list(list(table.columns), limit=40)}.",
                         field="columns", column=missing[0])
    t = table
    for role, cols in (("label", [spec.label]), ("prediction", spec.predictions),
                       ("weight", [spec.weight] if spec.weight else [])):
        for c in cols:
            if not t[c].type().is_numeric():
                raise InputError(f"The {role} column {c!r} must hold numbers for a "
                                 "regression audit; it holds text. Choose a numeric column "
                                 "(or convert it).", field=role, column=c)
    cols = [spec.label, *spec.predictions, *([spec.weight] if spec.weight else [])]
    sens = {c: (_bin_rep(t[c], spec.bins[c]) if c in spec.bins else t[c]) for c in spec.sensitive}
    base = t.mutate(**{f"__g_{i}": e for i, e in enumerate(sens.values())})
    keep = ibis.literal(True)
    for c in cols:
        keep &= _finite(base[c]).notnull()
    first = base.aggregate(rows=base.count(), kept=base.count(where=keep),
                           mean_y=base[spec.label].cast("float64").mean(where=keep),
                           w_min=(_finite(base[spec.weight]).min() if spec.weight
                                  else ibis.literal(0.0))).execute().iloc[0]
    n_read, n_used = int(first["rows"]), int(first["kept"])
    if n_read == 0:
        raise InputError(f"{name!r} has no rows.", field="file")
    if spec.weight and pd.notna(first["w_min"]) and first["w_min"] < 0:
        raise InputError(f"The weight column {spec.weight!r} has negative values; sample "
                         "weights must be zero or more.", field="weight", column=spec.weight)
    if n_used == 0:
        raise InputError(f"No row has both a numeric label ({spec.label!r}) and a numeric "
                         "prediction for every model: there is nothing to audit. Check that "
                         "the right columns are chosen.", field="label", column=spec.label)
    shift = float(first["mean_y"])
    kept = base.filter(keep)
    gcols = [f"__g_{i}" for i in range(len(spec.sensitive))]

    def labels(frame: pd.DataFrame) -> pd.DataFrame:
        out = frame.drop(columns=gcols)
        for i, c in enumerate(spec.sensitive):
            out.insert(i, c, group_labels(frame[gcols[i]], c, spec))
        return out

    stats = {}
    for m in spec.predictions:
        expr = rg.ibis_stats(kept, spec.label, m, gcols, weight=spec.weight, shift=shift)
        raw = labels(expr.execute())
        stats[m] = rg.from_engine(raw, spec.sensitive)
    edges = bin_edges(stats[spec.predictions[0]])
    binned = {}
    y = kept[spec.label].cast("float64")
    w = kept[spec.weight].cast("float64") if spec.weight else None

    def index(x, e):
        k = len(e) - 1
        width = (e[-1] - e[0]) / k
        i = ((x - float(e[0])) / width).floor()
        return ibis.greatest(ibis.least(i, k - 1), 0).cast("int64")

    for m in spec.predictions:
        p = kept[m].cast("float64")
        err = kept.group_by([*gcols, index(p - y, edges["error"]).name("bin")]).aggregate(
            weight=(w.sum() if w is not None else kept.count().cast("float64")))
        pva = kept.group_by([*gcols, index(y, edges["label"]).name("bin")]).aggregate(
            n=kept.count(), weight=(w.sum() if w is not None else kept.count().cast("float64")),
            sum_y=(y * w).sum() if w is not None else y.sum(),
            sum_yhat=(p * w).sum() if w is not None else p.sum())
        binned[m] = {"errors": _merge_labels(labels(err.execute()), spec.sensitive),
                     "predicted_vs_actual": _merge_labels(labels(pva.execute()),
                                                          spec.sensitive)}
    dropped = {"label, prediction or weight missing or not a number": n_read - n_used} \
        if n_read > n_used else {}
    return Counted(stats, binned, edges, n_read, n_used, dropped)


def _merge_labels(frame: pd.DataFrame, sensitive) -> pd.DataFrame:
    """Binned counts whose group values read as one label, added up."""
    keys = [*sensitive, "bin"]
    return frame.groupby(keys, sort=False, dropna=False).sum(numeric_only=True).reset_index()


def audit_engine(data, spec: AuditSpec, *, table: str | None = None, engine: str = "duckdb",
                 spark_master: str = "local[*]") -> "RegressionResult":
    """The regression audit of a file, folder, glob or database table,
    counted where it lives (see :func:`fairness_core.engine.open_table`)."""
    from .engine import _hash_files, _open, is_url

    check_spec(spec)
    t, info, files = _open(data, table=table, engine=engine, spark_master=spark_master)
    try:
        counted = count_engine(t, spec, name=info.name)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"The {engine} engine could not count {info.name!r} "
                         f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]}).",
                         field="file") from None
    if files:
        info.sha256 = _hash_files(files)
    info.engine = engine if not is_url(str(data)) else str(data).split("://", 1)[0]
    return audit_counted(counted, spec, info)


def audit_frame(df: pd.DataFrame, info=None, *, spec: AuditSpec) -> "RegressionResult":
    """The regression audit of a table already read."""
    check_spec(spec)
    return audit_counted(count_frame(df, spec), spec, info)


# ---------------------------------------------------------------------------
# Counts -> the result
# ---------------------------------------------------------------------------
def _attribute_frames(binned: pd.DataFrame, spec: AuditSpec, value_cols: list) -> pd.DataFrame:
    """Binned counts per finest combination summed up to every attribute,
    intersection and the whole table (one ``np.bincount`` per column)."""
    k = int(binned["bin"].max()) + 1 if len(binned) else 1
    bins = binned["bin"].to_numpy(dtype=np.int64)
    vals = {c: binned[c].to_numpy(dtype=float) for c in value_cols}
    labels = {c: binned[c].astype(object).to_numpy() for c in spec.sensitive}
    frames = []
    sets = [(INTERSECTION_SEP.join(a), a) for a in spec.attribute_sets()] + [(OVERALL, ())]
    for name, attr in sets:
        if not attr:
            keys = np.full(len(binned), ALL, dtype=object)
        elif len(attr) == 1:
            keys = labels[attr[0]]
        else:
            keys = np.array([INTERSECTION_SEP.join(t) for t in zip(*(labels[c] for c in attr))],
                            dtype=object)
        codes, uniq = pd.factorize(keys)
        g = len(uniq)
        idx = codes.astype(np.int64) * k + bins
        out = {c: np.bincount(idx, weights=v, minlength=g * k) for c, v in vals.items()}
        frame = pd.DataFrame({"attribute": name, "group": np.repeat(np.asarray(uniq, dtype=object),
                                                                    k),
                              "bin": np.tile(np.arange(k), g), **out})
        frames.append(frame[frame[value_cols[0]] > 0])
    return pd.concat(frames, ignore_index=True)


def _quantiles(errors: pd.DataFrame, edges: np.ndarray) -> pd.DataFrame:
    """Percentiles of the error per group from its binned weights (linear
    inside a bin), for every group at once."""
    names = {"p05": 0.05, "p25": 0.25, "median": 0.5, "p75": 0.75, "p95": 0.95}
    key = ["model", "attribute", "group"]
    e = errors[errors["weight"] > 0]
    gid, uniq = pd.factorize(pd.MultiIndex.from_frame(e[key]))
    order = np.lexsort((e["bin"].to_numpy(), gid))
    gid = gid[order]
    b = e["bin"].to_numpy()[order]
    w = e["weight"].to_numpy(dtype=float)[order]
    cum = np.cumsum(w)
    g = len(uniq)
    total = np.bincount(gid, weights=w, minlength=g)
    last = np.searchsorted(gid, np.arange(g), side="right") - 1
    start = cum[last] - total  # the cumulative weight before each group
    out = pd.DataFrame(list(uniq), columns=key)
    for nm, q in names.items():
        target = start + q * total
        i = np.minimum(np.searchsorted(cum, target, side="left"), last)
        before = cum[i] - w[i]
        frac = np.clip((target - before) / np.where(w[i] > 0, w[i], 1.0), 0.0, 1.0)
        out[nm] = edges[b[i]] + frac * (edges[b[i] + 1] - edges[b[i]])
    return out


def distributions(counted: Counted, spec: AuditSpec) -> dict:
    """The binned error counts, their percentiles per group and predicted
    against actual per label bin, for every model x attribute x group."""
    ee, ey = counted.edges["error"], counted.edges["label"]
    errs, pvas = [], []
    for m in spec.predictions:
        e = _attribute_frames(counted.binned[m]["errors"], spec, ["weight"])
        e.insert(0, "model", m)
        errs.append(e)
        p = _attribute_frames(counted.binned[m]["predicted_vs_actual"], spec,
                              ["n", "weight", "sum_y", "sum_yhat"])
        p.insert(0, "model", m)
        pvas.append(p)
    errors = pd.concat(errs, ignore_index=True)
    errors = errors[errors["weight"] > 0].reset_index(drop=True)
    b = errors["bin"].to_numpy()
    errors.insert(4, "error_low", ee[b])
    errors.insert(5, "error_high", ee[b + 1])
    pva = pd.concat(pvas, ignore_index=True)
    pva = pva[pva["weight"] > 0].reset_index(drop=True)
    b = pva["bin"].to_numpy()
    pva.insert(4, "label_low", ey[b])
    pva.insert(5, "label_high", ey[b + 1])
    pva["mean_label"] = pva["sum_y"] / pva["weight"]
    pva["mean_prediction"] = pva["sum_yhat"] / pva["weight"]
    pva = pva.drop(columns=["sum_y", "sum_yhat"])
    return {"errors": errors, "error_quantiles": _quantiles(errors, ee),
            "predicted_vs_actual": pva}


#: The disparity table's columns and types (for an audit with nothing to compare).
DISPARITY_COLUMNS = {
    "model": object, "attribute": object, "metric": object, "group": object,
    "reference": object, "reference_choice": object, "n": np.int64, "reference_n": np.int64,
    "value": float, "reference_value": float, "difference": float,
    "difference_ci_low": float, "difference_ci_high": float, "ratio": float,
    "verdict": object, "verdict_reason": object, "test": object, "p_value": float,
    "p_value_adjusted": float, "significant": bool}


def audit_counted(counted: Counted, spec: AuditSpec, info=None) -> RegressionResult:
    """Everything after reading the rows: metrics with intervals per group,
    disparities with tests (corrected over every model), summaries, the
    bounded group loss, distributions and findings."""
    from .audit import library_versions

    attrs = spec.attribute_sets()
    groups, disps = [], []
    for m in spec.predictions:
        table = rg.group_stats(counted.stats[m], spec.sensitive, attrs)
        g = rg.group_metrics(table, spec.confidence)
        d = rg.disparities(g, reference=spec.reference, tolerance=spec.tolerance,
                           min_group_size=spec.min_group_size, alpha=spec.alpha,
                           correction=spec.correction, confidence=spec.confidence)
        g.insert(0, "model", m)
        d.insert(0, "model", m)
        groups.append(g)
        disps.append(d)
    groups = pd.concat(groups, ignore_index=True)
    total = groups.loc[groups["attribute"] == OVERALL, "n"].iloc[0]
    groups.insert(groups.columns.get_loc("n") + 1, "share", groups["n"] / total)
    groups = groups.drop(columns=[c for c in rg.STAT_COLUMNS if c not in ("n", "weight")])
    disp = pd.concat(disps, ignore_index=True)
    if not len(disp):  # one group per attribute: nothing to compare, the columns stay
        disp = pd.DataFrame({c: pd.Series(dtype=t) for c, t in DISPARITY_COLUMNS.items()})
    if len(disp):  # every test of the audit corrected together
        disp["p_value_adjusted"] = adjust_p(disp["p_value"].to_numpy(dtype=float),
                                            spec.correction)
        disp["significant"] = np.where(np.isnan(disp["p_value_adjusted"]), False,
                                       disp["p_value_adjusted"] < spec.alpha)
    per = groups[groups["attribute"] != OVERALL]
    summ = _per_model(per, lambda g, m: rg.summary(g, disp[disp["model"] == m]))
    for c in ("n_fail", "n_pass", "n_insufficient", "n_significant"):
        if c not in summ:
            summ[c] = 0
    bgl = _per_model(per, lambda g, m: rg.bounded_group_loss(g))
    dist = distributions(counted, spec)
    order = {k: i for i, k in enumerate(zip(groups["model"], groups["attribute"],
                                            groups["group"]))}
    for name, t in dist.items():  # in the groups' order, then by bin
        pos = np.fromiter((order[k] for k in zip(t["model"], t["attribute"], t["group"])),
                          dtype=np.int64, count=len(t))
        keys = (t["bin"].to_numpy(), pos) if "bin" in t else (pos,)
        dist[name] = t.iloc[np.lexsort(keys)].reset_index(drop=True)
    warnings = list(info.warnings) if info is not None else []
    if counted.dropped:
        warnings.append(f"{counted.rows_read - counted.rows_used:,} of {counted.rows_read:,} "
                        "rows were left out: " + "; ".join(
                            f"{k}: {v:,}" for k, v in counted.dropped.items()) + ".")
    first = per[per["model"] == spec.predictions[0]]
    for attr, k in first.groupby("attribute", sort=False).size().items():
        if k < 2:
            warnings.append(f"{attr} has a single group in the rows audited: there is no "
                            "other group to compare it with.")
    small = per[(per["n"] < spec.min_group_size) & (per["model"] == spec.predictions[0])]
    for attr, g in small.groupby("attribute", sort=False):
        warnings.append(f"{attr}: {len(g)} group(s) have fewer than {spec.min_group_size} rows "
                        f"and get no pass/fail verdict ({', '.join(map(repr, g['group'][:5]))}"
                        f"{' ...' if len(g) > 5 else ''}).")
    provenance = {
        "task": "regression",
        "input": info.to_dict() if info is not None else None,
        "rows_read": counted.rows_read,
        "rows_used": counted.rows_used,
        "rows_dropped": counted.rows_read - counted.rows_used,
        "dropped_reasons": dict(counted.dropped),
        "label": spec.label,
        "positive_decision": spec.positive_decision,
        "higher_prediction_is": "a benefit" if spec.positive_decision == "benefit"
        else "a harm",
        "weighted": spec.weight is not None,
        "statistics": {"intervals": "analytic (see metrics); no bootstrap",
                       "confidence": spec.confidence, "alpha": spec.alpha,
                       "correction": spec.correction,
                       "tests": int(disp["p_value"].notna().sum()) if len(disp) else 0},
        "bins": {"error_edges": [float(x) for x in counted.edges["error"]],
                 "label_edges": [float(x) for x in counted.edges["label"]]},
        "tool": "fairness_core",
        "tool_version": __version__,
        "library_versions": library_versions(),
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    found = regression_findings(disp, groups, spec)
    return RegressionResult(spec=spec, provenance=provenance, groups=groups, disparities=disp,
                            summary=summ, bounded_group_loss=bgl, distributions=dist,
                            findings=found, warnings=warnings, stats=dict(counted.stats))


# ---------------------------------------------------------------------------
# Findings
# ---------------------------------------------------------------------------
def _significance(r, n_tests: int, correction: str) -> str:
    padj = getattr(r, "p_value_adjusted", float("nan"))
    if padj is None or math.isnan(padj):
        return "no significance test was possible"
    corr = CORRECTION_NAMES.get(correction, correction)
    p = f"adjusted p = {p_value(padj)}" if padj >= 1e-4 else "adjusted p < 0.0001"
    if r.significant:
        return f"significant after {corr} correction for {n_tests:,} tests, {p}"
    return f"not significant after {corr} correction for {n_tests:,} tests ({p})"


def _higher(spec) -> str:
    return "benefit" if spec.positive_decision == "benefit" else "harm"


def error_gap_statement(r, spec, label: str, n_tests: int, mean_label: tuple) -> tuple:
    """The sentence for a gap in mean error (row ``r`` of the disparity
    table): who the model under- or over-predicts for, by how much, and who
    that disadvantages.  Returns ``(statement, disadvantaged side)``."""
    who = f"{r.attribute} = {r.group!r}"
    ref = f"{r.attribute} = {r.reference!r}"
    gap = float(r.difference)
    verb = "under-predicts" if gap < 0 else "over-predicts"
    lo, hi = ((r.difference_ci_low, r.difference_ci_high) if gap >= 0
              else (-r.difference_ci_high, -r.difference_ci_low))
    ci = f"{level(spec.confidence)} CI {amount(lo)} to {amount(hi)}"
    text = (f"The model {verb} {label} for {who} by {amount(abs(gap))} on average ({ci}) "
            f"relative to {ref} (mean error {amount(r.value)} vs {amount(r.reference_value)}; "
            f"mean true {label} {amount(mean_label[0])} vs {amount(mean_label[1])}; n = "
            f"{int(r.n):,} vs {int(r.reference_n):,}; "
            f"{_significance(r, n_tests, spec.correction)}).")
    benefit = _higher(spec) == "benefit"
    # benefit: a lower prediction (relative to the truth) disadvantages
    group_loses = (gap < 0) == benefit
    side = "group" if group_loses else "reference"
    loser = who if group_loses else ref
    low_high = "lower" if benefit else "higher"
    text += (f" A {low_high} {label} is a disadvantage for the person, so the gap "
             f"disadvantages people with {loser}.")
    if not r.significant:
        text += " It may be noise."
    return text, side


def ratio_statement(r, spec, label: str, n_tests: int, band: Tolerance) -> tuple:
    """The sentence for a judged metric outside the tolerance band."""
    who = f"{r.attribute} = {r.group!r}"
    ref = f"{r.attribute} = {r.reference!r}"
    name = lower_name(r.metric)
    vals = (f"{metric_text(r.value, r.metric)} vs {metric_text(r.reference_value, r.metric)}; "
            f"n = {int(r.n):,} vs {int(r.reference_n):,}; "
            f"{_significance(r, n_tests, spec.correction)}")
    if r.reference_value == 0:
        head = f"The {name} of {who} is {metric_text(r.value, r.metric)} while {ref} " \
               "is at 0"
    else:
        head = f"The {name} for {who} is {r.ratio:.2f} times that of {ref}"
    text = f"{head} ({vals}). {band.fail_sentence()}"
    side = None
    if r.metric in ("mae", "rmse"):
        side = "group" if r.value > r.reference_value else "reference"
        loser = who if side == "group" else ref
        text += f" The model's misses are larger for people with {loser}."
    elif r.metric == "r2":
        side = "group" if r.value < r.reference_value else "reference"
        loser = who if side == "group" else ref
        text += f" The model explains less of the variation in {label} for people with {loser}."
    elif r.metric == "mean_prediction":
        benefit = _higher(spec) == "benefit"
        group_lower = r.value < r.reference_value
        side = "group" if group_lower == benefit else "reference"
        loser = who if side == "group" else ref
        text += (f" People with {loser} are predicted a {'lower' if benefit else 'higher'} "
                 f"{label} on average; compare the mean true values and the mean error "
                 "before calling it unfair (the true values may differ too).")
    if not r.significant:
        text += " It may be noise."
    return text, side


def _prefixed(text: str, model: str, many: bool) -> str:
    return f"Model {model!r}: {text}" if many else text


def regression_findings(disp: pd.DataFrame, groups: pd.DataFrame, spec) -> list[dict]:
    """Statements, most severe first, each with the numbers behind it.

    - A gap in **mean error** (signed, no ratio) is a finding when it is
      significant after correction (``medium``; ``high`` when it is also at
      least ``1 - tolerance`` of the reference group's mean true value, e.g.
      20% for a tolerance of 0.8), or when it is that large but not
      significant (``low``: it may be noise).  The statement says whom the
      model under- or over-predicts for, and whom that disadvantages given
      whether a higher prediction is a benefit or a harm for the person.
    - A **ratio** of mean prediction, MAE, RMSE or R² outside the tolerance
      band is a finding with the binary audit's severity (``high``,
      ``medium``, ``low``).
    - ``info``: attributes where nothing failed, and groups too small to
      judge.
    """
    band = Tolerance(spec.tolerance)
    label = spec.label
    out = []
    if not len(disp):
        return out
    n_tests = int(disp["p_value"].notna().sum())
    many = disp["model"].nunique() > 1
    ml = groups.set_index(["model", "attribute", "group"])["mean_label"]
    share = 1 - spec.tolerance
    base_keys = ("model", "attribute", "group", "reference", "metric", "value",
                 "reference_value", "difference", "difference_ci_low", "difference_ci_high",
                 "ratio", "n", "reference_n", "p_value_adjusted", "significant")
    for r in disp.itertuples(index=False):
        if r.metric == "mean_error":
            if r.n < spec.min_group_size or r.reference_n < spec.min_group_size \
                    or pd.isna(r.difference):
                continue
            ref_label = ml.get((r.model, r.attribute, r.reference), np.nan)
            big = abs(r.difference) >= share * abs(ref_label) if ref_label else False
            if r.significant:
                sev = "high" if big else "medium"
            elif big:
                sev = "low"
            else:
                continue
            statement, side = error_gap_statement(
                r, spec, label, n_tests,
                (ml.get((r.model, r.attribute, r.group), np.nan), ref_label))
            kind = "error_gap"
        elif r.verdict == FAIL:
            sev = band.severity(FAIL, bool(r.significant), r.ratio)
            statement, side = ratio_statement(r, spec, label, n_tests, band)
            kind = "fail"
        else:
            continue
        rec = {"severity": sev, "kind": kind}
        rec.update({k: getattr(r, k) for k in base_keys})
        rec["ratio"] = None if pd.isna(r.ratio) else float(r.ratio)
        rec["disadvantaged"] = {"group": r.group, "reference": r.reference}.get(side)
        rec["statement"] = statement
        rec["text"] = _prefixed(statement, r.model, many)
        out.append(rec)
    out.sort(key=lambda f: (SEVERITY_ORDER[f["severity"]], f["kind"] != "error_gap",
                            -abs(f["difference"]) if f["kind"] == "error_gap" else 0))
    out.extend(_info(disp, spec, many, {(f["model"], f["attribute"]) for f in out}))
    return out


def _info(disp: pd.DataFrame, spec, many: bool, flagged: set) -> list[dict]:
    out = []
    verdict = disp["verdict"].to_numpy(dtype=object)
    small = np.array(["fewer than the minimum" in str(r) for r in disp["verdict_reason"]],
                     dtype=bool)
    group = disp["group"].to_numpy(dtype=object)
    n = disp["n"].to_numpy()
    for (model, attribute), rows in disp.groupby(["model", "attribute"], sort=False).indices \
            .items():
        v = verdict[rows]
        judged = v[np.array([x is not None for x in v], dtype=bool)]
        if (model, attribute) not in flagged and len(judged) and (judged == PASS).all():
            names = ", ".join(lower_name(m) for m in rg.JUDGED)
            statement = (f"Every group of {attribute} is within the tolerance band for {names}, "
                         "and no group's mean error differs notably from the reference group's.")
            out.append({"severity": "info", "kind": "pass", "model": model,
                        "attribute": attribute, "group": None, "metric": None,
                        "statement": statement, "text": _prefixed(statement, model, many)})
        part = rows[small[rows]]
        if len(part):
            gs = list(dict.fromkeys(group[part]))
            shown = ", ".join(repr(g) for g in gs[:6]) + (" ..." if len(gs) > 6 else "")
            statement = (f"{len(gs)} group(s) of {attribute} are too small to be judged "
                         f"({shown}): the smallest has {int(n[part].min()):,} rows, fewer than "
                         f"the minimum of {spec.min_group_size}.")
            out.append({"severity": "info", "kind": "insufficient", "model": model,
                        "attribute": attribute, "group": None, "metric": None,
                        "groups": gs, "statement": statement,
                        "text": _prefixed(statement, model, many)})
    return out


# ---------------------------------------------------------------------------
# The terminal summary
# ---------------------------------------------------------------------------
TABLE_ROWS = 40


def render_summary(result: RegressionResult) -> str:
    """The readable terminal summary of a regression audit: per model and
    attribute a table of groups (n, mean error, MAE, RMSE, R², verdict), the
    summaries, the bounded group loss, then the findings."""
    from .formatting import short, visible_text

    spec, prov = result.spec, result.provenance
    src = prov.get("input") or {}
    names = [src.get("name"), *spec.columns(), *spec.attribute_names(),
             *result.groups["group"].unique()]

    def say(text) -> str:
        return visible_text(text, names)

    what = "a benefit" if spec.positive_decision == "benefit" else "a harm"
    lines = [f"Fairness audit (regression) of {short(src.get('name', 'data'))}: "
             f"{prov['rows_used']:,} rows used of {prov['rows_read']:,} read; true value "
             f"{short(spec.label)}; a higher prediction is {what} for the person; tolerance "
             f"{Tolerance(spec.tolerance).interval()}; minimum group size "
             f"{spec.min_group_size}; {level(spec.confidence)} intervals."]
    for w in result.warnings:
        lines.append(f"Warning: {say(w)}")
    groups, disp = result.group_metrics, result.disparities
    for model in spec.predictions:
        lines.append("")
        lines.append(f"=== Model {short(model)!r} ===")
        ov = result.overall[result.overall["model"] == model].iloc[0]
        lines.append(f"Overall: mean true {amount(ov['mean_label'])}, mean prediction "
                     f"{amount(ov['mean_prediction'])}, mean error {amount(ov['mean_error'])}, "
                     f"MAE {amount(ov['mae'])}, RMSE {amount(ov['rmse'])}, "
                     f"R2 {metric_text(ov['r2'], 'r2')}")
        summ = result.summary[result.summary["model"] == model]
        bgl = result.bounded_group_loss[result.bounded_group_loss["model"] == model]
        for attribute in spec.attribute_names():
            g = groups[(groups["model"] == model) & (groups["attribute"] == attribute)]
            d = disp[(disp["model"] == model) & (disp["attribute"] == attribute)]
            s = summ[summ["attribute"] == attribute].set_index("metric")
            ref = d["reference"].iloc[0] if len(d) else g["group"].iloc[0]
            lines.append("")
            me, mae = s.loc["mean_error"], s.loc["mae"]
            b = bgl[bgl["attribute"] == attribute].iloc[0]
            lines.append(
                f"{short(attribute)} (reference {short(ref)!r}): mean error gap (max - min) "
                f"{amount(me['difference'])}; MAE ratio (min / max) {_r(mae['ratio'])}; "
                f"bounded group loss: MAE {amount(b['max_mae'])} "
                f"({short(str(b['max_mae_group']))!r}), RMSE {amount(b['max_rmse'])} "
                f"({short(str(b['max_rmse_group']))!r}); "
                f"{int(s['n_fail'].sum())} fail, {int(s['n_insufficient'].sum())} not judged.")
            table = []
            by = {(r.group, r.metric): r for r in d.itertuples(index=False)}
            order = [ref] + sorted((x for x in g["group"] if x != ref),
                                   key=lambda x: -_badness(by, x))
            gi = g.set_index("group")
            for grp in order[:TABLE_ROWS]:
                r = gi.loc[grp]
                me_r = by.get((grp, "mean_error"))
                star = "*" if me_r is not None and me_r.significant else ""
                row = {"group": short(grp, 40), "n": f"{int(r['n']):,}",
                       "mean error": amount(r["mean_error"]) + star,
                       "MAE": amount(r["mae"]), "RMSE": amount(r["rmse"]),
                       "R2": metric_text(r["r2"], "r2"),
                       "verdict": _verdict(by, grp, ref)}
                table.append(row)
            lines.append(pd.DataFrame(table).to_string(index=False))
            if len(order) > TABLE_ROWS:
                lines.append(f"... {len(order) - TABLE_ROWS:,} more groups, all in the JSON, "
                             "CSV and XLSX outputs (--json, --csv, --xlsx).")
    lines.append("(* mean error differs significantly from the reference group's, after "
                 "correction for multiple comparisons)")
    fs = result.findings
    if fs:
        lines.append("")
        lines.append("Findings (most severe first):")
        for f in fs[:12]:
            lines.append(f"- [{f['severity']}] {say(f['text'])}")
        if len(fs) > 12:
            lines.append(f"- ... {len(fs) - 12} more in the JSON output (--json).")
    return "\n".join(lines)


def _r(x) -> str:
    return "undefined" if pd.isna(x) else f"{x:.3f}"


def _badness(by: dict, group) -> float:
    fails = sum(1 for m in rg.JUDGED if (r := by.get((group, m))) is not None
                and r.verdict == FAIL)
    me = by.get((group, "mean_error"))
    return fails * 1e12 + (abs(me.difference) if me is not None and not pd.isna(me.difference)
                           else 0)


def _verdict(by: dict, group, ref) -> str:
    if group == ref:
        return "reference"
    rows = [by[(group, m)] for m in rg.JUDGED if (group, m) in by]
    fails = [SHORT[r.metric] for r in rows if r.verdict == FAIL]
    if fails:
        sig = any(r.significant for r in rows if r.verdict == FAIL)
        return "FAIL " + ", ".join(fails) + ("*" if sig else "")
    if rows and all(r.verdict == INSUFFICIENT for r in rows):
        return "too small"
    return "pass"


__all__ = ["RegressionResult", "audit_frame", "audit_engine", "audit_counted", "count_frame",
           "count_engine", "regression_findings", "render_summary", "metric_definitions",
           "amount"]
