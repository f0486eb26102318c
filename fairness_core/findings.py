"""Plain-language statements derived from the audit's tables."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .disparity import FAIL, INSUFFICIENT, PASS
from .metrics import REGISTRY

SEVERITY_ORDER = {"high": 0, "medium": 1, "info": 2}


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _severity(ratio: float, tolerance: float) -> str:
    if ratio is None or math.isnan(ratio) or ratio == 0:
        return "high"
    # how far outside the band, on the log scale, relative to the band's width
    return "high" if abs(math.log(ratio)) >= 2 * abs(math.log(tolerance)) else "medium"


def _fail_text(r, tolerance: float) -> str:
    m = REGISTRY[r.metric]
    if r.reference_value == 0:
        rel = "while the reference is at 0"
    else:
        rel = f"ratio {r.ratio:.3f}"
    return (f"{m.label} of {r.attribute} = {r.group!r} is {_pct(r.value)} vs "
            f"{_pct(r.reference_value)} for the reference {r.reference!r} ({rel}, difference "
            f"{100 * r.difference:+.1f} points; n = {r.n:,} vs {r.reference_n:,}) for model "
            f"{r.model!r}. This is outside the tolerance band [{tolerance:g}, "
            f"{1 / tolerance:.3g}].")


def findings(disp: pd.DataFrame, tolerance: float,
             key_metrics=("selection_rate", "tpr", "fpr")) -> list[dict]:
    """Statements, most severe first, each with the numbers behind it."""
    out = []
    fails = disp[disp["verdict"] == FAIL].copy()
    if len(fails):
        fails["_dist"] = np.abs(np.log(fails["ratio"].where(fails["ratio"] > 0)))
        fails = fails.sort_values("_dist", ascending=False, na_position="first")
        for r in fails.itertuples(index=False):
            out.append({"severity": _severity(r.ratio, tolerance), "kind": "fail",
                        "model": r.model, "attribute": r.attribute, "group": r.group,
                        "reference": r.reference, "metric": r.metric,
                        "value": r.value, "reference_value": r.reference_value,
                        "ratio": None if math.isnan(r.ratio) else r.ratio,
                        "text": _fail_text(r, tolerance)})
    key = disp[disp["metric"].isin(key_metrics)]
    for (model, attribute), d in key.groupby(["model", "attribute"], sort=False):
        if (d["verdict"] == PASS).all():
            out.append({"severity": "info", "kind": "pass", "model": model,
                        "attribute": attribute, "group": None, "metric": None,
                        "text": f"For model {model!r}, every group of {attribute} is "
                                f"within the tolerance band for selection rate, true "
                                f"positive rate and false positive rate."})
        insuff = d[d["verdict"] == INSUFFICIENT]
        if len(insuff):
            groups = list(dict.fromkeys(insuff["group"]))
            shown = ", ".join(repr(g) for g in groups[:6]) + (" ..." if len(groups) > 6 else "")
            out.append({"severity": "info", "kind": "insufficient", "model": model,
                        "attribute": attribute, "group": None, "metric": None,
                        "text": f"For model {model!r}, {len(groups)} group(s) of "
                                f"{attribute} could not be judged ({shown}): too few rows "
                                f"or an undefined rate. "
                                + insuff.iloc[0]["verdict_reason"].capitalize() + "."})
    out.sort(key=lambda f: SEVERITY_ORDER[f["severity"]])
    return out
