"""plotly figures of a multiclass audit, from its tables alone: the
confusion matrix of every group as a heatmap (from the counts), and the
verdicts per class and metric.  User strings are escaped for plotly."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from . import formatting as fmt
from .charts import _layout, esc
from .disparity import FAIL, INSUFFICIENT, PASS


def confusion_heatmaps(confusion: pd.DataFrame, *, model: str, attribute: str,
                       classes: list, order=None) -> go.Figure:
    """Per group, its ``k x k`` confusion matrix: each cell the share of the
    row's true class given that predicted class (rows add up to 100%), with
    the number of rows (weight, when weighted) in brackets."""
    from plotly.subplots import make_subplots

    c = confusion[(confusion["model"] == model) & (confusion["attribute"] == attribute)]
    groups = list(order) if order is not None else list(dict.fromkeys(c["group"]))
    groups = [g for g in groups if g in set(c["group"])]
    k = len(classes)
    pos = {x: i for i, x in enumerate(classes)}
    n = max(len(groups), 1)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[esc(g) for g in groups],
                        horizontal_spacing=0.04, vertical_spacing=0.16 if rows > 1 else 0.1)
    names = [esc(x) for x in classes]
    for i, g in enumerate(groups):
        part = c[c["group"] == g]
        t = np.zeros((k, k))
        t[part["true_class"].map(pos).to_numpy(), part["predicted_class"].map(pos)
          .to_numpy()] = part["weight"].to_numpy(dtype=float)
        tot = t.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            z = np.where(tot > 0, t / tot, np.nan)
        txt = [[("" if np.isnan(z[a, b]) else fmt.pct(z[a, b]))
                + f"<br>({fmt.count(round(t[a, b]))})" for b in range(k)] for a in range(k)]
        z = [[None if np.isnan(v) else float(v) for v in row] for row in z]
        fig.add_heatmap(z=z, x=names, y=names, text=txt, texttemplate="%{text}",
                        colorscale="Blues", zmin=0, zmax=1, showscale=False,
                        row=i // cols + 1, col=i % cols + 1,
                        hovertemplate="true %{y}, predicted %{x}: %{z:.1%} of the true class"
                                      "<extra></extra>")
    for ax in fig.layout:
        if ax.startswith("yaxis"):
            fig.layout[ax].autorange = "reversed"
    fig.update_xaxes(title_text="predicted class", title_font=dict(size=11))
    fig.update_yaxes(title_text="true class", title_font=dict(size=11), col=1)
    for j in range(2, cols + 1):  # the classes are named once per row of plots
        fig.update_yaxes(showticklabels=False, col=j)
    return _layout(fig, f"Confusion matrix per group of {esc(attribute)}",
                   subtitle=f"Model {esc(model)}. Each row: the people of one true class, "
                            "and the share given each predicted class (rows).",
                   height=max(300, (110 + 60 * k) * rows + 120))


STATUS_CODE = {FAIL: 2, INSUFFICIENT: 1, PASS: 0}


def verdict_heatmap(disparities: pd.DataFrame, *, model: str, attribute: str, cls,
                    metrics: list, labels: dict, order=None) -> go.Figure:
    """Groups (rows) x metrics (columns) for one class: the ratio to the
    reference, coloured by the verdict (green pass, grey not judged, red
    fail)."""
    d = disparities[(disparities["model"] == model) & (disparities["attribute"] == attribute)
                    & (disparities["class"] == cls) & disparities["metric"].isin(metrics)]
    groups = list(order) if order is not None else list(dict.fromkeys(d["group"]))
    ref = d["reference"].iloc[0] if len(d) else None
    z = np.full((len(groups), len(metrics)), np.nan)
    txt = [["" for _ in metrics] for _ in groups]
    idx = {(g, m): (i, j) for i, g in enumerate(groups) for j, m in enumerate(metrics)}
    for r in d.itertuples(index=False):
        if (r.group, r.metric) not in idx:
            continue
        i, j = idx[(r.group, r.metric)]
        z[i, j] = STATUS_CODE.get(r.verdict, 1)
        txt[i][j] = f"{fmt.num(r.ratio, 2)}" + (" *" if getattr(r, "significant", False)
                                                and r.verdict == FAIL else "")
    for i, g in enumerate(groups):
        if g == ref:
            for j in range(len(metrics)):
                z[i, j], txt[i][j] = -1, "reference"
    fig = go.Figure(go.Heatmap(
        z=[[None if np.isnan(v) else float(v) for v in row] for row in z], x=[esc(labels.get(m, m)) for m in metrics], y=[esc(g) for g in groups],
        text=txt, texttemplate="%{text}", zmin=-1, zmax=2, showscale=False,
        colorscale=[[0, "#DDE6F0"], [0.25, "#DDE6F0"], [0.25, "#CDEBC9"], [0.5, "#CDEBC9"],
                    [0.5, "#E6E6E6"], [0.75, "#E6E6E6"], [0.75, "#F4B6B0"], [1, "#F4B6B0"]],
        hovertemplate="%{y}, %{x}: ratio %{text}<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, f"Verdicts for the class {esc(cls)} by group of {esc(attribute)}",
                   subtitle=f"Model {esc(model)}. Ratio to the reference group; red fails the "
                            "tolerance (* significant), green passes, grey is not judged.",
                   height=max(260, 40 * len(groups) + 170))
