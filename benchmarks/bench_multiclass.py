"""Benchmark the multiclass audit on counts against the binary audit.

Usage::

    .venv/bin/python benchmarks/bench_multiclass.py                 # 10M rows
    .venv/bin/python benchmarks/bench_multiclass.py --rows 1000000 --repeat 3

The table is generated in memory: 3 sensitive attributes (2 x 5 x 4 = 40
intersectional groups, as benchmarks/generate.py), a true class and a
predicted class with 5 classes, and a binary label and decision for the
binary audit.  Each figure is the median of ``--repeat`` runs.  Prints a
Markdown table and writes benchmarks/results/multiclass.json.

What is timed
-------------
multiclass counts
    ``multiclass_cube``: encode the classes and groups, one ``np.bincount``
    into a 5 x 5 confusion table per finest combination.
multiclass metrics
    ``multiclass_audit`` on those counts without bootstrap: 5 one-vs-rest
    decisions, 3 attributes and their 4 intersections, every metric,
    disparity, test, the corrections, summaries, worst class and the
    per-group accuracy and macro rates.
multiclass metrics with bootstrap
    The same with 1,000 bootstrap replicates (intervals of every number).
multiclass result from counts
    ``result_from_cube``: the metrics as above plus the findings, the
    confusion tables per group, warnings and provenance (no bootstrap).
multiclass JSON
    ``MulticlassAuditResult.to_json`` of that result.
multiclass audit end to end
    ``fairness_core.audit`` with ``task="multiclass"`` on the DataFrame:
    count, audit, findings, provenance (with the input's hash).
binary audit
    ``fairness_core.audit`` of one binary decision on the same rows and
    attributes (no bootstrap): the input's hash for provenance, prepare,
    count, metrics, disparities, tests, summaries and findings; and
    ``prepare`` + ``run_audit`` alone (no hash), the like-for-like
    comparison (``multiclass_over_binary`` = multiclass counts + metrics
    over it).
DuckDB counts
    ``cube_from_engine`` on the DataFrame registered in DuckDB: the
    multiclass GROUP BY in the engine and the encoding of its records.
    ``duckdb_audit_end_to_end``: those counts and the whole result.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bench_audit import SENSITIVE, timed  # noqa: E402
from generate import generate as generate_groups  # noqa: E402

from fairness_core import AuditSpec, audit, run_audit  # noqa: E402
from fairness_core.multiclass import (cube_from_engine, multiclass_audit,  # noqa: E402
                                      multiclass_cube)
from fairness_core.multiclass_result import result_from_cube  # noqa: E402
from fairness_core.prepare import prepare  # noqa: E402

CLASSES = np.array(["1 routine", "2 standard", "3 urgent", "4 emergency", "5 resuscitation"],
                   dtype=object)


def generate(n: int, seed: int = 11) -> pd.DataFrame:
    """The groups of benchmarks/generate.py, with 5 classes whose prediction
    is less accurate for one group, and a binary label and decision."""
    df = generate_groups(n)[SENSITIVE]
    race = df["race"].to_numpy()
    rng = np.random.default_rng(seed)
    y = rng.choice(5, n, p=[0.35, 0.3, 0.2, 0.1, 0.05]).astype(np.int8)
    keep = rng.random(n) < np.where(race == "Black", 0.6, 0.75)
    shift = rng.integers(-1, 2, n).astype(np.int8)
    pred = np.where(keep, y, np.clip(y + shift, 0, 4)).astype(np.int8)
    return df.assign(triage=y, predicted=pred, label=(y >= 2).astype(np.int8),
                     decision=(pred >= 2).astype(np.int8))


def run(n: int, repeat: int, duckdb: bool) -> dict:
    df = generate(n)
    spec = AuditSpec(label="triage", predictions=["predicted"], sensitive=SENSITIVE,
                     intersectional=True, n_bootstrap=0)
    boot = AuditSpec(label="triage", predictions=["predicted"], sensitive=SENSITIVE,
                     intersectional=True, n_bootstrap=1000)
    binary = AuditSpec(label="label", predictions=["decision"], sensitive=SENSITIVE,
                       intersectional=True, n_bootstrap=0)
    text = df.assign(triage=pd.array(CLASSES[df["triage"].to_numpy()], dtype="str"),
                     predicted=pd.array(CLASSES[df["predicted"].to_numpy()], dtype="str"))
    cube = multiclass_cube(df, spec)
    res = multiclass_audit(cube, spec)
    out = {
        "rows": n, "classes": cube.n_classes, "combinations": len(cube.combos),
        "groups": int(res.group_summary["attribute"].ne("(overall)").sum()),
        "disparity_rows": len(res.disparities),
        "multiclass_counts_s": timed(lambda: multiclass_cube(df, spec), repeat),
        "multiclass_counts_text_classes_s": timed(lambda: multiclass_cube(text, spec), repeat),
        "multiclass_metrics_s": timed(lambda: multiclass_audit(cube, spec), repeat),
        "multiclass_metrics_bootstrap_s": timed(lambda: multiclass_audit(cube, boot), repeat),
        "binary_audit_s": timed(lambda: audit(df, binary), repeat),
        "binary_prepare_and_run_audit_s": timed(lambda: run_audit(prepare(df, binary)),
                                                repeat),
    }
    task = dataclasses.replace(spec, task="multiclass")
    whole = result_from_cube(cube, task)
    out.update({
        "multiclass_result_from_counts_s": timed(lambda: result_from_cube(cube, task), repeat),
        "multiclass_json_s": timed(lambda: whole.to_json(), repeat),
        "multiclass_audit_end_to_end_s": timed(lambda: audit(df, task), repeat),
        "findings": len(whole.findings),
    })
    out["multiclass_total_s"] = out["multiclass_counts_s"] + out["multiclass_metrics_s"]
    out["multiclass_over_binary"] = (out["multiclass_total_s"]
                                     / out["binary_prepare_and_run_audit_s"])
    if duckdb:
        import ibis

        con = ibis.duckdb.connect()
        con.raw_sql("SET enable_progress_bar = false")
        t = con.create_table("rows", df[["triage", "predicted", *SENSITIVE]])
        out["duckdb_counts_s"] = timed(lambda: cube_from_engine(t, spec), repeat)
        out["duckdb_audit_end_to_end_s"] = timed(
            lambda: result_from_cube(cube_from_engine(t, spec), task), repeat)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[10_000_000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-duckdb", action="store_true", help="skip the DuckDB counts")
    args = ap.parse_args()
    results = [run(n, args.repeat, not args.no_duckdb) for n in args.rows]
    meta = {"python": platform.python_version(), "machine": platform.machine(),
            "numpy": np.__version__, "pandas": pd.__version__, "repeat": args.repeat}
    keys = [k for k in results[0] if k.endswith("_s") or k == "multiclass_over_binary"]
    print("| rows | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    for r in results:
        print(f"| {r['rows']:,} | " + " | ".join(f"{r[k]:.3f}" for k in keys) + " |")
    print(f"groups {results[0]['groups']}, disparity rows {results[0]['disparity_rows']}, "
          f"combinations {results[0]['combinations']}")
    out = HERE / "results" / "multiclass.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
