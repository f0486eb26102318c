"""Loaded once by the process that forks the guarded readers
(:mod:`fairness_core.guard`), before anything else it loads.

Arrow is told to allocate through the C library's malloc before pyarrow is
imported (the choice is made at import), so that no arena is reserved ahead
of use in this process or its children.  Then the readers, and everything
they load on first use, are loaded by reading a tiny table of every kind:
a read costs a fork, and nothing has to be loaded under a child's cap.
"""
import gc
import os

os.environ["ARROW_DEFAULT_MEMORY_POOL"] = "system"

from .guard import warm_up  # noqa: E402

warm_up()
# What is loaded stays out of the children's garbage collection, so that
# their pages stay shared with this process instead of being copied.
gc.freeze()
