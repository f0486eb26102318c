"""How far an engine's counting has gone, for a progress line or bar.

One place reads the engines' own progress, and hands it to a callback:

- DuckDB: ``query_progress()`` of the connection (the share of the running
  query's work that is done), polled from a thread while the query runs;
- Spark: the status tracker (tasks done of the active stages' tasks);
- any other engine (PostgreSQL and other databases): the time elapsed only.

:func:`watch` calls ``callback(Status)`` every ``interval`` seconds once
``delay`` seconds have passed (quick counts show nothing), and once more
with ``done=True`` at the end if it showed anything.  :class:`TerminalLine`
is the command line's callback: one line on a stream that rewrites itself
with ``\\r`` and is blanked at the end.  The dashboard can pass its own
callback (e.g. one that updates ``st.progress``).
"""
from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass
from typing import Callable

#: Seconds a count may take before its progress is shown.
DELAY = 2.0
#: Seconds between two updates.
INTERVAL = 0.25


@dataclass(frozen=True)
class Status:
    """Where a count stands: ``fraction`` in [0, 1] when the engine says,
    else None; ``elapsed`` seconds since it started; ``done`` on the last
    call."""
    engine: str
    elapsed: float
    fraction: float | None = None
    done: bool = False
    #: (query, queries) when the count runs several queries one after another
    step: tuple | None = None


def _duckdb_source(con) -> Callable[[], float | None]:
    try:  # DuckDB tracks progress only with its progress bar on (not printed)
        con.execute("SET enable_progress_bar = true; SET enable_progress_bar_print = false")
    except Exception:  # pragma: no cover - an old DuckDB: elapsed time only
        return lambda: None

    def read():
        p = con.query_progress()
        return p / 100 if p is not None and p >= 0 else None
    return read


def _spark_source(sc) -> Callable[[], float | None]:
    tracker = sc.statusTracker()

    def read():
        total = done = 0
        for stage in tracker.getActiveStageIds():
            info = tracker.getStageInfo(stage)
            if info is not None:
                total += info.numTasks
                done += info.numCompletedTasks
        return done / total if total else None
    return read


def engine_source(backend) -> tuple[str, Callable[[], float | None]]:
    """The engine's name and a function that reads its progress (None when
    it does not say) for an Ibis backend."""
    name = getattr(backend, "name", "engine")
    try:
        if name == "duckdb":
            return name, _duckdb_source(backend.con)
        if name == "pyspark":
            return "spark", _spark_source(backend._session.sparkContext)
    except Exception:  # e.g. Spark Connect has no status tracker: elapsed time only
        pass
    return {"postgres": "postgresql"}.get(name, name), lambda: None


@contextlib.contextmanager
def watch(source: Callable[[], float | None] | None, callback: Callable[[Status], None], *,
          engine: str = "engine", delay: float = DELAY, interval: float = INTERVAL):
    """Call ``callback`` with the count's :class:`Status` while the block
    runs: first after ``delay`` seconds (at once when ``delay`` is 0), then
    every ``interval``; once more with ``done=True`` when the block ends,
    if it was called at all.  ``source`` returns the fraction done or None.

    The block receives a function ``step(k, n)`` to call before the k-th of
    n queries (the engine's fraction is the running query's)."""
    start = time.monotonic()
    stop = threading.Event()
    shown = threading.Event()
    steps: list = [None]

    def step(k: int, n: int) -> None:
        steps[0] = (k, n)

    def status(done: bool = False) -> Status:
        fraction = None
        if source is not None and not done:
            try:
                fraction = source()
            except Exception:  # an engine that cannot say: elapsed time only
                fraction = None
        if fraction is not None:
            fraction = min(max(float(fraction), 0.0), 1.0)
        return Status(engine=engine, elapsed=time.monotonic() - start, fraction=fraction,
                      done=done, step=steps[0])

    def show() -> None:
        callback(status())
        shown.set()

    def poll() -> None:
        if stop.wait(delay):
            return
        while not stop.is_set():
            show()
            stop.wait(interval)

    if delay <= 0:
        show()
    thread = threading.Thread(target=poll, name="fairness-audit-progress", daemon=True)
    thread.start()
    try:
        yield step
    finally:
        stop.set()
        thread.join()
        if shown.is_set():
            callback(status(done=True))


def format_status(s: Status, width: int = 20) -> str:
    """``Counting in duckdb, query 2 of 2 [#########-----------]  45%  12 s``,
    or without a fraction ``Counting in postgresql ...  12 s``."""
    secs = f"{s.elapsed:,.0f} s"
    what = f"Counting in {s.engine}" + (f", query {s.step[0]} of {s.step[1]}" if s.step else "")
    if s.fraction is None:
        return f"{what} ...  {secs}"
    filled = int(round(s.fraction * width))
    return f"{what} [{'#' * filled}{'-' * (width - filled)}] {s.fraction:4.0%}  {secs}"


class TerminalLine:
    """A progress callback that keeps one line on ``stream`` (rewritten with
    ``\\r``) and blanks it when the count is done."""

    def __init__(self, stream):
        self.stream = stream
        self.width = 0

    def __call__(self, s: Status) -> None:
        text = "" if s.done else format_status(s)
        pad = " " * max(self.width - len(text), 0)
        self.stream.write(f"\r{text}{pad}" + ("\r" if s.done else ""))
        self.stream.flush()
        self.width = max(self.width, len(text))
