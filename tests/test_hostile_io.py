"""Hostile and heavy files: a workbook whose sheet claims or spans Excel's
whole grid, a string of hundreds of megabytes packed into a small zip, a zip
that lies about the size of its parts, too many columns or names too long,
random bytes named .csv, and values that differ only in the spaces around
them.  Every file here is built in memory and is small: what is checked is
that reading refuses (or reads) it quickly, in little memory, with a message
that names the limit and never carries a huge name."""
from __future__ import annotations

import io
import random
import struct
import time
import tracemalloc
import zipfile

import pandas as pd
import pytest
from openpyxl import Workbook

from fairness_core import AuditSpec, InputError, audit, read_table
from fairness_core.cli import main

MB = 1 << 20
NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG = "http://schemas.openxmlformats.org/package/2006"
CT_MAIN = "application/vnd.openxmlformats-officedocument.spreadsheetml"


# --------------------------------------------------------------------------
# Building workbooks
# --------------------------------------------------------------------------
def _col(i: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA."""
    s = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(65 + r) + s
    return s


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cell(ref: str, v) -> str:
    if isinstance(v, tuple):  # ("s", index): a shared string
        return f'<c r="{ref}" t="s"><v>{v[1]}</v></c>'
    if isinstance(v, str):
        return (f'<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">{_esc(v)}</t>'
                "</is></c>")
    return f'<c r="{ref}"><v>{v}</v></c>'


def _sheet(rows, dimension: str | None = None, extra: str = "") -> bytes:
    """Sheet XML for ``rows`` (lists of values from A1 on), with an optional
    claimed dimension and extra row XML at the end."""
    body = "".join(f'<row r="{r}">'
                   + "".join(_cell(f"{_col(c)}{r}", v) for c, v in enumerate(row)
                             if v is not None)
                   + "</row>" for r, row in enumerate(rows, start=1))
    dim = f'<dimension ref="{dimension}"/>' if dimension else ""
    return (f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{NS}">{dim}'
            f"<sheetData>{body}{extra}</sheetData></worksheet>").encode()


def _xlsx(sheet: bytes, shared: bytes | None = None) -> bytes:
    """A minimal workbook: one sheet and, optionally, a shared string table."""
    sst_ct = (f'<Override PartName="/xl/sharedStrings.xml" '
              f'ContentType="{CT_MAIN}.sharedStrings+xml"/>' if shared is not None else "")
    sst_rel = (f'<Relationship Id="rId2" Type="{REL}/sharedStrings" '
               'Target="sharedStrings.xml"/>' if shared is not None else "")
    parts = {
        "[Content_Types].xml":
            f'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="{PKG}/content-types">'
            '<Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{CT_MAIN}.sheet.main+xml"/>'
            f'<Override PartName="/xl/worksheets/sheet1.xml" '
            f'ContentType="{CT_MAIN}.worksheet+xml"/>{sst_ct}</Types>',
        "_rels/.rels":
            f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{PKG}/relationships">'
            f'<Relationship Id="rId1" Type="{REL}/officeDocument" Target="xl/workbook.xml"/>'
            "</Relationships>",
        "xl/workbook.xml":
            f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{NS}" xmlns:r="{REL}">'
            '<sheets><sheet name="Data" sheetId="1" r:id="rId1"/></sheets></workbook>',
        "xl/_rels/workbook.xml.rels":
            f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{PKG}/relationships">'
            f'<Relationship Id="rId1" Type="{REL}/worksheet" Target="worksheets/sheet1.xml"/>'
            f"{sst_rel}</Relationships>",
        "xl/worksheets/sheet1.xml": sheet,
    }
    if shared is not None:
        parts["xl/sharedStrings.xml"] = shared
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, body in parts.items():
            z.writestr(name, body)
    return out.getvalue()


def _shared(*strings: bytes) -> bytes:
    body = b"".join(b"<si><t>" + s + b"</t></si>" for s in strings)
    return (f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{NS}">'.encode() + body
            + b"</sst>")


def _workbook(rows) -> bytes:
    wb = Workbook()
    ws = wb.active
    for row in rows:
        ws.append(list(row))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


ROWS = [["y", "p", "g"], [1, 0, "A"], [0, 1, "B"], [1, 1, "A"], [0, 0, "B"]]


def _refused(call) -> tuple[InputError, float, int]:
    """Run ``call``, which must raise an InputError; return it with the
    seconds it took and the peak of memory that Python allocated."""
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(InputError) as exc:
            call()
    finally:
        elapsed = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return exc.value, elapsed, peak


CHILD = """
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))  # a regression fails, not the machine
from fairness_core import InputError, read_table
t0 = time.perf_counter()
try:
    read_table(sys.argv[1], columns=json.loads(sys.argv[2]))
    message = None
except InputError as exc:
    message = exc.message
seconds = time.perf_counter() - t0
# VmHWM: this process's peak resident memory since it started (getrusage's
# peak would count the test process it was forked from)
hwm = next(int(ln.split()[1]) for ln in open("/proc/self/status") if ln.startswith("VmHWM:"))
print(json.dumps({"message": message, "seconds": seconds, "peak_rss": hwm * 1024}))
"""


def _refused_in_child(tmp_path, data: bytes, name: str, columns=None) -> tuple[str, float, int]:
    """Read the file in a child process (capped at 4 GB of address space);
    return the refusal's message, the seconds the read took and the child's
    peak resident memory in bytes (Python, pandas and openpyxl included)."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    path = tmp_path / name
    path.write_bytes(data)
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", CHILD, str(path), json.dumps(columns)],
                          capture_output=True, text=True, cwd=root, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["message"] is not None, "the file was read"
    return out["message"], out["seconds"], out["peak_rss"]


def _cli_refuses(capsys, argv) -> str:
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    assert rc == 2, (rc, cap.out, cap.err)
    assert cap.err.count("\n") == 1 and "Traceback" not in cap.err
    return cap.err


# --------------------------------------------------------------------------
# 1. A sheet that spans Excel's whole grid
# --------------------------------------------------------------------------
def _far_cell_workbook() -> bytes:
    """About 5 KB: a small table and one cell at the last row and column."""
    wb = Workbook()
    ws = wb.active
    for row in ROWS:
        ws.append(row)
    ws["XFD1048576"] = 1
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def test_far_cell_workbook_is_small_and_claims_the_whole_grid():
    data = _far_cell_workbook()
    sheet = zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet1.xml")
    assert len(data) < 10_000
    assert b'<dimension ref="A1:XFD1048576"' in sheet


def test_sheet_spanning_the_whole_grid_is_refused():
    data = _far_cell_workbook()
    with pytest.raises(InputError) as exc:
        read_table(data, name="far.xlsx", columns=["y", "p", "g"])
    assert "FAIRNESS_AUDIT_MAX_XLSX_CELLS" in exc.value.message
    assert "XFD1048576" in exc.value.message  # where the far cell is
    assert "17,179,869,184" in exc.value.message  # 1,048,576 rows x 16,384 columns
    assert exc.value.field == "file"


def test_sheet_spanning_the_whole_grid_is_refused_quickly_in_little_memory(tmp_path):
    message, seconds, peak = _refused_in_child(tmp_path, _far_cell_workbook(), "far.xlsx")
    assert "FAIRNESS_AUDIT_MAX_XLSX_CELLS" in message
    assert seconds < 15, seconds
    assert peak < 512 * MB, peak


def test_sheet_spanning_the_whole_grid_exits_2_through_the_cli(tmp_path, capsys):
    path = tmp_path / "far.xlsx"
    path.write_bytes(_far_cell_workbook())
    err = _cli_refuses(capsys, [path, "--label", "y", "--prediction", "p",
                                "--sensitive", "g"])
    assert "FAIRNESS_AUDIT_MAX_XLSX_CELLS" in err


def test_claimed_dimension_larger_than_the_cells_is_not_trusted():
    # The dimension lies the other way: the grid is claimed, three rows exist.
    data = _xlsx(_sheet(ROWS, dimension="A1:XFD1048576"))
    df, info = read_table(data, name="claims.xlsx")
    assert list(df.columns) == ["y", "p", "g"]
    assert df["y"].tolist() == [1, 0, 1, 0]
    assert [str(v) for v in df["g"]] == ["A", "B", "A", "B"]


def test_cells_beyond_a_small_claimed_dimension_are_read():
    rows = [r + [None, None] for r in ROWS]
    rows[0][4] = "s"
    rows[2][4] = 0.5
    data = _xlsx(_sheet(rows, dimension="A1:B2"))
    df, _ = read_table(data, name="small-claim.xlsx")
    assert list(df.columns) == ["y", "p", "g", "Unnamed: 3", "s"]
    assert len(df) == 4 and df["s"].iloc[1] == 0.5


def test_cells_spanned_are_checked_against_a_lowered_limit(monkeypatch):
    monkeypatch.setenv("FAIRNESS_AUDIT_MAX_XLSX_CELLS", "100")
    rows = [["y", "p", "g"]] + [[i % 2, 1, "A"] for i in range(40)]  # 41 x 3 = 123
    err, _, _ = _refused(lambda: read_table(_workbook(rows), name="t.xlsx"))
    assert "FAIRNESS_AUDIT_MAX_XLSX_CELLS" in err.message and "100" in err.message
    rows = rows[:30]  # 30 x 3 = 90 cells: within the limit
    df, _ = read_table(_workbook(rows), name="t.xlsx")
    assert len(df) == 29


def test_row_far_below_excels_last_row_is_refused():
    # A row number no spreadsheet program writes.
    extra = '<row r="5000000"><c r="A5000000"><v>1</v></c></row>'
    data = _xlsx(_sheet(ROWS, extra=extra))
    with pytest.raises(InputError) as exc:
        read_table(data, name="rows.xlsx")
    assert "1,048,576" in exc.value.message


def test_millions_of_empty_rows_are_refused_before_they_are_parsed(tmp_path):
    # 3 million empty row elements pack into a few KB; a sheet has at most
    # 1,048,576 rows.  (No dimension: the parser would walk every row first.)
    sheet = _sheet(ROWS).replace(b"</sheetData>", b"<row/>" * 3_000_000 + b"</sheetData>")
    data = _xlsx(sheet)
    assert len(data) < 100_000
    message, seconds, peak = _refused_in_child(tmp_path, data, "rows.xlsx")
    assert "1,048,576" in message
    assert seconds < 10 and peak < 512 * MB


# --------------------------------------------------------------------------
# 2. A huge string packed into a small zip, and zips that lie
# --------------------------------------------------------------------------
def _long_string_workbook(n_chars: int) -> bytes:
    """Header y, p, name; the cell C3 holds ``n_chars`` times 'a' (shared)."""
    rows = [[("s", 0), ("s", 1), ("s", 2)], [1, 0, ("s", 3)], [0, 1, ("s", 4)],
            [1, 1, ("s", 3)]]
    return _xlsx(_sheet(rows), _shared(b"y", b"p", b"name", b"short", b"a" * n_chars))


def test_shared_strings_over_the_memory_budget_are_refused_before_unpacking(monkeypatch):
    data = _long_string_workbook(8 * MB)
    assert len(data) < 100_000
    monkeypatch.setenv("FAIRNESS_AUDIT_MEMORY", "16M")
    err, seconds, peak = _refused(lambda: read_table(data, name="big.xlsx"))
    assert "FAIRNESS_AUDIT_MEMORY" in err.message and "16.0 MB" in err.message
    assert peak < 4 * MB, peak  # the 8 MB string was never unpacked
    assert seconds < 5


def test_cell_over_a_lowered_character_limit_is_refused_naming_column_and_row(monkeypatch):
    monkeypatch.setenv("FAIRNESS_AUDIT_MAX_CELL_CHARS", "1000")
    err, _, _ = _refused(lambda: read_table(_long_string_workbook(5000), name="t.xlsx"))
    msg = err.message
    assert "'name'" in msg and "row 3" in msg and "C3" in msg
    assert "5,000" in msg and "FAIRNESS_AUDIT_MAX_CELL_CHARS" in msg
    assert len(msg) < 600  # the text itself is not in the message
    assert err.column == "name"


def test_cell_just_over_excels_limit_is_refused_with_the_default_limits():
    err, _, _ = _refused(lambda: read_table(_long_string_workbook(32_768),
                                            name="t.xlsx"))
    assert "'name'" in err.message and "row 3" in err.message
    assert "32,768" in err.message and "32,767" in err.message
    # Excel's own limit is fine
    df, _ = read_table(_long_string_workbook(32_767), name="t.xlsx")
    assert len(df["name"].iloc[1]) == 32_767


def test_text_far_over_the_limit_is_refused_before_it_is_parsed():
    # 1 MB of one character: over ten times the limit in bytes of XML, so
    # over it in characters whatever the encoding.
    data = _long_string_workbook(MB)
    err, seconds, peak = _refused(lambda: read_table(data, name="big.xlsx"))
    assert "FAIRNESS_AUDIT_MAX_CELL_CHARS" in err.message
    assert "xl/sharedStrings.xml" in err.message and "32,767" in err.message
    assert peak < 3 * MB, peak  # the string was never built
    assert len(err.message) < 600


def test_inline_string_over_the_limit_is_refused_too(monkeypatch):
    monkeypatch.setenv("FAIRNESS_AUDIT_MAX_CELL_CHARS", "100")
    rows = ROWS + [[1, 0, "x" * 101]]
    err, _, _ = _refused(lambda: read_table(_xlsx(_sheet(rows)), name="t.xlsx"))
    assert "'g'" in err.message and "row 6" in err.message


def _lie_about_size(data: bytes, member: str, size: int) -> bytes:
    """Rewrite the sizes that the local header and the central directory
    declare for ``member`` (the content and its checksum stay)."""
    buf = bytearray(data)
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo(member)
    struct.pack_into("<I", buf, info.header_offset + 22, size)
    end = data.rfind(b"PK\x05\x06")
    pos = struct.unpack_from("<I", data, end + 16)[0]
    while data[pos:pos + 4] == b"PK\x01\x02":
        n, m, k = struct.unpack_from("<HHH", data, pos + 28)
        if data[pos + 46:pos + 46 + n].decode() == member:
            struct.pack_into("<I", buf, pos + 24, size)
        pos += 46 + n + m + k
    return bytes(buf)


def test_zip_part_larger_than_it_declares_is_refused():
    data = _lie_about_size(_long_string_workbook(2 * MB), "xl/sharedStrings.xml", 200)
    assert zipfile.ZipFile(io.BytesIO(data)).getinfo("xl/sharedStrings.xml").file_size == 200
    err, seconds, peak = _refused(lambda: read_table(data, name="lies.xlsx"))
    assert "xl/sharedStrings.xml" in err.message
    assert "more than" in err.message and "200" in err.message
    assert err.field == "file"
    assert peak < 8 * MB and seconds < 5


def test_sheet_larger_than_it_declares_is_refused():
    sheet = _sheet(ROWS)
    data = _lie_about_size(_xlsx(sheet), "xl/worksheets/sheet1.xml", len(sheet) // 2)
    err, _, _ = _refused(lambda: read_table(data, name="lies.xlsx"))
    assert "xl/worksheets/sheet1.xml" in err.message and "more than" in err.message


# --------------------------------------------------------------------------
# 3. Too many columns, names too long
# --------------------------------------------------------------------------
def _wide(n: int) -> pd.DataFrame:
    return pd.DataFrame({f"c{i}": [i % 2, 1, 0] for i in range(n)})


def _encode(df: pd.DataFrame, fmt: str) -> bytes:
    buf = io.BytesIO()
    if fmt in ("csv", "tsv"):
        df.to_csv(buf, index=False, sep="," if fmt == "csv" else "\t")
    elif fmt == "parquet":
        df.to_parquet(buf, index=False)
    else:
        df.to_excel(buf, index=False)
    return buf.getvalue()


def _no_body_reads(monkeypatch):
    """Make every reader of a body fail loudly: a refusal must come first."""
    import pyarrow.csv
    import pyarrow.parquet

    def boom(*a, **k):
        raise AssertionError("the body was read")

    monkeypatch.setattr(pyarrow.csv, "read_csv", boom)
    monkeypatch.setattr(pd, "read_csv", boom)
    monkeypatch.setattr(pyarrow.parquet.ParquetFile, "read", boom)


@pytest.mark.parametrize("fmt", ["csv", "tsv", "parquet", "xlsx"])
def test_too_many_columns_are_refused_before_the_body(monkeypatch, fmt):
    data = _encode(_wide(21), fmt)
    monkeypatch.setenv("FAIRNESS_AUDIT_MAX_COLUMNS", "20")
    _no_body_reads(monkeypatch)
    err, _, _ = _refused(lambda: read_table(data, name=f"wide.{fmt}", columns=["c0"]))
    assert "21" in err.message and "20" in err.message
    assert "FAIRNESS_AUDIT_MAX_COLUMNS" in err.message
    assert err.field == "file"


@pytest.mark.parametrize("fmt", ["csv", "tsv", "parquet", "xlsx"])
def test_as_many_columns_as_the_limit_are_read(monkeypatch, fmt):
    monkeypatch.setenv("FAIRNESS_AUDIT_MAX_COLUMNS", "20")
    df, info = read_table(_encode(_wide(20), fmt), name=f"wide.{fmt}")
    assert df.shape == (3, 20)


def test_csv_with_more_columns_than_the_default_limit():
    header = ",".join(f"c{i}" for i in range(10_001))
    row = ",".join("1" for _ in range(10_001))
    data = f"{header}\n{row}\n".encode()
    err, _, _ = _refused(lambda: read_table(data, name="wide.csv", columns=["c0"]))
    assert "10,001" in err.message and "10,000" in err.message


def test_header_longer_than_the_first_64_kib_is_read_whole():
    names = [f"column_number_{i:05d}" for i in range(5000)]  # about 100 KB
    data = (",".join(names) + "\n" + ",".join("1" for _ in names) + "\n").encode()
    assert data.index(b"\n") > 1 << 16
    df, _ = read_table(data, name="wide.csv", columns=[names[-1], names[0]])
    assert list(df.columns) == [names[-1], names[0]]
    assert df[names[-1]].tolist() == [1]


@pytest.mark.parametrize("fmt", ["csv", "tsv", "parquet", "xlsx"])
def test_column_name_longer_than_a_cell_is_refused_with_a_short_message(fmt):
    long_name = "n" * 40_000
    df = pd.DataFrame({"y": [1, 0], long_name: ["A", "B"]})
    # (pandas cuts a longer text to Excel's limit when it writes a workbook)
    data = _xlsx(_sheet([list(df.columns)] + df.values.tolist())) if fmt == "xlsx" \
        else _encode(df, fmt)
    err, _, _ = _refused(lambda: read_table(data, name=f"t.{fmt}"))
    assert "40,000" in err.message and "FAIRNESS_AUDIT_MAX_CELL_CHARS" in err.message
    assert len(err.message) < 600


def test_missing_column_message_shortens_long_and_invisible_names():
    long_name = "x" * 5000
    data = f"y,{long_name},g\u202eevil\n1,2,3\n".encode()
    err, _, _ = _refused(lambda: read_table(data, name="t.csv", columns=["race"]))
    assert "'race'" in err.message
    assert "5,000 characters" in err.message and len(err.message) < 600
    assert "<U+202E>" in err.message and "\u202e" not in err.message


def test_huge_single_name_header_is_refused_without_reading_it_all(monkeypatch):
    monkeypatch.setenv("FAIRNESS_AUDIT_MAX_CELL_CHARS", "1000")
    data = b"y," + b"n" * (2 * MB) + b"\n1,2\n"
    err, _, peak = _refused(lambda: read_table(data, name="t.csv"))
    assert "FAIRNESS_AUDIT_MAX_CELL_CHARS" in err.message and len(err.message) < 600
    assert peak < 6 * MB, peak


# --------------------------------------------------------------------------
# 4. Bytes that are not text
# --------------------------------------------------------------------------
_RNG = random.Random(0)
RANDOM = bytes(_RNG.randrange(1, 256) for _ in range(20000))
#: A new generator for every byte: one byte 20,000 times, no line break.
SAME_BYTE = bytes(random.Random(0).randrange(1, 256) for _ in range(20000))


@pytest.mark.parametrize("data", [RANDOM, SAME_BYTE], ids=["random", "same-byte"])
@pytest.mark.parametrize("name", ["data.csv", "data.tsv", "data"])
def test_random_bytes_without_nul_are_not_read_as_a_table(name, data):
    assert b"\x00" not in data
    err, _, _ = _refused(lambda: read_table(data, name=name, columns=["y", "p", "g"]))
    assert "not in" not in err.message  # no confusing "column not in the file"
    assert "text" in err.message
    for fmt in ("CSV", "TSV", "Parquet", "XLSX"):
        assert fmt in err.message, fmt
    assert err.field == "file"


def test_random_bytes_exit_2_through_the_cli(tmp_path, capsys):
    path = tmp_path / "data.csv"
    path.write_bytes(RANDOM)
    err = _cli_refuses(capsys, [path, "--label", "y", "--prediction", "p",
                                "--sensitive", "g"])
    assert "text" in err and "Parquet" in err


TEXT = "y,p,groupe\n1,1,Société\n0,1,Zoë\n1,0,Société\n0,0,Zoë\n"


def test_random_bytes_after_a_utf16_byte_order_mark_are_refused():
    data = b"\xff\xfe" + bytes(_RNG.randrange(0, 256) for _ in range(8000))
    err, _, _ = _refused(lambda: read_table(data, name="data.csv"))
    assert "text" in err.message and "Parquet" in err.message


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be"])
def test_utf16_with_a_byte_order_mark_is_read(encoding):
    data = TEXT.encode(encoding)
    if encoding == "utf-16-be":
        data = b"\xfe\xff" + data
    assert b"\x00" in data
    df, info = read_table(data, name="u16.csv")
    assert list(df.columns) == ["y", "p", "groupe"]
    assert [str(v) for v in df["groupe"]] == ["Société", "Zoë", "Société", "Zoë"]
    assert df["y"].tolist() == [1, 0, 1, 0]
    assert info.encoding.startswith("utf-16")


def test_cp1252_with_accents_euro_and_curly_quotes_is_read():
    data = "y,p,nom\n1,1,Société €\n0,1,“Zoë”\n".encode("cp1252")
    df, info = read_table(data, name="w.csv")
    assert [str(v) for v in df["nom"]] == ["Société €", "“Zoë”"]


def test_stray_control_characters_in_a_cell_still_read():
    rows = "".join(f"{i % 2},{(i // 2) % 2},A\n" for i in range(30))
    data = ("y,p,g\n1,0,B\x01\x02\x1b\x7f\n" + rows).encode()
    df, _ = read_table(data, name="ctl.csv")
    assert len(df) == 31 and df["g"].iloc[0] == "B\x01\x02\x1b\x7f"


def test_a_control_character_in_every_row_of_a_group_still_reads():
    rows = "".join(f"{i % 2},{(i // 2) % 2},{'A' if i % 2 else 'B'}\x1bB\n" for i in range(60))
    df, _ = read_table(("y,p,g\n" + rows).encode(), name="ctl.csv")
    assert len(df) == 60 and set(df["g"]) == {"A\x1bB", "B\x1bB"}


# --------------------------------------------------------------------------
# 5. Values that differ only in the spaces around them
# --------------------------------------------------------------------------
SPACED = ["Male", " Male", "\tMale", "Female", "Male", " Male", "\tMale", "Female"]


def _spaced_frame() -> pd.DataFrame:
    return pd.DataFrame({"y": [1, 0] * 4, "p": [1, 1, 0, 0] * 2, "sex": SPACED})


@pytest.mark.parametrize("fmt", ["csv", "tsv", "parquet", "xlsx"])
def test_values_are_read_exactly_as_in_the_file(fmt):
    df, _ = read_table(_encode(_spaced_frame(), fmt), name=f"t.{fmt}")
    assert [str(v) for v in df["sex"]] == SPACED


def test_values_are_kept_by_the_fallback_csv_reader_too():
    # A trailing delimiter on every data row: read by the second reader.
    body = "".join(f"{y},{p},{s},\n" for y, p, s in zip([1, 0] * 4, [1, 1, 0, 0] * 2,
                                                        SPACED))
    df, _ = read_table(("y,p,sex\n" + body).encode(), name="t.csv")
    assert [str(v) for v in df["sex"]] == SPACED
    assert df["y"].tolist() == [1, 0] * 4


def test_groups_that_differ_only_in_spaces_stay_apart_with_a_warning(tmp_path):
    path = tmp_path / "spaced.csv"
    _spaced_frame().to_csv(path, index=False)
    res = audit(path, AuditSpec(label="y", predictions=["p"], sensitive=["sex"],
                                n_bootstrap=0))
    groups = sorted(res.group_metrics["group"])
    assert groups == sorted(["Male", " Male", "\tMale", "Female"])
    warning = next(w for w in res.warnings if "separate groups" in w)
    assert "sex" in warning
    assert "'Male'" in warning and "' Male'" in warning and "'\\tMale'" in warning
    assert "'Female'" not in warning
    assert "\t" not in warning  # the tab is shown, not printed
    assert "clean" in warning.lower()


def test_spaced_groups_warning_reaches_the_cli_json(tmp_path, capsys):
    path = tmp_path / "spaced.csv"
    _spaced_frame().to_csv(path, index=False)
    out = tmp_path / "audit.json"
    rc = main([str(path), "--label", "y", "--prediction", "p", "--sensitive", "sex",
               "--bootstrap", "0", "--json", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "separate groups" in printed
    import json
    doc = json.loads(out.read_text())
    assert any("separate groups" in w for w in doc["warnings"])


def test_consistently_spaced_groups_do_not_warn_and_a_named_reference_still_matches():
    df = pd.DataFrame({"y": [1, 0] * 40, "p": [1, 1, 0, 0] * 20,
                       "sex": [" Male", " Female"] * 40})
    data = _encode(df, "csv")
    res = audit(data, AuditSpec(label="y", predictions=["p"], sensitive=["sex"],
                                n_bootstrap=0, reference={"sex": "Female"}), name="t.csv")
    assert not any("separate groups" in w for w in res.warnings)
    assert sorted(res.group_metrics["group"]) == [" Female", " Male"]
    assert set(res.disparities["reference"]) == {" Female"}


def test_label_values_with_a_leading_space_still_match_the_positive_class():
    # UCI Adult writes " >50K" and " <=50K".
    df = pd.DataFrame({"income": [" >50K", " <=50K"] * 20,
                       "decision": [" >50K", " >50K", " <=50K", " <=50K"] * 10,
                       "sex": ["F", "M"] * 20})
    res = audit(_encode(df, "csv"), AuditSpec(label="income", positive=">50K",
                                              predictions=["decision"], sensitive=["sex"],
                                              n_bootstrap=0), name="adult.csv")
    g = res.group_metrics.set_index("group")
    assert g.loc["F", "base_rate"] == 1.0 and g.loc["M", "base_rate"] == 0.0


def test_header_names_equal_after_stripping_are_deduplicated_with_a_warning():
    data = _workbook([["y", "p", "g", " g"], [1, 0, "A", "A"], [0, 1, "B", "B"]])
    df, info = read_table(data, name="t.xlsx")
    assert list(df.columns) == ["y", "p", "g", "g.1"]
    assert info.duplicates == {"g": ["g", "g.1"]}
    assert any("same name" in w for w in info.warnings)
    df, info = read_table(b"y,p,g, g\n1,0,A,A\n0,1,B,B\n", name="t.csv")
    assert list(df.columns) == ["y", "p", "g", "g.1"]
    assert any("same name" in w for w in info.warnings)
