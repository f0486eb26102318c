"""Reading user files: CSV (sniffed delimiter), TSV, encodings, Parquet,
XLSX, bytes uploads, column selection and the provenance in TableInfo."""
from __future__ import annotations

import hashlib
import io

import numpy as np
import pandas as pd
import pytest

from fairness_core import AuditSpec, InputError, audit, read_table
from fairness_core.cli import main
from fairness_core.io import TableInfo

ROWS = [  # y, p, g, s
    (1, 1, "A", 0.9),
    (0, 1, "B", 0.6),
    (1, 0, "A", 0.2),
    (0, 0, "B", 0.1),
    (1, 1, "B", 0.7),
]
HEADER = ("y", "p", "g", "s")


def _delimited(delim: str, rows=ROWS, header=HEADER) -> bytes:
    lines = [delim.join(header)] + [delim.join(str(v) for v in r) for r in rows]
    return ("\n".join(lines) + "\n").encode("utf-8")


def _frame() -> pd.DataFrame:
    return pd.DataFrame(ROWS, columns=list(HEADER))


def _check_frame(df: pd.DataFrame, cols=HEADER):
    """The table read back equals ROWS (restricted to ``cols``)."""
    assert list(df.columns) == list(cols)
    expected = _frame()[list(cols)]
    assert len(df) == len(expected)
    for c in cols:
        got = df[c].tolist()
        want = expected[c].tolist()
        if c == "s":
            np.testing.assert_allclose(np.asarray(got, dtype=float), want)
        else:
            assert [str(v) for v in got] == [str(v) for v in want], c


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------
# CSV / TSV
# --------------------------------------------------------------------------
@pytest.mark.parametrize("delim", [",", ";", "\t", "|"], ids=["comma", "semicolon", "tab",
                                                                "pipe"])
def test_csv_delimiter_is_sniffed(tmp_path, delim):
    data = _delimited(delim)
    path = tmp_path / "table.csv"
    path.write_bytes(data)
    df, info = read_table(path)
    _check_frame(df)
    assert isinstance(info, TableInfo)
    assert info.format == "csv"
    assert info.delimiter == delim
    assert info.name == "table.csv"
    assert info.sha256 == _sha(data)
    assert info.size_bytes == len(data)
    assert info.columns == list(HEADER)
    assert info.encoding == "utf-8"
    # numbers are numbers, not text
    assert pd.api.types.is_integer_dtype(df["y"].dtype)
    assert pd.api.types.is_float_dtype(df["s"].dtype)


def test_semicolon_csv_with_decimal_commas_keeps_semicolon_delimiter():
    # A European export: ';' separates fields, ',' is the decimal mark.
    data = b"score;group;y\n0,5;A;1\n0,75;B;0\n0,25;A;1\n"
    df, info = read_table(data, name="eu.csv")
    assert info.delimiter == ";"
    assert list(df.columns) == ["score", "group", "y"]
    assert [str(v) for v in df["group"]] == ["A", "B", "A"]
    assert df["y"].tolist() == [1, 0, 1]


def test_quoted_fields_with_delimiters_inside():
    data = b'y,p,g\n1,0,"Acme, Inc."\n0,1,"Foo ""Bar"""\n'
    df, info = read_table(data, name="q.csv")
    assert info.delimiter == ","
    assert [str(v) for v in df["g"]] == ["Acme, Inc.", 'Foo "Bar"']


@pytest.mark.parametrize("newline", ["\r\n", "\r"], ids=["crlf", "cr"])
def test_windows_and_old_mac_line_endings(newline):
    data = _delimited(",").decode().replace("\n", newline).encode()
    df, info = read_table(data, name="t.csv")
    _check_frame(df)
    df, _ = read_table(data, name="t.csv", columns=["g", "y"])
    _check_frame(df, ("g", "y"))


@pytest.mark.parametrize("ext", [".tsv", ".tab"])
def test_tsv_by_extension(tmp_path, ext):
    # Commas inside the values: only the extension says the delimiter is a tab.
    data = b"y\tp\tg\n1\t0\tSmith, J\n0\t1\tDoe, A\n1\t1\tRoe, B\n"
    path = tmp_path / f"table{ext}"
    path.write_bytes(data)
    df, info = read_table(path)
    assert info.format == "tsv"
    assert info.delimiter == "\t"
    assert list(df.columns) == ["y", "p", "g"]
    assert [str(v) for v in df["g"]] == ["Smith, J", "Doe, A", "Roe, B"]
    assert info.sha256 == _sha(data)


def test_fmt_forces_tsv_for_an_unhelpful_name():
    data = b"y\tp\tg\n1\t0\tSmith, J\n0\t1\tDoe, A\n"
    df, info = read_table(data, name="export.dat", fmt="tsv")
    assert info.format == "tsv" and info.delimiter == "\t"
    assert [str(v) for v in df["g"]] == ["Smith, J", "Doe, A"]


def test_unknown_format_name_is_refused():
    with pytest.raises(InputError) as exc:
        read_table(b"a,b\n1,2\n", name="t.csv", fmt="json")
    assert "json" in exc.value.message and "'parquet'" in exc.value.message


# --------------------------------------------------------------------------
# Encodings
# --------------------------------------------------------------------------
@pytest.mark.parametrize("delim", [",", ";", "\t"])
def test_utf8_bom_is_not_part_of_the_first_column_name(tmp_path, delim):
    data = b"\xef\xbb\xbf" + _delimited(delim)
    path = tmp_path / "bom.csv"
    path.write_bytes(data)
    df, info = read_table(path)
    assert list(df.columns) == list(HEADER)
    assert not any("\ufeff" in c for c in df.columns)
    assert not any("\ufeff" in c for c in info.columns)
    assert info.encoding == "utf-8-sig"
    assert info.delimiter == delim
    assert info.sha256 == _sha(data)  # the hash is of the file as given, BOM included
    _check_frame(df)
    # the first column can be selected by its plain name
    df2, info2 = read_table(path, columns=["y", "g"])
    _check_frame(df2, ("y", "g"))
    assert info2.columns == ["y", "g"]


def test_utf8_non_ascii_values_read_back():
    text = "y,p,g\n1,1,Société\n0,1,Zoë\n1,0,Ünïcödé\n0,0,日本\n"
    df, info = read_table(text.encode("utf-8"), name="u.csv")
    assert info.encoding == "utf-8"
    assert [str(v) for v in df["g"]] == ["Société", "Zoë", "Ünïcödé", "日本"]


def test_latin1_file_reads_non_ascii_groups_correctly(tmp_path):
    text = "y,p,g\n1,1,Société\n0,1,Zoë\n1,0,Société\n0,0,Zoë\n"
    data = text.encode("latin-1")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")  # the test is meaningful: not valid UTF-8
    path = tmp_path / "latin1.csv"
    path.write_bytes(data)
    df, info = read_table(path)
    assert info.encoding == "cp1252"  # reads latin-1 bytes identically
    assert info.sha256 == _sha(data)
    assert [str(v) for v in df["g"]] == ["Société", "Zoë", "Société", "Zoë"]
    assert df["y"].tolist() == [1, 0, 1, 0]
    # and the audit's groups carry the right names
    res = audit(path, AuditSpec(label="y", predictions=["p"], sensitive=["g"]))
    assert sorted(res.group_metrics["group"]) == ["Société", "Zoë"]


def test_latin1_value_in_the_last_field():
    data = "y,p,g\n1,1,A\n0,1,Zoë\n".encode("latin-1")
    df, info = read_table(data, name="t.csv")
    assert info.encoding == "cp1252"  # reads latin-1 bytes identically
    assert [str(v) for v in df["g"]] == ["A", "Zoë"]


def test_latin1_non_ascii_after_the_first_64_kib():
    data = b"y,p,g\n" + b"1,0,A\n" * 12_000 + "0,1,Zoë\n".encode("latin-1")
    assert len(data) > 1 << 16
    df, info = read_table(data, name="late.csv")
    assert len(df) == 12_001
    assert df["g"].iloc[0] == "A"
    assert df["g"].iloc[-1] == "Zoë"
    assert info.encoding == "cp1252"  # reads latin-1 bytes identically


# --------------------------------------------------------------------------
# Parquet and XLSX
# --------------------------------------------------------------------------
def _parquet_bytes(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, engine="pyarrow", index=False)
    return buf.getvalue()


def _xlsx_bytes(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_excel(buf, index=False, engine="openpyxl")
    return buf.getvalue()


@pytest.mark.parametrize("ext", [".parquet", ".pq"])
def test_parquet_from_path(tmp_path, ext):
    path = tmp_path / f"t{ext}"
    _frame().to_parquet(path, engine="pyarrow", index=False)
    data = path.read_bytes()
    df, info = read_table(path)
    _check_frame(df)
    assert info.format == "parquet"
    assert info.delimiter is None and info.encoding is None
    assert info.sha256 == _sha(data)
    assert info.size_bytes == len(data)
    assert info.columns == list(HEADER)


def test_parquet_keeps_types_and_nulls():
    src = pd.DataFrame({"y": [True, False, None], "g": ["Zoë", None, "Société"],
                        "s": [0.5, np.nan, 1.0]})
    df, info = read_table(_parquet_bytes(src), name="upload.parquet")
    assert info.format == "parquet"
    assert df["g"].iloc[0] == "Zoë" and df["g"].iloc[2] == "Société"
    assert pd.isna(df["g"].iloc[1]) and pd.isna(df["y"].iloc[2]) and pd.isna(df["s"].iloc[1])
    assert bool(df["y"].iloc[0]) is True


def test_xlsx_from_path(tmp_path):
    src = _frame().assign(g=["Zoë", "Société", "Zoë", "B", "B"])
    path = tmp_path / "t.xlsx"
    src.to_excel(path, index=False, engine="openpyxl")
    data = path.read_bytes()
    df, info = read_table(path)
    assert list(df.columns) == list(HEADER)
    assert [str(v) for v in df["g"]] == ["Zoë", "Société", "Zoë", "B", "B"]
    assert df["y"].tolist() == [r[0] for r in ROWS]
    np.testing.assert_allclose(df["s"].to_numpy(dtype=float), [r[3] for r in ROWS])
    assert info.format == "xlsx"
    assert info.delimiter is None
    assert info.sha256 == _sha(data)


def test_xlsx_and_parquet_from_bytes_with_a_name():
    for data, name, fmt in ((_xlsx_bytes(_frame()), "upload.xlsx", "xlsx"),
                            (_parquet_bytes(_frame()), "upload.parquet", "parquet")):
        df, info = read_table(data, name=name)
        _check_frame(df)
        assert info.name == name
        assert info.format == fmt
        assert info.sha256 == _sha(data)
        assert info.size_bytes == len(data)


def test_binary_formats_are_recognised_by_content_without_extension():
    for data, fmt in ((_xlsx_bytes(_frame()), "xlsx"), (_parquet_bytes(_frame()), "parquet")):
        df, info = read_table(data, name="upload")
        assert info.format == fmt
        _check_frame(df)


# --------------------------------------------------------------------------
# bytes / file objects / columns=
# --------------------------------------------------------------------------
def test_bytes_input_uses_the_name_for_format_and_provenance():
    data = _delimited(",")
    df, info = read_table(data, name="my upload.csv")
    _check_frame(df)
    assert info.name == "my upload.csv"
    assert info.format == "csv" and info.delimiter == ","
    assert info.sha256 == _sha(data)
    # tab-separated bytes named .tsv are read as TSV
    df_t, info_t = read_table(_delimited("\t"), name="my upload.tsv")
    assert info_t.format == "tsv"
    _check_frame(df_t)


def test_bytes_without_a_name_default_to_upload_csv():
    data = _delimited(";")
    df, info = read_table(data)
    assert info.name == "upload"
    assert info.format == "csv" and info.delimiter == ";"
    _check_frame(df)


def test_bytearray_memoryview_and_file_object_equal_path(tmp_path):
    data = _delimited(",")
    path = tmp_path / "t.csv"
    path.write_bytes(data)
    ref, ref_info = read_table(path)
    for src in (bytearray(data), memoryview(data), io.BytesIO(data)):
        df, info = read_table(src, name="t.csv")
        pd.testing.assert_frame_equal(df, ref)
        assert info.sha256 == ref_info.sha256 == _sha(data)
    df, _ = read_table(str(path))  # a str path too
    pd.testing.assert_frame_equal(df, ref)


@pytest.mark.parametrize("fmt", ["csv", "tsv", "parquet", "xlsx"])
def test_columns_reads_only_those_columns(fmt):
    data = {"csv": lambda: _delimited(","), "tsv": lambda: _delimited("\t"),
            "parquet": lambda: _parquet_bytes(_frame()),
            "xlsx": lambda: _xlsx_bytes(_frame())}[fmt]()
    df, info = read_table(data, name=f"t.{fmt}", columns=["g", "y"])
    assert set(df.columns) == {"g", "y"}
    assert set(info.columns) == {"g", "y"}
    assert "p" not in df.columns and "s" not in df.columns
    assert [str(v) for v in df["g"]] == [r[2] for r in ROWS]
    assert df["y"].tolist() == [r[0] for r in ROWS]
    assert info.sha256 == _sha(data)  # the whole file is hashed, not the selection


@pytest.mark.parametrize("fmt", ["csv", "parquet", "xlsx"])
def test_columns_with_a_missing_name_lists_the_columns_there_are(fmt):
    data = {"csv": lambda: _delimited(","), "parquet": lambda: _parquet_bytes(_frame()),
            "xlsx": lambda: _xlsx_bytes(_frame())}[fmt]()
    with pytest.raises(InputError) as exc:
        read_table(data, name=f"t.{fmt}", columns=["y", "race"])
    msg = exc.value.message
    assert "'race'" in msg
    for c in HEADER:
        assert f"'{c}'" in msg
    assert exc.value.column == "race"
    assert exc.value.field == "columns"


def test_null_tokens_become_missing():
    data = b"y,p,g\n1,0,NA\n0,1,\n1,1,null\n0,0,A\n"
    df, _ = read_table(data, name="t.csv")
    assert df["g"].isna().tolist() == [True, True, True, False]
    assert df["y"].tolist() == [1, 0, 1, 0]


def test_header_names_are_stripped_of_stray_spaces():
    df, info = read_table(b"y , p ,g\n1,0,A\n0,1,B\n", name="t.csv")
    assert list(df.columns) == ["y", "p", "g"]
    assert info.columns == ["y", "p", "g"]


# --------------------------------------------------------------------------
# Awkward but valid files that once were misread.
# --------------------------------------------------------------------------
def test_space_after_delimiter_with_columns():
    data = b"y, p, g\n1, 0, A\n0, 1, B\n"
    df, info = read_table(data, name="t.csv", columns=["g", "y"])
    assert [str(v).strip() for v in df["g"]] == ["A", "B"]
    assert df["y"].tolist() == [1, 0]


def test_space_after_delimiter_through_cli(tmp_path, capsys):
    path = tmp_path / "spaces.csv"
    path.write_bytes(b"y, p, g\n" + b"1, 0, A\n0, 1, B\n" * 20)
    rc = main([str(path), "--label", "y", "--prediction", "p", "--sensitive", "g",
               "--quiet"])
    err = capsys.readouterr().err
    assert "internal error" not in err
    assert rc == 0


def test_leading_blank_line_with_columns():
    data = b"\ny,p,g\n1,0,A\n0,1,B\n"
    df, _ = read_table(data, name="t.csv")  # works without columns=
    assert list(df.columns) == ["y", "p", "g"]
    df, _ = read_table(data, name="t.csv", columns=["y", "g"])
    assert df["y"].tolist() == [1, 0]


def test_trailing_delimiter_does_not_shift_columns():
    data = b"y,p,g\n1,1,A,\n0,0,B,\n1,0,A,\n"
    try:
        df, _ = read_table(data, name="t.csv")
    except InputError:
        return  # refusing the file is acceptable
    assert df["y"].tolist() == [1, 0, 1]
    assert df["p"].tolist() == [1, 0, 0]
    assert [str(v) for v in df["g"]] == ["A", "B", "A"]


def test_quoted_header_with_line_break_with_columns():
    data = b'"y\nlabel",p,g\n1,0,A\n0,1,B\n'
    df, _ = read_table(data, name="t.csv", columns=["p", "g"])
    assert df["p"].tolist() == [0, 1]
    assert [str(v) for v in df["g"]] == ["A", "B"]


def test_a_header_with_year_names_stays_a_header():
    data = b"id,2019,2020,score\n1,5,6,0.5\n2,7,8,0.25\n3,9,10,0.75\n"
    df, info = read_table(data, name="wide.csv")
    assert list(df.columns) == ["id", "2019", "2020", "score"] and len(df) == 3
    assert not info.warnings


def test_a_first_row_of_data_is_a_row_and_the_columns_are_numbered():
    data = b"0.5,1,a\n0.25,0,b\n0.75,1,a\n"
    df, info = read_table(data, name="bare.csv")
    want = pd.read_csv(io.BytesIO(data), header=None)
    assert list(df.columns) == ["column_1", "column_2", "column_3"]
    assert df.shape == want.shape == (3, 3)
    assert df["column_1"].tolist() == want[0].tolist()
    assert any("column_1 to column_3" in w for w in info.warnings), info.warnings


def test_a_header_whose_names_are_not_values_stays_a_header_even_with_numbers():
    # two numeric names, but "sex" and "label" never occur as values below them
    data = b"sex,1,2,label\nf,3,4,yes\nm,5,6,no\n"
    df, info = read_table(data, name="odd.csv")
    assert list(df.columns) == ["sex", "1", "2", "label"] and len(df) == 2
