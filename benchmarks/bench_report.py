"""Benchmark the audit evidence: the HTML + PDF report of the Adult sample
from the command line, and chart image export.

Usage: .venv/bin/python benchmarks/bench_report.py

1. ``fairness-audit`` on sample_data/adult_test_predictions.csv (model and
   score; sex, race and age group) writing ``--report`` and ``--pdf``, end
   to end in a fresh process (median of 3 runs).
2. Chart export: one kaleido server per process; the first image (which
   starts the server) and the median of the next 10 PNG/SVG/PDF images.
Writes benchmarks/results/report.json and prints a Markdown table.
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

CLI = [sys.executable, "-m", "fairness_core.cli", str(ROOT / "sample_data" /
                                                      "adult_test_predictions.csv"),
       "--label", "income", "--positive", ">50K", "--prediction", "predicted_income",
       "--score", "score", "--sensitive", "sex", "--sensitive", "race",
       "--sensitive", "age_group", "--quiet"]


def report_time(repeat: int = 3) -> dict:
    times, sizes = [], {}
    with tempfile.TemporaryDirectory() as d:
        for _ in range(repeat):
            html, pdf = Path(d) / "r.html", Path(d) / "r.pdf"
            t0 = time.perf_counter()
            subprocess.run(CLI + ["--report", str(html), "--pdf", str(pdf)], check=True,
                           cwd=ROOT, capture_output=True)
            times.append(time.perf_counter() - t0)
            sizes = {"html_bytes": html.stat().st_size, "pdf_bytes": pdf.stat().st_size}
    return {"report_html_pdf_s": statistics.median(times), **sizes}


def chart_time() -> dict:
    from fairness_core import AuditSpec, audit, charts

    r = audit(ROOT / "sample_data" / "adult_test_predictions.csv",
              AuditSpec(label="income", positive=">50K", predictions=["predicted_income"],
                        sensitive=["sex", "race"]))
    fig = charts.group_metric_chart(r.groups, r.disparities, model="predicted_income",
                                    attribute="race", metric="selection_rate", tolerance=0.8)
    t0 = time.perf_counter()
    charts.figure_bytes(fig, "png")
    first = time.perf_counter() - t0
    times = []
    for i in range(10):
        t0 = time.perf_counter()
        charts.figure_bytes(fig, ("png", "svg", "pdf")[i % 3])
        times.append(time.perf_counter() - t0)
    return {"first_chart_s": first, "chart_after_first_s": statistics.median(times),
            "chart_after_first_max_s": max(times)}


def main() -> None:
    res = {**report_time(), **chart_time()}
    out = HERE / "results" / "report.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    print("| Audit evidence | |")
    print("|---|---|")
    print(f"| HTML + PDF report of the Adult sample from the CLI, end to end | "
          f"{res['report_html_pdf_s']:.1f} s |")
    print(f"| Chart image export: first (starts the export server) | {res['first_chart_s']:.1f} s |")
    print(f"| Chart image export after the first (median / max of 10) | "
          f"{res['chart_after_first_s']:.2f} s / {res['chart_after_first_max_s']:.2f} s |")


if __name__ == "__main__":
    main()
