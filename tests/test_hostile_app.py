"""The dashboard under hostile conditions: started from anywhere, a report
whose PDF fails, many sessions, uploads over the limits, hostile names.

AppTest runs the app's script in this process (no server); the tests that
need a real server start ``streamlit run`` as a subprocess (conftest's
``running_app``); the ones that need a browser are marked ``browser``.
"""
from __future__ import annotations

import os
import re
import socket
import sys
import threading
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from streamlit.util import calc_hash

ROOT = Path(__file__).resolve().parent.parent
APP_DIR = ROOT / "app"
APP = APP_DIR / "main.py"
TIMEOUT = 60

for _p in (str(ROOT), str(APP_DIR)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from fairness_core import guard  # noqa: E402
import safety  # noqa: E402  (the app's own modules, as the app imports them)
import state  # noqa: E402


def new_app() -> AppTest:
    return AppTest.from_file(str(APP), default_timeout=TIMEOUT)


def exc_text(at: AppTest) -> str:
    return "\n".join(f"{e.message}\n{''.join(e.stack_trace)}" for e in at.exception)


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, exc_text(at)
    return at


def unescape(text: str) -> str:
    """Markdown text as it reads on the page (backslash escapes dropped)."""
    return re.sub(r"\\(.)", r"\1", str(text))


def sidebar_errors(at: AppTest) -> list[str]:
    return [unescape(e.value) for e in at.sidebar.error]


# --------------------------------------------------------------------------
# 1. Safe wherever it starts
# --------------------------------------------------------------------------
OWN = str(safety.APP_CONFIG)
FLAG = safety.BY_FLAG[0]
DEFAULT = "<default>"
SAFE_START = {"server.address": ("localhost", OWN), "browser.gatherUsageStats": (False, OWN),
              "browser.serverAddress": ("localhost", OWN), "server.headless": (True, OWN),
              "server.fileWatcherType": ("none", OWN), "client.showErrorDetails": ("none", OWN),
              "client.toolbarMode": ("minimal", OWN), "server.maxUploadSize": (200, OWN)}
# what a server started without the app's config file runs with
BARE = {"server.address": (None, DEFAULT), "browser.gatherUsageStats": (True, DEFAULT),
        "browser.serverAddress": (None, DEFAULT), "server.headless": (True, DEFAULT),
        "server.fileWatcherType": ("auto", DEFAULT), "client.showErrorDetails": ("full", DEFAULT),
        "client.toolbarMode": ("auto", DEFAULT), "server.maxUploadSize": (200, DEFAULT)}


@pytest.mark.parametrize("change, refused, fixed", [
    ({}, [], {}),
    (BARE, ["every network interface", "usage statistics", "public address",
            "watches its files"],
     {"client.showErrorDetails": "none", "client.toolbarMode": "minimal",
      "browser.gatherUsageStats": False, "server.fileWatcherType": "none"}),
    # the operator's explicit choices stand
    ({"server.address": ("0.0.0.0", FLAG)}, [], {}),
    ({"browser.gatherUsageStats": (True, safety.BY_FLAG[1])}, [], {}),
    ({"server.maxUploadSize": (2000, FLAG)}, [], {}),
    # another folder's or the user's config file is nobody's choice for this app
    ({"server.address": ("0.0.0.0", "/home/someone/.streamlit/config.toml")},
     ["every network interface"], {}),
    ({"server.address": ("10.1.2.3", "/elsewhere/.streamlit/config.toml")},
     ["listens on 10.1.2.3"], {}),
    ({"server.maxUploadSize": (5000, "/elsewhere/.streamlit/config.toml")}, [],
     {"server.maxUploadSize": 200}),
    # set back on an earlier run: the server still started unsafe
    ({"browser.gatherUsageStats": (False, safety.SET_HERE)}, ["usage statistics"], {}),
])
def test_which_settings_turn_uploads_off_and_which_are_set_back(change, refused, fixed):
    problems, fixes = safety.assess({**SAFE_START, **change})
    assert len(problems) == len(refused), problems
    for words, problem in zip(refused, problems):
        assert words in problem
    assert fixes == fixed


def _started(monkeypatch, options: dict) -> list:
    """Make the app's safety check see a real server with ``options``; the
    settings it would set back are recorded, not applied to this process."""
    setback = []
    monkeypatch.setattr(safety, "serving", lambda: True)
    monkeypatch.setattr(safety, "_current", lambda: dict(options))
    monkeypatch.setattr(safety, "_set", lambda key, value: setback.append((key, value)))
    return setback


def test_unsafe_start_shows_no_upload_control_and_says_how_to_start(monkeypatch):
    setback = _started(monkeypatch, BARE)
    at = run(new_app())
    assert ("client.showErrorDetails", "none") in setback
    at.selectbox(key="source").set_value(state.UPLOAD)
    run(at)
    assert not [u for u in at.get("file_uploader")], "an upload control is shown"
    msg = " ".join(sidebar_errors(at))
    assert "Uploads are turned off" in msg and "run.sh" in msg, msg
    assert "every network interface" in msg and "usage statistics" in msg
    # the samples still work; the configuration upload on Export is off too
    at.selectbox(key="source").set_value(list(state.SAMPLES)[0])
    run(at)
    assert at.session_state["ctx"].result is not None
    at._page_hash = calc_hash("export")
    run(at)
    assert not [u for u in at.get("file_uploader")]
    assert any("turned off" in c.value for c in at.main.caption)


def test_deliberate_network_address_keeps_uploads(monkeypatch):
    _started(monkeypatch, {**SAFE_START, "server.address": ("0.0.0.0", FLAG)})
    at = run(new_app())
    at.selectbox(key="source").set_value(state.UPLOAD)
    run(at)
    assert at.file_uploader(key="upload") is not None
    assert not sidebar_errors(at)


class _ProxyRecorder:
    """A loopback TCP listener given to the server as its HTTP(S) proxy: any
    request for an outside address (the public-IP look-up) arrives here,
    and goes nowhere else."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.requests: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(1)
                try:
                    self.requests.append(conn.recv(200) or b"(connected)")
                except OSError:
                    self.requests.append(b"(connected)")

    def close(self):
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


def _listening(pid: int) -> list[tuple[str, int]]:
    """(address, port) of every TCP socket process ``pid`` listens on, read
    from /proc (no `ss` needed)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    out = []
    for table, v6 in (("tcp", False), ("tcp6", True)):
        path = Path(f"/proc/{pid}/net/{table}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            f = line.split()
            if f[3] != "0A" or f[9] not in inodes:  # 0A: LISTEN
                continue
            addr_hex, port_hex = f[1].split(":")
            raw = bytes.fromhex(addr_hex)
            if v6:  # four 32-bit words, each little-endian
                raw = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
                addr = socket.inet_ntop(socket.AF_INET6, raw)
            else:
                addr = socket.inet_ntop(socket.AF_INET, raw[::-1])
            out.append((addr, int(port_hex, 16)))
    return out


def _is_loopback(addr: str) -> bool:
    return addr.startswith("127.") or addr == "::1" or addr.startswith("::ffff:127.")


def _first_session_config(base: str):
    """Open a session over the websocket (as the page does, without a
    browser) and return the settings its first message gives the page."""
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ClientState_pb2 import ClientState
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from websockets.sync.client import connect

    url = base.replace("http://", "ws://") + "/_stcore/stream"
    with connect(url, proxy=None, open_timeout=30, max_size=None) as ws:
        ws.send(BackMsg(rerun_script=ClientState()).SerializeToString())
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            msg = ForwardMsg.FromString(ws.recv(timeout=60))
            if msg.WhichOneof("type") == "new_session":
                return msg.new_session.config
    raise AssertionError("no new_session message within 60 s")


UNSAFE_CONFIG = """[server]
address = "0.0.0.0"
maxUploadSize = 5000
[browser]
gatherUsageStats = true
[client]
showErrorDetails = "full"
toolbarMode = "developer"
"""


def test_started_from_another_folder_it_listens_on_loopback_only_and_sends_nothing(
        tmp_path, start_app):
    """``cd /elsewhere && streamlit run /path/to/app/main.py``, with no flag
    and with unsafe config files in that folder and in the home folder:
    the app's own settings hold (loopback only, no usage statistics, no
    public-IP look-up, minimal toolbar)."""
    from streamlit.proto.NewSession_pb2 import Config

    home = tmp_path / "home"
    for folder in (home, tmp_path):
        (folder / ".streamlit").mkdir(parents=True, exist_ok=True)
        (folder / ".streamlit" / "config.toml").write_text(UNSAFE_CONFIG)
    proxy = _ProxyRecorder()
    env = {k: v for k, v in os.environ.items()
           if not k.upper().startswith(("STREAMLIT_", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
                                        "ALL_PROXY"))}
    env.update(HOME=str(home), PYTHONPATH=str(ROOT), HTTP_PROXY=proxy.url,
               HTTPS_PROXY=proxy.url, http_proxy=proxy.url, https_proxy=proxy.url)
    procs = []
    try:
        with start_app(script=APP, cwd=tmp_path, env=env, flags=(),
                         on_start=procs.append) as base:
            port = int(base.rsplit(":", 1)[1])
            sockets = _listening(procs[0].pid)
            assert any(p == port for _, p in sockets), sockets
            assert all(_is_loopback(a) for a, _ in sockets), \
                f"listens beyond this machine: {sockets}"
            config = _first_session_config(base)
            assert config.gather_usage_stats is False
            assert config.toolbar_mode == Config.ToolbarMode.MINIMAL
        assert proxy.requests == [], f"the server contacted outside: {proxy.requests}"
    finally:
        proxy.close()


# --------------------------------------------------------------------------
# 2. The report's PDF failing keeps the HTML report
# --------------------------------------------------------------------------
def export_page() -> AppTest:
    at = run(new_app())
    at._page_hash = calc_hash("export")
    return run(at)


def download_labels(at: AppTest) -> list[str]:
    return [b.proto.label for b in at.get("download_button")]


def page_text(at: AppTest) -> str:
    kinds = ("markdown", "caption", "error", "warning", "info", "success", "code", "exception")
    return "\n".join(unescape(getattr(el, "value", "") or getattr(el, "message", ""))
                     for kind in kinds for el in at.get(kind))


def _no_chromium(html_text, *a, **k):
    from fairness_core.errors import ExportUnavailable
    raise ExportUnavailable("Making a PDF needs the chromium browser, which could not start. "
                            "The HTML report works without it.")


def _crash(html_text, *a, **k):
    raise RuntimeError("boom: secret value 12345")


@pytest.mark.parametrize("pdf, says", [
    (_no_chromium, "chromium browser, which could not start"),
    (_crash, "The PDF could not be made (unexpected RuntimeError)"),
], ids=["export-unavailable", "unexpected-error"])
def test_pdf_failing_still_offers_the_html_report_and_says_why(monkeypatch, pdf, says):
    import fairness_core.report

    monkeypatch.setattr(fairness_core.report, "pdf_from_html", pdf)
    at = export_page()
    at.button(key="make_report").click()
    run(at)
    for _ in range(2):  # and still after another rerun (e.g. the download's)
        labels = download_labels(at)
        assert "Download the HTML report" in labels and "Download the PDF report" not in labels
        warnings = [unescape(w.value) for w in at.main.warning]
        assert sum(says in w for w in warnings) == 1, warnings
        text = page_text(at)
        assert "Traceback" not in text and "boom" not in text and "12345" not in text
        run(at)


def test_report_failing_unexpectedly_shows_a_short_message_and_the_rest_of_the_page(
        monkeypatch):
    import fairness_core.report

    def broken(*a, **k):
        raise KeyError("secret column")

    monkeypatch.setattr(fairness_core.report, "html_report", broken)
    at = export_page()
    at.button(key="make_report").click()
    run(at)
    errors = [unescape(e.value) for e in at.main.error]
    assert any("The report could not be made (unexpected KeyError)" in e for e in errors), errors
    assert "secret column" not in page_text(at)
    assert "Download the HTML report" not in download_labels(at)
    assert "Full audit (JSON)" in download_labels(at)  # the rest of the page is there


# --------------------------------------------------------------------------
# 3. Shared work is shared; uploads never are
# --------------------------------------------------------------------------
def _texts(roots, limit: int = 300_000):
    """Every piece of text reachable from ``roots`` through containers and
    object attributes (not through modules, classes or functions): strings,
    bytes (a pickled table), and the cells of tables and arrays."""
    import gc
    import types

    import numpy as np
    import pandas as pd
    import pyarrow as pa

    skip = (types.ModuleType, type, types.FunctionType, types.BuiltinFunctionType,
            types.MethodType, types.FrameType, types.CodeType)
    seen, stack = set(), list(roots)
    while stack and len(seen) < limit:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, (str, bytes, bytearray)):
            yield obj
        elif isinstance(obj, skip):
            continue
        elif isinstance(obj, pd.DataFrame):
            yield obj.to_csv()
        elif isinstance(obj, (pd.Series, pd.Index)):
            yield str(obj.tolist())
        elif isinstance(obj, pd.Categorical):
            yield str(list(obj.categories))
        elif isinstance(obj, (pa.Array, pa.ChunkedArray, pa.Table)):
            yield str(obj.to_pylist())
        elif isinstance(obj, np.ndarray):
            if obj.dtype == object:
                stack.extend(obj.ravel().tolist())
            elif obj.dtype.kind in "US":
                yield str(obj.tolist())
        else:
            stack.extend(gc.get_referents(obj))


def _reaches(roots, marker: str) -> bool:
    m = marker.encode("utf-8")
    return any((marker in t) if isinstance(t, str) else (m in t) for t in _texts(roots))


def _shared_caches() -> list:
    from streamlit.runtime.caching import cache_data_api, cache_resource_api

    return [cache_data_api._data_caches, cache_resource_api._resource_caches]


SECRET = "Zq-secret-group-9141"


def test_no_session_can_reach_another_sessions_upload():
    import pandas as pd

    rows = pd.DataFrame({"outcome": ["yes", "no"] * 60, "decision": ["yes", "yes", "no"] * 40,
                         "region": [SECRET, "North", "South", "East"] * 30})
    a = run(new_app())
    a.selectbox(key="source").set_value(state.UPLOAD)
    run(a)
    a.file_uploader(key="upload").set_value(("mine.csv", rows.to_csv(index=False).encode(),
                                             "text/csv"))
    run(a)
    a.selectbox(key="label").set_value("outcome")
    run(a)
    a.multiselect(key="predictions").set_value(["decision"])
    run(a)
    a.multiselect(key="sensitive").set_value(["region"])
    run(a)
    assert a.session_state["ctx"].result is not None, a.session_state["ctx"].errors
    assert SECRET in set(a.session_state["ctx"].result.group_metrics["group"])

    b = run(new_app())  # another browser session, on the default sample
    assert b.session_state["ctx"].loaded.sample
    # the walk finds what is there: the sample's rows, in B's state and the shared caches
    assert _reaches([b.session_state], "Native American")
    assert _reaches(_shared_caches(), "Native American")
    # ... and never the other session's upload
    assert not _reaches([b.session_state], SECRET)
    assert not _reaches(_shared_caches(), SECRET)
    assert _reaches([a.session_state], SECRET)  # it is still in A's own state


def test_a_second_session_gets_the_samples_audit_from_the_shared_cache(monkeypatch):
    import importlib

    audit_module = importlib.import_module("fairness_core.audit")
    run(new_app())  # the first session (or an earlier test) audited the sample
    built = []
    original = audit_module.Auditor.__init__

    def counting(self, *args, **kwargs):
        built.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(audit_module.Auditor, "__init__", counting)
    t0 = time.perf_counter()
    b = run(new_app())
    took = time.perf_counter() - t0
    assert b.session_state["ctx"].result is not None
    assert built == [], "a second session counted the sample's rows again"
    assert took < 20, took
    # each session has its own copy: changing one cannot change another's
    c = run(new_app())
    assert c.session_state["ctx"].result is not b.session_state["ctx"].result
    assert c.session_state["ctx"].loaded.df is not b.session_state["ctx"].loaded.df


# --------------------------------------------------------------------------
# 4. Messages under the uploader; long and hidden-character names
# --------------------------------------------------------------------------
def upload(at: AppTest, name: str, data: bytes, mime: str = "text/csv") -> AppTest:
    if at.selectbox(key="source").value != state.UPLOAD:
        at.selectbox(key="source").set_value(state.UPLOAD)
        run(at)
    at.file_uploader(key="upload").set_value((name, data, mime))
    return run(at)


def _csv(df) -> bytes:
    return df.to_csv(index=False).encode("utf-8")


def _small():
    import pandas as pd

    return pd.DataFrame({"y": ["yes", "no"] * 40, "pred": ["yes", "yes", "no", "no"] * 20,
                         "sex": ["F", "M", "M", "F", "M"] * 16})


@pytest.fixture
def column_limit(monkeypatch):
    """The core's column limit at 3 (FAIRNESS_AUDIT_MAX_COLUMNS), checked
    by ``read_table`` as the core does."""
    from fairness_core.limits import limits

    monkeypatch.setenv("FAIRNESS_AUDIT_MAX_COLUMNS", "3")
    real = state.read_table

    def read_table(data, name=None, **kw):
        df, info = real(data, name=name, **kw)
        limits().check("The number of columns", df.shape[1], "max_columns", field="file",
                       fix="Upload only the columns the audit needs.")
        return df, info

    monkeypatch.setattr(state, "read_table", read_table)


def _assert_message_under_uploader(at: AppTest, words: str) -> str:
    from test_app import widget_above

    c = at.session_state["ctx"]
    mine = [e.value for e in at.sidebar.error if words in unescape(e.value)]
    assert mine, sidebar_errors(at)
    assert widget_above(at, mine[0]) == "upload", widget_above(at, mine[0])
    assert "Traceback" not in page_text(at)
    assert "file" in c.errors
    return unescape(mine[0])


def test_upload_over_a_limit_keeps_the_previous_file_and_the_choices(column_limit):
    at = run(new_app())
    upload(at, "small.csv", _csv(_small()))
    at.slider(key="tolerance").set_value(0.9)
    run(at)
    at.multiselect(key="sensitive").set_value(["sex"])
    run(at)
    before = at.session_state["ctx"].result.spec.to_json()
    wide = _small().assign(a=1, b=2)
    upload(at, "wide.csv", _csv(wide))
    msg = _assert_message_under_uploader(at, "over the limit of 3")
    assert "FAIRNESS_AUDIT_MAX_COLUMNS" in msg
    c = at.session_state["ctx"]
    # the previous file's audit stays, with the user's choices
    assert c.loaded.name == "small.csv" and c.result is not None
    assert c.result.spec.to_json() == before
    assert at.slider(key="tolerance").value == pytest.approx(0.9)
    assert at.multiselect(key="sensitive").value == ["sex"]
    assert any("Still showing the previous file" in unescape(w.value)
               for w in at.sidebar.warning)


def test_first_upload_over_a_limit_keeps_the_choices_for_the_next_file(column_limit):
    at = run(new_app())
    at.slider(key="tolerance").set_value(0.9)
    run(at)
    upload(at, "wide.csv", _csv(_small().assign(a=1, b=2)))
    _assert_message_under_uploader(at, "over the limit of 3")
    assert at.session_state["ctx"].result is None
    upload(at, "small.csv", _csv(_small()))
    c = at.session_state["ctx"]
    assert c.loaded.name == "small.csv" and "file" not in c.errors
    assert c.result.spec.tolerance == pytest.approx(0.9)


@pytest.mark.parametrize("error, words", [
    (MemoryError(), "needs more memory than the dashboard can give it"),
    (RecursionError("deep"), "could not be read (unexpected RecursionError)"),
], ids=["memory", "unexpected"])
def test_upload_failing_unexpectedly_shows_a_message_and_reads_the_file_once(
        monkeypatch, error, words):
    calls = []

    def read_guarded(data, name=None, **kw):
        calls.append(name)
        raise error

    at = run(new_app())
    monkeypatch.setattr(guard, "read_guarded", read_guarded)
    upload(at, "bad.csv", b"y,pred\n1,2\n")
    _assert_message_under_uploader(at, words)
    run(at)  # any rerun (a click elsewhere)
    _assert_message_under_uploader(at, words)
    assert calls == ["bad.csv"], "the failing file was read again on a rerun"


LONG = "x" * 3000
RLO = "\u202e"


def _page_texts(at: AppTest):
    """Every piece of text the page shows (charts aside): element bodies,
    widget labels and their options as displayed, table headers and cells."""
    from google.protobuf.json_format import MessageToDict

    def strings(obj):
        if isinstance(obj, str):
            yield obj
        elif isinstance(obj, dict):
            for k, v in obj.items():
                if k not in ("id", "formId", "data", "spec", "arrowData", "styles"):
                    yield from strings(v)
        elif isinstance(obj, list):
            for v in obj:
                yield from strings(v)

    from test_app import _walk

    for node in _walk(at._tree):
        kind = getattr(node, "type", "")
        if kind == "plotly_chart":
            continue
        if kind in ("dataframe", "table") or type(node).__name__ in ("Dataframe", "Table"):
            df = node.value
            yield from map(str, df.columns)
            yield from (str(v) for v in df.to_numpy().ravel())
            continue
        proto = getattr(node, "proto", None)
        if proto is not None:
            yield from strings(MessageToDict(proto))


def _assert_names_shown_short_and_visible(at: AppTest, where: str):
    texts = list(_page_texts(at))
    assert texts, where
    for t in texts:
        assert RLO not in t, f"{where}: a raw U+202E in {t[:120]!r}"
        assert "x" * 200 not in t, f"{where}: a name in full ({len(t):,} characters)"


def _hostile_names_table():
    import pandas as pd

    group_col = "region" + RLO + LONG
    return group_col, pd.DataFrame({
        "outcome": ["yes", "no"] * 60, "decision": ["yes", "yes", "no"] * 40,
        group_col: ["g" + LONG, "evil" + RLO + "txt", "North", "South"] * 30})


def test_long_and_hidden_character_names_are_shown_short_and_visible():
    from fairness_core.formatting import short

    group_col, df = _hostile_names_table()
    file_name = "data" + RLO + LONG + ".csv"
    at = run(new_app())
    upload(at, file_name, _csv(df))
    at.selectbox(key="label").set_value("outcome")
    run(at)
    at.multiselect(key="predictions").set_value(["decision"])
    run(at)
    at.multiselect(key="sensitive").set_value([group_col])
    run(at)
    at.radio(key="refmode").set_value("named")
    run(at)
    c = at.session_state["ctx"]
    assert c.result is not None, c.errors
    assert short(group_col) in at.multiselect(key="sensitive").options
    for url_path in ("overview", "groups", "data", "export", "help"):
        at._page_hash = calc_hash(url_path)
        run(at)
        _assert_names_shown_short_and_visible(at, url_path)
    # the names are kept whole where they are data: the audit and its exports
    assert group_col in c.result.spec.sensitive and c.loaded.name == file_name


def test_a_failing_upload_with_a_long_hidden_character_name_is_quoted_short():
    at = run(new_app())
    upload(at, "bad" + RLO + LONG + ".csv", b"")
    msg = _assert_message_under_uploader(at, "empty")
    assert RLO not in msg and "<U+202E>" in msg and LONG not in msg
    assert len(msg) < 400, len(msg)
    _assert_names_shown_short_and_visible(at, "sidebar")


# --------------------------------------------------------------------------
# 5. Hostile files, one after another, in a real server and browser
# --------------------------------------------------------------------------
def _lying_xlsx() -> bytes:
    """A tiny workbook whose sheet claims every cell of Excel's grid
    (``<dimension ref="A1:XFD1048576"/>``) and has one cell far away."""
    import io
    import zipfile

    ns = "http://schemas.openxmlformats.org"
    parts = {
        "[Content_Types].xml":
            f'<Types xmlns="{ns}/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/'
            'vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>',
        "_rels/.rels":
            f'<Relationships xmlns="{ns}/package/2006/relationships"><Relationship Id="rId1" '
            f'Type="{ns}/officeDocument/2006/relationships/officeDocument" '
            'Target="xl/workbook.xml"/></Relationships>',
        "xl/workbook.xml":
            f'<workbook xmlns="{ns}/spreadsheetml/2006/main" '
            f'xmlns:r="{ns}/officeDocument/2006/relationships"><sheets>'
            '<sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>',
        "xl/_rels/workbook.xml.rels":
            f'<Relationships xmlns="{ns}/package/2006/relationships"><Relationship Id="rId1" '
            f'Type="{ns}/officeDocument/2006/relationships/worksheet" '
            'Target="worksheets/sheet1.xml"/></Relationships>',
        "xl/worksheets/sheet1.xml":
            f'<worksheet xmlns="{ns}/spreadsheetml/2006/main">'
            '<dimension ref="A1:XFD1048576"/><sheetData>'
            '<row r="1"><c r="A1" t="inlineStr"><is><t>y</t></is></c>'
            '<c r="B1" t="inlineStr"><is><t>pred</t></is></c></row>'
            '<row r="1048576"><c r="XFD1048576"><v>1</v></c></row>'
            '</sheetData></worksheet>',
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for part, xml in parts.items():
            z.writestr(part, '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>' + xml)
    return buf.getvalue()


def _wide_csv(columns: int = 3000, rows: int = 5) -> bytes:
    head = ",".join(f"c{i}" for i in range(columns))
    body = "\n".join(",".join(str((r + i) % 7) for i in range(columns)) for r in range(rows))
    return f"{head}\n{body}\n".encode()


def _core_limits_columns() -> bool:
    """Whether ``read_table`` itself refuses a file over the column limit."""
    from fairness_core import InputError, read_table

    old = os.environ.get("FAIRNESS_AUDIT_MAX_COLUMNS")
    os.environ["FAIRNESS_AUDIT_MAX_COLUMNS"] = "2"
    try:
        read_table(b"a,b,c\n1,2,3\n", name="probe.csv")
        return False
    except InputError:
        return True
    finally:
        if old is None:
            del os.environ["FAIRNESS_AUDIT_MAX_COLUMNS"]
        else:
            os.environ["FAIRNESS_AUDIT_MAX_COLUMNS"] = old


def _cap_memory():  # runs in the server's process before it starts
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))


@pytest.mark.browser
def test_hostile_uploads_one_after_another_get_messages_and_the_server_answers(
        app_page, start_app):
    """Random bytes named .csv, a workbook that claims Excel's whole grid,
    a CSV over the column limit: after each, a message under the uploader,
    the server's health check answers and a new session renders the sample.
    The server runs with 4 GB of address space at most, so a file the core
    does not yet bound fails with a memory error instead of eating the
    machine."""
    import random
    import urllib.request

    from playwright.sync_api import expect
    from test_browser import SIDEBAR, UPLOAD, choose, open_app, wait_idle

    junk = "junk" + RLO + "x" * 300 + ".csv"  # a hostile name: quoted short and visible
    files = [(junk, random.Random(0).randbytes(100_000), True),
             ("lying.xlsx", _lying_xlsx(), True),
             ("wide.csv", _wide_csv(), _core_limits_columns())]
    env = {**os.environ, "FAIRNESS_AUDIT_MAX_COLUMNS": "1000", "FAIRNESS_AUDIT_MEMORY": "1G",
           "MALLOC_ARENA_MAX": "2", "ARROW_DEFAULT_MEMORY_POOL": "system"}
    t0, steps = time.monotonic(), []
    with start_app(env=env, preexec_fn=_cap_memory) as base:
        page = app_page
        open_app(page, base)
        choose(page, "Predictions table", UPLOAD, where=SIDEBAR)
        uploader = page.locator(SIDEBAR).locator('[data-testid="stFileUploader"]')
        for name, data, refused in files:
            t1 = time.monotonic()
            uploader.locator('input[type="file"]').set_input_files(
                {"name": name, "mimeType": "application/octet-stream", "buffer": data})
            if refused:
                error = page.locator(SIDEBAR).locator('[data-testid="stAlert"]',
                                                      has_text=name[:4])
                expect(error).to_be_visible(timeout=90_000)
                assert error.bounding_box()["y"] > uploader.bounding_box()["y"]
                text = error.inner_text()
                assert RLO not in text and "x" * 100 not in text, text[:300]
                expect(page.get_by_text("Traceback")).to_have_count(0)
            else:  # read as a table (the core does not bound its columns yet)
                expect(page.locator(SIDEBAR).locator('[data-testid="stCaptionContainer"]',
                                                     has_text=name)).to_be_visible()
            wait_idle(page)
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=10) as resp:
                assert resp.read().decode().strip() == "ok"
            other = page.context.new_page()
            other.set_default_timeout(60_000)
            open_app(other, base)
            other.close()
            steps.append(f"{name[:4]} {time.monotonic() - t1:.0f} s")
    print(f"hostile uploads: {time.monotonic() - t0:.0f} s ({', '.join(steps)})")


#: Put on the server's PYTHONPATH: records every file the server process
#: opens for writing, or creates, in the temporary folder (where Starlette
#: spools a large upload), with the code that opened it.
_DISK_WATCH = '''
import os, sys, tempfile
_log = os.environ["DISK_WATCH_LOG"]
_tmp = os.path.realpath(tempfile.gettempdir())
_WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | getattr(os, "O_TMPFILE", 0)

def _hook(event, args):
    if event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
        path, mode, flags = (list(args) + [None, None])[:3]
        writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or \\
            (isinstance(flags, int) and flags & _WRITE)
    elif event in ("tempfile.mkstemp", "tempfile.mkdtemp"):
        path, writes = args[0], True
    else:
        return
    try:
        path = os.path.realpath(os.fsdecode(path))
    except (TypeError, ValueError):
        return
    if writes and path != _log and (path + "/").startswith(_tmp + "/"):
        frames, f = [], sys._getframe(1)
        while f is not None and len(frames) < 40:
            frames.append(f.f_code.co_filename)
            f = f.f_back
        with open(_log, "a") as out:
            out.write(event + " " + path + " <- " + " ".join(frames) + "\\n")

sys.addaudithook(_hook)
'''


@pytest.mark.browser
def test_a_large_upload_never_touches_the_disk(app_page, start_app, tmp_path):
    """Uploaded data stays in memory: a 6 MB upload (Starlette spools parts
    over 1 MB to a temporary file unless told otherwise) makes the server
    open no file for writing in the temporary folder while it receives and
    audits it."""
    import numpy as np
    import pandas as pd
    from playwright.sync_api import expect
    from test_browser import SIDEBAR, UPLOAD, choose, open_app, wait_idle

    (tmp_path / "sitecustomize.py").write_text(_DISK_WATCH)
    log = tmp_path / "writes.log"
    log.touch()
    rng = np.random.default_rng(0)
    n = 200_000
    df = pd.DataFrame({"y": rng.integers(0, 2, n), "pred": rng.integers(0, 2, n),
                       "score": rng.random(n).round(6), "sex": rng.choice(["f", "m"], n),
                       "note": rng.choice(["a" * 12, "b" * 12], n)})
    data = df.to_csv(index=False).encode()
    assert len(data) > 5 * 1024 * 1024
    env = {**os.environ, "DISK_WATCH_LOG": str(log),
           "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    with start_app(env=env) as base:
        page = app_page
        open_app(page, base)
        log.write_text("")  # from here on: the upload and its audit
        choose(page, "Predictions table", UPLOAD, where=SIDEBAR)
        page.locator(SIDEBAR).locator('[data-testid="stFileUploader"] input[type="file"]') \
            .set_input_files({"name": "big.csv", "mimeType": "text/csv", "buffer": data})
        expect(page.locator(SIDEBAR).locator('[data-testid="stCaptionContainer"]',
                                             has_text="200,000 rows")).to_be_visible()
        wait_idle(page)
        written = log.read_text()
    assert written == "", "the server wrote to its temporary folder:\n" + written[:3000]
