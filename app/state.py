"""Session state for the dashboard: the loaded table, the user's choices,
the URL, a per-session memo of the expensive steps, and the bundled
samples' audits shared by every session.

Nothing here writes to disk or logs data: uploads live only in this
session's memory (``st.session_state``), never in a cache shared between
sessions.  The shared caches (``st.cache_data`` / ``st.cache_resource``)
are reached only through a sample's label: their functions read the
bundled file themselves, so no upload can enter them.
"""
from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from fairness_core import AuditSpec, InputError
from fairness_core.audit import COUNTING_FIELDS, Auditor
from fairness_core.engine import ROWS
from fairness_core.guard import Busy, SharedBudget
from fairness_core.io import read_table
from fairness_core.limits import limits
from fairness_core.sources import count_source, get_source, open_source, parse_sources, profile

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = {
    "Sample: synthetic loan approvals (6,000 rows)": ROOT / "sample_data" / "loans.csv",
    "Sample: UCI Adult census income (16,281 rows)":
        ROOT / "sample_data" / "adult_test_predictions.csv",
    "Sample: synthetic emergency triage, four levels (8,000 rows)":
        ROOT / "sample_data" / "triage.csv",
    "Sample: synthetic credit limits, a numeric outcome (5,000 rows)":
        ROOT / "sample_data" / "credit_limits.csv",
}
#: A sample's columns in their roles, where guessing from the values alone
#: would not find them (a numeric outcome): file name -> choices.
SAMPLE_ROLES = {"credit_limits.csv": {
    "label": "credit_limit", "task": "regression",
    "predictions": ["model_a_limit", "model_b_limit"],
    "sensitive": ["sex", "age_group", "region"]}}
UPLOAD = "Upload your own file"
MEMO_SIZE = 10
#: Audits of the samples kept for every session (different settings each).
SHARED_AUDITS = 32

# The choices that live in the URL (query parameter -> preference key).
URL_KEYS = {"label": "label", "task": "task", "positive": "positive", "model": "predictions",
            "score": "scores", "attr": "sensitive", "inter": "intersectional",
            "weight": "weight", "tol": "tolerance", "minsize": "min_group_size",
            "refmode": "reference_strategy", "ref": "reference", "thr": "threshold",
            "show": "model_shown", "metric": "metric", "view": "attribute_shown",
            "alpha": "alpha", "corr": "correction", "bins": "bins",
            "decision": "positive_decision", "dpos": "prediction_positive",
            "cols": "columns_id", "counts": "counts"}
LIST_KEYS = {"predictions", "scores", "sensitive"}
JSON_KEYS = {"reference", "bins", "prediction_positive"}


@dataclass
class Loaded:
    """The table this session audits."""

    name: str
    sha256: str
    df: object
    info: object
    sample: bool
    #: (label, modification time, size) of a bundled sample; None for an upload
    sample_key: tuple | None = None
    #: the name of an administrator-listed source: ``df`` is then a small
    #: profile of its columns (for the guesses), never its rows
    source: str | None = None


def prefs() -> dict:
    """The user's choices, kept apart from widget state so that they survive
    a bad file, a page switch or a rerun in which a widget is not shown."""
    if "prefs" not in st.session_state:
        st.session_state["prefs"] = _from_url()
    return st.session_state["prefs"]


def _from_url() -> dict:
    out = {}
    try:
        qp = st.query_params
        for q, key in URL_KEYS.items():
            if q not in qp:
                continue
            if key in LIST_KEYS:
                out[key] = [v for v in qp.get_all(q) if v != ""]
            elif key in JSON_KEYS:
                try:
                    val = json.loads(qp[q])
                    if isinstance(val, dict):
                        out[key] = val
                except ValueError:
                    pass
            elif key == "positive":  # one value, or the set of a many-valued label
                vals = [v for v in qp.get_all(q) if v != ""]
                out[key] = vals[0] if len(vals) == 1 else vals
            else:
                out[key] = qp[q]
    except Exception:  # a malformed URL never stops the app
        return {}
    if "threshold" in out:  # one number, or {"score column": number}
        try:
            out["threshold"] = float(out["threshold"])
        except (TypeError, ValueError):
            try:
                val = json.loads(out["threshold"])
                out["threshold"] = {str(k): float(v) for k, v in val.items()}
            except (TypeError, ValueError, AttributeError):
                out.pop("threshold")
    for k, conv in (("tolerance", float), ("min_group_size", int), ("alpha", float)):
        if k in out:
            try:
                out[k] = conv(out[k])
            except (TypeError, ValueError):
                out.pop(k)
    if "intersectional" in out:
        out["intersectional"] = str(out["intersectional"]).lower() in ("1", "true", "yes")
    return out


def to_url(p: dict) -> None:
    """Mirror the non-data choices in the URL (a shareable link)."""
    want = {}
    for q, key in URL_KEYS.items():
        v = p.get(key)
        if v is None or v == "" or v == []:
            continue
        if key in LIST_KEYS or isinstance(v, (list, tuple)):
            want[q] = [str(x) for x in v]
        elif key in JSON_KEYS or isinstance(v, dict):
            if v:
                want[q] = json.dumps(v, sort_keys=True)
        elif isinstance(v, bool):
            want[q] = "1" if v else "0"
        else:
            want[q] = str(v)
    current = {k: st.query_params.get_all(k) for k in st.query_params.keys()}
    norm = {k: v if isinstance(v, list) else [v] for k, v in want.items()}
    if current != norm:
        st.query_params.from_dict(want)


def memo(key, fn):
    """Compute once per session and key (a small LRU in session memory)."""
    cache = st.session_state.setdefault("_memo", {})
    if key in cache:
        cache[key] = cache.pop(key)  # most recently used last
        return cache[key]
    value = fn()
    cache[key] = value
    while len(cache) > MEMO_SIZE:
        cache.pop(next(iter(cache)))
    return value


def forget(sha256: str) -> None:
    """Drop everything this session computed from one table."""
    cache = st.session_state.get("_memo", {})
    for key, value in list(cache.items()):
        if (len(key) > 1 and key[1] == sha256) or \
                (isinstance(value, Loaded) and value.sha256 == sha256):
            del cache[key]


_BUDGETS: dict = {}
_BUDGETS_LOCK = threading.Lock()


def shared_budget(total: int) -> SharedBudget:
    """The server's one pool of memory for its sessions' files (per limit)."""
    with _BUDGETS_LOCK:
        if total not in _BUDGETS:
            _BUDGETS[total] = SharedBudget(total)
        return _BUDGETS[total]


def load_bytes(data: bytes, name: str, sample: bool) -> Loaded:
    """Parse a file (raises InputError with a clear message).

    The parse runs in a child process capped at the memory limit
    (:func:`fairness_core.guard.read_guarded`): a file that needs more
    memory is an InputError for this session, and the server and the
    other sessions carry on.  Every session's reads and tables draw on one
    pool of that size (:class:`fairness_core.guard.SharedBudget`), so
    many sessions together stay within it too.  The outcome, a table or an InputError, is
    kept in this session's memo, so that a file is parsed once and not
    again on every rerun.
    """
    sha = hashlib.sha256(data).hexdigest()
    budget = limits().memory

    def read():
        try:
            return shared_budget(budget).read(data, name)
        except Busy:
            raise  # the server is busy: not this file's answer, try again later
        except InputError as err:
            return err

    got = memo(("table", sha, name, budget), read)
    if isinstance(got, InputError):
        raise InputError(got.message, field=got.field, column=got.column, value=got.value)
    df, info = got
    return Loaded(name=name, sha256=sha, df=df, info=info, sample=sample)


def load_sample(label: str) -> Loaded:
    """A bundled sample: read once for every session, a copy per session."""
    stat = SAMPLES[label].stat()
    key = (label, stat.st_mtime_ns, stat.st_size)
    return memo(("sample",) + key, lambda: _shared_sample(*key))


@st.cache_data(max_entries=len(SAMPLES) * 2, show_spinner=False)
def _shared_sample(label: str, mtime_ns: int, size: int) -> Loaded:
    """The sample called ``label`` (its file's time and size key the cache)."""
    path = SAMPLES[label]
    data = path.read_bytes()
    df, info = read_table(data, name=path.name)
    return Loaded(name=path.name, sha256=hashlib.sha256(data).hexdigest(), df=df, info=info,
                  sample=True, sample_key=(label, mtime_ns, size))


@st.cache_resource(max_entries=16, show_spinner=False)
def _shared_auditor(label: str, mtime_ns: int, size: int, ckey: str, _spec: AuditSpec):
    """One auditor per sample and way of counting (``ckey``), shared by every
    session; its lock keeps one audit at a time (it caches as it goes)."""
    loaded = _shared_sample(label, mtime_ns, size)
    return Auditor(loaded.df, _spec, loaded.info), threading.Lock()


@st.cache_data(max_entries=SHARED_AUDITS, show_spinner=False)
def _shared_result(label: str, mtime_ns: int, size: int, spec_json: str, _spec: AuditSpec):
    """The audit of a sample under one spec (``spec_json``), for every session
    (each gets its own copy)."""
    auditor, lock = _shared_auditor(label, mtime_ns, size, counting_key(_spec), _spec)
    with lock:
        return auditor.run(_spec)


def counting_key(spec: AuditSpec) -> str:
    d = spec.to_dict()
    return json.dumps({k: d[k] for k in COUNTING_FIELDS}, sort_keys=True, default=str)


# --------------------------------------------------------------------------
# Sources listed by the administrator (the [sources] section of secrets.toml)
# --------------------------------------------------------------------------
SOURCE = "source::"


def listed_sources() -> tuple[dict, dict]:
    """The administrator's sources and the problems of malformed entries
    (see :func:`fairness_core.sources.parse_sources`).  They come from the
    ``[sources]`` section of ``st.secrets`` (``app/.streamlit/secrets.toml``
    on the server), never from the browser."""
    try:
        config = st.secrets.get("sources") if "sources" in st.secrets else None
    except Exception:  # no secrets file, or one that is not valid TOML
        config = None
    if config is not None and hasattr(config, "to_dict"):
        config = config.to_dict()
    return parse_sources(config)


def load_source(name: str) -> Loaded:
    """A listed source, opened by its name (a name not in the list is an
    InputError): its schema and a small profile of values for the guesses."""
    source = get_source(listed_sources()[0], name)

    def read():
        t, info = open_source(source)
        return Loaded(name=name, sha256=f"source:{source.key()}", df=profile(t), info=info,
                      sample=False, source=name)

    return memo(("source", name, source.key()), read)


@dataclass
class Counted:
    """The counts of a listed source under one way of counting."""

    auditor: Auditor
    records: object
    thresholds: str


def _count_source(loaded: Loaded, spec: AuditSpec) -> Counted:
    source = get_source(listed_sources()[0], loaded.source)
    box = st.empty()
    with box.status(f"Counting {loaded.name} where it lives ({source.kind})...",
                    expanded=False) as status:
        try:
            prepared, info, records = count_source(source, spec)
        except InputError:
            box.empty()  # the message is shown once, in the sidebar
            raise
        status.update(label=f"Counted {info.records:,} records for {prepared.n_rows_read:,} "
                            f"rows of {loaded.name}.", state="complete")
    return Counted(Auditor.from_prepared(prepared, info), records, _thresholds(spec))


def _thresholds(spec: AuditSpec) -> str:
    return json.dumps(spec.threshold, sort_keys=True, default=str)


def counted(loaded: Loaded, spec: AuditSpec) -> Counted:
    """A source's counts for the counting fields of ``spec``, once per
    session: a new threshold, tolerance or reference does not count again
    (unless a score was counted in fine bins at the old threshold)."""
    key = ("counted", loaded.sha256, counting_key(spec))
    got = memo(key, lambda: _count_source(loaded, spec))
    if got.auditor.prepared.score_bins and got.thresholds != _thresholds(spec):
        got = memo(key + (_thresholds(spec),), lambda: _count_source(loaded, spec))
    return got


def counted_table(loaded: Loaded, spec: AuditSpec):
    """The table behind the counts and its count column: the rows (None),
    a count table (its count column) or a source's records."""
    if loaded.source is not None:
        return counted(loaded, spec).records, ROWS
    return loaded.df, spec.counts


def describe_table(loaded: Loaded, spec: AuditSpec, provenance: dict) -> str:
    """What the audited table is, honestly: rows, a count table, or counts
    made where the data lives."""
    people = provenance["rows_read"]
    if loaded.source is not None:
        info = counted(loaded, spec).auditor.info
        return (f"Rows are not loaded: {info.engine} counted the {people:,} rows of the "
                f"source {loaded.name!r} where they live and sent back {info.records:,} "
                "count records (one per combination of groups, outcome and decisions). "
                "Every number on these pages comes from those counts.")
    if spec.counts:
        return (f"{loaded.name!r} is a count table: its {len(loaded.df):,} rows stand for "
                f"{people:,} people (the column {spec.counts!r} says how many each row "
                "stands for). Every number is the same as from those people's rows.")
    return f"Each of the {len(loaded.df):,} rows of {loaded.name!r} is one person."


def run_audit(loaded: Loaded, spec: AuditSpec):
    """The audit for a spec, recomputed from cached counts when only the
    judgement (threshold, reference, tolerance, ...) changed."""
    if spec.task == "multiclass" and loaded.source is not None:
        from fairness_core.multiclass_result import audit_multiclass_source
        source = get_source(listed_sources()[0], loaded.source)
        return memo(("result", loaded.sha256, spec.to_json()),
                    lambda: audit_multiclass_source(source, spec))
    if spec.task != "binary":
        if loaded.source is not None:
            raise InputError("A data source is audited as yes/no decisions: choose "
                             "\"yes/no decisions\" and the label's positive values.",
                             field="task")
        from fairness_core.audit import audit_frame
        return memo(("result", loaded.sha256, spec.to_json()),
                    lambda: audit_frame(loaded.df, loaded.info, spec=spec))
    if loaded.source is not None:
        auditor = counted(loaded, spec).auditor
        return memo(("result", loaded.sha256, spec.to_json()), lambda: auditor.run(spec))
    if loaded.sample_key is not None:  # a bundled sample: shared by every session
        return memo(("result", loaded.sha256, spec.to_json()),
                    lambda: _shared_result(*loaded.sample_key, spec.to_json(), spec))
    ckey = counting_key(spec)
    auditor = memo(("auditor", loaded.sha256, ckey),
                   lambda: Auditor(loaded.df, spec, loaded.info))
    return memo(("result", loaded.sha256, spec.to_json()), lambda: auditor.run(spec))


def with_auditor(loaded: Loaded, spec: AuditSpec, fn):
    """``fn(auditor)`` with the auditor that counted this table for ``spec``
    (the same one :func:`run_audit` uses: nothing is counted again), under
    the shared lock for a bundled sample."""
    if loaded.source is not None:
        return fn(counted(loaded, spec).auditor)
    if loaded.sample_key is not None:
        auditor, lock = _shared_auditor(*loaded.sample_key, counting_key(spec), spec)
        with lock:
            return fn(auditor)
    auditor = memo(("auditor", loaded.sha256, counting_key(spec)),
                   lambda: Auditor(loaded.df, spec, loaded.info))
    return fn(auditor)


def field_of(err: InputError, spec_values: dict) -> str:
    """Which control an InputError belongs to."""
    if err.field == "columns" and err.column:
        for key in ("label", "predictions", "scores", "sensitive", "weight"):
            v = spec_values.get(key)
            if v == err.column or (isinstance(v, (list, tuple)) and err.column in v):
                return key
    return err.field or "file"


def _auditor_of(loaded: Loaded, spec: AuditSpec):
    """The auditor that counted this audit, and the lock to hold while
    reading its rows."""
    if loaded.source is not None:
        return counted(loaded, spec).auditor, threading.Lock()
    if loaded.sample_key is not None:
        return _shared_auditor(*loaded.sample_key, counting_key(spec), spec)
    auditor = memo(("auditor", loaded.sha256, counting_key(spec)),
                   lambda: Auditor(loaded.df, spec, loaded.info))
    return auditor, threading.Lock()


def audit_pairs(loaded: Loaded, spec: AuditSpec, result):
    """Each model of the audit against the next on the same rows
    (:func:`fairness_core.compare.audit_pairs`), as the exports carry them;
    None with one model."""
    from fairness_core.compare import audit_pairs as pairs

    if len(result.spec.models) < 2:
        return None

    def compute():
        auditor, lock = _auditor_of(loaded, spec)
        with lock:
            return pairs(auditor.prepared, result, auditor.index)

    return memo(("audit_pairs", loaded.sha256, spec.to_json()), compute)


def paired(loaded: Loaded, spec: AuditSpec, result, model_a: str, model_b: str):
    """Two models of the audit compared on the same rows, group by group
    (:func:`fairness_core.compare.paired_comparison`), from the auditor that
    counted this audit: its rows (or an engine's records) give the joint
    counts of the two models' decisions, score models at the audit's
    thresholds."""
    from fairness_core.compare import paired_comparison

    def compute():
        auditor, lock = _auditor_of(loaded, spec)
        thresholds = {m: t["threshold"] for m, t in
                      (result.provenance.get("thresholds") or {}).items()}
        with lock:
            p = auditor.prepared
            decisions = {m: p.scores[m] >= t for m, t in thresholds.items()
                         if m in (model_a, model_b)}
            return paired_comparison(p, auditor.index, model_a, model_b, decisions=decisions,
                                     alpha=spec.alpha, correction=spec.correction,
                                     confidence=spec.confidence)

    return memo(("paired", loaded.sha256, spec.to_json(), model_a, model_b), compute)
