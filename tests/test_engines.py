"""Counting where the data lives: DuckDB, a real PostgreSQL server and a
local Spark session give the same count table and the same audit numbers
as reading the rows into memory, including missing values, weights, text
labels, intersections and a score (property-based: hypothesis generates the
tables; the servers' tests are marked ``engines``).

The reference is the in-memory path, itself checked against fairlearn and
hand counts elsewhere; the record totals here are also checked against
pandas' own ``groupby``.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from fairness_core import AuditSpec, audit
from fairness_core.audit import run_audit
from fairness_core.cli import main
from fairness_core.counts import count_table
from fairness_core.engine import (engine_records, open_table, prepare_from_engine,
                                  prepare_records)
from fairness_core.prepare import prepare

ibis = pytest.importorskip("ibis", reason="the engines extra is part of the test set-up")


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "sex": rng.choice(["F", "M", "X"], n, p=[.45, .45, .1]),
        "race": rng.choice(["a", "b", "c"], n).astype(object),
        "age": rng.integers(15, 90, n).astype(float),
        "y": rng.choice(["yes", "no"], n),
        "d": rng.choice(["approve", "deny"], n).astype(object),
        "s": rng.random(n),
        "w": rng.choice([0.5, 1.0, 3.0], n),
    })
    for col, share in (("race", .05), ("d", .03), ("s", .02), ("age", .02), ("w", .01)):
        df.loc[rng.random(n) < share, col] = None if df[col].dtype == object else np.nan
    return df


SPECS = {
    "decision, score, intersections": dict(
        label="y", positive="yes", predictions=["d"], prediction_positive={"d": ["approve"]},
        scores=["s"], sensitive=["sex", "race"], intersectional=True, n_bootstrap=200),
    "weighted, binned age": dict(
        label="y", positive="yes", predictions=["d"], prediction_positive={"d": ["approve"]},
        sensitive=["sex", "age"], bins={"age": [18, 30, 60]}, weight="w", n_bootstrap=200),
}


def _same_counts(a, b) -> None:
    ta, tb = count_table(a), count_table(b)
    pd.testing.assert_frame_equal(ta, tb, check_dtype=False, rtol=1e-12)


@pytest.mark.parametrize("name", list(SPECS))
def test_duckdb_counts_equal_the_in_memory_counts(name):
    df = _frame(5000, 1)
    spec = AuditSpec(**SPECS[name])
    mem = prepare(df, spec)
    eng = prepare_records(*engine_records(ibis.memtable(df), spec), spec)
    _same_counts(mem, eng)
    assert eng.n_rows_read == len(df) and eng.dropped == mem.dropped
    a, b = run_audit(mem), run_audit(eng)
    assert a.to_dict()["findings"] == b.to_dict()["findings"]
    pd.testing.assert_frame_equal(a.disparities, b.disparities, rtol=1e-9)
    if spec.scores:
        pd.testing.assert_frame_equal(a.scores["auc"], b.scores["auc"], rtol=1e-9)


def test_records_total_what_pandas_counts():
    df = _frame(3000, 2)
    spec = AuditSpec(**SPECS["decision, score, intersections"])
    records, meta = engine_records(ibis.memtable(df), spec)
    assert meta["rows"] == len(df) and records["__rows"].sum() == len(df)
    by_sex = records.groupby("sex")["__rows"].sum()
    pd.testing.assert_series_equal(by_sex, df.groupby("sex").size(), check_names=False)
    assert not meta["score_bins"]  # 3,000 distinct scores are counted one by one


def test_many_distinct_scores_are_binned_with_an_honest_bound():
    df = _frame(20000, 3)
    spec = AuditSpec(**SPECS["decision, score, intersections"])
    records, meta = engine_records(ibis.memtable(df), spec, max_records=20000)
    assert meta["score_bins"]["s"] >= 1024 and len(records) < len(df)
    eng = prepare_records(records, meta, spec)
    mem = prepare(df, spec)
    _same_counts(mem, eng)  # the decisions at the threshold are exact
    a, b = run_audit(mem).scores["auc"], run_audit(eng).scores["auc"]
    err = (a["auc"] - b["auc"]).abs()
    assert (b["auc_error_bound"] > 0).all()
    assert (err <= b["auc_error_bound"] + 1e-12).all()


def test_parquet_folder_and_cli(tmp_path, capsys):
    df = _frame(6000, 4)
    folder = tmp_path / "parts"
    folder.mkdir()
    for i, part in enumerate((df.iloc[:2000], df.iloc[2000:4000], df.iloc[4000:])):
        part.to_parquet(folder / f"part-{i}.parquet", index=False)
    spec = AuditSpec(**SPECS["weighted, binned age"])
    prepared, info = prepare_from_engine(str(folder), spec)
    assert info.engine == "duckdb" and info.format == "parquet (3 files)"
    _same_counts(prepare(df, spec), prepared)
    args = ["--label", "y", "--positive", "yes", "--prediction", "d",
            "--prediction-positive", "d=approve", "--sensitive", "sex", "--sensitive", "race",
            "--weight", "w", "--bootstrap", "200", "--quiet"]
    assert main([str(folder / "*.parquet"), *args, "--json", str(tmp_path / "e.json")]) == 0
    assert main([str(folder), *args, "--engine", "duckdb", "--json",
                 str(tmp_path / "f.json")]) == 0
    one = tmp_path / "all.csv"
    df.to_csv(one, index=False)
    assert main([str(one), *args, "--engine", "memory", "--json", str(tmp_path / "m.json")]) == 0
    e, f, m = (json.loads((tmp_path / n).read_text()) for n in ("e.json", "f.json", "m.json"))
    assert e["provenance"]["input"]["engine"] == "duckdb"
    assert m["provenance"]["input"]["engine"] is None
    for part in ("groups", "disparities"):
        for x, y, z in zip(e[part], f[part], m[part]):
            for k, u in x.items():
                if isinstance(u, float):
                    assert u == pytest.approx(y[k], rel=1e-9, nan_ok=True)
                    assert u == pytest.approx(z[k], rel=1e-9, nan_ok=True), (part, k)
                else:
                    assert u == y[k] == z[k], (part, k)


def test_engine_errors_are_one_line(tmp_path, capsys):
    from test_bad_inputs import assert_cli_refuses

    assert_cli_refuses(capsys, [tmp_path / "nothing-*.parquet", "--label", "y",
                                "--prediction", "d", "--sensitive", "sex"], ["No file matches"])
    df = _frame(50, 5)
    df.to_parquet(tmp_path / "x.parquet", index=False)
    assert_cli_refuses(capsys, [tmp_path / "x.parquet", "--label", "outcome",
                                "--prediction", "d", "--sensitive", "sex"],
                       ["'outcome'", "not in"])
    assert_cli_refuses(capsys, ["postgresql://nobody@127.0.0.1:1/none", "--label", "y",
                                "--prediction", "d", "--sensitive", "sex"], ["--table"])


_values = st.sampled_from(["a", "b", "c", None])
#: Random tables: a group with missing values, text labels and decisions
#: ("1"/"0", some missing), a score with ties and gaps, weights (some
#: missing); and whether the audit is weighted.
TABLES = (st.lists(st.tuples(_values, st.sampled_from(["1", "0", None]),
                             st.sampled_from(["1", "0", None]),
                             st.one_of(st.none(), st.sampled_from([0.1, 0.5, 0.9, 0.5])),
                             st.sampled_from([1.0, 2.5, None])),
                   min_size=1, max_size=60),
          st.booleans())


def _table(rows, weighted) -> tuple[pd.DataFrame, AuditSpec]:
    df = pd.DataFrame(rows, columns=["g", "y", "p", "s", "w"])
    df["h"] = np.where(np.arange(len(df)) % 2 == 0, "even", "odd")
    for c in ("s", "w"):
        df[c] = df[c].astype("float64")
    spec = AuditSpec(label="y", positive="1", predictions=["p"], scores=["s"],
                     sensitive=["g", "h"], intersectional=True, n_bootstrap=0,
                     weight="w" if weighted else None)
    return df, spec


def _arrow(df: pd.DataFrame):
    """The table with its types stated (a column of only missing values is
    still text or a number, as a database column would be)."""
    import pyarrow as pa

    schema = pa.schema([(c, pa.float64() if pd.api.types.is_numeric_dtype(df[c])
                         else pa.string()) for c in df.columns])
    return pa.Table.from_pandas(df, schema=schema, preserve_index=False)


def _outcome(make_prepared) -> dict | tuple:
    """Counts and audit numbers of one path, or how it refused the table."""
    try:
        prepared = make_prepared()
        result = run_audit(prepared)
    except Exception as exc:  # every path must refuse the same tables, the same way
        return (type(exc).__name__, str(exc))
    return {"counts": count_table(prepared), "groups": result.groups,
            "disparities": result.disparities, "summary": result.summary,
            "auc": result.scores["auc"]}


def _assert_agree(reference, got, engine: str) -> None:
    if isinstance(reference, tuple):
        assert got == reference, engine
        return
    assert not isinstance(got, tuple), (engine, got)
    for part, frame in reference.items():
        pd.testing.assert_frame_equal(frame, got[part], check_dtype=False, rtol=1e-9,
                                      obj=f"{engine} {part}")


def _engine_path(table):
    return lambda spec: prepare_records(*engine_records(table, spec), spec)


def _check_agreement(rows, weighted, servers: dict) -> None:
    """Memory is the reference; DuckDB and each server (name -> a function
    loading the rows into it) must give its numbers or its refusal."""
    df, spec = _table(rows, weighted)
    reference = _outcome(lambda: prepare(df, spec))
    for engine, load in {"duckdb": ibis.memtable, **servers}.items():
        _assert_agree(reference, _outcome(lambda: _engine_path(load(df))(spec)), engine)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(*TABLES)
def test_engine_agrees_with_memory_on_any_table(rows, weighted):
    _check_agreement(rows, weighted, {})


def _postgres_table(postgres_url):
    con = ibis.connect(postgres_url)

    def load(df):
        con.create_table("hypothesis_rows", _arrow(df), overwrite=True)
        return con.table("hypothesis_rows")
    return load


def _spark_table(spark):
    def load(df):
        spark.createDataFrame(_arrow(df)).createOrReplaceTempView("hypothesis_rows")
        return open_table("unused", table="hypothesis_rows", engine="spark")[0]
    return load


@pytest.mark.engines
@pytest.mark.parametrize("engine", ["postgresql", "spark"])
def test_servers_agree_with_memory_and_duckdb_on_any_table(engine, request):
    """The same random tables give the same counts and audit numbers in
    memory, in DuckDB and in a real PostgreSQL server or Spark session."""
    load = (_postgres_table(request.getfixturevalue("postgres_url")) if engine == "postgresql"
            else _spark_table(request.getfixturevalue("spark")))

    # a few examples: each one loads a table into the server and runs two queries there
    @settings(max_examples=15 if engine == "postgresql" else 10, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(*TABLES)
    def agree(rows, weighted):
        _check_agreement(rows, weighted, {engine: load})
    agree()


def test_audit_of_a_data_frame_is_unchanged_by_the_engine():
    df = _frame(2000, 6)
    spec = AuditSpec(**SPECS["decision, score, intersections"])
    a = audit(df, spec)
    prepared, info = prepare_from_engine(df, spec)
    b = run_audit(prepared, info)
    assert a.to_dict()["findings"] == b.to_dict()["findings"]


@pytest.mark.engines
def test_postgres_table_audits_like_the_rows(postgres_url, capsys, tmp_path):
    """A table in a real PostgreSQL server, counted by PostgreSQL."""
    df = _frame(3000, 8)
    spec = AuditSpec(**SPECS["weighted, binned age"])
    con = ibis.connect(postgres_url)
    try:
        con.create_table("audit_rows", df, overwrite=True)
    finally:
        con.disconnect()
    seen = []  # a database says nothing of its progress: the time elapsed only
    prepared, info = prepare_from_engine(postgres_url, spec, table="audit_rows",
                                         progress=seen.append, progress_delay=0)
    assert info.engine == "postgresql" and info.name == "audit_rows"
    assert seen and seen[-1].done and {s.engine for s in seen} == {"postgresql"}
    assert all(s.fraction is None for s in seen)
    _same_counts(prepare(df, spec), prepared)
    assert prepared.dropped == prepare(df, spec).dropped
    rc = main([postgres_url, "--table", "audit_rows", "--label", "y", "--positive", "yes",
               "--prediction", "d", "--prediction-positive", "d=approve", "--sensitive", "sex",
               "--bootstrap", "0", "--json", str(tmp_path / "pg.json"), "--quiet"])
    assert rc == 0
    out = json.loads((tmp_path / "pg.json").read_text())
    assert out["provenance"]["rows_read"] == len(df)


@pytest.mark.engines
def test_spark_table_audits_like_the_rows(spark):
    """A Spark table, counted by Spark (local[2])."""
    df = _frame(3000, 9)
    spec = AuditSpec(**SPECS["decision, score, intersections"])
    spark.createDataFrame(df.astype(object).where(df.notna(), None)) \
        .createOrReplaceTempView("audit_rows")
    seen = []
    prepared, info = prepare_from_engine("unused", spec, table="audit_rows", engine="spark",
                                         progress=seen.append, progress_delay=0)
    assert info.format == "spark table"
    assert seen and seen[-1].done and {s.engine for s in seen} == {"spark"}
    assert all(s.fraction is None or 0 <= s.fraction <= 1 for s in seen)
    _same_counts(prepare(df, spec), prepared)


@pytest.mark.engines
@pytest.mark.parametrize("engine", ["postgresql", "spark"])
def test_scores_binned_in_a_server_equal_duckdbs(engine, request):
    """Many distinct scores are cut into the same fine bins by every engine:
    the same records, hence the same counts and AUC bound as in memory."""
    df = _frame(20000, 10)
    spec = AuditSpec(**SPECS["decision, score, intersections"])
    load = (_postgres_table(request.getfixturevalue("postgres_url")) if engine == "postgresql"
            else _spark_table(request.getfixturevalue("spark")))
    duck, duck_meta = engine_records(ibis.memtable(df), spec, max_records=20000)
    got, meta = engine_records(load(df), spec, max_records=20000)
    assert meta["score_bins"] == duck_meta["score_bins"] and meta["score_bins"]["s"] >= 1024
    keys = [c for c in duck.columns if c != "__rows"]
    order = lambda r: r.sort_values(keys, na_position="first").reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(order(duck), order(got[duck.columns]), check_dtype=False)
    _same_counts(prepare(df, spec), prepare_records(got, meta, spec))
