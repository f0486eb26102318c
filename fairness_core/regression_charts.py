"""Plotly figures of a regression audit: result tables in, figures out.

The same conventions as :mod:`fairness_core.charts` (one colour per group,
user strings through :func:`~fairness_core.charts.esc`, titles that say what
is shown).  Every figure reads the result's small tables: the metrics per
group, the binned error counts and their percentiles, and predicted against
actual per label bin; never rows.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from . import formatting as fmt
from .charts import _layout, esc, group_colors
from .regression_result import LABELS, amount, metric_text


def _rows(groups: pd.DataFrame, model: str, attribute: str, order=None) -> pd.DataFrame:
    g = groups[(groups["model"] == model) & (groups["attribute"] == attribute)]
    g = g.set_index("group")
    return g.loc[[x for x in (order or list(g.index)) if x in g.index]]


def metric_chart(groups: pd.DataFrame, *, model: str, attribute: str, metric: str,
                 reference: str | None = None, order=None, confidence: float = 0.95,
                 label: str = "") -> go.Figure:
    """A metric per group with its interval (a dot and an error bar); for the
    mean error, a line at 0 (no bias) and the sides named."""
    g = _rows(groups, model, attribute, order)
    colors = group_colors(list(g.index))
    fig = go.Figure()
    for grp, r in g.iterrows():
        v, lo, hi = r[metric], r[f"{metric}_ci_low"], r[f"{metric}_ci_high"]
        ref = " (reference)" if grp == reference else ""
        fig.add_trace(go.Scatter(
            x=[v], y=[esc(grp) + ref], mode="markers", name=esc(grp) + ref,
            marker=dict(size=13, color=colors[grp],
                        symbol="diamond" if grp == reference else "circle"),
            error_x=dict(type="data", symmetric=False,
                         array=[hi - v if np.isfinite(hi) else 0],
                         arrayminus=[v - lo if np.isfinite(lo) else 0], thickness=2, width=6),
            hovertemplate=(f"{esc(grp)}: {metric_text(v, metric)} ({fmt.level(confidence)} "
                           f"interval {metric_text(lo, metric)} to {metric_text(hi, metric)}"
                           f"); n = {int(r['n']):,}<extra></extra>"),
            showlegend=False))
    name = LABELS[metric]
    sub = f"{fmt.level(confidence)} intervals; model {esc(model)}"
    if metric == "mean_error":
        fig.add_vline(x=0, line=dict(color="#555555", dash="dash"))
        what = esc(label) if label else "the true value"
        sub += f"<br>left of 0: predictions below {what} (under-prediction); right: above"
    _layout(fig, f"{name} by {esc(attribute)}", height=max(300, 130 + 48 * len(g)),
            subtitle=sub)
    fig.update_xaxes(title=name)
    fig.update_yaxes(autorange="reversed", type="category")
    return fig


def error_box_chart(quantiles: pd.DataFrame, groups: pd.DataFrame, *, model: str,
                    attribute: str, order=None, label: str = "") -> go.Figure:
    """The error's distribution per group as boxes read off the binned
    counts: the box from the 25th to the 75th percentile, the line at the
    median, the whiskers at the 5th and 95th percentiles, the mean as a
    dashed line."""
    q = _rows(quantiles, model, attribute, order)
    g = _rows(groups, model, attribute, order)
    colors = group_colors(list(q.index))
    fig = go.Figure()
    for grp, r in q.iterrows():
        fig.add_trace(go.Box(
            name=esc(grp), x=[esc(grp)], q1=[r["p25"]], median=[r["median"]], q3=[r["p75"]],
            lowerfence=[r["p05"]], upperfence=[r["p95"]],
            mean=[g.loc[grp, "mean_error"]] if grp in g.index else None, boxmean=True,
            marker_color=colors[grp], showlegend=False,
            hovertemplate=(f"{esc(grp)}: median {amount(r['median'])}, middle half "
                           f"{amount(r['p25'])} to {amount(r['p75'])}, 90% within "
                           f"{amount(r['p05'])} to {amount(r['p95'])}<extra></extra>")))
    fig.add_hline(y=0, line=dict(color="#555555", dash="dash"))
    what = f" of {esc(label)}" if label else ""
    _layout(fig, f"Prediction errors{what} by {esc(attribute)}", height=480,
            subtitle=f"prediction minus true value; box: middle half, whiskers: 5th to 95th "
                     f"percentile, dashed: mean; from binned counts; model {esc(model)}")
    fig.update_yaxes(title="prediction - true value")
    return fig


def predicted_vs_actual_chart(pva: pd.DataFrame, *, model: str, attribute: str, order=None,
                              label: str = "", min_rows: int = 5) -> go.Figure:
    """The mean prediction against the mean true value per label bin, one
    line per group, with the diagonal of perfect predictions.  Bins with
    fewer than ``min_rows`` rows are left out."""
    p = pva[(pva["model"] == model) & (pva["attribute"] == attribute)
            & (pva["n"] >= min_rows)]
    groups = [x for x in (order or list(dict.fromkeys(p["group"])))
              if x in set(p["group"])]
    colors = group_colors(order or groups)
    fig = go.Figure()
    lo = float(np.nanmin(p[["mean_label", "mean_prediction"]].to_numpy())) if len(p) else 0
    hi = float(np.nanmax(p[["mean_label", "mean_prediction"]].to_numpy())) if len(p) else 1
    fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="perfect prediction",
                             line=dict(color="#999999", dash="dot")))
    for grp in groups:
        b = p[p["group"] == grp].sort_values("bin")
        fig.add_trace(go.Scatter(
            x=b["mean_label"], y=b["mean_prediction"], mode="lines+markers", name=esc(grp),
            line=dict(color=colors.get(grp)), marker=dict(size=np.clip(
                4 + 2 * np.log1p(b["n"].to_numpy()), 4, 16)),
            customdata=b["n"], hovertemplate=(f"{esc(grp)}: true %{{x:,.4g}}, predicted "
                                              "%{y:,.4g} (%{customdata:,} rows)"
                                              "<extra></extra>")))
    what = esc(label) if label else "value"
    _layout(fig, f"Predicted against true {what}, by {esc(attribute)}", height=500,
            subtitle=f"mean per bin of the true value; below the diagonal the model "
                     f"under-predicts; model {esc(model)}")
    fig.update_xaxes(title="true value (mean per bin)")
    fig.update_yaxes(title="prediction (mean per bin)")
    fig.update_layout(margin=dict(l=70))
    return fig
