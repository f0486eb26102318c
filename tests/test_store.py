"""The review trail's store (``fairness_core.store``): what is saved (never a
row), its migrations, the review (statuses, comments, sign-off, versions),
two reviewers at once on SQLite and PostgreSQL, and moving reviews between
stores.  Counts are checked against pandas hand counts of the input."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading
import uuid

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from fairness_core import AuditSpec, InputError, audit
from fairness_core.store import (STATUSES, ReadOnlyAudit, ReviewConflict, Reviewer,
                                 dumps_export, finding_key, make_engine, open_store,
                                 read_export, sqlite_url, upgrade)

ANN = Reviewer("Ann Analyst")
BOB = Reviewer("Bob Builder")


def planted_data(n: int = 900, seed: int = 7) -> pd.DataFrame:
    """Rows with values that must never reach the store: unique IDs, free
    text, and exact scores with nine decimals."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(["Female", "Male"], n, p=[0.45, 0.55])
    y = rng.random(n) < 0.5
    score = np.round(rng.uniform(0.001, 0.999, n), 9)
    score = np.where(sex == "Female", np.round(score * 0.8, 9), score)
    return pd.DataFrame({
        "person_id": [f"PID-{uuid.UUID(int=int(rng.integers(1 << 62)) << 64 | i).hex}"
                      for i in range(n)],
        "note": [f"customer said the weather in town {i} was peculiar" for i in range(n)],
        "sex": sex, "repaid": np.where(y, "yes", "no"),
        "approved": np.where((score > 0.45) | (y & (rng.random(n) < 0.3)), "yes", "no"),
        "risk": score})


SPEC = AuditSpec(label="repaid", positive="yes", predictions=["approved"], scores=["risk"],
                 sensitive=["sex"], n_bootstrap=100)


@pytest.fixture(scope="module")
def data():
    return planted_data()


@pytest.fixture(scope="module")
def result(data):
    return audit(data, SPEC, name="planted.csv")


@pytest.fixture
def store(tmp_path):
    s = open_store(sqlite_url(tmp_path / "store"))
    yield s
    s.close()


def dump(engine) -> str:
    """Every value of every table of the database, as text."""
    out = []
    with engine.connect() as conn:
        for name in sa.inspect(conn).get_table_names():
            for row in conn.execute(sa.text(f'SELECT * FROM "{name}"')):
                out.extend(str(v) for v in row)
    return "\n".join(out)


def fail_keys(review) -> list:
    return [f["key"] for f in review.findings if f["finding"]["kind"] == "fail"]


# ------------------------------------------------------------ what is kept
def test_no_row_level_value_reaches_any_table(store, data, result):
    audit_id, created = store.save_audit(result)
    assert created
    key = fail_keys(store.review(audit_id))[0]
    store.decide(audit_id, key, "explained", ANN, expected_version=0, justification="ok")
    text = dump(store.engine)
    assert "planted.csv" in text and "Female" in text  # the dump does hold the audit
    for pid in data["person_id"]:
        assert pid not in text
    for note in data["note"].head(50):
        assert note not in text
    assert "peculiar" not in text
    for s in data["risk"]:
        assert repr(float(s)) not in text, s
    # the scores' extremes (two people's exact scores) are kept rounded
    lo, hi = data["risk"].min(), data["risk"].max()
    th = store.audit(audit_id)["provenance"]["thresholds"]["risk"]
    assert th["score_min"] == pytest.approx(lo, rel=5e-3) and th["score_min"] != lo
    assert th["score_max"] == pytest.approx(hi, rel=5e-3) and th["score_max"] != hi


def test_previews_made_on_the_side_are_not_saved(store, data, result):
    """A mitigation preview's cut-offs can be people's exact scores: not kept."""
    cut = float(data["risk"].iloc[17])
    with_preview = dataclasses.replace(result, mitigation={"thresholds": {"Female": cut}})
    assert str(cut) in with_preview.to_json()
    audit_id, _ = store.save_audit(with_preview)
    assert "mitigation" not in store.audit(audit_id)["results"]
    assert repr(cut) not in dump(store.engine)


def test_count_table_matches_hand_counts(store, data, result):
    audit_id, _ = store.save_audit(result)
    counts = store.counts(audit_id)
    y = data["repaid"] == "yes"
    for model, pred in (("approved", data["approved"] == "yes"), ("risk", data["risk"] >= 0.5)):
        for sex in ("Female", "Male"):
            m = data["sex"] == sex
            row = counts[(counts["model"] == model) & (counts["attribute"] == "sex")
                         & (counts["group"] == sex)].iloc[0]
            assert row["n"] == m.sum()
            assert row["tp"] == (m & y & pred).sum()
            assert row["fp"] == (m & ~y & pred).sum()
            assert row["fn"] == (m & y & ~pred).sum()
            assert row["tn"] == (m & ~y & ~pred).sum()
            assert row["selected"] == (m & pred).sum()
    a = store.audit(audit_id)
    assert a["data_sha256"] == result.provenance["input"]["sha256"]
    assert a["spec"] == json.loads(json.dumps(SPEC.to_dict(), default=str))
    assert a["results"]["disparities"] == json.loads(result.to_json())["disparities"]
    assert a["provenance"]["library_versions"]["pandas"] == pd.__version__


def test_without_a_true_outcome_only_selected_rows_are_kept(store, data):
    res = audit(data, AuditSpec(predictions=["approved"], sensitive=["sex"], positive="yes",
                                n_bootstrap=0), name="planted.csv")
    audit_id, _ = store.save_audit(res)
    counts = store.counts(audit_id)
    for sex, g in data.groupby("sex"):
        row = counts[(counts["attribute"] == "sex") & (counts["group"] == sex)].iloc[0]
        assert row["n"] == len(g) and row["selected"] == (g["approved"] == "yes").sum()
        assert row[["tn", "fp", "fn", "tp"]].isna().all()
    assert "unavailable" in store.audit(audit_id)["results"]


def test_same_audit_saved_twice_is_one_audit(store, result):
    first, created = store.save_audit(result)
    again, created_again = store.save_audit(result)
    assert created and not created_again and again == first
    assert len(store.audits()) == 1


def test_audit_list_filters(store, result, data):
    store.save_audit(result)
    other = audit(data.head(600), AuditSpec(label="repaid", positive="yes",
                                            predictions=["approved"], sensitive=["sex"],
                                            n_bootstrap=0), name="other.csv")
    store.save_audit(other)
    assert len(store.audits()) == 2
    assert list(store.audits(model="risk")["data_name"]) == ["planted.csv"]
    assert list(store.audits(data="other.csv")["data_name"]) == ["other.csv"]
    today = dt.datetime.now(dt.timezone.utc).date()
    assert len(store.audits(since=today, until=today)) == 2
    assert len(store.audits(until=today - dt.timedelta(days=1))) == 0


# -------------------------------------------------------------- migrations
def test_migrations_on_an_empty_database(tmp_path):
    s = open_store(f"sqlite:///{tmp_path / 'new.sqlite'}")
    with s.engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
        head = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
    assert {"audits", "audit_counts", "finding_reviews", "review_events",
            "signoffs"} <= tables
    assert head == "0002"


def test_migration_keeps_data_of_the_previous_version(tmp_path, result):
    _migrate_with_data(f"sqlite:///{tmp_path / 'old.sqlite'}", result)


def _migrate_with_data(url: str, result):
    """A store made at version 0001 with an audit in it, then opened (and
    so upgraded): the audit and its counts are kept and can be reviewed."""
    engine = make_engine(url)
    upgrade(engine, "0001")
    with engine.connect() as conn:
        assert "finding_reviews" not in sa.inspect(conn).get_table_names()
    from fairness_core.store import count_rows, spec_hash, stored_results
    res = stored_results(result)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO audits (id, saved_at, data_sha256, data_name, spec_hash, spec_json, "
            "models_json, tool_version, provenance_json, results_json) VALUES (7, "
            ":t, :sha, 'planted.csv', :sh, :spec, :models, '0.1.0', :prov, :res)"),
            {"t": dt.datetime(2026, 1, 2, 3, 4, 5), "sha": result.provenance["input"]["sha256"],
             "sh": spec_hash(result.spec.to_dict()),
             "spec": json.dumps(result.spec.to_dict(), sort_keys=True),
             "models": json.dumps(["approved", "risk"]),
             "prov": json.dumps(res["provenance"]), "res": json.dumps(res)})
        for c in count_rows(result):
            conn.execute(sa.text(
                "INSERT INTO audit_counts (audit_id, model, attribute, group_name, n, weight, "
                "tn, fp, fn, tp, selected) VALUES (7, :model, :attribute, :group_name, :n, "
                ":weight, :tn, :fp, :fn, :tp, :selected)"), c)
    engine.dispose()
    s = open_store(url)
    listed = s.audits()
    assert list(listed["id"]) == [7] and list(listed["version"]) == [1]
    assert listed["saved_at"][0] == dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    assert len(s.counts(7)) == len(result.groups)
    # the old audit can be reviewed, and saving it again finds it
    key = fail_keys(s.review(7))[0]
    assert s.decide(7, key, "open", ANN, expected_version=0) == 1
    assert s.save_audit(result) == (7, False)
    s.close()


# ------------------------------------------------------------------ review
def test_statuses_need_their_fields(store, result):
    audit_id, _ = store.save_audit(result)
    key = fail_keys(store.review(audit_id))[0]
    for status, kw, field in (("explained", {}, "justification"),
                              ("mitigation_planned", {"owner": "Cy"}, "owner"),
                              ("not_an_issue", {"reason": "  "}, "reason"),
                              ("closed", {}, "status")):
        with pytest.raises(InputError) as err:
            store.decide(audit_id, key, status, ANN, expected_version=0, **kw)
        assert err.value.field == field
    v = store.decide(audit_id, key, "mitigation_planned", ANN, expected_version=0,
                     owner="Cy Owner", due_date=dt.date(2027, 3, 31))
    v = store.decide(audit_id, key, "not_an_issue", BOB, expected_version=v,
                     reason="the groups differ in legitimate ways")
    d = store.review(audit_id).item(key)["decision"]
    assert (d["status"], d["reason"], d["reviewer"], d["row_version"]) == (
        "not_an_issue", "the groups differ in legitimate ways", "Bob Builder", 2)
    assert d["owner"] is None and d["due_date"] is None
    trail = store.trail(audit_id)
    assert list(trail["status"]) == ["mitigation_planned", "not_an_issue"]
    assert trail["due_date"].iloc[0] == dt.date(2027, 3, 31)
    assert list(trail["reviewer"]) == ["Ann Analyst", "Bob Builder"]
    with pytest.raises(InputError, match="not part of the saved audit"):
        store.decide(audit_id, finding_key({"kind": "fail", "model": "x"}), "open", ANN,
                     expected_version=0)
    with pytest.raises(InputError, match="reviewer's name"):
        Reviewer("  ")
    assert set(STATUSES) == {"open", "explained", "mitigation_planned", "not_an_issue"}


def test_finding_keys_are_stable_across_versions(store, result, data):
    """The same finding on other data (the numbers change) has the same key."""
    a, _ = store.save_audit(result)
    b, _ = store.save_audit(audit(data.sample(frac=0.9, random_state=3), SPEC,
                                  name="planted.csv"))
    ka = {f["key"]: f["finding"] for f in store.review(a).findings}
    kb = {f["key"]: f["finding"] for f in store.review(b).findings}
    same = set(ka) & set(kb)
    assert same
    for k in same:
        assert (ka[k]["metric"], ka[k]["group"]) == (kb[k]["metric"], kb[k]["group"])


def test_sign_off_makes_the_audit_read_only_and_a_new_version_points_to_it(store, result):
    audit_id, _ = store.save_audit(result)
    key = fail_keys(store.review(audit_id))[0]
    store.decide(audit_id, key, "explained", ANN, expected_version=0, justification="known")
    store.comment(audit_id, key, "Checked with the data owner.", BOB)
    with pytest.raises(InputError, match="role"):
        store.sign_off(audit_id, ANN, "", "statement")
    store.sign_off(audit_id, Reviewer("Rita Risk", verified=True), "Risk officer",
                   "The findings are reviewed.")
    review = store.review(audit_id)
    assert review.signed and review.signoff["role"] == "Risk officer"
    assert review.unverified_names == ["Ann Analyst", "Bob Builder"]
    for write in (lambda: store.decide(audit_id, key, "open", ANN, expected_version=1),
                  lambda: store.comment(audit_id, key, "late", ANN),
                  lambda: store.sign_off(audit_id, ANN, "Analyst", "again")):
        with pytest.raises(ReadOnlyAudit, match="signed off by Rita Risk"):
            write()
    assert len(store.trail(audit_id)) == 2  # nothing was added
    assert store.save_audit(result) == (audit_id, False)  # the same audit, still signed
    new_id = store.new_version(audit_id)
    new = store.review(new_id)
    assert (new.version, new.previous_id, new.signed) == (2, audit_id, False)
    item = new.item(key)
    assert item["decision"]["justification"] == "known"
    assert [c["text"] for c in item["comments"]] == ["Checked with the data owner."]
    store.decide(new_id, key, "open", ANN, expected_version=item["decision"]["row_version"])
    assert store.review(audit_id).item(key)["decision"]["status"] == "explained"
    with pytest.raises(InputError, match="newer version"):
        store.new_version(audit_id)
    # saving the same audit now finds the open new version
    assert store.save_audit(result) == (new_id, False)


# ----------------------------------------------------- two reviewers at once
def _two_sessions(url: str, result):
    one, two = open_store(url), open_store(url)  # two engines, two connections
    try:
        saved = []
        start = threading.Barrier(2)

        def save(store):
            start.wait()
            saved.append(store.save_audit(result))
        savers = [threading.Thread(target=save, args=(s,)) for s in (one, two)]
        for t in savers:
            t.start()
        for t in savers:
            t.join()
        # both saved the same audit at the same moment: one audit, saved once
        assert len({i for i, _ in saved}) == 1 and sorted(c for _, c in saved) == [False, True]
        assert len(one.audits()) == 1
        audit_id = saved[0][0]
        key = fail_keys(two.review(audit_id))[0]
        seen_by_one = one.review(audit_id).item(key)["decision"]
        seen_by_two = two.review(audit_id).item(key)["decision"]
        assert seen_by_one is None and seen_by_two is None
        assert one.decide(audit_id, key, "explained", ANN, expected_version=0,
                          justification="seasonal effect") == 1
        with pytest.raises(ReviewConflict, match=r"changed by Ann Analyst at "
                           r"\d{4}-\d\d-\d\d \d\d:\d\d UTC .* Reload the review"):
            two.decide(audit_id, key, "not_an_issue", BOB, expected_version=0, reason="noise")
        now = two.review(audit_id).item(key)["decision"]
        assert (now["status"], now["justification"], now["row_version"]) == (
            "explained", "seasonal effect", 1)
        assert two.decide(audit_id, key, "not_an_issue", BOB, expected_version=1,
                          reason="noise") == 2
        with pytest.raises(ReviewConflict, match="changed by Bob Builder"):
            one.decide(audit_id, key, "open", ANN, expected_version=1)
        # both at the same moment: exactly one wins
        errors, wins = [], []
        barrier = threading.Barrier(2)

        def go(store, who):
            barrier.wait()
            try:
                wins.append(store.decide(audit_id, key, "open", who, expected_version=2))
            except ReviewConflict as exc:
                errors.append(exc)
        threads = [threading.Thread(target=go, args=(s, w)) for s, w in ((one, ANN),
                                                                         (two, BOB))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert wins == [3] and len(errors) == 1
        assert one.review(audit_id).item(key)["decision"]["row_version"] == 3
        assert list(one.trail(audit_id)["status"]) == ["explained", "not_an_issue", "open"]
    finally:
        one.close()
        two.close()


def _sign_off_during_a_decision(url: str, result, rounds: int = 6):
    """One session signs off while another decides: the decision is either
    made before the sign-off or refused, never written after it."""
    one, two = open_store(url), open_store(url)
    try:
        audit_id, _ = one.save_audit(result)
        key = fail_keys(one.review(audit_id))[0]
        outcomes = []
        for _ in range(rounds):
            barrier = threading.Barrier(2)
            got = {}
            cur = one.review(audit_id).item(key)["decision"]

            def decide():
                barrier.wait()
                try:
                    two.decide(audit_id, key, "open", BOB,
                               expected_version=cur["row_version"] if cur else 0)
                    got["decide"] = "written"
                except ReadOnlyAudit:
                    got["decide"] = "refused"

            def sign():
                barrier.wait()
                one.sign_off(audit_id, ANN, "Risk officer", "Signed.")
            threads = [threading.Thread(target=decide), threading.Thread(target=sign)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            review = one.review(audit_id)
            assert review.signed
            trail = one.trail(audit_id)
            if len(trail):
                last = pd.Timestamp(trail["at"].max())
                last = last.tz_localize("UTC") if last.tzinfo is None else last
                assert last <= pd.Timestamp(review.signoff["signed_at"])
            # this version's trail: Bob's decision is in it exactly when it was written
            written = int((trail["reviewer"] == "Bob Builder").sum()) if len(trail) else 0
            assert written == (1 if got["decide"] == "written" else 0)
            outcomes.append(got["decide"])
            audit_id = one.new_version(audit_id)
        return outcomes
    finally:
        one.close()
        two.close()


def test_two_sessions_on_one_sqlite_file(tmp_path, result):
    _two_sessions(sqlite_url(tmp_path / "shared"), result)


def test_sign_off_during_a_decision_on_sqlite(tmp_path, result):
    outcomes = _sign_off_during_a_decision(sqlite_url(tmp_path / "shared"), result)
    assert set(outcomes) <= {"written", "refused"}


@pytest.fixture
def fresh_postgres(postgres_url):
    """A new database on the test server, for this test alone."""
    import psycopg
    from urllib.parse import urlsplit

    u = urlsplit(postgres_url)
    name = f"store_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(host=u.hostname, port=u.port, user="postgres", dbname="postgres",
                         autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} OWNER {u.username}")
    yield f"postgresql://{u.username}@{u.hostname}:{u.port}/{name}"


@pytest.mark.engines
def test_two_sessions_on_postgresql(fresh_postgres, result):
    _two_sessions(fresh_postgres, result)


@pytest.mark.engines
def test_sign_off_during_a_decision_on_postgresql(fresh_postgres, result):
    _sign_off_during_a_decision(fresh_postgres, result)


@pytest.mark.engines
def test_postgresql_migration_keeps_data_of_the_previous_version(fresh_postgres, result):
    _migrate_with_data(fresh_postgres, result)


@pytest.mark.engines
def test_postgresql_store_keeps_no_row_and_migrates(fresh_postgres, data, result):
    s = open_store(fresh_postgres)
    try:
        audit_id, _ = s.save_audit(result)
        s.sign_off(audit_id, ANN, "Analyst", "Reviewed.")
        text = dump(s.engine)
        assert "planted.csv" in text
        assert not any(pid in text for pid in data["person_id"])
        assert "peculiar" not in text
        with s.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT version_num FROM alembic_version")
                                ).scalar_one() == "0002"
        assert s.review(audit_id).signoff["signed_at"].tzinfo is not None
    finally:
        s.close()


# ---------------------------------------------------------- export / import
def test_reviews_travel_to_another_store(tmp_path, store, result):
    # a store that has the audit, unsigned, with a decision older than the export's
    third = open_store(sqlite_url(tmp_path / "third"))
    tid, _ = third.save_audit(result)
    keys = fail_keys(store.review(store.save_audit(result)[0]))
    third.decide(tid, keys[0], "open", BOB, expected_version=0)
    third.decide(tid, keys[2], "open", BOB, expected_version=0)

    audit_id = store.find_result(result)
    store.decide(audit_id, keys[0], "explained", ANN, expected_version=0, justification="why")
    store.comment(audit_id, keys[1], "Look again next quarter.", BOB)
    store.sign_off(audit_id, Reviewer("Olga Outside"), "External auditor", "Agreed.")
    path = tmp_path / "review.json"
    path.write_text(dumps_export(store.export_reviews(audit_id)), encoding="utf-8")

    other = open_store(sqlite_url(tmp_path / "other"))
    done = other.import_reviews(read_export(path))
    assert done == {"audit_id": 1, "decisions": 1, "comments": 1, "signed": True}
    got = other.review(1)
    assert got.item(keys[0])["decision"]["justification"] == "why"
    assert got.item(keys[1])["comments"][0]["text"] == "Look again next quarter."
    assert got.signoff["name"] == "Olga Outside" and got.signoff["verified"] is False
    assert got.unverified_names == ["Ann Analyst", "Bob Builder", "Olga Outside"]
    pd.testing.assert_frame_equal(other.counts(1), store.counts(audit_id))
    assert other.audit(1)["results"] == store.audit(audit_id)["results"]
    # again: nothing new
    assert other.import_reviews(read_export(path)) == {
        "audit_id": 1, "decisions": 0, "comments": 0, "signed": False}

    done = third.import_reviews(read_export(path), sha256=result.provenance["input"]["sha256"],
                                spec=result.spec.to_dict())
    assert done == {"audit_id": tid, "decisions": 1, "comments": 1, "signed": True}
    got = third.review(tid)
    d = got.item(keys[0])["decision"]
    assert (d["status"], d["justification"], d["row_version"]) == ("explained", "why", 2)
    assert got.item(keys[2])["decision"]["status"] == "open"  # not in the export: kept
    assert got.signed


def test_import_refuses_other_audits_and_bad_files(tmp_path, store, result):
    audit_id, _ = store.save_audit(result)
    doc = store.export_reviews(audit_id)
    with pytest.raises(InputError, match="different audit: data with SHA-256"):
        store.import_reviews(doc, sha256="0" * 64, spec=result.spec.to_dict())
    other = dict(result.spec.to_dict(), tolerance=0.9)
    with pytest.raises(InputError, match="the same data, but other settings"):
        store.import_reviews(doc, sha256=result.provenance["input"]["sha256"], spec=other)
    bad = tmp_path / "bad.json"
    for text in ("not json", json.dumps({"format": "something else"}),
                 json.dumps({**json.loads(dumps_export(doc)), "decisions": [{"x": 1}]})):
        bad.write_text(text)
        with pytest.raises(InputError, match="review"):
            read_export(bad)
    with pytest.raises(InputError, match="Could not read"):
        read_export(tmp_path / "missing.json")


def test_open_store_errors_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="not a database URL"):
        open_store("::nonsense::")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InputError, match="Could not"):
        open_store(sqlite_url(blocker / "sub"))
    with pytest.raises(InputError, match="Could not create the folder of the review store"):
        open_store(f"sqlite:///{blocker / 'sub' / 'x.sqlite'}")
    made = open_store(f"sqlite:///{tmp_path / 'new' / 'folder' / 'x.sqlite'}")
    assert (tmp_path / "new" / "folder" / "x.sqlite").exists()
    made.close()
    with pytest.raises(InputError, match=r"Could not open the review store 'postgresql\+psycopg"
                                         r"://u:\*\*\*@127.0.0.1:1/x'"):
        open_store("postgresql://u:secret@127.0.0.1:1/x")


# --------------------------------------------------------------------- CLI
def _cli(*args) -> tuple[int, str, str]:
    import contextlib
    import io

    from fairness_core.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def planted_csv(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("cli") / "planted.csv"
    data.to_csv(path, index=False)
    other = path.with_name("other.csv")
    data.head(700).to_csv(other, index=False)
    return path, other


def _audit_args(path):
    return [path, "--label", "repaid", "--positive", "yes", "--prediction", "approved",
            "--sensitive", "sex", "--bootstrap", "0"]


def test_cli_saves_exports_and_imports_reviews(tmp_path, planted_csv, data):
    path, other = planted_csv
    url_a = f"sqlite:///{tmp_path / 'a.sqlite'}"
    code, _, err = _cli(*_audit_args(path), "--store", url_a)
    assert code == 0 and "Saved in the review store as audit 1 (version 1)." in err
    a = open_store(url_a)
    counts = a.counts(1)
    f = counts[(counts["attribute"] == "sex") & (counts["group"] == "Female")].iloc[0]
    female = data[data["sex"] == "Female"]
    assert f["tp"] == ((female["repaid"] == "yes") & (female["approved"] == "yes")).sum()
    key = fail_keys(a.review(1))[0]
    a.decide(1, key, "mitigation_planned", ANN, expected_version=0, owner="Model team",
             due_date=dt.date(2027, 1, 31))
    a.sign_off(1, ANN, "Data scientist", "Reviewed before release.")
    a.close()

    out = tmp_path / "review.json"
    report = tmp_path / "report.html"
    code, _, err = _cli(*_audit_args(path), "--store", url_a, "--review-export", out,
                        "--report", report)
    assert code == 0 and "Already saved in the review store as audit 1" in err
    html = report.read_text(encoding="utf-8")
    assert "Review</h2>" in html and "Signed off by Ann Analyst (unverified), Data scientist" \
        in html and "owner Model team, due 2027-01-31" in html
    assert "Reviewer names are typed and unverified: Ann Analyst." in html

    url_b = f"sqlite:///{tmp_path / 'b.sqlite'}"
    code, _, err = _cli(*_audit_args(path), "--store", url_b, "--review-import", out)
    assert code == 0 and "Imported 1 decision(s) and 0 comment(s) and the sign-off" in err
    b = open_store(url_b)
    got = b.review(1)
    assert got.signoff["statement"] == "Reviewed before release."
    assert got.item(key)["decision"]["owner"] == "Model team"
    b.close()

    code, _, err = _cli(*_audit_args(other), "--store", url_b, "--review-import", out)
    assert code == 2 and "different audit: data with SHA-256" in err
    code, _, err = _cli(*_audit_args(path), "--review-export", out)
    assert code == 2 and "need --store URL" in err
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    code, _, err = _cli(*_audit_args(path), "--store", url_b, "--review-import", bad)
    assert code == 2 and "not a review exported by fairness-audit" in err
    code, _, err = _cli(*_audit_args(path), "--store", "sqlite:///" + str(bad / "x.sqlite"))
    assert code == 2 and "Could not create the folder of the review store" in err
    code, _, err = _cli(*_audit_args(path), "--store", "postgresql://me:pw@127.0.0.1:1/x")
    assert code == 2 and "Could not open the review store 'postgresql+psycopg://me:***@" in err
    assert "pw" not in err.replace("psycopg", "") and "Traceback" not in err


def test_cli_without_store_writes_no_database(tmp_path, planted_csv, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, _ = _cli(*_audit_args(planted_csv[0]), "--quiet")
    assert code == 0 and list(tmp_path.iterdir()) == []


def test_cli_lists_and_compares_saved_audits(tmp_path):
    """--history lists the saved audits; --compare-saved and --compare store:ID
    compare two of them as compare_audits does on their JSON, whose numbers
    are the pandas counts' and scipy's."""
    import importlib.util
    from pathlib import Path

    from scipy import stats as sps

    from fairness_core.compare import compare_audits

    root = Path(__file__).resolve().parent.parent
    sp = importlib.util.spec_from_file_location("make_periods",
                                                root / "sample_data" / "make_periods.py")
    mp = importlib.util.module_from_spec(sp)
    sp.loader.exec_module(mp)
    frames, paths = [], []
    for i in (1, 2):  # period 2: the race penalty is down from 1.1 to 0.2
        seed, n, race_pen, fem_pen = mp.PERIODS[i]
        frames.append(mp.generate(seed=seed, n=n, race_penalty=race_pen,
                                  female_penalty=fem_pen))
        paths.append(tmp_path / f"loans_period{i}.csv")
        frames[-1].to_csv(paths[-1], index=False)
    url = f"sqlite:///{tmp_path / 'r.sqlite'}"
    args = ["--label", "repaid", "--positive", "yes", "--prediction", "approved",
            "--sensitive", "sex", "--sensitive", "race", "--bootstrap", "0"]
    jsons = []
    for i, path in enumerate(paths):
        jsons.append(tmp_path / f"audit{i + 1}.json")
        code, _, err = _cli(path, *args, "--store", url, "--json", jsons[-1])
        assert code == 0 and f"as audit {i + 1} (version 1)" in err

    code, out, _ = _cli("--store", url, "--history")
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].split()[:2] == ["id", "version"] and len(lines) == 3
    assert lines[1].split()[0] == "2" and "loans_period2.csv" in lines[1]  # newest first
    assert lines[2].split()[0] == "1" and "loans_period1.csv" in lines[2]

    got = tmp_path / "comparison.json"
    code, out, _ = _cli("--store", url, "--compare-saved", 1, 2, "--json", got)
    assert code == 0 and "=== Comparison with the earlier audit #1 (version 1" in out
    doc = json.loads(got.read_text(encoding="utf-8"))
    want = compare_audits(jsons[0], jsons[1])
    gaps = pd.DataFrame(doc["gaps"])
    assert len(gaps) == len(want.gaps)
    assert gaps["p_value_adjusted"].to_numpy(dtype=float) == pytest.approx(
        want.gaps["p_value_adjusted"].to_numpy(dtype=float), nan_ok=True, rel=1e-12)
    assert [f["text"] for f in doc["findings"]] == [f["text"] for f in want.findings]

    # by hand: Black applicants' selection rate, its gap to White, and the
    # two-proportion test of its change
    def sel(df, race):
        g = df[df["race"] == race]
        return int((g["approved"] == "yes").sum()), len(g)

    (x1, n1), (x2, n2) = sel(frames[0], "Black"), sel(frames[1], "Black")
    (w1, m1), (w2, m2) = sel(frames[0], "White"), sel(frames[1], "White")
    gap = gaps[(gaps["attribute"] == "race") & (gaps["group"] == "Black")
               & (gaps["metric"] == "selection_rate")].iloc[0]
    assert gap["before"] == pytest.approx((x1 / n1) / (w1 / m1), rel=1e-9)
    assert gap["after"] == pytest.approx((x2 / n2) / (w2 / m2), rel=1e-9)
    assert gap["significant"] and gap["trend"] == "narrowed"
    changes = pd.DataFrame(doc["changes"])
    row = changes[(changes["attribute"] == "race") & (changes["group"] == "Black")
                  & (changes["metric"] == "selection_rate")].iloc[0]
    assert row["p_value"] == pytest.approx(sps.chi2_contingency(
        [[x1, n1 - x1], [x2, n2 - x2]], correction=False).pvalue, rel=1e-9)
    assert f"narrowed from {gap['before']:.2f}x to {gap['after']:.2f}x" in out

    # this audit against a saved one: the same comparison as against its JSON file
    saved_out = tmp_path / "against_saved.json"
    code, _, _ = _cli(paths[1], *args, "--compare", "store:1", "--store", url,
                      "--json", saved_out, "--quiet")
    assert code == 0
    comp = json.loads(saved_out.read_text(encoding="utf-8"))["comparison"]
    assert [f["text"] for f in comp["findings"]] == [f["text"] for f in want.findings]

    for bad, message in [
            (["--history"], "give --store URL"),
            (["--store", url, "--compare-saved", 1, 9], "There is no saved audit 9"),
            (["--store", url, "--compare-saved", 2, 2], "two different audits"),
            ([paths[0], "--store", url, "--history"], "reads saved audits, not data"),
            ([paths[1], *args, "--compare", "store:1"], "give --store URL too"),
            ([paths[1], *args, "--compare", "store:one", "--store", url],
             "'one' is not the id of a saved audit"),
            (["--store", url], "Give the DATA to audit")]:
        code, _, err = _cli(*bad)
        assert code == 2 and message in err and "Traceback" not in err, (bad, err)


def test_a_table_counted_where_it_lives_is_known_by_its_counts(store, result, data):
    """A database table has no file to hash: its audit is known by the count
    table it was computed from."""
    def without_hash(res):
        prov = {**res.provenance, "input": {**res.provenance["input"], "sha256": None}}
        return dataclasses.replace(res, provenance=prov)

    first, created = store.save_audit(without_hash(result))
    assert created
    again = audit(data.copy(), SPEC, name="planted.csv")  # the same counts
    assert store.save_audit(without_hash(again)) == (first, False)
    fewer = audit(data.head(800), SPEC, name="planted.csv")
    other, created = store.save_audit(without_hash(fewer))
    assert created and other != first
    assert store.audit(first)["data_sha256"] not in (result.provenance["input"]["sha256"],
                                                     store.audit(other)["data_sha256"])


def test_trend_steps_are_the_pairwise_comparisons_of_consecutive_audits(store, data):
    """Each step of a trend is compare_saved of the audit and the one before;
    a pair whose reference group changed has no step, and a pair with
    nothing in common is refused by compare_saved with a clear message."""
    from fairness_core import history

    spec = dataclasses.replace(SPEC, n_bootstrap=0)
    first = store.save_audit(audit(data, spec, name="a.csv"))[0]
    second = store.save_audit(audit(data.head(600), spec, name="b.csv"))[0]
    third = store.save_audit(audit(data.head(500), dataclasses.replace(
        spec, reference={"sex": "Female"}), name="c.csv"))[0]
    saved = [store.audit(i) for i in (third, first, second)]  # any order
    steps = history.trend_steps(saved, "approved", "selection_rate")
    assert set(steps["audit_id"]) == {second}  # 3 against 2: another reference group
    pair = history.compare_saved(store.audit(first), store.audit(second))
    want = pair.gaps[(pair.gaps["metric"] == "selection_rate") & (pair.gaps["model"] == "approved")]
    assert list(steps["group"]) == list(want["group"])
    assert steps["p_value_adjusted"].to_numpy(dtype=float) == pytest.approx(
        want["p_value_adjusted"].to_numpy(dtype=float))
    # by hand: the ratio of the selection rates, before and after
    def ratio(df, g):
        r = df.groupby("sex")["approved"].apply(lambda s: (s == "yes").mean())
        return r[g] / r.drop(g).iloc[0]
    g = steps.iloc[0]["group"]
    assert steps.iloc[0]["before"] == pytest.approx(ratio(data, g))
    assert steps.iloc[0]["after"] == pytest.approx(ratio(data.head(600), g))

    other = store.save_audit(audit(data.assign(region="x"), dataclasses.replace(
        spec, sensitive=["region"]), name="d.csv"))[0]
    with pytest.raises(InputError, match="Nothing in #1 .* matches this audit"):
        history.compare_saved(store.audit(first), store.audit(other))
