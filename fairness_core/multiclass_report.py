"""The report of a multiclass audit: the same self-contained HTML (and PDF)
as the binary report, with sections for several classes: the worst class
per attribute, the verdicts per class, and every group's confusion matrix
as a heatmap.  User strings are autoescaped by the template."""
from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd

from . import formatting as fmt
from .exports import suppress_small
from .findings import CORRECTION_NAMES
from .metrics import REGISTRY
from .multiclass import CLASS_METRICS
from .multiclass_result import export_tables, verdict_matrix
from .report import _dropped, _environment, _Figures, _finding, _pairs, _table
from .tolerance import Tolerance

#: The methodology, in paragraphs (format fields from the spec).
METHOD = (
    "Each model predicts one class per person. For every group (and every combination of "
    "groups) the audit counts a confusion table: true class by predicted class. Every number "
    "below comes from these tables.",
    "fairlearn defines demographic parity for a yes/no decision: equal shares of each group "
    "selected. With several classes there is no single 'selected' outcome, so fairlearn "
    "leaves the multiclass case undefined (its selection rate would count only the "
    "predictions equal to one label and ignore the others). This audit asks instead, for each "
    "class c, the yes/no question 'is a person predicted c?' (one against the rest): the "
    "share of a group predicted c (demographic parity for c), and among the people whose true "
    "class is c, the share predicted c (true positive rate; equal opportunity for c), with the "
    "false positive rate, precision and the others, each with fairlearn's definition on that "
    "yes/no decision.",
    "The worst class of an attribute is the class with the largest between-group difference: "
    "zero only when every class is at parity. A group's accuracy is the share predicted its "
    "true class; its macro rates are the means of the one-against-the-rest rates over the "
    "classes (the macro true positive rate is scikit-learn's balanced accuracy).",
    "Each group is compared with its attribute's reference group ({strategy} group unless "
    "named). A ratio to the reference inside {band} passes; groups with fewer than {min_size} "
    "rows, an undefined rate, or a class that the group or the reference does not have are "
    "not judged. Intervals: {level}, Wilson for unweighted rates of one group, bootstrap "
    "({n_boot} replicates, seed {seed}) otherwise. All p-values of every class, model and "
    "attribute are corrected together ({correction}); a gap is significant when its adjusted "
    "p-value is below {alpha}.",
    "Who a gap disadvantages: being assigned a class is neither a benefit nor a harm in "
    "itself (an 'urgent' triage level helps a patient who needs it). So gaps in the share "
    "assigned a class are stated without taking a side; gaps among people with the same true "
    "class say whom the model misses or wrongly assigns more often.")
SHOWN = ("selection_rate", "tpr", "fpr", "ppv")


def _pct_table(df: pd.DataFrame, cols: dict) -> pd.DataFrame:
    out = pd.DataFrame({new: df[old] for old, new in cols.items()})
    for c in out.columns:
        if pd.api.types.is_float_dtype(out[c]):
            out[c] = [fmt.pct(v) for v in out[c]]
    return out


def html_report(result, *, title: str = "Fairness audit report", author: str = "",
                scope: str = "", dataset: str | None = None, suppress_below: int = 0) -> str:
    """The whole multiclass report as one HTML document."""
    from .multiclass_charts import confusion_heatmaps

    spec, prov = result.spec, result.provenance
    src = prov.get("input") or {}
    dataset = dataset or src.get("name") or "data"
    fig = _Figures()
    k = suppress_below
    band = Tolerance(spec.tolerance)
    fails = [f for f in result.findings if f["kind"] == "fail"]
    meta = [("Author", author or "(not given)"), ("Scope", scope or "(not given)"),
            ("Dataset", dataset), ("Models", ", ".join(spec.models)),
            ("Sensitive attributes", ", ".join(spec.attribute_names())),
            ("True class", f"{spec.label}: {len(result.classes)} classes"),
            ("Task", "several classes, each audited one against the rest")]
    w = export_tables(result, k)["worst_class"] if k and k > 1 else result.worst
    w = w[w["summary"].isin(["demographic_parity", "equalized_odds"])]
    worst = pd.DataFrame({"Model": w["model"], "Attribute": w["attribute"],
                          "Summary": w["summary"].str.replace("_", " "),
                          "Worst class": w["class"].map(lambda c: "" if c is None else str(c)),
                          "Difference": [fmt.num(v) for v in w["difference"]],
                          "Ratio": [fmt.num(v) for v in w["ratio"]],
                          "Classes compared": w["n_classes_defined"]})
    provenance = [("Input file", src.get("name")), ("SHA-256 of the input", src.get("sha256")),
                  ("Format", src.get("format")), ("Rows read", fmt.count(prov["rows_read"])),
                  ("Rows audited", fmt.count(prov["rows_used"])),
                  ("Rows left out", f"{fmt.count(prov['rows_dropped'])} ({_dropped(prov)})"),
                  ("Classes", ", ".join(map(str, result.classes))),
                  ("Bootstrap seed", prov.get("bootstrap_seed")),
                  ("Audit made (UTC)", prov["created_utc"]),
                  ("Tool", f"{prov['tool']} {prov['tool_version']}"),
                  ("Libraries", ", ".join(f"{a} {b}" for a, b in
                                          prov["library_versions"].items()))]
    if k and k > 1:
        provenance.append(("Privacy", f"The metrics and confusion counts of groups with fewer "
                                      f"than {k} rows are suppressed in this report's tables."))
    method = [p.format(strategy=spec.reference_strategy, band=band.band(),
                       min_size=spec.min_group_size, level=fmt.level(spec.confidence),
                       n_boot=fmt.count(spec.n_bootstrap), seed=spec.seed,
                       correction=CORRECTION_NAMES.get(spec.correction, spec.correction),
                       alpha=f"{spec.alpha:g}") for p in METHOD]
    short = {m: REGISTRY[m].short for m in CLASS_METRICS}
    matrices, attributes = [], []
    gs = result.group_summary
    for model in spec.models:
        for attr in spec.attribute_names():
            vm = verdict_matrix(result, model, attr, SHOWN)
            vm.columns = ["Class"] + [REGISTRY[m].label if f"({short[m]})" in REGISTRY[m].label
                                      else f"{REGISTRY[m].label} ({short[m]})" for m in SHOWN]
            vm["Class"] = vm["Class"].astype(str)
            matrices.append({"title": f"Model {model}, {attr}", "table": _table(vm)})
            g = gs[(gs["model"] == model) & (gs["attribute"] == attr)]
            g = suppress_small(g, k, ("n",)) if k and k > 1 else g
            summ = _pct_table(g, {"group": "Group", "n": "Rows", "accuracy": "Accuracy",
                                  "macro_tpr": "Macro TPR", "macro_fpr": "Macro FPR",
                                  "macro_ppv": "Macro PPV"})
            summ["Rows"] = ["" if v is None or pd.isna(v) else fmt.count(v)
                            for v in summ["Rows"]]
            conf = result.confusion
            if k and k > 1:
                small = set(g.loc[pd.to_numeric(g["n"], errors="coerce").isna(), "group"])
                conf = conf[~((conf["model"] == model) & (conf["attribute"] == attr)
                              & conf["group"].isin(small))]
            chart = fig(confusion_heatmaps(conf, model=model, attribute=attr,
                                           classes=result.classes,
                                           order=result.group_order(attr)))
            attributes.append({"title": f"Model {model}, {attr}",
                               "summary": _table(summ, numeric=("Rows",)), "chart": chart})
    limitations = [f"Rows left out: {_dropped(prov)}."]
    und = result.disparities[result.disparities["verdict_reason"].astype(str)
                             .str.contains("does not occur|undefined")]
    if len(und):
        limitations.append(f"{len(und):,} comparisons involve a class a group does not have or "
                           "an undefined rate (listed in the appendix with the reason).")
    limitations += [str(x) for x in result.warnings]
    gt = suppress_small(result.group_table(), k, ("n",))
    gt = gt[[c for c in ["model", "class", "attribute", "group", "n", "tp", "fp", "tn", "fn",
                         *CLASS_METRICS, "suppressed"] if c in gt]].copy()
    for m in CLASS_METRICS:
        gt[m] = ["" if v is None or pd.isna(v) else fmt.num(v) for v in gt[m]]
    gt["class"] = gt["class"].astype(str)
    dt = suppress_small(result.disparities, k)
    dt = dt[[c for c in ["model", "class", "attribute", "metric", "group", "reference", "value",
                         "reference_value", "ratio", "p_value_adjusted", "significant",
                         "verdict", "verdict_reason"] if c in dt]].copy()
    for c in ("value", "reference_value", "ratio", "p_value_adjusted"):
        dt[c] = ["" if v is None or pd.isna(v) else fmt.num(v) for v in dt[c]]
    dt["class"] = dt["class"].astype(str)
    context = {
        "title": title, "dataset": dataset, "models": ", ".join(spec.models),
        "made": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "meta": _pairs(meta), "band": band.band(), "classes": [str(c) for c in result.classes],
        "n_fail": len(fails), **{s: sum(f["severity"] == s for f in fails)
                                 for s in ("high", "medium", "low")},
        "top": [_finding(f) for f in fails[:5]], "worst": _table(worst),
        "provenance": _pairs(provenance), "settings": spec.to_json(), "method": method,
        "findings": [_finding(f) for f in result.findings], "matrices": matrices,
        "attributes": attributes, "limitations": limitations,
        "appendix_groups": _table(gt, numeric=("n", "tp", "fp", "tn", "fn", *CLASS_METRICS)),
        "appendix_disparities": _table(dt),
    }
    return _environment().get_template("multiclass_report.html.j2").render(context)


__all__ = ["html_report"]
