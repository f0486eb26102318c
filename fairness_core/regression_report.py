"""The report of a regression audit: the binary report's skeleton (the same
page, styles, table macros, provenance and PDF printing) with the sections
a numeric outcome needs: mean error, MAE, RMSE and R² per group with their
intervals, error distributions and predicted against actual per group, the
bounded group loss and the findings.

As in :mod:`fairness_core.report`, this module prepares plain strings and
tables and the template escapes them; only plotly's chart HTML is inserted
as it is.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pandas as pd

from . import formatting as fmt
from . import regression as rg
from .exports import suppress_small
from .regression_result import (INTERVALS, LABELS, RegressionResult, bounded_loss_table,
                                metric_definitions, metric_text)
from .report import _Figures, _environment, _pairs, _provenance, _table
from .tolerance import Tolerance

CORRECTIONS = {"bh": "Benjamini-Hochberg", "holm": "Holm"}


def _cell(v, metric: str) -> str:
    return "" if v is None or pd.isna(v) else metric_text(v, metric)


def _group_table(result: RegressionResult, model: str, attribute: str,
                 suppress_below: int) -> pd.DataFrame:
    """One row per group: rows, each metric with its interval, the verdict."""
    g = result.group_metrics
    g = g[(g["model"] == model) & (g["attribute"] == attribute)]
    d = result.disparities
    d = d[(d["model"] == model) & (d["attribute"] == attribute)]
    ref = d["reference"].iloc[0] if len(d) else None
    recs = []
    for r in g.itertuples(index=False):
        rec = {"Group": r.group, "Rows": fmt.count(r.n)}
        small = suppress_below and suppress_below > 1 and r.n < suppress_below
        for m in ("mean_label", "mean_error", "mae", "rmse", "r2"):
            v, lo, hi = (getattr(r, m), getattr(r, f"{m}_ci_low"), getattr(r, f"{m}_ci_high"))
            rec[LABELS[m]] = "suppressed" if small else (
                f"{_cell(v, m)} ({_cell(lo, m)} to {_cell(hi, m)})" if not pd.isna(lo)
                else _cell(v, m))
        mine = d[d["group"] == r.group]
        if r.group == ref:
            rec["Verdict"] = "reference"
        else:
            fails = mine[mine["verdict"] == "fail"]["metric"].tolist()
            me = mine[mine["metric"] == "mean_error"]
            sig = bool(len(me) and me["significant"].iloc[0])
            parts = ([f"fails {', '.join(LABELS[m] for m in fails)}"] if fails else []) + (
                ["mean error differs significantly"] if sig else [])
            all_small = len(mine) and (mine["verdict"].dropna() == "insufficient").all()
            rec["Verdict"] = "; ".join(parts) or ("too small to judge" if all_small
                                                  else "pass")
        recs.append(rec)
    return pd.DataFrame(recs)


def _summary_table(result: RegressionResult) -> pd.DataFrame:
    s = result.summary
    s = s[s["metric"].isin(["mean_error", "mae", "rmse", "r2"])]
    return pd.DataFrame({
        "Model": s["model"], "Attribute": s["attribute"],
        "Metric": [LABELS[m] for m in s["metric"]],
        "Largest gap (max - min)": [_cell(v, m) for v, m in zip(s["difference"], s["metric"])],
        "Smallest ratio (min / max)": ["" if pd.isna(v) else f"{v:.3f}" for v in s["ratio"]],
        "Highest": [f"{g} ({_cell(v, m)})" for g, v, m in
                    zip(s["worst_group"], s["worst_value"], s["metric"])],
        "Lowest": [f"{g} ({_cell(v, m)})" for g, v, m in
                   zip(s["best_group"], s["best_value"], s["metric"])],
        "Fail / significant": [f"{a} / {b}" for a, b in zip(s["n_fail"], s["n_significant"])]})


def html_report(result: RegressionResult, *, title: str = "Fairness audit report",
                author: str = "", scope: str = "", dataset: str | None = None,
                suppress_below: int = 0) -> str:
    """The whole report of a regression audit as one HTML document."""
    from . import regression_charts as rc

    spec, prov = result.spec, result.provenance
    src = prov.get("input") or {}
    dataset = dataset or src.get("name") or "data"
    fig = _Figures()
    label = spec.label
    direction = "a benefit" if spec.positive_decision == "benefit" else "a harm"
    meta = [("Author", author or "(not given)"), ("Scope", scope or "(not given)"),
            ("Dataset", dataset), ("Models", ", ".join(spec.models)),
            ("Sensitive attributes", ", ".join(spec.attribute_names())),
            ("True value", label), ("A higher prediction is", f"{direction} for the person")]
    fails = [f for f in result.findings if f["kind"] in ("fail", "error_gap")]
    sev = pd.Series([f["severity"] for f in fails], dtype=object).value_counts()
    summary = {"n_gaps": sum(f["kind"] == "error_gap" for f in fails),
               "n_fail": sum(f["kind"] == "fail" for f in fails),
               "high": int(sev.get("high", 0)), "medium": int(sev.get("medium", 0)),
               "low": int(sev.get("low", 0)),
               "top": [{"severity": f["severity"], "text": f["text"]} for f in fails[:5]],
               "table": _table(_summary_table(result)), "bgl": _table(bounded_loss_table(result))}
    defs = metric_definitions()
    mt = pd.DataFrame([{"Metric": d["label"], "Meaning": d["definition"],
                        "Formula": d["formula"], "Interval": d["interval"],
                        "Test": d["test"]} for d in defs.values()])
    method = {"reference": json.dumps(spec.reference) if spec.reference else "none named",
              "min_group_size": spec.min_group_size,
              "intervals": (f"for the means (mean true value, mean prediction, mean error, "
                            f"MAE), a {INTERVALS['mae']}; for RMSE, a {INTERVALS['rmse']}; "
                            f"for R², a {INTERVALS['r2']}. With sample weights, Kish's "
                            "effective number of rows."),
              "correction": CORRECTIONS.get(spec.correction, spec.correction),
              "alpha": f"{spec.alpha:g}", "metrics": _table(mt)}
    single = [a for a in spec.attribute_names() if " & " not in a]
    attributes = []
    dist = result.distributions
    for attr in single:
        order = result.group_order(attr)
        parts = []
        for model in spec.models:
            d = result.disparities
            d = d[(d["model"] == model) & (d["attribute"] == attr)]
            ref = d["reference"].iloc[0] if len(d) else None
            kw = dict(model=model, attribute=attr, order=order)
            charts = [fig(rc.metric_chart(result.groups, metric="mean_error", reference=ref,
                                          confidence=spec.confidence, label=label, **kw)),
                      fig(rc.metric_chart(result.groups, metric="mae", reference=ref,
                                          confidence=spec.confidence, **kw)),
                      fig(rc.error_box_chart(dist["error_quantiles"], result.groups,
                                             label=label, **kw)),
                      fig(rc.predicted_vs_actual_chart(dist["predicted_vs_actual"],
                                                       label=label, **kw))]
            parts.append({"model": model, "charts": charts, "table": _table(
                _group_table(result, model, attr, suppress_below), numeric=("Rows",))})
        attributes.append({"name": attr, "models": parts})
    limitations = []
    for r in result.disparities[result.disparities["verdict"] == "insufficient"][
            ["model", "attribute", "group"]].drop_duplicates().itertuples(index=False):
        limitations.append(f"Model {r.model}, {r.attribute}: {r.group} is not judged "
                           f"(fewer than {spec.min_group_size} rows or an undefined value).")
    limitations.append("The distributions are read off binned counts (the first and last "
                       "bins also hold the errors beyond them): their percentiles are exact "
                       "to within one bin.")
    limitations += [str(w) for w in result.warnings]
    gt = suppress_small(result.group_table(), suppress_below, ("n",))
    for m in rg.METRICS:
        for c in (m, f"{m}_ci_low", f"{m}_ci_high"):
            gt[c] = [_cell(v, m) for v in gt[c]]
    dt = suppress_small(result.disparities, suppress_below)
    cols = ["model", "attribute", "metric", "group", "reference", "value", "reference_value",
            "difference", "difference_ci_low", "difference_ci_high", "ratio",
            "p_value_adjusted", "significant", "verdict", "verdict_reason"]
    dt = dt[cols].copy()
    for c in ("value", "reference_value", "difference", "difference_ci_low",
              "difference_ci_high"):
        dt[c] = [_cell(v, m) for v, m in zip(dt[c], dt["metric"])]
    dt["ratio"] = ["" if v is None or pd.isna(v) else f"{v:.3f}" for v in dt["ratio"]]
    dt["p_value_adjusted"] = ["" if v is None or pd.isna(v) else fmt.p_value(v)
                              for v in dt["p_value_adjusted"]]
    provenance = _provenance(result, suppress_below)
    provenance = [(k, v) for k, v in provenance if k != "Bootstrap seed"]
    context = {
        "title": title, "dataset": dataset, "models": ", ".join(spec.models),
        "made": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "meta": _pairs(meta), "band": Tolerance(spec.tolerance).band(),
        "level": fmt.level(spec.confidence), "label": label, "direction": direction,
        "summary": summary, "provenance": provenance, "settings": spec.to_json(),
        "method": method,
        "findings": [{"severity": f["severity"], "text": f["text"]} for f in result.findings],
        "attributes": attributes, "limitations": limitations,
        "appendix_groups": _table(gt, numeric=("n",)), "appendix_disparities": _table(dt),
    }
    return _environment().get_template("regression_report.html.j2").render(context)
