"""Audit evidence as files: safe CSV/XLSX tables, small-group suppression,
and audit configurations that load back.

- **Formula injection** is neutralised in every text cell that comes from
  user data: a value starting with ``=``, ``+``, ``-``, ``@``, a tab or a
  carriage return gets a leading apostrophe, so that a spreadsheet shows it
  as text instead of running it.  Numbers stay numbers.
- **Suppression**: the metrics of groups smaller than ``k`` rows (default
  10) can be blanked in every export, for privacy; the files say so.
- **Configurations**: an audit's spec saves as a small JSON file with the
  SHA-256 of the data it was made on; loading it back on other data says
  so.
"""
from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd

from .errors import InputError
from .spec import AuditSpec

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
SUPPRESSED = "suppressed (fewer than {k} rows)"
CONFIG_VERSION = 1


def neutralise(value):
    """A text cell that a spreadsheet would run as a formula becomes text."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def safe_table(df: pd.DataFrame) -> pd.DataFrame:
    """A copy with every text cell (and column name) neutralised."""
    out = df.copy()
    for c in out.columns:
        col = out[c]
        if col.dtype == object or pd.api.types.is_string_dtype(col):
            out[c] = col.map(neutralise).astype(object)
    out.columns = [neutralise(str(c)) for c in out.columns]
    return out


def suppress_small(df: pd.DataFrame, k: int, n_columns=("n", "reference_n")) -> pd.DataFrame:
    """Blank every number of rows describing a group with fewer than ``k``
    rows (in any of ``n_columns``); the counts themselves are blanked too."""
    if not k or k <= 1:
        return df
    out = df.copy()
    small = np.zeros(len(out), dtype=bool)
    for c in n_columns:
        if c in out:
            small |= out[c].to_numpy(dtype=float) < k
    if not small.any():
        return out
    keep = {"model", "attribute", "group", "reference", "metric", "reference_choice"}
    for c in out.columns:
        if c in keep:
            continue
        out[c] = out[c].astype(object)
        out.loc[small, c] = None
    out["suppressed"] = np.where(small, SUPPRESSED.format(k=k), "")
    return out


def tables(result, suppress_below: int = 0) -> dict[str, pd.DataFrame]:
    """The audit's tables as exported: groups, disparities, summary.

    With suppression, the summaries are computed again without the
    suppressed groups (a summary over all groups would reveal their rates)."""
    if getattr(result, "task", "binary") == "multiclass":
        from .multiclass_result import export_tables
        return export_tables(result, suppress_below)
    if getattr(result, "task", "binary") == "regression":
        return result.export_tables(suppress_below)
    summ = result.summary
    if suppress_below and suppress_below > 1:
        from .disparity import summary as summarise
        g = result.group_metrics
        d = result.disparities
        summ = summarise(g[g["n"] >= suppress_below].reset_index(drop=True),
                         d[(d["n"] >= suppress_below) & (d["reference_n"] >= suppress_below)],
                         result.spec)
        summ["note"] = f"computed without the groups of fewer than {suppress_below} rows"
    return {
        "groups": suppress_small(result.group_table(), suppress_below, ("n",)),
        "disparities": suppress_small(result.disparities, suppress_below),
        "summary": summ.assign(groups_below_min_size=summ["groups_below_min_size"].map(
            lambda g: ", ".join(map(str, g)))),
    }


def to_csv_bytes(df: pd.DataFrame) -> bytes:
    """UTF-8 CSV (with a byte-order mark so that spreadsheets read accents).
    Lines end in CRLF, so that a carriage return inside a value is quoted."""
    return safe_table(df).to_csv(index=False, lineterminator="\r\n").encode("utf-8-sig")


def to_xlsx_bytes(sheets: dict[str, pd.DataFrame], notes: list[str] | None = None) -> bytes:
    """An XLSX workbook, one sheet per table, plus an 'About' sheet.

    Built wholly in memory (XlsxWriter's ``in_memory``): the tables are the
    audit of someone's data, so no part of them is written to a temporary
    file, as openpyxl's writer would.  Strings stay strings: none becomes a
    formula or a link."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    def clean(v):  # control characters a workbook cannot hold become "?"; a carriage
        # return becomes a line feed, as an XML reader would read it anyway
        return ILLEGAL_CHARACTERS_RE.sub("?", v).replace("\r", "\n") \
            if isinstance(v, str) else v

    buf = io.BytesIO()
    options = {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False,
               "strings_to_numbers": False, "nan_inf_to_errors": True}
    with pd.ExcelWriter(buf, engine="xlsxwriter", engine_kwargs={"options": options}) as xw:
        for name, df in sheets.items():
            t = safe_table(df)
            t.columns = [clean(c) for c in t.columns]
            for c in t.columns:
                if t[c].dtype == object:
                    t[c] = t[c].map(clean)
            t.to_excel(xw, sheet_name=name[:31], index=False)
        if notes:
            pd.DataFrame({"about": [neutralise(n) for n in notes]}).to_excel(
                xw, sheet_name="About", index=False)
    return buf.getvalue()


def export_notes(result, suppress_below: int = 0) -> list[str]:
    prov = result.provenance
    src = prov.get("input") or {}
    notes = [f"Fairness audit of {src.get('name', 'data')} (SHA-256 {src.get('sha256')}), "
             f"created {prov['created_utc']} with {prov['tool']} {prov['tool_version']}.",
             "Undefined numbers (a rate whose denominator is 0) are empty cells."]
    unavailable = getattr(result, "unavailable", {})
    if unavailable:
        from .metrics import NO_OUTCOME
        notes.append(f"No true outcome was given: only the decisions are audited. These "
                     f"metrics and summaries are {NO_OUTCOME} and their cells are empty: "
                     f"{', '.join(unavailable)}. The count column 'selected' holds the rows "
                     "(or weight) given the positive decision.")
    if getattr(result, "task", "binary") == "multiclass":
        from .multiclass_result import export_notes as multiclass_notes
        notes += multiclass_notes(result)
    if suppress_below and suppress_below > 1:
        notes.append(f"The metrics of groups with fewer than {suppress_below} rows are "
                     "suppressed for privacy.")
    return notes


# ---------------------------------------------------------------------------
# Configurations
# ---------------------------------------------------------------------------
def config_json(spec: AuditSpec, sha256: str | None = None, name: str | None = None) -> str:
    """The audit's spec as a small JSON file that loads back."""
    return json.dumps({"fairness_audit_config": CONFIG_VERSION, "spec": spec.to_dict(),
                       "data": {"sha256": sha256, "name": name}}, indent=2, sort_keys=True)


def load_config(text: str | bytes) -> tuple[AuditSpec, dict]:
    """Read a saved configuration: ``(spec, data)`` where ``data`` has the
    SHA-256 and name of the table it was made on.  Raises InputError."""
    try:
        obj = json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InputError(f"The audit configuration is not valid JSON ({exc}). Choose a file "
                         "saved by this tool.", field="config") from None
    if not isinstance(obj, dict):
        raise InputError("The audit configuration must be a JSON object.", field="config")
    if "fairness_audit_config" in obj:
        spec_d, data = obj.get("spec"), obj.get("data") or {}
    else:  # a bare spec (e.g. written by hand)
        spec_d, data = obj, {}
    if not isinstance(data, dict):
        raise InputError("The audit configuration's 'data' entry must be an object with the "
                         "data's sha256 and name. Save the configuration again from this "
                         "tool.", field="config")
    try:
        return AuditSpec.from_dict(spec_d), data
    except InputError:
        raise
    except (TypeError, ValueError, AttributeError, KeyError, RecursionError) as exc:
        raise InputError(f"The audit configuration has a setting of the wrong kind "
                         f"({type(exc).__name__}: {str(exc)[:120]}). Save the configuration "
                         "again from this tool.", field="config") from None


def check_data(data: dict, sha256: str | None) -> str | None:
    """A warning when the data differs from the one the config was made on."""
    want = (data or {}).get("sha256")
    if want and sha256 and want != sha256:
        return (f"This configuration was made on different data ({data.get('name') or 'a file'} "
                f"with SHA-256 {want[:12]}...; this file has {sha256[:12]}...). The numbers "
                "will not match the earlier audit.")
    return None
