"""Benchmark how long the command line takes to start.

Usage::

    .venv/bin/python benchmarks/bench_start.py              # 15 runs each
    .venv/bin/python benchmarks/bench_start.py --repeat 5

Each figure is the median wall time of ``--repeat`` fresh processes (after
one untimed run that warms the file cache), started from the repository
root so that this checkout's ``fairness_core`` is the one imported:

``fairness-audit --help``
    the console script's code (``python -m fairness_core.cli --help``).
``fairness-audit`` with a bad argument
    ``--no-such-option``: argparse's one-line error, exit status 2.
``import fairness_core``
    the package alone (its public names are imported on first use).
``python -c "import pandas"``
    the floor: every audit needs pandas.

Prints a Markdown table and writes benchmarks/results/start.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

CLI = [sys.executable, "-m", "fairness_core.cli"]
# name -> (label, command, expected exit status)
COMMANDS = {
    "cli_help": ("`fairness-audit --help`", CLI + ["--help"], 0),
    "cli_bad_argument": ("`fairness-audit` with a bad argument", CLI + ["--no-such-option"], 2),
    "import_fairness_core": ("`python -c \"import fairness_core\"`",
                             [sys.executable, "-c", "import fairness_core"], 0),
    "import_pandas": ("`python -c \"import pandas\"`",
                      [sys.executable, "-c", "import pandas"], 0),
}


def run_once(cmd: list[str], status: int) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True)
    elapsed = time.perf_counter() - t0
    if done.returncode != status:
        raise SystemExit(f"{' '.join(cmd)} exited with {done.returncode}, not {status}:\n"
                         f"{done.stderr.decode('utf-8', 'replace')[-2000:]}")
    return elapsed


def bench(cmd: list[str], status: int, repeat: int) -> dict:
    run_once(cmd, status)  # warm the file cache
    times = [run_once(cmd, status) for _ in range(repeat)]
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "start.json")
    args = ap.parse_args()
    results = {}
    for name, (label, cmd, status) in COMMANDS.items():
        print(f"timing {label} ...", file=sys.stderr, flush=True)
        results[name] = bench(cmd, status, args.repeat)
    import pandas
    meta = {"python": platform.python_version(), "machine": platform.machine(),
            "cpus": os.cpu_count(), "pandas": pandas.__version__, "repeat": args.repeat}
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    print(f"| Start-up, fresh process (median of {args.repeat}) | |")
    print("|---|---|")
    for name, (label, _, _) in COMMANDS.items():
        print(f"| {label} | {results[name]['median_s']:.2f} s |")


if __name__ == "__main__":
    main()
