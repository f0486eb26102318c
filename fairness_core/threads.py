"""Independent pieces of an audit on the machine's cores.

The heavy steps of an in-memory audit (dictionary-encoding text columns,
hashing columns, counting each score column, bootstrapping each model,
sorting replicates) are numpy, Arrow and hashlib work that mostly releases
Python's lock, and each piece is independent of the others: threads run
them side by side without copying any data.  Everything an audit computes
from the counts alone runs on its own thread while the score columns are
counted (:func:`started`).  Results come back in the order of the items,
so an audit is the same however many cores it ran on.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

#: Environment variable capping the threads of one audit (1 runs every
#: piece in turn).
ENV = "FAIRNESS_AUDIT_THREADS"


def workers() -> int:
    """Threads one audit may use: the cores this process may run on, or
    ``FAIRNESS_AUDIT_THREADS`` when it is set lower."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:
        cap = int(os.environ.get(ENV, "") or cores)
    except ValueError:
        cap = cores
    return max(1, min(cores, cap))


def thread_map(fn, items) -> list:
    """``[fn(x) for x in items]``, computed on up to :func:`workers` threads;
    the first error raised is raised here."""
    items = list(items)
    n = min(len(items), workers())
    if n <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=n, thread_name_prefix="fairness-audit") as pool:
        return list(pool.map(fn, items))


def started(fn, *args, **kwargs):
    """Start ``fn(*args, **kwargs)`` on a thread of its own and return a
    function that waits for its result (and raises its error).  With one
    worker nothing starts: the returned function computes the result when
    called."""
    if workers() < 2:
        return lambda: fn(*args, **kwargs)
    out: dict = {}

    def run():
        try:
            out["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # raised again by the caller's thread
            out["error"] = exc

    thread = threading.Thread(target=run, name="fairness-audit", daemon=True)
    thread.start()

    def result():
        thread.join()
        if "error" in out:
            raise out["error"]
        return out["value"]
    return result
