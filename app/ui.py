"""Small rendering helpers shared by the pages."""
from __future__ import annotations

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


def table(df: pd.DataFrame) -> None:
    """A small static table whose text wraps, so that no cell is cut off at
    any width.  ``st.table`` renders Markdown: every header and text cell is
    escaped."""
    shown = df.rename(columns=md).map(lambda v: md(v) if isinstance(v, str) else v)
    st.table(shown, hide_index=True)


def chart(fig, key: str | None = None):
    """Show a plotly figure (the toolbar's camera saves a PNG at 3x)."""
    st.plotly_chart(fig, width="stretch", config=PLOTLY_CONFIG, key=key)


def metric_help(metric: str) -> str:
    m = REGISTRY[metric]
    return f"**{m.label}.** {m.meaning} *When it matters:* {m.matters_when}"
