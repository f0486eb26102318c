"""Small rendering helpers shared by the pages."""
from __future__ import annotations

import re

import pandas as pd
import streamlit as st

from fairness_core.formatting import short, visible
from fairness_core.limits import DISPLAY_CHARS
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


def name(text) -> str:
    """A name from the data (file, column, group, value) for page text:
    hidden and reordering characters shown as ``<U+202E>``, cut to 80
    characters (:func:`fairness_core.formatting.short`), Markdown-escaped."""
    return md(short(text))


#: A message longer than this keeps its start and its end (where the fix is).
MESSAGE_CHARS = 1_500


def say(text, names=()) -> str:
    """A sentence from the core for page text: the long ``names`` it quotes
    (the file's, its columns', its groups') are cut as :func:`name` cuts
    them, hidden characters are shown, and Markdown is escaped."""
    text = str(text)
    long = {str(n) for n in names if len(str(n)) > DISPLAY_CHARS}
    for n in sorted(long, key=len, reverse=True):
        if n in text or repr(n) in text:
            cut = short(n)
            text = text.replace(repr(n), repr(cut)).replace(n, cut)
    text = visible(text)
    if len(text) > MESSAGE_CHARS:
        keep = MESSAGE_CHARS // 2
        text = f"{text[:keep]} … ({len(text) - 2 * keep:,} characters left out) … " \
               f"{text[-keep:]}"
    return md(text)


def shown(df: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """A page table with the names in ``columns`` made short and visible."""
    return df.assign(**{c: df[c].map(short) for c in columns if c in df})


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
