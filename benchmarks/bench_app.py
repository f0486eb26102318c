"""Benchmark the dashboard on the 1M-row benchmark table.

Usage::

    .venv/bin/python benchmarks/bench_app.py            # server time + browser
    .venv/bin/python benchmarks/bench_app.py --no-browser
    .venv/bin/python benchmarks/bench_app.py --sessions-only   # 3. alone

1. Server time per interaction (streamlit's AppTest runs the app script
   exactly as the server does, without a browser): upload the 1M-row CSV,
   then change the attribute, the metric and the score threshold several
   times; each figure is the median time of one full rerun of the page.
2. Upload to first chart in a real browser (Debian's chromium via
   Playwright): start the dashboard, choose "Upload your own file", give
   the 1M-row CSV to the file input, and time until the overview's first
   chart and table have rendered.
3. First page of new sessions on the bundled sample (real server and
   browser): on a fresh server, one session; then one more session; then
   8 sessions opened at once; and, on another fresh server, 8 sessions
   opened at once.  Each figure is the time from opening the page until the
   overview's verdict table has rendered (median and slowest of the
   sessions).  The same sequence is timed without a browser too: a
   websocket client opens the session as the page does, and the figure is
   the time until the server has finished the page's script (the server's
   share, free of the browser's rendering).  ``--app PATH`` times another
   checkout's ``app/main.py``.

Writes benchmarks/results/app.json and prints a Markdown table.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from generate import ensure  # noqa: E402

N = 1_000_000


def _timed_run(at) -> float:
    t0 = time.perf_counter()
    at.run()
    dt = time.perf_counter() - t0
    if at.exception:
        raise RuntimeError(f"the app raised: {at.exception}")
    return dt


def _open_page(at, url_path: str) -> None:
    """Ask the next run for the page function st.navigation registered at
    ``url_path`` (AppTest.switch_page only knows pages that are files)."""
    from streamlit.util import calc_hash

    at._page_hash = calc_hash(url_path)


def server_times(csv: Path, repeat: int) -> dict:
    from streamlit.testing.v1 import AppTest

    sys.path.insert(0, str(ROOT / "app"))
    import state

    at = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=600)
    at.run()
    at.selectbox(key="source").set_value(state.UPLOAD)
    at.run()
    data = csv.read_bytes()
    t0 = time.perf_counter()
    at.file_uploader(key="upload").set_value((csv.name, data, "text/csv"))
    at.run()
    first = time.perf_counter() - t0
    at.checkbox(key="intersectional").check()
    at.run()
    ctx = at.session_state["ctx"]
    assert ctx.result is not None, ctx.errors
    spec = ctx.result.spec
    _open_page(at, "groups")
    at.run()
    out = {"rows": N, "models": list(spec.models), "attributes": spec.attribute_names(),
           "upload_and_first_audit_s": first}
    attrs = ["sex", "race", "age_group"]
    metrics = ["selection_rate", "tpr", "fpr", "ppv"]
    times = {"attribute": [], "metric": [], "threshold": []}
    for i in range(repeat):
        at.selectbox(key="attribute_pick").set_value(attrs[(i + 1) % len(attrs)])
        times["attribute"].append(_timed_run(at))
        at.selectbox(key="metric_pick").set_value(metrics[(i + 1) % len(metrics)])
        times["metric"].append(_timed_run(at))
        # a new threshold each time: nothing cached
        at.slider(key="threshold").set_value(round(0.30 + 0.02 * i, 2))
        times["threshold"].append(_timed_run(at))
    for k, v in times.items():
        out[f"{k}_change_ms"] = 1000 * statistics.median(v)
        out[f"{k}_change_max_ms"] = 1000 * max(v)
    _open_page(at, "thresholds")
    at.run()
    tt = []
    for i in range(repeat):
        at.slider(key="threshold_page").set_value(round(0.62 + 0.02 * i, 2))
        tt.append(_timed_run(at))
    out["threshold_page_change_ms"] = 1000 * statistics.median(tt)
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def start_server(app: Path = ROOT / "app" / "main.py"):
    """``streamlit run`` the dashboard on a free loopback port; returns
    (process, base URL) once it answers."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(port),
         "--server.headless", "true", "--server.address", "127.0.0.1",
         "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        cwd=app.parent.parent, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            if urllib.request.urlopen(base + "/_stcore/health", timeout=1).read() == b"ok":
                break
        except OSError:
            time.sleep(0.5)
    return proc, base


def browser_time(csv: Path) -> dict:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    proc, base = start_server()
    try:
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = b.new_page(viewport={"width": 1400, "height": 1300})
            page.set_default_timeout(120_000)
            page.goto(base)
            page.wait_for_selector('[data-testid="stMain"] h1')
            page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').first.click()
            page.get_by_role("option", name="Upload your own file").click()
            uploader = page.locator('[data-testid="stFileUploader"] input[type="file"]')
            uploader.wait_for(state="attached")
            t0 = time.perf_counter()
            uploader.set_input_files(str(csv))
            page.wait_for_selector(f'[data-testid="stSidebar"] :text("{csv.name}")')
            page.wait_for_selector('[data-testid="stMain"] [data-testid="stTable"]')
            upload_to_table = time.perf_counter() - t0
            page.goto(base + "/groups")
            page.wait_for_selector('[data-testid="stPlotlyChart"] .js-plotly-plot g.point path')
            b.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return {"upload_to_first_table_s": upload_to_table}


async def _first_pages(browser, base: str, n: int) -> list[float]:
    """Open ``n`` new sessions at once; seconds until each shows the
    overview's verdict table."""
    import asyncio

    async def one() -> float:
        ctx = await browser.new_context(viewport={"width": 1400, "height": 1300})
        page = await ctx.new_page()
        page.set_default_timeout(300_000)
        t0 = time.perf_counter()
        await page.goto(base)
        await page.wait_for_selector('[data-testid="stMain"] [data-testid="stTable"]')
        dt = time.perf_counter() - t0
        await ctx.close()
        return dt

    return list(await asyncio.gather(*(one() for _ in range(n))))


def _server_first_page(base: str) -> float:
    """Open a session over the websocket as the page does; seconds until the
    server has run the page's script."""
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ClientState_pb2 import ClientState
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from websockets.sync.client import connect

    t0 = time.perf_counter()
    with connect(base.replace("http://", "ws://") + "/_stcore/stream", proxy=None,
                 open_timeout=300, max_size=None) as ws:
        ws.send(BackMsg(rerun_script=ClientState()).SerializeToString())
        while ForwardMsg.FromString(ws.recv(timeout=600)).WhichOneof("type") \
                != "script_finished":
            pass
    return time.perf_counter() - t0


def _server_burst(base: str, n: int) -> list[float]:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(lambda _: _server_first_page(base), range(n)))


def _browser_burst(base: str, n: int) -> list[float]:
    import asyncio

    from playwright.async_api import async_playwright

    async def run() -> list[float]:
        async with async_playwright() as p:
            browser = await p.chromium.launch(
                executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                args=CHROMIUM_ARGS)
            try:
                return await _first_pages(browser, base, n)
            finally:
                await browser.close()

    return asyncio.run(run())


def _stats(times: list[float]) -> dict:
    return {"median_s": statistics.median(times), "max_s": max(times)}


def _sequence(app: Path, n: int, burst) -> dict:
    """On a fresh server: one session, one more, ``n`` at once; then ``n``
    at once on another fresh server.  ``burst(base, k)`` opens k sessions."""
    out = {}
    for fresh in (False, True):
        proc, base = start_server(app)
        try:
            if fresh:
                out[f"{n}_sessions_on_a_fresh_server"] = _stats(burst(base, n))
            else:
                out["first_session"] = _stats(burst(base, 1))
                out["second_session"] = _stats(burst(base, 1))
                out[f"{n}_sessions_after_the_first"] = _stats(burst(base, n))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return out


def session_times(app: Path, n: int = 8) -> dict:
    """First page of new sessions on the default sample (see the module's
    docstring, 3.), in chromium and on the server alone."""
    return {"browser": _sequence(app, n, _browser_burst),
            "server": _sequence(app, n, _server_burst)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-browser", action="store_true")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "app.json")
    ap.add_argument("--sessions-only", action="store_true",
                    help="only the first-page times of new sessions (3.)")
    ap.add_argument("--app", type=Path, default=ROOT / "app" / "main.py",
                    help="the dashboard script to time in 3.")
    args = ap.parse_args()
    if args.sessions_only:
        res = {"sessions": session_times(args.app.resolve()), "cpus": os.cpu_count()}
        print(json.dumps(res, indent=2))
        return
    pq = ensure(N, csv=True)
    csv = pq.with_suffix(".csv")
    res = server_times(csv, args.repeat)
    if not args.no_browser:
        res.update(browser_time(csv))
        res["sessions"] = session_times(args.app.resolve())
    res["cpus"] = os.cpu_count()
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    print("| Dashboard, 1M-row table (2 decision + 2 score models, 3 attributes and their 4 "
          "intersections: 40 groups) | |")
    print("|---|---|")
    print(f"| Upload and first audit (server) | {res['upload_and_first_audit_s']:.1f} s |")
    for k, label in (("attribute", "Change of attribute"), ("metric", "Change of metric"),
                     ("threshold", "Change of score threshold (sidebar)")):
        print(f"| {label}, server time (median / max) | {res[k + '_change_ms']:.0f} ms / "
              f"{res[k + '_change_max_ms']:.0f} ms |")
    print(f"| Change of threshold on the Thresholds page | "
          f"{res['threshold_page_change_ms']:.0f} ms |")
    if "upload_to_first_table_s" in res:
        print(f"| Upload to first results in chromium | {res['upload_to_first_table_s']:.1f} s |")
    for where, times in res.get("sessions", {}).items():
        for k, v in times.items():
            print(f"| First page ({where}), {k.replace('_', ' ')} (median / slowest) | "
                  f"{v['median_s']:.1f} s / {v['max_s']:.1f} s |")


if __name__ == "__main__":
    main()
