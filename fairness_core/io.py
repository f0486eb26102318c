"""Reading user files safely into a table.

CSV (delimiter sniffed; UTF-8 with or without BOM, else the encoding
detected by charset-normalizer, preferring Windows-1252 where it reads the
bytes the same), TSV, Parquet and XLSX, from a path or from bytes (an
upload).  Only the columns an audit needs are read.  Columns that share a
name get unique names the way pandas gives them (``x``, ``x.1``).  Every
problem becomes an :class:`InputError` that says what is wrong with the
file and how to fix it.
"""
from __future__ import annotations

import csv
import hashlib
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .errors import InputError, quote_list

FORMATS = ("csv", "tsv", "parquet", "xlsx")
_EXT = {".csv": "csv", ".txt": "csv", ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet",
        ".pq": "parquet", ".xlsx": "xlsx", ".xlsm": "xlsx"}
_NAMES = {"csv": "CSV", "tsv": "TSV", "parquet": "Parquet", "xlsx": "Excel (.xlsx)"}
NULL_VALUES = ["", "#N/A", "#N/A N/A", "#NA", "-NaN", "-nan", "<NA>", "N/A", "NA", "NULL",
               "NaN", "n/a", "nan", "null", "None"]


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
    shown = "; ".join(f"{h!r} read as {quote_list(us)}" for h, us in list(dups.items())[:6])
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
        raise InputError(f"The column {col!r} is ambiguous: the file has {len(copies)} "
                         f"columns with that name and their values differ. They are read as "
                         f"{quote_list(copies)}, in the order of the header. Rename them in "
                         f"the file, or choose {copies[1]!r} for the second one.",
                         field="columns", column=col)


def _sniff_kind(head: bytes) -> str:
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"PK\x03\x04"):
        return "xlsx"
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return "xls"
    if b"\x00" in head[:4096]:
        return "binary"
    return "text"


def _check_kind(name: str, fmt: str | None, head: bytes) -> str:
    """Decide the format from the extension and the content; refuse a mismatch."""
    kind = _sniff_kind(head)
    ext = Path(name).suffix.lower()
    if ext == ".xls" or kind == "xls":
        raise InputError(f"{name!r} is an old Excel 97-2003 (.xls) workbook, which is not "
                         "supported. Save it as .xlsx or .csv and try again.", field="file")
    if fmt is None:
        fmt = _EXT.get(ext)
    if fmt is None:
        # Unknown or missing extension: trust the content.
        if kind in ("parquet", "xlsx"):
            return kind
        if kind == "binary":
            raise InputError(f"{name!r} is not a table this tool can read. Use CSV, TSV, "
                             "Parquet or XLSX.", field="file")
        return "csv"
    expected = {"csv": "text", "tsv": "text", "parquet": "parquet", "xlsx": "xlsx"}[fmt]
    if kind != expected:
        looks = {"parquet": "a Parquet file", "xlsx": "an Excel workbook or another zip file",
                 "text": "a text (CSV) file", "binary": "a binary file"}[kind]
        raise InputError(f"{name!r} is named as {_NAMES[fmt]} but its content looks like "
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
    candidates.  Latin-1 is the last resort (it decodes any bytes).
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
        if any(m.encoding == "cp1252" or "cp1252" in m.could_be_from_charset for m in clean):
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
        return best if counts[best] else ","


def _missing_columns(name: str, present: list, wanted) -> None:
    if wanted is None:
        return
    missing = [c for c in wanted if c not in present]
    if missing:
        raise InputError(f"Column {quote_list(missing)} is not in {name!r}. The columns there "
                         f"are: {quote_list(present, limit=40)}.", field="columns",
                         column=missing[0])


def _read_text(data: bytes, name: str, fmt: str, columns
               ) -> tuple[pd.DataFrame, str, str, dict]:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    sample, encoding = _decode_sample(data[: 1 << 16], whole=len(data) <= (1 << 16),
                                      full=data)
    if not sample.strip():
        raise InputError(f"{name!r} has no content. Choose a file with a header row and at "
                         "least one row of data.", field="file")
    delim = _sniff_delimiter(sample, fmt)
    # The header is the first non-blank record (a quoted name may span lines).
    records = csv.reader(io.StringIO(sample.lstrip("\ufeff"), newline=None), delimiter=delim)
    raw_header: list = []
    try:
        for row in records:
            if any(cell.strip() for cell in row):
                raw_header = row
                break
        body_rows = sum(1 for row, _ in zip(records, range(2))
                        if any(cell.strip() for cell in row))
    except csv.Error:
        body_rows = 1
    header = [h.strip() for h in raw_header]
    unique = dedupe_names(header)
    dups = _duplicates(header, unique)
    _missing_columns(name, unique, columns)
    if not body_rows and len(data) <= (1 << 16):
        raise InputError(f"{name!r} has a header row but no data rows.", field="file")
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
                                 block_size=1 << 24)
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
                         skipinitialspace=True, index_col=False)
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
                return reader(enc), enc, delim, dups
            except InputError:
                raise
            except _NotUtf8:
                break  # not UTF-8 after all: try the next encoding
            except (pa.ArrowException, UnicodeDecodeError, ValueError, KeyError,
                    LookupError, pd.errors.ParserError) as exc:
                last_exc = exc
    detail = str(last_exc).splitlines()[0][:200] if last_exc else "unknown problem"
    raise InputError(f"{name!r} could not be read as a delimited text table ({detail}). "
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
        raise InputError(f"{name!r} is not a readable Parquet file ({str(exc)[:150]}). "
                         "Export it again or use CSV.", field="file") from None
    _missing_columns(name, present, columns)
    try:
        tbl = pf.read(columns=list(columns) if columns else None)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{name!r} is a damaged Parquet file ({str(exc)[:150]}). "
                         "Export it again or use CSV.", field="file") from None
    return tbl.to_pandas()


def _read_xlsx(data: bytes, name: str, columns) -> pd.DataFrame:
    try:
        head = pd.read_excel(io.BytesIO(data), engine="openpyxl", nrows=0)
        present = [str(c).strip() for c in head.columns]
        _missing_columns(name, present, columns)
        df = pd.read_excel(io.BytesIO(data), engine="openpyxl", na_values=NULL_VALUES,
                           keep_default_na=False)
    except InputError:
        raise
    except Exception as exc:  # openpyxl raises many unrelated types for a bad workbook
        raise InputError(f"{name!r} could not be read as an Excel workbook "
                         f"({type(exc).__name__}: {str(exc)[:150]}). Save it again as .xlsx "
                         "or export it as CSV.", field="file") from None
    df.columns = [str(c).strip() for c in df.columns]
    return df[list(columns)] if columns else df


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
        raise InputError(f"Unknown file format {fmt!r}; use one of {quote_list(FORMATS)}.",
                         field="file")
    if not data or not data.strip():
        raise InputError(f"{name!r} is empty. Choose a file with a header row and at least "
                         "one row of data.", field="file")
    fmt = _check_kind(name, fmt, data[:8192])
    # hashlib releases the GIL on large inputs: hash while parsing.
    from concurrent.futures import ThreadPoolExecutor
    pool = ThreadPoolExecutor(max_workers=1)
    digest = pool.submit(lambda: hashlib.sha256(data).hexdigest())
    pool.shutdown(wait=False)
    encoding = delimiter = None
    dups: dict = {}
    if fmt in ("csv", "tsv"):
        df, encoding, delimiter, dups = _read_text(data, name, fmt, columns)
    elif fmt == "parquet":
        df = _read_parquet(data, name, columns)
    else:
        df = _read_xlsx(data, name, columns)
    if len(df) == 0:
        raise InputError(f"{name!r} has a header row but no data rows.", field="file")
    info = TableInfo(name=name, format=fmt, sha256=digest.result(),
                     size_bytes=len(data), columns=[str(c) for c in df.columns],
                     encoding=encoding, delimiter=delimiter, duplicates=dups,
                     warnings=[_duplicate_warning(dups)] if dups else [])
    check_duplicates(df, info, columns)
    if columns and dups:  # the copies were read only for that check
        df = df[list(dict.fromkeys(columns))]
    return df, info

