"""Headless tests of the Streamlit dashboard (``app/main.py``) with
``streamlit.testing.v1.AppTest``.

Every number the app shows is checked against an independent reference:
fairlearn's ``MetricFrame``, a hand count in pandas, or a direct call of the
core (``fairness_core.audit``) with a spec written out here.  AppTest cannot
render or run JavaScript: what reaches the browser is checked as element
bodies (markdown, captions, alerts, widget labels) and plotly figure JSON.
"""
from __future__ import annotations

import copy
import io
import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest
from streamlit.util import calc_hash

ROOT = Path(__file__).resolve().parent.parent
APP_DIR = ROOT / "app"
APP = APP_DIR / "main.py"
LOANS = ROOT / "sample_data" / "loans.csv"
ADULT = ROOT / "sample_data" / "adult_test_predictions.csv"
TIMEOUT = 60

for _p in (str(ROOT), str(APP_DIR)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import state  # noqa: E402  (the app's own modules, as the app imports them)
from ui import md  # noqa: E402

from fairness_core import AuditSpec, audit, read_table  # noqa: E402
from fairness_core.prepare import MISSING_GROUP  # noqa: E402

PAGES = {"overview": "Fairness audit overview", "groups": "Group metrics", "data": "The data",
         "thresholds": "Thresholds", "models": "Models", "help": "Help"}


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def new_app(query: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    return at


def open_page(at: AppTest, url_path: str) -> AppTest:
    """Ask the next run for the page registered at ``url_path``.

    ``AppTest.switch_page`` only knows pages that are files; the dashboard's
    pages are functions, registered by ``st.navigation`` under the hash of
    their ``url_path``.  The page must be registered by the last run.
    """
    want = calc_hash(url_path)
    pages = {info.get("page_name"): h for h, info in at._registered_pages.items()}
    assert want in pages.values(), f"no page at /{url_path}; registered: {sorted(pages)}"
    at._page_hash = want
    return at


def run_default(query: dict | None = None) -> AppTest:
    """First run: the bundled loans sample with its full audit."""
    at = new_app(query).run()
    assert not at.exception, exc_text(at)
    return at


def exc_text(at: AppTest) -> str:
    return "\n".join(f"{e.message}\n{''.join(e.stack_trace)}" for e in at.exception)


def ctx(at: AppTest):
    return at.session_state["ctx"]


def page(at: AppTest, name: str) -> AppTest:
    """Go to a page the way the browser does.

    On a page change the browser first drops the old page's elements and
    sends only the widget states of what stays (the sidebar: Streamlit's
    frontend ``onPageChange`` -> ``clearPageElements``); AppTest would send
    the old page's widgets too, which a real session never does (and which
    makes a picker on both pages, e.g. ``model_pick``, look reset).
    """
    open_page(at, name)
    main = at._tree.children.get(0)
    if main is not None and hasattr(main, "children"):
        main.children = {}
    at.run()
    assert not at.exception, exc_text(at)
    return at


def upload(at: AppTest, name: str, data: bytes, mime: str = "text/csv") -> AppTest:
    """Choose 'Upload your own file' (if needed) and upload ``data``."""
    if at.selectbox(key="source").value != state.UPLOAD:
        at.selectbox(key="source").set_value(state.UPLOAD).run()
        assert not at.exception, exc_text(at)
    at.file_uploader(key="upload").set_value((name, data, mime)).run()
    return at


def titles(at: AppTest) -> list[str]:
    return [t.value for t in at.main.title]


def charts(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def chart_keys(at: AppTest) -> list[str]:
    """The ``key=`` of each plotly chart (its element id ends with it)."""
    return [c.proto.id.rsplit("-", 1)[-1] for c in at.get("plotly_chart")]


def sidebar_errors(at: AppTest) -> list[str]:
    return [e.value for e in at.sidebar.error]


def _walk(node):
    """Elements of a block in display order (children sorted by position)."""
    yield node
    kids = getattr(node, "children", None)
    if isinstance(kids, dict):
        for k in sorted(kids):
            yield from _walk(kids[k])


def widget_above(at: AppTest, text: str) -> str | None:
    """The key of the last sidebar widget shown above the error ``text``."""
    last = None
    for node in _walk(at.sidebar):
        if getattr(node, "type", None) == "error" and node.value == text:
            return last
        key = getattr(node, "key", None) if hasattr(node, "set_value") else None
        if key:
            last = key
    return None


def shown_table(at: AppTest, i: int = 0) -> pd.DataFrame:
    return at.main.dataframe[i].value


def unescape(text: str) -> str:
    """Markdown text as it reads on the page (backslash escapes dropped)."""
    return re.sub(r"\\(.)", r"\1", str(text))


def static_table(at: AppTest, i: int = 0) -> pd.DataFrame:
    """An ``st.table`` as it reads on the page (it renders Markdown, so the
    app escapes every header and text cell)."""
    df = at.main.table[i].value
    return df.rename(columns=unescape).map(lambda v: unescape(v) if isinstance(v, str) else v)


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def csv_bytes(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False).encode("utf-8")


def loans() -> pd.DataFrame:
    return pd.read_csv(LOANS)


def adult() -> pd.DataFrame:
    return pd.read_csv(ADULT, keep_default_na=False)


def assert_clean(at: AppTest):
    """No exception element and no traceback text anywhere on the page."""
    assert not at.exception, exc_text(at)
    for kind in ("markdown", "caption", "error", "warning", "info", "code"):
        for el in at.get(kind):
            body = str(getattr(el, "value", "") or getattr(el, "body", ""))
            assert "Traceback" not in body and 'File "' not in body, body


# --------------------------------------------------------------------------
# 1. every page renders on the default sample
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def default_app() -> AppTest:
    return run_default()


@pytest.mark.parametrize("name, min_charts, min_tables", [
    ("overview", 0, 2), ("groups", 3, 1), ("data", 1, 1), ("thresholds", 3, 0),
    ("models", 1, 1), ("help", 0, 1)])
def test_every_page_renders_on_the_default_sample(default_app, name, min_charts, min_tables):
    at = page(default_app, name)
    assert_clean(at)
    assert PAGES[name] in titles(at)
    figs = charts(at)
    assert len(figs) >= min_charts
    for fig in figs:
        assert fig["data"], f"empty figure on {name}"
    assert len(at.main.dataframe) + len(at.main.table) >= min_tables
    c = ctx(at)
    assert c.result is not None and not c.errors
    assert c.loaded.name == "loans.csv" and c.loaded.sample


def test_default_sample_mapping_and_all_pages_registered(default_app):
    at = page(default_app, "overview")
    spec = ctx(at).result.spec
    assert spec.label == "repaid" and spec.positive == "yes"
    assert spec.predictions == ("model_a_approved", "model_b_approved")
    assert spec.scores == ("model_a_score", "model_b_score")
    assert set(spec.sensitive) >= {"sex", "race"}
    # the overview's verdict matrix has one row per audited attribute
    matrix = static_table(at, 0)
    assert list(matrix["Attribute"]) == spec.attribute_names()
    # every page is a function registered under its own URL (the overview is the default)
    registered = {info["url_pathname"]: info["page_name"]
                  for info in at._registered_pages.values()}
    assert registered == {"": "Overview", "groups": "Group metrics", "data": "Data",
                          "thresholds": "Thresholds", "mitigation": "Mitigation",
                          "models": "Models", "compare": "Compare", "export": "Export",
                          "review": "Review", "history": "History", "help": "Help"}
    assert all(not info["script_path"] for info in at._registered_pages.values())


# --------------------------------------------------------------------------
# 2. upload: guessed mapping and the group table against fairlearn
# --------------------------------------------------------------------------
def _fairlearn_by_sex(df: pd.DataFrame) -> pd.DataFrame:
    from fairlearn.metrics import MetricFrame, count, selection_rate, true_positive_rate
    y = (df["income"] == ">50K").astype(int)
    p = (df["predicted_income"] == ">50K").astype(int)
    mf = MetricFrame(metrics={"selection_rate": selection_rate, "tpr": true_positive_rate,
                              "n": count},
                     y_true=y, y_pred=p, sensitive_features=df["sex"])
    return mf.by_group


def test_upload_guesses_mapping_and_group_table_matches_fairlearn():
    at = run_default()
    upload(at, "adult_test_predictions.csv", ADULT.read_bytes())
    assert_clean(at)
    c = ctx(at)
    assert not c.errors, c.errors
    assert c.loaded.name == "adult_test_predictions.csv" and not c.loaded.sample
    # the guessed mapping, in the widgets and in the audit
    assert at.selectbox(key="label").value == "income"
    assert at.selectbox(key="positive").value == ">50K"
    assert at.multiselect(key="predictions").value == ["predicted_income"]
    assert at.multiselect(key="scores").value == ["score"]
    assert {"sex", "race"} <= set(at.multiselect(key="sensitive").value)
    spec = c.result.spec
    assert (spec.label, str(spec.positive)) == ("income", ">50K")
    assert spec.predictions == ("predicted_income",) and spec.scores == ("score",)

    ref = _fairlearn_by_sex(adult())
    page(at, "groups")
    at.selectbox(key="model_pick").set_value("predicted_income").run()
    at.selectbox(key="attribute_pick").set_value("sex").run()
    at.selectbox(key="metric_pick").set_value("selection_rate").run()
    assert_clean(at)
    table = shown_table(at).set_index("Group")
    assert sorted(table.index) == sorted(ref.index)
    assert "Selection rate" in table.columns
    for g in ref.index:
        assert table.loc[g, "Selection rate"] == pct(ref.loc[g, "selection_rate"]), g
        assert int(table.loc[g, "Rows"]) == int(ref.loc[g, "n"]), g

    at.selectbox(key="metric_pick").set_value("tpr").run()
    assert_clean(at)
    table = shown_table(at).set_index("Group")
    assert "True positive rate" in table.columns and "Selection rate" not in table.columns
    for g in ref.index:
        assert table.loc[g, "True positive rate"] == pct(ref.loc[g, "tpr"]), g


# --------------------------------------------------------------------------
# 3. switching attribute / metric / model / threshold
# --------------------------------------------------------------------------
def _rate_by_group(y_pred: pd.Series, groups: pd.Series) -> dict:
    keys = groups.fillna(MISSING_GROUP).astype(str)
    return y_pred.astype(float).groupby(keys).mean().to_dict()


def test_groups_page_follows_attribute_metric_and_model():
    at = page(run_default(), "groups")
    df = loans()
    at.selectbox(key="model_pick").set_value("model_a_approved").run()
    at.selectbox(key="attribute_pick").set_value("sex").run()
    at.selectbox(key="metric_pick").set_value("selection_rate").run()
    t = shown_table(at).set_index("Group")
    assert set(t.index) == {"Female", "Male", MISSING_GROUP}
    want = _rate_by_group(df["model_a_approved"] == "yes", df["sex"])
    assert {g: t.loc[g, "Selection rate"] for g in want} == {g: pct(v) for g, v in want.items()}

    # attribute -> race: the table rows and the chart's groups change
    at.selectbox(key="attribute_pick").set_value("race").run()
    assert_clean(at)
    t = shown_table(at).set_index("Group")
    assert set(t.index) == set(df["race"].unique())
    want = _rate_by_group(df["model_a_approved"] == "yes", df["race"])
    assert {g: t.loc[g, "Selection rate"] for g in want} == {g: pct(v) for g, v in want.items()}
    chart_text = json.dumps(charts(at)[0])
    assert "Hispanic" in chart_text and "Female" not in chart_text

    # metric -> false positive rate: the column header and values change
    at.selectbox(key="metric_pick").set_value("fpr").run()
    assert_clean(at)
    t = shown_table(at).set_index("Group")
    assert "False positive rate" in t.columns and "Selection rate" not in t.columns
    neg = df["repaid"] == "no"
    want = _rate_by_group((df["model_a_approved"] == "yes")[neg], df["race"][neg])
    assert {g: t.loc[g, "False positive rate"] for g in want} == \
        {g: pct(v) for g, v in want.items()}
    assert ctx(at).prefs["metric"] == "fpr"

    # model -> model_b_approved
    at.selectbox(key="model_pick").set_value("model_b_approved").run()
    assert_clean(at)
    t = shown_table(at).set_index("Group")
    want = _rate_by_group((df["model_b_approved"] == "yes")[neg], df["race"][neg])
    assert {g: t.loc[g, "False positive rate"] for g in want} == \
        {g: pct(v) for g, v in want.items()}

    # and against the core called directly (counts too)
    core = audit(df, AuditSpec(label="repaid", positive="yes",
                               predictions=["model_a_approved", "model_b_approved"],
                               scores=["model_a_score", "model_b_score"],
                               sensitive=ctx(at).spec.sensitive))
    g = core.group_metrics
    g = g[(g["model"] == "model_b_approved") & (g["attribute"] == "race")].set_index("group")
    for grp in g.index:
        assert t.loc[grp, "False positive rate"] == pct(g.loc[grp, "fpr"])
        assert (t.loc[grp, "TP"], t.loc[grp, "FP"], t.loc[grp, "TN"], t.loc[grp, "FN"]) == \
            tuple(int(g.loc[grp, k]) for k in ("tp", "fp", "tn", "fn"))


def test_threshold_in_sidebar_and_on_thresholds_page():
    at = run_default()
    df = loans()
    at.slider(key="threshold").set_value(0.3).run()
    assert_clean(at)
    assert ctx(at).result.spec.threshold == pytest.approx(0.3)
    page(at, "groups")
    at.selectbox(key="model_pick").set_value("model_a_score").run()
    at.selectbox(key="attribute_pick").set_value("sex").run()
    at.selectbox(key="metric_pick").set_value("selection_rate").run()
    t = shown_table(at).set_index("Group")
    want = _rate_by_group(df["model_a_score"] >= 0.3, df["sex"])
    assert {g: t.loc[g, "Selection rate"] for g in want} == {g: pct(v) for g, v in want.items()}

    # the thresholds page's own slider moves the same threshold
    page(at, "thresholds")
    assert at.slider(key="threshold_page").value == pytest.approx(0.3)
    at.slider(key="threshold_page").set_value(0.7).run()
    assert_clean(at)
    assert ctx(at).result.spec.threshold == pytest.approx(0.7)
    assert at.slider(key="threshold").value == pytest.approx(0.7)
    assert at.slider(key="threshold_page").value == pytest.approx(0.7)
    page(at, "groups")
    t = shown_table(at).set_index("Group")
    want = _rate_by_group(df["model_a_score"] >= 0.7, df["sex"])
    assert {g: t.loc[g, "Selection rate"] for g in want} == {g: pct(v) for g, v in want.items()}
    assert at.query_params.get("thr") in ("0.7", ["0.7"])


# --------------------------------------------------------------------------
# 4. every bad input shows a message under its control, no exception
# --------------------------------------------------------------------------
def _parquet_bytes(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


SMALL = pd.DataFrame({"y": ["yes", "no"] * 40, "pred": ["yes", "yes", "no", "no"] * 20,
                      "sex": ["F", "M", "M", "F", "M"] * 16})


def _upload_case(name, data):
    def setup(at):
        upload(at, name, data)
    return setup


def _upload_then(name, data, **widgets):
    def setup(at):
        upload(at, name, data)
        for key, value in widgets.items():
            _set(at, key, value)
    return setup


def _set(at: AppTest, key: str, value):
    for kind in ("selectbox", "multiselect", "text_input", "slider", "radio", "checkbox"):
        found = [w for w in getattr(at, kind) if w.key == key]
        if found:
            found[0].set_value(value).run()
            return
    raise AssertionError(f"no widget with key {key!r}")


def _sample_then(**widgets):
    def setup(at):
        for key, value in widgets.items():
            _set(at, key, value)
    return setup


three_labels = SMALL.assign(y=["yes", "no", "maybe", "no"] * 20)
empty_label = SMALL.assign(outcome=[None] * 80)
other_values = SMALL.assign(pred=["alpha", "beta"] * 40)

BAD_INPUTS = [
    pytest.param(_upload_case("empty.csv", b""), "file", "empty", id="empty-file"),
    pytest.param(_upload_case("header.csv", b"y,pred,sex\n"), "file", "no data rows",
                 id="header-only"),
    pytest.param(_upload_case("table.csv", _parquet_bytes(SMALL)), "file",
                 "content looks like a Parquet file", id="parquet-named-csv"),
    pytest.param(_upload_case("table.csv", b"\x00\x01\x02\x03binary\x00junk" * 50), "file",
                 "binary", id="binary-named-csv"),
    pytest.param(_upload_case("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600),
                 "file", "Excel 97-2003", id="xls"),
    pytest.param(_upload_then("three.csv", csv_bytes(three_labels), label="y", task="binary",
                              predictions=["pred"], sensitive=["sex"]), "positive",
                 "choose the values that count as the positive class",
                 id="label-three-values"),
    pytest.param(_upload_then("emptylabel.csv", csv_bytes(empty_label), label="outcome",
                              predictions=["pred"], sensitive=["sex"]),
                 "label", "entirely empty", id="label-empty"),
    pytest.param(_upload_then("other.csv", csv_bytes(other_values), label="y",
                              predictions=["pred"], sensitive=["sex"]),
                 "prediction_positive", "means the positive decision",
                 id="predictions-not-label-values"),
    pytest.param(_sample_then(sensitive=["application_id"]), "sensitive", "distinct values",
                 id="sensitive-identifier"),
    pytest.param(_sample_then(sensitive=["age"], **{"bins::age": "abc"}), "bins",
                 "bin edges", id="bins-not-numbers"),
    pytest.param(_sample_then(sensitive=["age"], **{"bins::age": "5, 3"}), "bins",
                 "bin edges", id="bins-decreasing"),
]


@pytest.mark.parametrize("setup, control, words", BAD_INPUTS)
def test_bad_input_shows_message_under_its_control(setup, control, words):
    at = run_default()
    setup(at)
    assert_clean(at)
    c = ctx(at)
    assert control in c.errors, c.errors
    msg = c.errors[control]
    assert words.lower() in msg.lower(), msg
    assert md(msg) in sidebar_errors(at), sidebar_errors(at)
    # ... right under the control that caused it
    above = widget_above(at, md(msg))
    want = {"file": "upload"}.get(control, control)
    prefixed = {"bins": "bins::", "prediction_positive": "pp::", "positive": "positive_set"}
    assert above == want or str(above).startswith(prefixed.get(control, want)), above
    assert c.result is None
    # every page still renders, with a pointer to the sidebar instead of results
    for name in ("overview", "groups", "data"):
        page(at, name)
        assert_clean(at)
        assert any("sidebar" in w.value for w in at.main.warning), name


def test_bad_bin_edges_message_quotes_what_was_typed():
    at = run_default()
    _set(at, "sensitive", ["age"])
    _set(at, "bins::age", "abc")
    assert_clean(at)
    msg = ctx(at).errors.get("bins", "")
    assert "bin edges" in msg and "'abc'" in msg, msg


# --------------------------------------------------------------------------
# 5. a bad file keeps the earlier choices and the previous audit
# --------------------------------------------------------------------------
def test_bad_file_keeps_choices_and_previous_audit():
    at = run_default()
    upload(at, "adult_test_predictions.csv", ADULT.read_bytes())
    _set(at, "tolerance", 0.9)
    _set(at, "sensitive", ["sex"])
    assert ctx(at).result.spec.tolerance == pytest.approx(0.9)
    before = ctx(at).result
    upload(at, "broken.csv", b"")
    assert_clean(at)
    c = ctx(at)
    assert "file" in c.errors and "broken.csv" in c.errors["file"]
    assert md(c.errors["file"]) in sidebar_errors(at)
    assert at.slider(key="tolerance").value == pytest.approx(0.9)
    assert at.multiselect(key="sensitive").value == ["sex"]
    assert c.result is not None and c.loaded.name == "adult_test_predictions.csv"
    assert c.result.spec.tolerance == pytest.approx(0.9)
    assert c.result.spec.sensitive == ("sex",)
    assert c.result.spec.to_json() == before.spec.to_json()
    assert c.note and "previous file" in c.note
    assert md(c.note) in [w.value for w in at.sidebar.warning]
    page(at, "groups")
    assert_clean(at)
    assert set(shown_table(at)["Group"]) == {"Female", "Male"}


def test_wrong_file_then_right_file_restores_choices():
    """A readable file that does not fit the mapping (other columns) must not
    wipe the user's mapping: uploading the right file again restores it."""
    at = run_default()
    good = ADULT.read_bytes()
    upload(at, "adult_test_predictions.csv", good)
    _set(at, "sensitive", ["race"])
    _set(at, "tolerance", 0.9)
    upload(at, "other.csv", b"a,b\n1,2\n3,4\n")
    assert_clean(at)
    upload(at, "adult_test_predictions.csv", good)
    assert_clean(at)
    assert at.multiselect(key="predictions").value == ["predicted_income"]
    assert at.multiselect(key="scores").value == ["score"]
    assert at.multiselect(key="sensitive").value == ["race"]
    assert at.slider(key="tolerance").value == pytest.approx(0.9)
    assert ctx(at).result is not None and ctx(at).result.spec.sensitive == ("race",)


# --------------------------------------------------------------------------
# 6. URL state
# --------------------------------------------------------------------------
def test_url_parameters_are_picked_up_and_written_back():
    at = run_default({"metric": "tpr", "tol": "0.9", "attr": "sex",
                      "show": "model_b_approved"})
    c = ctx(at)
    assert c.result.spec.sensitive == ("sex",)
    assert c.result.spec.tolerance == pytest.approx(0.9)
    assert at.slider(key="tolerance").value == pytest.approx(0.9)
    assert at.multiselect(key="sensitive").value == ["sex"]
    assert at.selectbox(key="model_pick").value == "model_b_approved"  # on the overview
    page(at, "groups")
    assert at.selectbox(key="metric_pick").value == "tpr"
    assert at.selectbox(key="attribute_pick").value == "sex"
    assert "True positive rate" in shown_table(at).columns

    at.selectbox(key="metric_pick").set_value("fpr").run()
    assert_clean(at)
    assert at.query_params.get("metric") in ("fpr", ["fpr"])
    assert at.query_params.get("tol") in ("0.9", ["0.9"])
    assert at.query_params.get("attr") in ("sex", ["sex"])


def test_url_model_choice_reaches_the_groups_page():
    at = run_default({"show": "model_b_approved"})
    assert at.selectbox(key="model_pick").value == "model_b_approved"
    page(at, "groups")
    assert at.selectbox(key="model_pick").value == "model_b_approved"
    assert at.query_params.get("show") in ("model_b_approved", ["model_b_approved"])


def test_url_repeated_attribute_and_threshold():
    at = run_default({"attr": ["sex", "race"], "thr": "0.25", "label": "repaid"})
    c = ctx(at)
    assert c.result.spec.sensitive == ("sex", "race")
    assert c.result.spec.threshold == pytest.approx(0.25)
    assert at.slider(key="threshold").value == pytest.approx(0.25)
    assert at.query_params.get("attr") == ["sex", "race"]


def test_malformed_url_values_are_ignored():
    at = run_default({"tol": "lots", "thr": "x", "minsize": "-", "bins": "{not json",
                      "metric": "nonsense", "show": "no_such_model"})
    assert_clean(at)
    c = ctx(at)
    assert c.result is not None and not c.errors
    assert c.result.spec.tolerance == pytest.approx(0.8)
    page(at, "groups")
    assert at.selectbox(key="metric_pick").value == "selection_rate"


# --------------------------------------------------------------------------
# 7. user strings are never rendered as HTML or markdown
# --------------------------------------------------------------------------
PAYLOADS = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>",
            "![x](http://example.invalid/x.png)", "[click](javascript:alert(1))"]
BOLD = "**bold**"
_ESCAPED = re.compile(r"\\.")


def _hostile_table() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    groups = PAYLOADS + ["plain"]
    # payload groups: some large and very different (findings), one tiny (a warning)
    sizes = [300, 300, 300, 12, 600]
    grp = np.repeat(groups, sizes)
    n = len(grp)
    rate = {g: r for g, r in zip(groups, [0.1, 0.9, 0.5, 0.5, 0.5])}
    y = rng.random(n) < 0.5
    pred = rng.random(n) < np.array([rate[g] for g in grp])
    return pd.DataFrame({"y": np.where(y, "yes", "no"), "pred": np.where(pred, "yes", "no"),
                         "grp": grp, BOLD: rng.choice(["a", "b"], n, p=[0.85, 0.15])})


def _unescaped(body: str) -> str:
    """The text left after dropping backslash-escaped characters."""
    return _ESCAPED.sub("", body)


def _rendered_bodies(at: AppTest) -> list[tuple[str, str]]:
    out = []
    for kind in ("markdown", "caption", "error", "warning", "info", "success", "title",
                 "header", "subheader"):
        for el in at.get(kind):
            out.append((kind, str(el.value)))
    # st.table renders Markdown in its headers and cells
    for el in at.get("table"):
        df = el.value
        out += [("table header", str(c)) for c in df.columns]
        out += [("table cell", v) for v in df.to_numpy().ravel() if isinstance(v, str)]
    return out


def _widget_labels(at: AppTest) -> list[tuple[str, str]]:
    out = []
    for kind in ("selectbox", "multiselect", "text_input", "slider", "radio", "checkbox",
                 "number_input", "file_uploader"):
        for w in at.get(kind):
            out.append((kind, str(w.label)))
    for e in at.get("expander"):
        out.append(("expander", str(e.label)))
    return out


def _assert_no_raw_payload(items):
    for kind, body in items:
        plain = _unescaped(body)
        for bad in ("<script", "<img", "![", "](", "javascript:alert(1))", BOLD):
            assert bad not in plain, f"{kind} renders user text unescaped: {body!r}"


def test_user_strings_are_not_rendered_as_markdown_or_html():
    df = _hostile_table()
    at = run_default()
    upload(at, "[evil](javascript:alert(1)).csv", csv_bytes(df))
    _set(at, "label", "y")
    _set(at, "predictions", ["pred"])
    _set(at, "sensitive", ["grp", BOLD])
    assert_clean(at)
    c = ctx(at)
    assert c.result is not None, c.errors
    assert set(PAYLOADS) <= set(c.result.group_metrics["group"])
    seen_payload = False
    for name in ("overview", "groups", "data"):
        page(at, name)
        if name in ("groups", "data"):
            at.selectbox(key="attribute_pick").set_value("grp").run()
        assert_clean(at)
        items = _rendered_bodies(at)
        _assert_no_raw_payload(items)
        seen_payload |= any(md(PAYLOADS[0]) in b for _, b in items)
        # the payloads do reach the page, as plain data, in the tables
        if name == "groups":
            assert set(PAYLOADS) <= set(shown_table(at)["Group"])
        if name == "overview":  # a static table: the attribute name reads as typed
            assert BOLD in set(static_table(at, 0)["Attribute"])
    # the findings and warnings do quote the group names (escaped)
    assert seen_payload
    # a bad file named like a link: its name is escaped in the error too
    upload(at, "![x](http://example.invalid/x.png).csv", b"")
    assert_clean(at)
    _assert_no_raw_payload(_rendered_bodies(at))


def test_app_source_never_allows_html():
    for path in sorted(APP_DIR.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        assert "unsafe_allow_html" not in text, path
        assert "st.html(" not in text and "components.html" not in text, path


def test_column_names_are_not_rendered_as_markdown_in_widget_labels():
    """Widget labels are markdown too (bold, links and images render there)."""
    rng = np.random.default_rng(1)
    n = 400
    img = "![x](http://example.invalid/x.png)"
    df = pd.DataFrame({"y": rng.choice(["yes", "no"], n), "pred": rng.choice(["yes", "no"], n),
                       BOLD: rng.choice(["a", "b"], n),
                       img: rng.integers(18, 80, n)})  # numeric: gets a bins text box
    at = run_default()
    upload(at, "cols.csv", csv_bytes(df))
    _set(at, "label", "y")
    _set(at, "predictions", ["pred"])
    _set(at, "sensitive", [BOLD, img])
    _set(at, "refmode", "named")  # one "Reference for <attribute>" box per attribute
    assert_clean(at)
    assert ctx(at).result is not None, ctx(at).errors
    assert any(w.key == f"ref::{BOLD}" for w in at.selectbox)
    assert any(w.key == f"bins::{img}" for w in at.text_input)
    _assert_no_raw_payload(_widget_labels(at))


# --------------------------------------------------------------------------
# 8. intersections
# --------------------------------------------------------------------------
def test_intersections_offer_a_picker_and_a_heatmap():
    at = run_default()
    _set(at, "sensitive", ["sex", "race"])
    _set(at, "intersectional", True)
    assert_clean(at)
    spec = ctx(at).result.spec
    assert spec.intersectional and "sex & race" in spec.attribute_names()
    page(at, "groups")
    pick = at.selectbox(key="inter_pick")
    assert pick.options == ["sex x race"] or pick.value == "sex & race"
    assert "heatmap" in chart_keys(at)
    heat = charts(at)[chart_keys(at).index("heatmap")]
    assert any(t.get("type") == "heatmap" for t in heat["data"])
    # the intersection is also an attribute of its own in the table
    at.selectbox(key="attribute_pick").set_value("sex & race").run()
    assert_clean(at)
    groups = set(shown_table(at)["Group"])
    core = ctx(at).result.group_metrics
    assert groups == set(core.loc[core["attribute"] == "sex & race", "group"])
    assert len(groups) > 5


def test_no_intersections_without_the_tick():
    at = page(run_default(), "groups")
    assert not [w for w in at.selectbox if w.key == "inter_pick"]
    assert "heatmap" not in chart_keys(at)
    assert chart_keys(at) == ["group_chart", "disparity_chart", "confusion_chart"]


# --------------------------------------------------------------------------
# 9. named reference groups
# --------------------------------------------------------------------------
def test_named_reference_is_used_by_the_disparities():
    at = run_default()
    _set(at, "refmode", "named")
    assert_clean(at)
    box = at.selectbox(key="ref::sex")
    assert box.value == "Male"  # the largest group is the starting choice
    box.set_value("Female").run()
    assert_clean(at)
    c = ctx(at)
    assert c.spec.reference.get("sex") == "Female"
    d = c.result.disparities
    assert set(d.loc[d["attribute"] == "sex", "reference"]) == {"Female"}
    assert set(d.loc[d["attribute"] == "race", "reference"]) == {"White"}
    # the numbers equal the core's with that reference
    spec = AuditSpec(label="repaid", positive="yes",
                     predictions=["model_a_approved", "model_b_approved"],
                     scores=["model_a_score", "model_b_score"],
                     sensitive=list(c.spec.sensitive), reference={"sex": "Female"})
    core = audit(loans(), spec).disparities
    key = ["model", "attribute", "metric", "group"]
    mine = d.set_index(key)[["reference", "ratio", "difference", "verdict"]].sort_index()
    theirs = core.set_index(key)[["reference", "ratio", "difference", "verdict"]].sort_index()
    pd.testing.assert_frame_equal(mine, theirs)
    # the groups page marks Female as the reference
    page(at, "groups")
    at.selectbox(key="attribute_pick").set_value("sex").run()
    t = shown_table(at).set_index("Group")
    assert t.loc["Female", "Ratio to reference"] == "reference"
    assert t.loc["Male", "Ratio to reference"] != "reference"
    # the choice survives a page switch and is in the URL
    page(at, "overview")
    assert ctx(at).spec.reference.get("sex") == "Female"
    assert "Female" in str(at.query_params.get("ref"))


# --------------------------------------------------------------------------
# choices that follow the user across pages
# --------------------------------------------------------------------------
def test_model_choice_follows_to_the_next_page():
    at = run_default()
    at.selectbox(key="model_pick").set_value("model_b_approved").run()
    page(at, "groups")
    assert at.selectbox(key="model_pick").value == "model_b_approved"
    assert at.query_params.get("show") in ("model_b_approved", ["model_b_approved"])
    t = shown_table(at).set_index("Group")
    df = loans()
    want = _rate_by_group(df["model_b_approved"] == "yes", df["sex"])
    assert {g: t.loc[g, "Selection rate"] for g in want} == {g: pct(v) for g, v in want.items()}


def test_attribute_and_metric_choice_survive_two_page_switches():
    at = page(run_default(), "groups")
    at.selectbox(key="attribute_pick").set_value("race").run()
    at.selectbox(key="metric_pick").set_value("fpr").run()
    page(at, "data")
    assert at.selectbox(key="attribute_pick").value == "race"
    page(at, "groups")
    assert at.selectbox(key="attribute_pick").value == "race"
    assert at.selectbox(key="metric_pick").value == "fpr"
    assert "False positive rate" in shown_table(at).columns
    assert set(shown_table(at)["Group"]) == set(loans()["race"].unique())


# --------------------------------------------------------------------------
# more interactions
# --------------------------------------------------------------------------
def test_flipping_the_positive_value_flips_the_rates():
    at = run_default()
    upload(at, "adult_test_predictions.csv", ADULT.read_bytes())
    _set(at, "positive", "<=50K")
    assert_clean(at)
    assert str(ctx(at).result.provenance["positive_label"]) == "<=50K"
    page(at, "groups")
    at.selectbox(key="model_pick").set_value("predicted_income").run()
    at.selectbox(key="attribute_pick").set_value("sex").run()
    at.selectbox(key="metric_pick").set_value("selection_rate").run()
    df = adult()
    want = _rate_by_group(df["predicted_income"] == "<=50K", df["sex"])
    t = shown_table(at).set_index("Group")
    assert {g: t.loc[g, "Selection rate"] for g in want} == {g: pct(v) for g, v in want.items()}


def test_models_page_disparity_measure_changes_the_chart():
    at = page(run_default(), "models")
    at.selectbox(key="attribute_pick").set_value("sex").run()
    before = json.dumps(charts(at)[0], sort_keys=True)
    at.selectbox(key="model_disparity").set_value("equalized_odds_difference").run()
    assert_clean(at)
    after = json.dumps(charts(at)[0], sort_keys=True)
    assert before != after
    table = shown_table(at).set_index("Model")
    s = ctx(at).result.summary
    s = s[s["attribute"] == "sex"].set_index("model")
    for m in ("model_a_approved", "model_b_approved"):
        assert table.loc[m, "EO difference"] == f"{s.loc[m, 'equalized_odds_difference']:.3f}"


def test_help_page_choice_changes_the_advice():
    at = page(run_default(), "help")
    first = [s.value for s in at.main.success]
    radio = at.radio(key="help_choice")
    radio.set_value(radio.options[2]).run()
    assert_clean(at)
    assert [s.value for s in at.main.success] != first
    assert any("False positive rate" in s.value for s in at.main.success)


def test_no_file_yet_every_page_points_to_the_sidebar():
    at = run_default()
    at.selectbox(key="source").set_value(state.UPLOAD).run()
    for name in ("overview", "groups", "data"):
        page(at, name)
        assert_clean(at)
        assert any("sidebar" in i.value for i in at.main.info), name
        assert not at.get("plotly_chart")
    assert ctx(at).result is None and not ctx(at).errors


def test_url_named_reference_and_bins():
    at = run_default({"refmode": "named", "ref": json.dumps({"sex": "Female"}),
                      "attr": ["sex", "age"], "bins": json.dumps({"age": [18, 30, 50, 80]})})
    c = ctx(at)
    assert not c.errors, c.errors
    assert at.selectbox(key="ref::sex").value == "Female"
    assert at.text_input(key="bins::age").value == "18, 30, 50, 80"
    groups = set(c.result.group_metrics.query("attribute == 'age'")["group"])
    assert {"[18, 30)", "[30, 50)", "[50, 80)"} <= groups
    d = c.result.disparities
    assert set(d.loc[d["attribute"] == "sex", "reference"]) == {"Female"}


def _mixed_scale_table() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 600
    return pd.DataFrame({"y": rng.choice(["yes", "no"], n),
                         "prob_score": np.round(rng.random(n), 3),   # 0 to 1
                         "credit_score": rng.integers(300, 850, n),  # 300 to 850
                         "sex": rng.choice(["F", "M"], n)})


def test_thresholds_page_with_scores_on_different_scales():
    at = run_default()
    upload(at, "mixed.csv", csv_bytes(_mixed_scale_table()))
    assert at.multiselect(key="scores").value == ["prob_score", "credit_score"]
    assert ctx(at).result is not None, ctx(at).errors
    page(at, "thresholds")
    at.selectbox(key="score_model_pick").set_value("credit_score").run()
    assert_clean(at)
    assert "Thresholds" in titles(at)
    assert len(charts(at)) >= 2


def test_data_page_missing_share_for_binned_attribute():
    rng = np.random.default_rng(0)
    n = 800
    df = pd.DataFrame({"y": rng.choice(["yes", "no"], n), "pred": rng.choice(["yes", "no"], n),
                       "age": rng.integers(18, 80, n), "sex": rng.choice(["F", "M"], n)})
    young = (df["age"] < 30).to_numpy()
    df.loc[young & (rng.random(n) < 0.5), "pred"] = None  # left out: missing prediction
    at = run_default()
    upload(at, "ages.csv", csv_bytes(df))
    _set(at, "label", "y")
    _set(at, "predictions", ["pred"])
    _set(at, "sensitive", ["age", "sex"])
    _set(at, "bins::age", "18, 25, 35, 80")
    assert ctx(at).result is not None, ctx(at).errors
    page(at, "data")
    at.selectbox(key="attribute_pick").set_value("age").run()
    assert_clean(at)
    t = shown_table(at).set_index("Group")
    bins = pd.cut(df["age"], [18, 25, 35, 80], right=False)
    want = df["pred"].isna().groupby(bins, observed=True).mean()
    labels = {iv: f"[{int(iv.left)}, {int(iv.right)})" for iv in want.index}
    for iv, share in want.items():
        assert t.loc[labels[iv], "Rows with missing values (left out)"] == pct(share), iv


# ---------------------------------------------------------------------------
# real files: decisions as text, harm or benefit, label value sets
# ---------------------------------------------------------------------------
def test_text_decision_values_are_offered_as_a_guess_and_said_so():
    df = SMALL.assign(pred=np.where(SMALL["pred"] == "yes", "approved", "declined"))
    at = run_default()
    _upload_then("text.csv", csv_bytes(df), label="y", predictions=["pred"],
                 sensitive=["sex"])(at)
    assert_clean(at)
    assert at.multiselect(key="pp::pred").value == ["approved"]
    assert any("Guessed from the values" in c.value for c in at.sidebar.caption)
    r = ctx(at).result
    assert r.spec.prediction_positive == {"pred": ["approved"]}
    g = r.group_metrics.set_index("group")
    want = (df["pred"] == "approved").groupby(df["sex"]).mean()
    for sex, v in want.items():
        assert g.loc[sex, "selection_rate"] == pytest.approx(v)
    # the user's choice replaces the guess, and the caption goes away
    at.multiselect(key="pp::pred").set_value(["declined"]).run()
    assert ctx(at).result.spec.prediction_positive == {"pred": ["declined"]}
    assert not any("Guessed from the values" in c.value for c in at.sidebar.caption)


def test_positive_decision_control_decides_who_a_gap_disadvantages():
    at = run_default()
    assert ctx(at).result.spec.positive_decision == "benefit"
    sel = [f for f in ctx(at).result.findings if f["kind"] == "fail"
           and f["metric"] == "selection_rate" and f["disadvantaged"]]
    assert sel
    f = sel[0]
    lower = f["group"] if f["value"] < f["reference_value"] else f["reference"]
    assert f["disadvantaged"] == lower
    at.radio(key="positive_decision").set_value("harm").run()
    assert_clean(at)
    r = ctx(at).result
    assert r.spec.positive_decision == "harm"
    same = next(x for x in r.findings if x["kind"] == "fail" and x["model"] == f["model"]
                and x["metric"] == "selection_rate" and x["group"] == f["group"]
                and x["attribute"] == f["attribute"])
    higher = same["group"] if same["value"] > same["reference_value"] else same["reference"]
    assert same["disadvantaged"] == higher != f["disadvantaged"]
    assert at.query_params.get("decision") in ("harm", ["harm"])


def test_label_with_three_values_takes_a_set_of_positive_values():
    df = SMALL.assign(y=["yes", "no", "maybe", "no"] * 20)
    at = run_default()
    _upload_then("three.csv", csv_bytes(df), label="y")(at)
    # three values are guessed to be several classes; yes/no decisions are one click away
    assert at.radio(key="task").value == "multiclass"
    _upload_then("three.csv", csv_bytes(df), label="y", task="binary", predictions=[],
                 scores=[], sensitive=["sex"])(at)
    at.multiselect(key="predictions").set_value(["pred"]).run()
    at.multiselect(key="positive_set").set_value(["yes", "maybe"]).run()
    assert_clean(at)
    r = ctx(at).result
    assert r is not None, ctx(at).errors
    g = r.group_metrics.set_index("group")
    want = df["y"].isin(["yes", "maybe"]).groupby(df["sex"]).mean()
    for sex, v in want.items():
        assert g.loc[sex, "base_rate"] == pytest.approx(v)


# --------------------------------------------------------------------------
# the pages speak the audit's own settings
# --------------------------------------------------------------------------
def _show_page(page_name: str, context):
    """A one-page app: the given sidebar context, then one page function."""
    import importlib

    import streamlit as st

    st.session_state["ctx"] = context
    importlib.import_module(f"views.{page_name}_page").render()


def _context(result):
    import setup_panel

    df, info = read_table(LOANS)
    loaded = state.Loaded(name=LOANS.name, sha256=info.sha256, df=df, info=info, sample=True)
    return setup_panel.Context(loaded=loaded, spec=result.spec, result=result)


def show_page(name: str, result) -> AppTest:
    at = AppTest.from_function(_show_page, default_timeout=TIMEOUT,
                               kwargs={"page_name": name, "context": _context(result)}).run()
    assert not at.exception, exc_text(at)
    return at


def _page_text(at: AppTest, charts_too: bool = False) -> str:
    """Everything a page sends to the browser (texts, tables, widget labels
    and help), as the elements' protobuf text; charts only when asked."""
    parts = []
    for node in _walk(at._tree):
        if getattr(node, "type", None) == "plotly_chart" and not charts_too:
            continue
        proto = getattr(node, "proto", None)
        if proto is not None and not hasattr(node, "children"):
            parts.append(str(proto))
    return "\n".join(parts)


ALL_PAGES = ["overview", "groups", "data", "thresholds", "models", "export", "help"]
NINETY = AuditSpec(label="repaid", positive="yes",
                   predictions=["model_a_approved", "model_b_approved"],
                   scores=["model_a_score", "model_b_score"], sensitive=["sex", "race"],
                   confidence=0.9, n_bootstrap=200)
_95 = re.compile(r"(?<![\d.])95(\.0)?%")


@pytest.fixture(scope="module")
def ninety():
    return audit(LOANS, NINETY)


@pytest.mark.parametrize("name", ALL_PAGES)
def test_pages_state_the_audits_confidence_level(ninety, name):
    at = show_page(name, ninety)
    text = _page_text(at)
    assert "90%" in text, f"{name} does not state the 90% level"
    assert not _95.search(text), _95.search(text).group(0)


def test_charts_state_the_audits_confidence_level(ninety):
    at = show_page("groups", ninety)
    assert charts(at)
    assert not _95.search(_page_text(at, charts_too=True))


def test_header_and_tables_follow_the_audits_settings(ninety):
    at = show_page("groups", ninety)
    caption = at.main.caption[0].value
    assert "tolerance 0.8 to 1.25" in caption and "90% intervals from 200 bootstrap" in caption
    assert "90% interval" in shown_table(at).columns
    at = show_page("data", ninety)
    assert "Base rate 90% interval" in shown_table(at).columns
    at = show_page("help", ninety)
    assert any("90% in this audit" in m.value and "200 replicates" in m.value
               for m in at.main.markdown)


def test_overview_shows_each_findings_statement_without_the_model(ninety):
    result = copy.deepcopy(ninety)
    mine = [f for f in result.findings if f.get("model") == "model_a_approved"]
    assert mine and all(f["text"].startswith("Model 'model_a_approved': ") for f in mine)
    for i, f in enumerate(mine):
        f["statement"] = f"Statement number {i} of the core."
    at = show_page("overview", result)
    shown = [m.value for m in at.main.markdown] + [e.value for e in at.main.error] + \
        [w.value for w in at.main.warning]
    assert any(md("Statement number 0 of the core.") in s for s in shown), shown
    assert not any(md("Model 'model_a_approved': ") in s for s in shown)
    # the core's own statements: the sentence without the prefix
    at = show_page("overview", ninety)
    first = next(f for f in ninety.findings if f.get("model") == "model_a_approved")
    assert first["statement"] and not first["statement"].startswith("Model ")
    assert first["text"] == f"Model 'model_a_approved': {first['statement']}"
    assert any(md(first["statement"]) in m.value for m in at.main.markdown)
