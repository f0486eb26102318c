"""Did the gap close?  The change between two audits of the same design,
with intervals and tests, and the paired comparison of two models scored on
the same rows.

Two audits (period 1 and period 2, or the old model on old data and the new
one on new data) are two *independent samples*: no row is in both.  Every
comparison reads the counts each audit published (the four cells of each
group), never the rows:

- **A group's rate** (selection rate, TPR, FPR, ... every metric that is a
  share of rows): the change is ``after - before``.  Its interval is
  Newcombe's hybrid score interval for the difference of two independent
  proportions (Newcombe 1998, method 10: the two Wilson intervals combined),
  which keeps its coverage near rates of 0 or 1 and in small groups where
  the Wald interval fails.  Its test is the pooled two-proportion z-test,
  or Fisher's exact test when an expected cell count is below 5, the same
  tests the audit uses for a gap between groups
  (:func:`fairness_core.stats.two_proportion_p`,
  :func:`~fairness_core.stats.fisher_p`).
- **Balanced accuracy and F1** (not a share of rows): a Wald interval and
  test with the standard error from the bootstrap on counts (each
  audit's group cells drawn from their multinomial, independently).
- **A gap between groups** (the ratio of a group's rate to the reference's,
  e.g. an FPR ratio of 1.9x): the change is the ratio of the two ratios,
  tested on the log scale, ``log r2 - log r1``.  For rates its standard
  error is the delta method's ``sqrt(sum 1/x - 1/n)`` over the four
  independent proportions (group and reference in each audit; the groups of
  one attribute hold different rows); for balanced accuracy and F1 the
  bootstrap's.  The log scale makes the test symmetric (1.9x -> 1.2x and
  0.53x -> 0.83x are the same narrowing) and the delta method is accurate
  once each rate has a handful of events; a gap whose ratio is 0 or
  unbounded gets no test.

With sample weights, each group's cells are taken as *effective* counts:
scaled to Kish's effective number of rows of the group,
``n_effective = weight ** 2 / weight_sq`` (``cells * weight / weight_sq``),
so that a weighted rate is tested with what its rows are worth once the
spread of the weights is counted: equal weights give the group's rows,
unequal weights fewer.  An audit's JSON carries ``weight_sq`` (the sum of
squared weights) per group; an older JSON without it is scaled to the
group's rows (``cells * n / weight``), which ignores the spread of the
weights, and the comparison warns that its intervals may then be too
narrow.  Every p-value of one comparison is then corrected together with the
current audit's correction (Benjamini-Hochberg or Holm,
:func:`fairness_core.stats.adjust_p`) and compared with its alpha.

The paired comparison (two models on the same rows,
:func:`fairness_core.counts.paired_counts`,
:func:`paired_comparison`) is a McNemar-type test: it needs, per group and
true outcome, the joint 2x2 counts of the two models' decisions, which one
extra pass over the rows (a bincount, so mergeable) gives.
"""
from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .counts import CELLS, OVERALL, paired_counts
from .errors import InputError, quote_list
from .findings import CORRECTION_NAMES, direction
from .formatting import level, num, p_value
from .metrics import REGISTRY, available_metrics, key_metrics, metric_values
from .spec import INTERSECTION_SEP as INTER
from .stats import adjust_p, fisher_p, min_expected, two_proportion_p, wald_p, z_value
from .stats.intervals import wilson_interval
from .tolerance import Tolerance

NEWCOMBE = "Newcombe score interval; two-proportion z-test"
NEWCOMBE_FISHER = "Newcombe score interval; Fisher's exact test"
BOOT_WALD = "Wald test (bootstrap standard error)"
LOG_RATIO = "change of the log ratio (delta method)"
LOG_RATIO_BOOT = "change of the log ratio (bootstrap standard error)"
MCNEMAR = "McNemar's exact test; Bonett-Price interval"
MCNEMAR_Z = "McNemar's z-test on effective counts; Bonett-Price interval"

#: Columns of :attr:`Comparison.changes` (one row per model x attribute x
#: group x metric).
CHANGE_COLUMNS = ["model", "attribute", "group", "metric", "before", "after", "change",
                  "change_ci_low", "change_ci_high", "p_value", "p_value_adjusted",
                  "significant", "test", "n_before", "n_after", "for_group"]
#: Columns of :attr:`Comparison.gaps` (one row per model x attribute x
#: metric x non-reference group): ``before``/``after`` are the ratios to the
#: reference, ``change`` their ratio (``after / before``).
GAP_COLUMNS = ["model", "attribute", "group", "reference", "metric", "before", "after",
               "change", "change_ci_low", "change_ci_high", "p_value", "p_value_adjusted",
               "significant", "test", "before_difference", "after_difference",
               "verdict_before", "verdict_after", "trend"]
#: The method in a few sentences, for reports and exports.
METHOD = ("The two audits are compared as independent samples, from the counts each "
          "published. The change of a group's rate has Newcombe's score interval and the "
          "two-proportion z-test (Fisher's exact test when a count is small); balanced "
          "accuracy and F1 have a Wald test with a bootstrap standard error. The change of a "
          "gap is the ratio of its two ratios to the reference (e.g. 1.9x then, 1.2x now: "
          "0.63), tested on the log scale with the delta method; a gap is compared only "
          "against the same reference group in both audits. With sample weights each group "
          "counts its effective number of rows (Kish: the squared sum of its weights over "
          "the sum of their squares), not its weight total. All p-values of the comparison are "
          "corrected together.")
#: Bootstrap replicates for the standard errors of balanced accuracy and F1.
N_BOOT = 1000
_KEY = ["model", "attribute", "group"]


# ---------------------------------------------------------------------------
# Reading the two audits
# ---------------------------------------------------------------------------
@dataclass
class Snapshot:
    """What a comparison needs of one audit: its settings, its per-group
    cells and its disparities (from an :class:`~fairness_core.audit.AuditResult`
    or the JSON its ``--json`` wrote)."""

    spec: dict
    groups: pd.DataFrame
    disparities: pd.DataFrame
    labelled: bool
    weighted: bool
    name: str
    created: str | None = None
    provenance: dict = field(default_factory=dict)

    @property
    def models(self) -> list:
        return list(dict.fromkeys(self.groups["model"]))

    def effective(self) -> np.ndarray:
        """The cells as effective counts (see the module's description):
        scaled to Kish's effective rows where the sum of squared weights is
        known, to the group's rows where it is not."""
        cells = self.groups[list(CELLS)].to_numpy(dtype=float)
        if not self.weighted:
            return cells
        n = self.groups["n"].to_numpy(dtype=float)
        w = self.groups["weight"].to_numpy(dtype=float)
        sq = self.groups["weight_sq"].to_numpy(dtype=float) if "weight_sq" in self.groups \
            else np.full(len(w), np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = np.where(sq > 0, w / sq, np.where(w > 0, n / w, 0.0))
        return cells * scale[:, None]

    @property
    def spread_known(self) -> bool:
        """False for a weighted audit whose JSON has no sums of squared
        weights (an older file)."""
        return not self.weighted or ("weight_sq" in self.groups
                                     and bool(self.groups["weight_sq"].notna().all()))


def _not_audit(name: str, why: str) -> InputError:
    return InputError(f"{name} is not an audit's JSON ({why}). Give the file that "
                      "'fairness-audit ... --json OUT.json' (or the dashboard's JSON export) "
                      "wrote.", field="compare")


def _number_column(frame: pd.DataFrame, col: str, name: str) -> np.ndarray:
    v = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float)
    if np.isnan(v).any() or (v < 0).any():
        raise _not_audit(name, f"its groups' {col!r} values are not all counts of 0 or more")
    return v


def read_audit(data, *, name: str | None = None) -> Snapshot:
    """An earlier audit, read back from its JSON.

    Parameters
    ----------
    data : path, bytes, str or dict
        The JSON that ``--json`` (:meth:`AuditResult.to_json`) wrote, its
        text or bytes, or the parsed object.
    name : str, optional
        What to call it in messages (default: the file's name).

    Raises
    ------
    InputError
        When it cannot be read, is not JSON, or is not the JSON of a binary
        classification audit.
    """
    if isinstance(data, Path) or (isinstance(data, str) and not data.lstrip().startswith("{")):
        path = Path(data)
        name = name or path.name
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(f"Could not read the earlier audit {str(path)!r} "
                             f"({exc.strerror}).", field="compare") from None
    name = name or "The earlier audit"
    if isinstance(data, (bytes, bytearray)):
        try:
            data = bytes(data).decode("utf-8-sig")
        except UnicodeDecodeError:
            raise _not_audit(name, "it is not UTF-8 text") from None
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except (json.JSONDecodeError, RecursionError, ValueError) as exc:
            raise _not_audit(name, f"it is not valid JSON: {str(exc)[:80]}") from None
    if not isinstance(data, dict):
        raise _not_audit(name, "it is not a JSON object")
    spec, groups = data.get("spec"), data.get("groups")
    if not isinstance(spec, dict) or not isinstance(groups, list) or not groups:
        raise _not_audit(name, "it has no 'spec' object and 'groups' list")
    if not all(isinstance(g, dict) for g in groups):
        raise _not_audit(name, "its 'groups' are not records")
    frame = pd.DataFrame(groups)
    missing = [c for c in ("model", "attribute", "group", "n") if c not in frame]
    if missing:
        raise _not_audit(name, f"its groups have no {quote_list(missing)}")
    labelled = all(c in frame for c in CELLS)
    if not labelled and "selected" not in frame:
        raise _not_audit(name, "its groups have no confusion counts (tp, fp, tn, fn); only "
                               "audits of yes/no decisions can be compared")
    out = frame[["model", "attribute", "group"]].astype(str)
    out["n"] = _number_column(frame, "n", name)
    out["weight"] = _number_column(frame, "weight", name) if "weight" in frame else out["n"]
    if "weight_sq" in frame and frame["weight_sq"].notna().all():
        out["weight_sq"] = _number_column(frame, "weight_sq", name)
    if labelled:
        for c in CELLS:
            out[c] = _number_column(frame, c, name)
    else:  # the decisions alone: every row counts as an actual negative
        sel = _number_column(frame, "selected", name)
        out["tn"], out["fp"] = np.maximum(out["weight"].to_numpy() - sel, 0.0), sel
        out["fn"] = out["tp"] = 0.0
    out = out[out["attribute"] != OVERALL].drop_duplicates(_KEY).reset_index(drop=True)
    disp = data.get("disparities") or []
    dframe = pd.DataFrame([d for d in disp if isinstance(d, dict)]) if isinstance(
        disp, list) else pd.DataFrame()
    need = ["model", "attribute", "metric", "group", "reference"]
    if len(dframe) and all(c in dframe for c in need):
        dframe = dframe.copy()
        for c in need:
            dframe[c] = dframe[c].astype(str)
        if "verdict" not in dframe:
            dframe["verdict"] = None
    else:
        dframe = pd.DataFrame(columns=need + ["verdict"])
    prov = data.get("provenance") if isinstance(data.get("provenance"), dict) else {}
    weighted = bool(prov.get("weighted")) or bool(spec.get("weight"))
    return Snapshot(spec=spec, groups=out, disparities=dframe, labelled=labelled,
                    weighted=weighted, name=name,
                    created=prov.get("created_utc"), provenance=prov)


def snapshot(result, name: str = "this audit") -> Snapshot:
    """The :class:`Snapshot` of an :class:`~fairness_core.audit.AuditResult`,
    read the same way as its JSON."""
    g = result.group_metrics
    groups = g[["model", "attribute", "group", "n", "weight",
                *(["weight_sq"] if "weight_sq" in g else []), *CELLS]].copy()
    for c in ("model", "attribute", "group"):
        groups[c] = groups[c].astype(str)
    d = result.disparities[["model", "attribute", "metric", "group", "reference",
                            "verdict"]].copy()
    for c in ("model", "attribute", "metric", "group", "reference"):
        d[c] = d[c].astype(str)
    prov = result.provenance
    return Snapshot(spec=result.spec.to_dict(), groups=groups.reset_index(drop=True),
                    disparities=d, labelled=result.spec.labelled,
                    weighted=bool(prov.get("weighted")), name=name,
                    created=prov.get("created_utc"), provenance=prov)


def _as_snapshot(x, name: str) -> Snapshot:
    if isinstance(x, Snapshot):
        return x
    if hasattr(x, "group_metrics") and hasattr(x, "disparities"):
        return snapshot(x, name)
    is_path = isinstance(x, Path) or (isinstance(x, str) and not x.lstrip().startswith("{"))
    return read_audit(x, name=None if is_path else name)


# ---------------------------------------------------------------------------
# The statistics
# ---------------------------------------------------------------------------
def newcombe_interval(x1, n1, x2, n2, confidence: float = 0.95):
    """Newcombe's hybrid score interval for ``x2/n2 - x1/n1`` (independent
    samples; method 10 of Newcombe 1998), vectorised; NaN where either
    denominator is 0."""
    x1, n1, x2, n2 = (np.asarray(a, dtype=float) for a in (x1, n1, x2, n2))
    l1, u1 = wilson_interval(x1, n1, confidence)
    l2, u2 = wilson_interval(x2, n2, confidence)
    with np.errstate(invalid="ignore", divide="ignore"):
        p1, p2 = x1 / n1, x2 / n2
        d = p2 - p1
        lo = d - np.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2)
        hi = d + np.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)
    ok = (n1 > 0) & (n2 > 0)
    return np.where(ok, lo, np.nan), np.where(ok, hi, np.nan)


def rate_change(x1, n1, x2, n2, confidence: float = 0.95, exact: bool = True):
    """The change of a proportion between two independent samples.

    Returns ``(change, ci_low, ci_high, p_value, test)``: ``x2/n2 - x1/n1``,
    Newcombe's interval, and the pooled two-proportion z-test (Fisher's
    exact test where an expected cell count is below 5 and ``exact``, i.e.
    for whole counts).
    """
    x1, n1, x2, n2 = (np.asarray(a, dtype=float) for a in (x1, n1, x2, n2))
    with np.errstate(invalid="ignore", divide="ignore"):
        change = np.where((n1 > 0) & (n2 > 0), x2 / n2 - x1 / n1, np.nan)
    lo, hi = newcombe_interval(x1, n1, x2, n2, confidence)
    p = two_proportion_p(x1, n1, x2, n2)
    test = np.where(np.isnan(p), "", NEWCOMBE).astype(object)
    if exact:
        small = ~np.isnan(p) & (min_expected(x1, n1, x2, n2) < 5)
        if small.any():
            idx = np.flatnonzero(small)
            p[idx] = fisher_p(x1[idx], n1[idx], x2[idx], n2[idx])
            test[idx] = NEWCOMBE_FISHER
    return change, lo, hi, p, test


def log_ratio_se(xg, ng, xr, nr) -> np.ndarray:
    """Delta-method standard error of ``log((xg/ng) / (xr/nr))`` for two
    independent proportions: ``sqrt(1/xg - 1/ng + 1/xr - 1/nr)``; NaN when
    either rate is 0 (the log ratio is then unbounded)."""
    xg, ng, xr, nr = (np.asarray(a, dtype=float) for a in (xg, ng, xr, nr))
    with np.errstate(invalid="ignore", divide="ignore"):
        v = 1 / xg - 1 / ng + 1 / xr - 1 / nr
    ok = (xg > 0) & (xr > 0) & (ng > 0) & (nr > 0)
    return np.where(ok, np.sqrt(np.maximum(v, 0.0)), np.nan)


def bootstrap_se(cells: np.ndarray, metrics, n_boot: int, rng: np.random.Generator,
                 log: bool = False) -> dict:
    """Bootstrap standard errors of ``metrics`` (of their log with ``log``)
    per row of ``(k, 4)`` effective cells: each row's cells drawn from the
    multinomial of its shares, ``n_boot`` times; NaN where fewer than half
    the replicates are defined."""
    cells = np.asarray(cells, dtype=float)
    k = len(cells)
    out = {m: np.full(k, np.nan) for m in metrics}
    if not k or not n_boot:
        return out
    tot = cells.sum(axis=1)
    n = np.round(tot).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        pv = np.where(tot[:, None] > 0, cells / tot[:, None], 0.25)
    step = max(1, 200_000 // max(n_boot, 1))
    for s in range(0, k, step):
        draws = rng.multinomial(n[s:s + step], pv[s:s + step], size=(n_boot, min(step, k - s)))
        vals = metric_values(draws.astype(float))
        for m in metrics:
            v = vals[m]
            if log:
                with np.errstate(divide="ignore", invalid="ignore"):
                    v = np.where(v > 0, np.log(v), np.nan)
            defined = (~np.isnan(v)).sum(axis=0)
            with np.errstate(invalid="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # a group with no defined value
                sd = np.nanstd(v, axis=0, ddof=1) if n_boot > 1 else np.full(v.shape[1], np.nan)
            out[m][s:s + step] = np.where(defined >= max(2, n_boot / 2), sd, np.nan)
    return out


# ---------------------------------------------------------------------------
# The comparison
# ---------------------------------------------------------------------------
@dataclass
class Comparison:
    """The change between a baseline audit and the current one.

    Attributes
    ----------
    changes : DataFrame
        :data:`CHANGE_COLUMNS`: one row per model x attribute x group x
        metric found in both audits.  ``for_group`` says whether the change
        is ``better`` or ``worse`` for the group's people (None: no side).
    gaps : DataFrame
        :data:`GAP_COLUMNS`: the gaps to the reference in both audits
        (same reference) and the change of their ratio.
    findings : list of dict
        Plain-language statements, the most important first.
    warnings : list of str
        What differs between the two audits' designs, and what did not
        match (models, attributes, groups).
    """

    changes: pd.DataFrame
    gaps: pd.DataFrame
    findings: list
    warnings: list
    baseline: dict
    settings: dict
    unmatched: dict

    @property
    def n_tests(self) -> int:
        return int(self.changes["p_value"].notna().sum() + self.gaps["p_value"].notna().sum())

    def significant_changes(self) -> pd.DataFrame:
        """The significant changes of gaps and of group metrics, gaps first."""
        g = self.gaps[self.gaps["significant"]].assign(kind="gap")
        c = self.changes[self.changes["significant"]].assign(kind="metric")
        return pd.concat([g, c], ignore_index=True)

    def tidy(self) -> pd.DataFrame:
        """Every change in one table: the gaps (``kind`` "gap", with their
        reference) then the group metrics (``kind`` "group metric")."""
        gaps = self.gaps.assign(kind="gap")
        changes = self.changes.assign(kind="group metric", reference=None)
        cols = ["kind", *CHANGE_COLUMNS[:3], "reference", *CHANGE_COLUMNS[3:]]
        return pd.concat([gaps.reindex(columns=cols), changes.reindex(columns=cols)],
                         ignore_index=True)

    def to_dict(self) -> dict:
        from .audit import _records
        return {"baseline": self.baseline, "settings": self.settings,
                "warnings": list(self.warnings), "unmatched": self.unmatched,
                "changes": _records(self.changes), "gaps": _records(self.gaps),
                "findings": [_clean(f) for f in self.findings]}


def _clean(v):
    from .audit import _clean as clean
    return clean(v)


def _design_warnings(b: Snapshot, c: Snapshot) -> list:
    """Differences of design that make the two audits measure different things."""
    out = []
    bs, cs = b.spec, c.spec
    bp, cp = b.provenance, c.provenance
    checks = [
        ("the true outcome column", bs.get("label"), cs.get("label")),
        ("the positive class", bp.get("positive_label", bs.get("positive")),
         cp.get("positive_label", cs.get("positive"))),
        ("what a positive decision is for the person", bs.get("positive_decision"),
         cs.get("positive_decision")),
        ("the decision values", bs.get("prediction_positive") or {},
         cs.get("prediction_positive") or {}),
        ("the sample weight", bs.get("weight"), cs.get("weight")),
        ("the tolerance", bs.get("tolerance"), cs.get("tolerance")),
        ("the age or number ranges of the groups (bins)", bs.get("bins") or {},
         cs.get("bins") or {}),
    ]
    for what, x, y in checks:
        if x != y:
            out.append(f"The two audits differ in {what}: {x!r} in the baseline, {y!r} now; "
                       "their numbers may not measure the same thing.")
    bt = {m: t.get("threshold") for m, t in (bp.get("thresholds") or {}).items()
          if isinstance(t, dict)}
    ct = {m: t.get("threshold") for m, t in (cp.get("thresholds") or {}).items()
          if isinstance(t, dict)}
    for m in sorted(set(bt) & set(ct)):
        if bt[m] != ct[m]:
            out.append(f"The score {m!r} was cut at {bt[m]!r} in the baseline and at {ct[m]!r} "
                       "now: a change of its rates may come from the threshold.")
    return out


def _match_models(b: Snapshot, c: Snapshot, models: dict | None):
    """baseline model -> current model, and a note when paired by position."""
    bm, cm = b.models, c.models
    if models:
        bad = [k for k in models if k not in bm] + [v for v in models.values() if v not in cm]
        if bad:
            raise InputError(f"The models {quote_list(bad)} are not in the audits: the "
                             f"baseline has {quote_list(bm)}, this audit has "
                             f"{quote_list(cm)}.", field="compare")
        return dict(models), []
    same = {m: m for m in bm if m in cm}
    if not same and len(bm) == 1 and len(cm) == 1:
        return {bm[0]: cm[0]}, [f"The baseline's only model {bm[0]!r} is compared with this "
                                f"audit's only model {cm[0]!r}."]
    return same, []


def compare_audits(baseline, current, *, models: dict | None = None,
                   alpha: float | None = None, correction: str | None = None,
                   confidence: float | None = None, n_boot: int = N_BOOT,
                   seed: int = 0) -> Comparison:
    """Compare a baseline audit with a current one.

    Parameters
    ----------
    baseline, current : AuditResult, Snapshot, path, bytes, str or dict
        The two audits (an :class:`~fairness_core.audit.AuditResult` or its
        JSON).
    models : dict, optional
        Baseline model -> current model.  Default: by name (two audits of
        one model each under different names are compared with a warning).
    alpha, correction, confidence : optional
        Default: the current audit's.
    n_boot, seed :
        Bootstrap replicates and seed for balanced accuracy and F1.

    Raises
    ------
    InputError
        When a file is not an audit's JSON, or nothing matches.
    """
    b = _as_snapshot(baseline, "the baseline")
    c = _as_snapshot(current, "this audit")
    alpha = float(alpha if alpha is not None else c.spec.get("alpha", 0.05))
    correction = correction or c.spec.get("correction", "bh")
    confidence = float(confidence if confidence is not None else c.spec.get("confidence", 0.95))
    decision = c.spec.get("positive_decision") or "benefit"
    warnings = _design_warnings(b, c)
    for snap, who in ((b, f"The baseline {b.name!r}"), (c, "This audit")):
        if not snap.spread_known:
            warnings.append(f"{who} has sample weights but no sums of squared weights "
                            "(its JSON comes from an older version): its groups count their "
                            "rows, so with unequal weights the intervals of the changes are "
                            "narrower than they should be. Audit its data again to compare "
                            "with the spread of the weights.")
    mapping, notes = _match_models(b, c, models)
    warnings += notes
    unmatched = {
        "models_only_in_baseline": [m for m in b.models if m not in mapping],
        "models_only_in_current": [m for m in c.models if m not in mapping.values()]}
    for key, where in (("models_only_in_baseline", "the baseline"),
                       ("models_only_in_current", "this audit")):
        if unmatched[key]:
            warnings.append(f"Models only in {where}, not compared: "
                            f"{quote_list(unmatched[key])}.")
    bg = b.groups.assign(_cur=b.groups["model"].map(mapping))
    bg = bg[bg["_cur"].notna()]
    left = bg.assign(_i=np.flatnonzero(b.groups["model"].map(mapping).notna()))
    right = c.groups.assign(_j=np.arange(len(c.groups)))
    merged = left.merge(right[["model", "attribute", "group", "_j"]],
                        left_on=["_cur", "attribute", "group"],
                        right_on=["model", "attribute", "group"], how="outer",
                        suffixes=("_b", ""), indicator=True)
    only_b = merged[merged["_merge"] == "left_only"]
    only_c = merged[(merged["_merge"] == "right_only") & merged["model"].isin(mapping.values())]
    unmatched["groups_only_in_baseline"] = [
        {"attribute": a, "group": g} for a, g in
        dict.fromkeys(zip(only_b["attribute"], only_b["group"]))]
    unmatched["groups_only_in_current"] = [
        {"attribute": a, "group": g} for a, g in
        dict.fromkeys(zip(only_c["attribute"], only_c["group"]))]
    for key, where in (("groups_only_in_baseline", "the baseline"),
                       ("groups_only_in_current", "this audit")):
        if unmatched[key]:
            shown = [f"{r['attribute']} = {r['group']!r}" for r in unmatched[key][:8]]
            more = len(unmatched[key]) - len(shown)
            warnings.append(f"Groups only in {where}, not compared: {', '.join(shown)}"
                            + (f" and {more} more." if more > 0 else "."))
    both = merged[merged["_merge"] == "both"].sort_values("_j")  # this audit's order
    if not len(both):
        raise InputError(f"Nothing in {b.name} matches this audit: the baseline has the models "
                         f"{quote_list(b.models)} and the attributes "
                         f"{quote_list(b.groups['attribute'].unique())}; this audit has "
                         f"{quote_list(c.models)} and "
                         f"{quote_list(c.groups['attribute'].unique())}. Compare two audits "
                         "of the same design.", field="compare")
    bi = both["_i"].to_numpy(dtype=np.intp)
    ci = both["_j"].to_numpy(dtype=np.intp)
    rng = np.random.default_rng(seed)
    labelled = b.labelled and c.labelled
    if b.labelled != c.labelled:
        warnings.append("Only one of the two audits has a true outcome: only the decisions "
                        "(selection rates) are compared.")
    changes = _metric_changes(b, c, bi, ci, labelled, confidence, decision, n_boot, rng)
    gaps, refs = _gap_changes(b, c, mapping, labelled, confidence, n_boot, rng)
    for attribute, ref_b, ref_c in refs:
        warnings.append(f"{attribute}: the reference group was {ref_b!r} in the baseline and is "
                        f"{ref_c!r} now, so its gaps are not compared. Name the same reference "
                        f"in both audits (--reference {attribute}={ref_b}).")
    p = np.concatenate([changes["p_value"].to_numpy(dtype=float),
                        gaps["p_value"].to_numpy(dtype=float)])
    adj = adjust_p(p, correction)
    sig = np.where(np.isnan(adj), False, adj < alpha)
    k = len(changes)
    changes["p_value_adjusted"], changes["significant"] = adj[:k], sig[:k]
    gaps["p_value_adjusted"], gaps["significant"] = adj[k:], sig[k:]
    changes, gaps = changes[CHANGE_COLUMNS], gaps[GAP_COLUMNS]
    settings = {"alpha": alpha, "correction": correction, "confidence": confidence,
                "n_tests": int((~np.isnan(p)).sum()), "bootstrap": n_boot, "seed": seed,
                "method": METHOD}
    base = {"name": b.name, "created_utc": b.created,
            "rows_used": b.provenance.get("rows_used"),
            "input": (b.provenance.get("input") or {}).get("name")
            if isinstance(b.provenance.get("input"), dict) else None,
            "models": mapping}
    out = Comparison(changes=changes.reset_index(drop=True), gaps=gaps.reset_index(drop=True),
                     findings=[], warnings=warnings, baseline=base, settings=settings,
                     unmatched=unmatched)
    out.findings = comparison_findings(out, tolerance=float(c.spec.get("tolerance", 0.8)),
                                       decision=decision, words=_words(c.provenance),
                                       decisions=_decisions(c.provenance))
    return out


def _metric_changes(b, c, bi, ci, labelled, confidence, decision, n_boot, rng):
    metrics = available_metrics(labelled)
    e1, e2 = b.effective()[bi], c.effective()[ci]
    exact = not (b.weighted or c.weighted)
    derived = [m for m in metrics if not REGISTRY[m].is_rate]
    se1 = bootstrap_se(e1, derived, n_boot, rng) if derived else {}
    se2 = bootstrap_se(e2, derived, n_boot, rng) if derived else {}
    v1, v2 = metric_values(e1), metric_values(e2)
    k, n_m = len(ci), len(metrics)
    cols = {c_: np.empty((k, n_m)) for c_ in ("before", "after", "change", "change_ci_low",
                                              "change_ci_high", "p_value")}
    test = np.empty((k, n_m), dtype=object)
    side = np.empty((k, n_m), dtype=object)
    for j, m in enumerate(metrics):
        met = REGISTRY[m]
        if met.is_rate:
            x1, d1 = e1 @ met.num_vector, e1 @ met.den_vector
            x2, d2 = e2 @ met.num_vector, e2 @ met.den_vector
            change, lo, hi, p, t = rate_change(x1, d1, x2, d2, confidence, exact)
        else:
            change = v2[m] - v1[m]
            se = np.sqrt(se1[m] ** 2 + se2[m] ** 2)
            z = z_value(confidence)
            lo, hi = change - z * se, change + z * se
            p = wald_p(change, se)
            p = np.where(np.isnan(change), np.nan, p)
            t = np.where(np.isnan(p), "", BOOT_WALD).astype(object)
        sign = met.direction(decision)
        with np.errstate(invalid="ignore"):
            side[:, j] = np.where(np.isnan(change) | (change == 0) | (sign is None), None,
                                  np.where(np.sign(change) * (sign or 0) > 0, "better",
                                           "worse"))
        for c_, v in (("before", v1[m]), ("after", v2[m]), ("change", change),
                      ("change_ci_low", lo), ("change_ci_high", hi), ("p_value", p)):
            cols[c_][:, j] = v
        test[:, j] = t
    # one row per group and metric: each group's metrics in registry order
    keys = {c_: np.repeat(c.groups[c_].to_numpy(dtype=object)[ci], n_m) for c_ in _KEY}
    return pd.DataFrame({
        **keys, "metric": np.tile(np.array(metrics, dtype=object), k),
        **{c_: v.ravel() for c_, v in cols.items()}, "test": test.ravel(),
        "n_before": np.repeat(b.groups["n"].to_numpy()[bi], n_m).astype(np.int64),
        "n_after": np.repeat(c.groups["n"].to_numpy()[ci], n_m).astype(np.int64),
        "for_group": side.ravel()})


def _gap_changes(b, c, mapping, labelled, confidence, n_boot, rng):
    metrics = [m for m in available_metrics(labelled) if REGISTRY[m].judged]
    db = b.disparities[b.disparities["metric"].isin(metrics)].copy()
    db["_cur"] = db["model"].map(mapping)
    db = db[db["_cur"].notna()]
    dc = c.disparities[c.disparities["metric"].isin(metrics)]
    m = db.merge(dc, left_on=["_cur", "attribute", "metric", "group"],
                 right_on=["model", "attribute", "metric", "group"], suffixes=("_b", ""))
    # a gap is compared only against the same reference in both audits
    rb = db.groupby(["_cur", "attribute", "metric"], sort=False)["reference"].first()
    rc = dc.groupby(["model", "attribute", "metric"], sort=False)["reference"].first()
    both = rb.index.intersection(rc.index)
    differ = [k for k in both if rb[k] != rc[k]]
    refs = list(dict.fromkeys((k[1], rb[k], rc[k]) for k in differ))
    m = m[m["reference_b"] == m["reference"]].reset_index(drop=True)
    if not len(m):
        return pd.DataFrame(columns=GAP_COLUMNS), refs

    def cells_of(snap, models, groups, attributes):
        where = {k: i for i, k in enumerate(zip(snap.groups["model"], snap.groups["attribute"],
                                                snap.groups["group"]))}
        idx = np.array([where.get(k, -1) for k in zip(models, attributes, groups)],
                       dtype=np.intp)
        e = np.vstack([snap.effective(), np.full((1, 4), np.nan)])
        return e[idx]

    gb = cells_of(b, m["model_b"], m["group"], m["attribute"])
    rb = cells_of(b, m["model_b"], m["reference"], m["attribute"])
    gc = cells_of(c, m["model"], m["group"], m["attribute"])
    rc = cells_of(c, m["model"], m["reference"], m["attribute"])
    metric = m["metric"].to_numpy(dtype=object)
    k = len(m)
    vals = {}
    for nm, cl in (("gb", gb), ("rb", rb), ("gc", gc), ("rc", rc)):
        mv = metric_values(np.nan_to_num(cl))
        vals[nm] = np.array([mv[mt][i] for i, mt in enumerate(metric)])
        vals[nm][np.isnan(cl).any(axis=1)] = np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        r1 = np.where(vals["rb"] > 0, vals["gb"] / vals["rb"], np.nan)
        r2 = np.where(vals["rc"] > 0, vals["gc"] / vals["rc"], np.nan)
        log_change = np.where((r1 > 0) & (r2 > 0), np.log(r2) - np.log(r1), np.nan)
    se = np.full(k, np.nan)
    test = np.full(k, "", dtype=object)
    is_rate = np.array([REGISTRY[mt].is_rate for mt in metric], dtype=bool)
    for mt in dict.fromkeys(metric):
        rows = metric == mt
        if REGISTRY[mt].is_rate:
            nv, dv = REGISTRY[mt].num_vector, REGISTRY[mt].den_vector
            s1 = log_ratio_se(gb[rows] @ nv, gb[rows] @ dv, rb[rows] @ nv, rb[rows] @ dv)
            s2 = log_ratio_se(gc[rows] @ nv, gc[rows] @ dv, rc[rows] @ nv, rc[rows] @ dv)
            se[rows] = np.sqrt(s1 ** 2 + s2 ** 2)
        else:
            parts = [bootstrap_se(np.nan_to_num(x[rows]), [mt], n_boot, rng, log=True)[mt]
                     for x in (gb, rb, gc, rc)]
            se[rows] = np.sqrt(sum(p ** 2 for p in parts))
    p = wald_p(log_change, se)
    p = np.where(np.isnan(log_change) | np.isnan(se), np.nan, p)
    test[~np.isnan(p)] = np.where(is_rate, LOG_RATIO, LOG_RATIO_BOOT)[~np.isnan(p)]
    z = z_value(confidence)
    with np.errstate(over="ignore", invalid="ignore"):
        lo, hi = np.exp(log_change - z * se), np.exp(log_change + z * se)
    a1 = np.abs(np.log(np.where(r1 > 0, r1, np.nan)))
    a2 = np.abs(np.log(np.where(r2 > 0, r2, np.nan)))
    with np.errstate(invalid="ignore", divide="ignore"):
        flipped = np.sign(np.log(r1)) * np.sign(np.log(r2)) < 0
    trend = np.where(np.isnan(a1) | np.isnan(a2), None,
                     np.where(flipped, "reversed",
                              np.where(np.isclose(a1, a2), "unchanged",
                                       np.where(a2 < a1, "narrowed", "widened"))))
    out = pd.DataFrame({
        "model": m["model"], "attribute": m["attribute"], "group": m["group"],
        "reference": m["reference"], "metric": metric, "before": r1, "after": r2,
        "change": np.exp(log_change), "change_ci_low": lo, "change_ci_high": hi,
        "p_value": p, "test": test,
        "before_difference": vals["gb"] - vals["rb"], "after_difference": vals["gc"] - vals["rc"],
        "verdict_before": m["verdict_b"], "verdict_after": m["verdict"], "trend": trend})
    return out, refs


def _decisions(prov: dict) -> dict:
    """model -> (positive decision, negative decision) in words, from an
    audit's provenance."""
    out = {}
    for m, d in (prov.get("decisions") or {}).items():
        if isinstance(d, dict) and d.get("positive") and d.get("negative"):
            out[m] = (str(d["positive"]), str(d["negative"]))
    return out


def _words(prov: dict) -> dict:
    from .findings import DEFAULT_WORDS
    from .prepare import quote_values
    words = dict(DEFAULT_WORDS)
    if prov.get("positive_values"):
        words["outcome_pos"] = quote_values(prov["positive_values"])
    if prov.get("negative_values"):
        words["outcome_neg"] = quote_values(prov["negative_values"])
    return words


# ---------------------------------------------------------------------------
# Findings
# ---------------------------------------------------------------------------
_SEVERITY = {"worse": 0, "better": 1, "info": 2}


def _sig_phrase(padj, significant, n_tests, correction) -> str:
    corr = CORRECTION_NAMES.get(correction, correction)
    if padj is None or (isinstance(padj, float) and math.isnan(padj)):
        return "no test was possible"
    p = f"adjusted p = {p_value(padj)}" if padj >= 1e-4 else "adjusted p < 0.0001"
    word = "significant" if significant else "not significant"
    return f"{word} after {corr} correction for {n_tests:,} tests, {p}"


def _metric_name(metric: str) -> str:
    """``"FPR"``, ``"selection rate"``: the short name when it is an acronym."""
    met = REGISTRY[metric]
    return met.short if met.short.isupper() else met.label.lower()


def _x(r) -> str:
    return f"{num(r, 2)}x"


def comparison_findings(comp: Comparison, tolerance: float = 0.8, decision: str = "benefit",
                        words: dict | None = None, decisions: dict | None = None) -> list:
    """Plain-language statements of a comparison: every gap of a key metric
    that failed the tolerance in either audit or changed significantly, and
    every significant change of a key metric in a group; the changes for
    the worse first, then for the better, then what did not change."""
    from .findings import DEFAULT_WORDS
    band = Tolerance(tolerance)
    s = comp.settings
    n_tests, corr = s["n_tests"], s["correction"]
    lv = level(s["confidence"])
    keys = set(key_metrics(decision))
    many = comp.gaps["model"].nunique() > 1 or comp.changes["model"].nunique() > 1
    base_words = {**DEFAULT_WORDS, **(words or {})}
    out = []
    for r in comp.gaps.itertuples(index=False):
        if r.metric not in keys or r.trend is None:
            continue
        failing = "fail" in (r.verdict_before, r.verdict_after)
        if not (failing or r.significant):
            continue
        met = REGISTRY[r.metric]
        who, ref = f"{r.attribute} = {r.group!r}", f"{r.attribute} = {r.reference!r}"
        ci = (f"ratio of the ratios {num(r.change, 2)}, {lv} CI {num(r.change_ci_low, 2)} "
              f"to {num(r.change_ci_high, 2)}")
        sig = _sig_phrase(r.p_value_adjusted, r.significant, n_tests, corr)
        name = _metric_name(r.metric)
        if r.significant:
            head = (f"The {name} gap for {who} (against {r.reference!r}) {r.trend} from "
                    f"{_x(r.before)} to {_x(r.after)}")
        else:
            head = (f"The {name} gap for {who} (against {r.reference!r}) did not change "
                    f"significantly: {_x(r.before)} then, {_x(r.after)} now")
        text = f"{head} ({ci}; {sig})."
        w = {**base_words, **({"decision_pos": decisions[r.model][0],
                               "decision_neg": decisions[r.model][1]}
                              if decisions and r.model in decisions else {})}
        pop, event = met.phrases(w)
        if event:
            them = "those" if pop else "people"
            sent = (f"{them} with {who} {event} {num(r.after, 2)} times as often as {them} "
                    f"with {ref} now, against {num(r.before, 2)} times in the baseline")
            sent = f"{pop}, {sent}" if pop else sent[0].upper() + sent[1:]
            text += f" {sent}."
        side = direction(r.metric, r.after_difference, 0.0, decision)
        if side:
            loser = who if side == "group" else ref
            now = " now" if r.significant else ""
            text += (f" The gap{now} disadvantages people with {loser}."
                     if met.side == "decision" else
                     f" The model is{now} wrong more often for people with {loser}.")
        inside = bool(band.contains(r.after))
        was_inside = bool(band.contains(r.before))
        text += (" It now passes the tolerance band." if inside and not was_inside else
                 " It now fails the tolerance band." if not inside and was_inside else
                 " It still fails the tolerance band." if not inside else "")
        if r.significant:
            sev = ("better" if r.trend == "narrowed" else "worse" if r.trend == "widened"
                   else ("better" if inside else "worse") if r.trend == "reversed" else "info")
        else:
            sev = "info"
        out.append({"severity": sev, "kind": "gap_change", "model": r.model,
                    "attribute": r.attribute, "group": r.group, "reference": r.reference,
                    "metric": r.metric, "before": r.before, "after": r.after,
                    "change": r.change, "change_ci_low": r.change_ci_low,
                    "change_ci_high": r.change_ci_high,
                    "p_value_adjusted": r.p_value_adjusted, "significant": bool(r.significant),
                    "trend": r.trend, "statement": text,
                    "text": f"Model {r.model!r}: {text}" if many else text})
    for r in comp.changes.itertuples(index=False):
        if r.metric not in keys or not r.significant:
            continue
        met = REGISTRY[r.metric]
        who = f"{r.attribute} = {r.group!r}"
        verb = "rose" if r.change > 0 else "fell"
        unit = " points" if met.percent else ""
        f = (lambda v: f"{100 * v:+.1f}") if met.percent else (lambda v: f"{v:+.3f}")
        text = (f"The {met.label.lower()} of {who} {verb} from {met.format(r.before)} to "
                f"{met.format(r.after)} ({f(r.change)}{unit}, {lv} CI {f(r.change_ci_low)} to "
                f"{f(r.change_ci_high)}{unit}; "
                f"{_sig_phrase(r.p_value_adjusted, True, n_tests, corr)}).")
        if r.for_group == "worse":
            text += (" The model is now wrong more often for this group." if met.side == "error"
                     else " This is worse for the group's people.")
        elif r.for_group == "better":
            text += " This is better for the group's people."
        out.append({"severity": r.for_group if r.for_group in ("better", "worse") else "info",
                    "kind": "metric_change", "model": r.model, "attribute": r.attribute,
                    "group": r.group, "metric": r.metric, "before": r.before,
                    "after": r.after, "change": r.change,
                    "change_ci_low": r.change_ci_low, "change_ci_high": r.change_ci_high,
                    "p_value_adjusted": r.p_value_adjusted, "significant": True,
                    "statement": text, "text": f"Model {r.model!r}: {text}" if many else text})
    if not any(f["significant"] for f in out):
        text = (f"No gap and no key rate changed significantly between the two audits "
                f"({n_tests:,} tests, {CORRECTION_NAMES.get(corr, corr)} correction at alpha "
                f"{s['alpha']:g}).")
        out.append({"severity": "info", "kind": "no_change", "model": None, "attribute": None,
                    "group": None, "metric": None, "significant": False,
                    "statement": text, "text": text})
    kind_order = {"gap_change": 0, "metric_change": 1, "no_change": 2}
    out.sort(key=lambda f: (_SEVERITY[f["severity"]], not f["significant"],
                            kind_order[f["kind"]]))
    return out


# ---------------------------------------------------------------------------
# Paired: two models on the same rows
# ---------------------------------------------------------------------------
#: The metrics a paired test serves: their denominator does not depend on
#: the decisions, so both models' rates share their population.
PAIRED_METRICS = ("selection_rate", "accuracy", "error_rate", "tpr", "fnr", "fpr", "tnr")
PAIRED_COLUMNS = ["model_a", "model_b", "attribute", "group", "metric", "n", "value_a",
                  "value_b", "difference", "difference_ci_low", "difference_ci_high",
                  "discordant_a", "discordant_b", "p_value", "p_value_adjusted",
                  "significant", "test"]


def _pair_events(joint: np.ndarray, metric: str):
    """Per group: ``(both, only a, only b, population)`` of a metric's event
    among its population, from ``(g, 2, 2, 2)`` joint counts."""
    y0, y1 = joint[:, 0], joint[:, 1]  # (g, a, b)
    if metric in ("selection_rate", "accuracy", "error_rate"):
        pop = joint.sum(axis=(1, 2, 3))
    else:
        pop = (y1 if metric in ("tpr", "fnr") else y0).sum(axis=(1, 2))
    if metric == "selection_rate":
        t = joint.sum(axis=1)  # (g, a, b): event = positive decision
        return t[:, 1, 1], t[:, 1, 0], t[:, 0, 1], pop
    if metric in ("accuracy", "error_rate"):
        # correct: decision == outcome; for y=1 a decision of 1, for y=0 of 0
        both_ok = y1[:, 1, 1] + y0[:, 0, 0]
        a_only = y1[:, 1, 0] + y0[:, 0, 1]
        b_only = y1[:, 0, 1] + y0[:, 1, 0]
        if metric == "accuracy":
            return both_ok, a_only, b_only, pop
        return y1[:, 0, 0] + y0[:, 1, 1], b_only, a_only, pop
    t = y1 if metric in ("tpr", "fnr") else y0
    if metric in ("tpr", "fpr"):  # event: positive decision
        return t[:, 1, 1], t[:, 1, 0], t[:, 0, 1], pop
    return t[:, 0, 0], t[:, 0, 1], t[:, 1, 0], pop  # fnr, tnr: negative decision


def mcnemar(b, c, n, confidence: float = 0.95, exact: bool = True):
    """The paired difference ``(b - c) / n`` of two rates on the same ``n``
    rows, ``b`` and ``c`` the discordant counts (only the first model's
    event, only the second's): the Bonett-Price (2012) adjusted Wald
    interval and McNemar's test (exact binomial on the discordant pairs,
    or its z form for weighted, non-whole counts).  Vectorised; returns
    ``(difference, ci_low, ci_high, p_value)``."""
    from scipy import stats as st
    b, c, n = (np.asarray(a, dtype=float) for a in (b, c, n))
    z = z_value(confidence)
    with np.errstate(invalid="ignore", divide="ignore"):
        d = (b - c) / n
        p12, p21 = (b + 1) / (n + 2), (c + 1) / (n + 2)
        dt = p12 - p21
        se = np.sqrt(np.maximum(p12 + p21 - dt ** 2, 0.0) / (n + 2))
        lo, hi = np.maximum(dt - z * se, -1.0), np.minimum(dt + z * se, 1.0)
        if exact:
            m = np.round(b + c)
            p = np.minimum(1.0, 2 * st.binom.cdf(np.minimum(np.round(b), np.round(c)), m, 0.5))
            p = np.where(m == 0, 1.0, p)
        else:
            p = np.where(b + c > 0, 2 * st.norm.sf(np.abs(b - c) / np.sqrt(b + c)), 1.0)
    ok = n > 0
    return (np.where(ok, d, np.nan), np.where(ok, lo, np.nan), np.where(ok, hi, np.nan),
            np.where(ok, p, np.nan))


def paired_comparison(prepared, index, model_a: str, model_b: str, *,
                      decisions: dict | None = None, alpha: float | None = None,
                      correction: str | None = None, confidence: float | None = None,
                      joint: np.ndarray | None = None, rows: np.ndarray | None = None
                      ) -> pd.DataFrame:
    """Two models scored on the same rows, compared group by group.

    For each attribute's group (and overall) and each metric of
    :data:`PAIRED_METRICS`, the two models' rates, their difference
    (``a - b``) with the Bonett-Price interval, and McNemar's test on the
    rows where the two models disagree; p-values corrected together with
    the audit's correction.  Precision and the other rates among the
    people a model selects are not paired: each model selects other rows.

    ``joint`` (and, with sample weights, ``rows``) are the two models'
    :func:`~fairness_core.counts.paired_counts` when already counted.

    Returns
    -------
    DataFrame
        :data:`PAIRED_COLUMNS`.
    """
    from .counts import GroupIndex
    spec = prepared.spec
    if model_a == model_b:
        raise InputError("Choose two different models to compare.", field="models")
    for m in (model_a, model_b):
        if m not in prepared.predictions:
            raise InputError(f"{m!r} is not a model of this audit.", field="models")
    index = index or GroupIndex.build(prepared)
    alpha = spec.alpha if alpha is None else alpha
    correction = correction or spec.correction
    confidence = spec.confidence if confidence is None else confidence
    weighted = prepared.weight is not None
    if joint is None:
        joint = paired_counts(prepared, index, model_a, model_b, decisions)
    if weighted:  # effective counts: scaled to the rows of each combination
        if rows is None:
            rows = paired_counts(prepared, index, model_a, model_b, decisions, weighted=False)
        tot_w, tot_n = joint.sum(axis=(1, 2, 3)), rows.sum(axis=(1, 2, 3))
        with np.errstate(invalid="ignore", divide="ignore"):
            joint = joint * np.where(tot_w > 0, tot_n / tot_w, 0.0)[:, None, None, None]
    metrics = [m for m in PAIRED_METRICS if spec.labelled or m == "selection_rate"]
    attrs = [(INTER.join(a), *index.marginal(a)[:2]) for a in spec.attribute_sets()]
    attrs.append((OVERALL, np.zeros(index.n_combos, dtype=np.int64), ["(all)"]))
    # every attribute x metric block's events, then one test of them all and
    # one table (building a table per block costs more than the tests)
    events, attribute, group, metric = [], [], [], []
    for name, inv, labels in attrs:
        g = len(labels)
        agg = np.zeros((g, 2, 2, 2))
        np.add.at(agg, inv, joint)
        labels = np.asarray(labels, dtype=object)
        for m in metrics:
            events.append(_pair_events(agg, m))
            attribute.append(np.full(g, name, dtype=object))
            group.append(labels)
            metric.append(np.full(g, m, dtype=object))
    both, a_only, b_only, pop = (np.concatenate([np.asarray(e[i], dtype=float) for e in events])
                                 for i in range(4))
    d, lo, hi, p = mcnemar(a_only, b_only, pop, confidence, exact=not weighted)
    with np.errstate(invalid="ignore", divide="ignore"):
        va = np.where(pop > 0, (both + a_only) / pop, np.nan)
        vb = np.where(pop > 0, (both + b_only) / pop, np.nan)
    n = len(pop)
    out = pd.DataFrame({
        "model_a": np.full(n, model_a, dtype=object), "model_b": np.full(n, model_b, dtype=object),
        "attribute": np.concatenate(attribute), "group": np.concatenate(group),
        "metric": np.concatenate(metric), "n": pop, "value_a": va, "value_b": vb,
        "difference": d, "difference_ci_low": lo, "difference_ci_high": hi,
        "discordant_a": a_only, "discordant_b": b_only, "p_value": p,
        "test": np.where(np.isnan(p), "", MCNEMAR if not weighted else MCNEMAR_Z).astype(object)})
    adj = adjust_p(out["p_value"].to_numpy(dtype=float), correction)
    out["p_value_adjusted"] = adj
    out["significant"] = np.where(np.isnan(adj), False, adj < alpha)
    return out[PAIRED_COLUMNS]



def audit_pairs(prepared, result, index=None, cube=None) -> pd.DataFrame | None:
    """The paired comparison of an audit's models, each with the next one in
    the audit's order (the first with the second, the second with the third,
    ...): ``m - 1`` pairs of ``m`` models, which compares each model with the
    one listed before it (an old model, then its successor) without testing
    every pair.  Score models are decided at the audit's thresholds.  One
    extra bincount over the rows (two with sample weights) counts every
    model's decisions jointly; each pair is a sum of that table.  The
    p-values of all pairs are corrected together.  The count cube of the
    audit (``cube``, its decisions at the prepared thresholds), when it
    holds the joint counts, spares that bincount.

    Returns
    -------
    DataFrame or None
        :data:`PAIRED_COLUMNS`; None with fewer than two models.
    """
    from .counts import GroupIndex, joint_counts
    spec = result.spec
    models = list(spec.models)
    if len(models) < 2:
        return None
    index = index or GroupIndex.build(prepared)
    thresholds = {m: t["threshold"] for m, t in
                  (result.provenance.get("thresholds") or {}).items() if m in prepared.scores}
    if cube is not None and cube.joint is not None and list(cube.cells) == models and all(
            t == prepared.thresholds.get(m) for m, t in thresholds.items()):
        decisions = None
        joint, rows = cube.joint, cube.joint_rows if prepared.weight is not None else None
    else:
        decisions = {m: prepared.scores[m] >= t for m, t in thresholds.items()}
        joint = joint_counts(prepared, index, models, decisions)
        rows = joint_counts(prepared, index, models, decisions, weighted=False) \
            if joint is not None and prepared.weight is not None else None
    parts = []
    for i in range(len(models) - 1):
        pair = {}
        if joint is not None:
            other = tuple(2 + j for j in range(len(models)) if j not in (i, i + 1))
            pair["joint"] = joint.sum(axis=other) if other else joint
            if rows is not None:
                pair["rows"] = rows.sum(axis=other) if other else rows
        parts.append(paired_comparison(prepared, index, models[i], models[i + 1],
                                       decisions=decisions, **pair))
    out = pd.concat(parts, ignore_index=True)
    adj = adjust_p(out["p_value"].to_numpy(dtype=float), spec.correction)
    out["p_value_adjusted"] = adj
    out["significant"] = np.where(np.isnan(adj), False, adj < spec.alpha)
    return out


def paired_sentences(paired: pd.DataFrame, confidence: float = 0.95,
                     correction: str = "bh", alpha: float = 0.05) -> list:
    """The paired comparison in plain words: a first sentence saying how
    many differences were tested and how many are significant, then one
    sentence per significant difference."""
    if paired is None or not len(paired):
        return []
    lv = level(confidence)
    corr = CORRECTION_NAMES.get(correction, correction)
    n_tests = int(paired["p_value"].notna().sum())
    sig = paired[paired["significant"]]
    pairs = " and ".join(f"{a!r} with {b!r}" for a, b in dict.fromkeys(
        zip(paired["model_a"], paired["model_b"])))
    out = [f"Compared on the same rows: {pairs}. {len(sig):,} of {n_tests:,} differences "
           f"are significant after {corr} correction at alpha {alpha:g}"
           + (":" if len(sig) else ".")]
    for r in sig.itertuples(index=False):
        met = REGISTRY[r.metric]
        who = "all rows" if r.attribute == OVERALL else f"{r.attribute} = {r.group!r}"
        padj = (f"adjusted p = {p_value(r.p_value_adjusted)}" if r.p_value_adjusted >= 1e-4
                else "adjusted p < 0.0001")
        out.append(f"{met.label} for {who}: {r.model_a!r} {100 * r.value_a:.1f}%, "
                   f"{r.model_b!r} {100 * r.value_b:.1f}% on the same {int(round(r.n)):,} "
                   f"rows ({100 * r.difference:+.1f} points, {lv} CI "
                   f"{100 * r.difference_ci_low:+.1f} to {100 * r.difference_ci_high:+.1f}; "
                   f"{padj}).")
    return out


def render_paired(paired: pd.DataFrame, spec, names=()) -> str:
    """The paired comparison for the terminal: the significant differences
    between each model and the next on the same rows, as a table."""
    from .formatting import short, visible_text
    sentences = paired_sentences(paired, spec.confidence, spec.correction, spec.alpha)
    lines = ["=== Models compared on the same rows (McNemar's test) ===",
             visible_text(sentences[0], names)]
    sig = paired[paired["significant"]]
    if len(sig):
        lv = level(spec.confidence)
        many = len(set(zip(paired["model_a"], paired["model_b"]))) > 1

        def pts(v):
            return f"{100 * v:+.1f} pts"

        table = pd.DataFrame({
            **({"models": [f"{short(a, 20)} / {short(b, 20)}"
                           for a, b in zip(sig["model_a"], sig["model_b"])]} if many else {}),
            "attribute": [short(a, 30) for a in sig["attribute"]],
            "group": [short(g, 30) for g in sig["group"]],
            "metric": [REGISTRY[m].short for m in sig["metric"]],
            "first": [f"{100 * v:.1f}%" for v in sig["value_a"]],
            "second": [f"{100 * v:.1f}%" for v in sig["value_b"]],
            "difference": [pts(v) for v in sig["difference"]],
            f"{lv} CI": [f"{pts(lo)} to {pts(hi)}" for lo, hi in
                         zip(sig["difference_ci_low"], sig["difference_ci_high"])],
            "adj. p": [p_value(v) for v in sig["p_value_adjusted"]]})
        if not many:
            lines.append(f"first: {short(paired['model_a'].iloc[0], 40)}, second: "
                         f"{short(paired['model_b'].iloc[0], 40)}")
        lines.append(table.head(TERMINAL_ROWS).to_string(index=False))
        if len(table) > TERMINAL_ROWS:
            lines.append(f"... {len(table) - TERMINAL_ROWS:,} more in the JSON output "
                         "(--json, under \"paired\").")
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# The terminal
# ---------------------------------------------------------------------------
#: Significant changes listed in the terminal.
TERMINAL_ROWS = 20


def change_table(comp: Comparison, significant_only: bool = True) -> pd.DataFrame:
    """The changes as a readable table: the gaps (ratio to the reference,
    before -> after) and the group metrics (before -> after, change in
    points), significant ones only by default."""
    from .formatting import short
    rows = []
    lv = level(comp.settings["confidence"])
    gaps = comp.gaps[comp.gaps["significant"]] if significant_only else comp.gaps
    for r in gaps.itertuples(index=False):
        rows.append({"model": short(r.model, 30), "attribute": short(r.attribute, 30),
                     "group": short(r.group, 30), "what": f"{_metric_name(r.metric)} gap "
                     f"vs {short(r.reference, 20)!r}",
                     "before": _x(r.before), "after": _x(r.after),
                     "change": f"x{num(r.change, 2)}",
                     f"{lv} CI": f"x{num(r.change_ci_low, 2)} to x{num(r.change_ci_high, 2)}",
                     "adj. p": p_value(r.p_value_adjusted), "trend": r.trend or ""})
    changes = comp.changes[comp.changes["significant"]] if significant_only else comp.changes
    for r in changes.itertuples(index=False):
        met = REGISTRY[r.metric]
        f = (lambda v: f"{100 * v:+.1f} pts") if met.percent else (lambda v: f"{v:+.3f}")
        rows.append({"model": short(r.model, 30), "attribute": short(r.attribute, 30),
                     "group": short(r.group, 30), "what": _metric_name(r.metric),
                     "before": met.format(r.before), "after": met.format(r.after),
                     "change": f(r.change) if not pd.isna(r.change) else "undefined",
                     f"{lv} CI": (f"{f(r.change_ci_low)} to {f(r.change_ci_high)}"
                                  if not pd.isna(r.change_ci_low) else "no interval"),
                     "adj. p": p_value(r.p_value_adjusted), "trend": r.for_group or ""})
    return pd.DataFrame(rows)


def render_comparison(comp: Comparison, names=()) -> str:
    """The comparison for the terminal: what was compared, the significant
    changes and the findings."""
    from .formatting import visible_text
    b = comp.baseline
    s = comp.settings
    lines = [f"=== Comparison with the earlier audit {b['name']}"
             + (f" of {b['created_utc']}" if b.get("created_utc") else "") + " ==="]
    corr = CORRECTION_NAMES.get(s["correction"], s["correction"])
    lines.append(f"{s['n_tests']:,} changes tested ({corr} correction, alpha {s['alpha']:g}).")
    for w in comp.warnings:
        lines.append(f"Warning: {visible_text(w, names)}")
    table = change_table(comp)
    if len(table):
        lines.append("Significant changes:")
        lines.append(table.head(TERMINAL_ROWS).to_string(index=False))
        if len(table) > TERMINAL_ROWS:
            lines.append(f"... {len(table) - TERMINAL_ROWS:,} more in the JSON output "
                         "(--json, under \"comparison\").")
    else:
        lines.append("No significant change.")
    lines.append("")
    lines.append("Comparison findings:")
    for f in comp.findings[:10]:
        lines.append(f"- [{f['severity']}] {visible_text(f['text'], names)}")
    if len(comp.findings) > 10:
        lines.append(f"- ... {len(comp.findings) - 10} more in the JSON output (--json).")
    return "\n".join(lines)


def report_section(comp: Comparison) -> dict:
    """What the report's "Comparison with an earlier audit" section shows, as
    plain strings and tables (the report escapes every value): the baseline,
    the method, the findings and every gap of a key metric."""
    b, s = comp.baseline, comp.settings
    corr = CORRECTION_NAMES.get(s["correction"], s["correction"])
    pairs = [("Earlier audit", b["name"]), ("Its data", b.get("input") or "(not recorded)"),
             ("Made", b.get("created_utc") or "(not recorded)"),
             ("Its rows", f"{b['rows_used']:,}" if b.get("rows_used") is not None
              else "(not recorded)"),
             ("Models compared", ", ".join(f"{k} -> {v}" if k != v else k
                                           for k, v in b["models"].items())),
             ("Changes tested", f"{s['n_tests']:,}, {corr} correction at alpha "
                                f"{s['alpha']:g}")]
    table = change_table(comp, significant_only=False)
    gaps = table[table["what"].str.contains(" gap vs ")] if len(table) else table
    return {"baseline": pairs, "method": s["method"], "warnings": list(comp.warnings),
            "findings": [{"severity": f["severity"], "text": f["text"]}
                         for f in comp.findings],
            "gaps": gaps, "significant": change_table(comp)}


def paired_table(paired: pd.DataFrame, attribute: str | None = None,
                 confidence: float = 0.95) -> pd.DataFrame:
    """A readable table of :func:`paired_comparison` (one attribute's groups
    when ``attribute`` is given): each rate for both models, the difference
    with its interval, the rows where only one model's decision counts, and
    the adjusted p-value."""
    from .formatting import pct, short
    d = paired if attribute is None else paired[paired["attribute"] == attribute]
    if not len(d):
        return pd.DataFrame()
    a, b = d["model_a"].iloc[0], d["model_b"].iloc[0]
    lv = level(confidence)

    def pts(v):
        return "undefined" if pd.isna(v) else f"{100 * v:+.1f} pts"

    return pd.DataFrame({
        "group": [short(g, 40) for g in d["group"]],
        "metric": [REGISTRY[m].short for m in d["metric"]],
        "rows": [f"{int(round(n)):,}" for n in d["n"]],
        short(a, 30): [pct(v) for v in d["value_a"]],
        short(b, 30): [pct(v) for v in d["value_b"]],
        "difference": [pts(v) for v in d["difference"]],
        f"{lv} CI": [f"{pts(lo)} to {pts(hi)}" if not pd.isna(lo) else "no interval"
                     for lo, hi in zip(d["difference_ci_low"], d["difference_ci_high"])],
        "rows: only first / only second": [f"{int(round(x)):,} / {int(round(y)):,}"
                                     for x, y in zip(d["discordant_a"], d["discordant_b"])],
        "adj. p": [p_value(p) for p in d["p_value_adjusted"]],
        "significant": ["yes" if s else "" for s in d["significant"]]})
