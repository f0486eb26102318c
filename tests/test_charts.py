"""The charts as people see them: drawn by plotly.js in Debian's chromium
(through kaleido) and read back from the SVG.

Names show exactly as typed (quotes included) and never become markup,
the log ratio axis is labelled with plain round ratios, the interval level
and the tolerance band come from the audit's settings, and drawing a chart
makes plotly.js complain about nothing.
"""
from __future__ import annotations

import logging
import math
import time
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
import pytest

from fairness_core import AuditSpec, audit, charts
from fairness_core.tolerance import Tolerance

ROOT = Path(__file__).resolve().parent.parent
LOANS = ROOT / "sample_data" / "loans.csv"
NAME = 'Say "hi" <b>x</b> & co'
SVG = "{http://www.w3.org/2000/svg}"
MODEL = "model_a_approved"


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def svg_lines(svg: bytes) -> list[str]:
    """Every visible line of text of a plotly SVG, as a reader sees it."""
    out = []
    for t in ET.fromstring(svg).iter(SVG + "text"):
        lines = [c for c in t if c.tag == SVG + "tspan" and c.get("class") == "line"]
        out += ["".join(c.itertext()) for c in lines] if lines else ["".join(t.itertext())]
    return out


def bold_runs(svg: bytes) -> list[str]:
    """The texts plotly drew in bold."""
    return ["".join(ts.itertext()) for ts in ET.fromstring(svg).iter(SVG + "tspan")
            if "font-weight:bold" in (ts.get("style") or "").replace(" ", "")]


def x_tick_texts(svg: bytes) -> list[str]:
    root = ET.fromstring(svg)
    return ["".join(t.itertext()) for g in root.iter(SVG + "g") if g.get("class") == "xtick"
            for t in g.iter(SVG + "text")]


def svg(fig) -> bytes:
    return charts.figure_bytes(fig, "svg")


@pytest.fixture(scope="module")
def named():
    """An audit whose reference group is called ``NAME``, with its data."""
    rng = np.random.default_rng(7)
    n = 600
    df = pd.DataFrame({"y": rng.integers(0, 2, n), "p": rng.integers(0, 2, n),
                       "g": np.where(rng.random(n) < 0.5, NAME, "plain")})
    return df, audit(df, AuditSpec(label="y", predictions=["p"], sensitive=["g"],
                                   reference={"g": NAME}, n_bootstrap=0))


@pytest.fixture(scope="module")
def loans():
    return audit(LOANS, AuditSpec(label="repaid", positive="yes",
                                  predictions=["model_a_approved"], scores=["model_b_score"],
                                  sensitive=["sex", "race"], intersectional=True))


# --------------------------------------------------------------------------
# names in charts
# --------------------------------------------------------------------------
def test_esc_escapes_only_what_plotly_reads_as_markup():
    assert charts.esc(NAME) == 'Say "hi" &lt;b&gt;x&lt;/b&gt; &amp; co'
    assert charts.esc("it's &times; <br>") == "it's &amp;times; &lt;br&gt;"
    assert charts.esc(3) == "3"


def test_names_show_as_typed_in_drawn_charts(named):
    df, r = named
    fig = charts.group_metric_chart(r.long, r.disparities, model="p", attribute="g",
                                    metric="selection_rate", tolerance=0.8)
    image = svg(fig)
    lines = svg_lines(image)
    # under each bar: the name in bold, then the value, then the verdict
    i = lines.index(NAME)
    selected = df.loc[df["g"] == NAME, "p"].mean()  # the group's share predicted positive
    assert lines[i + 1] == f"{100 * selected:.1f}%"
    assert lines[i + 2] == "reference"
    assert sorted(bold_runs(image)) == sorted([NAME, "plain"])  # the name's <b> is text
    assert f"Dashed: reference {NAME}; shaded: 0.8x to 1.25x of it (passes)." in lines

    disp = svg(charts.disparity_chart(r.disparities, model="p", attribute="g",
                                      metric="selection_rate", tolerance=0.8))
    dlines = svg_lines(disp)
    assert f"Selection rate relative to {NAME}" in dlines
    assert f"ratio of selection rate to reference {NAME} (log scale; 1 = equal)" in dlines

    rep = svg(charts.representation_chart(r.groups, model="p", attribute="g",
                                          min_group_size=30))
    assert NAME in svg_lines(rep)
    for text in lines + dlines + svg_lines(rep):
        for entity in ("&quot;", "&amp;", "&lt;", "&gt;", "&#"):
            assert entity not in text, text


# --------------------------------------------------------------------------
# the log ratio axis
# --------------------------------------------------------------------------
LABELS = {0.1: "0.1", 0.2: "0.2", 0.25: "0.25", 0.5: "0.5", 0.64: "0.64", 0.8: "0.8",
          1.0: "1", 1.25: "1.25", 1.5625: "1.56", 2.0: "2", 4.0: "4", 5.0: "5", 10.0: "10"}


def _axis_range(loans, tolerance):
    d = loans.disparities
    d = d[(d["model"] == MODEL) & (d["attribute"] == "race")
          & (d["metric"] == "selection_rate")]
    vals = np.concatenate([d["ratio"], d["ratio_ci_low"], d["ratio_ci_high"],
                           [tolerance, 1 / tolerance]]).astype(float)
    vals = vals[np.isfinite(vals) & (vals > 0)]
    return vals.min() / 1.7, vals.max() * 1.4


def test_ratio_axis_is_labelled_with_round_ratios(loans):
    fig = charts.disparity_chart(loans.disparities, model=MODEL, attribute="race",
                                 metric="selection_rate", tolerance=0.8)
    ax = fig.layout.xaxis
    low, high = _axis_range(loans, 0.8)
    assert ax.type == "log" and ax.tickmode == "array"
    assert list(ax.range) == pytest.approx([math.log10(low), math.log10(high)])
    want = [v for v in LABELS if low <= v <= high]
    assert {0.8, 1.0, 1.25} <= set(want) and len(want) >= 5
    assert list(ax.tickvals) == pytest.approx(want)
    assert list(ax.ticktext) == [LABELS[v] for v in want]
    # drawn exactly so: no minor "2 3 4 ... 9" labels
    assert x_tick_texts(svg(fig)) == [LABELS[v] for v in want]


def test_ratio_axis_marks_another_tolerance_band(loans):
    fig = charts.disparity_chart(loans.disparities, model=MODEL, attribute="race",
                                 metric="selection_rate", tolerance=0.9)
    vals, text = list(fig.layout.xaxis.tickvals), list(fig.layout.xaxis.ticktext)
    low, high = _axis_range(loans, 0.9)
    assert vals == sorted(vals) and all(low <= v <= high for v in vals)
    assert vals[text.index("0.9")] == pytest.approx(0.9)
    assert vals[text.index("1.11")] == pytest.approx(1 / 0.9)
    assert "1" in text
    for v, t in zip(vals, text):  # each label reads the value it stands at
        assert float(t) == pytest.approx(v, rel=0.005)
    gaps = np.diff(np.log10(vals))
    assert gaps.min() >= 0.045 * math.log10(high / low) - 1e-9
    sub = fig.layout.title.subtitle.text
    assert "Shaded: 0.9x to 1.11x passes." in sub


def test_ratio_ticks_keep_the_band_and_one_when_crowded():
    vals, text = charts.ratio_ticks(0.5, 2.0, Tolerance(0.95))
    assert {"0.95", "1", "1.05"} <= set(text)
    assert vals == sorted(vals)
    others = [v for v, t in zip(vals, text) if t not in ("0.95", "1", "1.05")]
    span = math.log10(4)
    for v in others:  # a round ratio is never crowded next to another tick
        assert min(abs(math.log10(v / w)) for w in vals if w != v) >= 0.045 * span


# --------------------------------------------------------------------------
# numbers, band and level from the audit
# --------------------------------------------------------------------------
def test_group_chart_draws_the_engine_numbers_from_long_or_wide(loans):
    order = loans.group_order("race")
    kw = dict(model=MODEL, attribute="race", metric="tpr", tolerance=0.9, order=order)
    from_long = charts.group_metric_chart(loans.long, loans.disparities, **kw)
    from_wide = charts.group_metric_chart(loans.groups, loans.disparities, **kw)
    assert from_long.to_json() == from_wide.to_json()
    g = loans.groups
    g = g[(g["model"] == MODEL) & (g["attribute"] == "race")].set_index("group").loc[order]
    bars = from_long.data[0]
    v = g["tpr"].to_numpy(float)
    assert np.allclose(bars.y, 100 * v)
    assert np.allclose(bars.error_y.array, 100 * (g["tpr_ci_high"] - v))
    assert np.allclose(bars.error_y.arrayminus, 100 * (v - g["tpr_ci_low"]))
    d = loans.disparities
    ref = d.loc[(d["model"] == MODEL) & (d["attribute"] == "race"), "reference"].iloc[0]
    rv = float(g.loc[ref, "tpr"])
    hatch = from_long.data[1]  # the reference's outline and hatch, over its bar
    assert list(hatch.y) == pytest.approx([100 * rv])
    assert hatch.x[0] == bars.x[order.index(ref)]
    band = next(s for s in from_long.layout.shapes if s.type == "rect")
    assert (band.y0, band.y1) == pytest.approx((100 * rv * 0.9, 100 * min(rv / 0.9, 1.0)))
    assert "shaded: 0.9x to 1.11x of it" in from_long.layout.title.subtitle.text


def test_chart_subtitles_say_the_confidence_level(loans):
    figs = [charts.group_metric_chart(loans.long, loans.disparities, model=MODEL,
                                      attribute="sex", metric="selection_rate", tolerance=0.8,
                                      confidence=0.9),
            charts.disparity_chart(loans.disparities, model=MODEL, attribute="sex",
                                   metric="selection_rate", tolerance=0.8, confidence=0.9),
            charts.model_scatter(loans.overall, loans.summary, attribute="sex",
                                 confidence=0.9)]
    for fig in figs:
        sub = fig.layout.title.subtitle.text
        assert "90% intervals" in sub and "95%" not in sub, sub
    default = charts.disparity_chart(loans.disparities, model=MODEL, attribute="sex",
                                     metric="selection_rate", tolerance=0.8)
    assert "95% intervals" in default.layout.title.subtitle.text


# --------------------------------------------------------------------------
# plotly.js warnings
# --------------------------------------------------------------------------
def _every_chart(r):
    sc = r.scores
    for attr in ("sex", "race"):
        order = r.group_order(attr)
        for metric in ("selection_rate", "tpr", "balanced_accuracy"):
            yield charts.group_metric_chart(r.long, r.disparities, model=MODEL,
                                            attribute=attr, metric=metric, tolerance=0.8,
                                            order=order)
        yield charts.disparity_chart(r.disparities, model=MODEL, attribute=attr,
                                     metric="selection_rate", tolerance=0.8, order=order)
        yield charts.representation_chart(r.groups, model=MODEL, attribute=attr,
                                          min_group_size=30, order=order)
        yield charts.confusion_chart(r.groups, model=MODEL, attribute=attr, positive="yes",
                                     negative="no", order=order)
        yield charts.roc_chart(sc["curves"], r.groups, model="model_b_score", attribute=attr,
                               order=order, auc=sc["auc"])
        yield charts.threshold_chart(sc["curves"], model="model_b_score", attribute=attr,
                                     metric="tpr", threshold=0.5, order=order)
        yield charts.calibration_chart(sc["calibration"], model="model_b_score",
                                       attribute=attr, order=order)
        yield charts.model_scatter(r.overall, r.summary, attribute=attr)
    yield charts.intersection_heatmap(r.groups, model=MODEL, attr_a="sex", attr_b="race",
                                      metric="selection_rate", min_group_size=30)


def colour_list_with_pattern(n: int = 7) -> go.Figure:
    """Bars of several colours with an overlaid pattern: plotly.js warns
    "Invalid color specifier: Array(n)" while drawing it."""
    return go.Figure(go.Bar(x=[str(i) for i in range(n)], y=[1] * n,
                            marker=dict(color=charts.PALETTE[:n],
                                        pattern=dict(shape=["/"] + [""] * (n - 1),
                                                     fillmode="overlay"))))


def test_drawing_the_charts_logs_no_invalid_colour(loans, caplog, monkeypatch):
    # plotly's own default template (importing streamlit replaces it): it
    # overlays bar patterns, which is what made plotly.js warn
    monkeypatch.setattr(pio.templates, "default", "plotly")
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for fig in _every_chart(loans):
            svg(fig)
        # drawn last, it shows that the browser console reaches the log and
        # that everything drawn before it has been logged
        svg(colour_list_with_pattern(7))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(
                "Array(7)" in r.getMessage() for r in caplog.records):
            time.sleep(0.1)
    bad = [r.getMessage() for r in caplog.records if "Invalid color" in r.getMessage()]
    assert bad, "the browser's console messages did not reach the log"
    assert all("Array(7)" in m for m in bad), [m for m in bad if "Array(7)" not in m][:3]
    assert not [w for w in caught if "color" in str(w.message).lower()]
