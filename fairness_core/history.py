"""Saved audits over time: the disparities of one model across its saved
audits (for a trend chart), and a before/after table of two saved audits.

Both read the stored results (the audit JSON kept by
:mod:`fairness_core.store`), never rows.  :func:`before_after` is a plain
side-by-side of the stored numbers; a fuller comparison with intervals of
the change can take its place with the same inputs.
"""
from __future__ import annotations

import pandas as pd

from .metrics import REGISTRY, available_metrics, key_metrics

KEYS = ["model", "attribute", "metric", "group"]
#: The disparity columns a trend and a before/after table show.
SHOWN = ["reference", "value", "reference_value", "ratio", "ratio_ci_low", "ratio_ci_high",
         "verdict", "significant", "n"]


def disparities_of(results: dict) -> pd.DataFrame:
    """A saved audit's disparity table (from its stored JSON)."""
    d = pd.DataFrame(results.get("disparities") or [])
    for c in KEYS + SHOWN:
        if c not in d:
            d[c] = None
    return d


def trend_metrics(results: dict) -> list[str]:
    """The key metrics of a saved audit (for its kind of decision and
    whether it has a true outcome), the first to follow over time."""
    spec = results.get("spec") or {}
    labelled = spec.get("label") is not None
    keys = available_metrics(labelled, key_metrics(spec.get("positive_decision", "benefit")))
    present = set(disparities_of(results)["metric"])
    return [m for m in keys if m in present]


def trend_table(saved: list[dict], model: str, metric: str) -> pd.DataFrame:
    """One metric's disparities of ``model`` across saved audits.

    Parameters
    ----------
    saved : list of dict
        Saved audits as :meth:`fairness_core.store.Store.audit` returns
        them (``id``, ``version``, ``saved_at``, ``data_name``, ``results``).

    Returns
    -------
    DataFrame
        One row per audit x attribute x group: ``audit_id, version,
        saved_at, data_name`` and the disparity's columns (ratio with its
        interval, verdict, ...), oldest audit first.
    """
    parts = []
    for a in saved:
        d = disparities_of(a["results"])
        d = d[(d["model"] == model) & (d["metric"] == metric)]
        if not len(d):
            continue
        parts.append(d[KEYS + SHOWN].assign(audit_id=a["id"], version=a["version"],
                                             saved_at=a["saved_at"],
                                             data_name=a["data_name"]))
    cols = ["audit_id", "version", "saved_at", "data_name"] + KEYS + SHOWN
    if not parts:
        return pd.DataFrame(columns=cols)
    out = pd.concat(parts, ignore_index=True)[cols]
    return out.sort_values(["saved_at", "audit_id"], kind="stable").reset_index(drop=True)


def before_after(before: dict, after: dict) -> pd.DataFrame:
    """The disparities of two saved audits side by side.

    ``before`` and ``after`` are stored results (the audit JSON).  One row
    per model x attribute x metric x group present in either, with the
    value, ratio and verdict before and after and the change of the ratio
    (after minus before); a gap present in only one audit has blanks on the
    other side.  Rows whose verdict changed come first.
    """
    cols = ["value", "ratio", "ratio_ci_low", "ratio_ci_high", "verdict"]
    a = disparities_of(before)[KEYS + cols]
    b = disparities_of(after)[KEYS + cols]
    out = a.merge(b, on=KEYS, how="outer", suffixes=("_before", "_after"))
    for c in ("ratio_before", "ratio_after"):
        out[c] = pd.to_numeric(out[c], errors="coerce")
    out["ratio_change"] = out["ratio_after"] - out["ratio_before"]
    out["verdict_changed"] = out["verdict_before"].fillna("") != out["verdict_after"].fillna("")
    out["metric_label"] = out["metric"].map(lambda m: REGISTRY[m].label if m in REGISTRY
                                            else m)
    out = out.sort_values(["verdict_changed", "model", "attribute", "metric", "group"],
                          ascending=[False, True, True, True, True], kind="stable")
    return out.reset_index(drop=True)
