"""The fairness audit dashboard.

Run with ``./run.sh`` (or ``streamlit run app/main.py``).  The sidebar
holds the data and the audit's settings; the pages at the top show the
results.  All computing happens in ``fairness_core``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import setup_panel  # noqa: E402

st.set_page_config(page_title="Fairness audit", page_icon="⚖️", layout="wide",
                   initial_sidebar_state="expanded")

ctx = setup_panel.render()
st.session_state["ctx"] = ctx

SCREENS = Path(__file__).resolve().parent / "screens"
pages = [st.Page(SCREENS / "overview.py", title="Overview", icon="🧭", url_path="overview",
                 default=True),
         st.Page(SCREENS / "groups.py", title="Group metrics", icon="📊", url_path="groups"),
         st.Page(SCREENS / "data.py", title="Data", icon="🗂️", url_path="data")]
if ctx.result is not None and ctx.result.spec.scores:
    pages.append(st.Page(SCREENS / "thresholds.py", title="Thresholds", icon="🎚️",
                         url_path="thresholds"))
if ctx.result is not None and len(ctx.result.spec.models) > 1:
    pages.append(st.Page(SCREENS / "models.py", title="Models", icon="⚖️", url_path="models"))
pages.append(st.Page(SCREENS / "export.py", title="Export", icon="📄", url_path="export"))
pages.append(st.Page(SCREENS / "help.py", title="Help", icon="❓", url_path="help"))
st.navigation(pages, position="top").run()
