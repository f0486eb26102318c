"""Benchmark the regression audit against the binary audit on the same rows.

Usage::

    .venv/bin/python benchmarks/bench_regression.py                 # 10M rows
    .venv/bin/python benchmarks/bench_regression.py --rows 1000000 --repeat 3

The table is the binary benchmark's (benchmarks/generate.py: 3 sensitive
attributes, 40 intersectional groups) with a numeric label and prediction
added (a salary-like label, a prediction with a group-dependent bias).  Each
figure is the median of ``--repeat`` runs on the DataFrame in memory, the
runs of the regression and the binary audit interleaved; the JSON has the
fastest runs too.
Prints a Markdown table and writes benchmarks/results/regression.json.

What is timed
-------------
regression audit (whole)
    ``fairness_core.audit.audit_frame`` with ``task="regression"``: what the
    command line and the dashboard run, the result object with the sums,
    the binned error and label counts (a second pass over the rows), the
    metrics, intervals, disparities, summaries, bounded group loss,
    distributions and findings.
regression audit (core)
    ``regression_audit``: group codes of the 3 sensitive columns, the sums
    per finest combination (``np.bincount``), every attribute and
    intersection, the 6 metrics with intervals, disparities with Welch's
    tests and their correction, the summaries.
regression sums only
    ``stats_frame``: the part that reads the rows.
regression in DuckDB
    The same sums as one GROUP BY (``ibis_stats`` on the DataFrame in place),
    then the rest of the audit from them.
binary audit
    ``fairness_core.audit(df, spec)`` for one model (``model_a``) and for
    the two models of benchmarks/bench_audit.py, without bootstrap: the
    count cube, metrics, disparities, tests, summaries and findings.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bench_audit import timed  # noqa: E402
from generate import generate  # noqa: E402

from fairness_core import AuditSpec  # noqa: E402
from fairness_core.audit import audit, audit_frame  # noqa: E402
from fairness_core.regression import (from_engine, ibis_stats, regression_audit,  # noqa: E402
                                      stats_frame)

SENSITIVE = ["sex", "race", "age_group"]
ONE_MODEL = AuditSpec(label="label", predictions=["model_a"], sensitive=SENSITIVE,
                      intersectional=True, n_bootstrap=0)
REGRESSION = AuditSpec(label="salary", predictions=["offer"], sensitive=SENSITIVE,
                       intersectional=True, task="regression")
TWO_MODELS = AuditSpec(label="label", predictions=["model_a", "model_b"], sensitive=SENSITIVE,
                       intersectional=True, n_bootstrap=0)


def table(n: int) -> pd.DataFrame:
    df = generate(n)
    rng = np.random.default_rng(11)
    salary = rng.lognormal(10.8, 0.4, n)
    bias = np.where(df["sex"].to_numpy(dtype=object) == "Female", -1500.0, 0.0)
    df["salary"] = salary
    df["offer"] = salary * rng.lognormal(0, 0.15, n) + bias
    return df


def duckdb_audit(df: pd.DataFrame):
    import ibis
    con = ibis.duckdb.connect()
    con.raw_sql("SET enable_progress_bar = false")
    expr = ibis_stats(ibis.memtable(df[["salary", "offer", *SENSITIVE]]), "salary", "offer",
                      SENSITIVE)
    stats = from_engine(con.execute(expr), SENSITIVE)
    return regression_audit(None, "salary", "offer", SENSITIVE, stats=stats)


def run(n: int, repeat: int) -> dict:
    """The timings, interleaved (regression, binary, regression ...) so that
    other work on a shared machine slows both alike; medians and minima."""
    t0 = time.perf_counter()
    df = table(n)
    print(f"generated {n:,} rows in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    res = regression_audit(df, "salary", "offer", SENSITIVE)  # warm up
    audit(df, ONE_MODEL)
    audit_frame(df, None, spec=REGRESSION)
    jobs = {"regression_whole": lambda: audit_frame(df, None, spec=REGRESSION),
            "regression_audit": lambda: regression_audit(df, "salary", "offer", SENSITIVE),
            "regression_sums": lambda: stats_frame(df, "salary", "offer", SENSITIVE),
            "binary_audit_one_model": lambda: audit(df, ONE_MODEL),
            "binary_audit_two_models": lambda: audit(df, TWO_MODELS)}
    times: dict = {k: [] for k in jobs}
    for _ in range(repeat):
        for name, fn in jobs.items():
            times[name].append(timed(fn, 1))
    out = {"rows": n, "groups": int(len(res.groups)),
           "disparity_rows": int(len(res.disparities))}
    for name, ts in times.items():
        out[f"{name}_s"] = statistics.median(ts)
        out[f"{name}_min_s"] = min(ts)
    try:
        out["regression_duckdb_s"] = timed(lambda: duckdb_audit(df), max(1, repeat // 2))
    except ImportError:
        out["regression_duckdb_s"] = None
    for k in ("one_model", "two_models"):
        out[f"regression_over_binary_{k}"] = \
            out["regression_whole_s"] / out[f"binary_audit_{k}_s"]
        out[f"regression_over_binary_{k}_min"] = \
            out["regression_whole_min_s"] / out[f"binary_audit_{k}_min_s"]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[10_000_000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default=str(HERE / "results" / "regression.json"))
    args = ap.parse_args(argv)
    results = [run(n, args.repeat) for n in args.rows]
    meta = {"python": platform.python_version(), "machine": platform.machine(),
            "numpy": np.__version__, "pandas": pd.__version__, "repeat": args.repeat}
    Path(args.out).parent.mkdir(exist_ok=True)
    Path(args.out).write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    print("| rows | regression audit (whole) s | core s | sums only s | in DuckDB s | "
          "binary 1 model s | binary 2 models s | regression / binary (1 model) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        duck = f"{r['regression_duckdb_s']:.2f}" if r["regression_duckdb_s"] else "-"
        print(f"| {r['rows']:,} | {r['regression_whole_s']:.2f} | {r['regression_audit_s']:.2f} "
              f"| {r['regression_sums_s']:.2f} "
              f"| {duck} | {r['binary_audit_one_model_s']:.2f} | "
              f"{r['binary_audit_two_models_s']:.2f} | "
              f"{r['regression_over_binary_one_model']:.2f}x (fastest runs: "
              f"{r['regression_over_binary_one_model_min']:.2f}x) |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
