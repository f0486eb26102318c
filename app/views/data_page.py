"""The data: who is in the table, per attribute and group."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

import state
from fairness_core import charts
from fairness_core.formatting import count, interval, level, pct
from fairness_core.prepare import group_labels
from ui import chart, shown
from views.common import context, pick_attribute


def missing_rates(df: pd.DataFrame, column: str, used: list, spec,
                  counts: str | None = None) -> dict:
    """Share of each group's rows with a missing value in a used column
    (those rows are left out of the audit); groups formed as in the audit.
    In a count table (``counts``: its count column) each row stands for that
    many rows."""
    miss = df[used].isna().any(axis=1).to_numpy()
    keys = group_labels(df[column], column, spec)
    n = pd.to_numeric(df[counts]).to_numpy(dtype=float) if counts else np.ones(len(df))
    tot = pd.DataFrame({"miss": miss * n, "n": n}).groupby(keys).sum()
    return (tot["miss"] / tot["n"].where(tot["n"] > 0)).fillna(0.0).to_dict()


def data_table(result, attribute: str, missing: dict | None,
               counted: bool = False) -> pd.DataFrame:
    """One row per group of an attribute (``counted``: the table is a count
    table, whose groups are people, not rows of the file)."""
    g = result.group_metrics
    model = result.spec.models[0]
    g = g[(g["model"] == model) & (g["attribute"] == attribute)]
    mgs = result.spec.min_group_size
    band = f"Base rate {level(result.spec.confidence)} interval"
    rows = []
    for r in g.itertuples(index=False):
        rows.append({"Group": r.group, "People" if counted else "Rows": int(r.n),
                     "Share (%)": round(100 * r.share, 2),
                     "Base rate": pct(r.base_rate),
                     band: interval(r.base_rate_ci_low, r.base_rate_ci_high, "base_rate"),
                     f"{'People' if counted else 'Rows'} with missing values (left out)":
                         pct(missing.get(r.group, 0.0)) if missing is not None else "",
                     "Size": "⚠️ below the minimum: no verdict" if r.n < mgs else "ok"})
    return pd.DataFrame(rows)


def render():
    ctx = context("The data")
    if ctx is None:
        return
    r = ctx.result
    prov = r.provenance
    table, counts = state.counted_table(ctx.loaded, r.spec)
    overall = r.overall.iloc[0]
    if counts is None:
        c1, c2, c3, c4 = st.columns(4)
        c1.metric("Rows read", count(prov["rows_read"]))
        c2.metric("Rows audited", count(prov["rows_used"]))
        c3.metric("Rows left out", count(prov["rows_dropped"]))
    else:
        c0, c1, c2, c3, c4 = st.columns(5)
        if ctx.loaded.source is not None:
            c0.metric("Records counted", count(len(table)) if table is not None else "-")
        else:
            c0.metric("Rows in the file", count(len(ctx.loaded.df)))
        c1.metric("People they stand for", count(prov["rows_read"]))
        c2.metric("People audited", count(prov["rows_used"]))
        c3.metric("People left out", count(prov["rows_dropped"]))
    c4.metric("Base rate (share in the positive class)", pct(overall["base_rate"]))
    st.caption(ctx.say(state.describe_table(ctx.loaded, r.spec, prov)))
    if prov["dropped_reasons"]:
        st.caption("Left out: " + "; ".join(f"{n:,} with {ctx.say(why)}"
                                             for why, n in prov["dropped_reasons"].items()))
    attribute = pick_attribute(ctx)
    order = r.group_order(attribute)
    chart(charts.representation_chart(r.groups, attribute=attribute, model=r.spec.models[0],
                                      min_group_size=r.spec.min_group_size, order=order),
          key="representation")
    missing = None
    if " & " not in attribute and table is not None:
        loaded = ctx.loaded
        used = [c for c in r.spec.columns() if c not in r.spec.sensitive and c != counts]
        missing = state.memo(("missing", loaded.sha256, state.counting_key(r.spec), attribute),
                             lambda: missing_rates(table, attribute, used, r.spec, counts))
    st.dataframe(shown(data_table(r, attribute, missing, counts is not None), "Group"),
                 hide_index=True, width="stretch")
    st.caption("A missing value in a sensitive column forms its own group, '(missing)'. "
               "Rows with a missing label, prediction, score or weight are left out and "
               "counted above.")
