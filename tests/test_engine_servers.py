"""The engines the count tables can be computed in, running for real: a
PostgreSQL server, a local Spark session and DuckDB, each queried through
Ibis. Every engine must give the same group counts as pandas on rows with
missing values, empty strings and non-ASCII text."""
from __future__ import annotations

import random
from urllib.parse import urlsplit

import pandas as pd
import pytest

pytestmark = pytest.mark.engines

GROUPS = ["Zoë", "O'Brien", "a b", "", None]  # "" and None are two different groups
LABELS = [1, 0, None]
SCORES = [0.25, 0.5, 0.875, None]  # exact in binary: no rounding between engines


def _rows(n: int = 60, seed: int = 7) -> list[tuple]:
    rng = random.Random(seed)
    return [(rng.choice(GROUPS), rng.choice(LABELS), rng.choice([True, False, None]),
             rng.choice(SCORES)) for _ in range(n)]


ROWS = _rows()
FRAME = pd.DataFrame({"grp": pd.Series([r[0] for r in ROWS], dtype=object),
                      "label": pd.Series([r[1] for r in ROWS], dtype="Int64"),
                      "decision": pd.Series([r[2] for r in ROWS], dtype="boolean"),
                      # a missing score is NaN in pandas: every engine must see NULL
                      "score": pd.Series([r[3] for r in ROWS], dtype="float64")})
SCHEMA_SQL = "grp text, label integer, decision boolean, score double precision"


def _key(value):
    return None if value is None or pd.isna(value) else value


def _counts(table: pd.DataFrame) -> dict:
    """{(grp, label): (rows, positive decisions, scored rows, sum of scores)}
    from a result with the columns grp, label, n, positives, scored, score_sum;
    missing values as None."""
    cols = ["grp", "label", "n", "positives", "scored", "score_sum"]
    return {(_key(g), None if _key(y) is None else int(y)):
            (int(n), int(p), int(c), float(0 if _key(t) is None else t))
            for g, y, n, p, c, t in table[cols].itertuples(index=False)}


def _expected() -> dict:
    out: dict = {}
    for g, y, d, score in ROWS:
        n, p, c, t = out.get((g, y), (0, 0, 0, 0.0))
        out[(g, y)] = (n + 1, p + (d is True), c + (score is not None), t + (score or 0.0))
    return out


def _ibis_counts(t, con=None) -> dict:
    # Ibis 12 compiles a conditional count on Spark to SUM(CAST(cond AS BIGINT)):
    # NULL, not 0, for a group in which the condition is never known.
    expr = t.group_by(["grp", "label"]).agg(
        n=t.count(), positives=t.count(where=t.decision).fill_null(0),
        scored=t.score.count(), score_sum=t.score.sum())
    return _counts(con.to_pandas(expr) if con is not None else expr.to_pandas())


def test_pandas_counts_match_the_plain_python_count():
    got = (FRAME.assign(positives=FRAME["decision"].fillna(False).astype(int))
           .groupby(["grp", "label"], dropna=False)
           .agg(n=("decision", "size"), positives=("positives", "sum"),
                scored=("score", "count"), score_sum=("score", "sum")).reset_index())
    expected = _expected()
    assert _counts(got) == expected
    assert ("", 1) in expected or ("", 0) in expected  # the empty-string group is there
    assert any(g is None for g, _ in expected)          # and the missing one


def test_postgres_server_is_a_private_local_one(postgres_url):
    import psycopg

    url = urlsplit(postgres_url)
    assert url.scheme == "postgresql" and url.hostname == "127.0.0.1" and url.port
    with psycopg.connect(postgres_url) as conn:
        version, user, db = conn.execute(
            "SELECT version(), current_user, current_database()").fetchone()
        listen = conn.execute("SHOW listen_addresses").fetchone()[0]
        superuser = conn.execute(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]
    assert version.startswith("PostgreSQL ")
    assert (user, db) == (url.username, url.path.lstrip("/"))
    assert listen == "127.0.0.1"
    assert superuser is False


def test_postgres_group_counts_through_ibis(postgres_url):
    import ibis
    import psycopg

    with psycopg.connect(postgres_url) as conn:
        conn.execute(f"CREATE TABLE decisions ({SCHEMA_SQL})")
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO decisions VALUES (%s, %s, %s, %s)", ROWS)
    con = ibis.connect(postgres_url)
    try:
        t = con.table("decisions")
        assert t.count().execute() == len(ROWS)
        assert _ibis_counts(t) == _expected()
        # a pandas frame written by ibis counts the same
        uploaded = con.create_table("decisions_from_pandas", FRAME)
        assert _ibis_counts(uploaded) == _expected()
    finally:
        con.disconnect()


def test_spark_group_counts_through_ibis(spark, tmp_path):
    import ibis
    from pyspark.sql import functions as F

    assert spark.sparkContext.master == "local[2]"
    assert spark.conf.get("spark.sql.shuffle.partitions") == "4"
    sdf = spark.createDataFrame(ROWS, "grp string, label int, decision boolean, score double")
    sdf.createOrReplaceTempView("decisions")
    con = ibis.pyspark.connect(spark)
    assert _ibis_counts(con.table("decisions")) == _expected()
    # a pandas frame (nullable integers and booleans, None in text) counts the same
    assert _ibis_counts(ibis.memtable(FRAME), con) == _expected()

    # the same rows from a Parquet file, counted by Spark itself
    path = tmp_path / "decisions.parquet"
    FRAME.to_parquet(path, index=False)
    counted = (spark.read.parquet(str(path)).groupBy("grp", "label")
               .agg(F.count(F.lit(1)).alias("n"),
                    F.sum(F.col("decision").cast("int")).alias("positives"),
                    F.count("score").alias("scored"), F.sum("score").alias("score_sum"))
               .toPandas().fillna({"positives": 0}))
    assert _counts(counted) == _expected()


def test_duckdb_group_counts_through_ibis():
    import duckdb
    import ibis

    con = ibis.duckdb.connect()
    try:
        assert _ibis_counts(con.create_table("decisions", FRAME)) == _expected()
    finally:
        con.disconnect()
    # DuckDB's own client queries the pandas frame in place
    frame = FRAME  # noqa: F841 (read by name in the query)
    counted = duckdb.sql("SELECT grp, label, count(*) AS n, "
                         "coalesce(sum(decision::int), 0) AS positives, "
                         "count(score) AS scored, sum(score) AS score_sum "
                         "FROM frame GROUP BY ALL").df()
    assert _counts(counted) == _expected()
