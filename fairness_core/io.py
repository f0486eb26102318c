"""Reading user files safely into a table.

CSV (delimiter sniffed; UTF-8 with or without BOM, UTF-16 with BOM, else
the encoding detected by charset-normalizer, preferring Windows-1252 where
it reads the bytes the same or nearly as cleanly), TSV, Parquet and XLSX,
from a path or from bytes (an upload).  Only the columns an audit needs are
read.  Values are kept exactly as they are in the file, spaces and tabs
around them included; header names are stripped of the spaces around them.
Columns that share a name get unique names the way pandas gives them
(``x``, ``x.1``).  Every problem becomes an :class:`InputError` that says
what is wrong with the file and how to fix it.

Limits (:mod:`fairness_core.limits`; each can be raised with an environment
variable) are checked before the work they bound:

- a header with more than ``max_columns`` columns, or a name longer than
  ``max_cell_chars`` characters, is refused before the body is read (a CSV
  or TSV header, a Parquet schema, a sheet's first row);
- a workbook is inspected as a zip before any part is parsed: the sizes
  its parts declare must fit the memory budget (reading costs about four
  times the XML); a part that unpacks to more than it declares, a sheet
  with more row elements than Excel's 1,048,576 rows, and a text far
  longer than a cell holds are refused;
- a sheet's claimed dimension is not trusted (it may claim more or fewer
  cells than there are): its rows are read one at a time, and reading
  stops as soon as the cells spanned (rows times the widest row) pass
  ``max_xlsx_cells``, a row passes ``max_columns`` columns, or a cell's
  text passes ``max_cell_chars`` characters (named by column and row);
- content that is not text (a NUL byte, many control characters, or no
  line break and no delimiter) is refused instead of being read as a
  table of one garbled column;
- names quoted in messages are shortened and their invisible characters
  shown (:func:`fairness_core.formatting.short`).
"""
from __future__ import annotations

import csv
import hashlib
import io
import math
import os
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .errors import InputError
from .formatting import short
from .limits import Limits, limits
from .threads import thread_map

FORMATS = ("csv", "tsv", "parquet", "xlsx")
_EXT = {".csv": "csv", ".txt": "csv", ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet",
        ".pq": "parquet", ".xlsx": "xlsx", ".xlsm": "xlsx"}
_NAMES = {"csv": "CSV", "tsv": "TSV", "parquet": "Parquet", "xlsx": "Excel (.xlsx)"}
NULL_VALUES = ["", "#N/A", "#N/A N/A", "#NA", "-NaN", "-nan", "<NA>", "N/A", "NA", "NULL",
               "NaN", "n/a", "nan", "null", "None"]
_SUPPORTED = "This tool reads CSV, TSV, Parquet and XLSX (Excel) files"


def _q(text) -> str:
    """A user's name (a column, a file) quoted for a message: shortened, its
    invisible characters shown."""
    return repr(short(text))


def _names(values, limit: int = 12) -> str:
    """Names quoted for a message, each shortened, at most ``limit`` of them."""
    values = list(values)
    shown = ", ".join(_q(v) for v in values[:limit])
    if len(values) > limit:
        shown += f", ... ({len(values) - limit} more)"
    return shown


@dataclass
class TableInfo:
    """Where a table came from: the provenance of an audit's input."""

    name: str
    format: str
    sha256: str
    size_bytes: int
    columns: list
    encoding: str | None = None
    delimiter: str | None = None
    #: name in the header -> the names its copies are read as (first is the name)
    duplicates: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)
    #: the engine that counted the rows (None: read into memory)
    engine: str | None = None
    #: how many aggregated records the engine returned
    records: int | None = None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def dedupe_names(names: list) -> list:
    """Unique column names, the way pandas makes them: the second ``x`` is
    ``x.1``, the third ``x.2`` (skipping names already taken)."""
    counts: dict = {}
    out = []
    for col in names:
        cur = counts.get(col, 0)
        while cur > 0:
            counts[col] = cur + 1
            col = f"{col}.{cur}"
            cur = counts.get(col, 0)
        out.append(col)
        counts[col] = cur + 1
    return out


def _duplicates(header: list, unique: list) -> dict:
    groups: dict = {}
    for h, u in zip(header, unique):
        groups.setdefault(h, []).append(u)
    return {h: us for h, us in groups.items() if len(us) > 1}


def _duplicate_warning(dups: dict) -> str:
    shown = "; ".join(f"{_q(h)} read as {_names(us)}" for h, us in list(dups.items())[:6])
    more = f" and {len(dups) - 6} more" if len(dups) > 6 else ""
    return (f"The file has more than one column with the same name ({shown}{more}). "
            "Later copies get a suffix, as pandas names them.")


def check_duplicates(df: pd.DataFrame, info: "TableInfo | None", columns) -> None:
    """Refuse a chosen column whose name the file uses more than once with
    different values (it is ambiguous); identical copies are fine."""
    if info is None or not info.duplicates or not columns:
        return
    for col in columns:
        copies = info.duplicates.get(col)
        if not copies or not all(c in df.columns for c in copies):
            continue
        first = df[copies[0]]
        if all(first.equals(df[c]) for c in copies[1:]):
            continue
        raise InputError(f"The column {_q(col)} is ambiguous: the file has {len(copies)} "
                         f"columns with that name and their values differ. They are read as "
                         f"{_names(copies)}, in the order of the header. Rename them in "
                         f"the file, or choose {_q(copies[1])} for the second one.",
                         field="columns", column=col)


_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
#: Control characters that a text table does not hold: the C0 controls but
#: tab, line feed, vertical tab, form feed, carriage return and DOS's
#: end-of-file mark.  In random bytes about one byte in nine is one.
_CONTROL_BYTES = bytes(b for b in range(32) if b not in (9, 10, 11, 12, 13, 26))
_CONTROL_CHARS = dict.fromkeys(_CONTROL_BYTES) | {0xFFFD: None}


def _looks_like_text(head: bytes) -> bool:
    """False when the start of a file holds many control characters of many
    kinds (at least 8, at least 1% of it, and 6 different ones: random bytes
    hold all of them, while a text with stray ones, or with one repeated in
    every row, is fine), or 4 KB and more without a line break or a
    delimiter.  After a UTF-16 byte order mark: many control characters or
    undecodable code units."""
    if head.startswith(_UTF16_BOMS):
        text = head[2:len(head) - len(head) % 2].decode("utf-16-le" if head[0] == 0xFF
                                                         else "utf-16-be", errors="replace")
        n = len(text) - len(text.translate(_CONTROL_CHARS))
        return n < 8 or n * 100 < len(text)
    rest = head.translate(None, _CONTROL_BYTES)
    n = len(head) - len(rest)
    if n >= 8 and n * 100 >= len(head) and \
            len(set(head) - set(rest)) >= 6:
        return False
    return len(head) < 4096 or any(c in head for c in b"\n\r,;\t|")


def _sniff_kind(head: bytes) -> str:
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"PK\x03\x04"):
        return "xlsx"
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return "xls"
    utf16 = head.startswith(_UTF16_BOMS) and not head.startswith(b"\xff\xfe\x00\x00")
    if (b"\x00" in head[:4096] and not utf16) or not _looks_like_text(head):
        return "binary"
    return "text"


def _check_kind(name: str, fmt: str | None, head: bytes) -> str:
    """Decide the format from the extension and the content; refuse a mismatch."""
    kind = _sniff_kind(head)
    ext = Path(name).suffix.lower()
    if ext == ".xls" or kind == "xls":
        raise InputError(f"{_q(name)} is an old Excel 97-2003 (.xls) workbook, which is not "
                         "supported. Save it as .xlsx or .csv and try again.", field="file")
    if fmt is None:
        fmt = _EXT.get(ext)
    if fmt is None:
        # Unknown or missing extension: trust the content.
        if kind in ("parquet", "xlsx"):
            return kind
        if kind == "binary":
            raise InputError(f"{_q(name)} does not look like a table: its content is not "
                             f"text (CSV, TSV), Parquet or XLSX. {_SUPPORTED}.", field="file")
        return "csv"
    expected = {"csv": "text", "tsv": "text", "parquet": "parquet", "xlsx": "xlsx"}[fmt]
    if kind != expected:
        looks = {"parquet": "a Parquet file", "xlsx": "an Excel workbook or another zip file",
                 "text": "a text (CSV) file", "binary": "a binary file"}[kind]
        if kind == "binary" and expected == "text":
            raise InputError(f"{_q(name)} is named as {_NAMES[fmt]} but its content looks like "
                             "a binary file, not a text table (it holds control characters, "
                             "or no line breaks and no delimiters). "
                             f"{_SUPPORTED}: export the data again as one of them.",
                             field="file")
        raise InputError(f"{_q(name)} is named as {_NAMES[fmt]} but its content looks like "
                         f"{looks}. Rename the file to match its content or export it again "
                         f"as {_NAMES[fmt]}.", field="file")
    return fmt


_DETECT_BYTES = 1 << 20


def detect_encoding(data: bytes) -> str:
    """The encoding of text that is not UTF-8.

    charset-normalizer ranks the encodings that decode the bytes cleanly;
    on short Western text it often ranks a rarer code page (cp1250, cp775)
    first although Windows-1252 decodes the same bytes identically or as
    cleanly.  Windows-1252 (a superset of latin-1's printable characters,
    with the euro sign and curly quotes) is by far the most common legacy
    encoding of spreadsheets, so it wins whenever it is among the cleanest
    candidates, or nearly so (within one point of chaos: on a few accented
    words the detector's scores differ by less than that).  Latin-1 is the
    last resort (it decodes any bytes).
    """
    from charset_normalizer import from_bytes

    sample = data[:_DETECT_BYTES]
    try:
        matches = list(from_bytes(sample))
    except Exception:  # the detector must never stop a read
        matches = []
    if matches:
        best = min(m.percent_chaos for m in matches)
        clean = [m for m in matches if m.percent_chaos <= best + 1e-9]
        near = [m for m in matches if m.percent_chaos <= best + 1.0]
        if any(m.encoding == "cp1252" or "cp1252" in m.could_be_from_charset for m in near):
            return "cp1252"
        enc = clean[0].encoding
        return "utf-16" if enc.startswith("utf_16") else enc.replace("_", "-")
    try:
        sample.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"


def _decode_sample(data: bytes, whole: bool, full: bytes | None = None) -> tuple[str, str]:
    """Decode the start of a text file; ``whole`` says it is the entire file;
    ``full`` (the whole file) is what the encoding is detected from."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace"), "utf-8-sig"
    if data.startswith(_UTF16_BOMS):
        return data[:len(data) - len(data) % 2].decode("utf-16", errors="replace"), "utf-16"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as exc:
        if not whole and exc.start > len(data) - 4:  # a character cut at the sample's end
            try:
                return data[:exc.start].decode("utf-8"), "utf-8"
            except UnicodeDecodeError:
                pass
    enc = detect_encoding(full if full is not None else data)
    return data.decode(enc, errors="replace"), enc


class _NotUtf8(Exception):
    """Arrow read undecodable bytes as a binary column: the file is not UTF-8."""


def _sniff_delimiter(sample: str, fmt: str) -> str:
    if fmt == "tsv":
        return "\t"
    lines = [ln for ln in sample.splitlines() if ln.strip()][:50]
    if len(lines) > 1 and not sample.endswith("\n"):
        lines = lines[:-1]  # the last line of a sample may be cut
    text = "\n".join(lines)
    try:
        return csv.Sniffer().sniff(text, delimiters=",;\t|").delimiter
    except csv.Error:
        first = lines[0] if lines else ""
        counts = {d: first.count(d) for d in ",;\t|"}
        best = max(counts, key=counts.get)
        if counts[best]:
            return best
        # values separated by single spaces, the same number on every line
        # (the UCI machine-learning repository's .data files)
        spaces = {ln.strip().count(" ") for ln in lines}
        if len(spaces) == 1 and spaces != {0} and not any("  " in ln.strip() for ln in lines):
            return " "
        return ","


def _missing_columns(name: str, present: list, wanted) -> None:
    if wanted is None:
        return
    missing = [c for c in wanted if c not in present]
    if missing:
        raise InputError(f"Column {_names(missing)} is not in {_q(name)}. The columns there "
                         f"are: {_names(present, limit=40)}.", field="columns",
                         column=missing[0])


def _check_header(name: str, names, lim: Limits, *, partial: bool = False) -> None:
    """Refuse a header with more than ``max_columns`` names or a name longer
    than ``max_cell_chars`` characters (``partial``: the header read so far)."""
    so_far = " (counted so far)" if partial else ""
    lim.check(f"The number of columns in {_q(name)}{so_far}", len(names), "max_columns",
              fix="Keep only the columns the audit needs.", field="file")
    for i, h in enumerate(names):
        h = str(h)
        if len(h) > lim.max_cell_chars:
            lim.check(f"The length of the name of column {i + 1} ({_q(h)}) of {_q(name)} in "
                      f"characters{so_far}", len(h), "max_cell_chars",
                      fix="Give the column a shorter name.", field="file")


def _header_record(sample: str, delim: str, whole: bool) -> tuple[list, bool, int]:
    """The first non-blank record of ``sample`` (a quoted name may span
    lines), whether it is complete, and how many non-blank records follow
    it (0 to 2)."""
    records = csv.reader(io.StringIO(sample.lstrip("\ufeff"), newline=None), delimiter=delim)
    header: list = []
    try:
        for row in records:
            if any(cell.strip() for cell in row):
                header = row
                break
    except csv.Error as exc:
        if "field limit" in str(exc):
            raise
        if not whole:
            return header, False, 0  # a quoted name cut at the end of the sample
        return header, True, 1
    following = 0
    complete = whole
    try:
        for row, _ in zip(records, range(3)):
            complete = True  # a line ended after the header
            following += bool(any(cell.strip() for cell in row))
    except csv.Error:
        following = 1
    return header, complete, min(following, 2)


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except (ValueError, OverflowError):
        return False


def first_row_is_data(header: list, sample: str, delim: str) -> str | None:
    """Why the first record of a text table looks like data rather than
    column names, or None when it reads as a header.

    It is data when at least two of its cells, and at least a fifth of
    them, are numbers (column names rarely are), and its other cells recur
    as values of their own columns further down (``State-gov`` in a
    column of employers), or there are no other cells.  A header with a
    few year-like names (``id,2019,2020,score``) stays a header: its other
    names are not values of their columns."""
    names = [str(h).strip() for h in header]
    numeric = [h for h in names if h and _is_number(h)]
    if len(names) < 2 or len(numeric) < 2 or 5 * len(numeric) < len(names):
        return None
    rows = []
    records = csv.reader(io.StringIO(sample.lstrip("\ufeff"), newline=None), delimiter=delim)
    try:
        seen_header = False
        for row in records:
            if not any(cell.strip() for cell in row):
                continue
            if not seen_header:
                seen_header = True
                continue
            if len(row) == len(names):
                rows.append([cell.strip() for cell in row])
            if len(rows) >= 500:
                break
    except csv.Error:
        pass
    text = [i for i, h in enumerate(names) if h and not _is_number(h)]
    recur = [names[i] for i in text if any(r[i] == names[i] for r in rows)]
    if text and not recur:
        return None
    shown = ", ".join(repr(v) for v in (numeric[:2] + recur[:2]))
    return (f"The first row looks like data, not column names (it holds {shown}), so "
            f"the columns are named column_1 to column_{len(names)}. If the file does have "
            "a row of column names, make it the first line.")


def text_layout(head: bytes, fmt: str) -> tuple[str, list | None, str | None]:
    """The delimiter of a text table from the start of its file, and, when
    its first row is data (:func:`first_row_is_data`), the column names to
    use and why (else None, None): the layout the in-memory reader uses,
    for an engine reading the same file."""
    sample, _ = _decode_sample(head, whole=False)
    delim = _sniff_delimiter(sample, fmt)
    try:
        header, _, _ = _header_record(sample, delim, whole=False)
    except csv.Error:
        return delim, None, None
    why = first_row_is_data(header, sample, delim)
    return delim, (headerless_names(len(header)) if why else None), why


def headerless_names(n: int) -> list:
    """The names of the columns of a table without a header row."""
    return [f"column_{i}" for i in range(1, n + 1)]


def _read_text(data: bytes, name: str, fmt: str, columns
               ) -> tuple[pd.DataFrame, str, str, dict, list]:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    lim = limits()
    size = 1 << 16
    sample, encoding = _decode_sample(data[:size], whole=len(data) <= size, full=data)
    if not sample.strip():
        raise InputError(f"{_q(name)} has no content. Choose a file with a header row and at "
                         "least one row of data.", field="file")
    delim = _sniff_delimiter(sample, fmt)
    # The header is the first non-blank record.  A header longer than the
    # sample is read in growing pieces, each checked against the limits.
    py_enc = "utf-8" if encoding == "utf-8-sig" else encoding
    while True:
        whole = len(data) <= size
        try:
            raw_header, complete, body_rows = _header_record(sample, delim, whole)
        except csv.Error:
            raise InputError(f"A column name in {_q(name)} is too long to read as CSV. Give "
                             "the columns shorter names.", field="file") from None
        _check_header(name, raw_header, lim, partial=not complete)
        if complete:
            break
        size *= 4
        head = data[:size]
        if encoding == "utf-8-sig":
            head = head[3:]
        elif encoding == "utf-16":
            head = head[:len(head) - len(head) % 2]
        sample = head.decode(py_enc, errors="replace")
    notes = []
    no_header = first_row_is_data(raw_header, sample, delim)
    if no_header:
        notes.append(f"{_q(name)}: {no_header}")
        raw_header = headerless_names(len(raw_header))
        body_rows += 1
    header = [h.strip() for h in raw_header]
    unique = dedupe_names(header)
    dups = _duplicates(header, unique)
    _missing_columns(name, unique, columns)
    if not body_rows and len(data) <= size:
        raise InputError(f"{_q(name)} has a header row but no data rows.", field="file")
    # A chosen column whose name is duplicated is read with its copies, so
    # that check_duplicates can tell whether the choice is ambiguous.
    want = None
    if columns:
        want = list(dict.fromkeys(c2 for c in columns for c2 in dups.get(c, [c])))
    # Arrow matches the raw names (with any spaces around them); with
    # duplicated names it reads every column and renames them.
    include = [raw_header[unique.index(c)] for c in want] if want and not dups else None
    multiline_header = any("\n" in h or "\r" in h for h in raw_header)

    def named(cols: list) -> list:
        cols = [str(c).strip().lstrip("\ufeff") for c in cols]
        return unique if dups and len(cols) == len(unique) else cols

    def via_arrow(enc: str) -> pd.DataFrame:
        read = pacsv.ReadOptions(encoding="utf8" if enc.startswith("utf-8") else enc,
                                 block_size=1 << 24,
                                 column_names=raw_header if no_header else None)
        parse = pacsv.ParseOptions(delimiter=delim, newlines_in_values=multiline_header)
        conv = pacsv.ConvertOptions(include_columns=include,
                                    null_values=NULL_VALUES, strings_can_be_null=True,
                                    auto_dict_encode=True)
        tbl = pacsv.read_csv(io.BytesIO(data), read_options=read, parse_options=parse,
                             convert_options=conv)
        for f in tbl.schema:
            typ = f.type.value_type if pa.types.is_dictionary(f.type) else f.type
            if pa.types.is_binary(typ) or pa.types.is_large_binary(typ):
                raise _NotUtf8(f.name)
        # Header names may carry stray spaces; normalise like the header check.
        tbl = tbl.rename_columns(named(tbl.column_names))
        if want and dups:
            tbl = tbl.select(want)
        return tbl.to_pandas()

    def via_pandas(enc: str) -> pd.DataFrame:
        # index_col=False: a trailing delimiter on data rows must not shift columns.
        df = pd.read_csv(io.BytesIO(data), sep=delim, encoding=enc, engine="c",
                         na_values=NULL_VALUES, keep_default_na=False, low_memory=False,
                         index_col=False, **({"header": None, "names": raw_header}
                                             if no_header else {}))
        df.columns = named(df.columns)
        return df[want] if want else df

    def encodings():
        tried = [encoding]
        yield encoding
        if encoding.startswith("utf-8"):
            detected = detect_encoding(data)  # the file is not all UTF-8
            tried.append(detected)
            yield detected
        for enc in ("cp1252", "latin-1"):
            if enc not in tried:
                tried.append(enc)
                yield enc

    last_exc: Exception | None = None
    for enc in encodings():
        for reader in (via_arrow, via_pandas):
            try:
                return reader(enc), enc, delim, dups, notes
            except InputError:
                raise
            except _NotUtf8:
                break  # not UTF-8 after all: try the next encoding
            except (pa.ArrowException, UnicodeDecodeError, ValueError, KeyError,
                    LookupError, pd.errors.ParserError) as exc:
                last_exc = exc
    detail = str(last_exc).splitlines()[0][:200] if last_exc else "unknown problem"
    raise InputError(f"{_q(name)} could not be read as a delimited text table ({detail}). "
                     "Check that it is a CSV/TSV export with one header row.", field="file")


def _read_parquet(data: bytes, name: str, columns) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.ParquetFile(io.BytesIO(data)).schema_arrow
        # Text columns come back dictionary-encoded (pandas categoricals): no
        # re-hashing of millions of strings later.
        text = [f.name for f in schema if pa.types.is_string(f.type)
                or pa.types.is_large_string(f.type)]
        pf = pq.ParquetFile(io.BytesIO(data), read_dictionary=text)
        present = schema.names
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{_q(name)} is not a readable Parquet file ({str(exc)[:150]}). "
                         "Export it again or use CSV.", field="file") from None
    _check_header(name, present, limits())
    _missing_columns(name, present, columns)
    try:
        tbl = pf.read(columns=list(columns) if columns else None)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{_q(name)} is a damaged Parquet file ({str(exc)[:150]}). "
                         "Export it again or use CSV.", field="file") from None
    return tbl.to_pandas()


#: Reading a workbook costs about this many bytes of memory per byte of its
#: XML (a shared string table peaks at about twice its size while it is
#: parsed; the cells kept as values and then as a table, about three times).
_XML_COST = 4
#: ... and about this many per row element of a sheet: the XML parser keeps
#: every row element it has read until the sheet ends.
_ROW_COST = 100
#: The last row of an Excel sheet.
EXCEL_ROWS = 1_048_576
_EXCEL_ERRORS = ["#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A",
                 "#GETTING_DATA"]
_CHUNK = 1 << 20


def _column_letters(i: int) -> str:
    """Excel's name of the column at 1-based position ``i``: 1 -> A, 27 -> AA."""
    s = ""
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(65 + r) + s
    return s


class _Oversized(Exception):
    """A zip member unpacks to more than the size it declares."""


def _unpacked(zf: zipfile.ZipFile, data: bytes, info: zipfile.ZipInfo):
    """The content of a zip member in chunks of at most 1 MiB, never more
    than the size it declares: :class:`_Oversized` when there is more."""
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        # zipfile itself stops at the declared size and checks the CRC.
        with zf.open(info) as fh:
            while chunk := fh.read(_CHUNK):
                yield chunk
        return
    off = info.header_offset
    if data[off:off + 4] != b"PK\x03\x04":
        raise zipfile.BadZipFile(f"no local header for {info.filename!r}")
    n, m = struct.unpack_from("<HH", data, off + 26)
    raw = memoryview(data)[off + 30 + n + m:off + 30 + n + m + info.compress_size]
    if info.compress_type == zipfile.ZIP_STORED:
        if len(raw) > info.file_size:
            raise _Oversized(info)
        for i in range(0, len(raw), _CHUNK):
            yield bytes(raw[i:i + _CHUNK])
        return
    d = zlib.decompressobj(-zlib.MAX_WBITS)
    left, pos = info.file_size, 0
    while True:
        if d.unconsumed_tail:
            chunk = d.unconsumed_tail
        else:
            chunk = raw[pos:pos + (1 << 16)]
            pos += len(chunk)
        out = d.decompress(chunk, _CHUNK)
        if len(out) > left:
            raise _Oversized(info)
        left -= len(out)
        if out:
            yield out
        if d.eof or (not out and not chunk):
            return


class _LongRuns:
    """Finds a run of XML without a tag (text or one tag's attributes) of
    more than ``limit`` bytes, chunk by chunk: only a few probes a chunk
    (every ``limit // 2`` bytes), so it costs next to nothing."""

    def __init__(self, limit: int):
        self.limit = limit
        self.run = 0  # the run that the chunks so far end with
        self.longest = 0

    def feed(self, out: bytes) -> None:
        first = out.find(b"<")
        if first < 0:
            self.run += len(out)
            self.longest = max(self.longest, self.run)
            return
        self.longest = max(self.longest, self.run + first)
        step = max(1, self.limit // 2)
        for p in range(first + 1, len(out), step):
            lo = out.rfind(b"<", 0, p)
            hi = out.find(b"<", p)
            self.longest = max(self.longest, (len(out) if hi < 0 else hi) - lo - 1)
        self.run = len(out) - 1 - out.rfind(b"<")


def _inspect_zip(data: bytes, name: str, lim: Limits) -> None:
    """Check a workbook as a zip before any part of it is parsed: the sizes
    its parts declare against the memory budget, that no part unpacks to
    more than it declares, that no sheet has more row elements than an
    Excel sheet has rows, and that no text is far longer than a cell holds
    (a character takes at most 10 bytes of XML, ``&#x10FFFF;``: a text of
    more bytes than 10 times ``max_cell_chars`` is over the limit)."""
    zf = zipfile.ZipFile(io.BytesIO(data))
    infos = [i for i in zf.infolist() if not i.is_dir()]
    declared = sum(i.file_size for i in infos)
    fix = (f"Its parts unpack to {declared:,} bytes of XML, far more than a table of this "
           "size needs; save it again in Excel, or export the data as CSV.")
    lim.check_memory(f"Reading the workbook {_q(name)}", _XML_COST * declared, fix=fix,
                     field="file")
    rows = 0
    for info in infos:
        if info.flag_bits & 0x1:
            raise InputError(f"{_q(name)} is encrypted. Save it without a password, or "
                             "export the data as CSV.", field="file")
        plain = prefixed = 0
        carry = b""
        runs = _LongRuns(10 * lim.max_cell_chars)
        try:
            for out in _unpacked(zf, data, info):
                buf = carry + out
                plain += buf.count(b"<row")
                prefixed += buf.count(b":row")  # <x:row> and </x:row>
                carry = out[-3:]
                runs.feed(out)
                if runs.longest > runs.limit:
                    raise InputError(
                        f"{_q(name)} holds a text of at least {runs.longest:,} bytes (in its "
                        f"part {_q(info.filename)}), far over the limit of "
                        f"{lim.max_cell_chars:,} characters in a cell (Excel's own limit is "
                        "32,767). Shorten the text, or export the data as CSV. If the machine "
                        "can take it, raise the limit with the environment variable "
                        "FAIRNESS_AUDIT_MAX_CELL_CHARS.", field="file")
        except _Oversized:
            raise InputError(f"{_q(name)} is damaged or forged: its part {_q(info.filename)} "
                             f"unpacks to more than the {info.file_size:,} bytes it declares. "
                             "Save the workbook again in Excel, or export the data as CSV.",
                             field="file") from None
        except zlib.error as exc:
            raise zipfile.BadZipFile(f"{info.filename}: {exc}") from None
        if plain > EXCEL_ROWS + 1 or prefixed > 2 * EXCEL_ROWS + 2:
            raise InputError(f"{_q(name)} has a sheet with more than {EXCEL_ROWS:,} rows (part "
                             f"{_q(info.filename)}), more than an Excel sheet can have: it is "
                             "damaged or was not written by a spreadsheet program. Save it "
                             "again in Excel, or export the data as CSV.", field="file")
        rows += plain + prefixed
    lim.check_memory(f"Reading the workbook {_q(name)}",
                     _XML_COST * declared + _ROW_COST * rows, fix=fix, field="file")


def _header_names(cells) -> list:
    """Column names from a sheet's first row, as pandas names them: an
    empty cell is ``Unnamed: i``, a whole number has no decimals."""
    out = []
    for i, v in enumerate(cells):
        if v is None or (isinstance(v, str) and not v.strip()):
            out.append(f"Unnamed: {i}")
        elif isinstance(v, float) and v.is_integer():
            out.append(str(int(v)))
        else:
            out.append(str(v).strip())
    return out


def _read_sheet(ws, name: str, columns, lim: Limits) -> tuple[pd.DataFrame, dict]:
    """Read a read-only worksheet row by row, checking the limits on every
    row; the first non-blank row is the header."""
    from pandas.io.parsers import TextParser

    sheet = f"the sheet {_q(ws.title)} of {_q(name)}"
    # A sheet may claim more cells than it has, or fewer (the rows beyond
    # the claim would be cut): count the cells that are there.
    ws.reset_dimensions()
    max_cells, max_cols, max_chars = lim.max_xlsx_cells, lim.max_columns, lim.max_cell_chars
    n = span = 0
    header = unique = idx = None
    dups: dict = {}
    body: list = []
    for row in ws.iter_rows(values_only=True):
        n += 1
        w = len(row)
        if w > span:
            span = w
        if n > EXCEL_ROWS:
            raise InputError(f"{sheet[0].upper()}{sheet[1:]} has a row beyond row "
                             f"{EXCEL_ROWS:,}, the last row of an Excel sheet: it is damaged or "
                             "was not written by a spreadsheet program. Save it again in Excel, "
                             "or export the data as CSV.", field="file")
        if n * span > max_cells:
            lim.check(f"The number of cells that {sheet} spans (A1 to "
                      f"{_column_letters(span)}{n}, counted so far)", n * span,
                      "max_xlsx_cells", fix="A cell far from the table (even an empty one "
                      "with a format) makes a sheet span every row and column up to it: delete "
                      "the rows and columns beyond the table in Excel, or export the table "
                      "as CSV.", field="file")
        k = w
        while k and (row[k - 1] is None or row[k - 1] == ""):
            k -= 1
        if not k:
            continue  # a blank row
        if header is None:
            header = _header_names(row[:k])
            _check_header(name, header, lim)
            unique = dedupe_names(header)
            dups = _duplicates(header, unique)
            _missing_columns(name, unique, columns)
            if columns:
                want = list(dict.fromkeys(c2 for c in columns for c2 in dups.get(c, [c])))
                idx = [unique.index(c) for c in want]
                unique = want
            continue
        if k > max_cols:
            lim.check(f"The number of columns in row {n} of {sheet}", k, "max_columns",
                      fix="Delete the cells beyond the table in Excel, or export the table "
                      "as CSV.", field="file")
        if any(v.__class__ is str and len(v) > max_chars for v in row):
            j = next(j for j, v in enumerate(row) if isinstance(v, str) and len(v) > max_chars)
            names = header + [f"Unnamed: {i}" for i in range(len(header), j + 1)]
            try:
                lim.check(f"The length of the text in column {_q(names[j])}, row {n} (cell "
                          f"{_column_letters(j + 1)}{n}) of {sheet} in characters",
                          len(row[j]), "max_cell_chars", fix="Excel itself holds at most "
                          "32,767 characters in a cell; shorten the text.", field="file")
            except InputError as err:
                err.column = names[j]
                raise
        if idx is None:
            body.append(row[:k])
        else:
            body.append(tuple(row[i] if i < k else None for i in idx))
    if header is None:
        raise InputError(f"{_q(name)} has no content: {sheet} is empty. Choose a file with a "
                         "header row and at least one row of data.", field="file")
    if idx is None:
        width = max([len(header)] + [len(r) for r in body])
        if width > len(header):  # values beyond the header's last name
            unique = dedupe_names(header + [f"Unnamed: {i}"
                                            for i in range(len(header), width)])
        body = [r if len(r) == width else r + (None,) * (width - len(r)) for r in body]
    if not body:
        return pd.DataFrame(columns=unique), dups
    df = TextParser(body, header=None, names=unique, na_values=NULL_VALUES + _EXCEL_ERRORS,
                    keep_default_na=False, skip_blank_lines=False).read()
    for c in df.columns:  # whole numbers stored as decimals read as integers, as pandas does
        s = df[c]
        if s.dtype.kind == "f" and len(s) and not s.isna().any() \
                and (s.abs() < 2 ** 53).all() and (s == s.round()).all():
            df[c] = s.astype("int64")
    return df, dups


def _read_xlsx(data: bytes, name: str, columns) -> tuple[pd.DataFrame, dict]:
    lim = limits()
    try:
        _inspect_zip(data, name, lim)
        from openpyxl import load_workbook

        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True, keep_links=False)
        try:
            if not wb.worksheets:
                raise InputError(f"{_q(name)} has no worksheet. Choose a workbook with the "
                                 "table on its first sheet.", field="file")
            return _read_sheet(wb.worksheets[0], name, columns, lim)
        finally:
            wb.close()
    except InputError:
        raise
    except Exception as exc:  # openpyxl raises many unrelated types for a bad workbook
        raise InputError(f"{_q(name)} could not be read as an Excel workbook "
                         f"({type(exc).__name__}: {str(exc)[:150]}). Save it again as .xlsx "
                         "or export it as CSV.", field="file") from None


def frame_sha256(df: pd.DataFrame, columns=None, encodings: dict | None = None) -> str:
    """The SHA-256 of a table's content: the names, types and values of its
    ``columns`` (all of them when None), in row order; the index is left out.

    Equal tables give equal digests and a change of any value, name, type
    or row order changes the digest.  What is hashed is each column's raw
    content, not its text: the bytes of a numpy column (a float's NaN and
    -0.0 written one way), the distinct values and each row's code of an
    Arrow string column (:func:`fairness_core.prepare.arrow_codes`, the
    same however its rows are split into chunks), the categories and codes
    of a categorical, and pandas' hash of each value for any other column.
    The Arrow columns encoded here are kept in ``encodings`` (column ->
    codes and distinct values) for :func:`fairness_core.prepare.prepare`,
    and ones found there are not encoded again.
    """
    sub = df if columns is None else df[list(columns)]
    repeated = set(sub.columns[sub.columns.duplicated()])
    h = hashlib.sha256(b"fairness-audit table 1\0")
    _hash_part(h, str(len(sub)).encode())

    def column_digest(j):
        column = hashlib.sha256()
        name = sub.columns[j]
        _hash_column(column, sub.iloc[:, j], None if name in repeated else encodings, name)
        return column.digest()

    # each column on its own (text columns are encoded, every column hashed)
    for name, digest in zip(sub.columns, thread_map(column_digest, range(sub.shape[1]))):
        _hash_part(h, repr(name).encode("utf-8", "surrogatepass"))
        h.update(digest)
    return h.hexdigest()


def _hash_part(h, data) -> None:
    """Add one part to a digest, preceded by its length so that parts cannot
    run into each other."""
    data = memoryview(data).cast("B")
    h.update(struct.pack("<Q", data.nbytes))
    h.update(data)


def _hash_column(h, series: pd.Series, encodings: dict | None, key) -> None:
    import numpy as np

    from .prepare import arrow_encoded, is_arrow

    dtype = series.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "biufcmM" and dtype.itemsize <= 16 \
            and not (dtype.kind == "f" and dtype.itemsize > 8):
        values = np.ascontiguousarray(series.to_numpy())
        if dtype.kind in "fc":
            values = _canonical_floats(values)
        _hash_part(h, f"numpy {dtype.str}".encode())
        _hash_part(h, values.view(np.uint8))
        return
    if isinstance(dtype, pd.CategoricalDtype):
        _hash_part(h, f"categorical ordered={bool(dtype.ordered)}".encode())
        _hash_column(h, pd.Series(dtype.categories), None, None)
        _hash_part(h, np.ascontiguousarray(series.cat.codes.to_numpy()).view(np.uint8))
        return
    if is_arrow(dtype) and _is_arrow_text(dtype):
        codes, dictionary = arrow_encoded(series, encodings, key)
        if dictionary.null_count == 0:
            _hash_part(h, f"arrow text {dtype}".encode())
            _hash_text(h, dictionary)
            small = np.int8 if len(dictionary) < 128 else \
                np.int16 if len(dictionary) < 1 << 15 else np.int32
            _hash_part(h, codes.astype(small).view(np.uint8))
            return
    _hash_part(h, f"pandas {dtype}".encode())
    _hash_part(h, np.ascontiguousarray(
        pd.util.hash_pandas_object(series, index=False).to_numpy()).view(np.uint8))


def _canonical_floats(values):
    """Floats (or complex numbers) with every NaN and every -0.0 written the
    same way, as pandas' own hashing does; the array itself when it has none."""
    import numpy as np

    parts = values.view(f"f{values.dtype.itemsize // 2}") if values.dtype.kind == "c" \
        else values
    if not len(parts):
        return values
    # Two passes without a temporary array: a NaN makes the maximum NaN, and
    # -0.0 is the smallest value its bits can stand for as a signed integer.
    bits = parts.view(f"i{parts.dtype.itemsize}")
    has_nan = np.isnan(parts.max())
    has_negative_zero = bits.min() == np.iinfo(bits.dtype).min
    if not has_nan and not has_negative_zero:
        return values
    parts = parts.copy()
    if has_nan:
        parts[np.isnan(parts)] = np.nan
    if has_negative_zero:
        parts[parts == 0] = 0.0
    return parts


def _is_arrow_text(dtype) -> bool:
    import pyarrow as pa

    t = dtype.pyarrow_dtype if isinstance(dtype, pd.ArrowDtype) else pa.large_string()
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def _hash_text(h, values) -> None:
    """Add an Arrow array of text without missing values: its lengths and bytes,
    whatever its string type, offset or chunk it came from."""
    import numpy as np
    import pyarrow as pa

    if not pa.types.is_large_string(values.type):
        values = values.cast(pa.large_string())
    if not len(values):
        _hash_part(h, b"")
        _hash_part(h, b"")
        return
    _, offsets, data = values.buffers()
    ends = np.frombuffer(offsets, dtype=np.int64, count=len(values) + 1,
                         offset=values.offset * 8)
    start, stop = int(ends[0]), int(ends[-1])
    _hash_part(h, np.diff(ends))
    _hash_part(h, memoryview(data)[start:stop] if data is not None else b"")


def read_table(source, *, name: str | None = None, columns=None, fmt: str | None = None
               ) -> tuple[pd.DataFrame, TableInfo]:
    """Read a table from a path or from bytes.

    Parameters
    ----------
    source : str, os.PathLike, bytes or binary file object
        The file.  Uploaded data should be passed as bytes: it is never
        written to disk.
    name : str, optional
        The file's name (its extension picks the format); defaults to the
        path's name.
    columns : list of str, optional
        Read only these columns; a missing one raises an InputError that
        lists the columns there are.
    fmt : {"csv", "tsv", "parquet", "xlsx"}, optional
        Force a format instead of the extension.

    Returns
    -------
    (DataFrame, TableInfo)

    Notes
    -----
    This is the plain library call: it reads in the calling process, with
    the readers' own up-front limits but no cap on the memory the parse
    takes.  The dashboard and the command line read through
    :func:`fairness_core.guard.read_guarded`, which runs this function in a
    child process capped at the memory limit (``FAIRNESS_AUDIT_MEMORY``).
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        name = name or path.name
        if not path.exists():
            raise InputError(f"There is no file at {str(path)!r}. Check the path.",
                             field="file")
        if path.is_dir():
            raise InputError(f"{str(path)!r} is a folder, not a file.", field="file")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(f"{str(path)!r} could not be opened ({exc.strerror}).",
                             field="file") from None
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        name = name or "upload"
    elif hasattr(source, "read"):
        data = source.read()
        name = name or getattr(source, "name", "upload")
    else:
        raise TypeError(f"cannot read a table from {type(source).__name__}")
    if fmt is not None and fmt not in FORMATS:
        raise InputError(f"Unknown file format {_q(fmt)}; use one of {_names(FORMATS)}.",
                         field="file")
    if not data or data.isspace():
        raise InputError(f"{_q(name)} is empty. Choose a file with a header row and at least "
                         "one row of data.", field="file")
    fmt = _check_kind(name, fmt, data[:8192])
    # hashlib releases the GIL on large inputs: hash while parsing.
    from concurrent.futures import ThreadPoolExecutor
    pool = ThreadPoolExecutor(max_workers=1)
    digest = pool.submit(lambda: hashlib.sha256(data).hexdigest())
    pool.shutdown(wait=False)
    encoding = delimiter = None
    dups: dict = {}
    notes: list = []
    if fmt in ("csv", "tsv"):
        df, encoding, delimiter, dups, notes = _read_text(data, name, fmt, columns)
    elif fmt == "parquet":
        df = _read_parquet(data, name, columns)
    else:
        df, dups = _read_xlsx(data, name, columns)
    if len(df) == 0:
        raise InputError(f"{_q(name)} has a header row but no data rows.", field="file")
    info = TableInfo(name=name, format=fmt, sha256=digest.result(),
                     size_bytes=len(data), columns=[str(c) for c in df.columns],
                     encoding=encoding, delimiter=delimiter, duplicates=dups,
                     warnings=notes + ([_duplicate_warning(dups)] if dups else []))
    check_duplicates(df, info, columns)
    if columns and dups:  # the copies were read only for that check
        df = df[list(dict.fromkeys(columns))]
    return df, info

