"""Verdicts rolled up for people: per attribute and metric (the overview's
matrix), and per group (the tables of the terminal and the report).

The dashboard, the report and the terminal only lay these tables out.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .disparity import FAIL, INSUFFICIENT, PASS
from .metrics import REGISTRY

REFERENCE, NOT_JUDGED, NONE = "reference", "not judged", "none"


def verdict_cell(d: pd.DataFrame) -> dict:
    """One attribute x metric: the verdict over its groups.

    Returns ``status`` (fail / pass / insufficient / none), ``n_fail``,
    ``n_fail_significant``, ``n_insufficient`` and ``detail``, e.g.
    ``"2 groups, 1 significant (1 not judged)"``.
    """
    if not len(d):
        return {"status": NONE, "n_fail": 0, "n_fail_significant": 0, "n_insufficient": 0,
                "detail": ""}
    v = d["verdict"].to_numpy()
    fails = v == FAIL
    n_fail = int(fails.sum())
    n_ins = int((v == INSUFFICIENT).sum())
    sig = int(d["significant"].to_numpy()[fails].astype(bool).sum()) \
        if "significant" in d else 0
    extra = f" ({n_ins} not judged)" if n_ins else ""
    if n_fail:
        status = FAIL
        detail = f"{n_fail} group{'s' if n_fail > 1 else ''}, {sig} significant{extra}"
    elif (v == PASS).any():
        status, detail = PASS, extra.strip(" ()")
    else:
        status, detail = INSUFFICIENT, ""
    return {"status": status, "n_fail": n_fail, "n_fail_significant": sig,
            "n_insufficient": n_ins, "detail": detail}


def verdict_matrix(disp: pd.DataFrame, model: str, attributes, metrics) -> pd.DataFrame:
    """One row per attribute: its reference group and, per metric, the
    :func:`verdict_cell` (columns ``<metric>`` = status and
    ``<metric>_detail``)."""
    d = disp[disp["model"] == model]
    rows = []
    for attr in attributes:
        da = d[d["attribute"] == attr]
        row = {"attribute": attr,
               "reference": str(da["reference"].iloc[0]) if len(da) else ""}
        for m in metrics:
            cell = verdict_cell(da[da["metric"] == m])
            row[m] = cell["status"]
            row[f"{m}_detail"] = cell["detail"]
        rows.append(row)
    return pd.DataFrame(rows)


def group_verdicts(disp: pd.DataFrame, groups: pd.DataFrame, model: str, attribute: str,
                   metrics) -> pd.DataFrame:
    """One row per group of an attribute, worst first (the reference first):
    ``group``, ``status`` (reference / fail / pass / not judged), ``failing``
    (list of (metric, significant) among ``metrics``, worst first),
    ``reason`` (why it was not judged) and ``distance`` (how far its worst
    failing ratio lies from 1, on a log scale; unbounded ratios are
    infinitely far)."""
    g = groups[(groups["model"] == model) & (groups["attribute"] == attribute)]
    d = disp[(disp["model"] == model) & (disp["attribute"] == attribute)
             & disp["metric"].isin(list(metrics))]
    refs = set(d["reference"])
    with np.errstate(divide="ignore"):
        dist = np.abs(np.log(d["ratio"].where(d["ratio"] > 0).to_numpy(dtype=float)))
    dist = np.where(np.isnan(dist), np.inf, dist)
    d = d.assign(_dist=np.where(d["verdict"].to_numpy() == FAIL, dist, 0.0),
                 _ins=d["verdict"].to_numpy() == INSUFFICIENT)
    # one pass over the disparities, whatever the number of groups
    fl = d[d["verdict"] == FAIL].sort_values("_dist", ascending=False, kind="stable")
    sig = fl["significant"].astype(bool) if "significant" in fl else [False] * len(fl)
    failing: dict = {}
    for grp, metric, s in zip(fl["group"], fl["metric"], sig):
        failing.setdefault(grp, []).append((metric, bool(s)))
    per = d.groupby("group", sort=False, dropna=False).agg(
        all_ins=("_ins", "all"), distance=("_dist", "max"))
    first = d.drop_duplicates("group")
    first_reason = dict(zip(first["group"], first["verdict_reason"]))
    all_ins, distance = per["all_ins"].to_dict(), per["distance"].to_dict()
    rows = []
    for grp in g["group"]:
        judged = grp in distance
        if not judged and grp in refs:
            rows.append({"group": grp, "status": REFERENCE, "failing": [], "reason": "",
                         "distance": np.inf, "_ref": 0})
            continue
        reason = ""
        if grp in failing:
            status = FAIL
        elif judged and all_ins[grp]:
            status, reason = NOT_JUDGED, str(first_reason[grp])
        elif judged:
            status = PASS
        else:
            status, reason = NOT_JUDGED, "no comparison"
        rows.append({"group": grp, "status": status, "failing": failing.get(grp, []),
                     "reason": reason, "distance": float(distance[grp]) if judged else 0.0,
                     "_ref": 1})
    out = pd.DataFrame(rows, columns=["group", "status", "failing", "reason", "distance",
                                      "_ref"])
    out = out.sort_values(["_ref", "distance"], ascending=[True, False], kind="stable")
    return out.drop(columns="_ref").reset_index(drop=True)


def failing_text(failing, limit: int = 4, star: str = "*") -> str:
    """``"FPR*, FDR* +2"``: the short names of failing metrics (``*`` marks
    a significant gap)."""
    names = [REGISTRY[m].short + (star if s else "") for m, s in failing]
    return ", ".join(names[:limit]) + (f" +{len(names) - limit}" if len(names) > limit else "")


def verdict_text(v, fail: str = "fail", limit: int = 4, star: str = "*",
                 reason: bool = False) -> str:
    """A row of :func:`group_verdicts` in words: ``reference``, ``pass``,
    ``not judged`` (with ``reason``: and why) or ``fail: FPR*, FDR``
    (``fail`` is the word used, e.g. ``"FAIL"`` in a terminal)."""
    if v.status == FAIL:
        return f"{fail}: " + failing_text(v.failing, limit=limit, star=star)
    if v.status == NOT_JUDGED and reason:
        return f"{NOT_JUDGED}: {v.reason}"
    return v.status
