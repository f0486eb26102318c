"""Benchmark the mitigation preview on the score counts of 1M rows.

Usage::

    .venv/bin/python benchmarks/bench_mitigation.py                 # 1M rows
    .venv/bin/python benchmarks/bench_mitigation.py --rows 200000 --repeat 5
    .venv/bin/python benchmarks/bench_mitigation.py --decimals 3    # 1,001 distinct scores

The rows: a continuous score (every value distinct, so it is counted in
65,536 fine bins plus the calibration edges: the largest score counts there
are), a true outcome, and race with 5 groups of unequal size and base rate.
Counting happens once (``Auditor``); what is timed is what the dashboard
does when a choice changes: the search alone at the audit's tolerance
(``tradeoff=False``, 0 bootstrap replicates), and the whole preview (the
search, the before/after tables with 1,000 bootstrap replicates and the
trade-off curve of 21 tolerance levels and the audit's own).  Each figure is the median of
``--repeat`` runs, as elapsed time and as the process's CPU time (which
depends less on what else runs on a shared machine).  Prints a Markdown
table and writes benchmarks/results/mitigation.json (with the load average
before and after).
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

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from fairness_core import AuditSpec  # noqa: E402
from fairness_core.audit import Auditor  # noqa: E402
from fairness_core.mitigation import mitigate_auditor  # noqa: E402


def rows(n: int, seed: int = 0, decimals: int | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    race = rng.choice(["A", "B", "C", "D", "E"], n, p=[.55, .2, .15, .07, .03])
    shift = pd.Series(race).map({"A": 0.3, "B": -0.4, "C": 0.0, "D": -0.2, "E": 0.5})
    z = rng.normal(size=n) + shift.to_numpy()
    score = 1 / (1 + np.exp(-z))
    if decimals is not None:
        score = np.round(score, decimals)
    return pd.DataFrame({"y": (z + rng.normal(0, 1, n) > 0).astype(np.int8),
                         "score": score, "race": race})


def median_seconds(fn, repeat: int) -> tuple:
    """Median elapsed and CPU seconds of ``repeat`` calls."""
    wall, cpu = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return statistics.median(wall), statistics.median(cpu)


def load() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--decimals", type=int, default=None,
                    help="round the scores (3: 1,001 distinct values, counted exactly)")
    args = ap.parse_args(argv)
    df = rows(args.rows, decimals=args.decimals)
    spec = AuditSpec(label="y", positive=1, scores=["score"], sensitive=["race"])
    t = time.perf_counter()
    auditor = Auditor(df, spec)
    count_s = time.perf_counter() - t
    sc = auditor.score_counts["score"]
    quick = AuditSpec(label="y", positive=1, scores=["score"], sensitive=["race"],
                      n_bootstrap=0)
    out = {"rows": args.rows, "score_bins": int(sc.n_bins), "exact": bool(sc.exact),
           "count_seconds": round(count_s, 3), "machine": platform.processor() or
           platform.machine(), "python": platform.python_version(),
           "load_average_before": load(), "results": []}
    print(f"{args.rows:,} rows, {sc.n_bins:,} score bins; counted once in {count_s:.2f} s\n")
    print("| constraint | rule | search alone (ms) | CPU (ms) | whole preview (ms) | CPU (ms) |")
    print("|---|---|---:|---:|---:|---:|")
    for constraint, randomised in (("demographic_parity", False), ("equal_opportunity", False),
                                   ("demographic_parity", True), ("equalized_odds", True)):
        def search():
            return mitigate_auditor(auditor, spec=quick, attribute="race",
                                    constraint=constraint, randomised=randomised,
                                    tradeoff=False)

        def whole():
            return mitigate_auditor(auditor, attribute="race", constraint=constraint,
                                    randomised=randomised)
        search()  # the running sums are built once, on the first call
        (s, s_cpu), (w, w_cpu) = median_seconds(search, args.repeat), \
            median_seconds(whole, args.repeat)
        kind = "randomised" if randomised else "one threshold per group"
        print(f"| {constraint} | {kind} | {s * 1000:.0f} | {s_cpu * 1000:.0f} | "
              f"{w * 1000:.0f} | {w_cpu * 1000:.0f} |")
        out["results"].append({"constraint": constraint, "randomised": randomised,
                               "search_ms": round(s * 1000, 1),
                               "search_cpu_ms": round(s_cpu * 1000, 1),
                               "preview_ms": round(w * 1000, 1),
                               "preview_cpu_ms": round(w_cpu * 1000, 1)})
    out["load_average_after"] = load()
    (HERE / "results").mkdir(exist_ok=True)
    name = "mitigation.json" if args.decimals is None else f"mitigation_{args.decimals}dp.json"
    (HERE / "results" / name).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
