"""Real-browser end-to-end tests of the dashboard (Playwright + Debian's chromium).

The app runs once per test session as a real ``streamlit run`` subprocess
(fixture ``app_url`` in conftest.py); every test gets a fresh browser page,
that is a fresh Streamlit session.  Navigation inside a test uses the links
at the top of the page, because loading a URL starts a new session (and
forgets an uploaded file).

These tests also save screenshots of every page (see SHOTS below).
"""
from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

ROOT = Path(__file__).resolve().parent.parent
ADULT = ROOT / "sample_data" / "adult_test_predictions.csv"
# Screenshots go to test-artifacts/screenshots; the README's copies in
# docs/screenshots are refreshed with SCREENSHOTS_DIR=docs/screenshots ./test.sh -m browser
SHOTS = ROOT / os.environ.get("SCREENSHOTS_DIR", "test-artifacts/screenshots")

MAIN = '[data-testid="stMain"]'
SIDEBAR = '[data-testid="stSidebar"]'
CHART = '[data-testid="stPlotlyChart"] .js-plotly-plot'
UPLOAD = "Upload your own file"

# page -> (url path, link text at the top, title of the page)
PAGES = {
    "overview": ("", "Overview", "Fairness audit overview"),
    "groups": ("groups", "Group metrics", "Group metrics"),
    "data": ("data", "Data", "The data"),
    "thresholds": ("thresholds", "Thresholds", "Thresholds"),
    "models": ("models", "Models", "Models"),
    "help": ("help", "Help", "Help"),
}

# True once the page has been quiet for a while: no script running, no stale
# (greyed) element from the previous run, every plotly chart drawn, no
# skeleton or spinner.  ``token`` restarts the quiet-period clock per call.
_IDLE_JS = """
([token, quietMs]) => {
  const busy =
    !document.querySelector('[data-testid="stMain"]') ||
    !!document.querySelector('[data-testid="stStatusWidget"]') ||
    !!document.querySelector('[data-stale="true"]') ||
    !!document.querySelector('[data-testid="stAppSkeleton"], [data-testid="stSkeleton"]') ||
    !!document.querySelector('[data-testid="stSpinner"]') ||
    Array.from(document.querySelectorAll('[data-testid="stPlotlyChart"]')).some(
      c => !c.querySelector('.js-plotly-plot .main-svg'));
  const now = Date.now();
  if (window.__idleToken !== token) { window.__idleToken = token; window.__idleSince = null; }
  if (busy) { window.__idleSince = null; return false; }
  if (window.__idleSince === null) window.__idleSince = now;
  return now - window.__idleSince >= quietMs;
}
"""
_idle_calls = 0


def wait_idle(page: Page, quiet_ms: int = 700) -> None:
    """Wait until the app has finished its rerun and drawn everything."""
    global _idle_calls
    _idle_calls += 1
    page.wait_for_function(_IDLE_JS, arg=[_idle_calls, quiet_ms], polling=100)


def title(page: Page, text: str):
    return page.locator(MAIN).get_by_role("heading", name=text, exact=True)


def open_app(page: Page, base: str, path: str = "", heading: str = PAGES["overview"][2]):
    page.goto(f"{base}/{path}")
    expect(title(page, heading)).to_be_visible()
    wait_idle(page)


def go(page: Page, name: str) -> None:
    """Switch page with the navigation at the top (keeps the session)."""
    _, link, heading = PAGES[name]
    page.locator('[data-testid="stTopNavLink"]', has_text=link).click()
    expect(title(page, heading)).to_be_visible()
    wait_idle(page)


def combobox(page: Page, label: str, where: str = "body"):
    return page.locator(where).get_by_role("combobox", name=label, exact=True)


def choose(page: Page, label: str, option: str, where: str = "body") -> None:
    """Pick an option of a Streamlit select box."""
    combobox(page, label, where).click()
    page.get_by_role("option", name=option, exact=True).click()
    expect(combobox(page, label, where)).to_have_value(option)
    wait_idle(page)


def options_of(page: Page, label: str, where: str = "body") -> list[str]:
    box = combobox(page, label, where)
    box.click()
    opts = page.get_by_role("option")
    expect(opts.first).to_be_visible()
    texts = [t.strip() for t in opts.all_inner_texts()]
    page.keyboard.press("Escape")
    expect(page.get_by_role("option")).to_have_count(0)
    return texts


def upload(page: Page, file) -> str:
    """Choose 'Upload your own file' and upload ``file`` (a path or a
    Playwright file payload); wait for the audit. Returns the file name."""
    name = file["name"] if isinstance(file, dict) else Path(file).name
    choose(page, "Predictions table", UPLOAD, where=SIDEBAR)
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(file)
    caption = page.locator(SIDEBAR).locator('[data-testid="stCaptionContainer"]',
                                            has_text=name)
    expect(caption).to_be_visible()
    wait_idle(page)
    return name


def csv_payload(name: str, rows: list[dict]) -> dict:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return {"name": name, "mimeType": "text/csv", "buffer": buf.getvalue().encode("utf-8")}


def assert_no_errors(page: Page) -> None:
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)
    expect(page.get_by_text("Traceback")).to_have_count(0)


def screenshot(page: Page, name: str) -> Path:
    """Save the visible window with the page scrolled to the top."""
    page.locator(MAIN).evaluate("el => el.scrollTo(0, 0)")
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    page.mouse.move(1390, 110)  # an empty spot: no hover effect or tooltip in the picture
    wait_idle(page)
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    assert path.stat().st_size > 20_000, f"{path} looks blank"
    return path


# Diamond markers (each group's operating point) of the ROC chart, read from
# the plotly figure in the DOM; None while the chart is missing, stale or
# doubled (old and new chart can coexist for a moment after a rerun).
_ROC_POINTS_JS = """
() => {
  const plots = Array.from(document.querySelectorAll(
      '[data-testid="stPlotlyChart"] .js-plotly-plot')).filter(el =>
      el._fullLayout && /ROC curve/.test((el.layout.title || {}).text || '') &&
      !el.closest('[data-stale="true"]'));
  if (plots.length !== 1) return null;
  const pts = {};
  for (const t of plots[0]._fullData || []) {
    if (t.mode === 'markers' && t.marker && t.marker.symbol === 'diamond')
      pts[t.name] = [Number(t.x[0]), Number(t.y[0])];
  }
  return Object.keys(pts).length ? pts : null;
}
"""


@pytest.mark.browser
def test_default_page_shows_sample_audit(app_page, app_url):
    page = app_page
    open_app(page, app_url)
    expect(title(page, "Fairness audit overview")).to_be_visible()
    expect(page.locator(MAIN).locator('[data-testid="stTable"]').first).to_be_visible()
    expect(page.locator(MAIN).get_by_text("Most severe finding")).to_be_visible()
    # the default source is a bundled sample, and the audit ran on it
    expect(combobox(page, "Predictions table", SIDEBAR)).to_have_value(
        re.compile(r"^Sample: "))
    assert_no_errors(page)


@pytest.mark.browser
def test_upload_adult_file(app_page, app_url):
    page = app_page
    open_app(page, app_url)
    upload(page, ADULT)
    expect(page.locator(SIDEBAR).get_by_text(
        re.compile(r"adult_test_predictions\.csv: 16,281 rows"))).to_be_visible()
    # the guessed roles
    expect(combobox(page, "True outcome (label)", SIDEBAR)).to_have_value("income")
    expect(combobox(page, "Positive class (label value)", SIDEBAR)).to_have_value(">50K")
    # the main page follows the upload
    expect(page.locator(MAIN).locator('[data-testid="stCaptionContainer"]',
                                      has_text="adult_test_predictions.csv").first
           ).to_be_visible()
    expect(page.locator(MAIN).get_by_text("Most severe finding")).to_be_visible()
    assert_no_errors(page)
    screenshot(page, "upload_adult")

    go(page, "groups")
    expect(page.locator(MAIN).locator('[data-testid="stCaptionContainer"]',
                                      has_text="adult_test_predictions.csv").first
           ).to_be_visible()
    charts = page.locator(CHART)
    expect(charts.first).to_be_visible()
    assert charts.count() >= 3  # group metric, disparity, confusion matrix
    assert page.locator(f"{CHART} g.point path").count() > 0
    expect(page.locator(CHART, has_text="by sex").first).to_be_visible()
    assert_no_errors(page)


@pytest.mark.browser
def test_changing_sensitive_attributes_updates_pages(app_page, app_url):
    page = app_page
    open_app(page, app_url)
    go(page, "groups")
    assert options_of(page, "Sensitive attribute", MAIN) == ["sex", "race", "age_group"]
    choose(page, "Sensitive attribute", "age_group", where=MAIN)
    expect(page.locator(CHART, has_text="by age_group").first).to_be_visible()

    sens = page.locator(SIDEBAR).locator('[data-testid="stMultiSelect"]',
                                         has_text="Sensitive attributes")
    sens.get_by_role("button", name="Remove age_group", exact=True).click()
    expect(sens.get_by_role("button", name="Remove age_group", exact=True)).to_have_count(0)
    wait_idle(page)

    assert options_of(page, "Sensitive attribute", MAIN) == ["sex", "race"]
    expect(combobox(page, "Sensitive attribute", MAIN)).not_to_have_value("age_group")
    expect(page.locator(CHART, has_text="by age_group")).to_have_count(0)
    assert page.locator(f"{CHART} g.point path").count() > 0
    assert "attr=age_group" not in page.url
    assert_no_errors(page)

    # the other pages follow the new mapping too
    go(page, "data")
    assert options_of(page, "Sensitive attribute", MAIN) == ["sex", "race"]
    assert_no_errors(page)


@pytest.mark.browser
def test_threshold_slider_moves_operating_points(app_page, app_url):
    page = app_page
    open_app(page, app_url, "thresholds", "Thresholds")
    page.wait_for_function(_ROC_POINTS_JS)
    before = page.evaluate(_ROC_POINTS_JS)
    assert before, "no diamond operating-point markers in the ROC chart"

    slider = page.locator(MAIN).locator('[data-testid="stSlider"] input[type="range"]')
    expect(slider).to_have_value("0.5")
    slider.focus()
    for _ in range(10):
        page.keyboard.press("ArrowLeft")
    expect(slider).to_have_value("0.4")

    page.wait_for_function(
        "(before) => { const f = " + _ROC_POINTS_JS + "; const now = f();"
        " return now !== null && JSON.stringify(now) !== JSON.stringify(before); }",
        arg=before)
    wait_idle(page)
    after = page.evaluate(_ROC_POINTS_JS)
    assert set(after) == set(before)
    # a lower threshold gives more positive decisions: no operating point moves
    # down or left, and some move up or right
    moved = False
    for grp, (fpr0, tpr0) in before.items():
        fpr1, tpr1 = after[grp]
        assert fpr1 >= fpr0 - 1e-12 and tpr1 >= tpr0 - 1e-12, (grp, before[grp], after[grp])
        moved |= (fpr1, tpr1) != (fpr0, tpr0)
    assert moved
    # the sidebar's threshold and the shared URL follow the page's slider
    expect(page.locator(SIDEBAR).get_by_role("slider", name="Score threshold")
           ).to_have_value("0.4")
    assert "thr=0.4" in page.url
    assert_no_errors(page)


@pytest.mark.browser
def test_picker_choices_survive_page_switches(app_page, app_url):
    """Regression: the pickers used to fall back to their first option on the
    second page (a widget key is a different widget on each page)."""
    page = app_page
    # a model chosen in a shared URL stays chosen on every page
    open_app(page, app_url, "?show=model_b_approved")
    expect(combobox(page, "Model", MAIN)).to_have_value("model_b_approved")
    for name in ("groups", "overview"):
        go(page, name)
        expect(combobox(page, "Model", MAIN)).to_have_value("model_b_approved", timeout=5000)
        assert "show=model_b_approved" in page.url
    # an attribute and a metric chosen on one page stay chosen on the others
    go(page, "groups")
    choose(page, "Sensitive attribute", "race", where=MAIN)
    choose(page, "Metric", "True positive rate (TPR)", where=MAIN)
    for name in ("thresholds", "groups", "thresholds"):
        go(page, name)
        expect(combobox(page, "Sensitive attribute", MAIN)).to_have_value("race", timeout=5000)
        expect(combobox(page, "Metric", MAIN)).to_have_value("True positive rate (TPR)",
                                                             timeout=5000)
        assert "view=race" in page.url and "metric=tpr" in page.url


@pytest.mark.browser
def test_shared_url_restores_choices(app_page, app_url):
    page = app_page
    open_app(page, app_url, "groups?metric=tpr&attr=race&tol=0.9", "Group metrics")
    expect(combobox(page, "Metric", MAIN)).to_have_value("True positive rate (TPR)")
    expect(combobox(page, "Sensitive attribute", MAIN)).to_have_value("race")
    tol = page.locator(SIDEBAR).locator('[data-testid="stSlider"]', has_text="Tolerance")
    expect(tol.locator('[data-testid="stSliderThumbValue"]')).to_have_text("0.90")
    expect(tol.locator('input[type="range"]')).to_have_value("0.9")
    expect(page.locator(MAIN).get_by_text("tolerance 0.9 to 1.11")).to_be_visible()
    assert_no_errors(page)


def _zebra_rows() -> list[dict]:
    rows = []
    for i in range(120):
        tribe = "ZebraGroup" if i % 2 else "YakGroup"
        y = "yes" if i % 3 else "no"
        pred = y if i % 5 else ("no" if y == "yes" else "yes")
        rows.append({"zebra_outcome": y, "zebra_decision": pred, "zebra_tribe": tribe})
    return rows


@pytest.mark.browser
def test_sessions_do_not_share_uploads(browser, browser_context_args, app_url):
    secret = ("ZebraGroup", "YakGroup", "zebra_tribe", "zebra_outcome", "zebra_private.csv")
    ctx_a = browser.new_context(**browser_context_args)
    ctx_b = browser.new_context(**browser_context_args)
    try:
        a, b = ctx_a.new_page(), ctx_b.new_page()
        for p in (a, b):
            p.set_default_timeout(30_000)
        open_app(a, app_url)
        upload(a, csv_payload("zebra_private.csv", _zebra_rows()))
        go(a, "groups")
        expect(a.locator(CHART, has_text="ZebraGroup").first).to_be_visible()

        open_app(b, app_url)
        for view in ("overview", "groups"):
            if view != "overview":
                go(b, view)
            text, html = b.locator("body").inner_text(), b.content()
            for s in secret:
                assert s not in text and s not in html, f"session B sees {s!r} on {view}"
        # B's own upload slot is empty, and does not offer A's file
        choose(b, "Predictions table", UPLOAD, where=SIDEBAR)
        expect(b.locator('[data-testid="stFileUploaderFile"]')).to_have_count(0)
        text, html = b.locator("body").inner_text(), b.content()
        for s in secret:
            assert s not in text and s not in html, f"session B sees {s!r} after choosing upload"
        assert_no_errors(b)
        # A still has its own data
        go(a, "overview")
        expect(a.locator(SIDEBAR).get_by_text("zebra_private.csv: 120 rows")).to_be_visible()
    finally:
        ctx_a.close()
        ctx_b.close()


XSS_COLUMN = "<img src=x onerror=window.__pwned=2>"
XSS_VALUES = ['<img src=x onerror="window.__pwned=1">', "<script>window.__pwned=1</script>",
              "[click](javascript:window.__pwned=1)"]


def _xss_rows() -> list[dict]:
    rows = []
    for i in range(180):
        grp = XSS_VALUES[i % 3]
        y = 1 if i % 4 else 0
        pred = y if i % 7 else 1 - y
        rows.append({"outcome": y, "prediction": pred, "score": round((i * 37 % 100) / 100, 2),
                     "group": grp, XSS_COLUMN: "ab"[i % 2]})
    return rows


@pytest.mark.browser
def test_no_script_from_data_executes(app_page, app_url):
    page = app_page
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    open_app(page, app_url)
    upload(page, csv_payload("xss.csv", _xss_rows()))
    sens = page.locator(SIDEBAR).locator('[data-testid="stMultiSelect"]',
                                         has_text="Sensitive attributes")
    expect(sens.get_by_text("group", exact=True)).to_be_visible()
    wait_idle(page)
    # a second sensitive attribute whose column name is hostile too (the box sits low in
    # the sidebar: a click that scrolls to it may leave the list closed; a key opens it)
    combobox(page, "Sensitive attributes", SIDEBAR).click()
    if not page.get_by_role("option").count():
        page.keyboard.press("ArrowDown")
    page.get_by_role("option", name=XSS_COLUMN, exact=True).click()
    page.keyboard.press("Escape")
    expect(sens.get_by_text(XSS_COLUMN, exact=True)).to_be_visible()
    wait_idle(page)
    for view in ("overview", "groups", "thresholds", "data"):
        if view != "overview":
            go(page, view)
        assert_no_errors(page)
        if view != "overview":
            # the hostile group names are shown, as text
            expect(page.locator(CHART).first).to_contain_text("<script>")
        if view == "data":
            choose(page, "Sensitive attribute", XSS_COLUMN, where=MAIN)
            expect(page.locator(CHART, has_text=XSS_COLUMN).first).to_be_visible()
            assert_no_errors(page)
        assert page.evaluate("() => window.__pwned") is None, f"script ran on {view}"
        assert page.locator('img[src="x"]').count() == 0, f"<img src=x> injected on {view}"
        assert page.locator("script", has_text="__pwned").count() == 0
        assert page.locator('a[href^="javascript:"]').count() == 0
    assert not dialogs


@pytest.mark.browser
def test_screenshots_of_every_page(app_page, app_url):
    page = app_page
    open_app(page, app_url)
    expect(combobox(page, "Predictions table", SIDEBAR)).to_have_value(
        re.compile(r"^Sample: "))
    for name in PAGES:
        if name != "overview":
            go(page, name)
        assert_no_errors(page)
        if name in ("groups", "data", "thresholds", "models"):
            expect(page.locator(CHART).first).to_be_visible()
        path = screenshot(page, name)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.browser
def test_pages_load_nothing_from_outside(app_page, app_url):
    """Privacy: no page asks any host but the dashboard's own server."""
    outside, seen = [], []

    def record(request):
        url = request.url
        seen.append(url)
        if not url.startswith((app_url, "data:", "blob:", app_url.replace("http", "ws"))):
            outside.append(url)

    app_page.on("request", record)
    open_app(app_page, app_url)
    for name in ("groups", "data", "thresholds", "models", "help"):
        go(app_page, name)
        wait_idle(app_page)
    assert len(seen) > 10  # the listener saw the app's own requests
    assert outside == []


# For each static table in the main area: its headers and cells, the width
# its scroll area overflows by, and the cells whose text does not fit (text
# wider than the cell, or the cell outside the table's visible box).
_TABLE_FIT_JS = """
() => Array.from(document.querySelectorAll('[data-testid="stMain"] [data-testid="stTable"]'))
  .map(t => {
    const box = t.getBoundingClientRect();
    const scroller = t.querySelector('table').parentElement;
    const cells = Array.from(t.querySelectorAll('th, td'));
    const cut = cells.filter(c => {
      const r = c.getBoundingClientRect();
      const range = document.createRange();
      range.selectNodeContents(c);
      const text = range.getBoundingClientRect();
      return c.scrollWidth > c.clientWidth + 1 || text.right > r.right + 1 ||
             text.left < r.left - 1 || r.right > box.right + 1 || r.left < box.left - 1;
    }).map(c => c.innerText);
    return {header: Array.from(t.querySelectorAll('th')).map(c => c.innerText.trim()),
            cells: cells.map(c => c.innerText.trim()), cut,
            overflow: Math.max(t.scrollWidth - t.clientWidth,
                               scroller.scrollWidth - scroller.clientWidth)};
  })
"""


@pytest.mark.browser
def test_overview_tables_fit_at_1400_px(app_page, app_url):
    """Every cell of the verdict matrix and the summaries reads in full at
    1,400 px (a cell used to read '(1 not judge')."""
    page = app_page
    assert page.viewport_size["width"] == 1400
    open_app(page, app_url)
    expect(page.locator(MAIN).locator('[data-testid="stTable"]')).to_have_count(2)
    matrix, summaries = page.evaluate(_TABLE_FIT_JS)
    assert matrix["header"][:3] == ["Attribute", "Reference", "Selection rate"]
    assert "Demographic parity difference" in summaries["header"]
    # the sample has a group too small to judge: its count is shown in full
    assert any(re.search(r"1 not judged$", c) for c in matrix["cells"]), matrix["cells"]
    assert any(re.search(r"❌ fail: \d+ groups?, \d+ significant", c) for c in matrix["cells"])
    for table in (matrix, summaries):
        assert table["overflow"] <= 1, f"the table scrolls sideways by {table['overflow']} px"
        assert table["cut"] == [], f"cells cut off: {table['cut']}"
    screenshot(page, "overview_1400")


@pytest.mark.browser
def test_app_starts_from_another_folder(app_page, start_app, tmp_path):
    """``cd /elsewhere && streamlit run /path/to/app/main.py`` works: the
    script's folder is on sys.path, fairness_core is the installed package
    (here: this checkout, put on PYTHONPATH as an installation would)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with start_app(script=ROOT / "app" / "main.py", cwd=tmp_path, env=env) as base:
        page = app_page
        open_app(page, base)
        go(page, "groups")
        expect(page.locator(CHART).first).to_be_visible()
        page.goto(f"{base}/help")
        expect(title(page, "Help")).to_be_visible()
        assert_no_errors(page)


@pytest.mark.browser
def test_multiclass_sample_classes_page(app_page, app_url):
    """The triage sample: audited as several classes, its Classes page draws
    the verdicts and every group's confusion matrix (screenshots saved)."""
    page = app_page
    open_app(page, app_url)
    choose(page, "Predictions table",
           "Sample: synthetic emergency triage, four levels (8,000 rows)", where=SIDEBAR)
    expect(page.locator(MAIN).get_by_text("The worst class per attribute")).to_be_visible()
    assert_no_errors(page)
    screenshot(page, "multiclass-overview")
    page.locator('[data-testid="stTopNavLink"]', has_text="Classes").click()
    expect(title(page, "Classes")).to_be_visible()
    wait_idle(page)
    choose(page, "Sensitive attribute", "race", where=MAIN)
    choose(page, "Class", "2 urgent", where=MAIN)
    assert_no_errors(page)
    expect(page.locator(CHART)).to_have_count(2)
    page.locator(CHART).nth(1).scroll_into_view_if_needed()
    wait_idle(page)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "multiclass-classes.png"), full_page=False)
    heat = page.evaluate("""() => Array.from(document.querySelectorAll(
        '[data-testid="stPlotlyChart"] .js-plotly-plot')).map(
        el => (el._fullData || []).filter(t => t.type === 'heatmap').length)""")
    assert heat == [1, 5]  # the verdicts of the class; one confusion matrix per race group


REGRESSION_SAMPLE = "Sample: synthetic credit limits, a numeric outcome (5,000 rows)"


@pytest.mark.browser
def test_regression_sample_pages(app_page, app_url):
    """A numeric outcome: its own pages (no Thresholds, Models or Data), charts
    drawn from counts, and a screenshot of each."""
    page = app_page
    open_app(page, app_url)
    choose(page, "Predictions table", REGRESSION_SAMPLE, where=SIDEBAR)
    expect(title(page, "Fairness audit overview")).to_be_visible()
    wait_idle(page)
    assert_no_errors(page)
    nav = page.locator('[data-testid="stTopNavLink"]')
    expect(nav.filter(has_text="Distributions")).to_have_count(1)
    for gone in ("Thresholds", "Models", "Data"):
        expect(nav.filter(has_text=re.compile(f"^{gone}$"))).to_have_count(0)
    expect(page.locator(MAIN).get_by_text("under-predicts credit_limit for sex = 'Female'",
                                          exact=False).first).to_be_visible()
    screenshot(page, "regression_overview")
    for link, heading, shot in (("Group metrics", "Group metrics", "regression_groups"),
                                ("Distributions", "Error distributions",
                                 "regression_distributions")):
        nav.filter(has_text=link).click()
        expect(title(page, heading)).to_be_visible()
        wait_idle(page)
        assert_no_errors(page)
        expect(page.locator(CHART).first).to_be_visible()
        screenshot(page, shot)


@pytest.mark.browser
def test_compare_page_shows_the_findings_of_an_uploaded_baseline(app_page, app_url,
                                                                  tmp_path):
    """Upload an earlier audit's JSON on the Compare page: the findings and
    the before/after chart appear, and the Export page says its report and
    JSON carry the comparison."""
    import pandas as pd

    from fairness_core import AuditSpec, audit
    from fairness_core.compare import compare_audits

    spec = AuditSpec(label="repaid", positive="yes",
                     predictions=["model_a_approved", "model_b_approved"],
                     scores=["model_a_score", "model_b_score"],
                     sensitive=["sex", "race", "age_group"], n_bootstrap=0)
    loans = pd.read_csv(ROOT / "sample_data" / "loans.csv")
    earlier = loans.sample(frac=0.5, random_state=1)  # half the rows, and a planted gap
    earlier.loc[earlier["race"] == "Black", "model_a_approved"] = "no"
    path = tmp_path / "earlier-audit.json"
    path.write_text(audit(earlier, spec).to_json(), encoding="utf-8")
    want = compare_audits(path, audit(loans, spec)).findings[0]
    assert want["significant"]

    page = app_page
    open_app(page, app_url)
    page.locator('[data-testid="stTopNavLink"]', has_text="Compare").click()
    expect(title(page, "Compare with an earlier audit")).to_be_visible()
    wait_idle(page)
    page.locator(MAIN).locator('[data-testid="stFileUploader"] input[type="file"]') \
        .set_input_files(str(path))
    expect(title(page, "Findings")).to_be_visible()
    wait_idle(page)
    assert_no_errors(page)
    main = page.locator(MAIN)
    expect(main).to_contain_text("earlier-audit.json")
    expect(main).to_contain_text(want["statement"][:70])
    expect(main.locator(CHART)).to_have_count(1)
    screenshot(page, "compare")
    page.locator('[data-testid="stTopNavLink"]', has_text="Export").click()
    expect(title(page, "Export")).to_be_visible()
    wait_idle(page)
    expect(main).to_contain_text("include the comparison with the earlier audit")
    assert_no_errors(page)
