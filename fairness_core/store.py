"""The review trail: saved audits and the decisions taken on their findings.

A store is a database reached by a SQLAlchemy URL: a SQLite file for one
person or a small team on one machine (:func:`sqlite_url`), PostgreSQL
(``postgresql://user@host/db``) for a team.  Its schema is versioned by
Alembic; :func:`open_store` brings any store up to the newest version
before using it.

What a saved audit holds: its spec, its provenance (the data's SHA-256 and
file name, the versions of the tools, the time), its count table (one row
per model x attribute x group: rows, weights and the confusion cells) and
its results (the audit's JSON).  Never a row of the data: the only values
of the data it holds are group names and counts.  The scores' range in the
provenance is rounded to three significant digits, so that no person's
exact score is kept either.

A review gives each finding a status (:data:`STATUSES`) with what that
status needs (a justification, an owner and a date, or why it is not an
issue), and comments; every entry records who made it and when, and is kept
in the trail (:meth:`Store.trail`).  A signed-off audit is read-only: a
change after the sign-off is made on a new version of the audit
(:meth:`Store.new_version`), which points to the signed one.

Two reviewers at once: each finding's decision carries a counter
(``row_version``); a change must name the counter it was made from, and a
change made from a stale one is refused (:class:`ReviewConflict`) instead of
overwriting the other person's decision.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from .errors import InputError

#: The statuses of a finding, and what each is called on a page.
STATUSES = {"open": "Open", "explained": "Explained",
            "mitigation_planned": "Mitigation planned", "not_an_issue": "Not an issue"}
#: The file name of the dashboard's SQLite store inside its data folder.
SQLITE_FILE = "fairness-reviews.sqlite"
#: What an exported review file says it is (see :meth:`Store.export_reviews`).
EXPORT_FORMAT = "fairness-audit review"
EXPORT_VERSION = 1
MIGRATIONS = Path(__file__).resolve().parent / "migrations"

metadata = sa.MetaData()
audits = sa.Table(
    "audits", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("saved_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("data_sha256", sa.String(64), nullable=False),
    sa.Column("data_name", sa.Text),
    sa.Column("spec_hash", sa.String(64), nullable=False),
    sa.Column("spec_json", sa.Text, nullable=False),
    sa.Column("models_json", sa.Text, nullable=False),
    sa.Column("tool_version", sa.String(40)),
    sa.Column("provenance_json", sa.Text, nullable=False),
    sa.Column("results_json", sa.Text, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("previous_id", sa.Integer, sa.ForeignKey("audits.id")),
    sa.UniqueConstraint("data_sha256", "spec_hash", "version", name="uq_audit_version"),
)
audit_counts = sa.Table(
    "audit_counts", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("audit_id", sa.Integer, sa.ForeignKey("audits.id"), nullable=False),
    sa.Column("model", sa.Text, nullable=False),
    sa.Column("attribute", sa.Text, nullable=False),
    sa.Column("group_name", sa.Text, nullable=False),
    sa.Column("n", sa.BigInteger, nullable=False),
    *(sa.Column(c, sa.Float) for c in ("weight", "tn", "fp", "fn", "tp", "selected")),
)
finding_reviews = sa.Table(
    "finding_reviews", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("audit_id", sa.Integer, sa.ForeignKey("audits.id"), nullable=False),
    sa.Column("finding_key", sa.Text, nullable=False),
    sa.Column("status", sa.String(30), nullable=False),
    sa.Column("justification", sa.Text),
    sa.Column("owner", sa.Text),
    sa.Column("due_date", sa.Date),
    sa.Column("reason", sa.Text),
    sa.Column("reviewer", sa.Text, nullable=False),
    sa.Column("reviewer_verified", sa.Boolean, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("row_version", sa.Integer, nullable=False),
)
review_events = sa.Table(
    "review_events", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("audit_id", sa.Integer, sa.ForeignKey("audits.id"), nullable=False),
    sa.Column("finding_key", sa.Text, nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("status", sa.String(30)),
    sa.Column("text", sa.Text),
    sa.Column("owner", sa.Text),
    sa.Column("due_date", sa.Date),
    sa.Column("reviewer", sa.Text, nullable=False),
    sa.Column("reviewer_verified", sa.Boolean, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)
signoffs = sa.Table(
    "signoffs", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("audit_id", sa.Integer, sa.ForeignKey("audits.id"), nullable=False, unique=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("role", sa.Text, nullable=False),
    sa.Column("statement", sa.Text, nullable=False),
    sa.Column("verified", sa.Boolean, nullable=False),
    sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
)


class ReadOnlyAudit(InputError):
    """A change to an audit that has been signed off."""


class ReviewConflict(InputError):
    """A change made from a decision someone else has changed since."""


@dataclass(frozen=True)
class Reviewer:
    """Who makes a review entry: ``verified`` when the name comes from the
    organisation's sign-in, not typed by the person."""

    name: str
    verified: bool = False

    def __post_init__(self):
        if not str(self.name or "").strip():
            raise InputError("Give the reviewer's name: every review entry records who made "
                             "it.", field="reviewer")
        object.__setattr__(self, "name", str(self.name).strip())


def finding_key(finding: dict) -> str:
    """A finding's identity across versions of an audit: its kind, model,
    attribute, metric and group (not its sentence or numbers, which change
    with the data)."""
    return json.dumps([finding.get(k) for k in ("kind", "model", "attribute", "metric",
                                                "group")], ensure_ascii=False)


def spec_hash(spec: dict) -> str:
    """SHA-256 of a spec's settings (its JSON with sorted keys)."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()


def sqlite_url(folder) -> str:
    """The URL of the SQLite store kept in ``folder`` (created if needed)."""
    path = Path(folder).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"Could not create the review store's folder {str(path)!r} "
                         f"({exc.strerror}). Choose a folder the dashboard can write to.",
                         field="store") from None
    return f"sqlite:///{(path / SQLITE_FILE).resolve()}"


def _driver_url(url: str) -> sa.URL:
    try:
        u = sa.make_url(str(url).strip())
    except Exception:
        raise InputError(f"{str(url)[:200]!r} is not a database URL. Give e.g. "
                         "sqlite:///reviews.sqlite or postgresql://user@host/database.",
                         field="store") from None
    if u.drivername in ("postgresql", "postgres"):  # psycopg 3, installed with the engines
        u = u.set(drivername="postgresql+psycopg")
    return u


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Bring the store's schema to ``revision`` (the newest by default)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    sqlite = engine.dialect.name == "sqlite"
    # SQLite alters a table by copying it and dropping the old one: with
    # foreign keys enforced, the drop would delete the rows that point to it.
    runner = make_engine(engine.url, foreign_keys=False) if sqlite else engine
    try:
        with runner.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    finally:
        if runner is not engine:
            runner.dispose()


def make_engine(url, foreign_keys: bool = True) -> sa.Engine:
    """A SQLAlchemy engine for a store URL.

    SQLite waits up to 30 s for another writer, enforces foreign keys
    (unless told not to) and starts each transaction itself: a change
    (:meth:`Store._change`) with ``BEGIN IMMEDIATE``, so that its checks (is
    the audit signed off?) and its writes happen under one write lock.
    """
    u = _driver_url(url)
    if u.get_backend_name() == "sqlite":
        engine = sa.create_engine(u, connect_args={"timeout": 30})
        if not foreign_keys:
            return engine

        @sa.event.listens_for(engine, "connect")
        def _connect(dbapi_conn, _record):
            dbapi_conn.isolation_level = None  # the driver starts no transaction itself
            dbapi_conn.execute("PRAGMA foreign_keys=ON")

        @sa.event.listens_for(engine, "begin")
        def _begin(conn):
            write = conn.get_execution_options().get("store_write")
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
        return engine
    return sa.create_engine(u, pool_pre_ping=True)


def open_store(url) -> "Store":
    """Open (and create or upgrade) the store at ``url``.

    Raises
    ------
    InputError
        When the database cannot be reached or its schema cannot be brought
        up to date (the message names the URL without its password).
    """
    u = _driver_url(url)
    shown = u.render_as_string(hide_password=True)
    try:
        if u.get_backend_name() == "sqlite" and u.database not in (None, "", ":memory:"):
            Path(u.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = make_engine(u)
        upgrade(engine)
    except InputError:
        raise
    except OSError as exc:
        raise InputError(f"Could not create the folder of the review store {shown!r} "
                         f"({exc.strerror}). Choose a folder that can be written.",
                         field="store") from None
    except ModuleNotFoundError as exc:
        raise InputError(f"The review store {shown!r} needs the Python package {exc.name!r}, "
                         "which is not installed.", field="store") from None
    except Exception as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        raise InputError(f"Could not open the review store {shown!r} "
                         f"({reason[0][:300] if reason else type(exc).__name__}). Check the "
                         "URL, that the database server is running, and that the folder or "
                         "database may be written.", field="store") from None
    return Store(engine, shown)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _utc(t):
    """A stored time as an aware UTC datetime (SQLite gives naive ones)."""
    if t is None or isinstance(t, dt.datetime) and t.tzinfo is not None:
        return t
    return t.replace(tzinfo=dt.timezone.utc)


def _when(t) -> str:
    return _utc(t).strftime("%Y-%m-%d %H:%M UTC")


def _round_range(provenance: dict) -> dict:
    """The provenance with each score range rounded to three significant
    digits (a score's minimum and maximum are two people's exact scores)."""
    out = json.loads(json.dumps(provenance))
    for t in (out.get("thresholds") or {}).values():
        for k in ("score_min", "score_max"):
            v = t.get(k)
            if isinstance(v, (int, float)) and math.isfinite(v) and v != 0:
                t[k] = float(f"{v:.3g}")
    return out


def stored_results(result) -> dict:
    """What the store keeps of an audit's results: its JSON (see
    :meth:`~fairness_core.audit.AuditResult.to_dict`) with the scores'
    range rounded, without a mitigation preview or a comparison with an
    earlier audit."""
    d = json.loads(result.to_json(indent=None))
    d["provenance"] = _round_range(d.get("provenance") or {})
    # a mitigation preview (its per-group cut-offs may be people's exact scores) and the
    # comparison with an earlier audit are what-ifs made on the side, not the audit's results
    for extra in ("mitigation", "comparison"):
        d.pop(extra, None)
    return d


def data_fingerprint(result) -> str:
    """What identifies an audit's data: the input's SHA-256, or, for a table
    counted where it lives (a database, Spark), which has no file to hash,
    the SHA-256 of the count table the audit was computed from."""
    sha = (result.provenance.get("input") or {}).get("sha256")
    if sha:
        return str(sha)
    text = json.dumps(count_rows(result), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def count_rows(result) -> list[dict]:
    """The audit's count table as the store keeps it: per model x attribute
    x group the rows, the weight and the cells (with a true outcome the four
    confusion cells; without one only the selected rows)."""
    g = result.groups
    out = []
    for r in g.itertuples(index=False):
        def num(v):
            return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)
        cells = {c: num(getattr(r, c)) for c in ("tn", "fp", "fn", "tp")}
        if result.labelled:
            selected = None if None in (cells["fp"], cells["tp"]) else cells["fp"] + cells["tp"]
        else:  # without an outcome every row counts as a negative: fp is the selected rows
            selected, cells = cells["fp"], dict.fromkeys(cells)
        out.append({"model": str(r.model), "attribute": str(r.attribute),
                    "group_name": str(r.group), "n": int(r.n), "weight": num(r.weight),
                    **cells, "selected": selected})
    return out


@dataclass
class Review:
    """An audit's review as it stands: each finding with its decision and
    comments, and the sign-off."""

    audit_id: int
    version: int
    findings: list
    signoff: dict | None
    previous_id: int | None = None
    data_name: str | None = None
    saved_at: dt.datetime | None = None
    unverified_names: list = field(default_factory=list)

    @property
    def signed(self) -> bool:
        return self.signoff is not None

    def item(self, key: str) -> dict:
        for f in self.findings:
            if f["key"] == key:
                return f
        raise InputError("This finding is not part of the saved audit.", field="finding")


class Store:
    """A store of audits and their reviews (see the module's description).

    Open one with :func:`open_store`; ``Store`` is safe to share between
    threads (each call takes its own connection).
    """

    def __init__(self, engine: sa.Engine, shown_url: str = ""):
        self.engine = engine
        self.url = shown_url

    def close(self) -> None:
        self.engine.dispose()

    def _change(self):
        """A transaction that writes (on SQLite it takes the write lock at
        once, see :func:`make_engine`)."""
        return self.engine.execution_options(store_write=True).begin()

    # ---------------------------------------------------------------- audits
    def save_audit(self, result) -> tuple[int, bool]:
        """Save an audit: ``(id, created)``.

        An audit of the same data (SHA-256) with the same settings is the
        same audit: saving it again gives the newest saved version's id
        (``created`` False), signed off or not.  A change to a signed-off
        review is made on a new version (:meth:`new_version`).
        """
        info = result.provenance.get("input") or {}
        sha = data_fingerprint(result)
        spec = result.spec.to_dict()
        shash = spec_hash(spec)
        results = stored_results(result)
        try:
            with self._change() as conn:
                latest = self._latest(conn, sha, shash)
                if latest is not None:
                    return latest.id, False
                new_id = self._insert_audit(conn, {
                    "saved_at": _now(), "data_sha256": sha, "data_name": info.get("name"),
                    "spec_hash": shash, "spec_json": json.dumps(spec, sort_keys=True),
                    "models_json": json.dumps(list(result.spec.models)),
                    "tool_version": str(result.provenance.get("tool_version") or ""),
                    "provenance_json": json.dumps(results["provenance"]),
                    "results_json": json.dumps(results), "version": 1, "previous_id": None},
                    count_rows(result))
        except IntegrityError:  # someone saved the same audit at the same moment
            found = self.find(sha, spec)
            if found is None:
                raise
            return found, False
        return new_id, True

    def _latest(self, conn, sha: str, shash: str):
        return conn.execute(sa.select(audits.c.id, audits.c.version).where(
            audits.c.data_sha256 == sha, audits.c.spec_hash == shash).order_by(
            audits.c.version.desc(), audits.c.id.desc()).limit(1)).first()

    def find(self, sha256: str, spec: dict) -> int | None:
        """The newest saved version of the audit of these data and settings."""
        with self.engine.connect() as conn:
            row = self._latest(conn, sha256, spec_hash(spec))
        return None if row is None else row.id

    def find_result(self, result) -> int | None:
        """:meth:`find` for an audit result."""
        return self.find(data_fingerprint(result), result.spec.to_dict())

    def _insert_audit(self, conn, row: dict, counts: list) -> int:
        new_id = conn.execute(sa.insert(audits).values(**row)).inserted_primary_key[0]
        if counts:
            conn.execute(sa.insert(audit_counts), [{**c, "audit_id": new_id} for c in counts])
        return new_id

    def audits(self, model: str | None = None, data: str | None = None,
               since: dt.date | None = None, until: dt.date | None = None) -> pd.DataFrame:
        """The saved audits, newest first: ``id, version, previous_id,
        saved_at, data_name, data_sha256, models, signed``; filtered by a
        model, the data (its file name or SHA-256) and the day saved
        (``since`` and ``until`` included)."""
        q = sa.select(audits.c.id, audits.c.version, audits.c.previous_id, audits.c.saved_at,
                      audits.c.data_name, audits.c.data_sha256, audits.c.models_json,
                      signoffs.c.signed_at).outerjoin(
            signoffs, signoffs.c.audit_id == audits.c.id)
        if data:
            q = q.where(sa.or_(audits.c.data_name == data, audits.c.data_sha256 == data))
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(audits.c.saved_at.desc(), audits.c.id.desc())).all()
        out = []
        for r in rows:
            models = json.loads(r.models_json)
            saved = _utc(r.saved_at)
            if model is not None and model not in models:
                continue
            if since is not None and saved.date() < since or until is not None and \
                    saved.date() > until:
                continue
            out.append({"id": r.id, "version": r.version, "previous_id": r.previous_id,
                        "saved_at": saved, "data_name": r.data_name,
                        "data_sha256": r.data_sha256, "models": models,
                        "signed": r.signed_at is not None})
        return pd.DataFrame(out, columns=["id", "version", "previous_id", "saved_at",
                                          "data_name", "data_sha256", "models", "signed"])

    def audit(self, audit_id: int) -> dict:
        """One saved audit: its columns, with ``spec``, ``provenance`` and
        ``results`` read back from JSON."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(audits).where(audits.c.id == audit_id)).first()
        if row is None:
            raise InputError(f"There is no saved audit {audit_id} in the store.", field="audit")
        d = row._asdict()
        d["saved_at"] = _utc(d["saved_at"])
        d["spec"] = json.loads(d.pop("spec_json"))
        d["provenance"] = json.loads(d.pop("provenance_json"))
        d["results"] = json.loads(d.pop("results_json"))
        d["models"] = json.loads(d.pop("models_json"))
        return d

    def counts(self, audit_id: int) -> pd.DataFrame:
        """A saved audit's count table (one row per model x attribute x group)."""
        with self.engine.connect() as conn:
            df = pd.read_sql(sa.select(audit_counts).where(
                audit_counts.c.audit_id == audit_id).order_by(audit_counts.c.id), conn)
        return df.drop(columns=["id", "audit_id"]).rename(columns={"group_name": "group"})

    # --------------------------------------------------------------- reviews
    def _signed(self, conn, audit_id: int):
        return conn.execute(sa.select(signoffs).where(
            signoffs.c.audit_id == audit_id)).first()

    def _writable(self, conn, audit_id: int) -> None:
        """Lock the audit's row for this change (PostgreSQL) and refuse a
        signed-off or unknown audit."""
        row = conn.execute(sa.select(audits.c.id, audits.c.version).where(
            audits.c.id == audit_id).with_for_update()).first()
        if row is None:
            raise InputError(f"There is no saved audit {audit_id} in the store.", field="audit")
        signed = self._signed(conn, audit_id)
        if signed is not None:
            raise ReadOnlyAudit(
                f"Version {row.version} of this audit was signed off by {signed.name} "
                f"({signed.role}) at {_when(signed.signed_at)} and can no longer be changed. "
                "Start a new version of the audit to change its review.", field="review")

    def review(self, audit_id: int) -> Review:
        """The review of a saved audit: every finding of its results with its
        decision (None while no one has decided) and comments."""
        a = self.audit(audit_id)
        with self.engine.connect() as conn:
            decisions = {r.finding_key: r._asdict() for r in conn.execute(
                sa.select(finding_reviews).where(finding_reviews.c.audit_id == audit_id))}
            comments: dict = {}
            for r in conn.execute(sa.select(review_events).where(
                    review_events.c.audit_id == audit_id,
                    review_events.c.kind == "comment").order_by(review_events.c.at,
                                                                review_events.c.id)):
                comments.setdefault(r.finding_key, []).append(
                    {"text": r.text, "reviewer": r.reviewer, "verified": r.reviewer_verified,
                     "at": _utc(r.at)})
            signed = self._signed(conn, audit_id)
        items, names = [], {}
        for f in a["results"].get("findings") or []:
            key = finding_key(f)
            d = decisions.get(key)
            if d is not None:
                d = {k: d[k] for k in ("status", "justification", "owner", "due_date", "reason",
                                       "reviewer", "reviewer_verified", "row_version")} | {
                    "updated_at": _utc(d["updated_at"])}
                names[d["reviewer"]] = names.get(d["reviewer"], True) and d["reviewer_verified"]
            for c in comments.get(key, []):
                names[c["reviewer"]] = names.get(c["reviewer"], True) and c["verified"]
            items.append({"key": key, "finding": f, "decision": d,
                          "comments": comments.get(key, [])})
        signoff = None
        if signed is not None:
            signoff = {"name": signed.name, "role": signed.role, "statement": signed.statement,
                       "verified": signed.verified, "signed_at": _utc(signed.signed_at)}
            names[signed.name] = names.get(signed.name, True) and signed.verified
        return Review(audit_id=audit_id, version=a["version"], findings=items, signoff=signoff,
                      previous_id=a["previous_id"], data_name=a["data_name"],
                      saved_at=a["saved_at"],
                      unverified_names=sorted(n for n, ok in names.items() if not ok))

    def decide(self, audit_id: int, key: str, status: str, reviewer: Reviewer, *,
               expected_version: int, justification: str | None = None,
               owner: str | None = None, due_date: dt.date | None = None,
               reason: str | None = None) -> int:
        """Set a finding's status; returns the decision's new ``row_version``.

        Parameters
        ----------
        expected_version : int
            The ``row_version`` of the decision the reviewer saw (0 when
            there was none).  When someone has changed it since, nothing is
            written and :class:`ReviewConflict` says who and when.
        justification, owner, due_date, reason
            ``explained`` needs a justification; ``mitigation_planned`` an
            owner and a date; ``not_an_issue`` the reason why.
        """
        fields = _decision_fields(status, justification, owner, due_date, reason)
        now = _now()
        row = {**fields, "reviewer": reviewer.name, "reviewer_verified": reviewer.verified,
               "updated_at": now}
        try:
            with self._change() as conn:
                self._writable(conn, audit_id)
                self._known_finding(conn, audit_id, key)
                if expected_version == 0:
                    conn.execute(sa.insert(finding_reviews).values(
                        audit_id=audit_id, finding_key=key, row_version=1, **row))
                    new = 1
                else:
                    done = conn.execute(sa.update(finding_reviews).where(
                        finding_reviews.c.audit_id == audit_id,
                        finding_reviews.c.finding_key == key,
                        finding_reviews.c.row_version == expected_version).values(
                        row_version=finding_reviews.c.row_version + 1, **row))
                    if done.rowcount != 1:
                        raise self._conflict(conn, audit_id, key)
                    new = expected_version + 1
                text = fields["justification"] or fields["reason"]
                conn.execute(sa.insert(review_events).values(
                    audit_id=audit_id, finding_key=key, kind="decision", status=status,
                    text=text, owner=fields["owner"], due_date=fields["due_date"],
                    reviewer=reviewer.name, reviewer_verified=reviewer.verified, at=now))
        except IntegrityError:  # another reviewer made the first decision meanwhile
            with self.engine.connect() as conn:
                raise self._conflict(conn, audit_id, key) from None
        return new

    def _known_finding(self, conn, audit_id: int, key: str) -> None:
        results = json.loads(conn.execute(sa.select(audits.c.results_json).where(
            audits.c.id == audit_id)).scalar_one())
        if key not in {finding_key(f) for f in results.get("findings") or []}:
            raise InputError("This finding is not part of the saved audit.", field="finding")

    def _conflict(self, conn, audit_id: int, key: str) -> ReviewConflict:
        cur = conn.execute(sa.select(finding_reviews).where(
            finding_reviews.c.audit_id == audit_id,
            finding_reviews.c.finding_key == key)).first()
        if cur is None:
            return ReviewConflict("This finding's decision has been removed since you loaded "
                                  "it. Reload the review, then decide again.", field="review")
        return ReviewConflict(
            f"This finding was changed by {cur.reviewer} at {_when(cur.updated_at)} (to "
            f"{STATUSES.get(cur.status, cur.status)!r}) after you loaded it, so your change "
            "was not saved. Reload the review to see their decision, then apply yours "
            "again if it still holds.", field="review")

    def comment(self, audit_id: int, key: str, text: str, reviewer: Reviewer) -> None:
        """Add a comment to a finding."""
        text = str(text or "").strip()
        if not text:
            raise InputError("The comment is empty; write it first.", field="comment")
        with self._change() as conn:
            self._writable(conn, audit_id)
            self._known_finding(conn, audit_id, key)
            conn.execute(sa.insert(review_events).values(
                audit_id=audit_id, finding_key=key, kind="comment", text=text,
                reviewer=reviewer.name, reviewer_verified=reviewer.verified, at=_now()))

    def sign_off(self, audit_id: int, reviewer: Reviewer, role: str, statement: str) -> None:
        """Sign off a version of an audit; it is read-only from then on."""
        role, statement = str(role or "").strip(), str(statement or "").strip()
        if not role or not statement:
            raise InputError("A sign-off needs the signer's role and a statement of what is "
                             "signed off.", field="signoff")
        try:
            with self._change() as conn:
                self._writable(conn, audit_id)
                conn.execute(sa.insert(signoffs).values(
                    audit_id=audit_id, name=reviewer.name, role=role, statement=statement,
                    verified=reviewer.verified, signed_at=_now()))
        except IntegrityError:
            with self._change() as conn:
                self._writable(conn, audit_id)  # raises: signed off meanwhile
            raise

    def trail(self, audit_id: int) -> pd.DataFrame:
        """Every decision and comment on an audit, in the order made."""
        with self.engine.connect() as conn:
            df = pd.read_sql(sa.select(review_events).where(
                review_events.c.audit_id == audit_id).order_by(review_events.c.at,
                                                               review_events.c.id), conn)
        return df.drop(columns=["id", "audit_id"])

    def new_version(self, audit_id: int) -> int:
        """A new version of a saved audit (the same results and counts), which
        points to it and starts from its decisions and comments: how a
        signed-off review is changed."""
        a = self.audit(audit_id)
        counts = self.counts(audit_id).rename(columns={"group": "group_name"})
        try:
            return self._new_version(a, audit_id, counts)
        except IntegrityError:
            raise InputError(f"Someone started a new version of audit {audit_id} at the same "
                             "moment; reload to review that one.", field="audit") from None

    def _new_version(self, a: dict, audit_id: int, counts: pd.DataFrame) -> int:
        with self._change() as conn:
            latest = self._latest(conn, a["data_sha256"], a["spec_hash"])
            base = audit_id if latest is None else latest.id
            if base != audit_id:
                raise InputError(f"Audit {audit_id} already has a newer version ({base}); "
                                 "change that one.", field="audit")
            new_id = self._insert_audit(conn, {
                "saved_at": _now(), "data_sha256": a["data_sha256"],
                "data_name": a["data_name"], "spec_hash": a["spec_hash"],
                "spec_json": json.dumps(a["spec"], sort_keys=True),
                "models_json": json.dumps(a["models"]), "tool_version": a["tool_version"],
                "provenance_json": json.dumps(a["provenance"]),
                "results_json": json.dumps(a["results"]), "version": a["version"] + 1,
                "previous_id": audit_id}, _records(counts))
            self._carry_review(conn, audit_id, new_id)
        return new_id

    def _carry_review(self, conn, old: int, new: int) -> None:
        """Copy the decisions and comments of ``old`` to ``new`` (for the
        findings ``new`` still has)."""
        results = json.loads(conn.execute(sa.select(audits.c.results_json).where(
            audits.c.id == new)).scalar_one())
        keys = {finding_key(f) for f in results.get("findings") or []}
        skip = {"id", "audit_id"}
        for r in conn.execute(sa.select(finding_reviews).where(
                finding_reviews.c.audit_id == old)).all():
            if r.finding_key in keys:
                conn.execute(sa.insert(finding_reviews).values(
                    audit_id=new, **{k: v for k, v in r._asdict().items() if k not in skip}))
        for r in conn.execute(sa.select(review_events).where(
                review_events.c.audit_id == old, review_events.c.kind == "comment")).all():
            if r.finding_key in keys:
                conn.execute(sa.insert(review_events).values(
                    audit_id=new, **{k: v for k, v in r._asdict().items() if k not in skip}))

    # --------------------------------------------------------- export/import
    def export_reviews(self, audit_id: int) -> dict:
        """A saved audit and its review as one JSON-ready document: the spec,
        provenance, count table and results, every decision and comment,
        and the sign-off.  :meth:`import_reviews` reads it into another
        store."""
        a = self.audit(audit_id)
        with self.engine.connect() as conn:
            decisions = [_jsonable(r._asdict(), drop=("id", "audit_id")) for r in conn.execute(
                sa.select(finding_reviews).where(finding_reviews.c.audit_id == audit_id)
                .order_by(finding_reviews.c.id))]
            events = [_jsonable(r._asdict(), drop=("id", "audit_id")) for r in conn.execute(
                sa.select(review_events).where(review_events.c.audit_id == audit_id)
                .order_by(review_events.c.at, review_events.c.id))]
            signed = self._signed(conn, audit_id)
        return {"format": EXPORT_FORMAT, "format_version": EXPORT_VERSION,
                "audit": {"data_sha256": a["data_sha256"], "data_name": a["data_name"],
                          "spec": a["spec"], "version": a["version"],
                          "tool_version": a["tool_version"], "provenance": a["provenance"],
                          "results": a["results"],
                          "counts": _records(self.counts(audit_id))},
                "decisions": decisions, "events": events,
                "signoff": None if signed is None else _jsonable(signed._asdict(),
                                                                 drop=("id", "audit_id"))}

    def import_reviews(self, doc, *, sha256: str | None = None,
                       spec: dict | None = None) -> dict:
        """Read a review exported by :meth:`export_reviews` into this store.

        The audit is matched on its data's SHA-256 (see
        :func:`data_fingerprint`) and its settings: when ``sha256`` and
        ``spec`` are given (the audit at hand) they must be the export's; when the store has no such audit, it is added from the
        export (its counts and results travel with it).  A decision newer
        than this store's replaces it, comments not yet here are added, and
        the sign-off is copied.  Returns what was done: ``audit_id,
        decisions, comments, signed``.
        """
        doc = _check_export(doc)
        a = doc["audit"]
        if sha256 is not None and (a["data_sha256"] != sha256 or
                                   spec is not None and spec_hash(a["spec"]) != spec_hash(spec)):
            same_data = a["data_sha256"] == sha256
            raise InputError(
                "The reviews in this file are of a different audit: "
                + ("the same data, but other settings" if same_data else
                   f"data with SHA-256 {a['data_sha256'][:12]}... (this audit's data: "
                   f"{sha256[:12]}...)") + ". Import them with the data and settings they "
                "were made on (the settings are in the file).", field="review")
        done = {"decisions": 0, "comments": 0, "signed": False}
        with self._change() as conn:
            latest = self._latest(conn, a["data_sha256"], spec_hash(a["spec"]))
            if latest is None:
                audit_id = self._insert_audit(conn, {
                    "saved_at": _now(), "data_sha256": a["data_sha256"],
                    "data_name": a.get("data_name"), "spec_hash": spec_hash(a["spec"]),
                    "spec_json": json.dumps(a["spec"], sort_keys=True),
                    "models_json": json.dumps(list(a["spec"].get("predictions") or []) +
                                              list(a["spec"].get("scores") or [])),
                    "tool_version": a.get("tool_version"),
                    "provenance_json": json.dumps(_round_range(a.get("provenance") or {})),
                    "results_json": json.dumps(a["results"]), "version": 1,
                    "previous_id": None},
                    [{k: c.get(k) for k in ("model", "attribute", "group_name", "n", "weight",
                                            "tn", "fp", "fn", "tp", "selected")}
                     for c in _count_records(a.get("counts") or [])])
            else:
                audit_id = latest.id
            signed = self._signed(conn, audit_id) is not None
            keys = {finding_key(f) for f in json.loads(conn.execute(
                sa.select(audits.c.results_json).where(audits.c.id == audit_id))
                .scalar_one()).get("findings") or []}
            mine = {r.finding_key: r for r in conn.execute(sa.select(finding_reviews).where(
                finding_reviews.c.audit_id == audit_id))}
            seen = {(r.finding_key, r.kind, _utc(r.at), r.reviewer, r.text) for r in
                    conn.execute(sa.select(review_events).where(
                        review_events.c.audit_id == audit_id))}
            writes = []
            for d in doc["decisions"]:
                if d["finding_key"] not in keys:
                    continue
                cur = mine.get(d["finding_key"])
                if cur is None or _utc(cur.updated_at) < d["updated_at"]:
                    writes.append(("decision", d, cur))
            for e in doc["events"]:
                if e["finding_key"] in keys and (e["finding_key"], e["kind"], e["at"],
                                                 e["reviewer"], e["text"]) not in seen:
                    writes.append(("event", e, None))
            sign = doc["signoff"] is not None and not signed
            if signed and writes:
                raise ReadOnlyAudit("The audit these reviews belong to is signed off in this "
                                    "store and can no longer be changed; start a new version "
                                    "of it, then import again.", field="review")
            for kind, d, cur in writes:
                if kind == "decision":
                    row = {k: d[k] for k in ("status", "justification", "owner", "due_date",
                                             "reason", "reviewer", "reviewer_verified",
                                             "updated_at")}
                    if cur is None:
                        conn.execute(sa.insert(finding_reviews).values(
                            audit_id=audit_id, finding_key=d["finding_key"], row_version=1,
                            **row))
                    else:
                        conn.execute(sa.update(finding_reviews).where(
                            finding_reviews.c.id == cur.id).values(
                            row_version=cur.row_version + 1, **row))
                    done["decisions"] += 1
                else:
                    conn.execute(sa.insert(review_events).values(
                        audit_id=audit_id, **{k: d[k] for k in (
                            "finding_key", "kind", "status", "text", "owner", "due_date",
                            "reviewer", "reviewer_verified", "at")}))
                    done["comments"] += d["kind"] == "comment"
            if sign:
                s = doc["signoff"]
                conn.execute(sa.insert(signoffs).values(
                    audit_id=audit_id, **{k: s[k] for k in ("name", "role", "statement",
                                                            "verified", "signed_at")}))
                done["signed"] = True
        return {"audit_id": audit_id, **done}


def _decision_fields(status, justification, owner, due_date, reason) -> dict:
    if status not in STATUSES:
        raise InputError(f"{status!r} is not a status of a finding; choose one of "
                         f"{', '.join(STATUSES)}.", field="status")

    def text(v):
        v = str(v).strip() if v is not None else ""
        return v or None
    out = {"status": status, "justification": None, "owner": None, "due_date": None,
           "reason": None}
    if status == "explained":
        if not text(justification):
            raise InputError("An explained finding needs its justification: why the gap is "
                             "legitimate.", field="justification")
        out["justification"] = text(justification)
    elif status == "mitigation_planned":
        if not text(owner) or due_date is None:
            raise InputError("A planned mitigation needs an owner and a date by which it is "
                             "done.", field="owner")
        if not isinstance(due_date, dt.date):
            raise InputError("The mitigation's date must be a date (YYYY-MM-DD).", field="date")
        out["owner"], out["due_date"] = text(owner), due_date
        out["justification"] = text(justification)
    elif status == "not_an_issue":
        if not text(reason):
            raise InputError("Say why the finding is not an issue.", field="reason")
        out["reason"] = text(reason)
    return out


def _records(df: pd.DataFrame) -> list[dict]:
    return [{k: (None if isinstance(v, float) and math.isnan(v) else
                 v.item() if hasattr(v, "item") else v) for k, v in r.items()}
            for r in df.to_dict("records")]


def _count_records(rows: list) -> list:
    return [{**r, "group_name": r.get("group_name", r.get("group"))} for r in rows]


def _jsonable(d: dict, drop=()) -> dict:
    out = {}
    for k, v in d.items():
        if k in drop:
            continue
        if isinstance(v, dt.datetime):
            v = _utc(v).isoformat()
        elif isinstance(v, dt.date):
            v = v.isoformat()
        out[k] = v
    return out


def _check_export(doc) -> dict:
    """An exported review, checked and with its dates parsed."""
    try:
        doc = json.loads(dumps_export(doc))  # a copy, its dates as text
    except (TypeError, ValueError):
        doc = None
    bad = InputError("This file is not a review exported by fairness-audit "
                     "(--review-export or the dashboard's History page).", field="review")
    if not isinstance(doc, dict) or doc.get("format") != EXPORT_FORMAT:
        raise bad
    if doc.get("format_version") != EXPORT_VERSION:
        raise InputError(f"This review file has format version {doc.get('format_version')!r}; "
                         f"this version of fairness-audit reads version {EXPORT_VERSION}.",
                         field="review")
    try:
        a = doc["audit"]
        if not (isinstance(a["data_sha256"], str) and isinstance(a["spec"], dict)
                and isinstance(a["results"], dict)):
            raise TypeError
        for d in doc["decisions"]:
            if d["status"] not in STATUSES or not isinstance(d["finding_key"], str):
                raise ValueError
            d["updated_at"] = _utc(dt.datetime.fromisoformat(d["updated_at"]))
            d["due_date"] = dt.date.fromisoformat(d["due_date"]) if d.get("due_date") else None
            d["reviewer_verified"] = bool(d["reviewer_verified"])
            str(d["reviewer"])
        for e in doc["events"]:
            if e["kind"] not in ("decision", "comment") or not isinstance(e["finding_key"], str):
                raise ValueError
            e["at"] = _utc(dt.datetime.fromisoformat(e["at"]))
            e["due_date"] = dt.date.fromisoformat(e["due_date"]) if e.get("due_date") else None
            e["reviewer_verified"] = bool(e["reviewer_verified"])
            for k in ("status", "text", "owner"):
                e.setdefault(k, None)
        s = doc["signoff"]
        if s is not None:
            s["signed_at"] = _utc(dt.datetime.fromisoformat(s["signed_at"]))
            s["verified"] = bool(s["verified"])
            if not all(isinstance(s[k], str) for k in ("name", "role", "statement")):
                raise TypeError
    except (KeyError, TypeError, ValueError, AttributeError):
        raise bad from None
    return doc


def read_export(path) -> dict:
    """A review file (see :meth:`Store.export_reviews`) read from ``path``."""
    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"Could not read the review file {str(path)!r} ({exc.strerror}).",
                         field="review") from None
    try:
        doc = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        raise InputError(f"The review file {str(path)!r} is not JSON; give a file written by "
                         "--review-export.", field="review") from None
    return _check_export(doc)


def dumps_export(doc: dict) -> str:
    """An exported review as JSON text."""
    return json.dumps(_jsonable_tree(doc), indent=1, ensure_ascii=False)


def _jsonable_tree(v):
    if isinstance(v, dict):
        return {k: _jsonable_tree(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_jsonable_tree(x) for x in v]
    if isinstance(v, dt.datetime):
        return _utc(v).isoformat()
    if isinstance(v, dt.date):
        return v.isoformat()
    return v


__all__ = ["STATUSES", "ReadOnlyAudit", "Review", "ReviewConflict", "Reviewer", "Store",
           "data_fingerprint", "dumps_export", "finding_key", "open_store", "read_export",
           "sqlite_url", "upgrade"]
