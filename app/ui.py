"""Small rendering helpers shared by the pages."""
from __future__ import annotations

import math
import re

import pandas as pd
import streamlit as st

from fairness_core.metrics import REGISTRY

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:\"'&=])")
VERDICT_ICON = {"pass": "✅ pass", "fail": "❌ fail", "insufficient": "⚪ not judged",
                "reference": "🔷 reference"}
SEVERITY_ICON = {"high": "🔴 High", "medium": "🟠 Medium", "low": "🟡 Low (may be noise)",
                 "info": "ℹ️ Info"}
PLOTLY_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 3}}


def md(text) -> str:
    """Escape a user string for Streamlit markdown: no links, images, HTML,
    formulas or formatting can come from data."""
    return _MD_SPECIAL.sub(r"\\\1", str(text)).replace("\n", " ")


def pct(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "undefined"
    return f"{100 * x:.1f}%"


def num(x, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and (math.isnan(x))):
        return "undefined"
    if isinstance(x, float) and math.isinf(x):
        return "unbounded"
    return f"{x:.{digits}f}"


def value(x, metric: str) -> str:
    return pct(x) if REGISTRY[metric].kind == "rate" else num(x)


def interval(lo, hi, metric: str | None = None) -> str:
    if lo is None or hi is None or pd.isna(lo) or pd.isna(hi):
        return "no interval"
    f = (lambda v: value(v, metric)) if metric else num
    return f"{f(lo)} to {f(hi)}"


def chart(fig, key: str | None = None):
    """Show a plotly figure (the toolbar's camera saves a PNG at 3x)."""
    st.plotly_chart(fig, width="stretch", config=PLOTLY_CONFIG, key=key)


def metric_help(metric: str) -> str:
    m = REGISTRY[metric]
    return f"**{m.label}.** {m.meaning} *When it matters:* {m.matters_when}"
