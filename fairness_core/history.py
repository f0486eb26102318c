"""Saved audits over time: the disparities of one model across its saved
audits (for a trend chart, with the significance of each step), and the
comparison of any two saved audits.

All read the stored results (the audit JSON kept by
:mod:`fairness_core.store`, with each group's counts), never rows; the
comparison is :func:`fairness_core.compare.compare_audits`.
"""
from __future__ import annotations

import pandas as pd

from .compare import Comparison, compare_audits, read_audit
from .errors import InputError
from .metrics import available_metrics, key_metrics

KEYS = ["model", "attribute", "metric", "group"]
#: The disparity columns a trend shows.
SHOWN = ["reference", "value", "reference_value", "ratio", "ratio_ci_low", "ratio_ci_high",
         "verdict", "significant", "n"]


def disparities_of(results: dict) -> pd.DataFrame:
    """A saved audit's disparity table (from its stored JSON)."""
    d = pd.DataFrame(results.get("disparities") or [])
    for c in KEYS + SHOWN:
        if c not in d:
            d[c] = None
    return d


def trend_metrics(results: dict) -> list[str]:
    """The key metrics of a saved audit (for its kind of decision and
    whether it has a true outcome), the first to follow over time."""
    spec = results.get("spec") or {}
    labelled = spec.get("label") is not None
    keys = available_metrics(labelled, key_metrics(spec.get("positive_decision", "benefit")))
    present = set(disparities_of(results)["metric"])
    return [m for m in keys if m in present]


def trend_table(saved: list[dict], model: str, metric: str) -> pd.DataFrame:
    """One metric's disparities of ``model`` across saved audits.

    Parameters
    ----------
    saved : list of dict
        Saved audits as :meth:`fairness_core.store.Store.audit` returns
        them (``id``, ``version``, ``saved_at``, ``data_name``, ``results``).

    Returns
    -------
    DataFrame
        One row per audit x attribute x group: ``audit_id, version,
        saved_at, data_name`` and the disparity's columns (ratio with its
        interval, verdict, ...), oldest audit first.
    """
    parts = []
    for a in saved:
        d = disparities_of(a["results"])
        d = d[(d["model"] == model) & (d["metric"] == metric)]
        if not len(d):
            continue
        parts.append(d[KEYS + SHOWN].assign(audit_id=a["id"], version=a["version"],
                                             saved_at=a["saved_at"],
                                             data_name=a["data_name"]))
    cols = ["audit_id", "version", "saved_at", "data_name"] + KEYS + SHOWN
    if not parts:
        return pd.DataFrame(columns=cols)
    out = pd.concat(parts, ignore_index=True)[cols]
    return out.sort_values(["saved_at", "audit_id"], kind="stable").reset_index(drop=True)


def saved_name(saved: dict) -> str:
    """How a saved audit is called in a comparison's messages."""
    return (f"#{saved['id']} (version {saved['version']}, saved "
            f"{saved['saved_at']:%Y-%m-%d %H:%M} UTC)")


def compare_saved(baseline: dict, current: dict, **options) -> Comparison:
    """Compare two saved audits with
    :func:`fairness_core.compare.compare_audits`.

    ``baseline`` and ``current`` are saved audits as
    :meth:`fairness_core.store.Store.audit` returns them; their stored
    results (the audit JSON, with each group's counts) are compared as two
    independent samples: every change with its interval and test, all
    p-values corrected together, and the findings ("The FPR gap ... narrowed
    from 1.9x to 1.2x (significant)").  ``options`` go to
    :func:`~fairness_core.compare.compare_audits` (``alpha``,
    ``correction``, ``confidence``, ``models``, ...).

    Raises
    ------
    InputError
        When the two audits have nothing in common to compare.
    """
    return compare_audits(read_audit(baseline["results"], name=saved_name(baseline)),
                          read_audit(current["results"], name=saved_name(current)), **options)


#: Columns of :func:`trend_steps`.
STEP_COLUMNS = ["audit_id", "previous_id", "attribute", "group", "reference", "before", "after",
                "change", "change_ci_low", "change_ci_high", "p_value_adjusted",
                "significant", "trend"]


def trend_steps(saved: list[dict], model: str, metric: str) -> pd.DataFrame:
    """The change of one metric's gaps of ``model`` from each saved audit to
    the next (oldest first), from :func:`compare_saved` of the two.

    Returns
    -------
    DataFrame
        :data:`STEP_COLUMNS`: one row per later audit x attribute x group,
        ``before``/``after`` the ratios to the reference, ``change`` their
        ratio with its interval, and the p-value corrected within that
        pair's comparison (all its models and metrics, as the comparison of
        the two audits shows it).  A pair with nothing in common, or whose
        reference group changed, has no row.
    """
    ordered = sorted((a for a in saved if model in (a.get("models") or [model])),
                     key=lambda a: (a["saved_at"], a["id"]))
    parts = []
    for prev, cur in zip(ordered, ordered[1:]):
        try:
            comp = compare_saved(prev, cur)
        except InputError:
            continue
        g = comp.gaps[(comp.gaps["model"] == model) & (comp.gaps["metric"] == metric)]
        parts.append(g.assign(audit_id=cur["id"], previous_id=prev["id"]))
    if not parts:
        return pd.DataFrame(columns=STEP_COLUMNS)
    return pd.concat(parts, ignore_index=True)[STEP_COLUMNS]
