"""Benchmark the audit engine against fairlearn and against reading the data.

Usage::

    .venv/bin/python benchmarks/bench_audit.py            # 1M and 10M rows
    .venv/bin/python benchmarks/bench_audit.py --rows 1000000 --repeat 3

Generates the benchmark tables first if needed (benchmarks/generate.py: 3
sensitive attributes, 40 intersectional groups, 2 models with decisions and
scores).  Each figure is the median of ``--repeat`` runs (fairlearn: one
run).  Prints a Markdown table and writes benchmarks/results/audit.json.

What is timed
-------------
fairlearn MetricFrame
    8 metrics (selection rate, accuracy, TPR, FPR, TNR, FNR, precision,
    balanced accuracy) over one attribute (race) of one model, at 1M rows.
full audit
    ``prepare`` + ``run_audit`` on the loaded DataFrame: 2 models, 3
    attributes and their 4 intersections, all 14 metrics, every disparity,
    summaries and findings.  "with scores" audits the 2 score columns too
    (AUC, threshold curves, calibration per group).
pandas read
    ``pandas.read_parquet`` of the 8 used columns.
end to end
    ``fairness_core.audit(path, spec)``: read the file + the full audit.
threshold curves
    ``score_analysis`` for both score models (every group, ~200 thresholds).
peak memory
    In a fresh process: peak resident memory (VmHWM) minus the resident
    memory after imports, for the end-to-end audit with scores, compared
    with ``memory_usage(deep=True)`` of the used columns as pandas reads them.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import pandas as pd  # noqa: E402

from generate import COLUMNS, ensure  # noqa: E402

from fairness_core import AuditSpec, audit, read_table, run_audit  # noqa: E402
from fairness_core.counts import GroupIndex  # noqa: E402
from fairness_core.prepare import prepare  # noqa: E402
from fairness_core.scores import score_analysis  # noqa: E402

SENSITIVE = ["sex", "race", "age_group"]
# The engine's audit (issue: counts, metrics, disparities, summaries, tests,
# findings); bootstrap intervals are timed separately as the uncertainty layer.
SPEC = AuditSpec(label="label", predictions=["model_a", "model_b"], sensitive=SENSITIVE,
                 intersectional=True, n_bootstrap=0)
SPEC_BOOT = AuditSpec(label="label", predictions=["model_a", "model_b"], sensitive=SENSITIVE,
                      intersectional=True, n_bootstrap=1000)
SPEC_SCORES = AuditSpec(label="label", predictions=["model_a", "model_b"],
                        scores=["score_a", "score_b"], sensitive=SENSITIVE,
                        intersectional=True, n_bootstrap=0)


def timed(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def uncertainty_time(df: pd.DataFrame, repeat: int) -> float:
    """The uncertainty layer alone on the count cube: bootstrap (1,000
    replicates), Wilson and bootstrap intervals, tests, correction, power,
    summary intervals and the findings text."""
    from fairness_core.audit import OVERALL, add_metrics, count_table
    from fairness_core.counts import count_cube
    from fairness_core.disparity import disparities, summary
    from fairness_core.findings import findings
    from fairness_core.stats import Uncertainty, finish_tests

    prepared = prepare(df, SPEC_BOOT)
    cube = count_cube(prepared)
    groups = add_metrics(count_table(cube))
    per_group = groups[groups["attribute"] != OVERALL].reset_index(drop=True)
    disp = disparities(per_group, SPEC_BOOT)
    summ = summary(per_group, disp, SPEC_BOOT)

    def layer():
        unc = Uncertainty(cube.row_cells, None, cube.attributes, SPEC_BOOT)
        unc.group_intervals(groups)
        d = finish_tests(pd.concat([disp, unc.disparity_stats(disp, per_group)], axis=1),
                         per_group, SPEC_BOOT, cube.weighted)
        unc.summary_intervals(summ)
        findings(d, SPEC_BOOT)
    layer()
    return timed(layer, repeat)


def fairlearn_time(df: pd.DataFrame) -> float:
    from fairlearn.metrics import (MetricFrame, false_negative_rate, false_positive_rate,
                                   selection_rate, true_negative_rate, true_positive_rate)
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, precision_score

    metrics = {"selection_rate": selection_rate, "accuracy": accuracy_score,
               "tpr": true_positive_rate, "fpr": false_positive_rate,
               "tnr": true_negative_rate, "fnr": false_negative_rate,
               "precision": precision_score, "balanced_accuracy": balanced_accuracy_score}
    t0 = time.perf_counter()
    mf = MetricFrame(metrics=metrics, y_true=df["label"], y_pred=df["model_a"],
                     sensitive_features=df["race"])
    mf.by_group  # noqa: B018  (computed in the constructor; touched for clarity)
    return time.perf_counter() - t0


PEAK_SCRIPT = r"""
import json, sys
def status(key):
    for line in open('/proc/self/status'):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
sys.path.insert(0, {root!r})
from fairness_core import AuditSpec, audit
import pandas, pyarrow.parquet, fairness_core.scores, fairness_core.findings
spec = AuditSpec.from_dict({spec!r})
base = status('VmRSS:')
result = audit({path!r}, spec)
print(json.dumps({{"baseline": base, "peak": status('VmHWM:')}}))
"""


def peak_memory(path: Path) -> dict:
    code = PEAK_SCRIPT.format(root=str(HERE.parent), spec=SPEC_SCORES.to_dict(),
                              path=str(path))
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout
    mem = json.loads(out.strip().splitlines()[-1])
    df = pd.read_parquet(path, columns=COLUMNS)
    data_bytes = int(df.memory_usage(deep=True, index=False).sum())
    extra = mem["peak"] - mem["baseline"]
    return {"columns_in_memory_mb": data_bytes / 1e6, "peak_increase_mb": extra / 1e6,
            "ratio": extra / data_bytes}


def bench(n: int, repeat: int, with_fairlearn: bool) -> dict:
    path = ensure(n, csv=n <= 1_000_000)
    out: dict = {"rows": n}
    read = lambda: pd.read_parquet(path, columns=COLUMNS)  # noqa: E731
    read()  # warm the page cache
    out["pandas_read_s"] = timed(read, repeat)
    ours = lambda: read_table(path, columns=COLUMNS)[0]  # noqa: E731
    out["read_table_s"] = timed(ours, repeat)
    loaded = ours()
    out["audit_after_read_table_s"] = timed(lambda: run_audit(prepare(loaded, SPEC)), repeat)
    del loaded
    df = read()
    full = lambda: run_audit(prepare(df, SPEC))  # noqa: E731
    full()
    out["audit_s"] = timed(full, repeat)
    out["audit_with_bootstrap_s"] = timed(lambda: run_audit(prepare(df, SPEC_BOOT)), repeat)
    out["uncertainty_s"] = uncertainty_time(df, repeat)
    full_scores = lambda: run_audit(prepare(df, SPEC_SCORES))  # noqa: E731
    out["audit_with_scores_s"] = timed(full_scores, repeat)
    out["end_to_end_s"] = timed(lambda: audit(path, SPEC), repeat)
    out["end_to_end_with_scores_s"] = timed(lambda: audit(path, SPEC_SCORES), repeat)
    prepared = prepare(df, SPEC_SCORES)
    index = GroupIndex.build(prepared)
    out["threshold_curves_s"] = timed(lambda: score_analysis(prepared, index), repeat)
    res = full()
    out["groups"] = int(res.group_metrics[["attribute", "group"]].drop_duplicates().shape[0])
    out["disparity_rows"] = len(res.disparities)
    if with_fairlearn:
        out["fairlearn_metricframe_s"] = fairlearn_time(df)
        out["speedup_vs_fairlearn"] = out["fairlearn_metricframe_s"] / out["audit_s"]
        out["speedup_vs_fairlearn_after_read_table"] = (out["fairlearn_metricframe_s"]
                                                        / out["audit_after_read_table_s"])
    out["audit_over_read"] = out["audit_after_read_table_s"] / out["pandas_read_s"]
    out["audit_pandas_df_over_read"] = out["audit_s"] / out["pandas_read_s"]
    out["end_to_end_over_read"] = out["end_to_end_s"] / out["pandas_read_s"]
    del df, prepared, index, res
    out["memory"] = peak_memory(path)
    return out


def markdown(results: list[dict]) -> str:
    rows = [("Rows", lambda r: f"{r['rows']:,}"),
            ("fairlearn MetricFrame, 8 metrics, 1 attribute",
             lambda r: f"{r['fairlearn_metricframe_s']:.1f} s" if "fairlearn_metricframe_s" in r
             else "not run"),
            ("Full audit of pandas' DataFrame (2 models, 7 attributes, 14 metrics, "
             "all disparities, tests, findings; no bootstrap)",
             lambda r: f"{r['audit_s'] * 1000:.0f} ms"),
            ("Speed-up over fairlearn (audit of pandas' DataFrame)",
             lambda r: f"{r['speedup_vs_fairlearn']:,.0f}x" if "speedup_vs_fairlearn" in r
             else "-"),
            ("Uncertainty layer alone (1,000 bootstrap replicates, intervals, tests, "
             "correction, power, findings)", lambda r: f"{r['uncertainty_s'] * 1000:.0f} ms"),
            ("Full audit with bootstrap intervals", lambda r: f"{r['audit_with_bootstrap_s'] * 1000:.0f} ms"),
            ("Full audit with 2 score columns too", lambda r: f"{r['audit_with_scores_s']:.2f} s"),
            ("pandas.read_parquet of the 8 columns", lambda r: f"{r['pandas_read_s']:.2f} s"),
            ("fairness_core.read_table of the 8 columns (with SHA-256)",
             lambda r: f"{r['read_table_s']:.2f} s"),
            ("Full audit after read_table", lambda r: f"{r['audit_after_read_table_s'] * 1000:.0f} ms"),
            ("Speed-up over fairlearn (audit after read_table)",
             lambda r: f"{r['speedup_vs_fairlearn_after_read_table']:,.0f}x"
             if "speedup_vs_fairlearn_after_read_table" in r else "-"),
            ("Audit after read_table / pandas read", lambda r: f"{r['audit_over_read']:.2f}"),
            ("Audit of pandas' DataFrame / pandas read",
             lambda r: f"{r['audit_pandas_df_over_read']:.2f}"),
            ("End to end (read + audit)", lambda r: f"{r['end_to_end_s']:.2f} s"),
            ("End to end / read", lambda r: f"{r['end_to_end_over_read']:.2f}"),
            ("Threshold curves, AUC, calibration (2 score models)",
             lambda r: f"{r['threshold_curves_s']:.2f} s"),
            ("Peak memory increase / in-memory size of the columns",
             lambda r: f"{r['memory']['peak_increase_mb']:.0f} MB / "
                       f"{r['memory']['columns_in_memory_mb']:.0f} MB = "
                       f"{r['memory']['ratio']:.2f}x")]
    lines = ["| | " + " | ".join(f"{r['rows']:,} rows" for r in results) + " |",
             "|---|" + "---|" * len(results)]
    for title, fmt in rows[1:]:
        lines.append(f"| {title} | " + " | ".join(fmt(r) for r in results) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--fairlearn-rows", type=int, default=1_000_000,
                    help="run fairlearn's MetricFrame at this size (0: never)")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "audit.json")
    args = ap.parse_args()
    results = []
    for n in args.rows:
        print(f"benchmarking {n:,} rows ...", file=sys.stderr, flush=True)
        results.append(bench(n, args.repeat, with_fairlearn=n == args.fairlearn_rows))
    import numpy
    import fairlearn
    meta = {"python": platform.python_version(), "machine": platform.machine(),
            "cpus": __import__("os").cpu_count(), "pandas": pd.__version__,
            "numpy": numpy.__version__, "fairlearn": fairlearn.__version__,
            "repeat": args.repeat}
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    print(markdown(results))


if __name__ == "__main__":
    main()
