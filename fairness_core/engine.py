"""Counts where the data lives: one GROUP BY in a real engine.

Every number of an audit is a function of a small table of *records*: one
per distinct combination of the sensitive values, the true outcome, each
model's decision and score, with the number of rows it stands for (and the
sums of their weights and squared weights).  This module writes that
aggregation as one Ibis expression, which runs unchanged on DuckDB (files
of any size, out of core; in-memory tables in place), Spark and SQL
databases such as PostgreSQL.  Only the records leave the engine; they are
then prepared and audited exactly as a count table is
(:func:`fairness_core.prepare.prepare` with a count column), so every rule
of the audit (positive values, text decisions, bins, missing values,
thresholds) is applied in one place, whatever the engine.

Scores: a score with at most ``FINE_BINS`` distinct values is grouped by
its values (everything is exact).  With more, it is grouped by fine bins
over its range, with the audit's threshold as a bin edge: the decisions at
the threshold stay exact, and the AUC carries a stated bound on its error
(pairs in one bin count one half).  The number of bins is lowered when the
other columns have so many combinations that the records would exceed
``MAX_RECORDS``.
"""
from __future__ import annotations

import contextlib
import math

import numpy as np
import pandas as pd

from .errors import InputError, quote_list
from .prepare import Prepared, prepare, resolve_threshold
from .scores import FINE_BINS, even_points, even_width, split_edges
from .spec import AuditSpec

#: An upper bound on the records one aggregation returns (scores are binned
#: more coarsely to stay below it).
MAX_RECORDS = 2_000_000
MIN_BINS = 1 << 10

_N, _W2, _WNULL = "__rows", "__weight_squares", "__weight_missing"
#: The count column of the records an engine returns.
ROWS = _N


def _is_float(col) -> bool:
    return col.type().is_floating()


def _finite(col):
    """NULL where a float column is NaN or infinite (they count as missing)."""
    if _is_float(col):
        return (col.isnan() | col.isinf()).ifelse(None, col)
    return col.cast("float64")


def _bin_rep(col, edges):
    """The largest edge at or below each value (-inf below the first edge,
    NULL when missing): the value the audit's own binning reads back into
    the same range."""
    import ibis

    x = _finite(col) if col.type().is_numeric() else col.cast("float64")
    case = ibis.cases(*[(x >= float(e), float(e)) for e in reversed(edges)],
                      else_=-math.inf)
    return x.isnull().ifelse(None, case)


def _added_edges(lo: float, hi: float, threshold: float) -> np.ndarray:
    """The edges added to a score's even fine bins, in order: the threshold
    and, for scores in [0, 1], the calibration bins' edges (see
    :func:`scores.fine_edges` and :func:`scores.split_edges`)."""
    return np.unique(np.r_[threshold, split_edges(lo, hi)])


def _score_key(col, lo: float, width: float, added: np.ndarray, n_bins: int):
    """A whole number per value: the index of its fine bin (even bins of
    ``width`` from ``lo``) times ``len(added) + 1``, plus the number of the
    ``added`` edges at or below it; NULL when missing.  Integers group
    faster than the bins' edges would, and :func:`_score_reps` turns them
    into those edges afterwards."""
    import ibis

    x = _finite(col)
    if math.isfinite(width * n_bins):
        k = ibis.least(((x - lo) / width).floor(), n_bins - 1)
    else:  # scores spanning more than the largest float: the same bins, at half scale
        k = ibis.least(((x / 2 - lo / 2) / (width / 2)).floor(), n_bins - 1)
    # (a CASE per added edge, not a cast: PostgreSQL casts no boolean to a number)
    key = k * (len(added) + 1)
    for e in added:
        key = key + (x >= float(e)).ifelse(1, 0)
    return x.isnull().ifelse(None, key)


def _score_reps(key: pd.Series, lo: float, width: float, added: np.ndarray) -> np.ndarray:
    """The score each :func:`_score_key` stands for: the lower edge of its
    fine bin, kept between the added edges around it (the threshold is an
    edge, see :func:`scores.fine_edges`), so every decision and every
    calibration bin stays exact."""
    key = pd.to_numeric(key).to_numpy(dtype=float, na_value=np.nan)
    m = len(added) + 1
    k, j = np.floor(key / m), np.mod(key, m)
    even = even_points(lo, width, k)
    ji = np.nan_to_num(j, nan=0).astype(np.intp)
    below = np.r_[-np.inf, added][ji]  # the largest added edge at or below the score
    above = np.r_[np.nextafter(added, -np.inf), np.inf][ji]  # just under the next one
    return np.minimum(np.maximum(even, below), above)


def _score_sums(s: str) -> tuple:
    """The records' columns of summed scores and summed squared scores."""
    return f"__score_sum__{s}", f"__score_square_sum__{s}"


def _check_columns(table, spec: AuditSpec, name: str) -> None:
    present = list(table.columns)
    missing = [c for c in spec.columns() if c not in present]
    if missing:
        raise InputError(f"Column {quote_list(missing)} is not in {name!r}. The columns there "
                         f"are: {quote_list(present, limit=40)}.", field="columns",
                         column=missing[0])
    for c in (_N, _W2, _WNULL, *(c for s in spec.scores for c in _score_sums(s))):
        if c in present:
            raise InputError(f"{name!r} has a column named {c!r}, a name this tool uses for "
                             "its own counts. Rename it.", field="columns", column=c)


def weight_sums(t, spec: AuditSpec, mult, keys: dict, agg: dict):
    """Add the weight's aggregations to a GROUP BY: a key for missing
    weights, the sums of the weights and of their squares (each row standing
    for ``mult`` rows).  Returns each row's total weight (None: unweighted,
    ``mult`` or 1 per row)."""
    if not spec.weight:
        return mult
    w = _finite(t[spec.weight])
    keys[_WNULL] = w.isnull()
    wm = w * mult if mult is not None else w
    agg[spec.weight] = wm.sum()
    agg[_W2] = (w * wm).sum()
    return wm


def engine_records(table, spec: AuditSpec, *, name: str = "table",
                   max_records: int = MAX_RECORDS, step=None) -> tuple[pd.DataFrame, dict]:
    """Aggregate an Ibis table into the audit's records, in two queries (a
    first pass for sizes and score ranges, then the GROUP BY); ``step(k, 2)``
    is called before the k-th (see :func:`fairness_core.progress.watch`).

    Returns
    -------
    records : DataFrame
        The spec's columns (sensitive, label, decisions, scores, weight)
        and ``__rows``; with a weight, the weight column holds each
        record's sum of weights and ``__weight_squares`` their squares.  A
        score cut into fine bins has its records' (weighted) sums of the
        scores and of their squares too, so that the Brier score and the
        calibration stay exact.
    meta : dict
        ``rows`` (rows in the table), ``score_ranges`` and ``score_bins``
        (the scores cut into fine bins, with their number of bins) to pass
        to :func:`fairness_core.prepare.prepare`.
    """
    _check_columns(table, spec, name)
    t = table
    mult = t[spec.counts].cast("float64") if spec.counts else None
    # 1. A first, cheap pass: sizes, score ranges, distinct values.
    aggs = {_N: mult.sum() if mult is not None else t.count()}
    if spec.counts:
        aggs["__counts_min"] = mult.min()
        aggs["__counts_nulls"] = mult.isnull().sum()
    for s in spec.scores:
        x = _finite(t[s])
        aggs[f"{s}__min"] = x.min()
        aggs[f"{s}__max"] = x.max()
        aggs[f"{s}__distinct"] = x.approx_nunique()
    outcome = [spec.label] if spec.labelled else []  # none: the decisions alone
    others = [*outcome, *spec.predictions,
              *(c for c in spec.sensitive if c not in spec.bins)]
    for c in others:
        aggs[f"{c}__distinct"] = t[c].approx_nunique()
    if spec.weight:
        aggs["__weight_min"] = _finite(t[spec.weight]).min()
    step = step or (lambda k, n: None)
    step(1, 2)
    stats = t.aggregate(**aggs).execute().iloc[0]
    if not stats[_N]:
        raise InputError(f"{name!r} has no rows.", field="file")
    if spec.counts and (stats["__counts_nulls"] or stats["__counts_min"] < 0):
        raise InputError(f"The count column {spec.counts!r} has empty or negative values; "
                         "in a count table every row says how many rows it stands for.",
                         field="counts", column=spec.counts)
    if spec.weight and pd.notna(stats["__weight_min"]) and stats["__weight_min"] < 0:
        raise InputError(f"The weight column {spec.weight!r} has negative values; sample "
                         "weights must be zero or more.", field="weight", column=spec.weight)
    combos = 1.0
    for c in others:
        combos *= max(int(stats[f"{c}__distinct"]), 1) + 1  # + a missing value
    for c in spec.bins:
        combos *= len(spec.bins[c]) + 2
    # 2. The records: one GROUP BY over every column of the audit.
    keys = {}
    for c in spec.sensitive:
        keys[c] = _bin_rep(t[c], spec.bins[c]) if c in spec.bins else t[c]
    for c in (*outcome, *spec.predictions):
        keys[c] = t[c]
    ranges, bins, reps = {}, {}, {}
    n_bins = FINE_BINS
    if spec.scores:  # the records must stay few: scores share the room left
        room = max_records / max(combos, 1.0)
        n_bins = int(max(MIN_BINS, min(FINE_BINS, room ** (1 / len(spec.scores)))))
    binned = [s for s in spec.scores if stats[f"{s}__distinct"] > n_bins]
    for s in spec.scores:
        lo, hi = stats[f"{s}__min"], stats[f"{s}__max"]
        if pd.isna(lo):
            keys[s] = _finite(t[s])  # no numeric value: prepare says so
            continue
        lo, hi = float(lo), float(hi)
        ranges[s] = (lo, hi)
        if s in binned and hi > lo:
            thr = resolve_threshold(spec.threshold_for(s), lo, hi)[0]
            width = even_width(lo, hi, n_bins)
            added = _added_edges(lo, hi, thr)
            keys[s] = _score_key(t[s], lo, width, added, n_bins)
            bins[s], reps[s] = n_bins, (lo, width, added)
        else:
            keys[s] = _finite(t[s]) if _is_float(t[s]) else t[s]
    agg = {_N: mult.sum() if mult is not None else t.count()}
    wm = weight_sums(t, spec, mult, keys, agg)
    for s in bins:  # a binned score's exact sums: Brier score and calibration stay exact
        x = _finite(t[s])
        xw = x * wm if wm is not None else x
        total, squares = _score_sums(s)
        agg[total], agg[squares] = xw.sum(), (xw * x).sum()
    expr = t.group_by([e.name(k) for k, e in keys.items()]).aggregate(**agg)
    step(2, 2)
    records = expr.to_pyarrow().to_pandas()
    for s, (lo, width, added) in reps.items():
        records[s] = _score_reps(records[s], lo, width, added)
    if spec.weight:
        gone = records.pop(_WNULL).astype(bool).to_numpy()
        records.loc[gone, spec.weight] = np.nan
        records.loc[gone, _W2] = np.nan
    records[_N] = records[_N].astype(np.int64) if len(records) else records[_N]
    meta = {"rows": int(stats[_N]), "score_ranges": ranges, "score_bins": bins,
            "records": len(records)}
    return records, meta


def prepare_records(records: pd.DataFrame, meta: dict, spec: AuditSpec) -> Prepared:
    """The engine's records, validated and encoded like rows."""
    return prepare(records, spec, counts=_N, weight_sq=_W2 if spec.weight else None,
                   score_ranges=meta["score_ranges"], score_bins=meta["score_bins"],
                   score_sums={s: _score_sums(s) for s in meta["score_bins"]})


# --------------------------------------------------------------------------
# Where the rows live
# --------------------------------------------------------------------------
ENGINES = ("duckdb", "spark")
#: DuckDB reads CSV values as numbers or text only, as the tool's own reader
#: does ("yes"/"no" and "true"/"false" stay the words they are).
_CSV_TYPES = ["BIGINT", "DOUBLE", "VARCHAR"]


def is_url(data) -> bool:
    return isinstance(data, str) and "://" in data and not data.startswith("file://")


def _files(data: str) -> tuple[list, str]:
    """The files a path, a folder or a glob names, and their format."""
    import glob
    import os
    from pathlib import Path

    p = Path(data)
    if p.is_dir():
        files = sorted(str(f) for f in p.rglob("*") if f.is_file()
                       and f.suffix.lower() in (".parquet", ".pq", ".csv", ".tsv")
                       and not f.name.startswith((".", "_")))
        if not files:
            raise InputError(f"The folder {data!r} holds no Parquet or CSV files.",
                             field="file")
    elif any(ch in data for ch in "*?["):
        files = sorted(f for f in glob.glob(data, recursive=True) if os.path.isfile(f))
        if not files:
            raise InputError(f"No file matches {data!r}.", field="file")
    else:
        if not p.exists():
            raise InputError(f"There is no file at {data!r}. Check the path.", field="file")
        files = [str(p)]
    kinds = {Path(f).suffix.lower() for f in files}
    kinds = {{".pq": ".parquet"}.get(k, k) for k in kinds}
    if len(kinds) > 1:
        raise InputError(f"{data!r} mixes file formats ({quote_list(sorted(kinds))}); point "
                         "to files of one format.", field="file")
    fmt = {".parquet": "parquet", ".csv": "csv", ".txt": "csv", ".tsv": "tsv"}.get(
        kinds.pop())
    if fmt is None:
        raise InputError(f"{data!r} is not a Parquet, CSV or TSV file; the engines read "
                         "those (an Excel workbook is read by the tool itself: leave out "
                         "--engine).", field="file")
    return files, fmt


def _hash_files(files: list) -> str:
    """SHA-256 over the files' bytes, in order (for a single file, the file's
    own SHA-256)."""
    import hashlib

    if len(files) == 1:
        h = hashlib.sha256()
        with open(files[0], "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                h.update(chunk)
        return h.hexdigest()
    outer = hashlib.sha256()
    for f in files:
        outer.update(_hash_files([f]).encode())
    return outer.hexdigest()


def spark_session(master: str = "local[*]"):
    """A Spark session: ``local[*]``, a cluster's master URL, or Spark
    Connect (``sc://host:port``)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise InputError("The Spark engine needs pyspark: install the tool with its "
                         "'engines' extra (pip install 'fairness-audit[engines]').",
                         field="engine") from None
    builder = SparkSession.builder.appName("fairness-audit")
    if master.startswith("sc://"):
        builder = builder.remote(master)
    else:
        # no web UI, and no console progress bar (the command line draws its own)
        builder = builder.master(master).config("spark.ui.enabled", "false") \
            .config("spark.ui.showConsoleProgress", "false")
    # pandas -> Spark through Arrow: without it nullable integers arrive as NULL
    builder = builder.config("spark.sql.execution.arrow.pyspark.enabled", "true") \
        .config("spark.sql.execution.arrow.pyspark.fallback.enabled", "false")
    try:
        return builder.getOrCreate()
    except Exception as exc:  # Java missing, master unreachable ...
        raise InputError(f"Spark could not start with master {master!r} "
                         f"({str(exc).splitlines()[0][:200]}). Check the master URL and that "
                         "a Java runtime is installed.", field="engine") from None


def open_table(data, *, table: str | None = None, engine: str = "duckdb",
               spark_master: str = "local[*]"):
    """An Ibis table for ``data`` and a description of it.

    ``data`` is a pandas DataFrame (queried in place by DuckDB), a file, a
    folder or glob of Parquet (or CSV) files, or a database URL such as
    ``postgresql://user@host/db`` with ``table``.  ``engine`` chooses DuckDB
    (embedded, out of core) or Spark for files and tables.

    Returns
    -------
    (table, info) where info is a :class:`fairness_core.io.TableInfo`.
    """
    t, info, files = _open(data, table=table, engine=engine, spark_master=spark_master)
    if files:
        info.sha256 = _hash_files(files)
    return t, info


def _open(data, *, table, engine, spark_master):
    """:func:`open_table` without the files' hash: ``(table, info, files)``."""
    from .io import TableInfo

    try:
        import ibis
    except ImportError:
        raise InputError("Auditing in an engine needs Ibis and DuckDB: install the tool with "
                         "its 'engines' extra (pip install 'fairness-audit[engines]').",
                         field="engine") from None
    if engine not in ENGINES:
        raise InputError(f"Unknown engine {engine!r}; use one of {quote_list(ENGINES)}.",
                         field="engine")
    if isinstance(data, pd.DataFrame):
        t = ibis.memtable(data)
        return t, TableInfo(name="(data frame)", format="dataframe", sha256=None,
                            size_bytes=int(data.memory_usage(deep=False).sum()),
                            columns=[str(c) for c in data.columns]), []
    data = str(data)
    if is_url(data):
        if not table:
            raise InputError("Name the table to audit with --table when the data is a "
                             "database URL.", field="table")
        try:
            con = ibis.connect(data)
            t = con.table(table)
        except Exception as exc:
            raise InputError(f"Could not open the table {table!r} at the database URL "
                             f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]}). "
                             "Check the URL, the table name and that the database is "
                             "running.", field="table") from None
        kind = data.split("://", 1)[0]
        return t, TableInfo(name=table, format=f"{kind} table", sha256=None, size_bytes=0,
                            columns=list(t.columns)), []
    if engine == "spark":
        con = ibis.pyspark.connect(spark_session(spark_master))
        if table:
            try:
                t = con.table(table)
            except Exception as exc:
                raise InputError(f"Spark has no table {table!r} ({str(exc)[:150]}).",
                                 field="table") from None
            return t, TableInfo(name=table, format="spark table", sha256=None, size_bytes=0,
                                columns=list(t.columns)), []
    else:
        from .limits import limits
        # DuckDB keeps to the memory limit and streams (spilling to its temporary
        # folder when a GROUP BY outgrows it)
        con = ibis.duckdb.connect(memory_limit=f"{max(limits().memory >> 20, 256)}MB",
                                  preserve_insertion_order=False)
    files, fmt = _files(data)
    import os
    warnings = []
    try:
        if fmt == "parquet":
            t = con.read_parquet(files if len(files) > 1 else files[0])
        else:  # the delimiter and header as the in-memory reader sees them
            from .io import text_layout

            with open(files[0], "rb") as fh:
                delim, names, why = text_layout(fh.read(1 << 16), fmt)
            if why:
                warnings.append(f"{os.path.basename(files[0])!r}: {why}")
            if engine == "duckdb":
                t = con.read_csv(files, delim=delim, header=names is None,
                                 **({"names": names} if names else {}),
                                 auto_type_candidates=_CSV_TYPES,
                                 nullstr=["", "NA", "N/A", "NULL", "NaN", "nan", "null", "None",
                                          "#N/A", "n/a"])
            else:
                t = con.read_csv(files if len(files) > 1 else files[0], header=names is None,
                                 inferSchema=True, sep=delim)
                if names:
                    t = t.rename(dict(zip(names, t.columns)))
    except Exception as exc:
        raise InputError(f"{data!r} could not be read as {fmt.upper()} "
                         f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]}).",
                         field="file") from None
    size = sum(os.path.getsize(f) for f in files)
    name = data if len(files) > 1 else os.path.basename(files[0])
    return t, TableInfo(name=name, format=fmt if len(files) == 1 else f"{fmt} ({len(files):,} "
                        "files)", sha256=None, size_bytes=size,
                        columns=list(t.columns), warnings=warnings), files


def task_sample(data, spec: AuditSpec, *, table: str | None = None, engine: str = "duckdb",
                spark_master: str = "local[*]") -> tuple:
    """What :func:`fairness_core.tasks.infer_task` needs, from the engine:
    up to ``MAX_CLASSES + 1`` distinct values of the label and of each
    prediction column, as ``(label Series or None, [prediction Series])``
    (a ``SELECT DISTINCT ... LIMIT`` per column; no rows leave the engine)."""
    from .tasks import MAX_CLASSES

    t, info, _ = _open(data, table=table, engine=engine, spark_master=spark_master)
    _check_columns(t, spec, info.name)

    def sample(col: str) -> pd.Series:
        c = t[col]
        return c.name(col).as_table().filter(c.notnull()).distinct().limit(
            MAX_CLASSES + 1).to_pandas()[col]

    try:
        label = sample(spec.label) if spec.labelled else None
        return label, [sample(c) for c in spec.predictions]
    except Exception as exc:
        raise InputError(f"The {engine} engine could not read the label's values in "
                         f"{info.name!r} ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0][:200]}).", field="file") from None


def prepare_from_engine(data, spec: AuditSpec, *, table: str | None = None,
                        engine: str = "duckdb", spark_master: str = "local[*]",
                        progress=None, progress_delay: float | None = None):
    """Count in an engine and prepare the records: ``(Prepared, TableInfo)``.

    ``progress``, when given, is called with a
    :class:`fairness_core.progress.Status` while the engine counts (after
    ``progress_delay`` seconds, by default ``progress.DELAY``; see
    :func:`fairness_core.progress.watch`).
    """
    prepared, info, _ = count_in_engine(data, spec, table=table, engine=engine,
                                        spark_master=spark_master, progress=progress,
                                        progress_delay=progress_delay)
    return prepared, info


def count_where_it_lives(data, count, *, table: str | None = None, engine: str = "duckdb",
                         spark_master: str = "local[*]", progress=None,
                         progress_delay: float | None = None):
    """Open ``data`` in the engine and run ``count(table, info, step)`` on it
    while its files are hashed in a thread and ``progress`` (if given) is
    called (see :func:`fairness_core.progress.watch`): ``(counted, info)``,
    with the files' SHA-256 and the engine in ``info``.  A failure inside
    the engine is an InputError that names the data."""
    import threading

    from . import progress as _progress

    t, info, files = _open(data, table=table, engine=engine, spark_master=spark_master)
    sha: list = []  # the files' SHA-256, read while the engine counts
    hashing = threading.Thread(target=lambda: sha.append(_hash_files(files)), daemon=True,
                               name="fairness-audit-sha256")
    if files:
        hashing.start()
    try:
        if progress is None:
            watching = contextlib.nullcontext()
        else:
            name, source = _progress.engine_source(t.get_backend())
            watching = _progress.watch(
                source, progress, engine=name,
                delay=_progress.DELAY if progress_delay is None else progress_delay)
        with watching as step:
            counted = count(t, info, step)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"The {engine} engine could not count {info.name!r} "
                         f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]}).",
                         field="file") from None
    if files:
        hashing.join()
        if not sha:
            raise InputError(f"{info.name!r} could not be read to the end to compute its "
                             "SHA-256; check that the files are still there and readable.",
                             field="file")
        info.sha256 = sha[0]
    info.engine = engine if not is_url(str(data)) else str(data).split("://", 1)[0]
    return counted, info


def count_in_engine(data, spec: AuditSpec, *, table: str | None = None,
                    engine: str = "duckdb", spark_master: str = "local[*]",
                    progress=None, progress_delay: float | None = None):
    """As :func:`prepare_from_engine`, and the records themselves:
    ``(Prepared, TableInfo, records)``; the records are a count table
    whose count column is :data:`ROWS` (for views that read groups' rows,
    such as missing values per group)."""
    (records, meta), info = count_where_it_lives(
        data, lambda t, info, step: engine_records(t, spec, name=info.name, step=step),
        table=table, engine=engine, spark_master=spark_master, progress=progress,
        progress_delay=progress_delay)
    info.records = meta["records"]
    for s, nb in meta["score_bins"].items():
        info.warnings.append(f"The score {s!r} has too many distinct values to count one by "
                             f"one; it was counted in {nb:,} fine bins. Decisions at the "
                             "threshold are exact; " + (
                                 "the AUC is within its stated error bound, the curves are "
                                 "at the bins' resolution, and the Brier score and "
                                 "calibration are exact." if spec.labelled else
                                 "mean scores are exact, and score distributions are at the "
                                 "bins' resolution (each score is read as its bin's lower "
                                 "edge)."))
    return prepare_records(records, meta, spec), info, records
