"""One call gives a whole audit: counts, metrics, disparities, summaries,
score views, findings, and the provenance that ties them to their input."""
from __future__ import annotations

import dataclasses
import functools
import json
import math
import platform
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from . import __version__
from .counts import (OVERALL, CountCube, GroupIndex, count_cube, count_table, row_positions,
                     take_rows)
from .disparity import disparities, summary
from .findings import findings
from .errors import InputError
from .io import TableInfo, check_duplicates, frame_sha256, read_table
from .metrics import (NO_OUTCOME, OUTCOME_SCORE_METRICS, REGISTRY, add_metrics,
                      blank_outcome_metrics, needs_outcome, undefined_reason,
                      undefined_reasons_table)
from .prepare import Prepared, prepare, resolve_threshold, score_decision_words
from .scores import (auc_bound_warnings, count_scores, probability_warnings, score_analysis,
                     score_means, threshold_warnings)
from .stats import Uncertainty, finish_tests
from .stats.tests import Proportions
from .threads import started
from .spec import AuditSpec



@functools.lru_cache(maxsize=1)
def _library_versions() -> tuple:
    import importlib.metadata as md
    out = {"python": platform.python_version()}
    for lib in ("numpy", "pandas", "scipy", "pyarrow", "scikit-learn", "fairlearn"):
        try:
            out[lib] = md.version(lib)
        except md.PackageNotFoundError:
            out[lib] = None
    return tuple(out.items())


def library_versions() -> dict:
    """Versions of Python and of the libraries behind the numbers."""
    return dict(_library_versions())


@dataclass
class AuditResult:
    """Everything one audit computed, with its spec and provenance.

    Attributes
    ----------
    groups : DataFrame
        One row per model x attribute x group (and ``(overall)``): counts,
        share and every registry metric (NaN = undefined), AUC/Brier for
        score models.
    disparities : DataFrame
        One row per model x attribute x metric x non-reference group.
    summary : DataFrame
        fairlearn's between-group summaries per model x attribute.
    scores : dict of DataFrames
        ``auc``, ``curves``, ``calibration``, ``sums``, ``distribution`` and
        ``means`` (per-group mean score with its interval and the share at or
        above the threshold; see :func:`fairness_core.scores.score_means`);
        empty without score columns.
    """

    spec: AuditSpec
    provenance: dict
    groups: pd.DataFrame
    disparities: pd.DataFrame
    summary: pd.DataFrame
    scores: dict
    findings: list
    warnings: list = field(default_factory=list)
    #: a mitigation preview's JSON (:meth:`fairness_core.mitigation.Mitigation.to_dict`), if any
    mitigation: dict | None = None
    #: the change from an earlier audit (:class:`fairness_core.compare.Comparison`), if any
    comparison: object = None
    #: each model against the next one on the same rows
    #: (:func:`fairness_core.compare.audit_pairs`), with two or more models
    paired: pd.DataFrame | None = None

    @property
    def task(self) -> str:
        """What the audit is about: yes/no decisions."""
        return "binary"

    @property
    def group_metrics(self) -> pd.DataFrame:
        return self.groups[self.groups["attribute"] != OVERALL].reset_index(drop=True)

    @property
    def overall(self) -> pd.DataFrame:
        return self.groups[self.groups["attribute"] == OVERALL].reset_index(drop=True)

    def group_order(self, attribute: str) -> list:
        """An attribute's groups in their display order (the same for every
        model: all models are counted over the same groups)."""
        g = self.groups
        first = g[(g["model"] == self.spec.models[0]) & (g["attribute"] == attribute)]
        return list(first["group"])

    @property
    def failed(self) -> bool:
        return bool((self.disparities["verdict"] == "fail").any())

    @property
    def labelled(self) -> bool:
        """True when the audit has a true outcome (see :attr:`unavailable`)."""
        return self.spec.labelled

    @property
    def unavailable(self) -> dict:
        """``{metric or summary: reason}`` for every number this audit does
        not report at all: without a true outcome, every metric that needs
        one (and the summaries built on them), each with
        :data:`~fairness_core.metrics.NO_OUTCOME`; empty with a label."""
        if self.labelled:
            return {}
        from .disparity import SUMMARIES
        names = [m for m in REGISTRY if needs_outcome(m)]
        if self.spec.scores:
            names += list(OUTCOME_SCORE_METRICS) + ["calibration"]
        names += [s for s, (ms, _) in SUMMARIES.items() if any(needs_outcome(m) for m in ms)]
        return {n: NO_OUTCOME for n in names}

    def decision_counts(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` with its cells as published: the four confusion cells
        with a true outcome; without one, only ``selected`` (the rows, or
        weight, given the positive decision), as no row has a known outcome."""
        if self.labelled:
            return frame
        out = frame.drop(columns=[c for c in ("tn", "fp", "fn", "tp") if c in frame])
        if "fp" in frame:
            at = list(out.columns).index("weight") + 1 if "weight" in out else len(out.columns)
            out.insert(at, "selected", frame["fp"].to_numpy())
        return out

    def to_dict(self) -> dict:
        """The JSON contract (undefined numbers are ``None``; without a true
        outcome, ``unavailable`` names every metric not reported and why,
        and each group's ``undefined`` says the same)."""
        lab = self.labelled
        out = {
            "spec": self.spec.to_dict(),
            "provenance": self.provenance,
            "overall": _records(self.decision_counts(
                self.overall.drop(columns=["attribute", "group"])), with_reasons=True,
                labelled=lab),
            "groups": _records(self.decision_counts(self.group_metrics), with_reasons=True,
                               labelled=lab),
            "disparities": _records(self.disparities),
            "summary": _records(self.summary),
            "findings": [_clean(f) for f in self.findings],
            "metrics": {name: m.to_dict() for name, m in REGISTRY.items()},
            "warnings": list(self.warnings),
        }
        if not lab:
            out["unavailable"] = self.unavailable
        if len(self.scores.get("means", [])):  # mean scores per group, score models only
            out["score_distributions"] = _records(self.scores["means"])
        if self.mitigation is not None:
            out["mitigation"] = self.mitigation
        if self.paired is not None and len(self.paired):  # models on the same rows
            out["paired"] = _records(self.paired)
        if self.comparison is not None:  # the change from an earlier audit
            out["comparison"] = self.comparison.to_dict()
        return out

    def to_json(self, indent: int | None = 2) -> str:
        """The JSON contract as text: indented, with each record of a list
        of records (groups, disparities, ...) on one line, which keeps a
        large audit quick to write (Python's fast encoder writes each line)
        and easy to diff; ``indent=None`` for one line."""
        d = self.to_dict()
        if indent is None:
            return json.dumps(d, allow_nan=False)
        pad = " " * indent
        parts = []
        for key, value in d.items():
            if isinstance(value, list) and value and all(isinstance(r, dict) for r in value):
                text = ("[\n" + pad * 2 + (",\n" + pad * 2).join(
                    json.dumps(r, allow_nan=False) for r in value) + "\n" + pad + "]")
            else:
                text = json.dumps(value, indent=indent, allow_nan=False).replace("\n", "\n" + pad)
            parts.append(pad + json.dumps(key) + ": " + text)
        return "{\n" + ",\n".join(parts) + "\n}"

    @functools.cached_property
    def long(self) -> pd.DataFrame:
        """The per-group metrics as one tidy table (see :meth:`long_table`)."""
        return self.long_table(self.groups, self.labelled)

    @staticmethod
    def long_table(groups: pd.DataFrame, labelled: bool = True) -> pd.DataFrame:
        """Reshape a wide per-group table to one row per model x attribute x
        group x registry metric.

        Parameters
        ----------
        groups : DataFrame
            As :attr:`groups`: a column per registry metric and, where
            computed, ``<metric>_ci_low`` and ``<metric>_ci_high``.

        Returns
        -------
        DataFrame
            Columns ``model, attribute, group, metric, value, ci_low,
            ci_high, n, undefined_reason``; the rows of each group in
            registry order.  ``undefined_reason`` says why a value is
            undefined (NaN), and is None where it is defined.
        """
        names = list(REGISTRY)
        k = len(groups)

        def stacked(suffix: str) -> np.ndarray:
            cols = [groups[c].to_numpy(dtype=float) if c in groups else np.full(k, np.nan)
                    for c in (m + suffix for m in names)]
            return np.column_stack(cols).ravel() if k else np.empty(0)

        def repeated(c: str) -> np.ndarray:
            return np.repeat(groups[c].to_numpy(), len(names))

        value = stacked("")
        reasons = np.tile(np.array([undefined_reason(m, labelled) for m in names],
                                   dtype=object), k)
        return pd.DataFrame({
            "model": repeated("model"), "attribute": repeated("attribute"),
            "group": repeated("group"), "metric": np.tile(np.array(names, dtype=object), k),
            "value": value, "ci_low": stacked("_ci_low"), "ci_high": stacked("_ci_high"),
            "n": repeated("n"),
            "undefined_reason": pd.Series(np.where(np.isnan(value), reasons, None),
                                          dtype=object)})

    def group_table(self) -> pd.DataFrame:
        """The per-group table as exported to CSV."""
        cols = ["model", "attribute", "group", "n", "share", "weight", "tp", "fp", "tn", "fn"]
        for m in REGISTRY:
            cols += [m] + [f"{m}_ci_{s}" for s in ("low", "high") if f"{m}_ci_{s}" in self.groups]
        extra = [c for c in ("auc", "auc_error_bound", "brier") if c in self.groups]
        return self.decision_counts(self.groups[cols + extra])


def _clean(v):
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        f = float(v)
        return None if math.isnan(f) or math.isinf(f) else f
    if isinstance(v, np.bool_):
        return bool(v)
    return v


def _json_values(s: pd.Series) -> list:
    """A column's values as JSON values (Python numbers; NaN and infinities
    None), column-wise: much quicker than cleaning value by value."""
    if pd.api.types.is_float_dtype(s.dtype):
        a = s.to_numpy(dtype=float, na_value=np.nan)
        out = a.tolist()
        for i in np.flatnonzero(~np.isfinite(a)).tolist():
            out[i] = None
        return out
    if (pd.api.types.is_integer_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype)) \
            and not s.hasnans:
        return s.tolist()
    if isinstance(s.dtype, pd.StringDtype):
        return s.astype(object).where(s.notna(), None).tolist()
    return [_clean(v) for v in s.tolist()]


def _records(df: pd.DataFrame, with_reasons: bool = False, labelled: bool = True
             ) -> list[dict]:
    """The rows of ``df`` as JSON records; ``with_reasons``: each with
    ``undefined``, the reason for each of its undefined metrics."""
    cols = [str(c) for c in df.columns]
    values = [_json_values(df.iloc[:, j]) for j in range(df.shape[1])]
    recs = [dict(zip(cols, row)) for row in zip(*values)] if cols else [{} for _ in range(len(df))]
    if with_reasons:
        for rec, reasons in zip(recs, undefined_reasons_table(df, labelled)):
            rec["undefined"] = reasons
    return recs


def run_audit(prepared: Prepared, info: TableInfo | None = None) -> AuditResult:
    """Audit an already prepared table (see :func:`audit`)."""
    spec = prepared.spec
    index = GroupIndex.build(prepared)
    cube = count_cube(prepared, index)
    # everything that needs only the counts (numpy work of the bootstrap
    # that mostly releases Python's lock) runs while the score columns are
    # counted
    judged = started(judge, cube, spec, prepared) if prepared.scores else None
    sc = score_analysis(prepared, index) if prepared.scores else None
    result = audit_from_counts(cube, spec, prepared=prepared, info=info, scores=sc,
                               judged=judged() if judged else None)
    if len(spec.models) > 1:  # each model against the next, on the same rows
        from .compare import audit_pairs
        result.paired = audit_pairs(prepared, result, index, cube)
    return result


def _model_part(cube: CountCube, spec: AuditSpec, models: tuple, streams: dict,
                cache: dict | None, not_judged: dict | None = None):
    """Groups, disparities (p-values not yet corrected) and summaries of some
    models: everything that depends on those models' counts alone."""
    sub = dataclasses.replace(
        cube, cells={m: cube.cells[m] for m in models},
        row_cells={m: cube.row_cells[m] for m in models},
        weight_sq_cells=None if cube.weight_sq_cells is None else
        {m: cube.weight_sq_cells[m] for m in models})
    groups = add_metrics(count_table(sub), spec.labelled)
    unc = Uncertainty(sub.row_cells, sub.cells if sub.weighted else None, sub.attributes,
                      spec, weight_sq_cells=sub.weight_sq_cells, cache=cache,
                      streams=streams)
    groups = pd.concat([groups, unc.group_intervals(groups)], axis=1)
    if not spec.labelled:  # no number for what needs the true outcome, anywhere
        groups = blank_outcome_metrics(groups)
    per_group = groups[groups["attribute"] != OVERALL].reset_index(drop=True)
    disp = disparities(per_group, spec, not_judged)
    disp = pd.concat([disp, unc.disparity_stats(disp, per_group)], axis=1)
    summ = summary(per_group, disp, spec)
    summ = pd.concat([summ, unc.summary_intervals(summ)], axis=1)
    return groups, disp, summ, unc.describe(), unc.proportions


def model_parts(cube: CountCube, spec: AuditSpec, prepared: Prepared,
                cache: dict | None = None) -> tuple[list, dict]:
    """What :func:`audit_from_counts` computes from the counts of each model
    alone (groups without the score columns, disparities, summaries and
    their intervals), and the models whose gaps are not judged.

    Each model is audited from its own counts; given a ``cache`` dict, the
    decision models and the score models are audited as two parts and kept
    there, keyed by their counts and the settings, so that a new threshold
    recomputes only the score models.
    """
    judgement = {k: v for k, v in spec.to_dict().items()
                 if k not in ("threshold", "predictions", "scores", "alpha", "correction",
                              "power")}
    jkey = json.dumps(judgement, sort_keys=True, default=str)
    streams = {m: i for i, m in enumerate(cube.cells)}
    not_judged = operating_point_problems(cube, prepared)
    if cache is None:
        batches = [tuple(cube.cells)]
    else:  # a new threshold changes only the score models' counts
        batches = [b for b in (tuple(m for m in cube.cells if m not in spec.scores),
                               tuple(m for m in cube.cells if m in spec.scores)) if b]
    parts = []
    for models in batches:
        # the reasons for not judging a model name its threshold
        key = ("part", models, jkey, tuple((m, not_judged.get(m)) for m in models),
               *(cube.cells[m].tobytes() + cube.row_cells[m].tobytes() for m in models))
        if cache is not None and key in cache:
            part = cache[key]
        else:
            boot = cache.setdefault("bootstrap", {}) if cache is not None else None
            part = _model_part(cube, spec, models, streams, boot, not_judged)
            if cache is not None:
                if len(cache) > 40:
                    for k in [k for k in cache if k != "bootstrap"][:20]:
                        del cache[k]
                cache[key] = part
        parts.append(part)
    return parts, not_judged


def _with_score_columns(groups: pd.DataFrame, scores: dict | None,
                        labelled: bool) -> pd.DataFrame:
    """The group table with each score model's AUC, its error bound and the
    Brier score (from :func:`~fairness_core.scores.score_analysis`), placed
    after the metrics, before their intervals."""
    auc = scores["auc"] if scores is not None else None
    if auc is None or not len(auc):
        return groups
    at = row_positions(groups, auc)
    if not (at >= 0).any():
        return groups
    first = next((i for i, c in enumerate(groups.columns) if str(c).endswith("_ci_low")),
                 len(groups.columns))
    groups = groups.copy()
    for j, c in enumerate(OUTCOME_SCORE_METRICS):
        groups.insert(first + j, c, take_rows(auc[c].to_numpy(), at) if labelled else np.nan)
    return groups


def judge(cube: CountCube, spec: AuditSpec, prepared: Prepared,
          cache: dict | None = None) -> dict:
    """Everything of an audit that needs the counts alone (not the score
    columns): the group table without the score columns, the disparities
    with every model's p-values corrected together, the summaries, the
    findings and the warnings about models and small groups.  The parts of
    each model come from :func:`model_parts` (with ``cache``)."""
    parts, not_judged = model_parts(cube, spec, prepared, cache)
    groups = pd.concat([p[0] for p in parts], ignore_index=True)
    disp = finish_tests(pd.concat([p[1] for p in parts], ignore_index=True), groups, spec,
                        cube.weighted, counts=Proportions.concat(p[4] for p in parts))
    per_group = groups[groups["attribute"] != OVERALL].reset_index(drop=True)
    summ = pd.concat([p[2] for p in parts], ignore_index=True)
    fail_sig = (disp["verdict"].to_numpy(dtype=object) == "fail") & \
        disp["significant"].to_numpy(dtype=bool)
    sig = Counter(zip(disp["model"].to_numpy(dtype=object)[fail_sig],
                      disp["attribute"].to_numpy(dtype=object)[fail_sig]))
    summ["n_fail_significant"] = [sig.get((m, a), 0)
                                  for m, a in zip(summ["model"], summ["attribute"])]
    summ["n_fail_not_significant"] = summ["n_fail"] - summ["n_fail_significant"]
    small_groups = []
    small = per_group[(per_group["n"] < spec.min_group_size)
                      & (per_group["model"] == spec.models[0])]
    for attr, g in small.groupby("attribute", sort=False):
        small_groups.append(
            f"{attr}: {len(g)} group(s) have fewer than {spec.min_group_size} rows and get no "
            f"pass/fail verdict ({', '.join(map(repr, g['group'][:5]))}"
            f"{' ...' if len(g) > 5 else ''}).")
    found = findings(disp, spec, words=prepared.words, decisions=prepared.decisions,
                     not_judged=not_judged)
    return {"groups": groups, "disparities": disp, "summary": summ, "findings": found,
            "not_judged": not_judged, "small_groups": small_groups,
            "statistics": parts[0][3] if parts else {}}


def audit_from_counts(cube: CountCube, spec: AuditSpec, *, prepared: Prepared,
                      info: TableInfo | None = None, scores: dict | None = None,
                      cache: dict | None = None, judged: dict | None = None) -> AuditResult:
    """Everything after the one pass over the rows: metrics, disparities,
    intervals, tests, summaries and findings, from the count cube alone.

    ``spec`` may differ from the one the cube was counted with in anything
    that does not change the counts (reference groups, tolerance, minimum
    group size, alpha, correction, bootstrap settings).  What needs the
    counts alone comes from :func:`judge` (with ``cache``), or is given as
    ``judged`` (what it returned); the score columns and the mean scores
    are then added.
    """
    judged = judged if judged is not None else judge(cube, spec, prepared, cache)
    groups = _with_score_columns(judged["groups"], scores, spec.labelled)
    disp, summ = judged["disparities"], judged["summary"]
    sc = dict(scores) if scores else {"auc": pd.DataFrame(), "curves": pd.DataFrame(),
                                      "calibration": pd.DataFrame()}
    sc["means"] = score_means(sc.get("sums", pd.DataFrame()), groups, spec.confidence,
                              prepared.thresholds)
    described = judged["statistics"]
    warnings = [f"Model {m!r}: {reason}. None of its gaps is judged." for m, reason in
                judged["not_judged"].items()]
    warnings += list(info.warnings) if info is not None else []
    warnings += list(prepared.warnings)
    warnings += probability_warnings(prepared)
    warnings += auc_bound_warnings(sc.get("auc"), prepared)
    warnings += threshold_warnings(groups, prepared)
    warnings += judged["small_groups"]
    provenance = {
        "input": info.to_dict() if info else None,
        "rows_read": prepared.n_rows_read,
        "rows_used": prepared.n_rows,
        "rows_dropped": prepared.n_rows_read - prepared.n_rows,
        "dropped_reasons": dict(prepared.dropped),
        "positive_label": prepared.positive_label,
        "negative_label": prepared.negative_label,
        "positive_values": list(prepared.positive_values),
        "negative_values": list(prepared.negative_values),
        "positive_decision": spec.positive_decision,
        "decisions": {m: {"positive": p, "negative": n}
                      for m, (p, n) in prepared.decisions.items()},
        "thresholds": {m: {"threshold": t, "how": prepared.threshold_notes.get(m),
                           "score_min": prepared.score_ranges[m][0],
                           "score_max": prepared.score_ranges[m][1]}
                       for m, t in prepared.thresholds.items()},
        "weighted": prepared.weight is not None,
        "statistics": described,
        "bootstrap_seed": spec.seed,
        "tool": "fairness_core",
        "tool_version": __version__,
        "library_versions": library_versions(),
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    return AuditResult(spec=spec, provenance=provenance, groups=groups, disparities=disp,
                       summary=summ, scores=sc, findings=judged["findings"], warnings=warnings)


def operating_point_problems(cube: CountCube, prepared: Prepared) -> dict:
    """Models whose decisions are all positive or all negative: model ->
    the reason, in words (with the threshold and the scores' range for a
    score model).  Their rates all sit at 0 or 1, so no gap is judged."""
    out = {}
    for model, cells in cube.row_cells.items():
        tn, fp, fn, tp = cells.sum(axis=0)
        n = tn + fp + fn + tp
        selected = fp + tp
        if n == 0 or 0 < selected < n:
            continue
        who = "every row" if selected == n else "no row"
        reason = f"the model gives {who} the positive decision"
        if model in prepared.thresholds:
            thr = prepared.thresholds[model]
            lo, hi = prepared.score_ranges[model]
            where = ("at or below every score" if thr <= lo else "above every score"
                     if thr > hi else "where no score falls on both sides")
            reason += (f" (its threshold {thr:g} lies {where}; the scores range from "
                       f"{lo:g} to {hi:g})")
        out[model] = reason
    return out


def read_source(data, spec: AuditSpec, *, name: str | None = None,
                encodings: dict | None = None) -> tuple[pd.DataFrame, TableInfo]:
    """The table of an audit (read when ``data`` is a path or bytes, only
    the spec's columns) and where it came from.  The Arrow columns of a
    DataFrame that its hash encodes are kept in ``encodings`` for
    :func:`prepare`."""
    if isinstance(data, pd.DataFrame):
        df = data
        h = frame_sha256(df, spec.columns(), encodings) if set(spec.columns()) <= set(
            map(str, df.columns)) else None
        info = TableInfo(name=name or "(data frame)", format="dataframe", sha256=h,
                         size_bytes=int(df.memory_usage(deep=False).sum()),
                         columns=[str(c) for c in df.columns])
        return df, info
    return read_table(data, name=name, columns=spec.columns())


def prepare_source(data, spec: AuditSpec, *, name: str | None = None
                   ) -> tuple[Prepared, TableInfo]:
    """Read (when ``data`` is a path or bytes) and prepare the table of an
    audit: the rows, validated and encoded, and where they came from."""
    encodings: dict = {}
    df, info = read_source(data, spec, name=name, encodings=encodings)
    return prepare(df, spec, encodings=encodings), info


def audit_frame(df: pd.DataFrame, info: TableInfo | None = None, *, spec: AuditSpec):
    """The audit of a table already read, for the spec's task (see
    :mod:`fairness_core.tasks`): an :class:`AuditResult` for yes/no
    decisions, a :class:`~fairness_core.multiclass_result.MulticlassAuditResult`
    for several classes, a :class:`~fairness_core.regression_result.RegressionResult`
    for a numeric outcome."""
    if spec.task == "multiclass":
        from .multiclass_result import audit_multiclass_frame
        return audit_multiclass_frame(df, info, spec=spec)
    if spec.task == "regression":
        from .regression_result import audit_frame as regression_frame
        return regression_frame(df, info, spec=spec)
    return run_audit(prepare(df, spec), info)


def audit(data, spec: AuditSpec, *, name: str | None = None) -> AuditResult:
    """Run a whole audit.

    Parameters
    ----------
    data : DataFrame, path or bytes
        The predictions table (or a count table, with ``spec.counts``).
        Paths and bytes are read with :func:`fairness_core.io.read_table`,
        reading only the needed columns.
    spec : AuditSpec
    name : str, optional
        File name for bytes input (its extension picks the format).
    """
    return audit_frame(*read_source(data, spec, name=name), spec=spec) \
        if spec.task != "binary" else run_audit(*prepare_source(data, spec, name=name))


#: The spec fields that change the counts; everything else is recomputed
#: from the count cube in milliseconds.
COUNTING_FIELDS = ("label", "sensitive", "predictions", "scores", "positive",
                   "prediction_positive", "intersectional", "weight", "counts", "bins",
                   "max_groups")


class Auditor:
    """Count once, audit many times.

    Keeps the prepared table, its group index, its count cube and, per score
    model, the counts of positives and negatives per group combination and
    distinct score (or fine score bin), so that a new threshold, reference
    group, tolerance, minimum size, alpha or bootstrap setting re-audits
    from counts without touching the rows again: a score model's cells at a
    new threshold are read off running sums of its score counts.

    A threshold that falls inside a fine bin (a score with more distinct
    values than are counted one by one) cannot be read off the counts: the
    auditor then counts that model's decisions from the rows it holds, or,
    holding an engine's records (:meth:`from_prepared`), moves the threshold
    to the nearest bin edge and says so in a warning.

    Parameters
    ----------
    df : DataFrame
    spec : AuditSpec
    info : TableInfo, optional
    """

    def __init__(self, df: pd.DataFrame, spec: AuditSpec, info: TableInfo | None = None):
        check_duplicates(df, info, spec.columns())
        self._start(prepare(df, spec), info)

    @classmethod
    def from_prepared(cls, prepared: Prepared, info: TableInfo | None = None) -> "Auditor":
        """An auditor of an already prepared table, such as an engine's records
        (:func:`fairness_core.engine.prepare_from_engine`)."""
        self = cls.__new__(cls)
        self._start(prepared, info)
        return self

    def _start(self, prepared: Prepared, info: TableInfo | None) -> None:
        self.spec, self.info, self.prepared = prepared.spec, info, prepared
        self.index = GroupIndex.build(prepared)
        #: score model -> its ScoreCounts (running sums once a threshold moves)
        self.score_counts = {m: count_scores(prepared, self.index, m)
                             for m in prepared.scores}
        self.scores = score_analysis(prepared, self.index, counts=self.score_counts) \
            if prepared.scores else None
        self.cube = count_cube(prepared, self.index)
        self._cubes: dict = {}
        self._bootstrap: dict = {}

    def compatible(self, spec: AuditSpec) -> bool:
        """True when ``spec`` counts the same way as this auditor's spec."""
        return all(getattr(spec, f) == getattr(self.spec, f) for f in COUNTING_FIELDS)

    def _cube_at(self, thresholds: dict) -> tuple[CountCube, dict, list]:
        """The count cube with the score models decided at ``thresholds``,
        from the score counts; returns (cube, thresholds used, warnings)."""
        base = self.cube
        cells, row_cells = dict(base.cells), dict(base.row_cells)
        sq = None if base.weight_sq_cells is None else dict(base.weight_sq_cells)
        used, warnings = dict(thresholds), []
        for model, thr in thresholds.items():
            if thr == self.prepared.thresholds[model]:
                continue
            sc = self.score_counts[model]
            first = sc.first_positive_bin(thr)
            if first is None and model in self.prepared.score_bins:  # records, no rows
                used[model] = sc.nearest_edge(thr)
                first = sc.first_positive_bin(used[model])
                warnings.append(f"The score {model!r} was counted in fine bins, and the "
                                f"threshold {thr:g} falls inside one of them; the audit uses "
                                f"the nearest bin edge, {used[model]:.6g}, instead. Audit the "
                                "rows themselves for this exact threshold.")
            if first is not None:
                c, r, q = sc.cells_at(first)
            else:  # inside a fine bin, and the rows are here: count this model's decisions
                p = dataclasses.replace(self.prepared, predictions={
                    model: self.prepared.scores[model] >= thr})
                one = count_cube(p, self.index)
                c, r = one.cells[model], one.row_cells[model]
                q = None if one.weight_sq_cells is None else one.weight_sq_cells[model]
            cells[model], row_cells[model] = c, r
            if sq is not None:
                sq[model] = q
        cube = dataclasses.replace(base, cells=cells, row_cells=row_cells, weight_sq_cells=sq)
        return cube, used, warnings

    def _at_threshold(self, spec: AuditSpec) -> tuple[Prepared, CountCube]:
        base = self.prepared
        thresholds, notes = {}, {}
        for col in base.scores:
            lo, hi = base.score_ranges[col]
            thresholds[col], notes[col] = resolve_threshold(spec.threshold_for(col), lo, hi)
        key = tuple(sorted(thresholds.items()))
        if key not in self._cubes:
            if len(self._cubes) > 8:
                self._cubes.clear()
            self._cubes[key] = self._cube_at(thresholds)
        cube, used, warnings = self._cubes[key]
        decisions = dict(base.decisions)
        for col, thr in used.items():
            decisions[col] = score_decision_words(thr)
            if thr != thresholds[col]:
                notes[col] += f"; moved to the nearest fine-bin edge, {thr:.6g}"
        p = dataclasses.replace(base, spec=spec, decisions=decisions, thresholds=used,
                                threshold_notes=notes, warnings=list(base.warnings) + warnings)
        return p, cube

    def run(self, spec: AuditSpec | None = None) -> AuditResult:
        spec = spec or self.spec
        if not self.compatible(spec):
            raise InputError("These settings change how the rows are counted (columns, "
                             "positive values or bins); start a new audit of the table.",
                             field="spec")
        p, cube = self._at_threshold(spec)
        return audit_from_counts(cube, spec, prepared=p, info=self.info, scores=self.scores,
                                 cache=self._bootstrap)
