"""Load test of the dashboard: many browser sessions upload a 1M-row table
at once and open every page.

Usage::

    .venv/bin/python benchmarks/bench_load.py                  # 16 sessions
    .venv/bin/python benchmarks/bench_load.py --sessions 4 --timeout 600

1. Starts the dashboard as ``streamlit run app/main.py`` from the repository
   root (its ``.streamlit/config.toml`` applies) on a free loopback port.
2. Builds, in memory, a loan-decision table of ``--rows`` rows (default 1M):
   an applicant id, sex, race, age, age group, income, the true outcome
   ``repaid`` (yes / no), a decision ``model_a_approved`` (yes / no) and a
   probability ``model_b_score``.  The dashboard's guesses pick the outcome,
   both models and three sensitive attributes by themselves, so every page
   (including Thresholds and Models) has results without any clicking but
   the upload.  Parquet by default (10 MB; the CSV is 52 MB, above what
   Playwright gives to a file input from memory).
3. Opens ``--sessions`` browser sessions at once in Debian's chromium, each
   its own browser context (its own Streamlit session), spread over
   ``--browsers`` chromium processes.  Each session opens the dashboard,
   chooses "Upload your own file", gives the table to the file input, waits
   for the overview of its results, then opens every page from the
   navigation at the top and waits until each has rendered (the page's
   title shown, Streamlit's running indicator gone, no stale element, every
   chart drawn).
4. Meanwhile samples every 0.2 s the resident memory (RSS from /proc) of the
   server process with its children and of the browser processes, and asks
   ``/_stcore/health`` every second.

An error is: an exception element (``stException``) or an error alert in
the sidebar on any page, an error alert on a page other than the
overview's "Most severe finding", a traceback in the server's output, a
step that does not finish before the overall ``--timeout``, a server that
stops answering its health check, or a server that exits.

Writes benchmarks/results/load.json (``--out``), prints a summary; the exit
status is 1 when any session failed or the server died.
"""
from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

SIDEBAR = '[data-testid="stSidebar"]'
UPLOAD = "Upload your own file"
# link text in the navigation at the top -> title of the page
PAGES = {"Overview": "Fairness audit overview", "Group metrics": "Group metrics",
         "Data": "The data", "Thresholds": "Thresholds", "Models": "Models",
         "Export": "Export", "Help": "Help"}
GOAL_PEAK_BYTES = 8 << 30
PLAYWRIGHT_BUFFER_LIMIT = 50 << 20
SAMPLE_EVERY_S = 0.2
HEALTH_EVERY_S = 1.0
HEALTH_TIMEOUT_S = 10.0
CLK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

# Once the page shows the page ``title`` (an <h1> in the main area), a
# caption containing ``caption`` and an element matching ``selector`` (when
# given), and has been quiet for ``quietMs`` (no script running, no stale
# (greyed) element from the previous run, no skeleton or spinner, every
# plotly chart drawn): the time (ms since the epoch) the quiet began; else
# false.  ``token`` restarts the quiet-period clock.  One cheap check polled
# a few times a second: many pages wait at once on two cores.
READY_JS = """
([token, quietMs, title, caption, selector]) => {
  const main = document.querySelector('[data-testid="stMain"]');
  const shown = !!main && (!title ||
    Array.from(main.querySelectorAll('h1')).some(
      h => h.textContent.trim() === title && !h.closest('[data-stale="true"]'))) &&
    (!caption || Array.from(main.querySelectorAll('[data-testid="stCaptionContainer"]')).some(
      c => c.textContent.includes(caption))) &&
    (!selector || !!main.querySelector(selector));
  const busy = !shown ||
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
  return now - window.__idleSince >= quietMs ? window.__idleSince : false;
}
"""

# Error alerts and exceptions on the page: [where, text] pairs.
ERRORS_JS = """
() => {
  const out = [];
  for (const el of document.querySelectorAll('[data-testid="stException"]'))
    out.push(['exception', el.innerText.slice(0, 300)]);
  for (const el of document.querySelectorAll('[data-testid="stAlertContentError"]')) {
    const where = el.closest('[data-testid="stSidebar"]') ? 'sidebar' : 'main';
    out.push([where, el.innerText.slice(0, 300)]);
  }
  return out;
}
"""


# ---------------------------------------------------------------------------
# the table

def loan_table(n: int, seed: int = 11) -> pd.DataFrame:
    """A loan-decision table like sample_data/loans.csv, with ``n`` rows."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(np.array(["Female", "Male"], dtype=object), n, p=[0.49, 0.51])
    race = rng.choice(np.array(["White", "Black", "Hispanic", "Asian", "Other"], dtype=object),
                      n, p=[0.6, 0.13, 0.17, 0.06, 0.04])
    age = np.clip(rng.gamma(6.0, 7.0, n) + 18, 18, 90).astype(np.int16)
    edges = np.array([18, 26, 41, 61])
    groups = np.array(["18-25", "26-40", "41-60", "61+"], dtype=object)
    age_group = groups[np.searchsorted(edges, age, side="right") - 1]
    income = np.round(rng.lognormal(10.7, 0.5, n), -2)
    z = rng.normal(size=n) + 0.3 * (income > 45_000) - 0.2 * (race == "Black")
    repaid = z + rng.normal(0, 0.8, n) > -0.2
    score_a = 1 / (1 + np.exp(-(1.5 * z + rng.normal(0, 0.7, n) - 0.25 * (sex == "Female"))))
    score_b = 1 / (1 + np.exp(-(1.2 * z + rng.normal(0, 0.9, n) + 0.1)))
    yes_no = np.array(["no", "yes"], dtype=object)
    return pd.DataFrame({
        "application_id": pd.array([f"A{i:07d}" for i in range(n)], dtype="str"),
        "sex": pd.array(sex, dtype="str"), "race": pd.array(race, dtype="str"),
        "age": age, "age_group": pd.array(age_group, dtype="str"), "income": income,
        "repaid": pd.array(yes_no[repaid.astype(int)], dtype="str"),
        "model_a_approved": pd.array(yes_no[(score_a >= 0.5).astype(int)], dtype="str"),
        "model_b_score": np.round(score_b, 4)})


def table_payload(n: int, fmt: str) -> dict:
    """The table as a Playwright file payload (bytes in memory, never on disk)."""
    df = loan_table(n)
    if fmt == "parquet":
        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        data, mime = buf.getvalue(), "application/octet-stream"
    else:
        data, mime = df.to_csv(index=False).encode("utf-8"), "text/csv"
    if len(data) > PLAYWRIGHT_BUFFER_LIMIT:
        raise SystemExit(f"The {fmt} file is {len(data) / 1e6:.0f} MB: Playwright gives at most "
                         "50 MB from memory to a file input. Use --format parquet or fewer "
                         "--rows.")
    return {"name": f"loans_{n}.{fmt}", "mimeType": mime, "buffer": data}


# ---------------------------------------------------------------------------
# processes: memory and CPU from /proc

def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (from /proc/<pid>/task/<tid>/children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            tids = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
            except OSError:
                pass
    return out


def rss(pids: list[int]) -> int:
    """Resident memory of these processes, in bytes."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * PAGE
        except OSError:
            pass
    return total


def _status(pid: int, key: str) -> int:
    """A ``kB`` field of /proc/<pid>/status, in bytes (0 when gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def cpu_seconds(pids: list[int], children: bool = True) -> float:
    """User + system CPU time of these processes (and of their children that
    have ended and been waited for)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2:].split()
        # utime, stime (and cutime, cstime)
        total += sum(int(x) for x in fields[11:15 if children else 13])
    return total / CLK


def machine_busy_seconds() -> float:
    """CPU time the whole machine spent busy (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return (sum(v[:8]) - idle) / CLK


class Sampler(threading.Thread):
    """Every 0.2 s the RSS of the server's process tree; every second that
    of the browsers (this script's other descendants) and the CPU times."""

    def __init__(self, server_pid: int):
        super().__init__(daemon=True)
        self.server_pid = server_pid
        self.stop = threading.Event()
        self.server_peak = 0
        self.browser_peak = 0
        self.trace: list[tuple[float, int, int]] = []  # (s since start, server, browsers)
        self.server_cpu = 0.0
        self.browser_cpu = 0.0
        self.t0 = time.monotonic()

    def sample(self, full: bool = True) -> None:
        server = tree(self.server_pid)
        s = rss(server)
        self.server_peak = max(self.server_peak, s)
        if not full:
            return
        browsers = [p for p in tree(os.getpid()) if p not in server and p != os.getpid()]
        b = rss(browsers)
        self.browser_peak = max(self.browser_peak, b)
        self.trace.append((round(time.monotonic() - self.t0, 1), s, b))
        # CPU only grows; the last reading before the processes end is kept
        self.server_cpu = max(self.server_cpu, cpu_seconds(server))
        self.browser_cpu = max(self.browser_cpu, cpu_seconds(browsers))

    def run(self) -> None:
        i = 0
        while not self.stop.wait(SAMPLE_EVERY_S):
            i += 1
            self.sample(full=i % 5 == 0)


class Health(threading.Thread):
    """Asks /_stcore/health every second; notes failures and the slowest answer."""

    def __init__(self, base: str, proc: subprocess.Popen, t0: float):
        super().__init__(daemon=True)
        self.base, self.proc, self.t0 = base, proc, t0
        self.stop = threading.Event()
        self.failures: list[tuple[float, str]] = []  # (s since start, what)
        self.slowest = 0.0
        self.checks = 0

    def run(self) -> None:
        while not self.stop.wait(HEALTH_EVERY_S):
            if self.proc.poll() is not None:
                self.failures.append((self.since(), "the server exited with status "
                                                     f"{self.proc.returncode}"))
                return
            t0 = time.monotonic()
            try:
                with urllib.request.urlopen(self.base + "/_stcore/health",
                                            timeout=HEALTH_TIMEOUT_S) as r:
                    ok = r.read().strip() == b"ok"
                if not ok:
                    self.failures.append((self.since(), "it did not answer ok"))
            except OSError as err:
                if not self.stop.is_set():
                    self.failures.append((self.since(), str(err)))
            self.slowest = max(self.slowest, time.monotonic() - t0)
            self.checks += 1

    def since(self) -> float:
        return round(time.monotonic() - self.t0, 1)

    def summary(self) -> list[str]:
        """One line per kind of failure: how often, first and last time."""
        kinds: dict[str, list[float]] = {}
        for t, what in self.failures:
            kinds.setdefault(what, []).append(t)
        return [f"/_stcore/health: {what} ({len(ts)} time(s), {ts[0]} s to {ts[-1]} s after "
                "the start)" for what, ts in kinds.items()]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(log, options: list[str] = ()) -> tuple[subprocess.Popen, str]:
    """``streamlit run app/main.py`` from the repository root (its
    .streamlit/config.toml applies), plus ``options`` (``name=value``)."""
    port = _free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", "app/main.py", "--server.port", str(port),
           "--server.headless", "true", "--server.address", "127.0.0.1",
           "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    for opt in options:
        name, _, value = opt.partition("=")
        cmd += [f"--{name}", value]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            raise SystemExit(f"The dashboard exited with status {proc.returncode}:\n"
                             f"{log.read().decode('utf-8', 'replace')[-3000:]}")
        try:
            with urllib.request.urlopen(base + "/_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    return proc, base
        except OSError:
            pass
        time.sleep(0.25)
    proc.kill()
    raise SystemExit("The dashboard did not answer /_stcore/health within 60 s")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


# ---------------------------------------------------------------------------
# one browser session

@dataclass
class Session:
    index: int
    step: str = "not started"
    open_s: float | None = None
    first_results_s: float | None = None
    pages_s: dict = field(default_factory=dict)
    all_pages_s: float | None = None
    errors: list = field(default_factory=list)
    done: bool = False


_tokens = iter(range(1, 1 << 62))


async def rendered(page, title: str | None, caption: str | None = None, selector: str | None = None,
                   quiet_ms: int = 500) -> float:
    """Wait until the page with this title has rendered (see READY_JS); return
    the (epoch) time at which it became quiet, so that the quiet period
    itself is not counted."""
    handle = await page.wait_for_function(
        READY_JS, arg=[next(_tokens), quiet_ms, title, caption, selector], polling=250)
    return await handle.json_value() / 1000


async def check_errors(page, s: Session, where: str) -> None:
    for kind, text in await page.evaluate(ERRORS_JS):
        if kind == "main" and where == "Overview" and "Most severe finding" in text:
            continue  # the overview shows its most severe finding as an error box
        s.errors.append(f"{where}: {kind} error shown: {text!r}")


async def run_session(browser, base: str, payload: dict, s: Session, deadline: float) -> None:
    ctx = await browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = await ctx.new_page()
        page.set_default_timeout(max(1.0, deadline - time.monotonic()) * 1000)
        s.step = "open the dashboard"
        t0 = time.time()
        await page.goto(base + "/")
        s.open_s = await rendered(page, PAGES["Overview"]) - t0
        s.step = "choose 'Upload your own file'"
        await page.locator(SIDEBAR).get_by_role("combobox", name="Predictions table",
                                                exact=True).click()
        await page.get_by_role("option", name=UPLOAD, exact=True).click()
        uploader = page.locator('[data-testid="stFileUploader"] input[type="file"]')
        await uploader.wait_for(state="attached")
        await rendered(page, None)  # no file yet: no results, no title
        s.step = "upload and first results"
        t0 = time.time()
        await uploader.set_input_files(payload)
        # the overview of this file: its name in the page's header caption,
        # the verdict table, and nothing left running
        s.first_results_s = await rendered(page, PAGES["Overview"], payload["name"],
                                           '[data-testid="stTable"]') - t0
        await check_errors(page, s, "Overview")
        links = [t.strip() for t in
                 await page.locator('[data-testid="stTopNavLink"]').all_inner_texts()]
        missing = [p for p in PAGES if not any(p in t for t in links)]
        if missing:
            s.errors.append(f"pages missing from the navigation: {missing} (found {links})")
        t_all = done = time.time()
        for link, title in PAGES.items():
            if link == "Overview" or link in missing:
                continue
            s.step = f"open {link}"
            t1 = time.time()
            await page.locator('[data-testid="stTopNavLink"]', has_text=link).click()
            # every results page names the file in its header caption
            done = await rendered(page, title, None if link == "Help" else payload["name"])
            s.pages_s[link] = done - t1
            await check_errors(page, s, link)
        s.all_pages_s = done - t_all
        s.step = "done"
        s.done = True
    finally:
        await ctx.close()


async def run_all(base: str, payload: dict, sessions: list[Session], n_browsers: int,
                  deadline: float, ramp_s: float) -> None:
    from playwright.async_api import async_playwright

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    async with async_playwright() as p:
        browsers = [await p.chromium.launch(executable_path=chromium, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update",
            "--disable-sync"]) for _ in range(n_browsers)]

        async def one(s: Session) -> None:
            await asyncio.sleep(ramp_s * s.index)
            try:
                await asyncio.wait_for(
                    run_session(browsers[s.index % n_browsers], base, payload, s, deadline),
                    timeout=max(0.0, deadline - time.monotonic()))
            except (asyncio.TimeoutError, TimeoutError):
                s.errors.append(f"timed out in step {s.step!r}")
            except Exception as err:  # a Playwright error: report it, go on with the others
                s.errors.append(f"{type(err).__name__} in step {s.step!r}: "
                                f"{str(err).splitlines()[0][:300]}")

        try:
            await asyncio.gather(*(one(s) for s in sessions))
        finally:
            for b in browsers:
                await b.close()


# ---------------------------------------------------------------------------

def _stats(values: list[float]) -> dict:
    if not values:
        return {"median_s": None, "max_s": None, "n": 0}
    return {"median_s": round(statistics.median(values), 2), "max_s": round(max(values), 2),
            "n": len(values)}


# leaf frames of a thread that waits (py-spy without --idle still shows some)
_WAITING = ("sleep", "select (selectors", ".select (", "Condition.wait", "Event.wait",
            "_wait_for_tstate_lock", "SimpleQueue.get", "Queue.get", "polling_path_watcher.py",
            "_worker (concurrent")


def profile_summary(path: Path, top: int = 15) -> dict | None:
    """Share of the server's busy samples per function of the dashboard or
    of fairness_core (the deepest such frame of each sample; samples with
    none are Streamlit's own work: websocket, messages, garbage collection
    after each run)."""
    if not path.exists():
        return None
    busy, by_fn = 0, {}
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        frames = stack.split(";")
        if not stack or any(w in frames[-1] for w in _WAITING):
            continue
        busy += int(n)
        own = [f for f in frames if "/app/" in f or "fairness_core/" in f]
        if own:
            key = re.sub(r":\d+\)$", ")", own[-1])  # one entry per function, not per line
        else:
            key = "(Streamlit) " + re.sub(r":\d+\)$", ")", frames[-1])
        by_fn[key] = by_fn.get(key, 0) + int(n)
    ranked = sorted(by_fn.items(), key=lambda kv: -kv[1])[:top]
    return {"busy_samples": busy, "file": str(path),
            "top": [[round(100 * n / max(busy, 1), 1), k] for k, n in ranked]}


def _gb(n: float) -> str:
    return f"{n / (1 << 30):.2f} GB"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=16)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    ap.add_argument("--timeout", type=float, default=900,
                    help="seconds for the whole run; an unfinished session is an error")
    ap.add_argument("--browsers", type=int, default=1,
                    help="chromium processes to spread the sessions over")
    ap.add_argument("--ramp", type=float, default=0.0,
                    help="seconds between the starts of two sessions (0: all at once)")
    ap.add_argument("--server-option", action="append", default=[], metavar="NAME=VALUE",
                    help="an extra Streamlit option for the server, e.g. "
                         "runner.postScriptGC=false (repeatable; default: the repository's "
                         "settings only)")
    ap.add_argument("--py-spy", metavar="EXE",
                    help="record the server with this py-spy executable (sampling profiler, "
                         "from PyPI) next to --out; the summary lists where its CPU went")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "load.json")
    args = ap.parse_args()

    print(f"building the {args.rows:,}-row table ({args.format}) in memory ...",
          file=sys.stderr, flush=True)
    payload = table_payload(args.rows, args.format)
    log = tempfile.TemporaryFile()
    proc, base = start_server(log, args.server_option)
    spy = profile = None
    if args.py_spy:
        profile = args.out.with_suffix(".server-profile.txt")
        profile.parent.mkdir(exist_ok=True)
        spy = subprocess.Popen([args.py_spy, "record", "-p", str(proc.pid), "-r", "10",
                                "--nonblocking", "-f", "raw", "-o", str(profile)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sampler = Sampler(proc.pid)
    health = Health(base, proc, sampler.t0)
    sampler.sample()
    idle_rss, start_cpu = sampler.server_peak, sampler.server_cpu
    sampler.start()
    health.start()
    sessions = [Session(i) for i in range(args.sessions)]
    print(f"{args.sessions} sessions against {base} ...", file=sys.stderr, flush=True)
    busy0, cpu0 = machine_busy_seconds(), cpu_seconds([os.getpid()], children=False)
    load0 = os.getloadavg()[0]
    t0 = time.monotonic()
    deadline = t0 + args.timeout
    try:
        asyncio.run(run_all(base, payload, sessions, args.browsers, deadline, args.ramp))
    finally:
        wall = time.monotonic() - t0
        busy = machine_busy_seconds() - busy0
        own_cpu = cpu_seconds([os.getpid()], children=False) - cpu0
        sampler.sample()
        hwm = _status(proc.pid, "VmHWM")
        sampler.stop.set()
        health.stop.set()
        sampler.join()
        health.join()
        died = proc.poll() is not None
        stop_server(proc)
        if spy is not None:
            try:
                spy.wait(timeout=60)  # it writes its file when the server has ended
            except subprocess.TimeoutExpired:
                spy.kill()
    log.seek(0)
    server_log = log.read().decode("utf-8", "replace")
    log.close()

    errors = [f"session {s.index}: {e}" for s in sessions for e in s.errors]
    errors += [f"session {s.index}: did not finish (step {s.step!r})"
               for s in sessions if not s.done and not s.errors]
    tracebacks = server_log.count("Traceback (most recent call last)")
    if tracebacks:
        tail = server_log[server_log.index("Traceback"):][:1500]
        errors.append(f"the server printed {tracebacks} traceback(s); the first:\n{tail}")
    errors += [f"server: {f}" for f in health.summary()]
    if died:
        errors.append("server: it exited during the run")
    ok = [s for s in sessions if s.done and not s.errors]
    per_page = {p: _stats([s.pages_s[p] for s in sessions if p in s.pages_s])
                for p in PAGES if p != "Overview"}
    import streamlit
    res = {
        "meta": {"rows": args.rows, "format": args.format, "file_mb":
                 round(len(payload["buffer"]) / 1e6, 1), "sessions": args.sessions,
                 "browsers": args.browsers, "ramp_s": args.ramp, "timeout_s": args.timeout,
                 "server_options": args.server_option,
                 "loadavg_1min_at_start": round(load0, 2),
                 "cpus": os.cpu_count(), "memory_gb": round(
                     os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30), 1),
                 "python": platform.python_version(), "streamlit": streamlit.__version__,
                 "pandas": pd.__version__},
        "sessions_ok": len(ok),
        "sessions_failed": args.sessions - len(ok),
        "wall_s": round(wall, 1),
        "open_dashboard": _stats([s.open_s for s in sessions if s.open_s is not None]),
        "first_results": _stats([s.first_results_s for s in sessions
                                 if s.first_results_s is not None]),
        "all_pages": _stats([s.all_pages_s for s in sessions if s.all_pages_s is not None]),
        "per_page": per_page,
        "server_idle_rss_bytes": idle_rss,
        "server_peak_rss_bytes": sampler.server_peak,
        "server_vmhwm_bytes": hwm,
        "browser_peak_rss_bytes": sampler.browser_peak,
        "cpu_s": {"server": round(sampler.server_cpu - start_cpu, 1),
                  "server_per_session": round((sampler.server_cpu - start_cpu) /
                                              max(args.sessions, 1), 1),
                  "browsers": round(sampler.browser_cpu, 1),
                  "this_script": round(own_cpu, 1),
                  "whole_machine": round(busy, 1),
                  "other_processes": round(max(0.0, busy - (sampler.server_cpu - start_cpu) -
                                               sampler.browser_cpu - own_cpu), 1),
                  "available": round(wall * (os.cpu_count() or 1), 1)},
        "health": {"checks": health.checks, "slowest_s": round(health.slowest, 2)},
        "server_profile": profile_summary(profile) if profile else None,
        "errors": errors,
        "goal": {"all_sessions_rendered": len(ok) == args.sessions, "no_errors": not errors,
                 "peak_under_8_gb": max(sampler.server_peak, hwm) < GOAL_PEAK_BYTES},
        "sessions_detail": [{"index": s.index, "done": s.done, "step": s.step,
                             "open_s": s.open_s and round(s.open_s, 2),
                             "first_results_s": s.first_results_s and
                             round(s.first_results_s, 2),
                             "all_pages_s": s.all_pages_s and round(s.all_pages_s, 2),
                             "pages_s": {k: round(v, 2) for k, v in s.pages_s.items()},
                             "errors": s.errors} for s in sessions],
        "memory_trace": sampler.trace,  # (s, server RSS, browsers' RSS) every second
    }
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(res, indent=1) + "\n")

    fr, ap_ = res["first_results"], res["all_pages"]
    cpu = res["cpu_s"]
    print(f"| Load test: {args.sessions} sessions, {args.rows:,}-row {args.format} "
          f"({res['meta']['file_mb']} MB) each | |")
    print("|---|---|")
    print(f"| Sessions that rendered every page without error | {len(ok)} of {args.sessions} |")
    print(f"| Opening the dashboard (bundled sample; median / max) | "
          f"{res['open_dashboard']['median_s']} s / {res['open_dashboard']['max_s']} s |")
    print(f"| Upload to first results (median / max) | {fr['median_s']} s / {fr['max_s']} s |")
    print(f"| Opening every other page (median / max per session) | "
          f"{ap_['median_s']} s / {ap_['max_s']} s |")
    print(f"| Total wall time | {res['wall_s']} s |")
    print(f"| Server peak memory (RSS, sampled / VmHWM) | {_gb(sampler.server_peak)} / "
          f"{_gb(hwm)} |")
    print(f"| Browsers' peak memory (RSS) | {_gb(sampler.browser_peak)} |")
    print(f"| CPU time: server / browsers / other processes (of {cpu['available']} s) | "
          f"{cpu['server']} s / {cpu['browsers']} s / {cpu['other_processes']} s |")
    print(f"| Slowest health check | {res['health']['slowest_s']} s |")
    if res["server_profile"]:
        print("Server CPU by function (share of busy samples):")
        for share, fn in res["server_profile"]["top"][:10]:
            print(f"  {share:5.1f}%  {fn}")
    for e in errors[:20]:
        print("ERROR:", re.sub(r"\s+", " ", e)[:400])
    if len(errors) > 20:
        print(f"... and {len(errors) - 20} more errors in {args.out}")
    return 1 if errors or died else 0


if __name__ == "__main__":
    sys.exit(main())
