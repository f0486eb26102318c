"""Benchmark one in-memory audit of score models against fairlearn's MetricFrame.

Usage::

    .venv/bin/python benchmarks/bench_memory_audit.py            # 1M rows, 5 runs
    .venv/bin/python benchmarks/bench_memory_audit.py --repeat 9 --no-fairlearn
    .venv/bin/python benchmarks/bench_memory_audit.py --scores score_a   # one model

On the benchmark table (benchmarks/generate.py: 3 sensitive attributes, 40
intersectional groups, 2 scores) it times:

audit
    ``fairness_core.audit(df, spec)`` of the loaded DataFrame: the 2 score
    models at their default threshold, 3 attributes and their 4
    intersections, every metric and disparity, bootstrap intervals (1,000
    replicates, the default), tests, findings, AUC, threshold curves and
    calibration per group.  Median of ``--repeat`` runs, wall clock and CPU.
phases
    The same audit's parts, each timed alone (median): prepare (with the
    input's hash), group index, count cube, score counts, score views,
    everything after the counts.
threshold change
    ``Auditor.run`` at a new threshold for both scores (read off the score
    counts; the bootstrap replicates of the new counts are drawn again).
fairlearn MetricFrame
    8 metrics (selection rate, accuracy, TPR, FPR, TNR, FNR, precision,
    balanced accuracy) over one attribute (race) of one model (``model_a``,
    the first score's decisions at 0.5), one run.

Writes benchmarks/results/memory_audit.json and prints a Markdown table.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import pandas as pd  # noqa: E402

from bench_audit import fairlearn_time  # noqa: E402
from generate import COLUMNS, ensure  # noqa: E402

from fairness_core import AuditSpec, audit  # noqa: E402
from fairness_core.audit import Auditor, audit_from_counts, prepare_source  # noqa: E402
from fairness_core.counts import GroupIndex, count_cube  # noqa: E402
from fairness_core.scores import count_scores, score_analysis  # noqa: E402
from fairness_core.threads import workers  # noqa: E402

SPEC = AuditSpec(label="label", scores=["score_a", "score_b"],
                 sensitive=["sex", "race", "age_group"], intersectional=True)


def timed(fn, repeat: int) -> dict:
    wall, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return {"wall_s": statistics.median(wall), "cpu_s": statistics.median(cpu),
            "wall_min_s": min(wall)}


def phases(df: pd.DataFrame, repeat: int) -> dict:
    prepared, info = prepare_source(df, SPEC)
    index = GroupIndex.build(prepared)
    cube = count_cube(prepared, index)
    counts = {m: count_scores(prepared, index, m) for m in prepared.scores}
    views = score_analysis(prepared, index, counts=dict(counts))
    return {
        "prepare_s": timed(lambda: prepare_source(df, SPEC), repeat)["cpu_s"],
        "group_index_s": timed(lambda: GroupIndex.build(prepared), repeat)["cpu_s"],
        "count_cube_s": timed(lambda: count_cube(prepared, index), repeat)["cpu_s"],
        "score_counts_s": timed(lambda: [count_scores(prepared, index, m)
                                         for m in prepared.scores], repeat)["cpu_s"],
        "score_views_s": timed(lambda: score_analysis(prepared, index, counts=dict(counts)),
                               repeat)["cpu_s"],
        "after_counts_s": timed(lambda: audit_from_counts(cube, SPEC, prepared=prepared,
                                                          info=info, scores=views),
                                repeat)["cpu_s"],
    }


def main() -> None:
    global SPEC
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-fairlearn", action="store_true")
    ap.add_argument("--scores", nargs="+", default=list(SPEC.scores),
                    help="the score models to audit (default: score_a score_b)")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "memory_audit.json")
    args = ap.parse_args()
    SPEC = AuditSpec.from_dict({**SPEC.to_dict(), "scores": list(args.scores)})
    df = pd.read_parquet(ensure(args.rows, csv=args.rows <= 1_000_000), columns=COLUMNS)
    audit(df, SPEC)  # warm up
    out: dict = {"rows": len(df), "spec": SPEC.to_dict()}
    out["audit"] = timed(lambda: audit(df, SPEC), args.repeat)
    out["phases_cpu"] = phases(df, args.repeat)
    auditor = Auditor(df, SPEC)
    auditor.run()
    moves = iter([0.3, 0.7, 0.45, 0.55, 0.35, 0.65, 0.4, 0.6, 0.25, 0.75] * 10)
    out["threshold_change"] = timed(
        lambda: auditor.run(AuditSpec.from_dict({**SPEC.to_dict(), "threshold": next(moves)})),
        args.repeat)
    if not args.no_fairlearn:
        out["fairlearn_metricframe_s"] = fairlearn_time(df)
        out["speedup_vs_fairlearn"] = out["fairlearn_metricframe_s"] / out["audit"]["wall_s"]
    import fairlearn
    import numpy
    out["meta"] = {"python": platform.python_version(), "machine": platform.machine(),
                   "cpus": os.cpu_count(), "threads": workers(), "load_average": os.getloadavg(),
                   "pandas": pd.__version__, "numpy": numpy.__version__,
                   "fairlearn": fairlearn.__version__, "repeat": args.repeat}
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    a = out["audit"]
    lines = ["| | time |", "|---|---|",
             f"| audit(DataFrame), {len(df):,} rows, {len(SPEC.scores)} score model(s), "
             f"7 attributes, bootstrap "
             f"(median wall / CPU) | {a['wall_s'] * 1000:.0f} ms / {a['cpu_s'] * 1000:.0f} ms |"]
    for k, v in out["phases_cpu"].items():
        lines.append(f"| phase {k[:-2]} (CPU) | {v * 1000:.0f} ms |")
    lines.append(f"| threshold change (Auditor.run, median wall) | "
                 f"{out['threshold_change']['wall_s'] * 1000:.0f} ms |")
    if "fairlearn_metricframe_s" in out:
        lines.append(f"| fairlearn MetricFrame, 8 metrics, 1 attribute | "
                     f"{out['fairlearn_metricframe_s']:.1f} s |")
        lines.append(f"| speed-up over fairlearn | {out['speedup_vs_fairlearn']:,.0f}x |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
