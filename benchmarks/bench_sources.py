"""What picking a listed data source costs: opening it and profiling its
columns for the guesses (schema, a few distinct values per column, number
ranges), then counting it where it lives (one GROUP BY, only the records
come back).

Usage: .venv/bin/python benchmarks/bench_sources.py [--rows 1000000 10000000]
Writes benchmarks/results/sources.json (and prints a Markdown table).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from generate import ensure

from fairness_core import AuditSpec
from fairness_core.sources import count_source, open_source, parse_sources, profile

HERE = Path(__file__).resolve().parent


def best(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def bench(n: int, repeat: int) -> dict:
    path = ensure(n)
    sources, _ = parse_sources({"bench": {"path": str(path)}})
    src = sources["bench"]
    t_open, (table, _) = best(lambda: open_source(src), repeat)
    t_profile, prof = best(lambda: profile(table), repeat)
    decisions = AuditSpec(label="label", positive=1, predictions=["model_a", "model_b"],
                          sensitive=["sex", "race", "age_group"])
    scores = AuditSpec(label="label", positive=1, predictions=["model_a"],
                       scores=["score_a"], sensitive=["sex", "race", "age_group"])
    t_dec, (p_dec, i_dec, _) = best(lambda: count_source(src, decisions), repeat)
    t_sc, (p_sc, i_sc, _) = best(lambda: count_source(src, scores), repeat)
    assert p_dec.n_rows_read == n and p_sc.n_rows_read == n
    return {"rows": n, "open_s": round(t_open, 3), "profile_s": round(t_profile, 3),
            "profile_rows": len(prof), "count_decisions_s": round(t_dec, 3),
            "records_decisions": i_dec.records, "count_with_score_s": round(t_sc, 3),
            "records_with_score": i_sc.records}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "sources.json")
    args = ap.parse_args()
    results = [bench(n, args.repeat) for n in args.rows]
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print("| rows | open (s) | profile (s) | count, 2 decisions (s) | records | "
          "count, decision + score (s) | records |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['rows']:,} | {r['open_s']} | {r['profile_s']} | "
              f"{r['count_decisions_s']} | {r['records_decisions']:,} | "
              f"{r['count_with_score_s']} | {r['records_with_score']:,} |")


if __name__ == "__main__":
    main()
