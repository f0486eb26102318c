"""Data sources listed by the server's administrator.

The dashboard (and any other front end) never takes a path or a database
URL from its user: the administrator lists named sources, and a user picks
a name.  A source is a Parquet file, folder or glob, or a CSV file, counted
by DuckDB (or Spark), or a table in a database (PostgreSQL, a DuckDB file)
counted by the database itself.  Only count records leave the engine
(:func:`fairness_core.engine.prepare_from_engine`).

The list is a mapping, as TOML gives it (the dashboard reads the
``[sources]`` section of its ``secrets.toml``; :func:`read_sources_file`
reads the same section from any TOML file)::

    [sources.loans_2026]
    path = "/data/decisions/2026/"      # Parquet file, folder or glob, or CSV
    engine = "duckdb"                   # optional: duckdb (default) or spark

    [sources.lending_db]
    url = "postgresql://auditor:secret@db.example.org/lending"
    table = "decisions"

An entry that is malformed (neither or both of ``path`` and ``url``, an
unknown key or engine, a URL without ``table``) is reported once with its
name and left out; the other sources work.  A path that does not exist or
a database that cannot be reached is found when the source is opened, and
raised as one :class:`~fairness_core.errors.InputError` naming the source
(never its URL, which may hold a password).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .errors import InputError, quote_list

_KEYS = {"path", "url", "table", "engine", "description"}
#: Rows at the start of a source whose distinct values feed the guesses.
SAMPLE_ROWS = 100_000
#: Distinct values fetched per column for the guesses (one more than the
#: most groups an attribute may have, so that "too many" is seen).
SAMPLE_VALUES = 51


@dataclass(frozen=True)
class Source:
    """One listed source: ``path`` (files) or ``url`` and ``table``."""

    name: str
    path: str | None = None
    url: str | None = None
    table: str | None = None
    engine: str = "duckdb"
    description: str = ""

    @property
    def kind(self) -> str:
        """What the source is, in words that never show its URL."""
        if self.url:
            return f"{self.url.split('://', 1)[0]} table {self.table!r}"
        return f"files counted by {self.engine}"

    def key(self) -> str:
        """A fingerprint of the entry (its settings change: a new key)."""
        import hashlib

        return hashlib.sha256(repr((self.name, self.path, self.url, self.table,
                                    self.engine)).encode()).hexdigest()[:16]


def parse_sources(config) -> tuple[dict, dict]:
    """The sources of a ``[sources]`` mapping (name -> entry).

    Returns
    -------
    sources : dict name -> Source
        The well-formed entries, in their order.
    problems : dict name -> str
        The malformed ones, each with what is wrong and how to fix it.
    """
    from .engine import ENGINES

    sources, problems = {}, {}
    if config is None:
        return sources, problems
    if not hasattr(config, "items"):
        return sources, {"[sources]": "The [sources] section must be a table of named "
                                      "sources, such as [sources.loans] with path = ...."}
    for name, entry in config.items():
        name = str(name)
        if not hasattr(entry, "get"):
            problems[name] = (f"The source {name!r} must be a table with a path, or a url "
                              "and a table.")
            continue
        entry = dict(entry)
        unknown = sorted(set(entry) - _KEYS)
        path, url, table = entry.get("path"), entry.get("url"), entry.get("table")
        engine = entry.get("engine", "duckdb")
        if unknown:
            problems[name] = (f"The source {name!r} has unknown setting(s) "
                              f"{quote_list(unknown)}; use {quote_list(sorted(_KEYS))}.")
        elif bool(path) == bool(url):
            problems[name] = (f"The source {name!r} needs either a path (Parquet or CSV "
                              "files) or a url with a table (a database), not "
                              f"{'both' if path else 'neither'}.")
        elif not all(isinstance(v, str) for v in (path or url, table or "", engine)):
            problems[name] = f"The source {name!r} must give its settings as text."
        elif url and "://" not in url:
            problems[name] = (f"The url of the source {name!r} is not a database URL such "
                              "as postgresql://user@host/db or duckdb:///path/file.duckdb.")
        elif url and not table:
            problems[name] = f"The source {name!r} has a url but no table: add table = ...."
        elif path and table:
            problems[name] = (f"The source {name!r} has a path and a table: a table belongs "
                              "with a url.")
        elif engine not in ENGINES:
            problems[name] = (f"The source {name!r} asks for the engine {engine!r}; use "
                              f"{quote_list(ENGINES)}.")
        elif url and "engine" in entry:
            problems[name] = (f"The source {name!r} is a database table: the database "
                              "counts it, so leave out engine.")
        else:
            sources[name] = Source(name=name, path=path, url=url, table=table, engine=engine,
                                   description=str(entry.get("description", "")))
    return sources, problems


def read_sources_file(path) -> tuple[dict, dict]:
    """The ``[sources]`` section of a TOML file (see :func:`parse_sources`)."""
    import tomllib

    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except OSError as exc:
        raise InputError(f"The sources file {str(path)!r} cannot be read "
                         f"({exc.strerror}).", field="sources") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"The sources file {str(path)!r} is not valid TOML ({exc}).",
                         field="sources") from None
    return parse_sources(doc.get("sources"))


def get_source(sources: dict, name: str) -> Source:
    """The listed source called ``name``; anything else is refused (a path,
    a URL or an unknown name is never opened)."""
    if not isinstance(name, str) or name not in sources:
        raise InputError(f"There is no listed data source called {str(name)[:80]!r}. The "
                         "sources are: " + (quote_list(list(sources)) if sources else "none")
                         + ".", field="source")
    return sources[name]


def _redact(text: str, source: Source) -> str:
    """A message without the source's URL, password or server paths (the
    user sees the source's name only)."""
    if source.path:
        text = text.replace(repr(source.path), "the source's path").replace(
            source.path, "the source's path")
    if source.url:
        text = text.replace(source.url, "<the source's URL>")
        m = re.match(r"^[^:]+://[^:/@]*:([^@/]+)@", source.url)
        if m:
            text = text.replace(m.group(1), "***")
    return text


def _target(source: Source) -> str:
    """What :func:`fairness_core.engine.open_table` opens for a source."""
    if not source.url:
        return source.path
    url = source.url
    if url.startswith("duckdb://"):
        file = url[len("duckdb://"):].split("?", 1)[0]
        if file and file != ":memory:" and not Path(file).exists():
            raise InputError(f"The data source {source.name!r} names a DuckDB file that does "
                             "not exist. Ask the administrator to check its url.",
                             field="source")
        if "read_only" not in url:  # never create or change a database
            url += ("&" if "?" in url else "?") + "read_only=true"
    return url


def _failed(source: Source, err: InputError) -> InputError:
    return InputError(f"The data source {source.name!r} cannot be opened: "
                      f"{_redact(err.message, source)} Ask the administrator to check the "
                      "source list.", field="source")


def open_source(source: Source):
    """An Ibis table for a source and its :class:`~fairness_core.io.TableInfo`."""
    from .engine import open_table

    try:
        t, info = open_table(_target(source), table=source.table, engine=source.engine)
    except InputError as err:
        raise _failed(source, err) from None
    except Exception as exc:  # a driver's own error: said plainly
        raise _failed(source, InputError(f"{type(exc).__name__}: "
                                         f"{str(exc).splitlines()[0][:200]}.")) from None
    info.name = source.name
    return t, info


def count_source(source: Source, spec):
    """Count a source where it lives: ``(Prepared, TableInfo, records)`` as
    :func:`fairness_core.engine.count_in_engine`, with errors that name the
    source and never its URL."""
    from .engine import count_in_engine

    try:
        prepared, info, records = count_in_engine(_target(source), spec, table=source.table,
                                                  engine=source.engine)
    except InputError as err:
        if err.field in ("columns", "counts", "weight", "label", "positive", "predictions",
                         "prediction_positive", "scores", "sensitive", "bins", "threshold"):
            raise InputError(_redact(err.message, source), field=err.field,
                             column=err.column, value=err.value) from None
        raise _failed(source, err) from None
    info.name = source.name
    return prepared, info, records


def profile(table, *, sample_rows: int = SAMPLE_ROWS,
            sample_values: int = SAMPLE_VALUES) -> pd.DataFrame:
    """A small table for guessing column roles without loading the rows.

    Each column holds up to ``sample_values`` of its distinct values among
    the first ``sample_rows`` rows, and, for numbers, the column's minimum
    and maximum over the whole table (so that score ranges are exact); the
    columns are padded with missing values to one length and keep their
    types (whole numbers stay whole).  One query per column, each bounded.
    """
    schema = table.schema()
    head = table.limit(sample_rows)
    numeric = [c for c, t in schema.items() if t.is_numeric() and not t.is_boolean()]
    ranges = {}
    if numeric:
        aggs = {}
        for c in numeric:
            aggs[f"{c}__min"] = table[c].min()
            aggs[f"{c}__max"] = table[c].max()
        ranges = table.aggregate(**aggs).execute().iloc[0].to_dict()
    cols = {}
    for c, typ in schema.items():
        s = head.select(c).distinct().limit(sample_values).to_pandas()[c]
        s = s.dropna()
        if c in numeric:
            extra = [ranges[f"{c}__min"], ranges[f"{c}__max"]]
            s = pd.concat([s, pd.Series([v for v in extra if pd.notna(v)], dtype=s.dtype
                                        if len(s) else None)], ignore_index=True)
            s = s.drop_duplicates()
            if typ.is_integer():
                s = s.astype("Int64")
        cols[c] = s.reset_index(drop=True)
    n = max((len(s) for s in cols.values()), default=0)
    out = pd.DataFrame({c: s.reindex(range(n)) for c, s in cols.items()})
    return out[[c for c in schema.names]] if len(out.columns) else out


def schema_table(table) -> pd.DataFrame:
    """The columns of a source and their types (read from its schema)."""
    return pd.DataFrame({"column": list(table.schema().names),
                         "type": [str(t) for t in table.schema().types]})


__all__ = ["Source", "parse_sources", "read_sources_file", "get_source", "open_source",
           "count_source", "profile", "schema_table"]
