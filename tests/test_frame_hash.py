"""The SHA-256 of an in-memory table: equal tables hash equal, however they
are stored (Arrow chunks, slices, index), and any change of a value, a
column's name or type, or the row order changes it.  The Arrow encoding that
the hash and the audit share gives the groups pandas counts.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from fairness_core import AuditSpec
from fairness_core.audit import prepare_source, read_source
from fairness_core.io import frame_sha256
from fairness_core.prepare import arrow_codes, prepare

STR = pd.StringDtype("pyarrow", na_value=np.nan)
TEXT = ["b", "a", None, "c", "a", "", "b  ", "é", "a", None]


def _text(chunks: list) -> pd.Series:
    """A ``str`` column made of the given Arrow chunks."""
    return pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array(chunks), dtype=STR))


def _frame(**changes) -> pd.DataFrame:
    cols = {
        "y": np.array([1, 0, 1, 1, 0, 0, 1, 0, 1, 0], dtype=np.int8),
        "score": np.array([0.1, np.nan, 0.3, 0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]),
        "group": pd.Series(TEXT, dtype="str"),
        "cat": pd.Categorical(list("xyxzyxzzyx"), categories=["x", "y", "z"]),
        "obj": pd.Series([1, "two", 3.0, None, "five", 6, "7", 8, 9, 10], dtype=object),
        "when": pd.date_range("2024-01-01", periods=10, freq="D").values,
    }
    cols.update(changes)
    return pd.DataFrame(cols)


def test_equal_tables_hash_equal():
    assert frame_sha256(_frame()) == frame_sha256(_frame())
    assert len(frame_sha256(_frame())) == 64


def test_text_split_into_chunks_or_sliced_hashes_as_one_chunk():
    whole = pa.array(TEXT, type=pa.large_string())
    small = pa.array(["zz"] + TEXT + ["zz"], type=pa.string()).slice(1, len(TEXT))
    ways = [[whole], [whole.slice(0, 3), whole.slice(3, 4), whole.slice(7)],
            [small], [small.slice(0, 1), small.slice(1)]]
    digests = {frame_sha256(_frame(group=_text(chunks))) for chunks in ways}
    assert digests == {frame_sha256(_frame())}


def test_missing_values_written_differently_hash_equal():
    with np.errstate(invalid="ignore"):
        nan_from_division = np.array([0.0]) / np.array([0.0])  # NaN with its sign bit set
    assert np.signbit(nan_from_division[0]) != np.signbit(np.nan)
    score = _frame()["score"].to_numpy().copy()
    score[1] = nan_from_division[0]
    assert frame_sha256(_frame(score=score)) == frame_sha256(_frame())
    # None and NaN are the same missing value in a float or a str column
    with_none = pd.Series([0.1, None, 0.3, 0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0], dtype=float)
    assert frame_sha256(_frame(score=with_none)) == frame_sha256(_frame())
    text = pd.Series([np.nan if v is None else v for v in TEXT], dtype="str")
    assert frame_sha256(_frame(group=text)) == frame_sha256(_frame())
    # -0.0 equals 0.0
    score = _frame()["score"].to_numpy().copy()
    score[3] = -0.0
    assert frame_sha256(_frame(score=score)) == frame_sha256(_frame())


def test_the_index_and_columns_left_out_do_not_count():
    df = _frame()
    moved = df.set_axis(range(100, 110))
    assert frame_sha256(moved) == frame_sha256(df)
    wider = df.assign(extra=np.arange(10))
    assert frame_sha256(wider, list(df.columns)) == frame_sha256(df)


@pytest.mark.parametrize("column, row, value", [
    ("y", 0, 0), ("score", 0, 0.1000000001), ("score", 1, 0.0), ("group", 0, "B"),
    ("group", 6, "b"), ("group", 2, "a"), ("group", 0, None), ("cat", 0, "z"),
    ("obj", 1, "Two"), ("obj", 3, 0), ("when", 0, pd.Timestamp("2024-01-01 00:00:01")),
])
def test_any_changed_value_changes_the_hash(column, row, value):
    df = _frame()
    changed = df.copy()
    changed.loc[row, column] = value
    assert not changed[column].equals(df[column])
    assert changed[column].dtype == df[column].dtype
    assert frame_sha256(changed) != frame_sha256(df)


@pytest.mark.parametrize("column", ["y", "score", "group", "cat", "obj", "when"])
def test_swapping_two_rows_changes_the_hash(column):
    df = _frame()
    values = df[column].to_list()
    i, j = next((i, j) for i in range(10) for j in range(i + 1, 10)
                if not pd.Series([values[i]]).equals(pd.Series([values[j]])))
    order = list(range(10))
    order[i], order[j] = j, i
    swapped = df.assign(**{column: df[column].iloc[order].reset_index(drop=True)})
    assert swapped[column].dtype == df[column].dtype
    assert frame_sha256(swapped) != frame_sha256(df)


def test_a_renamed_column_or_another_type_changes_the_hash():
    df = _frame()
    base = frame_sha256(df)
    assert frame_sha256(df.rename(columns={"score": "score2"})) != base
    assert frame_sha256(df[["score", "y", "group", "cat", "obj", "when"]]) != base
    others = {"y": df["y"].astype(np.int64), "score": df["score"].astype(np.float32),
              "group": df["group"].astype(object), "cat": df["cat"].astype("str"),
              "obj": df["obj"].astype("str")}
    for col, series in others.items():
        assert frame_sha256(df.assign(**{col: series})) != base, col
    reordered = pd.Categorical(df["cat"], categories=["z", "y", "x"])
    assert frame_sha256(df.assign(cat=reordered)) != base
    assert frame_sha256(df.assign(cat=df["cat"].cat.as_ordered())) != base


def test_an_object_column_of_equal_values_hashes_equal():
    a = pd.Series(["x", 1, None, 2.5], dtype=object)
    b = pd.Series(["x", 1, None, 2.5], dtype=object)
    assert frame_sha256(pd.DataFrame({"v": a})) == frame_sha256(pd.DataFrame({"v": b}))
    c = pd.Series(["x", 1, None, 2.6], dtype=object)
    assert frame_sha256(pd.DataFrame({"v": a})) != frame_sha256(pd.DataFrame({"v": c}))


def test_the_hash_is_the_same_whether_the_audit_encoded_the_text_first():
    df = _frame(group=_text([pa.array(TEXT[:4]), pa.array(TEXT[4:])]))
    spec = AuditSpec(label="y", positive=1, scores=["score"], sensitive=["group"])
    encodings: dict = {}
    prepare(df, spec, encodings=encodings)
    assert "group" in encodings
    before = frame_sha256(df, spec.columns(), encodings)
    assert before == frame_sha256(df, spec.columns()) == frame_sha256(df, spec.columns(), {})
    _, info = read_source(df, spec)
    assert info.sha256 == before
    _, info = prepare_source(df, spec)
    assert info.sha256 == before


def test_arrow_codes_give_the_values_in_order_of_first_appearance():
    chunks = [pa.array(["b", None, "a"]), pa.array([], type=pa.string()),
              pa.array(["c", "b", None, "a", "d"])]
    codes, dictionary = arrow_codes(pa.chunked_array(chunks))
    values = [v for c in chunks for v in c.to_pylist()]
    assert dictionary.to_pylist() == list(pd.unique(pd.Series(values).dropna()))
    assert codes.dtype == np.int32
    decoded = [None if k < 0 else dictionary[k].as_py() for k in codes]
    assert decoded == values


def test_arrow_dictionary_chunks_with_their_own_dictionaries():
    one = pa.DictionaryArray.from_arrays(pa.array([0, 1, None, 0], type=pa.int8()),
                                         pa.array(["x", "y"]))
    two = pa.DictionaryArray.from_arrays(pa.array([1, 0], type=pa.int8()),
                                         pa.array(["z", "x"]))
    codes, dictionary = arrow_codes(pa.chunked_array([one, two]))
    decoded = [None if k < 0 else dictionary[k].as_py() for k in codes]
    assert decoded == ["x", "y", None, "x", "x", "z"]


def test_audit_groups_from_chunked_text_match_pandas_counts():
    rng = np.random.default_rng(7)
    n = 5_000
    values = rng.choice(["north", "south", " east", "east", "west"], n).astype(object)
    values[rng.random(n) < 0.05] = None
    whole = pa.array(values, type=pa.large_string())
    chunked = _text([whole.slice(i, 700) for i in range(0, n, 700)])
    df = pd.DataFrame({"y": rng.integers(0, 2, n), "p": rng.integers(0, 2, n),
                       "region": chunked})
    spec = AuditSpec(label="y", positive=1, predictions=["p"], sensitive=["region"])
    prepared, info = prepare_source(df, spec)
    want = pd.Series(values).fillna("(missing)").value_counts()
    levels = prepared.levels["region"]
    ext = np.concatenate([[len(levels) - 1], prepared.luts["region"]])
    got = pd.Series(np.asarray(levels, dtype=object)[ext[prepared.codes["region"] + 1]])
    assert got.value_counts().sort_index().to_dict() == want.sort_index().to_dict()
    assert any("differ only in the spaces" in w for w in prepared.warnings)
    # the same table in one chunk: the same groups and the same hash
    one, info_one = prepare_source(df.assign(region=pd.Series(values, dtype="str")), spec)
    assert info_one.sha256 == info.sha256
    assert one.levels == prepared.levels
    assert np.array_equal(ext[prepared.codes["region"] + 1],
                          np.concatenate([[len(levels) - 1], one.luts["region"]])
                          [one.codes["region"] + 1])


def test_a_text_column_of_missing_values_is_not_one_of_empty_texts():
    missing = pd.DataFrame({"g": pd.Series([None, None], dtype="str")})
    empty = pd.DataFrame({"g": pd.Series(["", ""], dtype="str")})
    assert frame_sha256(missing) == frame_sha256(missing.copy())
    assert frame_sha256(missing) != frame_sha256(empty)
    assert frame_sha256(missing.iloc[:0]) != frame_sha256(missing)


@pytest.mark.parametrize("late", [False, True])
@pytest.mark.parametrize("n_values", [3, 40, 5000])
def test_text_codes_are_the_order_of_first_occurrence(late, n_values):
    """Each row's code is its value's rank by first occurrence (-1 when
    missing), as pandas.factorize numbers them, however many distinct values
    there are and wherever a value first occurs."""
    rng = np.random.default_rng(n_values)
    pool = np.array([f"v{i}" for i in range(n_values)] + [None], dtype=object)
    values = pool[rng.integers(0, n_values + 1, 30_000)]
    if late:
        values[25_000] = "only here"
    arr = pa.chunked_array([pa.array(values[:7_000]), pa.array(values[7_000:])])
    codes, dictionary = arrow_codes(arr)
    expected, uniques = pd.factorize(pd.Series(values, dtype=object))
    assert codes.dtype == np.int32
    np.testing.assert_array_equal(codes, expected)
    assert dictionary.to_pylist() == list(uniques)
