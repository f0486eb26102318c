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
from views import (compare_page, data_page, export_page, groups_page, help_page, history_page,
                   mitigation_page, models_page, overview_page, review_page, thresholds_page)

st.set_page_config(page_title="Fairness audit", page_icon="⚖️", layout="wide",
                   initial_sidebar_state="expanded")

ctx = setup_panel.render(uploads_off=safety.check())
st.session_state["ctx"] = ctx

task = getattr(ctx.result, "task", "binary") if ctx.result is not None else "binary"
help_render = help_page.render
if task == "multiclass":  # one of several classes: per-class pages
    from views import multiclass_pages as mc
    pages = [st.Page(mc.overview, title="Overview", icon="🧭", url_path="overview",
                     default=True),
             st.Page(mc.groups, title="Group metrics", icon="📊", url_path="groups"),
             st.Page(mc.classes, title="Classes", icon="🗃️", url_path="classes"),
             st.Page(mc.data, title="Data", icon="🗂️", url_path="data")]
elif task == "regression":  # a numeric outcome: its own pages, nothing only yes/no needs
    from views import regression_pages
    pages = [st.Page(regression_pages.render_overview, title="Overview", icon="🧭",
                     url_path="overview", default=True),
             st.Page(regression_pages.render_groups, title="Group metrics", icon="📊",
                     url_path="groups"),
             st.Page(regression_pages.render_distributions, title="Distributions",
                     icon="📈", url_path="distributions")]
    help_render = regression_pages.render_help
else:
    pages = [st.Page(overview_page.render, title="Overview", icon="🧭", url_path="overview",
                     default=True),
             st.Page(groups_page.render, title="Group metrics", icon="📊", url_path="groups"),
             st.Page(data_page.render, title="Data", icon="🗂️", url_path="data")]
    if ctx.result is not None and ctx.result.spec.scores:
        pages.append(st.Page(thresholds_page.render, title="Thresholds", icon="🎚️",
                             url_path="thresholds"))
        pages.append(st.Page(mitigation_page.render, title="Mitigation", icon="🛠️",
                             url_path="mitigation"))
    if ctx.result is not None and len(ctx.result.spec.models) > 1:
        pages.append(st.Page(models_page.render, title="Models", icon="⚖️", url_path="models"))
    pages.append(st.Page(compare_page.render, title="Compare", icon="🔁", url_path="compare"))
pages.append(st.Page(export_page.render, title="Export", icon="📄", url_path="export"))
if task == "binary":  # the review trail keeps audits of yes/no decisions
    pages.append(st.Page(review_page.render, title="Review", icon="📝", url_path="review"))
    pages.append(st.Page(history_page.render, title="History", icon="🕰️", url_path="history"))
pages.append(st.Page(help_render, title="Help", icon="❓", url_path="help"))
st.navigation(pages, position="top").run()
