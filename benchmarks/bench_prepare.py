"""CPU time of reading in an in-memory DataFrame for an audit.

Usage::

    .venv/bin/python benchmarks/bench_prepare.py             # 1M rows, median of 7
    .venv/bin/python benchmarks/bench_prepare.py --rows 200000 --repeat 15

On the benchmark table (benchmarks/generate.py: label and decisions int8,
two float scores, three text columns of pandas' ``str`` dtype) and the spec
of bench_memory_audit.py (2 scores, 3 attributes), it times with
``time.process_time`` (the CPU of every thread of the process) and the wall
clock, median of ``--repeat`` runs after one warm-up:

prepare_source
    ``prepare_source(df, SPEC)``: the table's SHA-256 and its validated,
    encoded columns, as an audit reads them in.
read_source
    the SHA-256 alone (with the Arrow encoding of the text columns).
prepare
    the encoding alone (every text column encoded here).
GroupIndex.build, count_cube
    the pass that forms the groups and the count of the cells.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import pandas as pd  # noqa: E402

from bench_memory_audit import SPEC, timed  # noqa: E402
from generate import COLUMNS, ensure  # noqa: E402

from fairness_core.audit import prepare_source, read_source  # noqa: E402
from fairness_core.counts import GroupIndex, count_cube  # noqa: E402
from fairness_core.prepare import prepare  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    df = pd.read_parquet(ensure(args.rows), columns=COLUMNS)
    prepared, _ = prepare_source(df, SPEC)
    index = GroupIndex.build(prepared)
    parts = [("prepare_source", lambda: prepare_source(df, SPEC)),
             ("read_source", lambda: read_source(df, SPEC)),
             ("prepare", lambda: prepare(df, SPEC)),
             ("GroupIndex.build", lambda: GroupIndex.build(prepared)),
             ("count_cube", lambda: count_cube(prepared, index))]
    print(f"| {len(df):,} rows, median of {args.repeat} | CPU ms | wall ms |")
    print("|---|---|---|")
    for name, fn in parts:
        fn()  # warm-up
        t = timed(fn, args.repeat)
        print(f"| {name} | {t['cpu_s'] * 1e3:.1f} | {t['wall_s'] * 1e3:.1f} |")


if __name__ == "__main__":
    main()
