"""The dashboard's Review and History pages with a real SQLite store set in
the configuration (``[store]`` in secrets), checked against the store read
directly and against pandas hand counts of the sample."""
from __future__ import annotations

import base64
import dataclasses
import json
import hashlib
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
for _p in (str(ROOT), str(ROOT / "app"), str(ROOT / "tests")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from test_app import LOANS, ctx, exc_text, new_app, page  # noqa: E402

from fairness_core import audit  # noqa: E402
from fairness_core.store import Reviewer, open_store, sqlite_url  # noqa: E402

MODEL = "model_a_approved"


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.delenv("FAIRNESS_AUDIT_STORE", raising=False)
    return tmp_path / "reviews"


def app_with_store(folder):
    at = new_app()
    at.secrets["store"] = {"folder": str(folder)}
    at.run()
    assert not at.exception, exc_text(at)
    return at


def ok(at):
    assert not at.exception, exc_text(at)
    return at


def texts(elements) -> list[str]:
    return [e.value for e in elements]


def save_and_name(at, name="Ann Analyst"):
    page(at, "review")
    ok(at.button(key="save_audit").click().run())
    assert "Saved as audit 1." in texts(at.success)
    ok(at.text_input(key="reviewer_name").set_value(name).run())
    return at


def test_review_page_without_a_store_says_how_to_set_one(monkeypatch):
    monkeypatch.delenv("FAIRNESS_AUDIT_STORE", raising=False)
    at = ok(new_app().run())
    page(at, "review")
    assert any("No review store is set" in t and "[store]" in t for t in texts(at.info))
    assert not at.button  # nothing to save into
    page(at, "history")
    assert any("No review store is set" in t for t in texts(at.info))


def test_save_decide_and_a_concurrent_change(folder):
    at = save_and_name(app_with_store(folder))
    store = open_store(sqlite_url(folder))  # a second session on the same file
    saved = store.audit(1)
    assert saved["data_sha256"] == hashlib.sha256(LOANS.read_bytes()).hexdigest()
    loans = pd.read_csv(LOANS)
    counts = store.counts(1)
    female = counts[(counts["model"] == MODEL) & (counts["attribute"] == "sex")
                    & (counts["group"] == "Female")].iloc[0]
    f = loans[loans["sex"] == "Female"]
    assert female["n"] == len(f)
    assert female["selected"] == (f[MODEL] == "yes").sum()
    assert female["tp"] == ((f[MODEL] == "yes") & (f["repaid"] == "yes")).sum()

    key = at.selectbox(key="review_finding_1").value
    ok(at.selectbox(key=f"rv_1_{key}_status").set_value("explained").run())
    ok(at.text_area(key=f"rv_1_{key}_just").set_value("Income differs by design.").run())
    ok(at.button(key=f"rv_1_{key}_save").click().run())
    assert "Decision saved (Explained)." in texts(at.success)
    item = store.review(1).findings[key]
    d = item["decision"]
    assert (d["status"], d["justification"], d["reviewer"], d["reviewer_verified"]) == (
        "explained", "Income differs by design.", "Ann Analyst", False)
    assert any("Ann Analyst (unverified)" in t for t in texts(at.markdown))

    # Bob changes the same decision in his own session
    store.decide(1, item["key"], "mitigation_planned", Reviewer("Bob Builder"),
                 expected_version=1, owner="Model team",
                 due_date=pd.Timestamp("2027-02-01").date())
    ok(at.selectbox(key=f"rv_1_{key}_status").set_value("not_an_issue").run())
    ok(at.text_area(key=f"rv_1_{key}_why").set_value("Ann's typed reason").run())
    assert any("Someone changed this decision" in t for t in texts(at.warning))
    ok(at.button(key=f"rv_1_{key}_save").click().run())
    errors = texts(at.error)
    assert any("changed by Bob Builder at" in t and "Reload the review" in t for t in errors)
    assert at.text_area(key=f"rv_1_{key}_why").value == "Ann's typed reason"  # kept
    assert store.review(1).findings[key]["decision"]["status"] == "mitigation_planned"
    # reload, then save again: now from Bob's decision
    ok(at.button(key=f"rv_reload_1_{key}").click().run())
    assert at.text_area(key=f"rv_1_{key}_why").value == "Ann's typed reason"
    ok(at.button(key=f"rv_1_{key}_save").click().run())
    d = store.review(1).findings[key]["decision"]
    assert (d["status"], d["reason"], d["reviewer"], d["row_version"]) == (
        "not_an_issue", "Ann's typed reason", "Ann Analyst", 3)
    assert list(store.trail(1)["reviewer"]) == ["Ann Analyst", "Bob Builder", "Ann Analyst"]
    assert "Every decision on this finding (3)" in [e.label for e in at.expander]
    assert sum("Mitigation planned by Bob Builder (unverified)" in t
               for t in texts(at.markdown)) == 1
    store.close()


def test_signed_audit_is_read_only_and_a_new_version_points_to_it(folder):
    at = save_and_name(app_with_store(folder))
    key = at.selectbox(key="review_finding_1").value
    ok(at.text_input(key=f"rv_1_{key}_comment").set_value("Ask the data owner.").run())
    ok(at.button(key=f"rv_1_{key}_add_comment").click().run())
    assert "Comment added." in texts(at.success)
    ok(at.selectbox(key="signoff_role").set_value("Risk officer").run())
    ok(at.text_area(key="signoff_statement").set_value("Reviewed with the model team.").run())
    ok(at.button(key="signoff").click().run())
    assert any("Signed off by Ann Analyst (unverified) (Risk officer)" in t
               for t in texts(at.success))
    assert any("signed off by Ann Analyst (unverified)" in t and "read-only" in t
               for t in texts(at.info))
    keys = [b.key for b in at.button]
    assert f"rv_1_{key}_save" not in keys and "signoff" not in keys
    assert any("Ask the data owner" in t for t in texts(at.markdown))
    ok(at.button(key="new_version").click().run())
    assert at.selectbox(key="review_pick").value == 2
    assert any("a new version of saved audit 1" in t for t in texts(at.caption))
    assert f"rv_2_{key}_save" in [b.key for b in at.button]
    store = open_store(sqlite_url(folder))
    assert store.review(1).signed and not store.review(2).signed
    assert store.review(2).findings[key]["comments"][0]["text"] == "Ask the data owner."
    store.close()


def _figure(at) -> dict:
    charts = at.get("plotly_chart")
    assert charts
    return json.loads(charts[0].proto.spec)


def _frame(at, column: str, nth: int = 0) -> pd.DataFrame:
    """The nth table of the page that has ``column``."""
    frames = [d.value for d in at.dataframe if column in d.value.columns]
    assert len(frames) > nth, column
    return frames[nth]


def _values(v) -> list:
    """A plotly array as sent to the browser (a list, or typed binary)."""
    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]).tolist()
    return list(v)


def test_history_lists_filters_trends_and_compares(folder):
    at = app_with_store(folder)
    page(at, "review")
    ok(at.button(key="save_audit").click().run())
    loans = pd.read_csv(LOANS)
    part = loans.head(3000)
    spec = dataclasses.replace(ctx(at).result.spec, n_bootstrap=0)
    store = open_store(sqlite_url(folder))
    store.save_audit(audit(part, spec, name="loans_first_half.csv"))
    store.close()

    page(at, "history")
    tables = at.table
    assert len(tables) and len(tables[0].value) == 2
    ok(at.selectbox(key="history_data").set_value("loans_first_half.csv").run())
    assert len(at.table[0].value) == 1
    ok(at.selectbox(key="history_data").set_value("(all)").run())

    ok(at.selectbox(key="trend_model").set_value(MODEL).run())
    ok(at.selectbox(key="trend_metric").set_value("selection_rate").run())
    ok(at.selectbox(key="trend_attribute").set_value("sex").run())

    def ratio(df):  # selection rate of Female over Male (the largest group)
        rate = df.groupby("sex")[MODEL].apply(lambda s: (s == "yes").mean())
        return rate["Female"] / rate["Male"]

    fig = _figure(at)
    female = [t for t in fig["data"] if t.get("name") == "Female"][0]
    assert _values(female["y"]) == pytest.approx([ratio(loans), ratio(part)], rel=1e-9)
    # the full sample's audit has bootstrap intervals around its ratio, the other none
    up, down = _values(female["error_y"]["array"]), _values(female["error_y"]["arrayminus"])
    assert up[0] > 0 and down[0] > 0 and up[1] == 0 and down[1] == 0

    # the step from the older audit to the newer, from the counts of the two
    steps = _frame(at, "Since audit")
    row = steps[steps["Group"] == "Female"].iloc[0]
    assert float(row["Ratio before"]) == pytest.approx(ratio(loans), abs=6e-4)
    assert float(row["Ratio after"]) == pytest.approx(ratio(part), abs=6e-4)
    assert float(row["Change (x)"]) == pytest.approx(ratio(part) / ratio(loans), abs=6e-3)


def test_a_reviewed_and_signed_audit_reaches_history_and_report(folder):
    at = save_and_name(app_with_store(folder), "Rita Risk")
    key = at.selectbox(key="review_finding_1").value
    ok(at.selectbox(key=f"rv_1_{key}_status").set_value("mitigation_planned").run())
    ok(at.text_input(key=f"rv_1_{key}_owner").set_value("Credit model team").run())
    ok(at.date_input(key=f"rv_1_{key}_due").set_value(pd.Timestamp("2027-06-30").date()).run())
    ok(at.button(key=f"rv_1_{key}_save").click().run())
    ok(at.text_area(key="signoff_statement").set_value("Signed for release 4.2.").run())
    ok(at.button(key="signoff").click().run())

    page(at, "history")
    listed = at.table[0].value
    assert len(listed) == 1 and list(listed["Signed off"]) == ["yes"]

    page(at, "export")
    ok(at.checkbox(key="report_pdf").uncheck().run())
    ok(at.button(key="make_report").click().run())
    html = at.session_state["report"][1]["html"][0].decode("utf-8")
    assert "Review</h2>" in html
    assert "Mitigation planned" in html and "owner Credit model team, due 2027-06-30" in html
    assert "Signed off by Rita Risk (unverified), Data scientist" in html
    assert "Signed for release 4.2." in html
    assert "Reviewer names are typed and unverified: Rita Risk." in html


AUTH = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x" * 32,
        "client_id": "fairness", "client_secret": "secret",
        "server_metadata_url": "https://login.example.org/.well-known/openid-configuration"}


def test_signed_in_reviewer_is_recorded_as_verified(folder):
    at = new_app()
    at.secrets["store"] = {"folder": str(folder)}
    at.secrets["auth"] = AUTH
    at.user = {"is_logged_in": True, "name": "Vera Verified", "email": "vera@example.org"}
    ok(at.run())
    page(at, "review")
    assert not [t for t in at.text_input if t.key == "reviewer_name"]  # no typed name
    assert any("Reviewing as Vera Verified" in t for t in texts(at.caption))
    ok(at.button(key="save_audit").click().run())
    key = at.selectbox(key="review_finding_1").value
    ok(at.selectbox(key=f"rv_1_{key}_status").set_value("not_an_issue").run())
    ok(at.text_area(key=f"rv_1_{key}_why").set_value("Within the agreed band.").run())
    ok(at.button(key=f"rv_1_{key}_save").click().run())
    store = open_store(sqlite_url(folder))
    d = store.review(1).findings[key]["decision"]
    assert (d["reviewer"], d["reviewer_verified"]) == ("Vera Verified", True)
    assert store.review(1).unverified_names == []
    store.close()
    page(at, "export")
    ok(at.checkbox(key="report_pdf").uncheck().run())
    ok(at.button(key="make_report").click().run())
    html = at.session_state["report"][1]["html"][0].decode("utf-8")
    assert "Every reviewer name comes from the organisation&#39;s sign-in." in html
    assert "(unverified)" not in html and "Not signed off." in html


def test_signed_out_reviewer_is_asked_to_sign_in(folder):
    at = new_app()
    at.secrets["store"] = {"folder": str(folder)}
    at.secrets["auth"] = AUTH
    at.user = {"is_logged_in": False}
    ok(at.run())
    page(at, "review")
    ok(at.button(key="save_audit").click().run())
    keys = [b.key for b in at.button]
    assert "review_login" in keys
    assert not [k for k in keys if k and k.startswith("rv_1_") and k.endswith("_save")]
    assert "signoff" not in keys
    assert not [t for t in at.text_input if t.key == "reviewer_name"]


def test_typed_text_is_shown_as_text(folder):
    at = save_and_name(app_with_store(folder), "<b>Mallory</b> [x](http://evil.example)")
    key = at.selectbox(key="review_finding_1").value
    hostile = "**bold** <img src=x onerror=alert(1)> [link](http://evil.example)"
    ok(at.text_input(key=f"rv_1_{key}_comment").set_value(hostile).run())
    ok(at.button(key=f"rv_1_{key}_add_comment").click().run())
    shown = [t for t in texts(at.markdown) if "💬" in t]
    assert len(shown) == 1
    text = shown[0]
    assert "\\*\\*bold\\*\\*" in text and "\\<img" in text and "\\[link\\]" in text
    assert "\\<b\\>Mallory\\</b\\>" in text


@pytest.mark.browser
def test_browser_saves_reviews_and_shows_the_history(page, start_app, tmp_path):
    """In a real browser with the store set in the secrets file: save the
    audit, decide on a finding, and see it in the history."""
    import os

    from playwright.sync_api import expect
    from test_browser import MAIN, assert_no_errors, choose, open_app, title, wait_idle

    from conftest import SAFE_FLAGS

    folder = tmp_path / "reviews"
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(f'[store]\nfolder = "{folder}"\n')
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("FAIRNESS_AUDIT_STORE", None)
    page.set_default_timeout(30_000)
    expect.set_options(timeout=30_000)
    with start_app(env=env, flags=(*SAFE_FLAGS, "--secrets.files", str(secrets))) as base:
        open_app(page, base)
        page.locator('[data-testid="stTopNavLink"]', has_text="Review").click()
        expect(title(page, "Review")).to_be_visible()
        wait_idle(page)
        page.get_by_role("button", name="Save this audit to the review store").click()
        expect(page.locator(MAIN).get_by_text("Saved as audit 1.")).to_be_visible()
        wait_idle(page)
        name = page.get_by_label("Your name (as the reviewer)", exact=True)
        name.fill("Ann Analyst")
        name.press("Enter")
        wait_idle(page)
        expect(page.get_by_role("button", name="Save the decision")).to_be_visible()
        wait_idle(page, quiet_ms=1500)
        choose(page, "Status", "Explained", where=MAIN)
        page.get_by_label("Justification: why the gap is legitimate", exact=True).fill("A known effect.")
        page.get_by_role("button", name="Save the decision").click()
        expect(page.locator(MAIN).get_by_text("Decision saved (Explained).")).to_be_visible()
        expect(page.locator(MAIN).get_by_text("A known effect", exact=False).first
               ).to_be_visible()
        wait_idle(page)
        page.locator('[data-testid="stTopNavLink"]', has_text="History").click()
        expect(title(page, "History")).to_be_visible()
        wait_idle(page)
        expect(page.locator('[data-testid="stPlotlyChart"] .js-plotly-plot')).to_have_count(1)
        assert_no_errors(page)
    store = open_store(sqlite_url(folder))
    decided = [f["decision"] for f in store.review(1).findings if f["decision"]]
    assert [(d["status"], d["justification"], d["reviewer"]) for d in decided] == [
        ("explained", "A known effect.", "Ann Analyst")]
    store.close()


def _periods():
    import importlib.util
    sp = importlib.util.spec_from_file_location("make_periods",
                                                ROOT / "sample_data" / "make_periods.py")
    mp = importlib.util.module_from_spec(sp)
    sp.loader.exec_module(mp)
    out = []
    for i in (1, 2):
        seed, n, race_pen, fem_pen = mp.PERIODS[i]
        out.append(mp.generate(seed=seed, n=n, race_penalty=race_pen, female_penalty=fem_pen))
    return out


def _unescape(text: str) -> str:
    return text.replace("\\", "")


def test_history_compares_two_saved_audits_with_a_planted_change(folder):
    """Period 2's model was retrained to penalise Black applicants less
    (sample_data/make_periods.py): the History page's comparison of the two
    saved audits is compare_audits on their JSON, and its numbers are the
    pandas counts' and scipy's."""
    from scipy import stats as sps

    from fairness_core import AuditSpec
    from fairness_core.compare import change_table, compare_audits
    from fairness_core.formatting import p_value

    d1, d2 = _periods()
    spec = AuditSpec(label="repaid", positive="yes", predictions=["approved"],
                     sensitive=["sex", "race"], n_bootstrap=200)
    r1, r2 = audit(d1, spec, name="loans_period1.csv"), audit(d2, spec, name="loans_period2.csv")
    store = open_store(sqlite_url(folder))
    id1, _ = store.save_audit(r1)
    id2, _ = store.save_audit(r2)
    stored = [store.audit(id1)["results"], store.audit(id2)["results"]]
    store.close()
    comp = compare_audits(json.loads(r1.to_json()), json.loads(r2.to_json()))

    at = app_with_store(folder)
    page(at, "history")
    assert at.selectbox(key="compare_before").value == id1
    assert at.selectbox(key="compare_after").value == id2

    # hand counts: selection rates by race in each period
    def rate(df, race):
        return (df.loc[df["race"] == race, "approved"] == "yes").mean()

    before = rate(d1, "Black") / rate(d1, "White")
    after = rate(d2, "Black") / rate(d2, "White")
    assert before < 0.8 < after  # the planted narrowing
    said = [_unescape(t) for t in texts(at.markdown)]
    finding = [t for t in said if "The selection rate gap for race = 'Black'" in t]
    assert finding and f"narrowed from {before:.2f}x to {after:.2f}x" in finding[0]
    assert "significant after" in finding[0] and finding[0].startswith("🟢 Better")
    # every finding is on the page (past the twelfth, in an expander)
    assert sum(t.startswith(("🔴", "🟢", "ℹ️")) for t in said) == len(comp.findings)

    # the significant changes: exactly compare_audits' on the two JSON results
    sig = _frame(at, "adj. p")
    want = change_table(comp)
    assert len(sig) == len(want) == int(comp.gaps["significant"].sum()
                                         + comp.changes["significant"].sum()) > 0
    assert list(sig["adj. p"]) == list(want["adj. p"])
    assert not any("sex" == a for a in sig["attribute"])  # the sex gap was not changed

    # the selection rate of Black applicants: scipy's two-proportion test on the counts
    g1, g2 = d1[d1["race"] == "Black"], d2[d2["race"] == "Black"]
    x1, x2 = int((g1["approved"] == "yes").sum()), int((g2["approved"] == "yes").sum())
    table2 = [[x1, len(g1) - x1], [x2, len(g2) - x2]]
    row = comp.changes[(comp.changes["attribute"] == "race") & (comp.changes["group"] == "Black")
                       & (comp.changes["metric"] == "selection_rate")].iloc[0]
    assert row["p_value"] == pytest.approx(
        sps.chi2_contingency(table2, correction=False).pvalue, rel=1e-9)
    assert row["significant"]
    shown_row = sig[(sig["attribute"] == "race") & (sig["group"] == "Black")
                    & (sig["what"] == "selection rate")].iloc[0]
    assert shown_row["adj. p"] == p_value(row["p_value_adjusted"])
    assert shown_row["change"] == f"{100 * (x2 / len(g2) - x1 / len(g1)):+.1f} pts"

    # every gap, earlier and later: the hand ratios
    gaps = _frame(at, "adj. p", 1)
    g = gaps[(gaps["attribute"] == "race") & (gaps["group"] == "Black")
             & gaps["what"].str.startswith("selection rate gap")].iloc[0]
    assert g["before"] == f"{before:.2f}x" and g["after"] == f"{after:.2f}x"
    assert g["trend"] == "narrowed"

    # the chart: each group's rate in both audits and the change with its interval
    ok(at.selectbox(key="history_cmp_model").set_value("approved").run())
    ok(at.selectbox(key="history_cmp_attribute").set_value("race").run())
    ok(at.selectbox(key="history_cmp_metric").set_value("selection_rate").run())
    charts = at.get("plotly_chart")
    fig = json.loads(charts[-1].proto.spec)
    by_name = {t.get("name"): t for t in fig["data"]}
    groups = [_unescape(y) for y in by_name["earlier audit"]["y"]]
    i = groups.index("Black")
    assert _values(by_name["earlier audit"]["x"])[i] == pytest.approx(100 * x1 / len(g1))
    assert _values(by_name["this audit"]["x"])[i] == pytest.approx(100 * x2 / len(g2))
    labels = [b.proto.label for b in at.get("download_button")]
    assert "Download every change (CSV)" in labels

    # the trend: each point's bar is the interval stored with that audit
    ok(at.selectbox(key="trend_model").set_value("approved").run())
    ok(at.selectbox(key="trend_metric").set_value("selection_rate").run())
    ok(at.selectbox(key="trend_attribute").set_value("race").run())
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    black = [t for t in fig["data"] if t.get("name") == "Black"][0]
    disp = [pd.DataFrame(s["disparities"]).query(
        "model == 'approved' and attribute == 'race' and group == 'Black' and "
        "metric == 'selection_rate'").iloc[0] for s in stored]
    assert _values(black["y"]) == pytest.approx([before, after], rel=1e-9)
    assert _values(black["error_y"]["array"]) == pytest.approx(
        [d["ratio_ci_high"] - d["ratio"] for d in disp], rel=1e-9)
    assert _values(black["error_y"]["arrayminus"]) == pytest.approx(
        [d["ratio"] - d["ratio_ci_low"] for d in disp], rel=1e-9)
    # and the step between them is significant, marked on the later point
    assert black["marker"]["symbol"] == ["circle", "diamond"]
    steps = _frame(at, "Since audit")
    assert list(steps.loc[steps["Group"] == "Black", "Significant"]) == ["yes"]
