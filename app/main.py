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
from views import data_page, groups_page, help_page, models_page, overview_page, \
    thresholds_page  # noqa: E402

st.set_page_config(page_title="Fairness audit", page_icon="⚖️", layout="wide",
                   initial_sidebar_state="expanded")

ctx = setup_panel.render()
st.session_state["ctx"] = ctx

pages = [st.Page(overview_page.render, title="Overview", icon="🧭", url_path="overview",
                 default=True),
         st.Page(groups_page.render, title="Group metrics", icon="📊", url_path="groups"),
         st.Page(data_page.render, title="Data", icon="🗂️", url_path="data")]
if ctx.result is not None and ctx.result.spec.scores:
    pages.append(st.Page(thresholds_page.render, title="Thresholds", icon="🎚️",
                         url_path="thresholds"))
if ctx.result is not None and len(ctx.result.spec.models) > 1:
    pages.append(st.Page(models_page.render, title="Models", icon="⚖️", url_path="models"))
pages.append(st.Page(help_page.render, title="Help", icon="❓", url_path="help"))
st.navigation(pages, position="top").run()
