"""``fairness-audit``: the same audit from a terminal.

Exit status: 0 done; 1 with ``--fail-on-disparity`` when any verdict is
fail (a CI gate); 2 bad input (one line, no traceback).
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from . import __version__
from .errors import InputError
from .formatting import short, visible_text
from .spec import AuditSpec
from .tasks import TASKS

# Heavy modules (pandas, scipy, the engine) are imported where they are
# used, so that --help and a mistyped option answer at once.
#: What a MemoryError during an audit means for the user, and what to change.
OUT_OF_MEMORY = ("The audit needed more memory than this machine or the memory limit "
                 "(FAIRNESS_AUDIT_MEMORY) allows. Use fewer bootstrap replicates (--bootstrap), "
                 "fewer groups (fewer --sensitive columns, no --intersectional, coarser --bin "
                 "ranges) or fewer models, or a machine with more memory.")
#: Groups shown per attribute in the terminal (the reference, then the worst).
TABLE_ROWS = 40
#: Characters of a group name in a terminal table cell.
GROUP_CELL_CHARS = 40


class _Parser(argparse.ArgumentParser):
    """argparse, but a mistyped command line is one line, like any other
    input error (argparse prints its whole usage first)."""

    def error(self, message):
        raise InputError(f"{message[0].upper()}{message[1:]}. Run 'fairness-audit --help' for "
                         "the options.", field="arguments")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="fairness-audit",
        description="Audit a table of model predictions for group fairness: per-group "
                    "rates, disparities against a reference group, fairlearn's summaries "
                    "and plain-language findings.",
        epilog="Examples: fairness-audit sample_data/loans.csv --label repaid --positive yes "
               "--prediction model_a_approved --sensitive sex --sensitive race.  "
               "A positive decision that harms (COMPAS): fairness-audit "
               "compas-scores-two-years.csv --label two_year_recid --positive 1 --prediction "
               "score_text --prediction-positive score_text=Medium,High --positive-decision "
               "harm --sensitive race")
    p.add_argument("data", nargs="?",
                   help="CSV, TSV, Parquet or XLSX file of predictions; a folder or "
                        "glob of Parquet files; or a database URL (with --table)")
    p.add_argument("--table", metavar="NAME",
                   help="the table to audit in the database at DATA (or a Spark table)")
    p.add_argument("--sources", metavar="FILE.toml",
                   help="a TOML file whose [sources] section lists named data sources (as "
                        "the dashboard's secrets.toml); DATA is then one of their names")
    p.add_argument("--engine", choices=["auto", "duckdb", "spark", "memory"], default="auto",
                   help="where the rows are counted: DuckDB (out of core), Spark, or in "
                        "memory; auto (the default) uses DuckDB for Parquet, folders, globs, "
                        "databases and CSV files too large for memory, and reads other files "
                        "into memory")
    p.add_argument("--spark-master", default="local[*]", metavar="URL",
                   help="Spark master with --engine spark: local[*] (the default), a "
                        "cluster's URL, or Spark Connect sc://host:port")
    p.add_argument("--task", choices=["auto", *TASKS], default="auto",
                   help="what the audit is about: binary (yes/no decisions), multiclass (one "
                        "of several classes) or regression (a number); auto (the default) "
                        "infers it from the label's values and says so")
    p.add_argument("--label", help="column with the true outcome; without it only the "
                   "decisions are audited (selection rates, demographic parity, score "
                   "distributions)")
    p.add_argument("--prediction", action="append", default=[], metavar="COL",
                   help="column with a model's predicted outcome (repeat for several models)")
    p.add_argument("--prediction-positive", action="append", default=[],
                   metavar="COL=V1,V2",
                   help="the values of a decision column that mean the positive decision, "
                        "when they are not the label's values (e.g. score_text=Medium,High)")
    p.add_argument("--score", action="append", default=[], metavar="COL",
                   help="column with a model's score; its prediction is score >= threshold")
    p.add_argument("--threshold", action="append", default=[], metavar="T or COL=T",
                   help="score threshold, for every score column or per column (default: "
                        "0.5 for scores within [0, 1], else the middle of the score's range)")
    p.add_argument("--sensitive", action="append", default=[], metavar="COL",
                   help="sensitive attribute column (repeat for several)")
    p.add_argument("--intersectional", action="store_true",
                   help="also audit every combination of the sensitive attributes")
    p.add_argument("--positive", metavar="VALUE[,VALUE]",
                   help="the label value(s) of the positive class, what the true and false "
                        "positive rates count (guessed for 0/1, true/false, yes/no)")
    p.add_argument("--positive-decision", choices=["benefit", "harm"], default=None,
                   help="is a positive decision a benefit for the person (a loan, an "
                        "interview; the default) or a harm (flagged as high risk, "
                        "investigated)? It decides who a gap disadvantages. Without it, a "
                        "label whose name sounds like a harm (two_year_recid, is_fraud, "
                        "default) gets a note. In a regression audit: is a higher "
                        "prediction a benefit (a credit limit) or a harm (a price)?")
    p.add_argument("--weight", metavar="COL", help="column of sample weights")
    p.add_argument("--counts", metavar="COL",
                   help="the data is a count table: each row stands for COL rows (with "
                        "the same values); every number is the same as from the rows")
    p.add_argument("--reference", action="append", default=[], metavar="ATTR=GROUP",
                   help="reference group of an attribute (default: the largest group)")
    p.add_argument("--reference-strategy", choices=["largest", "best"], default="largest",
                   help="reference for attributes without a named one: the largest group, "
                        "or per metric the best-off group")
    p.add_argument("--tolerance", type=float, default=0.8,
                   help="a ratio inside [T, 1/T] passes (0.8: the four-fifths rule)")
    p.add_argument("--min-group-size", type=int, default=30,
                   help="groups with fewer rows get no pass/fail verdict (30)")
    p.add_argument("--max-groups", type=int, default=50,
                   help="refuse sensitive columns with more distinct values (50)")
    p.add_argument("--bin", action="append", default=[], metavar="COL=EDGES",
                   help="cut a numeric sensitive column into ranges, e.g. age=18,25,40,65,120")
    p.add_argument("--alpha", type=float, default=0.05,
                   help="significance level after correction for many comparisons (0.05)")
    p.add_argument("--correction", choices=["bh", "holm"], default="bh",
                   help="multiple-comparison control: Benjamini-Hochberg (bh) or Holm")
    p.add_argument("--confidence", type=float, default=0.95,
                   help="level of the intervals (0.95)")
    p.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                   help="bootstrap replicates for intervals (1000; 0 turns them off)")
    p.add_argument("--seed", default="0", help="bootstrap seed, a whole number of any size (0)")
    p.add_argument("--config", metavar="AUDIT.json",
                   help="take the audit's settings from a saved configuration (other options "
                        "are ignored except the outputs)")
    p.add_argument("--save-config", metavar="OUT.json",
                   help="save this audit's settings (with the data's SHA-256) to load again")
    p.add_argument("--json", metavar="OUT.json", help="write the full audit as JSON")
    p.add_argument("--compare", metavar="BASELINE.json",
                   help="compare with an earlier audit (the JSON its --json wrote, or store:ID "
                        "for audit ID of the review store given by --store): the change "
                        "of every group's rates and of every gap, with intervals and tests")
    p.add_argument("--xlsx", metavar="OUT.xlsx",
                   help="write the group, disparity and summary tables as an Excel workbook")
    p.add_argument("--report", metavar="OUT.html",
                   help="write the audit report as one self-contained HTML file")
    p.add_argument("--pdf", metavar="OUT.pdf",
                   help="write the audit report as PDF (needs Debian's chromium)")
    p.add_argument("--title", default="Fairness audit report", help="report title")
    p.add_argument("--author", default="", help="report author")
    p.add_argument("--scope", default="", help="report scope statement")
    p.add_argument("--suppress-below", type=int, nargs="?", const=10, default=0, metavar="K",
                   help="in the CSV/XLSX outputs, suppress the metrics of groups with fewer "
                        "than K rows (10 when K is omitted)")
    p.add_argument("--export-counts", metavar="OUT.csv",
                   help="write the audit's count table (one row per combination of groups, "
                        "outcome and decisions, with its number of rows): it audits again "
                        "with --counts to the same numbers, and holds no row of the data")
    p.add_argument("--csv", metavar="OUT.csv",
                   help="write the per-group table as CSV (UTF-8; spreadsheet formulas in text "
                        "cells neutralised)")
    p.add_argument("--store", metavar="URL",
                   help="save the audit (its settings, provenance, count table and results; "
                        "never a row) in a review store: sqlite:///reviews.sqlite or "
                        "postgresql://user@host/database; prints the saved audit's id")
    p.add_argument("--review-export", metavar="OUT.json",
                   help="with --store: write this audit's review (decisions, comments, "
                        "sign-off, with its count table and results) to move to another store")
    p.add_argument("--review-import", metavar="IN.json",
                   help="with --store: read a review written by --review-export into the "
                        "store; it must be of the same data (SHA-256) and settings")
    p.add_argument("--history", action="store_true",
                   help="with --store and no DATA: list the audits saved in the store (id, "
                        "version, time, data, models, sign-off)")
    p.add_argument("--compare-saved", nargs=2, type=int, metavar=("EARLIER", "LATER"),
                   help="with --store and no DATA: compare two saved audits by their ids "
                        "(as --compare does); --json OUT.json writes the comparison")
    p.add_argument("--fail-on-disparity", action="store_true",
                   help="exit with status 1 when any disparity fails the tolerance")
    p.add_argument("--quiet", action="store_true", help="print only warnings and errors")
    p.add_argument("--progress", choices=["auto", "always", "never"],
                   default=os.environ.get("FAIRNESS_AUDIT_PROGRESS", "auto"),
                   help="a progress line on stderr while an engine counts for more than "
                        "2 seconds (or FAIRNESS_AUDIT_PROGRESS_DELAY): DuckDB and Spark "
                        "show the share done, databases the time elapsed; the line is erased "
                        "when the count ends. auto (the default, or FAIRNESS_AUDIT_PROGRESS): "
                        "only when stderr is a terminal; always: also to a file or pipe; "
                        "never. --quiet turns it off")
    m = p.add_argument_group("mitigation preview (score models)")
    m.add_argument("--mitigate", choices=["demographic_parity", "equal_opportunity",
                                          "equalized_odds"],
                   help="preview per-group thresholds that bring the chosen rates of every "
                        "group of --mitigate-attribute within the tolerance, and what they "
                        "cost (in the terminal, the JSON's 'mitigation' and the report)")
    m.add_argument("--mitigate-attribute", metavar="ATTR",
                   help="the attribute whose groups get their own thresholds")
    m.add_argument("--mitigate-objective", choices=["accuracy", "balanced_accuracy"],
                   default="accuracy", help="what the thresholds keep as high as possible "
                                            "(accuracy)")
    m.add_argument("--mitigate-model", metavar="COL",
                   help="the score column to set thresholds on (default: the first --score)")
    m.add_argument("--mitigate-randomised", action="store_true",
                   help="allow randomised thresholds for demographic parity and equal "
                        "opportunity too (equalized odds always allows them)")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return p


def _pairs(items, what: str, example: str) -> dict:
    out = {}
    for item in items:
        if "=" not in item:
            raise InputError(f"--{what} {item!r} must look like {example}.", field=what)
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _thresholds(items: list):
    """``--threshold 0.3`` (every score) or ``--threshold COL=T`` (repeatable)."""
    if not items:
        return None
    per = [i for i in items if "=" in i]
    if per and len(per) < len(items):
        raise InputError("Give --threshold either once as a number for every score column, or "
                         "as COL=T for each column, not both.", field="threshold")
    if per:
        return _pairs(per, "threshold", "risk_score=0.3")
    if len(items) > 1:
        raise InputError("--threshold is given more than once; give one number, or COL=T per "
                         "score column.", field="threshold")
    return items[0]


def choose_engine(args) -> str:
    """``duckdb``, ``spark`` or ``memory`` for the command line's data."""
    from .engine import is_url

    data = str(args.data)
    if args.engine == "memory":
        if is_url(data) or args.table:
            raise InputError("A database table is counted where it lives: leave out "
                             "--engine memory.", field="engine")
        return "memory"
    if args.engine != "auto":
        return args.engine
    if is_url(data) or args.table:
        return "duckdb"
    path = Path(data)
    if path.is_dir() or (not path.exists() and any(ch in data for ch in "*?[")):
        return "duckdb"
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq", ".csv", ".tsv", ".txt") and path.is_file():
        try:
            import duckdb  # noqa: F401
            import ibis  # noqa: F401
        except ImportError:
            return "memory"
        from .io import _check_kind
        with open(path, "rb") as fh:  # a file whose content is not its name's format
            _check_kind(path.name, None, fh.read(8192))  # is refused as the reader does
        if suffix in (".parquet", ".pq"):
            return "duckdb"
        from .limits import limits
        # a text file this large would not fit in memory once parsed
        if path.stat().st_size * 8 > limits().memory:
            return "duckdb"
    return "memory"


def spec_from_args(args):
    if args.config:
        from .exports import load_config
        try:
            text = Path(args.config).read_bytes()
        except OSError as exc:
            raise InputError(f"Could not read the configuration {args.config!r} "
                             f"({exc.strerror}).", field="config") from None
        spec, data = load_config(text)
        args._config_data = data
        return spec
    if not args.sensitive:
        raise InputError("Name at least one sensitive attribute with --sensitive (or give "
                         "--config).", field="sensitive")
    bins = {}
    for col, edges in _pairs(args.bin, "bin", "age=18,25,40,65").items():
        bins[col] = [e.strip() for e in edges.split(",") if e.strip()]
    pred_pos = {col: [v.strip() for v in vals.split(",") if v.strip()]
                for col, vals in _pairs(args.prediction_positive, "prediction-positive",
                                        "score_text=Medium,High").items()}
    return AuditSpec(label=args.label, predictions=args.prediction, scores=args.score,
                     threshold=_thresholds(args.threshold), sensitive=args.sensitive,
                     intersectional=args.intersectional, positive=args.positive,
                     positive_decision=args.positive_decision or "benefit",
                     prediction_positive=pred_pos, weight=args.weight,
                     counts=args.counts,
                     reference=_pairs(args.reference, "reference", "sex=Male"),
                     reference_strategy=args.reference_strategy, tolerance=args.tolerance,
                     min_group_size=args.min_group_size, max_groups=args.max_groups,
                     bins=bins, alpha=args.alpha, correction=args.correction,
                     confidence=args.confidence, n_bootstrap=args.bootstrap, seed=args.seed,
                     task="binary" if args.task == "auto" else args.task)


def render_summary(result) -> str:
    """The readable terminal summary: a table per attribute, the reference
    group first, then the worst groups."""
    import pandas as pd

    from .formatting import auc as auc_text, num, pct
    from .metrics import REGISTRY, available_metrics, key_metrics
    from .rollup import REFERENCE, group_verdicts, verdict_text
    from .tolerance import Tolerance

    spec, prov = result.spec, result.provenance
    keys = available_metrics(spec.labelled, key_metrics(spec.positive_decision))
    lines = []
    src = prov.get("input") or {}
    names = _names(result)

    def say(text) -> str:  # a sentence that may quote names
        return visible_text(text, names)
    what = ("a benefit for the person" if spec.positive_decision == "benefit"
            else "a harm for the person")
    outcome = (f"positive class {short(spec.label)} = {short(prov['positive_label'])!r}"
               if spec.labelled else "no true outcome: only the decisions are audited")
    lines.append(f"Fairness audit of {short(src.get('name', 'data'))}: "
                 f"{prov['rows_used']:,} rows used of {prov['rows_read']:,} read; {outcome}; "
                 f"a positive decision is {what}; tolerance "
                 f"{Tolerance(spec.tolerance).interval()}; minimum group size "
                 f"{spec.min_group_size}.")
    for model, t in (prov.get("thresholds") or {}).items():
        how = "" if t["how"] == "given" else f" ({say(t['how'])})"
        lines.append(f"Threshold for {short(model)!r}: score >= {t['threshold']:g}{how}.")
    for w in result.warnings:
        lines.append(f"Warning: {say(w)}")
    disp, groups = result.disparities, result.group_metrics
    for model in spec.models:
        lines.append("")
        words = (prov.get("decisions") or {}).get(model)
        lines.append(f"=== Model {short(model)!r} ===" + (
            f" (positive decision: {say(words['positive'])})" if words else ""))
        ov = result.overall[result.overall["model"] == model].iloc[0]
        auc = ov.get("auc") if "auc" in ov else None
        lines.append("Overall: " + ", ".join(
            f"{REGISTRY[m].short} {pct(ov[m])}" for m in keys) + (
            f", AUC {auc_text(auc, ov.get('auc_error_bound'))}" if auc is not None
            and not pd.isna(auc) else ""))
        summ = result.summary[result.summary["model"] == model]
        for s in summ.itertuples(index=False):
            g = groups[(groups["model"] == model) & (groups["attribute"] == s.attribute)]
            verdicts = group_verdicts(disp, groups, model, s.attribute, keys)
            ref = verdicts.loc[verdicts["status"] == REFERENCE, "group"]
            ref = ref.iloc[0] if len(ref) else g.loc[g["n"].idxmax(), "group"]
            lines.append("")
            odds = (f"; equalized odds difference {num(s.equalized_odds_difference)}, ratio "
                    f"{num(s.equalized_odds_ratio)}" if spec.labelled else "")
            lines.append(f"{short(s.attribute)} (reference {short(ref)!r}): demographic parity "
                         f"difference {num(s.demographic_parity_difference)}, ratio "
                         f"{num(s.demographic_parity_ratio)}{odds}; {s.n_fail} fail "
                         f"({s.n_fail_significant} significant), {s.n_insufficient} not "
                         "judged.")
            by_group = g.set_index("group")
            means = None
            sm = result.scores.get("means", pd.DataFrame())
            if model in spec.scores and len(sm):
                sm = sm[(sm["model"] == model) & (sm["attribute"] == s.attribute)]
                means = dict(zip(sm["group"], sm["mean_score"]))
            table = []
            for v in verdicts.head(TABLE_ROWS).itertuples(index=False):
                r = by_group.loc[v.group]
                row = {"group": short(v.group, GROUP_CELL_CHARS), "n": f"{int(r['n']):,}"}
                for m in keys:
                    row[REGISTRY[m].short] = pct(r[m])
                if means is not None:
                    row["mean score"] = num(means.get(v.group))
                row["verdict"] = verdict_text(v, fail="FAIL")
                table.append(row)
            lines.append(pd.DataFrame(table).to_string(index=False))
            if len(verdicts) > TABLE_ROWS:
                lines.append(f"... {len(verdicts) - TABLE_ROWS:,} more groups, all in the "
                             "JSON, CSV and XLSX outputs (--json, --csv, --xlsx).")
        lines.append("(* significant after correction for multiple comparisons)")
    fs = result.findings
    if fs:
        lines.append("")
        lines.append("Findings (most severe first):")
        shown = fs[:12]
        for f in shown:
            lines.append(f"- [{f['severity']}] {say(f['text'])}")
        if len(fs) > len(shown):
            lines.append(f"- ... {len(fs) - len(shown)} more in the JSON output (--json).")
    return "\n".join(lines)


def _names(result) -> list:
    """The user's names that the audit's sentences may quote: the file,
    columns, models, attributes, groups and label values."""
    spec, prov = result.spec, result.provenance
    return [(prov.get("input") or {}).get("name"), *spec.columns(), *spec.attribute_names(),
            *result.groups["group"].unique(), *map(str, prov.get("positive_values") or ()),
            *map(str, prov.get("negative_values") or ()),
            *map(str, getattr(result, "classes", ()))]


def _write(path: str, writer, what: str) -> None:
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        writer(path)
    except OSError as exc:
        raise InputError(f"Could not write the {what} to {path!r} ({exc.strerror}). Choose a "
                         "writable path.", field=what) from None


def _export_counts(path: str, prepared, result, suppress_below: int) -> None:
    """Write the count table and say on stderr how to audit it again."""
    import shlex

    from .counts import count_records
    from .exports import to_csv_bytes

    table, n_col, notes = count_records(prepared)
    spec = result.spec
    if suppress_below and suppress_below > 1:
        small = table.groupby(list(spec.sensitive), dropna=False)[n_col].transform("sum")
        hidden = int((small < suppress_below).sum())
        table = table[small >= suppress_below]
        notes.append(f"{hidden:,} line(s) of groups with fewer than {suppress_below} rows "
                     "were left out (--suppress-below): the totals are smaller than the "
                     "data's.")
    Path(path).write_bytes(to_csv_bytes(table))
    pos = prepared.positive_values[0] if prepared.positive_values else "1"
    cmd = ["fairness-audit", path, "--counts", n_col]
    if spec.labelled:
        cmd += ["--label", spec.label]
    if spec.labelled or spec.predictions:
        cmd += ["--positive", pos]
    for m in spec.predictions:
        cmd += ["--prediction", m]
    for m in spec.scores:
        cmd += ["--score", m, "--threshold", f"{m}={prepared.thresholds[m]!r}"]
    for c in spec.sensitive:
        cmd += ["--sensitive", c]
    if spec.weight:
        cmd += ["--weight", spec.weight]
    if spec.intersectional:
        cmd.append("--intersectional")
    if spec.positive_decision != "benefit":
        cmd += ["--positive-decision", spec.positive_decision]
    for note in notes:
        print(f"Note: {visible_text(note)}", file=sys.stderr)
    print(f"Count table written to {visible_text(path)} ({len(table):,} lines for "
          f"{int(table[n_col].sum()):,} rows). Audit it again with: "
          f"{visible_text(shlex.join(cmd))}", file=sys.stderr)


def _progress_options(args) -> dict:
    """The progress line's callback and delay for :func:`prepare_from_engine`
    (none with --quiet, --progress never, or auto when stderr is not a
    terminal)."""
    if args.progress not in ("auto", "always", "never"):  # from the environment
        raise InputError(f"FAIRNESS_AUDIT_PROGRESS={args.progress!r} is not one of auto, "
                         "always, never.", field="progress")
    if args.quiet or args.progress == "never":
        return {}
    if args.progress == "auto" and not (hasattr(sys.stderr, "isatty") and sys.stderr.isatty()):
        return {}
    from .progress import DELAY, TerminalLine

    text = os.environ.get("FAIRNESS_AUDIT_PROGRESS_DELAY", "").strip()
    try:
        delay = float(text) if text else DELAY
        if not math.isfinite(delay):
            raise ValueError
    except ValueError:
        raise InputError(f"FAIRNESS_AUDIT_PROGRESS_DELAY={text!r} is not a number of seconds; "
                         "set it to e.g. 2 or leave it unset.", field="progress") from None
    return {"progress": TerminalLine(sys.stderr), "progress_delay": max(delay, 0.0)}


def prepare_file(path, spec):
    """Read the file and prepare it: ``(Prepared, TableInfo)``."""
    from .prepare import prepare

    df, info = read_file(path, spec)
    return prepare(df, spec), info


def read_file(path, spec):
    """Read the columns of ``spec`` from the file: ``(DataFrame, TableInfo)``.

    The file is read in a child process capped at the memory limit
    (:func:`fairness_core.guard.read_guarded`; ``FAIRNESS_AUDIT_MEMORY``):
    a file that needs more is an InputError, like any bad input.  A
    program with one thread forks itself for that; with more threads the
    child comes from the fork server, which is safe with threads.
    """
    import threading

    from .guard import read_guarded

    start = "fork" if threading.active_count() == 1 else "forkserver"
    return read_guarded(path, columns=spec.columns(), start=start)


def resolve_task(args, spec, sample):
    """The spec with its task: as given (``--task`` or the configuration),
    or inferred from ``sample()`` (the label's and predictions' values, see
    :func:`fairness_core.tasks.infer_task`), said on stderr when it is not
    yes/no decisions."""
    import dataclasses

    from .tasks import TASK_NAMES, infer_task

    if args.task != "auto" or args.config:
        return spec
    guess = infer_task(*sample(), positive=spec.positive)
    if guess.task == spec.task:
        return spec
    if not args.quiet:
        print(f"fairness-audit: task {guess.task} ({TASK_NAMES[guess.task]}), inferred: "
              f"{visible_text(guess.reason, _spec_names(spec))}; choose another with --task.",
              file=sys.stderr)
    return dataclasses.replace(spec, task=guess.task)


def _spec_names(spec) -> list:
    return [*spec.columns(), *spec.attribute_names()]


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except InputError as exc:
        print(f"fairness-audit: error: {visible_text(exc.message)}", file=sys.stderr)
        return 2
    if "pyarrow" not in sys.modules:
        # Arrow allocates through malloc, which the reading child's memory
        # cap sees exactly (see fairness_core.guard); chosen before import.
        os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    if args.history or args.compare_saved:
        return _history(args)
    try:
        if args.data is None:
            raise InputError("Give the DATA to audit: a file, folder or database URL. To see "
                             "the saved audits, use --store URL --history.", field="data")
        spec = spec_from_args(args)
        if not spec.labelled and not args.quiet:
            print("fairness-audit: no --label given: auditing the decisions alone (selection "
                  "rates, demographic parity, score distributions); metrics that need the "
                  "true outcome are not available.", file=sys.stderr)
        if args.mitigate:
            from .mitigation import check_choices
            check_choices(spec, attribute=args.mitigate_attribute, constraint=args.mitigate,
                          objective=args.mitigate_objective, model=args.mitigate_model)
        from .audit import run_audit
        result = prepared = None
        engine = None if args.sources else choose_engine(args)
        if args.sources:
            from .sources import count_source, get_source, read_sources_file
            if spec.task == "regression":
                raise InputError("A listed data source is audited as yes/no decisions or as "
                                 "several classes; for a numeric outcome, audit the file or "
                                 "table itself (DATA, with --table for a database).",
                                 field="task")
            listed, problems = read_sources_file(args.sources)
            if args.data in problems:
                raise InputError(problems[args.data], field="source")
            if spec.task == "multiclass":
                from .multiclass_result import audit_multiclass_source
                result = audit_multiclass_source(get_source(listed, args.data), spec)
            else:
                prepared, info, _ = count_source(get_source(listed, args.data), spec)
        elif engine == "memory":
            from .prepare import prepare
            df, info = read_file(args.data, spec)
            spec = resolve_task(args, spec, lambda: (
                df[spec.label] if spec.labelled else None, [df[c] for c in spec.predictions]))
            if spec.task != "binary":
                from .audit import audit_frame
                result = audit_frame(df, info, spec=spec)
            else:
                prepared = prepare(df, spec)
        else:
            from .engine import prepare_from_engine, task_sample
            spec = resolve_task(args, spec, lambda: task_sample(
                args.data, spec, table=args.table, engine=engine,
                spark_master=args.spark_master))
            if spec.task == "multiclass":
                from .multiclass_result import audit_multiclass_engine
                result = audit_multiclass_engine(args.data, spec, table=args.table,
                                                 engine=engine, spark_master=args.spark_master,
                                                 **_progress_options(args))
            elif spec.task == "regression":
                from .regression_result import audit_engine
                result = audit_engine(args.data, spec, table=args.table, engine=engine,
                                      spark_master=args.spark_master)
            else:
                prepared, info = prepare_from_engine(args.data, spec, table=args.table,
                                                     engine=engine,
                                                     spark_master=args.spark_master,
                                                     **_progress_options(args))
        if result is None:
            result = run_audit(prepared, info)
        elif args.mitigate or args.compare:
            raise InputError(f"{'--mitigate' if args.mitigate else '--compare'} works on "
                             f"audits of yes/no decisions; this is a {spec.task} audit.",
                             field="mitigate" if args.mitigate else "compare")
        mitigation = _mitigate(args, prepared, result)
        if args.export_counts and result.task != "binary":
            where = ("the confusion tables of a multiclass audit are in its --json and --xlsx "
                     "outputs ('confusion')" if result.task == "multiclass" else
                     "a regression audit's numbers are in --json, --csv and --xlsx")
            raise InputError(f"--export-counts writes the count table of yes/no decisions; "
                             f"{where}.", field="export_counts")
        from . import exports
        sha = (result.provenance.get("input") or {}).get("sha256")
        warn = exports.check_data(getattr(args, "_config_data", None), sha)
        if warn:
            result.warnings.insert(0, warn)
        if args.compare:
            from .compare import compare_audits
            result.comparison = compare_audits(_baseline(args), result)
        review = _store(args, result)
        if args.json:
            _write(args.json, lambda p: Path(p).write_text(result.to_json(), encoding="utf-8"),
                   "json")
        k = args.suppress_below
        if args.csv:
            _write(args.csv, lambda p: Path(p).write_bytes(exports.to_csv_bytes(
                exports.tables(result, k)["groups"])), "csv")
        if args.xlsx:
            _write(args.xlsx, lambda p: Path(p).write_bytes(exports.to_xlsx_bytes(
                exports.tables(result, k), exports.export_notes(result, k))), "xlsx")
        doc = None
        if args.report or args.pdf:
            from .report import html_report
            doc = html_report(result, title=args.title, author=args.author, scope=args.scope,
                              suppress_below=k, review=review)
        if args.report:
            _write(args.report, lambda p: Path(p).write_text(doc, encoding="utf-8"), "report")
        if args.export_counts:
            _write(args.export_counts, lambda p: _export_counts(p, prepared, result, k),
                   "count table")
        if args.save_config:
            name = (result.provenance.get("input") or {}).get("name")
            _write(args.save_config, lambda p: Path(p).write_text(
                exports.config_json(result.spec, sha, name), encoding="utf-8"), "config")
        if args.pdf:  # last: a browser that fails leaves every other output written
            from .report import pdf_from_html
            pdf = pdf_from_html(doc)
            _write(args.pdf, lambda p: Path(p).write_bytes(pdf), "pdf")
    except InputError as exc:
        shown = visible_text(exc.message, [exc.column, exc.value, args.data])
        print(f"fairness-audit: error: {shown}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fairness-audit: interrupted", file=sys.stderr)
        return 130
    except MemoryError:  # what was asked for is too large for the machine
        print(f"fairness-audit: error: {OUT_OF_MEMORY}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug, not bad input: one line unless debugging
        if os.environ.get("FAIRNESS_AUDIT_DEBUG"):
            raise
        print(f"fairness-audit: internal error ({type(exc).__name__}: {short(exc, 300)}). Please "
              "report it; set FAIRNESS_AUDIT_DEBUG=1 for details.", file=sys.stderr)
        return 3
    task = getattr(result, "task", "binary")
    if args.positive_decision is None and not args.config and not args.quiet and \
            task == "binary":
        _harm_note(result)
    if args.quiet:
        for w in result.warnings:
            print(f"Warning: {visible_text(w, _names(result))}", file=sys.stderr)
        comparison = getattr(result, "comparison", None)
        for w in (comparison.warnings if comparison is not None else ()):
            print(f"Warning: {visible_text(w, _names(result))}", file=sys.stderr)
    elif task == "multiclass":
        from .multiclass_result import render_summary as multiclass_summary
        print(multiclass_summary(result, lambda t: visible_text(t, _names(result))))
    elif task == "regression":
        from .regression_result import render_summary as render_regression
        print(render_regression(result))
    else:
        print(render_summary(result))
        if result.paired is not None and len(result.paired):
            from .compare import render_paired
            print()
            print(render_paired(result.paired, result.spec, _names(result)))
        if mitigation is not None:
            names = _names(result)
            print("\n" + "\n".join(visible_text(line, names) for line in mitigation.split("\n")))
        if result.comparison is not None:
            from .compare import render_comparison
            print()
            print(render_comparison(result.comparison, _names(result)))
    if args.fail_on_disparity and result.failed:
        n = int((result.disparities["verdict"] == "fail").sum())
        print(f"fairness-audit: {n} disparities fail the tolerance.", file=sys.stderr)
        return 1
    return 0


def _saved_audit(store, text: str) -> dict:
    """A saved audit of ``store`` by its id (``text``, from the command line)."""
    try:
        audit_id = int(str(text).strip())
    except ValueError:
        raise InputError(f"{text!r} is not the id of a saved audit (a whole number); list the "
                         "saved audits with --store URL --history.", field="compare") from None
    return store.audit(audit_id)


def _baseline(args):
    """``--compare``: a JSON file, or ``store:ID`` (a saved audit)."""
    if not str(args.compare).startswith("store:"):
        return args.compare
    if not args.store:
        raise InputError("--compare store:ID reads a saved audit from the review store: give "
                         "--store URL too.", field="compare")
    from .compare import read_audit
    from .history import saved_name
    from .store import open_store
    store = open_store(args.store)
    try:
        saved = _saved_audit(store, args.compare[len("store:"):])
    finally:
        store.close()
    return read_audit(saved["results"], name=saved_name(saved))


def _history(args) -> int:
    """``--history`` (list the saved audits) and ``--compare-saved EARLIER
    LATER`` (compare two of them), without auditing data."""
    try:
        flag = "--history" if args.history else "--compare-saved"
        if not args.store:
            raise InputError(f"{flag} reads the review store: give --store URL (for example "
                             "sqlite:///reviews.sqlite).", field="store")
        if args.data is not None:
            raise InputError(f"{flag} reads saved audits, not data: leave out "
                             f"{str(args.data)!r}, or leave out {flag} to audit it.",
                             field="data")
        from .store import open_store
        store = open_store(args.store)
        try:
            if args.history:
                print(_history_table(store.audits()))
                return 0
            from .compare import render_comparison
            from .history import compare_saved
            earlier, later = (_saved_audit(store, i) for i in args.compare_saved)
            if earlier["id"] == later["id"]:
                raise InputError("--compare-saved needs two different audits.",
                                 field="compare")
            comp = compare_saved(earlier, later)
        finally:
            store.close()
        if args.json:
            import json
            _write(args.json, lambda p: Path(p).write_text(
                json.dumps(comp.to_dict(), indent=2, allow_nan=False), encoding="utf-8"),
                "json")
        names = [*comp.changes["group"].unique(), *comp.changes["attribute"].unique(),
                 *comp.changes["model"].unique()]
        if args.quiet:
            for w in comp.warnings:
                print(f"Warning: {visible_text(w, names)}", file=sys.stderr)
        else:
            print(render_comparison(comp, names))
        return 0
    except InputError as exc:
        print(f"fairness-audit: error: {visible_text(exc.message)}", file=sys.stderr)
        return 2


def _history_table(listed) -> str:
    """The saved audits for the terminal, newest first."""
    if not len(listed):
        return "No audit is saved in this store yet (save one with --store URL)."
    import pandas as pd
    table = pd.DataFrame({
        "id": listed["id"], "version": listed["version"],
        "saved (UTC)": listed["saved_at"].map(lambda t: f"{t:%Y-%m-%d %H:%M}"),
        "data": listed["data_name"].fillna("").map(lambda v: short(visible_text(v), 40)),
        "models": listed["models"].map(lambda ms: short(visible_text(", ".join(ms)), 50)),
        "signed off": listed["signed"].map({True: "yes", False: "no"}),
        "replaces": listed["previous_id"].map(lambda v: "" if pd.isna(v) else str(int(v)))})
    return table.to_string(index=False)


def _store(args, result):
    """``--store``, ``--review-import`` and ``--review-export``: save the
    audit, move reviews in and out; the audit's review (None without
    ``--store``)."""
    if not args.store:
        if args.review_export or args.review_import:
            raise InputError("--review-export and --review-import need --store URL: the store "
                             "the reviews are read from or written to.", field="store")
        return None
    from .store import data_fingerprint, dumps_export, open_store, read_export

    if getattr(result, "task", "binary") != "binary":
        raise InputError(f"The review trail (--store) keeps audits of yes/no decisions; this is "
                         f"a {result.task} audit: keep its --json and --report instead.",
                         field="store")
    store = open_store(args.store)
    try:
        audit_id, created = store.save_audit(result)
        if not args.quiet:
            review = store.review(audit_id)
            what = "Saved" if created else "Already saved"
            print(f"{what} in the review store as audit {audit_id} (version {review.version}).",
                  file=sys.stderr)
        if args.review_import:
            done = store.import_reviews(
                read_export(args.review_import), sha256=data_fingerprint(result),
                spec=result.spec.to_dict())
            audit_id = done["audit_id"]
            if not args.quiet:
                print(f"Imported {done['decisions']} decision(s) and {done['comments']} "
                      f"comment(s){' and the sign-off' if done['signed'] else ''} into audit "
                      f"{audit_id}.", file=sys.stderr)
        if args.review_export:
            text = dumps_export(store.export_reviews(audit_id))
            _write(args.review_export, lambda p: Path(p).write_text(text, encoding="utf-8"),
                   "review")
        return store.review(audit_id)
    finally:
        store.close()


def _mitigate(args, prepared, result) -> str | None:
    """The mitigation preview asked for with --mitigate: kept on the result
    (JSON, report); returns its terminal text."""
    if not args.mitigate:
        return None
    from .mitigation import mitigate_prepared, mitigation_text
    m = mitigate_prepared(prepared, attribute=args.mitigate_attribute,
                          constraint=args.mitigate, objective=args.mitigate_objective,
                          model=args.mitigate_model,
                          randomised=True if args.mitigate_randomised else None)
    result.mitigation = m.to_dict()
    return mitigation_text(m)


def _harm_note(result) -> None:
    """A note on stderr when the label's name sounds like a harm but a
    positive decision is taken as a benefit (the default)."""
    from .guess import guess_positive_decision

    spec = result.spec
    positive = (result.provenance.get("positive_label") or spec.positive)
    guessed, why = guess_positive_decision(spec.label, positive)
    if guessed == "harm" and spec.positive_decision == "benefit":
        print(f"Note: a positive decision is taken as a benefit for the person (the default), "
              f"but {visible_text(why)}. If it is a harm, add --positive-decision harm.",
              file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
