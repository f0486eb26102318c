"""Reading user files safely into a table.

CSV (delimiter sniffed; UTF-8 with or without BOM, latin-1 fallback), TSV,
Parquet and XLSX, from a path or from bytes (an upload).  Only the columns
an audit needs are read.  Every problem becomes an :class:`InputError` that
says what is wrong with the file and how to fix it.
"""
from __future__ import annotations

import csv
import hashlib
import io
import os
from dataclasses import dataclass
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

    def to_dict(self) -> dict:
        return dict(self.__dict__)


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


def _decode_sample(data: bytes, whole: bool) -> tuple[str, str]:
    """Decode the start of a text file; ``whole`` says it is the entire file."""
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
        return data.decode("latin-1"), "latin-1"


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


def _read_text(data: bytes, name: str, fmt: str, columns) -> tuple[pd.DataFrame, str, str]:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    sample, encoding = _decode_sample(data[: 1 << 16], whole=len(data) <= (1 << 16))
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
    if len(set(header)) != len(header):
        dup = sorted({h for h in header if header.count(h) > 1})
        raise InputError(f"{name!r} has more than one column named {quote_list(dup)}. Give "
                         "each column a unique name.", field="file")
    _missing_columns(name, header, columns)
    if not body_rows and len(data) <= (1 << 16):
        raise InputError(f"{name!r} has a header row but no data rows.", field="file")
    # Arrow matches the raw names (with any spaces around them).
    include = [raw_header[header.index(c)] for c in columns] if columns else None
    multiline_header = any("\n" in h or "\r" in h for h in raw_header)

    def via_arrow(enc: str) -> pd.DataFrame:
        read = pacsv.ReadOptions(encoding="utf8" if enc.startswith("utf-8") else enc,
                                 block_size=1 << 24)
        parse = pacsv.ParseOptions(delimiter=delim, newlines_in_values=multiline_header)
        conv = pacsv.ConvertOptions(include_columns=include,
                                    null_values=NULL_VALUES, strings_can_be_null=True,
                                    auto_dict_encode=True)
        tbl = pacsv.read_csv(io.BytesIO(data), read_options=read, parse_options=parse,
                             convert_options=conv)
        for field in tbl.schema:
            typ = field.type.value_type if pa.types.is_dictionary(field.type) else field.type
            if pa.types.is_binary(typ) or pa.types.is_large_binary(typ):
                raise _NotUtf8(field.name)
        # Header names may carry stray spaces; normalise like the header check.
        tbl = tbl.rename_columns([c.strip().lstrip("\ufeff") for c in tbl.column_names])
        return tbl.to_pandas()

    def via_pandas(enc: str) -> pd.DataFrame:
        # index_col=False: a trailing delimiter on data rows must not shift columns.
        df = pd.read_csv(io.BytesIO(data), sep=delim, encoding=enc, engine="c",
                         na_values=NULL_VALUES, keep_default_na=False, low_memory=False,
                         skipinitialspace=True, index_col=False)
        df.columns = [str(c).strip().lstrip("\ufeff") for c in df.columns]
        return df[list(columns)] if columns else df

    encodings = [encoding] + (["latin-1"] if encoding != "latin-1" else [])
    last_exc: Exception | None = None
    for enc in encodings:
        for reader in (via_arrow, via_pandas):
            try:
                return reader(enc), enc, delim
            except InputError:
                raise
            except _NotUtf8:
                break  # not UTF-8 after all: try the next encoding
            except (pa.ArrowException, UnicodeDecodeError, ValueError, KeyError,
                    pd.errors.ParserError) as exc:
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
    if fmt in ("csv", "tsv"):
        df, encoding, delimiter = _read_text(data, name, fmt, columns)
    elif fmt == "parquet":
        df = _read_parquet(data, name, columns)
    else:
        df = _read_xlsx(data, name, columns)
    if len(df) == 0:
        raise InputError(f"{name!r} has a header row but no data rows.", field="file")
    info = TableInfo(name=name, format=fmt, sha256=digest.result(),
                     size_bytes=len(data), columns=[str(c) for c in df.columns],
                     encoding=encoding, delimiter=delimiter)
    return df, info

