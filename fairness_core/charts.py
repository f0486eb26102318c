"""Plotly figure builders: audit result tables in, figures out.

Used by the dashboard and the reports alike.  Conventions:

- one colour per group, the same in every chart (:func:`group_colors`),
  from colour-blind-safe palettes (Okabe-Ito, then Paul Tol's muted);
- titles say what is shown, axes say the unit;
- every user-provided string (column and group names) goes through
  :func:`esc`, because plotly renders a subset of HTML in text;
- numbers are written by :mod:`fairness_core.formatting`, the tolerance band
  by :class:`fairness_core.tolerance.Tolerance`, and the interval level by
  ``formatting.level(confidence)``.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from . import formatting as fmt
from .counts import CELLS
from .errors import ExportUnavailable  # also the name callers catch as charts.ExportUnavailable
from .metrics import REGISTRY
from .tolerance import Tolerance

OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000",
             "#F0E442"]
TOL_MUTED = ["#332288", "#88CCEE", "#44AA99", "#117733", "#999933", "#DDCC77", "#CC6677",
             "#882255", "#AA4499", "#DDDDDD"]
PALETTE = OKABE_ITO[:7] + TOL_MUTED
VERDICT_STYLE = {"pass": ("✔ pass", "#009E73"), "fail": ("✖ fail", "#D55E00"),
                 "insufficient": ("○ not judged", "#999999"),
                 "reference": ("reference", "#0072B2")}
FONT = dict(size=15)
BAND_COLOR = "rgba(0, 158, 115, 0.13)"
#: Round ratios a log ratio axis may be labelled with (1.5625 = 1 / 0.64).
RATIO_TICKS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 0.64, 0.8, 1.0, 1.25, 1.5625, 2.0,
               4.0, 5.0, 10.0, 20.0, 50.0, 100.0)
#: The hatch that marks the reference group's bar.
REFERENCE_HATCH = dict(shape="/", fillmode="replace", fgcolor="#FFFFFF", fgopacity=0.5,
                       size=10, solidity=0.2)


def esc(text) -> str:
    """Escape a user string for plotly's text rendering.

    plotly.js turns a few HTML-like tags in any text into formatting
    (``<b>``, ``<i>``, ``<br>``, ``<sup>``, ``<sub>``, ``<span>``, ``<a>``)
    and decodes numeric entities and the named ones ``&amp;``, ``&lt;``,
    ``&gt;``, ``&nbsp;``, ``&times;``, ``&plusmn;``, ``&deg;`` and ``&mu;``,
    but not ``&quot;``.  So ``&``, ``<`` and ``>`` are escaped (no tag and
    no entity comes from a name) and quotes are left alone (they show as
    themselves).
    """
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def group_colors(labels) -> dict:
    """A fixed colour per group label, by its position in the attribute's
    group order (so a group keeps its colour in every chart)."""
    return {lab: PALETTE[i % len(PALETTE)] for i, lab in enumerate(labels)}


def _layout(fig: go.Figure, title: str, height: int = 460, subtitle: str = "",
            **kw) -> go.Figure:
    fig.update_layout(title=dict(text=title, x=0, xanchor="left", font=dict(size=18),
                                 subtitle=dict(text=subtitle, font=dict(size=13,
                                                                        color="#555555"))),
                      font=FONT, height=height, plot_bgcolor="white", paper_bgcolor="white",
                      legend=dict(orientation="h", yanchor="top", y=-0.18, x=0,
                                  font=dict(size=13)),
                      margin=dict(l=10, r=10, b=10,
                                  t=(110 if "<br>" in subtitle else 90) if subtitle else 60),
                      **kw)
    # a light style set directly: a named template costs ~5 ms per figure
    fig.update_xaxes(gridcolor="#E8E8E8", zerolinecolor="#BBBBBB", linecolor="#999999")
    fig.update_yaxes(gridcolor="#E8E8E8", zerolinecolor="#BBBBBB", linecolor="#999999")
    return fig


def _metric_rows(groups: pd.DataFrame, model: str, attribute: str,
                 metric: str) -> pd.DataFrame:
    """One metric of one model and attribute, indexed by group: ``value``,
    ``ci_low``, ``ci_high``, ``n``.

    ``groups`` is the long table (:attr:`AuditResult.long`, recognised by
    its ``metric`` column) or the wide one (:attr:`AuditResult.groups`),
    which is reshaped the same way."""
    g = groups[(groups["model"] == model) & (groups["attribute"] == attribute)]
    if "metric" not in g:
        from .audit import AuditResult
        g = AuditResult.long_table(g)
    return g[g["metric"] == metric].set_index("group")


def ratio_ticks(low: float, high: float, tolerance: Tolerance,
                min_gap: float = 0.045) -> tuple[list[float], list[str]]:
    """Readable ticks for a log ratio axis from ``low`` to ``high``.

    1 and the ends of the tolerance band (those inside the axis) always get
    a tick; the round ratios of :data:`RATIO_TICKS` inside the axis are
    added where they keep at least ``min_gap`` of the axis' (log) width
    from every tick already chosen, so that no two labels collide.

    Returns
    -------
    (values, labels)
        Ascending values and their plain labels (``"0.8"``, ``"1"``,
        ``"1.25"``; the band's ends written as :meth:`Tolerance.band` does).
    """
    span = math.log10(high / low)
    ends = {tolerance.low: f"{tolerance.low:g}", tolerance.high: f"{tolerance.high:.3g}"}
    chosen = [v for v in dict.fromkeys((1.0, tolerance.low, tolerance.high))
              if low <= v <= high]
    for v in RATIO_TICKS:
        if low <= v <= high and all(abs(math.log10(v / c)) >= min_gap * span
                                    for c in chosen):
            chosen.append(v)
    chosen.sort()
    return chosen, [ends.get(v, f"{v:.3g}") for v in chosen]


# ---------------------------------------------------------------------------
def group_metric_chart(groups: pd.DataFrame, disparities: pd.DataFrame, *, model: str,
                       attribute: str, metric: str, tolerance: float, order=None,
                       confidence: float = 0.95) -> go.Figure:
    """Bars of one metric per group with interval error bars, the reference
    group marked, and the tolerance band around the reference value.

    Parameters
    ----------
    groups : DataFrame
        :attr:`AuditResult.long` (or the wide :attr:`AuditResult.groups`).
    disparities : DataFrame
        :attr:`AuditResult.disparities` (the reference and the verdicts).
    model, attribute, metric : str
    tolerance : float
        The band's ratio (see :class:`~fairness_core.tolerance.Tolerance`).
    order : list, optional
        The groups in display order (and colour order).
    confidence : float
        The level of the intervals, for the subtitle.
    """
    m = REGISTRY[metric]
    tol = Tolerance(tolerance)
    g = _metric_rows(groups, model, attribute, metric)
    order = list(order) if order is not None else list(g.index)
    present = set(g.index)
    g = g.reindex([o for o in order if o in present])
    colors = group_colors(order)
    d = disparities[(disparities["model"] == model) & (disparities["attribute"] == attribute)
                    & (disparities["metric"] == metric)] if metric in set(
        disparities["metric"]) else disparities.iloc[0:0]
    ref = d["reference"].iloc[0] if len(d) else None
    verdicts = dict(zip(d["group"], d["verdict"]))
    vals = g["value"].to_numpy(dtype=float)
    lo = g["ci_low"].to_numpy(dtype=float)
    hi = g["ci_high"].to_numpy(dtype=float)
    scale = 100.0 if m.percent else 1.0
    # value and verdict go under each bar (the tick label): readable on a
    # projector and never hidden by error bars
    labels = []
    for grp, v in zip(g.index, vals):
        status = "reference" if grp == ref else verdicts.get(grp, "")
        tag = VERDICT_STYLE.get(status, ("", ""))[0]
        labels.append(f"<b>{esc(grp)}</b><br>{m.format(v)}" + (f"<br>{tag}" if tag else ""))
    heights = np.where(np.isnan(vals), 0, vals) * scale
    fig = go.Figure()
    fig.add_bar(
        x=labels, y=heights,
        marker=dict(color=[colors[x] for x in g.index], line=dict(width=0)),
        error_y=dict(type="data", symmetric=False,
                     array=np.nan_to_num((hi - vals) * scale, nan=0.0),
                     arrayminus=np.nan_to_num((vals - lo) * scale, nan=0.0),
                     color="#333333", thickness=1.5, width=6),
        customdata=np.stack([g["n"].to_numpy(), lo * scale, hi * scale], axis=1),
        hovertemplate=esc(m.label) + ": %{y:.3g}" + ("%" if scale == 100 else "")
                      + "<br>interval %{customdata[1]:.3g} to %{customdata[2]:.3g}"
                      + "<br>rows: %{customdata[0]:,}<extra></extra>",
        showlegend=False)
    if ref is not None and ref in present:
        # outlined and hatched by a bar of its own over the reference's bar: a
        # pattern on bars of several colours makes plotly.js parse the list
        # of colours as one colour ("Invalid color specifier")
        i = list(g.index).index(ref)
        fig.add_bar(x=[labels[i]], y=[heights[i]], hoverinfo="skip", showlegend=False,
                    marker=dict(color="rgba(0,0,0,0)", line=dict(color="#000000", width=3),
                                pattern=REFERENCE_HATCH))
        fig.update_layout(barmode="overlay")
    if ref is not None and ref in present and not math.isnan(g.loc[ref, "value"]):
        rv = float(g.loc[ref, "value"])
        band_lo, band_hi = rv * tol.low, rv * tol.high
        if m.percent:
            band_hi = min(band_hi, 1.0)
        fig.add_hrect(y0=band_lo * scale, y1=band_hi * scale, fillcolor=BAND_COLOR,
                      line_width=0, layer="below")
        fig.add_hline(y=rv * scale, line=dict(color="#0072B2", dash="dash", width=1.5))
    unit = " (%)" if m.percent else ""
    fig.update_yaxes(title_text=f"{m.label}{unit}", rangemode="tozero",
                     range=[0, 105] if m.percent else None)
    fig.update_xaxes(title_text=esc(attribute))
    sub = f"Model {esc(model)}. Error bars: {fmt.level(confidence)} intervals."
    if ref is not None:
        sub += (f"<br>Dashed: reference {esc(ref)}; shaded: {tol.band('x')} of it "
                "(passes).")
    return _layout(fig, f"{esc(m.label)} by {esc(attribute)}", subtitle=sub)


def disparity_chart(disparities: pd.DataFrame, *, model: str, attribute: str, metric: str,
                    tolerance: float, order=None, confidence: float = 0.95) -> go.Figure:
    """Ratio of each group to the reference on a log axis, with intervals
    and the tolerance band.

    The axis is labelled at 1, the band's ends and round ratios
    (:func:`ratio_ticks`); ``confidence`` is the intervals' level, for the
    subtitle."""
    m = REGISTRY[metric]
    tol = Tolerance(tolerance)
    d = disparities[(disparities["model"] == model) & (disparities["attribute"] == attribute)
                    & (disparities["metric"] == metric)]
    order = list(order) if order is not None else list(d["group"])
    colors = group_colors(order)
    d = d.set_index("group").reindex([o for o in order if o in set(d["group"])])
    ref = d["reference"].iloc[0] if len(d) else ""
    ratio = d["ratio"].to_numpy(dtype=float)
    lo = d.get("ratio_ci_low", pd.Series(np.nan, index=d.index)).to_numpy(dtype=float)
    hi = d.get("ratio_ci_high", pd.Series(np.nan, index=d.index)).to_numpy(dtype=float)
    finite = ratio[np.isfinite(ratio) & (ratio > 0)]
    span = np.concatenate([finite, lo[np.isfinite(lo) & (lo > 0)],
                           hi[np.isfinite(hi) & (hi > 0)], [tol.low, tol.high]])
    lo_ax, hi_ax = float(span.min()) / 1.7, float(span.max()) * 1.4
    y = [esc(x) for x in d.index]
    xs = np.where(np.isfinite(ratio) & (ratio > 0), ratio, np.nan)
    fig = go.Figure()
    fig.add_vrect(x0=tol.low, x1=tol.high, fillcolor=BAND_COLOR, line_width=0,
                  layer="below")
    fig.add_vline(x=1, line=dict(color="#0072B2", dash="dash", width=1.5))
    sig = d["significant"].to_numpy() if "significant" in d else np.zeros(len(d), bool)
    status = [VERDICT_STYLE.get(v, ("", ""))[0] + (", significant" if s else "")
              for v, s in zip(d["verdict"], sig)]
    fig.add_scatter(
        x=xs, y=y, mode="markers+text",
        marker=dict(size=14, color=[colors[x] for x in d.index],
                    symbol=["circle" if v == "pass" else "x" if v == "fail" else "circle-open"
                            for v in d["verdict"]],
                    line=dict(width=2, color=[colors[x] for x in d.index])),
        error_x=dict(type="data", symmetric=False,
                     array=np.nan_to_num(hi - xs, nan=0.0, posinf=0.0),
                     arrayminus=np.nan_to_num(xs - lo, nan=0.0, posinf=0.0),
                     color="#333333", thickness=1.5, width=6),
        text=[f"{fmt.num(r, 2)}x  {s}" if np.isfinite(r) else s
              for r, s in zip(ratio, status)],
        textposition="top center", showlegend=False,
        hovertemplate="%{y}: ratio %{x:.3f}<extra></extra>")
    tickvals, ticktext = ratio_ticks(lo_ax, hi_ax, tol)
    fig.update_xaxes(type="log", range=[math.log10(lo_ax), math.log10(hi_ax)],
                     tickmode="array", tickvals=tickvals, ticktext=ticktext,
                     title_text=f"ratio of {m.label.lower()} to reference {esc(ref)} "
                                "(log scale; 1 = equal)")
    fig.update_yaxes(title_text=esc(attribute), range=[len(d) - 0.5, -0.8])
    return _layout(fig, f"{esc(m.label)} relative to {esc(ref)}",
                   subtitle=f"Model {esc(model)}. Bars: {fmt.level(confidence)} intervals of "
                            f"the ratio.<br>Shaded: {tol.band('x')} passes.",
                   height=max(360, 130 + 70 * len(d)))


def representation_chart(groups: pd.DataFrame, *, attribute: str, model: str,
                         min_group_size: int, order=None) -> go.Figure:
    """Rows per group (bars) with the minimum group size marked."""
    g = groups[(groups["model"] == model) & (groups["attribute"] == attribute)]
    order = list(order) if order is not None else list(g["group"])
    colors = group_colors(order)
    g = g.set_index("group").reindex([o for o in order if o in set(g["group"])])
    fig = go.Figure()
    fig.add_bar(x=[esc(x) for x in g.index], y=g["n"],
                marker_color=[colors[x] for x in g.index],
                text=[f"{fmt.count(n)} ({fmt.pct(s)})" + (" too few" if n < min_group_size
                                                           else "")
                      for n, s in zip(g["n"], g["share"])],
                textposition="outside", cliponaxis=False, showlegend=False,
                hovertemplate="%{x}: %{y:,} rows<extra></extra>")
    fig.add_hline(y=min_group_size, line=dict(color="#D55E00", dash="dot"))
    fig.update_yaxes(title_text="rows", type="log" if g["n"].max() > 50 * max(
        1, g["n"].min()) else "linear")
    fig.update_xaxes(title_text=esc(attribute))
    return _layout(fig, f"Rows per group of {esc(attribute)}",
                   subtitle=f"Label: rows (share of all rows).<br>Dotted line: the minimum "
                            f"group size for a verdict ({min_group_size}).")


def confusion_chart(groups: pd.DataFrame, *, model: str, attribute: str,
                    positive: str, negative: str, order=None) -> go.Figure:
    """Per-group confusion matrices as shares of the group, side by side."""
    from plotly.subplots import make_subplots

    g = groups[(groups["model"] == model) & (groups["attribute"] == attribute)]
    order = list(order) if order is not None else list(g["group"])
    g = g.set_index("group").reindex([o for o in order if o in set(g["group"])])
    n = len(g)
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[esc(x) for x in g.index],
                        horizontal_spacing=0.06, vertical_spacing=0.18)
    pos, neg = esc(positive), esc(negative)
    for i, (grp, r) in enumerate(g.iterrows()):
        tot = max(float(sum(r[c] for c in CELLS)), 1e-300)
        z = np.array([[r["tp"], r["fn"]], [r["fp"], r["tn"]]], dtype=float) / tot
        counts = np.array([[r["tp"], r["fn"]], [r["fp"], r["tn"]]])
        txt = [[f"{fmt.pct(z[a, b])}<br>({fmt.count(round(counts[a, b]))})" for b in range(2)]
               for a in range(2)]
        fig.add_heatmap(z=z, x=[f"pred. {pos}", f"pred. {neg}"],
                        y=[f"true {pos}", f"true {neg}"], text=txt, texttemplate="%{text}",
                        colorscale="Blues", zmin=0, zmax=1, showscale=False,
                        row=i // cols + 1, col=i % cols + 1,
                        hovertemplate="%{y}, %{x}: %{z:.1%}<extra></extra>")
    for ax in fig.layout:
        if ax.startswith("yaxis"):
            fig.layout[ax].autorange = "reversed"
    return _layout(fig, f"Confusion matrix per group of {esc(attribute)}",
                   subtitle=f"Model {esc(model)}. Share of each group's rows (count).",
                   height=260 * rows + 110)


def intersection_heatmap(groups: pd.DataFrame, *, model: str, attr_a: str, attr_b: str,
                         metric: str, min_group_size: int) -> go.Figure:
    """The metric for every combination of two attributes."""
    m = REGISTRY[metric]
    from .spec import INTERSECTION_SEP
    name = f"{attr_a}{INTERSECTION_SEP}{attr_b}"
    g = groups[(groups["model"] == model) & (groups["attribute"] == name)]
    parts = g["group"].str.split(INTERSECTION_SEP, n=1, regex=False)
    a = [p[0] for p in parts]
    b = [p[1] if len(p) > 1 else "" for p in parts]
    rows_a = list(dict.fromkeys(a))
    cols_b = list(dict.fromkeys(b))
    z = np.full((len(rows_a), len(cols_b)), np.nan)
    txt = [["" for _ in cols_b] for _ in rows_a]
    scale = 100 if m.percent else 1
    for ai, bi, v, n in zip(a, b, g[metric], g["n"]):
        i, j = rows_a.index(ai), cols_b.index(bi)
        z[i, j] = v * scale
        txt[i][j] = f"{m.format(v)}<br>n={fmt.count(n)}" + ("<br>too few" if n < min_group_size
                                                           else "")
    fig = go.Figure(go.Heatmap(
        z=z, x=[esc(c) for c in cols_b], y=[esc(r) for r in rows_a], text=txt,
        texttemplate="%{text}", colorscale="Viridis",
        colorbar=dict(title=m.short + (" %" if scale == 100 else "")),
        hovertemplate="%{y} & %{x}: %{z:.3g}<extra></extra>"))
    fig.update_xaxes(title_text=esc(attr_b))
    fig.update_yaxes(title_text=esc(attr_a), autorange="reversed")
    return _layout(fig, f"{esc(m.label)} by {esc(attr_a)} x {esc(attr_b)}",
                   subtitle=f"Model {esc(model)}. Each cell is one intersectional group.",
                   height=max(340, 140 + 70 * len(rows_a)))


# ---------------------------------------------------------------------------
def curve_metrics(curves: pd.DataFrame, labelled: bool = True) -> pd.DataFrame:
    """Add every registry metric to a threshold-curve table (without a true
    outcome, the metrics that need one are NaN)."""
    from .metrics import metric_values
    vals = metric_values(curves[list(CELLS)].to_numpy(dtype=float), labelled)
    return curves.assign(**vals)


def roc_chart(curves: pd.DataFrame, operating: pd.DataFrame, *, model: str, attribute: str,
              order=None, auc: pd.DataFrame | None = None) -> go.Figure:
    """Per-group ROC curves with the current operating point of each group."""
    c = curve_metrics(curves[(curves["model"] == model) & (curves["attribute"] == attribute)])
    order = list(order) if order is not None else list(dict.fromkeys(c["group"]))
    colors = group_colors(order)
    fig = go.Figure()
    fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(color="#BBBBBB", dash="dot"),
                    showlegend=False, hoverinfo="skip")
    aucs = {}
    if auc is not None and len(auc):
        a = auc[(auc["model"] == model) & (auc["attribute"] == attribute)]
        aucs = dict(zip(a["group"], zip(a["auc"], a["auc_error_bound"])))
    for grp in order:
        d = c[c["group"] == grp].sort_values("threshold", ascending=False)
        if not len(d):
            continue
        name = esc(grp) + (f" (AUC {fmt.auc(*aucs[grp])})" if grp in aucs and not math.isnan(
            aucs[grp][0]) else "")
        fig.add_scatter(x=np.r_[0, d["fpr"].to_numpy(), 1], y=np.r_[0, d["tpr"].to_numpy(), 1],
                        mode="lines", name=name, legendgroup=esc(grp),
                        line=dict(color=colors[grp], width=2.5),
                        hovertemplate=esc(grp) + ": FPR %{x:.3f}, TPR %{y:.3f}<extra></extra>")
    o = operating[(operating["model"] == model) & (operating["attribute"] == attribute)]
    for grp in order:
        r = o[o["group"] == grp]
        if len(r):
            fig.add_scatter(x=r["fpr"], y=r["tpr"], mode="markers", legendgroup=esc(grp),
                            showlegend=False, name=esc(grp) + " operating point",
                            marker=dict(size=15, color=colors[grp], symbol="diamond",
                                        line=dict(width=2, color="#000000")),
                            hovertemplate=esc(grp) + " at the threshold: FPR %{x:.3f}, "
                                          "TPR %{y:.3f}<extra></extra>")
    fig.update_xaxes(title_text="false positive rate", range=[0, 1])
    fig.update_yaxes(title_text="true positive rate", range=[0, 1.02])
    return _layout(fig, f"ROC curve per group of {esc(attribute)}",
                   subtitle=f"Model {esc(model)}. Diamonds: each group's operating "
                            "point<br>at the current threshold.", height=540)


def threshold_chart(curves: pd.DataFrame, *, model: str, attribute: str, metric: str,
                    threshold: float, order=None, labelled: bool = True) -> go.Figure:
    """One metric against the threshold, one line per group (without a true
    outcome only the selection rate has values)."""
    m = REGISTRY[metric]
    c = curve_metrics(curves[(curves["model"] == model) & (curves["attribute"] == attribute)],
                      labelled)
    order = list(order) if order is not None else list(dict.fromkeys(c["group"]))
    colors = group_colors(order)
    scale = 100 if m.percent else 1
    fig = go.Figure()
    for grp in order:
        d = c[c["group"] == grp].sort_values("threshold")
        if len(d):
            fig.add_scatter(x=d["threshold"], y=d[metric] * scale, mode="lines", name=esc(grp),
                            line=dict(color=colors[grp], width=2.5),
                            hovertemplate=esc(grp) + ": %{y:.3g} at threshold %{x:.3f}"
                                          "<extra></extra>")
    fig.add_vline(x=threshold, line=dict(color="#000000", dash="dash"),
                  annotation_text=f"threshold {threshold:g}", annotation_position="top right")
    fig.update_xaxes(title_text="score threshold (predict positive when score >= threshold)")
    fig.update_yaxes(title_text=m.label + (" (%)" if scale == 100 else ""))
    return _layout(fig, f"{esc(m.label)} against the threshold",
                   subtitle=f"Model {esc(model)}, one line per group of {esc(attribute)}.",
                   height=540)


def score_distribution_chart(distribution: pd.DataFrame, *, model: str, attribute: str,
                             threshold: float | None = None, order=None,
                             means: pd.DataFrame | None = None) -> go.Figure:
    """Each group's share of rows per score bin (one line per group), the
    threshold, and each group's mean score in the legend."""
    d = distribution[(distribution["model"] == model)
                     & (distribution["attribute"] == attribute)]
    order = list(order) if order is not None else list(dict.fromkeys(d["group"]))
    colors = group_colors(order)
    mean = {}
    if means is not None and len(means):
        mm = means[(means["model"] == model) & (means["attribute"] == attribute)]
        mean = dict(zip(mm["group"], mm["mean_score"]))
    fig = go.Figure()
    for grp in order:
        g = d[d["group"] == grp].sort_values("bin")
        total = g["weight"].sum()
        if not len(g) or not total > 0:
            continue
        mid = (g["bin_low"].to_numpy() + g["bin_high"].to_numpy()) / 2
        name = esc(grp) + (f" (mean {fmt.num(mean[grp])})" if grp in mean and
                           not math.isnan(mean[grp]) else "")
        fig.add_scatter(x=mid, y=100 * g["weight"].to_numpy() / total, mode="lines+markers",
                        name=name, line=dict(color=colors[grp], width=2.5, shape="hvh"),
                        hovertemplate=esc(grp) + ": %{y:.1f}% of the group near score "
                                      "%{x:.3g}<extra></extra>")
    if threshold is not None:
        fig.add_vline(x=threshold, line=dict(color="#000000", dash="dash"),
                      annotation_text=f"threshold {threshold:g}",
                      annotation_position="top right")
    fig.update_xaxes(title_text="score")
    fig.update_yaxes(title_text="share of the group (%)", rangemode="tozero")
    return _layout(fig, f"Score distribution per group of {esc(attribute)}",
                   subtitle=f"Model {esc(model)}; the share at or above the threshold is "
                            "each group's selection rate.", height=480)


def calibration_chart(calibration: pd.DataFrame, *, model: str, attribute: str,
                      order=None, brier: dict | None = None) -> go.Figure:
    """Reliability diagram per group: mean score vs observed positive rate."""
    c = calibration[(calibration["model"] == model) & (calibration["attribute"] == attribute)]
    order = list(order) if order is not None else list(dict.fromkeys(c["group"]))
    colors = group_colors(order)
    fig = go.Figure()
    fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect calibration",
                    line=dict(color="#BBBBBB", dash="dot"))
    for grp in order:
        d = c[c["group"] == grp].sort_values("bin")
        if len(d):
            name = esc(grp) + (f" (Brier {fmt.num(brier[grp])})" if brier and grp in brier and
                               not math.isnan(brier[grp]) else "")
            fig.add_scatter(x=d["mean_score"], y=d["observed_rate"], mode="lines+markers",
                            name=name, line=dict(color=colors[grp], width=2.5),
                            marker=dict(size=np.clip(np.sqrt(d["n"].to_numpy()) / 2, 5, 18)),
                            customdata=d["n"],
                            hovertemplate=esc(grp) + ": mean score %{x:.3f}, observed "
                                          "%{y:.3f} (n=%{customdata:,})<extra></extra>")
    fig.update_xaxes(title_text="mean predicted score in the bin", range=[0, 1])
    fig.update_yaxes(title_text="observed share of positives", range=[0, 1.02])
    return _layout(fig, f"Calibration per group of {esc(attribute)}",
                   subtitle=f"Model {esc(model)}. 10 equal-width score bins;<br>marker "
                            "size: rows in the bin.", height=540)


def model_scatter(overall: pd.DataFrame, summary: pd.DataFrame, *, attribute: str,
                  performance: str = "accuracy",
                  disparity: str = "demographic_parity_difference",
                  confidence: float = 0.95) -> go.Figure:
    """One point per model: overall performance against a disparity summary
    (error bars: its ``confidence`` intervals)."""
    s = summary[summary["attribute"] == attribute].set_index("model")
    o = overall.set_index("model")
    models = [m for m in o.index if m in s.index]
    colors = {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(models)}
    symbols = ["circle", "square", "diamond", "triangle-up", "cross", "x", "star", "hexagon"]
    # models with equal results sit on one point: spread their labels around it
    places = ["top center", "bottom center", "middle right", "middle left"]
    seen: dict = {}
    fig = go.Figure()
    for i, mdl in enumerate(models):
        x = float(s.loc[mdl, disparity])
        y = float(o.loc[mdl, performance])
        at = (round(x, 6), round(y, 6))
        k = seen.get(at, 0)
        seen[at] = k + 1
        lo, hi = s.loc[mdl].get(f"{disparity}_ci_low"), s.loc[mdl].get(f"{disparity}_ci_high")
        fig.add_scatter(
            x=[x], y=[y * 100], mode="markers+text", text=[esc(mdl)],
            textposition=places[k % len(places)], name=esc(mdl),
            marker=dict(size=max(22 - 6 * k, 8), color=colors[mdl],
                        symbol=symbols[i % len(symbols)],
                        opacity=0.85, line=dict(width=1, color="#000000")),
            error_x=dict(type="data", symmetric=False,
                         array=[0 if lo is None or pd.isna(hi) else hi - x],
                         arrayminus=[0 if lo is None or pd.isna(lo) else x - lo]),
            hovertemplate=esc(mdl) + ": %{x:.3f}, %{y:.1f}%<extra></extra>")
    label = disparity.replace("_", " ")
    fig.update_xaxes(title_text=f"{label} across {esc(attribute)} (lower is fairer)"
                     if label.endswith("difference") else
                     f"{label} across {esc(attribute)} (1 = equal)")
    fig.update_yaxes(title_text=f"overall {REGISTRY[performance].label.lower()} (%)")
    return _layout(fig, f"Models: {REGISTRY[performance].label.lower()} against {label}",
                   subtitle=f"One point per model; bars: {fmt.level(confidence)} intervals; "
                            f"across the groups of {esc(attribute)}.")


def tradeoff_chart(tradeoff: pd.DataFrame, *, objective: str, attribute: str,
                   constraint_words: str) -> go.Figure:
    """A mitigation preview's trade-off: the objective reached against the
    worst ratio between groups, one point per tolerance level, with today's
    operating point and the chosen one marked (``tradeoff`` as
    :attr:`fairness_core.mitigation.Mitigation.tradeoff`)."""
    t = pd.DataFrame(tradeoff)
    curve = t[t["point"].fillna("") == ""].sort_values("worst_ratio")
    label = REGISTRY[objective].label
    fig = go.Figure()
    fig.add_scatter(x=curve["worst_ratio"], y=curve["objective"] * 100, mode="lines+markers",
                    name="best thresholds at each tolerance", line=dict(color=PALETTE[0]),
                    customdata=curve["tolerance"],
                    hovertemplate="tolerance %{customdata:.2f}: worst ratio %{x:.3f}, "
                                  + esc(label.lower()) + " %{y:.2f}%<extra></extra>")
    marks = {"today": ("today (one threshold)", "#444444", "x"),
             "chosen": ("chosen (per-group thresholds)", "#D62728", "star")}
    for key, (name, color, symbol) in marks.items():
        p = t[t["point"] == key]
        if len(p):
            fig.add_scatter(x=p["worst_ratio"], y=p["objective"] * 100, mode="markers",
                            name=name, marker=dict(size=16, color=color, symbol=symbol),
                            hovertemplate=name + ": worst ratio %{x:.3f}, "
                            + esc(label.lower()) + " %{y:.2f}%<extra></extra>")
    fig.update_xaxes(title_text="worst ratio between groups (1 = equal)")
    fig.update_yaxes(title_text=f"{label.lower()} (%)")
    return _layout(fig, f"What closing the gap costs: {label.lower()} against the worst ratio",
                   subtitle=f"{esc(constraint_words)}, groups of {esc(attribute)}.")


# ---------------------------------------------------------------------------
# Static export
# ---------------------------------------------------------------------------
IMAGE_FORMATS = ("png", "svg", "pdf")
_SERVER = {"started": False}


def figure_bytes(fig: go.Figure, fmt: str, scale: float = 3.0) -> bytes:
    """A chart as PNG (``scale`` x resolution), SVG, PDF or interactive HTML.

    Static formats go through kaleido with Debian's chromium; one export
    server is started per process and reused (about 0.4 s per image after
    the first).  Without a browser, raises :class:`ExportUnavailable` (HTML
    always works).
    """
    import shutil
    import warnings

    if fmt == "html":
        return fig.to_html(include_plotlyjs=True, full_html=True).encode("utf-8")
    if fmt not in IMAGE_FORMATS:
        raise ValueError(f"unknown format {fmt!r}")
    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        raise ExportUnavailable("Saving charts as PNG, SVG or PDF needs the chromium browser "
                                "(on Debian: apt-get install chromium). Interactive HTML works "
                                "without it.")
    import kaleido

    if not _SERVER["started"]:
        kaleido.start_sync_server(mathjax=False, silence_warnings=True)
        _SERVER["started"] = True
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*kopts.*")
        return fig.to_image(format=fmt, scale=scale if fmt == "png" else 1.0,
                            width=fig.layout.width or 1100, height=fig.layout.height or 520)


def file_name(*parts, ext: str) -> str:
    """A descriptive, safe file name: metric_attribute_model_date.ext."""
    import re
    from datetime import date

    words = [re.sub(r"[^A-Za-z0-9._-]+", "-", str(p)).strip("-")[:40] for p in parts if p]
    return "_".join([w for w in words if w] + [date.today().isoformat()]) + f".{ext}"


def comparison_chart(changes: pd.DataFrame, *, model: str, attribute: str, metric: str,
                     confidence: float = 0.95, order=None) -> go.Figure:
    """Before and after per group, and the change with its interval.

    ``changes`` is :attr:`fairness_core.compare.Comparison.changes`.  Left:
    each group's value in the earlier audit (open marker) and now (filled),
    joined by a line; right: the change (after - before) with its interval
    and the line of no change.  A significant change is marked."""
    from plotly.subplots import make_subplots

    m = REGISTRY[metric]
    c = changes[(changes["model"] == model) & (changes["attribute"] == attribute)
                & (changes["metric"] == metric)]
    order = [g for g in (order if order is not None else c["group"]) if g in set(c["group"])]
    c = c.set_index("group").reindex(order)
    colors = group_colors(order)
    scale = 100.0 if m.percent else 1.0
    unit = " (%)" if m.percent else ""
    y = [esc(g) for g in order]
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.06,
                        subplot_titles=(f"{esc(m.label)}: earlier and now",
                                        f"Change{' (points)' if m.percent else ''}"))
    before, after = c["before"].to_numpy(dtype=float), c["after"].to_numpy(dtype=float)
    for i, g in enumerate(order):
        fig.add_scatter(x=[before[i] * scale, after[i] * scale], y=[y[i], y[i]],
                        mode="lines", line=dict(color="#BBBBBB", width=3), showlegend=False,
                        hoverinfo="skip", row=1, col=1)
    fig.add_scatter(x=(before * scale).tolist(), y=y, mode="markers", name="earlier audit",
                    marker=dict(size=13, symbol="circle-open", color="#555555",
                                line=dict(width=2)),
                    hovertemplate="%{y}: %{x:.3f} earlier<extra></extra>", row=1, col=1)
    fig.add_scatter(x=(after * scale).tolist(), y=y, mode="markers", name="this audit",
                    marker=dict(size=13, color=[colors[g] for g in order]),
                    hovertemplate="%{y}: %{x:.3f} now<extra></extra>", row=1, col=1)
    ch = c["change"].to_numpy(dtype=float) * scale
    lo = c["change_ci_low"].to_numpy(dtype=float) * scale
    hi = c["change_ci_high"].to_numpy(dtype=float) * scale
    sig = c["significant"].fillna(False).to_numpy(dtype=bool)
    fig.add_scatter(
        x=ch.tolist(), y=y, mode="markers+text", showlegend=False,
        marker=dict(size=12, symbol=["diamond" if s else "diamond-open" for s in sig],
                    color=[colors[g] for g in order], line=dict(width=2)),
        error_x=dict(type="data", symmetric=False,
                     array=np.nan_to_num(hi - ch, nan=0.0), arrayminus=np.nan_to_num(
                         ch - lo, nan=0.0), color="#333333", thickness=1.5, width=6),
        text=["significant" if s else "" for s in sig], textposition="top center",
        hovertemplate="%{y}: change %{x:.3f}<extra></extra>", row=1, col=2)
    fig.add_vline(x=0, line=dict(color="#0072B2", dash="dash", width=1.5), row=1, col=2)
    fig.update_xaxes(title_text=f"{esc(m.label.lower())}{unit}", row=1, col=1)
    fig.update_xaxes(title_text=f"after - before{unit}", row=1, col=2)
    fig.update_yaxes(title_text=esc(attribute), autorange="reversed", row=1, col=1)
    fig = _layout(fig, f"{esc(m.label)} by {esc(attribute)}: the change since the earlier "
                       "audit",
                  subtitle=f"Model {esc(model)}. Bars: {fmt.level(confidence)} intervals of "
                           "the change (filled diamond: significant after correction).",
                  height=max(380, 180 + 60 * len(order)))
    fig.update_layout(margin=dict(t=125))  # room for the panels' titles under the subtitle
    return fig


def trend_chart(trend: pd.DataFrame, *, model: str, attribute: str, metric: str,
                tolerance: float, steps: pd.DataFrame | None = None) -> go.Figure:
    """A disparity's ratio over saved audits, one line per group, with its
    intervals and the tolerance band (``trend`` from
    :func:`fairness_core.history.trend_table`).  With ``steps``
    (:func:`fairness_core.history.trend_steps`), a point whose change from
    the previous audit is significant is a filled diamond."""
    m = REGISTRY[metric]
    tol = Tolerance(tolerance)
    d = trend[(trend["model"] == model) & (trend["attribute"] == attribute)]
    fig = go.Figure()
    fig.add_hrect(y0=tol.low, y1=tol.high, fillcolor=BAND_COLOR, line_width=0, layer="below")
    fig.add_hline(y=1, line=dict(color="#0072B2", dash="dash", width=1.5))
    labels = [f"#{i} v{v}<br>{t:%Y-%m-%d %H:%M}" for i, v, t in
              zip(d["audit_id"], d["version"], d["saved_at"])]
    d = d.assign(_x=labels)
    order = list(dict.fromkeys(d["_x"]))
    colors = group_colors(list(dict.fromkeys(d["group"])))
    for group, g in d.groupby("group", sort=False):
        r = pd.to_numeric(g["ratio"], errors="coerce").to_numpy(dtype=float)
        lo = pd.to_numeric(g["ratio_ci_low"], errors="coerce").to_numpy(dtype=float)
        hi = pd.to_numeric(g["ratio_ci_high"], errors="coerce").to_numpy(dtype=float)
        sig = [False] * len(g)
        if steps is not None and len(steps):
            s = steps[(steps["attribute"] == attribute) & (steps["group"] == group)]
            hit = set(s.loc[s["significant"].fillna(False).astype(bool), "audit_id"])
            sig = [i in hit for i in g["audit_id"]]
        fig.add_scatter(
            x=list(g["_x"]), y=r, mode="lines+markers", name=esc(group),
            line=dict(color=colors[group], width=2),
            marker=dict(size=[15 if x else 10 for x in sig],
                        symbol=["diamond" if x else "circle" for x in sig]),
            error_y=dict(type="data", symmetric=False,
                         array=np.nan_to_num(hi - r, nan=0.0, posinf=0.0),
                         arrayminus=np.nan_to_num(r - lo, nan=0.0, posinf=0.0),
                         thickness=1.5, width=5),
            hovertemplate=esc(group) + ": ratio %{y:.3f}<extra></extra>")
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=order,
                     title_text="saved audit (id, version, time saved)")
    fig.update_yaxes(type="log", title_text=f"ratio of {m.label.lower()} to reference "
                                            "(log scale; 1 = equal)")
    ref = ", ".join(esc(x) for x in dict.fromkeys(d["reference"].dropna().astype(str)))
    return _layout(fig, f"{esc(m.label)} over saved audits: {esc(attribute)}",
                   subtitle=f"Model {esc(model)}; reference {ref or 'none'}. Bars: the "
                            f"intervals saved with each audit.<br>Shaded: {tol.band('x')} "
                            "passes." + ("<br>Diamond: a significant change from the previous "
                                         "audit (corrected)." if steps is not None else ""))
