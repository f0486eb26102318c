"""Independent pieces of an audit on the machine's cores.

The heavy steps of an in-memory audit (dictionary-encoding text columns,
hashing columns, counting each score column, bootstrapping each model) are
numpy, Arrow and hashlib work that releases the GIL, and each piece is
independent of the others: threads run them side by side without copying
any data.  Results come back in the order of the items, so an audit is the
same however many cores it ran on.
"""
from __future__ import annotations

import contextlib
import os
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


@contextlib.contextmanager
def alongside(fn, *args, **kwargs):
    """Run ``fn(*args, **kwargs)`` on a thread of its own while the body of
    the ``with`` block runs, and wait for it at the end of the block (not
    at all with one worker: then nothing runs).  ``fn`` only prepares work
    that is done again when it is missing, so its errors are dropped: the
    step that needs its result meets them itself."""
    if workers() < 2:
        yield
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="fairness-audit") as pool:
        job = pool.submit(fn, *args, **kwargs)
        try:
            yield
        finally:
            try:
                job.result()
            except Exception:
                pass
