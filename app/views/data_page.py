"""The data: who is in the table, per attribute and group."""
from __future__ import annotations

import pandas as pd
import streamlit as st

import state
from fairness_core import charts
from fairness_core.formatting import count, interval, level, pct
from fairness_core.prepare import group_labels
from ui import chart, shown
from views.common import context, pick_attribute


def missing_rates(df: pd.DataFrame, column: str, used: list, spec) -> dict:
    """Share of each group's rows with a missing value in a used column
    (those rows are left out of the audit); groups formed as in the audit."""
    miss = df[used].isna().any(axis=1).to_numpy()
    keys = group_labels(df[column], column, spec)
    return pd.Series(miss).groupby(keys).mean().to_dict()


def data_table(result, attribute: str, missing: dict | None) -> pd.DataFrame:
    g = result.group_metrics
    model = result.spec.models[0]
    g = g[(g["model"] == model) & (g["attribute"] == attribute)]
    mgs = result.spec.min_group_size
    band = f"Base rate {level(result.spec.confidence)} interval"
    rows = []
    for r in g.itertuples(index=False):
        rows.append({"Group": r.group, "Rows": int(r.n), "Share (%)": round(100 * r.share, 2),
                     "Base rate": pct(r.base_rate),
                     band: interval(r.base_rate_ci_low, r.base_rate_ci_high, "base_rate"),
                     "Rows with missing values (left out)":
                         pct(missing.get(r.group, 0.0)) if missing is not None else "",
                     "Size": "⚠️ below the minimum: no verdict" if r.n < mgs else "ok"})
    return pd.DataFrame(rows)


def render():
    ctx = context("The data")
    if ctx is None:
        return
    r = ctx.result
    prov = r.provenance
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Rows read", count(prov["rows_read"]))
    c2.metric("Rows audited", count(prov["rows_used"]))
    c3.metric("Rows left out", count(prov["rows_dropped"]))
    overall = r.overall.iloc[0]
    c4.metric("Base rate (share in the positive class)", pct(overall["base_rate"]))
    if prov["dropped_reasons"]:
        st.caption("Left out: " + "; ".join(f"{n:,} with {ctx.say(why)}"
                                             for why, n in prov["dropped_reasons"].items()))
    attribute = pick_attribute(ctx)
    order = r.group_order(attribute)
    chart(charts.representation_chart(r.groups, attribute=attribute, model=r.spec.models[0],
                                      min_group_size=r.spec.min_group_size, order=order),
          key="representation")
    missing = None
    if " & " not in attribute:
        loaded = ctx.loaded
        used = [c for c in r.spec.columns() if c not in r.spec.sensitive]
        missing = state.memo(("missing", loaded.sha256, attribute, tuple(used),
                              str(r.spec.bins.get(attribute))),
                             lambda: missing_rates(loaded.df, attribute, used, r.spec))
    st.dataframe(shown(data_table(r, attribute, missing), "Group"), hide_index=True,
                 width="stretch")
    st.caption("A missing value in a sensitive column forms its own group, '(missing)'. "
               "Rows with a missing label, prediction, score or weight are left out and "
               "counted above.")
