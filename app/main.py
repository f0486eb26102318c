"""The fairness audit dashboard.

Run with ``./run.sh`` (or ``streamlit run path/to/app/main.py`` from any
folder: the server's safe settings are in ``app/.streamlit/config.toml``, and
``safety`` turns uploads off when they are not in force).  The sidebar holds
the data and the audit's settings; the pages at the top show the results.
All computing happens in ``fairness_core``.

Streamlit puts this script's folder on ``sys.path``, so the dashboard's own
modules (``safety``, ``setup_panel``, ``state``, ``ui``, ``views``) import as top-level
modules; ``fairness_core`` is the installed package.
"""
from __future__ import annotations

import streamlit as st

import safety
import setup_panel
from views import (data_page, export_page, groups_page, help_page, models_page, overview_page,
                   thresholds_page)

st.set_page_config(page_title="Fairness audit", page_icon="⚖️", layout="wide",
                   initial_sidebar_state="expanded")

ctx = setup_panel.render(uploads_off=safety.check())
st.session_state["ctx"] = ctx

task = getattr(ctx.result, "task", "binary") if ctx.result is not None else "binary"
if task == "regression":  # a numeric outcome: its own pages, nothing only yes/no needs
    from views import regression_pages
    pages = [st.Page(regression_pages.render_overview, title="Overview", icon="🧭",
                     url_path="overview", default=True),
             st.Page(regression_pages.render_groups, title="Group metrics", icon="📊",
                     url_path="groups"),
             st.Page(regression_pages.render_distributions, title="Distributions",
                     icon="📈", url_path="distributions")]
else:
    pages = [st.Page(overview_page.render, title="Overview", icon="🧭", url_path="overview",
                     default=True),
             st.Page(groups_page.render, title="Group metrics", icon="📊", url_path="groups"),
             st.Page(data_page.render, title="Data", icon="🗂️", url_path="data")]
if task == "binary" and ctx.result is not None and ctx.result.spec.scores:
    pages.append(st.Page(thresholds_page.render, title="Thresholds", icon="🎚️",
                         url_path="thresholds"))
if task == "binary" and ctx.result is not None and len(ctx.result.spec.models) > 1:
    pages.append(st.Page(models_page.render, title="Models", icon="⚖️", url_path="models"))
pages.append(st.Page(export_page.render, title="Export", icon="📄", url_path="export"))
help_render = regression_pages.render_help if task == "regression" else help_page.render
pages.append(st.Page(help_render, title="Help", icon="❓", url_path="help"))
st.navigation(pages, position="top").run()
