"""Count tables and administrator-listed data sources in the dashboard.

A count table (each row stands for N people) and a listed source (Parquet
files or a database table, counted where it lives) must give the numbers
the same rows give when uploaded; the rates are checked against
fairlearn's ``MetricFrame`` on the expanded rows.  The browser only ever
names a listed source: a path or an unknown name is refused.
"""
from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
APP_DIR = ROOT / "app"
APP = APP_DIR / "main.py"
LOANS = ROOT / "sample_data" / "loans.csv"
TIMEOUT = 90

for _p in (str(ROOT), str(APP_DIR)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import state  # noqa: E402  (the app's own modules, as the app imports them)

from fairness_core import InputError  # noqa: E402
from fairness_core.guess import guess_counts, guess_roles  # noqa: E402
from fairness_core.sources import get_source, parse_sources  # noqa: E402
from test_app import assert_clean  # noqa: E402  (no exception, no traceback text)

#: The loans sample without its scores and identifiers: every number of a
#: decision audit is exact in every engine.
COLUMNS = ["sex", "race", "age_group", "repaid", "model_a_approved", "model_b_approved"]


def loans_rows() -> pd.DataFrame:
    return pd.read_csv(LOANS)[COLUMNS]


def count_table(rows: pd.DataFrame, name: str = "n") -> pd.DataFrame:
    """The rows aggregated by pandas (missing values kept as their own value)."""
    return rows.groupby(COLUMNS, dropna=False).size().reset_index(name=name)


def expand(counts: pd.DataFrame, col: str = "n") -> pd.DataFrame:
    return counts.loc[np.repeat(counts.index.to_numpy(), counts[col].to_numpy())] \
        .drop(columns=col).reset_index(drop=True)


def new_app(sources_toml: str | None = None) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    if sources_toml is not None:  # what the administrator writes in secrets.toml
        at.secrets["sources"] = tomllib.loads(sources_toml)["sources"]
    return at


def upload(at: AppTest, name: str, data: bytes) -> AppTest:
    at.selectbox(key="source").set_value(state.UPLOAD).run()
    at.file_uploader(key="upload").set_value((name, data, "text/csv")).run()
    assert_clean(at)
    return at


def choose(at: AppTest, source: str) -> AppTest:
    at.selectbox(key="source").set_value(state.SOURCE + source).run()
    return at


def result(at: AppTest):
    c = at.session_state["ctx"]
    assert not c.errors, c.errors
    assert c.result is not None
    return c.result


def same_groups(a: pd.DataFrame, b: pd.DataFrame):
    key = ["model", "attribute", "group"]
    a = a.sort_values(key).reset_index(drop=True)
    b = b.sort_values(key).reset_index(drop=True)
    assert list(a.columns) == list(b.columns)
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12, atol=1e-12)


def sidebar_errors(at: AppTest) -> list[str]:
    return [e.value for e in at.sidebar.error]


def data_page(at: AppTest) -> AppTest:
    from streamlit.util import calc_hash

    at._page_hash = calc_hash("data")
    main = at._tree.children.get(0)
    if main is not None and hasattr(main, "children"):
        main.children = {}
    at.run()
    assert_clean(at)
    return at


def metrics(at: AppTest) -> dict:
    return {m.label: m.value for m in at.main.metric}


@pytest.fixture(scope="module")
def rows_audit():
    """The rows uploaded as they are: the reference for every other path."""
    rows = loans_rows()
    at = upload(new_app().run(), "rows.csv", rows.to_csv(index=False).encode())
    r = result(at)
    assert r.spec.label == "repaid" and r.spec.counts is None
    assert r.spec.predictions == ("model_a_approved", "model_b_approved")
    data_page(at)
    return rows, r, metrics(at), at.main.dataframe[0].value


# --------------------------------------------------------------------------
# the guess
# --------------------------------------------------------------------------
def test_count_column_is_guessed_only_when_clear():
    rows = loans_rows()
    counts = count_table(rows)
    assert guess_counts(counts) == "n"
    assert guess_counts(count_table(rows, "row_count")) == "row_count"
    assert guess_counts(rows) is None  # rows: each stands for one person
    # a weight is not a count, even with whole numbers
    assert guess_counts(counts.rename(columns={"n": "weight"})) is None
    both = counts.assign(weight=2)
    assert guess_counts(both) == "n"
    # two count-like columns: not clear, no guess
    assert guess_counts(counts.assign(total=counts["n"] * 2)) is None
    # a count-like name with fractions or negatives is not a count
    assert guess_counts(counts.assign(n=counts["n"] + 0.5)) is None
    assert guess_counts(counts.assign(n=-counts["n"])) is None
    g = guess_roles(counts)
    assert g.counts == "n" and "n" not in g.sensitive + g.scores + g.predictions
    assert g.label == "repaid" and g.weight is None


# --------------------------------------------------------------------------
# 1. count tables
# --------------------------------------------------------------------------
def test_count_table_gives_the_numbers_of_its_rows(rows_audit):
    rows, ref, ref_metrics, ref_table = rows_audit
    counts = count_table(rows)
    assert int(counts["n"].sum()) == len(rows) == 6000
    at = upload(new_app().run(), "counts.csv", counts.to_csv(index=False).encode())
    assert at.selectbox(key="counts").value == "n"  # guessed
    assert "n" not in at.multiselect(key="sensitive").options
    r = result(at)
    assert r.spec.counts == "n"
    # every group number (counts, rates, intervals, p-values) as from the rows
    same_groups(r.group_metrics, ref.group_metrics)
    pd.testing.assert_frame_equal(r.disparities, ref.disparities, check_exact=False,
                                  rtol=1e-12)
    # and the rates are fairlearn's on the expanded rows
    from fairlearn.metrics import MetricFrame, count, selection_rate, true_positive_rate

    full = expand(counts)
    y = (full["repaid"] == "yes").astype(int)
    for model in ("model_a_approved", "model_b_approved"):
        mf = MetricFrame(metrics={"selection_rate": selection_rate,
                                  "tpr": true_positive_rate, "n": count},
                         y_true=y, y_pred=(full[model] == "yes").astype(int),
                         sensitive_features=full["race"])
        g = r.group_metrics
        g = g[(g["model"] == model) & (g["attribute"] == "race")].set_index("group")
        for grp, want in mf.by_group.iterrows():
            assert g.loc[grp, "n"] == want["n"]
            assert g.loc[grp, "selection_rate"] == pytest.approx(want["selection_rate"])
            assert g.loc[grp, "tpr"] == pytest.approx(want["tpr"])
    # the Data page: rows in the file vs the people they stand for
    data_page(at)
    m = metrics(at)
    assert m["Rows in the file"] == f"{len(counts):,}"
    assert m["People they stand for"] == "6,000"
    assert m["People audited"] == ref_metrics["Rows audited"]
    captions = " ".join(c.value for c in at.main.caption)
    assert f"{len(counts):,} rows stand for 6,000 people" in captions.replace("\\", "")
    table = at.main.dataframe[0].value
    assert list(table["People"]) == list(ref_table["Rows"])
    assert list(table.iloc[:, -2]) == list(ref_table.iloc[:, -2])  # missing values per group


def test_each_row_can_stand_for_one_person():
    counts = count_table(loans_rows(), "size_of_cell")  # a name that is not count-like
    at = upload(new_app().run(), "agg.csv", counts.to_csv(index=False).encode())
    box = at.selectbox(key="counts")
    assert box.value == "(none)"  # no clear count column: one person per row
    assert result(at).provenance["rows_read"] == len(counts)
    box.set_value("size_of_cell").run()
    assert_clean(at)
    r = result(at)
    assert r.spec.counts == "size_of_cell" and r.provenance["rows_read"] == 6000


# --------------------------------------------------------------------------
# 2. listed sources
# --------------------------------------------------------------------------
def test_source_list_is_validated():
    sources, problems = parse_sources({
        "good": {"path": "/data/x/"},
        "db": {"url": "postgresql://a:b@h/db", "table": "t"},
        "both": {"path": "/x", "url": "postgresql://h/db", "table": "t"},
        "neither": {"table": "t"},
        "no_table": {"url": "postgresql://h/db"},
        "engine": {"path": "/x", "engine": "oracle"},
        "typo": {"pth": "/x"}})
    assert list(sources) == ["good", "db"]
    assert set(problems) == {"both", "neither", "no_table", "engine", "typo"}
    assert all(name in msg for name, msg in problems.items())
    for bad in ("/data/x/", "postgresql://a:b@h/db", "../good", "GOOD", None):
        with pytest.raises(InputError, match="no listed data source"):
            get_source(sources, bad)


@pytest.fixture
def parquet_source(tmp_path):
    """The loans rows as a folder of Parquet parts, and the config that lists it."""
    rows = loans_rows()
    folder = tmp_path / "decisions"
    folder.mkdir()
    rows.iloc[:2500].to_parquet(folder / "part-0.parquet")
    rows.iloc[2500:].to_parquet(folder / "part-1.parquet")
    return folder


def test_parquet_source_gives_the_numbers_of_an_upload(rows_audit, parquet_source, tmp_path):
    rows, ref, ref_metrics, ref_table = rows_audit
    at = new_app(f'[sources.decisions]\npath = "{parquet_source}"\n').run()
    assert "decisions (data source)" in at.selectbox(key="source").options
    choose(at, "decisions")
    assert_clean(at)
    # the guesses from the profile are the upload's
    assert at.selectbox(key="label").value == "repaid"
    assert at.multiselect(key="predictions").value == ["model_a_approved",
                                                       "model_b_approved"]
    assert at.multiselect(key="sensitive").value == list(ref.spec.sensitive)
    r = result(at)
    same_groups(r.group_metrics, ref.group_metrics)
    assert r.provenance["rows_read"] == len(rows)
    assert r.provenance["input"]["engine"] == "duckdb"
    # the counting showed its progress, and ended complete
    statuses = [(s.label, s.state) for s in at.status]
    assert statuses == [(f"Counted {len(count_table(rows)):,} records for 6,000 rows of "
                         "decisions.", "complete")], statuses
    # counted once per session: a new tolerance or reference is not a recount
    memo = at.session_state["_memo"]
    assert len([k for k in memo if k[0] == "counted"]) == 1
    first = next(v for k, v in memo.items() if k[0] == "counted")
    at.slider(key="tolerance").set_value(0.9).run()
    at.radio(key="refmode").set_value("best").run()
    assert_clean(at)
    assert not at.status  # no counting this time
    assert result(at).spec.tolerance == 0.9
    counted = [v for k, v in at.session_state["_memo"].items() if k[0] == "counted"]
    assert counted == [first]
    # the Data page works from the counts, and says the rows are not loaded
    data_page(at)
    assert not at.status  # the counts are kept
    m = metrics(at)
    assert m["People they stand for"] == "6,000"
    assert m["People audited"] == ref_metrics["Rows audited"]
    assert m["Records counted"] == f"{len(count_table(rows)):,}"
    text = " ".join(c.value for c in at.main.caption).replace("\\", "")
    assert "Rows are not loaded" in text
    table = at.main.dataframe[0].value
    assert list(table["People"]) == list(ref_table["Rows"])
    assert list(table.iloc[:, -2]) == list(ref_table.iloc[:, -2])  # missing values per group


def test_only_listed_sources_are_read(parquet_source, tmp_path):
    """A path, a URL or an unknown name from the browser is never opened."""
    outside = tmp_path / "outside.parquet"
    pd.DataFrame({"secret_col": [1, 2], "y": [0, 1]}).to_parquet(outside)
    for forged in (str(outside), state.SOURCE + str(outside), state.SOURCE + "nope",
                   state.SOURCE + "duckdb:///" + str(outside)):
        at = new_app(f'[sources.decisions]\npath = "{parquet_source}"\n')
        at.session_state["source"] = forged  # as if the browser sent it
        at.run()
        assert_clean(at)
        c = at.session_state["ctx"]
        assert at.selectbox(key="source").value == list(state.SAMPLES)[0]
        assert c.loaded is not None and "secret_col" not in c.loaded.df.columns
    # the app's loader itself refuses what is not in the list
    with pytest.raises(InputError, match="no listed data source"):
        get_source(parse_sources({"decisions": {"path": str(parquet_source)}})[0],
                   str(outside))


def test_misconfigured_sources_give_one_message_and_the_others_work(parquet_source,
                                                                    tmp_path):
    config = f"""
[sources.decisions]
path = "{parquet_source}"

[sources.gone]
path = "{tmp_path / 'no_such_folder'}"

[sources.down]
url = "postgresql://auditor:hunter2@127.0.0.1:1/lending"
table = "decisions"

[sources.nofile]
url = "duckdb://{tmp_path / 'missing.duckdb'}"
table = "decisions"

[sources.halfdone]
table = "decisions"
"""
    at = new_app(config).run()
    assert_clean(at)
    options = at.selectbox(key="source").options  # as shown
    assert [o for o in options if o.endswith("(data source)")] == [
        f"{n} (data source)" for n in ("decisions", "gone", "down", "nofile")]
    warned = [w.value for w in at.sidebar.warning]
    assert len(warned) == 1 and "halfdone" in warned[0]
    for name in ("gone", "down", "nofile"):
        choose(at, name)
        assert_clean(at)
        errors = sidebar_errors(at)
        assert len(errors) == 1, errors
        assert name in errors[0] and "administrator" in errors[0]
        assert "hunter2" not in errors[0] and str(tmp_path) not in errors[0]
        assert not at.main.error  # one message, in the sidebar
    assert not (tmp_path / "missing.duckdb").exists()  # never created
    choose(at, "decisions")
    assert_clean(at)
    assert not sidebar_errors(at)
    assert result(at).provenance["rows_read"] == 6000


@pytest.mark.engines
def test_postgres_source_gives_the_numbers_of_an_upload(rows_audit, postgres_url):
    import ibis

    rows, ref, _, _ = rows_audit
    con = ibis.connect(postgres_url)
    try:
        con.create_table("loan_decisions", rows, overwrite=True)
    finally:
        con.disconnect()
    at = new_app(f'[sources.lending]\nurl = "{postgres_url}"\ntable = "loan_decisions"\n')
    choose(at.run(), "lending")
    assert_clean(at)
    r = result(at)
    assert r.provenance["input"]["engine"] == "postgresql"
    same_groups(r.group_metrics, ref.group_metrics)


@pytest.mark.browser
def test_browser_picks_a_listed_source(app_page, start_app, tmp_path, parquet_source):
    """In a real browser: the administrator's secrets file lists the source,
    the picker offers its name, and the Data page works from its counts."""
    import os
    import re

    from playwright.sync_api import expect
    from test_browser import MAIN, SIDEBAR, assert_no_errors, choose, go, open_app, wait_idle

    secrets = tmp_path / "secrets.toml"
    secrets.write_text(f'[sources.decisions]\npath = "{parquet_source}"\n')
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    flags = ("--server.headless", "true", "--server.address", "127.0.0.1",
             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
             "--secrets.files", str(secrets))
    with start_app(env=env, flags=flags) as base:
        page = app_page
        open_app(page, base)
        choose(page, "Predictions table", "decisions (data source)", where=SIDEBAR)
        expect(page.locator(SIDEBAR).get_by_text(
            re.compile(r"Rows are not loaded: they are counted where they live"))
        ).to_be_visible()
        expect(page.locator(MAIN).get_by_text("Most severe finding")).to_be_visible()
        wait_idle(page)
        go(page, "data")
        expect(page.locator(MAIN).get_by_text(re.compile(r"^Rows are not loaded"))
               ).to_be_visible()
        expect(page.locator(MAIN).locator('[data-testid="stMetric"]',
                                          has_text="People they stand for")
               ).to_contain_text("6,000")
        assert_no_errors(page)


def test_every_page_works_from_a_source_with_scores(tmp_path):
    """The whole loans sample (scores too) as a source: every page draws
    from its counts, without an exception or a traceback."""
    from streamlit.util import calc_hash

    pd.read_csv(LOANS).to_parquet(tmp_path / "loans.parquet")
    at = new_app(f'[sources.loans]\npath = "{tmp_path / "loans.parquet"}"\n').run()
    choose(at, "loans")
    assert_clean(at)
    r = result(at)
    assert r.spec.scores == ("model_a_score", "model_b_score")
    for path in ("groups", "data", "thresholds", "models", "export", "help", "overview"):
        at._page_hash = calc_hash(path)
        main = at._tree.children.get(0)
        if main is not None and hasattr(main, "children"):
            main.children = {}
        at.run()
        assert_clean(at)
        assert not at.status, (path, "counted again")  # the session keeps the counts
        problems = [e.value for e in at.main.error if e.icon != "🔎"]  # 🔎: a finding
        assert not problems, (path, problems)
        assert at.main.title, path
        if path == "thresholds":
            assert at.get("plotly_chart"), "no threshold charts"


def test_cli_audits_a_listed_source_by_name(parquet_source, tmp_path, capsys):
    import json

    from fairness_core.cli import main

    listing = tmp_path / "sources.toml"
    listing.write_text(f'[sources.decisions]\npath = "{parquet_source}"\n'
                       '[sources.broken]\ntable = "x"\n')
    args = ["--sources", str(listing), "--label", "repaid", "--positive", "yes",
            "--prediction", "model_a_approved", "--sensitive", "race", "--bootstrap", "0",
            "--quiet"]
    out = tmp_path / "audit.json"
    assert main(["decisions", *args, "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["provenance"]["rows_read"] == 6000
    want = loans_rows()["race"].value_counts()  # a hand count of the rows
    got = {g["group"]: g["n"] for g in doc["groups"] if g["attribute"] == "race"}
    assert got == {k: int(v) for k, v in want.items()}
    capsys.readouterr()
    # a path (even of the listed folder) or a malformed entry is refused
    for data, says in ((str(parquet_source), "no listed data source"),
                       ("broken", "needs either a path")):
        assert main([data, *args]) == 2
        assert says in capsys.readouterr().err
