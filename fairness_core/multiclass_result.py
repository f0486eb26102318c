"""A whole multiclass audit: one call, one result with its provenance and
plain-language findings, in memory or in an engine.

The numbers come from :mod:`fairness_core.multiclass` (one-vs-rest through
the binary machinery, from ``k x k`` confusion tables per group); this
module adds what an audit's consumers need: the spec and provenance, the
findings, the warnings, the JSON contract and the exported tables.

Who a gap disadvantages
-----------------------
With yes/no decisions the audit knows whether the positive decision is a
benefit or a harm (``--positive-decision``).  With several classes no
class is "the positive decision": being assigned the "urgent" triage level
helps a patient who needs it and burdens one who does not.  So the
findings say who a gap disadvantages only where it holds whatever the
class means:

- gaps among people whose *true* class is ``c`` (true positive and false
  negative rates): the model misses the class ``c`` more often for one
  group ("Among people whose true class is 'urgent', those with race =
  'Black' are assigned 'urgent' 0.60 times as often as those with race =
  'White'");
- gaps among people whose true class is another one (false positive and
  true negative rates): the model wrongly assigns ``c`` more often to one
  group;
- gaps in precision (of the people assigned ``c``, how many truly are),
  negative predictive value and one-vs-rest accuracy: the model is wrong
  more often for one group;
- gaps in the share assigned ``c`` (demographic parity for ``c``) are
  stated neutrally, with both shares: whether being assigned ``c`` helps or
  harms depends on the class and on the person's true class, which the
  true-class gaps above answer.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from .counts import OVERALL
from .disparity import FAIL, INSUFFICIENT, PASS
from .errors import InputError
from .findings import CORRECTION_NAMES, SEVERITY_ORDER
from .formatting import about, num, p_value, pct
from .multiclass import (CLASS_METRICS, MACRO_METRICS, MulticlassCube,
                         multiclass_audit, multiclass_cube)
from .spec import AuditSpec
from .tolerance import Tolerance

TASK = "multiclass"

#: What a multiclass audit measures, for the Help page and the README
#: (Markdown paragraphs).
EXPLANATION = (
    "**When the model predicts one of several classes** (a triage level, a product tier, a "
    "risk band; a label with 3 to 20 values is taken as classes unless you choose *yes/no "
    "decisions*), there is no single positive decision. fairlearn defines demographic "
    "parity as equal selection rates for a yes/no decision, and leaves the multiclass case "
    "undefined: its selection rate counts only the predictions equal to one label, and its "
    "true and false positive rates refuse more than two values.",
    "So the audit asks, for **each class**, the yes/no question *is a person assigned this "
    "class?* (one against the rest), and applies fairlearn's definitions to it: the share "
    "of each group assigned the class (demographic parity for that class), and, among the "
    "people whose true class it is, the share assigned it (true positive rate; equal "
    "opportunity), with the false positive rate, precision and the others. Every verdict, "
    "interval and test is per class; the p-values of every class are corrected together.",
    "The **worst class** of an attribute is the class with the largest gap between groups: "
    "it is zero only when every class is at parity, so it sums up the whole decision in one "
    "number. A group's **accuracy** is the share predicted its true class; its **macro** "
    "rates are the means over the classes (the macro true positive rate is balanced "
    "accuracy). A class that a group does not have is not judged for that group.",
    "**Who a gap disadvantages.** Being assigned a class is neither a benefit nor a harm in "
    "itself (the 'urgent' level helps a patient who needs it). Gaps in the share assigned a "
    "class are stated without taking a side; gaps among people of the same true class say "
    "whom the model misses, or wrongly assigns, more often.")

#: Per one-vs-rest metric: (who is compared, what happened to them, whose
#: side a lower value is on: +1 higher is better, -1 lower is better, None
#: neutral), with ``{c}`` the class.
PHRASES = {
    "selection_rate": ("", "are assigned the class {c}", None),
    "tpr": ("Among people whose true class is {c}", "are assigned {c}", 1),
    "fnr": ("Among people whose true class is {c}", "are assigned another class", -1),
    "fpr": ("Among people whose true class is not {c}", "are wrongly assigned {c}", -1),
    "tnr": ("Among people whose true class is not {c}", "are rightly not assigned {c}", 1),
    "ppv": ("Among people assigned {c}", "truly have the class {c}", 1),
    "npv": ("Among people assigned another class than {c}", "truly do not have the class {c}",
            1),
    "accuracy": ("", "are rightly assigned {c} or rightly not assigned {c}", 1),
}
#: How the disadvantage reads, per metric.
LOSER = {"tpr": "The model misses the class {c} more often for people with {who}.",
         "fnr": "The model misses the class {c} more often for people with {who}.",
         "fpr": "The model wrongly assigns {c} more often to people with {who}.",
         "tnr": "The model wrongly assigns {c} more often to people with {who}.",
         "ppv": "The class {c} is wrongly assigned more often to people with {who}.",
         "npv": "The class {c} is missed more often among people with {who} who are "
                "assigned another class.",
         "accuracy": "The model is wrong about the class {c} more often for people with {who}."}
NEUTRAL = ("Whether being assigned {c} helps or harms a person depends on the class and on "
           "the person's true class: the gaps among people with the same true class (true "
           "and false positive rates) say whom it disadvantages.")
#: The order of the findings of equal severity: gaps among people of the
#: same true class first.
METRIC_ORDER = {m: i for i, m in enumerate(("tpr", "fnr", "fpr", "tnr", "ppv", "npv",
                                            "selection_rate", "accuracy"))}
#: Options of yes/no decisions that a multiclass audit does not read.
NOT_APPLICABLE = {"scores": "--score (a multiclass audit reads predicted classes)",
                  "threshold": "--threshold (there is no score to cut)",
                  "positive": "--positive (every class is audited, one against the rest)",
                  "prediction_positive": "--prediction-positive (every class is audited)"}


def check_multiclass_spec(spec: AuditSpec) -> None:
    """Refuse the settings that do not apply to several classes, with what
    to do instead."""
    if not spec.labelled:
        raise InputError("A multiclass audit compares the predicted class with the true "
                         "class: choose the label column (--label).", field="label")
    if not spec.predictions:
        raise InputError("A multiclass audit needs at least one column of predicted classes "
                         "(--prediction).", field="predictions")
    given = [what for key, what in NOT_APPLICABLE.items()
             if getattr(spec, key) not in (None, (), [], {}, "")]
    if spec.positive_decision != "benefit":
        given.append("--positive-decision (being assigned a class is neither a benefit nor a "
                     "harm in itself; the findings say whom the model misses or wrongly "
                     "assigns)")
    if given:
        raise InputError(f"These options apply to yes/no decisions, not to several classes: "
                         f"{'; '.join(given)}. Leave them out, or audit yes/no decisions "
                         "(--task binary with --positive).", field="task")


@dataclass
class MulticlassAuditResult:
    """Everything one multiclass audit computed, with its spec and provenance.

    Attributes
    ----------
    groups : DataFrame
        Per model x class x attribute x group (and ``(overall)``): the
        one-vs-rest cells and every registry metric with intervals.
    disparities, summary : DataFrame
        As :class:`fairness_core.audit.AuditResult`'s, each row with its
        ``class``.
    worst : DataFrame
        Per model x attribute x summary: the class with the largest gap.
    group_summary : DataFrame
        Per model x attribute x group: accuracy and macro averages.
    confusion : DataFrame
        Per model x attribute x group x true class x predicted class: rows
        ``n`` and ``weight``.
    """

    spec: AuditSpec
    provenance: dict
    groups: pd.DataFrame
    disparities: pd.DataFrame
    summary: pd.DataFrame
    findings: list
    classes: list
    worst: pd.DataFrame
    group_summary: pd.DataFrame
    confusion: pd.DataFrame
    warnings: list = field(default_factory=list)
    task: str = TASK
    scores: dict = field(default_factory=dict)

    labelled = True
    unavailable: dict = field(default_factory=dict)

    @property
    def group_metrics(self) -> pd.DataFrame:
        return self.groups[self.groups["attribute"] != OVERALL].reset_index(drop=True)

    @property
    def overall(self) -> pd.DataFrame:
        return self.groups[self.groups["attribute"] == OVERALL].reset_index(drop=True)

    @property
    def failed(self) -> bool:
        return bool((self.disparities["verdict"] == FAIL).any())

    def group_order(self, attribute: str) -> list:
        gs = self.group_summary
        first = gs[(gs["model"] == self.spec.models[0]) & (gs["attribute"] == attribute)]
        return list(first["group"])

    def group_table(self) -> pd.DataFrame:
        """The per-class group table as exported to CSV: one row per model x
        class x attribute x group."""
        from .metrics import REGISTRY

        cols = ["model", "class", "attribute", "group", "n", "share", "weight",
                "tp", "fp", "tn", "fn"]
        for m in REGISTRY:
            cols += [m] + [f"{m}_ci_{s}" for s in ("low", "high") if f"{m}_ci_{s}" in self.groups]
        return self.group_metrics[[c for c in cols if c in self.groups]]

    def worst_table(self) -> pd.DataFrame:
        """:attr:`worst` with the column named as in the JSON."""
        return self.worst.rename(columns={"class": "worst_class"})

    def to_dict(self) -> dict:
        """The JSON contract: as the binary audit's (``groups``,
        ``disparities``, ``summary`` with a ``class`` each), with
        ``classes``, ``worst_class``, ``group_summary`` and ``confusion``."""
        from .audit import _clean, _records
        from .metrics import REGISTRY

        return {
            "task": TASK,
            "spec": self.spec.to_dict(),
            "provenance": self.provenance,
            "classes": list(self.classes),
            "overall": _records(self.overall.drop(columns=["attribute", "group"])),
            "groups": _records(self.group_metrics),
            "disparities": _records(self.disparities),
            "summary": _records(self.summary.assign(groups_below_min_size=self.summary[
                "groups_below_min_size"].map(list))),
            "worst_class": _records(self.worst),
            "group_summary": _records(self.group_summary),
            "confusion": _records(self.confusion),
            "findings": [_clean(f) for f in self.findings],
            "metrics": {name: REGISTRY[name].to_dict() for name in CLASS_METRICS},
            "warnings": list(self.warnings),
        }

    def to_json(self, indent: int | None = 2) -> str:
        from .audit import AuditResult

        return AuditResult.to_json(self, indent)


# ---------------------------------------------------------------------------
# Findings
# ---------------------------------------------------------------------------
def _significance(r, n_tests: int, correction: str) -> str:
    padj = getattr(r, "p_value_adjusted", float("nan"))
    if padj is None or math.isnan(padj):
        return "no significance test was possible"
    corr = CORRECTION_NAMES.get(correction, correction)
    p = f"adjusted p = {p_value(padj)}" if padj >= 1e-4 else "adjusted p < 0.0001"
    word = "significant" if r.significant else "not significant"
    return f"{word} after {corr} correction for {n_tests:,} tests, {p}"


def disadvantaged(metric: str, value: float, reference_value: float) -> str | None:
    """"group", "reference" or None: whose side a gap is against (None for
    the share assigned a class, which takes no side)."""
    sign = PHRASES[metric][2]
    if not sign or any(map(math.isnan, (value, reference_value))) or \
            value == reference_value:
        return None
    return "group" if (value - reference_value) * sign < 0 else "reference"


def fail_statement(r, band: Tolerance, n_tests: int, correction: str,
                   confidence: float) -> str:
    """The sentence of one failing gap (a row of the disparity table)."""
    from .formatting import level

    c = repr(str(r.klass))
    pop, event, _ = (x.format(c=c) if isinstance(x, str) else x for x in PHRASES[r.metric])
    who, ref = f"{r.attribute} = {r.group!r}", f"{r.attribute} = {r.reference!r}"
    them = "those" if pop else "people"
    if r.reference_value == 0:
        head = f"{them} with {who} {event} while none of {them} with {ref} are"
    else:
        head = f"{them} with {who} {event} {num(r.ratio, 2)} times as often as {them} with {ref}"
    head = f"{pop}, {head}" if pop else head[0].upper() + head[1:]
    ci = ""
    if not math.isnan(getattr(r, "ratio_ci_low", float("nan"))):
        ci = (f"; {level(confidence)} CI of the ratio {num(r.ratio_ci_low, 2)} to "
              f"{num(r.ratio_ci_high, 2)}")
    text = (f"{head} ({pct(r.value)} vs {pct(r.reference_value)}; n = {int(r.n):,} vs "
            f"{int(r.reference_n):,}{ci}; {_significance(r, n_tests, correction)}). "
            f"{band.fail_sentence()}")
    side = disadvantaged(r.metric, r.value, r.reference_value)
    if side:
        text += " " + LOSER[r.metric].format(c=c, who=who if side == "group" else ref)
    elif r.metric == "selection_rate":
        text += " " + NEUTRAL.format(c=c)
    more = getattr(r, "more_rows_needed", float("nan"))
    if not r.significant and more is not None and not math.isnan(more) and more > 0:
        text += f" It may be noise: {about(more)} more rows in {r.group!r} would settle it."
    elif not r.significant:
        text += " It may be noise."
    return text


def multiclass_findings(result_disp: pd.DataFrame, worst: pd.DataFrame, spec: AuditSpec,
                        classes: list) -> list[dict]:
    """Statements, most severe first: every failing gap (with its class),
    the worst class per attribute, what passed and what was not judged."""
    band = Tolerance(spec.tolerance)
    disp = result_disp.rename(columns={"class": "klass"})
    n_tests = int(disp["p_value"].notna().sum()) if "p_value" in disp else 0
    many = disp["model"].nunique() > 1
    out = []

    def add(rec):
        rec["text"] = (f"Model {rec['model']!r}: {rec['statement']}" if many and rec.get("model")
                       else rec["statement"])
        out.append(rec)

    fails = disp[disp["verdict"] == FAIL].copy()
    if len(fails):
        with np.errstate(divide="ignore"):
            fails["_dist"] = np.abs(np.log(fails["ratio"].where(fails["ratio"] > 0)))
        fails["_sev"] = [SEVERITY_ORDER[band.severity(FAIL, bool(s), r)]
                         for s, r in zip(fails["significant"], fails["ratio"])]
        fails["_m"] = fails["metric"].map(METRIC_ORDER)
        fails = fails.sort_values(["_sev", "_m", "_dist"], ascending=[True, True, False],
                                  na_position="first")
        for r in fails.itertuples(index=False):
            side = disadvantaged(r.metric, r.value, r.reference_value)
            rec = {"severity": band.severity(FAIL, bool(r.significant), r.ratio),
                   "kind": "fail", "model": r.model, "class": r.klass,
                   "attribute": r.attribute, "group": r.group, "reference": r.reference,
                   "metric": r.metric, "value": r.value, "reference_value": r.reference_value,
                   "ratio": None if math.isnan(r.ratio) else float(r.ratio),
                   "difference": r.difference, "n": int(r.n), "reference_n": int(r.reference_n),
                   "ratio_ci_low": r.ratio_ci_low, "ratio_ci_high": r.ratio_ci_high,
                   "p_value_adjusted": r.p_value_adjusted, "significant": bool(r.significant),
                   "disadvantaged": {"group": r.group, "reference": r.reference}.get(side)}
            rec["statement"] = fail_statement(r, band, n_tests, spec.correction,
                                              spec.confidence)
            add(rec)
    top = worst.rename(columns={"class": "klass"})
    for w in top[top["summary"].isin(["demographic_parity", "equalized_odds"])
                 & top["klass"].notna()].itertuples(index=False):
        what = ("the share assigned a class" if w.summary == "demographic_parity" else
                "the true and false positive rates of a class")
        statement = (f"{w.attribute}: the class with the largest gap between groups in {what} "
                     f"is {w.klass!r} ({w.summary.replace('_', ' ')} difference {num(w.difference)}"
                     f", ratio {num(w.ratio)}; {w.n_classes_defined} of {len(classes)} classes "
                     "compared).")
        add({"severity": "info", "kind": "worst_class", "model": w.model, "class": w.klass,
             "attribute": w.attribute, "group": None, "metric": None, "summary": w.summary,
             "difference": w.difference, "ratio": w.ratio, "statement": statement})
    for (model, attribute), d in disp.groupby(["model", "attribute"], sort=False):
        if (d["verdict"] == PASS).all():
            add({"severity": "info", "kind": "pass", "model": model, "class": None,
                 "attribute": attribute, "group": None, "metric": None,
                 "statement": f"Every group of {attribute} is within the tolerance band for "
                              f"every class and metric."})
        ins = d[d["verdict"] == INSUFFICIENT]
        if len(ins):
            groups = list(dict.fromkeys(ins["group"]))
            reasons = list(dict.fromkeys(ins["verdict_reason"]))
            shown = ", ".join(repr(g) for g in groups[:6]) + (" ..." if len(groups) > 6 else "")
            why = reasons[0] + (f" (and {len(reasons) - 1} other reason(s))"
                                if len(reasons) > 1 else "")
            add({"severity": "info", "kind": "insufficient", "model": model, "class": None,
                 "attribute": attribute, "group": None, "metric": None, "groups": groups,
                 "statement": f"{len(ins):,} gap(s) of {len(groups)} group(s) of {attribute} "
                              f"could not be judged ({shown}): {why}."})
    out.sort(key=lambda f: SEVERITY_ORDER[f["severity"]])
    return out


# ---------------------------------------------------------------------------
# One call
# ---------------------------------------------------------------------------
def result_from_cube(cube: MulticlassCube, spec: AuditSpec, info=None,
                     warnings: list | None = None) -> MulticlassAuditResult:
    """The whole audit from the confusion tables alone."""
    from . import __version__
    from .audit import library_versions

    check_multiclass_spec(spec)
    res = multiclass_audit(cube, spec)
    warns = list(warnings or []) + list(getattr(info, "warnings", []) or []) + res.warnings
    per = res.groups[(res.groups["attribute"] != OVERALL) & (res.groups["model"] ==
                                                             spec.models[0])]
    per = per[per["class"] == res.classes[0]]
    small = per[per["n"] < spec.min_group_size]
    for attr, g in small.groupby("attribute", sort=False):
        warns.append(f"{attr}: {len(g)} group(s) have fewer than {spec.min_group_size} rows "
                     f"and get no pass/fail verdict ({', '.join(map(repr, g['group'][:5]))}"
                     f"{' ...' if len(g) > 5 else ''}).")
    n_used = cube.n_rows
    provenance = {
        "input": info.to_dict() if info is not None else None,
        "task": TASK,
        "rows_read": int(cube.n_rows_read),
        "rows_used": int(n_used),
        "rows_dropped": int(cube.n_rows_read - n_used),
        "dropped_reasons": {k: int(v) for k, v in cube.dropped.items()},
        "classes": list(res.classes),
        "weighted": bool(cube.weighted),
        "statistics": {"bootstrap_replicates": spec.n_bootstrap,
                       "confidence": spec.confidence, "alpha": spec.alpha,
                       "correction": spec.correction,
                       "one_vs_rest_decisions": len(res.classes) * len(spec.models)},
        "bootstrap_seed": spec.seed,
        "tool": "fairness_core",
        "tool_version": __version__,
        "library_versions": library_versions(),
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    found = multiclass_findings(res.disparities, res.worst, spec, res.classes)
    return MulticlassAuditResult(
        spec=spec, provenance=provenance, groups=res.groups, disparities=res.disparities,
        summary=res.summary, findings=found, classes=list(res.classes), worst=res.worst,
        group_summary=res.group_summary, confusion=cube.confusion_table(), warnings=warns)


def audit_multiclass_frame(df: pd.DataFrame, info=None, *, spec: AuditSpec
                           ) -> MulticlassAuditResult:
    """Audit a table of rows (or a count table, with ``spec.counts``) whose
    label and predictions hold classes."""
    check_multiclass_spec(spec)
    return result_from_cube(multiclass_cube(df, spec), spec, info)


def audit_multiclass_engine(data, spec: AuditSpec, *, table: str | None = None,
                            engine: str = "duckdb", spark_master: str = "local[*]",
                            name: str | None = None, progress=None,
                            progress_delay: float | None = None) -> MulticlassAuditResult:
    """Count the confusion tables where the data lives (one GROUP BY in
    DuckDB, Spark or a database; :func:`fairness_core.multiclass.cube_from_engine`)
    and audit them: the rows never come into memory.  ``progress``, when
    given, is called while the engine counts, as in
    :func:`fairness_core.engine.prepare_from_engine`."""
    from .engine import count_where_it_lives
    from .multiclass import cube_from_engine

    check_multiclass_spec(spec)
    cube, info = count_where_it_lives(
        data, lambda t, info, step: cube_from_engine(t, spec), table=table, engine=engine,
        spark_master=spark_master, progress=progress, progress_delay=progress_delay)
    if name is not None:
        info.name = name
    return result_from_cube(cube, spec, info)


def audit_multiclass_source(source, spec: AuditSpec) -> MulticlassAuditResult:
    """Audit a source of the administrator's list
    (:mod:`fairness_core.sources`) where it lives; messages name the source,
    never its URL or path."""
    from .sources import _failed, _redact, _target

    try:
        return audit_multiclass_engine(_target(source), spec, table=source.table,
                                       engine=source.engine, name=source.name)
    except InputError as err:
        if err.field in ("columns", "counts", "weight", "label", "predictions", "scores",
                         "sensitive", "bins", "task"):
            raise InputError(_redact(err.message, source), field=err.field,
                             column=err.column, value=err.value) from None
        raise _failed(source, err) from None


# ---------------------------------------------------------------------------
# Exports
# ---------------------------------------------------------------------------
def export_tables(result: MulticlassAuditResult, suppress_below: int = 0) -> dict:
    """The tables of a multiclass audit as exported (CSV: ``groups``; XLSX:
    every sheet), each with its ``class``; with suppression, the groups of
    fewer than ``k`` rows are blanked everywhere (the confusion counts
    too), and the summaries are computed again without them."""
    from .disparity import summary as summarise
    from .exports import suppress_small as blank
    from .multiclass import worst_class

    def suppress_small(df, k, columns):  # the class a row is about stays
        out = blank(df, k, columns)
        for c in ("class", "true_class", "predicted_class"):
            if c in df and c in out:
                out[c] = df[c].to_numpy()
        return out

    k = suppress_below
    summ, worst = result.summary, result.worst
    if k and k > 1:
        g, d = result.group_metrics, result.disparities
        parts = []
        for cls in result.classes:
            gc, dc = g[g["class"] == cls], d[d["class"] == cls]
            s = summarise(gc[gc["n"] >= k].drop(columns="class").reset_index(drop=True),
                          dc[(dc["n"] >= k) & (dc["reference_n"] >= k)].drop(columns="class"),
                          result.spec)
            s.insert(1, "class", cls)
            parts.append(s)
        summ = pd.concat(parts, ignore_index=True)
        worst = worst_class(summ)
        summ["note"] = f"computed without the groups of fewer than {k} rows"
    conf = result.confusion
    if k and k > 1:
        size = conf.groupby(["model", "attribute", "group"], sort=False)["n"].transform("sum")
        conf = suppress_small(conf.assign(group_n=size), k, ("group_n",)).drop(
            columns="group_n")
    return {
        "groups": suppress_small(result.group_table(), k, ("n",)),
        "disparities": suppress_small(result.disparities, k, ("n", "reference_n")),
        "summary": summ.assign(groups_below_min_size=summ["groups_below_min_size"].map(
            lambda g: ", ".join(map(str, g)))),
        "worst_class": worst,
        "group_summary": suppress_small(result.group_summary, k, ("n",)),
        "confusion": conf,
    }


def export_notes(result: MulticlassAuditResult) -> list[str]:
    """What the workbook's 'About' sheet adds for several classes."""
    return [f"A multiclass audit of {len(result.classes)} classes "
            f"({', '.join(map(str, result.classes))}): every class is audited one against the "
            "rest, and every row of the groups, disparities and summary sheets says which "
            "class it is about. 'worst_class' names, per attribute, the class with the largest "
            "gap; 'group_summary' holds each group's accuracy and macro-averaged rates; "
            "'confusion' the confusion table (true class x predicted class) of every group."]


# ---------------------------------------------------------------------------
# Terminal
# ---------------------------------------------------------------------------
STATUS = {FAIL: "FAIL", PASS: "pass", INSUFFICIENT: "-"}


def verdict_matrix(result: MulticlassAuditResult, model: str, attribute: str,
                   metrics=("selection_rate", "tpr", "fpr", "ppv")) -> pd.DataFrame:
    """Per class (rows) x metric (columns): the verdict over the attribute's
    groups, "fail (k)" when k groups fail, "pass" when every judged group
    passes, "-" when none is judged."""
    d = result.disparities
    d = d[(d["model"] == model) & (d["attribute"] == attribute)]
    rows = []
    for cls in result.classes:
        row = {"class": cls}
        for m in metrics:
            v = d[(d["class"] == cls) & (d["metric"] == m)]["verdict"]
            nf = int((v == FAIL).sum())
            row[m] = (f"fail ({nf})" if nf else "pass" if (v == PASS).any() else "-")
        rows.append(row)
    return pd.DataFrame(rows)


@functools.lru_cache(maxsize=1)
def _short_names() -> dict:
    from .metrics import REGISTRY

    return {m: REGISTRY[m].short for m in (*CLASS_METRICS, *MACRO_METRICS)}


def render_summary(result: MulticlassAuditResult, say=str) -> str:
    """The terminal summary: per model and attribute, the worst class, the
    per-class verdicts, each group's accuracy and macro rates; then the
    findings."""
    from .formatting import short
    from .tolerance import Tolerance as _T

    spec, prov = result.spec, result.provenance
    src = prov.get("input") or {}
    names = _short_names()
    lines = [f"Fairness audit of {short(src.get('name', 'data'))} (several classes): "
             f"{prov['rows_used']:,} rows used of {prov['rows_read']:,} read; "
             f"{len(result.classes)} classes of {short(spec.label)} "
             f"({', '.join(repr(short(str(c))) for c in result.classes)}), each audited one "
             f"against the rest; tolerance {_T(spec.tolerance).interval()}; minimum group "
             f"size {spec.min_group_size}."]
    for w in result.warnings:
        lines.append(f"Warning: {say(w)}")
    gs = result.group_summary
    for model in spec.models:
        lines.append("")
        lines.append(f"=== Model {short(model)!r} ===")
        ov = gs[(gs["model"] == model) & (gs["attribute"] == OVERALL)].iloc[0]
        lines.append(f"Overall: accuracy {pct(ov['accuracy'])}, macro TPR (balanced accuracy) "
                     f"{pct(ov['macro_tpr'])}, macro FPR {pct(ov['macro_fpr'])}, macro PPV "
                     f"{pct(ov['macro_ppv'])}")
        for attribute in spec.attribute_names():
            w = result.worst[(result.worst["model"] == model)
                             & (result.worst["attribute"] == attribute)].set_index("summary")
            lines.append("")
            parts = []
            for s in ("demographic_parity", "equalized_odds"):
                if s in w.index and w.loc[s, "class"] is not None:
                    parts.append(f"{s.replace('_', ' ')}: worst class "
                                 f"{short(str(w.loc[s, 'class']))!r} (difference "
                                 f"{num(w.loc[s, 'difference'])}, ratio "
                                 f"{num(w.loc[s, 'ratio'])})")
            lines.append(f"{short(attribute)}: " + ("; ".join(parts) or "no class compared")
                         + ".")
            vm = verdict_matrix(result, model, attribute)
            vm.columns = ["class"] + [names[c] for c in vm.columns[1:]]
            vm["class"] = [short(str(c), 30) for c in vm["class"]]
            lines.append("Verdicts per class (failing groups):")
            lines.append(vm.to_string(index=False))
            g = gs[(gs["model"] == model) & (gs["attribute"] == attribute)]
            tab = pd.DataFrame({"group": [short(x, 40) for x in g["group"]],
                                "n": [f"{int(x):,}" for x in g["n"]],
                                "accuracy": [pct(x) for x in g["accuracy"]],
                                "macro TPR": [pct(x) for x in g["macro_tpr"]],
                                "macro FPR": [pct(x) for x in g["macro_fpr"]],
                                "macro PPV": [pct(x) for x in g["macro_ppv"]]})
            lines.append(tab.head(40).to_string(index=False))
            if len(tab) > 40:
                lines.append(f"... {len(tab) - 40:,} more groups in the JSON, CSV and XLSX "
                             "outputs.")
    fs = result.findings
    if fs:
        lines.append("")
        lines.append("Findings (most severe first):")
        for f in fs[:12]:
            lines.append(f"- [{f['severity']}] {say(f['text'])}")
        if len(fs) > 12:
            lines.append(f"- ... {len(fs) - 12} more in the JSON output (--json).")
    return "\n".join(lines)


def is_multiclass(result) -> bool:
    return getattr(result, "task", "binary") == TASK


__all__ = ["MulticlassAuditResult", "audit_multiclass_engine", "audit_multiclass_frame",
           "check_multiclass_spec", "export_tables", "is_multiclass", "multiclass_findings",
           "render_summary", "result_from_cube", "verdict_matrix"]
