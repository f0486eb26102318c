"""Validate a table against an audit spec and encode it for counting.

Turns user columns into compact numpy arrays: a boolean label, a boolean
prediction per model, float scores, optional weights, and one small integer
code array per sensitive column.  All data checks that need the data live
here, shared by the app and the CLI.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .errors import InputError, quote_list
from .formatting import short
from .spec import AuditSpec

MISSING_GROUP = "(missing)"
#: A label with more distinct values than this is not an outcome.
MAX_LABEL_VALUES = 50

_POSITIVE_GUESSES = [({"0", "1"}, "1"), ({"-1", "1"}, "1"), ({"no", "yes"}, "yes"),
                     ({"n", "y"}, "y"), ({"negative", "positive"}, "positive"),
                     ({"neg", "pos"}, "pos")]


def canon(value) -> str:
    """A token under which equal-meaning label values compare equal.

    ``1``, ``1.0``, ``True``, ``"1"``, ``"true"`` all become ``"1"``; text is
    stripped and compared case-insensitively.
    """
    if isinstance(value, (bool, np.bool_)):
        return "1" if value else "0"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return str(int(v)) if v.is_integer() else repr(v)
    s = str(value).strip()
    low = s.lower()
    if low in ("true", "false"):
        return "1" if low == "true" else "0"
    try:
        v = float(s)
        if math.isfinite(v):
            return str(int(v)) if v.is_integer() else repr(v)
    except ValueError:
        pass
    return low


def display(value, strip: bool = True) -> str:
    """How a group or label value is shown to people.  A label value is
    stripped of the spaces around it (``" >50K"`` is ``">50K"``); a group
    (``strip=False``) keeps them, so that values that differ only in spaces
    stay separate groups."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return str(value).strip() if strip else str(value)


_RANGE = re.compile(r"^(?:< (?P<below>\S+)|\[(?P<low>\S+), \S+\)|>= (?P<above>\S+))$")


def _sort_key(label: str):
    """Numbers in numeric order, then the ranges of binned values (``< 18``,
    ``[18, 25)``, ``>= 65``, as the audit names them) in the order of their
    edges, then text."""
    try:
        return (0, float(label), label)
    except ValueError:
        pass
    m = _RANGE.match(label)
    if m:
        try:
            low = -math.inf if m.group("below") is not None else \
                float(m.group("low") or m.group("above"))
            return (0, low, label)
        except ValueError:
            pass
    return (1, 0.0, label.lower())


@dataclass
class Prepared:
    """A validated, encoded table ready for counting.

    A sensitive column ``c`` is ``codes[c]`` (small integers, -1 = missing)
    with ``luts[c]`` mapping each code to an index into ``levels[c]``; code
    -1 maps to the last level, ``"(missing)"``.  Levels may be unused: the
    group index (:class:`fairness_core.counts.GroupIndex`) keeps only the
    groups that have rows.  Keeping the raw codes lets the group index do
    in one pass what would otherwise be a pass per column.
    """

    spec: AuditSpec
    y: np.ndarray
    predictions: dict
    scores: dict
    weight: np.ndarray | None
    codes: dict
    luts: dict
    levels: dict
    positive_label: str
    negative_label: str | None
    n_rows_read: int
    dropped: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)
    positive_values: list = field(default_factory=list)
    negative_values: list = field(default_factory=list)
    #: phrases for the findings: outcome_pos, outcome_neg
    words: dict = field(default_factory=dict)
    #: model -> (positive decision, negative decision) in words
    decisions: dict = field(default_factory=dict)
    #: score model -> threshold used, and how it was chosen
    thresholds: dict = field(default_factory=dict)
    threshold_notes: dict = field(default_factory=dict)
    score_ranges: dict = field(default_factory=dict)
    #: rows each record stands for (a count table), None when each is one row
    multiplicity: np.ndarray | None = None
    #: per record, the sum of the squared weights of its rows (None: weight ** 2)
    weight_sq: np.ndarray | None = None
    #: score model -> number of fine bins its values were cut into by an engine
    score_bins: dict = field(default_factory=dict)
    #: score model -> (sum of the scores, sum of their squares) per record, weighted,
    #: for a score an engine cut into bins
    score_sums: dict = field(default_factory=dict)

    @property
    def has_label(self) -> bool:
        """True when the audit has a true outcome; without one ``y`` is all
        False (every row an actual negative) and only the decisions count."""
        return self.spec.labelled

    @property
    def n_rows(self) -> int:
        if self.multiplicity is not None:
            return int(self.multiplicity.sum())
        return int(self.y.shape[0])

    @property
    def row_counts(self) -> np.ndarray | None:
        """What to sum for row counts: None (one per record) or the multiplicity."""
        return None if self.multiplicity is None else self.multiplicity.astype(np.float64)

    @property
    def weight_squares(self) -> np.ndarray | None:
        if self.weight is None:
            return None
        return self.weight_sq if self.weight_sq is not None else self.weight ** 2


#: Rows whose distinct values :func:`arrow_codes` tries first.
_PREFIX_ROWS = 4096


def arrow_codes(arr):
    """Dictionary-encode an Arrow array or chunked array in one pass.

    Returns each row's code (int32, -1 = missing) and the distinct values
    as an Arrow array, in the order they first occur: the same codes and
    values for the same rows however the rows are split into chunks.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(arr.type):
        return _dictionary_codes(arr)
    if isinstance(arr, pa.ChunkedArray) and arr.num_chunks == 1:
        arr = arr.chunk(0)
    if isinstance(arr, pa.ChunkedArray) and arr.num_chunks == 0:
        return np.empty(0, dtype=np.int32), pa.array([], type=arr.type)
    if len(arr) > _PREFIX_ROWS:
        # few distinct values (a sensitive attribute's groups) usually all
        # occur in the first rows, in the order they first occur: looking
        # each row up among them is quicker than encoding from scratch
        values = pc.drop_null(pc.unique(arr.slice(0, _PREFIX_ROWS)))
        if len(values) <= _PREFIX_ROWS // 16:
            found = pc.index_in(arr, value_set=values)
            if found.null_count == arr.null_count:  # every value was among them
                if found.null_count:
                    found = pc.fill_null(found, -1)
                codes = found.to_numpy()
                return (codes if codes.dtype == np.int32 else codes.astype(np.int32)), values
    enc = pc.dictionary_encode(arr)
    if isinstance(enc, pa.ChunkedArray):
        # the chunks share one dictionary, and their indices point into it
        dictionary = enc.chunk(enc.num_chunks - 1).dictionary
        indices = pa.chunked_array([ch.indices for ch in enc.chunks], type=pa.int32())
    else:
        dictionary, indices = enc.dictionary, enc.indices
    if indices.null_count:
        indices = pc.fill_null(indices, -1)
    codes = indices.to_numpy()
    if codes.dtype != np.int32:
        codes = codes.astype(np.int32)
    return codes, dictionary


def _dictionary_codes(arr):
    """:func:`arrow_codes` of an Arrow dictionary array, whose chunks may each
    have their own dictionary (with values no row uses, kept as values)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    parts = arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]
    out = np.empty(len(arr), dtype=np.int32)
    seen: dict = {}
    start = 0
    for ch in parts:
        lut = np.array([seen.setdefault(v, len(seen)) for v in ch.dictionary.to_pylist()]
                       + [-1], dtype=np.int32)
        idx = pc.fill_null(ch.indices, -1).to_numpy(zero_copy_only=False)
        np.take(lut, idx, out=out[start:start + len(ch)])
        start += len(ch)
    return out, pa.array(list(seen), type=arr.type.value_type)


def is_arrow(dtype) -> bool:
    """True for a column stored in Arrow (pandas' ``str`` and ``string[pyarrow]``
    dtypes, ``pd.ArrowDtype``)."""
    return getattr(dtype, "storage", None) == "pyarrow" or isinstance(dtype, pd.ArrowDtype)


def arrow_encoded(series: pd.Series, encodings: dict | None = None, key=None):
    """:func:`arrow_codes` of an Arrow-backed column, kept in ``encodings[key]``
    (when ``encodings`` is given) so that it is computed once."""
    found = encodings.get(key) if encodings is not None else None
    if found is None:
        import pyarrow as pa
        found = arrow_codes(pa.array(series.array))
        if encodings is not None:
            encodings[key] = found
    return found


def _drop_unused(codes: np.ndarray, uniques: list, has_missing: bool = True):
    if has_missing:
        used = np.bincount(codes.astype(np.intp) + 1, minlength=len(uniques) + 1)[1:] > 0
    else:
        used = np.bincount(codes, minlength=len(uniques)) > 0
    if used.all():
        return codes, uniques
    lut = np.full(len(uniques) + 1, -1, dtype=np.int32)
    lut[np.flatnonzero(used)] = np.arange(int(used.sum()), dtype=np.int32)
    return lut[codes], [u for u, k in zip(uniques, used) if k]


def codes_and_uniques(series: pd.Series, encodings: dict | None = None, key=None):
    """Integer codes (-1 = missing) and the distinct values of a column.

    Fast paths for the column types that large tables come in: booleans,
    small-range integers, pandas categoricals and Arrow strings (hashing
    with Arrow is about twice as fast as pandas' generic path).  An Arrow
    column's encoding (:func:`arrow_codes`) is taken from ``encodings[key]``
    when it is there, and put there otherwise.
    """
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        codes = series.cat.codes.to_numpy().astype(np.int32)
        return _drop_unused(codes, list(dtype.categories))
    numpy_kind = dtype.kind if isinstance(dtype, np.dtype) else None
    if numpy_kind == "b":
        x = series.to_numpy().view(np.uint8).astype(np.intp)
        return _drop_unused(x, [False, True], has_missing=False)
    if numpy_kind in ("i", "u") and len(series):
        x = series.to_numpy()
        lo, hi = int(x.min()), int(x.max())
        if hi - lo < 1 << 16:
            shifted = x.astype(np.intp)
            if lo:
                shifted -= lo
            return _drop_unused(shifted, list(range(lo, hi + 1)), has_missing=False)
    if is_arrow(dtype):
        codes, dictionary = arrow_encoded(series, encodings, key)
        return codes, dictionary.to_pylist()
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    return codes.astype(np.int32), list(uniques)


class _BinaryColumn:
    """A label or prediction column: its distinct values, missing rows, and
    the boolean "is the positive value" array, computed without a per-row
    code array for plain numeric columns."""

    def __init__(self, series: pd.Series, encodings: dict | None = None, key=None):
        dtype = series.dtype
        kind = dtype.kind if isinstance(dtype, np.dtype) else None
        self.codes = None
        if kind in ("b", "i", "u", "f"):
            self.x = series.to_numpy()
            self.missing = np.isnan(self.x) if kind == "f" else None
            if kind == "f" and self.missing.any():
                uniques = pd.unique(self.x[~self.missing])
            elif kind in ("i", "u", "b") and len(self.x):
                lo, hi = self.x.min(), self.x.max()
                # min and max are present; with hi - lo <= 1 nothing else can be
                uniques = ([lo] if lo == hi else [lo, hi]) if int(hi) - int(lo) <= 1 \
                    else pd.unique(self.x)
            else:
                uniques = pd.unique(self.x)
            self.uniques = list(uniques)
        else:
            self.codes, self.uniques = codes_and_uniques(series, encodings, key)
            self.missing = self.codes < 0
            if not self.missing.any():
                self.missing = None
        self.tokens = [canon(u) for u in self.uniques]

    def values(self) -> dict:
        out: dict[str, str] = {}
        for u, t in zip(self.uniques, self.tokens):
            out.setdefault(t, display(u))
        return out

    def is_positive(self, positive_tokens) -> np.ndarray:
        """True where the value is one of ``positive_tokens`` (a token or a set)."""
        pos = {positive_tokens} if isinstance(positive_tokens, str) else set(positive_tokens)
        if self.codes is not None:
            return _binary_lut(self.tokens, pos)[self.codes]
        hits = [u for u, t in zip(self.uniques, self.tokens) if t in pos]
        if not hits:
            return np.zeros(len(self.x), dtype=bool)
        if len(hits) == 1:
            return self.x == hits[0]
        return np.isin(self.x, hits)


def _binary_lut(tokens, positive_tokens: set) -> np.ndarray:
    # One extra slot at the end so that code -1 (missing) indexes a False.
    return np.array([t in positive_tokens for t in tokens] + [False], dtype=bool)


def value_set(given, values: dict) -> list | None:
    """The tokens of the values named by ``given`` among ``values`` (token ->
    shown value), or None when some are not there.  ``given`` is a value,
    a list of values, or a text of comma-separated values (a value that
    itself contains a comma is matched whole first)."""
    if isinstance(given, (list, tuple, set)):
        parts = [str(g) for g in given]
    elif canon(given) in values:
        parts = [str(given)]
    else:
        parts = [p for p in str(given).split(",") if p.strip()]
    toks = [canon(p) for p in parts]
    if not toks or any(t not in values for t in toks):
        return None
    return list(dict.fromkeys(toks))


def quote_values(values) -> str:
    """``'Medium' or 'High'``."""
    vals = [repr(str(v)) for v in values]
    if not vals:
        return "(none)"
    return vals[0] if len(vals) == 1 else ", ".join(vals[:-1]) + " or " + vals[-1]


def _choose_positive(spec: AuditSpec, values: dict) -> list:
    """The tokens of the label values that are the positive class."""
    tokens = set(values)
    given = spec.positive
    where = (f"the label column {spec.label!r}" if spec.labelled else
             f"the decision column {quote_list(spec.predictions)}")
    what = "is the positive class" if spec.labelled else "means the positive decision"
    if given is not None and str(given).strip() != "" and given != ():
        toks = value_set(given, values)
        if toks is None and len(tokens) < 2 and not isinstance(given, tuple):
            return [canon(given)]  # one class present: the other may be named
        if toks is None:
            shown = quote_values(given if isinstance(given, tuple) else [given])
            raise InputError(f"The positive value {shown} is not a value of {where}. "
                             f"Its values are "
                             f"{quote_list(values.values())}.", field="positive",
                             value=given)
        if len(toks) == len(tokens) and len(tokens) > 1:
            raise InputError(f"Every value of {where} is chosen as "
                             "positive, so nothing is negative. Choose only the values that "
                             "count as the positive class.", field="positive", value=given)
        return toks
    for known, pos in _POSITIVE_GUESSES:
        if tokens and tokens <= known:
            return [pos]
    if len(tokens) > 2:
        raise InputError(f"{where[0].upper() + where[1:]} has {len(tokens)} values: "
                         f"{quote_list(values.values())}. Choose the values that count as "
                         "the positive class (in the command line: --positive V1,V2).",
                         field="positive", column=spec.label or spec.predictions[0])
    raise InputError(f"Which value of {where} {what}? Its values are "
                     f"{quote_list(values.values())}; choose one as the positive value "
                     "(--positive in the command line).", field="positive",
                     column=spec.label or spec.predictions[0])


def _numeric(series: pd.Series, col: str, role: str, field_: str) -> np.ndarray:
    if pd.api.types.is_bool_dtype(series.dtype):
        return series.astype("float64").to_numpy(na_value=np.nan)
    if pd.api.types.is_numeric_dtype(series.dtype):
        return series.astype("float64").to_numpy(na_value=np.nan)
    coerced = pd.to_numeric(series, errors="coerce")
    bad = coerced.isna() & series.notna()
    if bad.any():
        examples = list(dict.fromkeys(series[bad].astype(str).head(50)))[:5]
        raise InputError(f"The {role} column {col!r} must hold numbers, but it has values "
                         f"such as {quote_list(examples)}. Choose a numeric column or clean "
                         "these values.", field=field_, column=col, value=examples[0])
    return coerced.astype("float64").to_numpy(na_value=np.nan)


def _encode_sensitive(series: pd.Series, col: str, spec: AuditSpec,
                      encodings: dict | None = None):
    """Return ``(codes, lut, levels)`` for a sensitive column (see Prepared);
    ``encodings`` as in :func:`codes_and_uniques`."""
    if col in spec.bins:
        values = _numeric(series, col, "binned sensitive", "bins")
        edges = spec.bins[col]
        labels = ([f"< {_fmt_edge(edges[0])}"]
                  + [f"[{_fmt_edge(a)}, {_fmt_edge(b)})" for a, b in zip(edges, edges[1:])]
                  + [f">= {_fmt_edge(edges[-1])}"])
        # code 0: below the first edge; 1..: the ranges; last: at or above the last edge
        codes = np.searchsorted(np.asarray(edges), values, side="right").astype(np.int32)
        codes[np.isnan(values)] = -1
        levels = labels + [MISSING_GROUP]
        return codes, np.arange(len(labels), dtype=np.int32), levels
    if isinstance(series.dtype, pd.CategoricalDtype):
        # The codes are there already; only a categorical with very many
        # (possibly unused) categories needs a look at which are used.
        codes = series.cat.codes.to_numpy()
        uniques = list(series.dtype.categories)
        if len(uniques) > spec.max_groups:
            codes, uniques = _drop_unused(codes.astype(np.int32), uniques)
    else:
        codes, uniques = codes_and_uniques(series, encodings, col)
    n_distinct = len(uniques)
    if n_distinct > spec.max_groups:
        numeric = pd.api.types.is_numeric_dtype(series.dtype) and \
            not pd.api.types.is_bool_dtype(series.dtype)
        hint = ("It is numeric: cut it into ranges (bins such as 18, 25, 40, 65), " if numeric
                else "Choose a column with a few groups, ")
        raise InputError(f"The sensitive attribute {col!r} has {n_distinct:,} distinct values, "
                         f"more than the limit of {spec.max_groups} groups: it looks like an "
                         f"identifier or a measurement, not a group. {hint}or raise the group "
                         "limit (--max-groups) if these really are groups.",
                         field="sensitive", column=col)
    labels = [display(u, strip=False) for u in uniques]
    ordered = sorted(set(labels), key=_sort_key)
    levels = ordered + [MISSING_GROUP]
    pos = {lab: i for i, lab in enumerate(ordered)}
    lut = np.array([pos[lab] for lab in labels], dtype=np.int32)
    return codes, lut, levels


def group_labels(series: pd.Series, col: str, spec: AuditSpec) -> np.ndarray:
    """Each row's group label for one sensitive column, exactly as the audit
    forms the groups (display values, bins, "(missing)")."""
    codes, lut, levels = _encode_sensitive(series, col, spec)
    ext = np.concatenate([[len(levels) - 1], lut]).astype(np.intp)
    return np.asarray(levels, dtype=object)[ext[np.asarray(codes, dtype=np.intp) + 1]]


def _spacing_note(col: str, codes: np.ndarray, lut: np.ndarray, levels: list) -> str | None:
    """A warning naming the groups of a sensitive column whose values differ
    only in the spaces or tabs around them (only groups that have rows)."""
    names = levels[:-1]  # without "(missing)"
    by_text: dict = {}
    for lab in names:
        by_text.setdefault(lab.strip(), []).append(lab)
    if all(len(labs) == 1 for labs in by_text.values()):
        return None
    k = np.asarray(codes)
    used = np.bincount(np.asarray(lut)[k[k >= 0]], minlength=len(names)) > 0
    pos = {lab: i for i, lab in enumerate(names)}
    clashes = [[lab for lab in labs if used[pos[lab]]] for labs in by_text.values()]
    clashes = [labs for labs in clashes if len(labs) > 1]
    if not clashes:
        return None
    shown = "; ".join(", ".join(repr(short(v)) for v in labs) for labs in clashes[:5])
    more = f" (and {len(clashes) - 5} more such sets)" if len(clashes) > 5 else ""
    return (f"{short(col)}: the values {shown}{more} differ only in the spaces or tabs around "
            "them; they are audited as separate groups. If they mean the same group, clean "
            "the file (remove the spaces around the values) and run the audit again.")


def _outside_note(col: str, codes: np.ndarray, levels: list, edges: list,
                  mult: np.ndarray | None = None) -> str | None:
    """A warning naming the rows below the first or at/above the last edge."""
    n_out = len(levels) - 1  # without "(missing)"

    def n(mask):
        return int(np.count_nonzero(mask)) if mult is None else int(mult[mask].sum())

    below, above = n(codes == 0), n(codes == n_out - 1)
    if not below and not above:
        return None
    parts = [f"{n:,} in {levels[i]!r}" for n, i in ((below, 0), (above, n_out - 1)) if n]
    return (f"{col}: {below + above:,} rows lie outside the bin edges "
            f"{_fmt_edge(edges[0])} to {_fmt_edge(edges[-1])} and form their own group(s) "
            f"({', '.join(parts)}). Change the edges if they should fall in a range.")


def resolve_threshold(given, lo: float, hi: float) -> tuple[float, str]:
    """The threshold of a score model and how it was chosen.

    A given threshold is used as it is.  Otherwise it fits the score's
    scale: 0.5 for scores within [0, 1] (probabilities), else the middle
    of the scores' range (a 1-to-10 decile score gets 5.5).
    """
    if given is not None:
        return float(given), "given"
    if lo >= 0 and hi <= 1:
        return 0.5, "the default for scores within [0, 1]; no threshold was given"
    mid = (lo + hi) / 2
    return float(f"{mid:.6g}"), (f"the middle of the score range {lo:g} to {hi:g}; no "
                                 "threshold was given")


def score_decision_words(threshold: float) -> tuple[str, str]:
    return f"a score of at least {threshold:g}", f"a score below {threshold:g}"


def _fmt_edge(x: float) -> str:
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def prepare(df: pd.DataFrame, spec: AuditSpec, *, counts: str | None = None,
            weight_sq: str | None = None, score_ranges: dict | None = None,
            score_bins: dict | None = None, score_sums: dict | None = None,
            encodings: dict | None = None) -> Prepared:
    """Validate ``df`` against ``spec`` and encode it.

    Rows with a missing label, prediction, score or weight are dropped and
    counted; a missing sensitive value becomes the group ``"(missing)"``.

    The keywords describe a table of records that an engine aggregated
    (see :mod:`fairness_core.engine`): ``counts`` names the column of rows
    per record (instead of ``spec.counts``); ``weight_sq`` names the column
    of summed squared weights, and the weight column then holds each
    record's summed weights; ``score_ranges`` gives each score's range over
    the rows, ``score_bins`` the number of fine bins a score was cut
    into (its values are then the bins' lower edges), and ``score_sums``
    the two columns of each such score's summed (weighted) values and
    squared values per record.

    ``encodings`` (column -> :func:`arrow_codes`) holds the Arrow columns
    already dictionary-encoded, such as by :func:`fairness_core.io.frame_sha256`;
    the ones encoded here are added to it.
    """
    present = [str(c) for c in df.columns]
    missing = [c for c in spec.columns() if c not in present]
    if missing:
        raise InputError(f"Column {quote_list(missing)} is not in the data. The columns there "
                         f"are: {quote_list(present, limit=40)}.", field="columns",
                         column=missing[0])
    if len(df) == 0:
        raise InputError("The table has no rows.", field="file")
    mult = _multiplicity(df, counts or spec.counts)

    def rows(mask: np.ndarray) -> int:
        """The number of rows the records in ``mask`` stand for."""
        return int(np.count_nonzero(mask)) if mult is None else int(mult[mask].sum())

    n_read = len(df) if mult is None else int(mult.sum())

    # --- label -----------------------------------------------------------
    labelled = spec.labelled
    label_col = _BinaryColumn(df[spec.label], encodings, spec.label) if labelled else None
    label_values = label_col.values() if labelled else {}
    if labelled and not label_values:
        raise InputError(f"The label column {spec.label!r} is entirely empty. Choose the "
                         "column that holds the true outcomes.", field="label",
                         column=spec.label)
    if len(label_values) > MAX_LABEL_VALUES:
        raise InputError(f"The label column {spec.label!r} has {len(label_values):,} distinct "
                         f"values, such as {quote_list(list(label_values.values())[:5])}: it "
                         "does not look like an outcome that happened or not. Choose the "
                         "column of true outcomes.", field="label", column=spec.label)

    # --- predictions -----------------------------------------------------
    pred_parts, pred_tokens = {}, {}
    all_values = dict(label_values)
    for col in spec.predictions:
        pcol = _BinaryColumn(df[col], encodings, col)
        values = pcol.values()
        given = spec.prediction_positive.get(col)
        if given:
            toks = value_set(list(given), values)
            if toks is None:
                missing = [g for g in given if canon(g) not in values]
                raise InputError(f"{quote_values(missing)} is not a value of the prediction "
                                 f"column {col!r}. Its values are "
                                 f"{quote_list(values.values())}.",
                                 field="prediction_positive", column=col, value=missing[0])
            pred_tokens[col] = toks
            pred_parts[col] = pcol
            continue
        extra = [values[t] for t in values if t not in label_values]
        allowed_extra = len(label_values) + len(extra) <= 2 and len(label_values) < 2
        if extra and not allowed_extra and not labelled:
            raise InputError(f"The decision column {col!r} has values "
                             f"{quote_list(values.values())}, more than the two of a yes/no "
                             f"decision. Say which of them mean the positive decision (in "
                             f"the command line: --prediction-positive {col}=V1,V2).",
                             field="prediction_positive", column=col, value=extra[0])
        if extra and not allowed_extra:
            raise InputError(f"The prediction column {col!r} has values "
                             f"{quote_list(extra)} that are not values of the label "
                             f"{spec.label!r} ({quote_list(label_values.values())}). Say which "
                             f"of its values ({quote_list(values.values())}) mean the positive "
                             f"decision (in the command line: --prediction-positive "
                             f"{col}=V1,V2), or choose a score column with a threshold.",
                             field="prediction_positive", column=col, value=extra[0])
        for t, v in values.items():
            all_values.setdefault(t, v)
        pred_parts[col] = pcol
    if len(all_values) > 2 and len(label_values) <= 2:
        what = "The label and predictions together" if labelled else "The decision columns"
        raise InputError(f"{what} have more than two values: "
                         f"{quote_list(all_values.values())}. Say which values of each "
                         "decision column mean the positive decision (in the command line: "
                         "--prediction-positive COLUMN=V1,V2).", field="predictions")
    if labelled or all_values:
        pos_toks = _choose_positive(spec, all_values)
    else:  # score models only and no outcome: no value is named anywhere
        pos_toks = []
    positive_values = [all_values.get(t, str(spec.positive)) for t in pos_toks]
    negative_values = [v for t, v in all_values.items() if t not in pos_toks]
    positive_label = " or ".join(positive_values) if labelled else None
    negative_label = " or ".join(negative_values) if negative_values and labelled else None
    words = {"outcome_pos": quote_values(positive_values),
             "outcome_neg": quote_values(negative_values) if negative_values
             else "the negative outcome"}

    keep = np.ones(len(df), dtype=bool) if label_col is None or label_col.missing is None \
        else ~label_col.missing
    dropped = {}
    n_missing = n_read - rows(keep)
    if n_missing:
        dropped[f"missing label ({spec.label})"] = n_missing
    # without a true outcome every row counts as an actual negative: the
    # cells then hold the decisions alone (fp = selected, tn = not selected)
    y = label_col.is_positive(pos_toks) if labelled else np.zeros(len(df), dtype=bool)
    preds, decisions = {}, {}
    for col, pcol in pred_parts.items():
        if pcol.missing is not None:
            dropped[f"missing prediction ({col})"] = rows(pcol.missing)
            keep &= ~pcol.missing
        toks = pred_tokens.get(col, pos_toks)
        preds[col] = pcol.is_positive(toks)
        if col in pred_tokens:
            vals = pcol.values()
            decisions[col] = (quote_values([vals[t] for t in toks]),
                              quote_values([v for t, v in vals.items() if t not in toks]))
        else:
            decisions[col] = (words["outcome_pos"], words["outcome_neg"])

    # --- scores ----------------------------------------------------------
    scores, ranges, thresholds, threshold_notes = {}, {}, {}, {}
    for col in spec.scores:
        s = _numeric(df[col], col, "score", "scores")
        lo, hi = float(np.min(s)), float(np.max(s))
        if not (math.isfinite(lo) and math.isfinite(hi)):  # a NaN or an infinity
            bad = ~np.isfinite(s)
            if bad.all():
                raise InputError(f"The score column {col!r} has no numeric values.",
                                 field="scores", column=col)
            dropped[f"missing score ({col})"] = rows(bad)
            keep &= ~bad
            lo, hi = float(np.min(s[~bad])), float(np.max(s[~bad]))
        scores[col] = s
        lo, hi = (score_ranges or {}).get(col) or (lo, hi)
        ranges[col] = (lo, hi)
        thresholds[col], threshold_notes[col] = resolve_threshold(spec.threshold_for(col),
                                                                  lo, hi)
        preds[col] = s >= thresholds[col]
        decisions[col] = score_decision_words(thresholds[col])

    # --- weight ----------------------------------------------------------
    weight = None
    wsq_col, weight_sq = weight_sq, None
    if spec.weight:
        weight = w = sample_weights(df, spec, rows, dropped, keep)
        if wsq_col is not None:  # the engine summed the weights and their squares
            weight_sq = _numeric(df[wsq_col], spec.weight, "weight", "weight")
        elif mult is not None:  # each record's rows share its weight
            weight_sq = w * w * mult
            weight = w * mult

    # --- sensitive attributes -------------------------------------------
    codes, levels = {}, {}
    encoded = [_encode_sensitive(df[c], c, spec, encodings) for c in spec.sensitive]
    luts, notes = {}, {}
    for col, (k, lut, lv) in zip(spec.sensitive, encoded):
        codes[col], luts[col], levels[col] = k, lut, lv
        if col in spec.bins:
            note = _outside_note(col, k, lv, spec.bins[col], mult)
        else:
            note = _spacing_note(col, k, lut, lv)
        if note:
            notes[col] = note

    sums = {m: tuple(_numeric(df[c], c, "score sum", "scores") for c in cols)
            for m, cols in (score_sums or {}).items()}
    if mult is not None:
        keep &= mult > 0  # records that stand for no row
    n_keep = rows(keep)
    if n_keep == 0:
        raise InputError("No row is left after dropping rows with a missing label, "
                         f"prediction, score or weight ({_describe(dropped)}).",
                         field="file")
    if not keep.all():
        y = y[keep]
        mult = mult[keep] if mult is not None else None
        weight_sq = weight_sq[keep] if weight_sq is not None else None
        preds = {m: p[keep] for m, p in preds.items()}
        scores = {m: s[keep] for m, s in scores.items()}
        weight = weight[keep] if weight is not None else None
        codes = {c: k[keep] for c, k in codes.items()}
        sums = {m: (a[keep], b[keep]) for m, (a, b) in sums.items()}
    if weight is not None and not (weight > 0).any():
        raise InputError(f"All weights in {spec.weight!r} are zero.", field="weight",
                         column=spec.weight)
    # The preds dict keeps the user's model order.
    preds = {m: preds[m] for m in spec.models}
    warnings = []
    if dropped:
        warnings.append(f"{n_read - n_keep:,} of {n_read:,} rows were left out: "
                        f"{_describe(dropped)}.")
    for col, note in notes.items():
        warnings.append(note)
    return Prepared(spec=spec, y=y, predictions=preds, scores=scores, weight=weight,
                    codes=codes, luts=luts, levels=levels, positive_label=positive_label,
                    negative_label=negative_label, n_rows_read=n_read, dropped=dropped,
                    warnings=warnings, positive_values=positive_values,
                    negative_values=negative_values, words=words, decisions=decisions,
                    thresholds=thresholds, threshold_notes=threshold_notes,
                    score_ranges=ranges, multiplicity=mult, weight_sq=weight_sq,
                    score_bins=dict(score_bins or {}), score_sums=sums)


def _multiplicity(df: pd.DataFrame, col: str | None) -> np.ndarray | None:
    """The count column of a count table as whole numbers (None without one)."""
    if not col:
        return None
    m = _numeric(df[col], col, "count", "counts")
    bad = ~np.isfinite(m)
    if bad.any():
        raise InputError(f"The count column {col!r} has {int(bad.sum()):,} empty value(s); "
                         "in a count table every row says how many rows it stands for. "
                         "Fill them in, or choose the right count column.", field="counts",
                         column=col)
    wrong = (m < 0) | (m != np.floor(m))
    if wrong.any():
        example = m[wrong][0]
        raise InputError(f"The count column {col!r} has values that are not whole numbers "
                         f"of at least 0, such as {example:g}. It must say how many rows each "
                         "row stands for.", field="counts", column=col, value=float(example))
    if m.max() >= 2 ** 53:
        raise InputError(f"The count column {col!r} has a count of {m.max():g}, too large to "
                         "count exactly (at most 2^53).", field="counts", column=col)
    return m.astype(np.int64)


def sample_weights(df: pd.DataFrame, spec: AuditSpec, rows, dropped: dict,
                   keep: np.ndarray) -> np.ndarray:
    """The weight column as floats: negative weights are refused; a row with
    a missing weight is marked in ``keep`` (False) and counted in
    ``dropped`` (``rows(mask)`` says how many rows a mask stands for)."""
    w = _numeric(df[spec.weight], spec.weight, "weight", "weight")
    if (w < 0).any():
        raise InputError(f"The weight column {spec.weight!r} has negative values; sample "
                         "weights must be zero or more.", field="weight", column=spec.weight)
    bad = ~np.isfinite(w)
    if bad.any():
        dropped[f"missing weight ({spec.weight})"] = rows(bad)
        keep &= ~bad
    return w


def _describe(dropped: dict) -> str:
    return "; ".join(f"{n:,} with {why}" for why, n in dropped.items()) or "none"
